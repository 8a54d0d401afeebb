"""Built-in presets of ViTPose and ViTPose++ (families "vitpose", "vitpose_plus").

Every released reference checkpoint has one entry. Naming
(`<family>_<variant>_<dataset>_<H>x<W>[_<release>]`, lowercase):

- `vitpose_<size>[_simple]_coco_256x192`: the single-task COCO releases of
  ViTAE-Transformer/ViTPose (`_simple` = simple decoder, else classic).
- `vitpose_<size>_coco_aic_mpii_256x192`: multi-task ViTPose trained on
  COCO+AIC+MPII (COCO head).
- `vitpose_<size>_multi_<dataset>_256x192`: the multi-task "*" models
  trained on COCO+AIC+MPII+CrowdPose, released as one file per dataset
  (`vitpose-b-multi-coco.pth`, `-aic`, `-mpii`, `-crowdpose`); `<dataset>`
  names the head the file carries.
- `..._mmpose`: the mmpose 1.x re-trainings (download.openmmlab.com), e.g.
  `vitpose_small_coco_256x192_mmpose`; `vitpose_huge_coco_256x192_mmpose_3rdparty`
  is mmpose's conversion of the original ViTPose-H;
  `vitpose_<size>_humanart_coco_256x192_mmpose` the Human-Art + COCO models.
- `..._hf`: the HF transformers safetensors conversions
  (huggingface.co/usyd-community), e.g. `vitpose_base_coco_256x192_hf`. They
  decode as HF transformers does (`dark_variant="hf"`, HF's DARK blur); their
  published AP is the original release's (mmpose DARK blur), see
  `vitpose_records.HF_DECODING_REFERENCE`.
- `vitpose_plus_<size>`: ViTPose++ multi-dataset model, all six experts and
  heads (dataset order coco, aic, mpii, ap10k, apt36k, coco_wholebody).
- `vitpose_plus_<size>_<dataset>_256x192`: the same file with one dataset's
  expert and head selected (`dataset=` set); ViTPose++ per-dataset files
  are not released (the repo's `tools/model_split.py` makes them locally).

Sources. The ViTPose/ViTPose++ authors publish OneDrive share links only,
which need a browser. Where a copy of the original file exists on the
Hugging Face hub it is the `source_url` (with its LFS sha256), and `notes`
give the OneDrive original; where none exists the OneDrive link is kept and
loading asks for a manual download (`keras-pose convert`).

Published accuracy values are fractions (0.758 = 75.8 AP) copied from the
release tables (ViTPose README, mmpose `vitpose_coco.md` /
`vitpose_humanart.md`); `decoding` records the test settings of the config
that produced them.
"""

from keras_pose.reference_constants import VIT_SIZES, VITPOSE_PLUS_PART_FEATURES
from keras_pose.preset_entry import PresetEntry
from keras_pose.presets.common import APACHE, imagenet_preprocessing
from keras_pose.presets.vitpose_records import (
    coco_accuracy,
    dataset_decoding,
    onedrive_url,
    plus_accuracy,
    hf_udp_decoding,
    udp_decoding,
    vitpose_config,
)
from keras_pose.presets.vitpose_releases import (
    COCO_DET_MMPOSE,
    DATASET_TITLES,
    HF,
    LETTER,
    MMPOSE_COCO,
    MMPOSE_HUMANART,
    MMPOSE_ROOT,
    MMPOSE_UDP,
    MULTI3,
    MULTI4,
    MULTI4_MIRRORS,
    NIELSR,
    ORIG_UDP,
    PLUS_ACCURACY,
    PLUS_DATASETS,
    PLUS_FILES,
    PLUS_ONEDRIVE,
    PUBLIC_DATA,
    SINGLE_TASK,
    SINGLE_TASK_LOCAL_NAMES,
    SINGLE_TASK_MIRRORS,
    SIZES,
    SRC_MMPOSE_COCO,
    SRC_MMPOSE_HUMANART,
    SRC_README,
)


# --------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------
def _single_task_entries():
    entries = []
    for size in SIZES:
        for decoder in ("classic", "simple"):
            ap, ar, share = SINGLE_TASK[(size, decoder)]
            suffix = "_simple" if decoder == "simple" else ""
            onedrive = onedrive_url(share)
            mirror = SINGLE_TASK_MIRRORS.get((size, decoder))
            notes = [f"Original release (OneDrive): {onedrive}."]
            if mirror:
                url, file_name, sha, where = mirror
                notes.append(f"Downloaded from the {where}; sha256 is the hub's LFS digest.")
            else:
                url, file_name, sha = onedrive, SINGLE_TASK_LOCAL_NAMES[(size, decoder)], None
                notes.append(
                    "No direct-download copy of this file is known and no digest is published: download "
                    "it by hand and run `keras-pose convert --preset "
                    f"vitpose_{size}{suffix}_coco_256x192 --checkpoint FILE --output DIR` "
                    "(file_name is the local name keras-pose uses)."
                )
            if (size, decoder) == ("small", "simple"):
                notes.append(
                    "The repo's ViTPose_small_simple_coco_256x192.py declares the classic decoder "
                    "(copy-paste slip); the converter infers the decoder from the tensor names."
                )
            if size == "huge" and decoder == "classic":
                notes.append(
                    "mmpose re-hosts a conversion of this model: vitpose_huge_coco_256x192_mmpose_3rdparty."
                )
            entries.append(
                PresetEntry(
                    name=f"vitpose_{size}{suffix}_coco_256x192",
                    family="vitpose",
                    task_class="ViTPose",
                    description=f"ViTPose-{LETTER[size]} ({decoder} decoder), COCO, 256x192; original release",
                    config=vitpose_config(size, decoder),
                    preprocessing=imagenet_preprocessing(),
                    decoding=udp_decoding(ORIG_UDP),
                    source_url=url,
                    file_name=file_name,
                    sha256=sha,
                    checkpoint_format="vitpose_original",
                    license=APACHE,
                    published_accuracy=coco_accuracy(
                        ap, ar, SRC_README + f", single-task table, {decoder} decoder, ViTPose-{LETTER[size]}"
                    ),
                    notes=" ".join(notes),
                )
            )
    return entries


def _multi3_entries():
    entries = []
    for size, (coco, ochuman, mpii, aic, share) in MULTI3.items():
        onedrive = onedrive_url(share)
        src = SRC_README + f", multi-task table (COCO+AIC+MPII), ViTPose-{LETTER[size]}"
        notes = [f"Original release (OneDrive): {onedrive}."]
        if size == "base":
            url = NIELSR + "vitpose_base_coco_aic_mpii.pth"
            file_name = "vitpose_base_coco_aic_mpii.pth"
            sha = "995bde407f608d37f3293c4c0601c31f67101b57b99555a1198c8eea63a2b360"
            notes.append(
                "Downloaded from the HF hub copy nielsr/vitpose-original-checkpoints (the file HF converted "
                "into usyd-community/vitpose-base-coco-aic-mpii); sha256 is the hub's LFS digest. The file "
                "also carries the AIC and MPII heads (associate_keypoint_heads); this preset uses the COCO head."
            )
        else:
            url = onedrive
            file_name = f"vitpose_{size}_coco_aic_mpii.pth"
            sha = None
            notes.append(
                "No direct-download copy is known and no digest is published: download it by hand and run "
                f"`keras-pose convert --preset vitpose_{size}_coco_aic_mpii_256x192 --checkpoint FILE "
                "--output DIR`."
            )
        entries.append(
            PresetEntry(
                name=f"vitpose_{size}_coco_aic_mpii_256x192",
                family="vitpose",
                task_class="ViTPose",
                description=f"ViTPose-{LETTER[size]} multi-task COCO+AIC+MPII, COCO head, 256x192",
                config=vitpose_config(size, "classic"),
                preprocessing=imagenet_preprocessing(),
                decoding=udp_decoding(ORIG_UDP),
                source_url=url,
                file_name=file_name,
                sha256=sha,
                checkpoint_format="vitpose_original",
                license=APACHE,
                published_accuracy=coco_accuracy(
                    coco[0],
                    coco[1],
                    src,
                    additional=[
                        {"dataset": "OCHuman test", "metric": "AP", "AP": ochuman[0], "AR": ochuman[1],
                         "detector": "ground-truth boxes", "source": src},
                        {"dataset": "MPII val", "metric": "PCKh", "PCKh": mpii,
                         "detector": "ground-truth boxes", "source": src},
                        {"dataset": "AI Challenger test", "metric": "AP", "AP": aic[0], "AR": aic[1],
                         "detector": "ground-truth boxes", "source": src},
                    ],
                ),
                notes=" ".join(notes),
            )
        )
    return entries


_MULTI4_SPECS = {"coco": "coco", "aic": "aic", "mpii": "mpii", "crowdpose": "crowdpose"}


def _multi4_accuracy(size, dataset):
    facts = MULTI4[size]
    src = SRC_README + f", multi-task table (COCO+AIC+MPII+CrowdPose), ViTPose-{LETTER[size]}*"
    if dataset == "coco":
        (ap, ar), _ = facts["coco"]
        oap, oar = facts["ochuman"]
        return coco_accuracy(ap, ar, src, additional=[
            {"dataset": "OCHuman test", "metric": "AP", "AP": oap, "AR": oar, "detector": "ground-truth boxes",
             "source": src},
        ])
    if dataset == "mpii":
        pckh, _ = facts["mpii"]
        return {"dataset": "MPII val", "metric": "PCKh", "PCKh": pckh, "detector": "ground-truth boxes",
                "source": src}
    if dataset == "aic":
        (ap, ar), _ = facts["aic"]
        return {"dataset": "AI Challenger test", "metric": "AP", "AP": ap, "AR": ar,
                "detector": "ground-truth boxes", "source": src}
    (ap, ap_hard), _ = facts["crowdpose"]
    return {"dataset": "CrowdPose test", "metric": "AP", "AP": ap, "AP_hard": ap_hard,
            "detector": "YOLOv3 human detector (det_for_crowd_test_0.1_0.5.json)", "source": src}


def _multi4_entries():
    entries = []
    for size in ("base", "large", "huge"):
        for dataset in ("coco", "aic", "mpii", "crowdpose"):
            share = MULTI4[size][dataset][1]
            onedrive = onedrive_url(share)
            release_name = f"vitpose-{LETTER[size].lower()}-multi-{dataset}.pth"
            sha = MULTI4_MIRRORS.get((size, dataset))
            notes = [
                f"Original release (OneDrive): {onedrive}. Multi-task training on COCO+AIC+MPII+CrowdPose "
                "(the README's '*' models; the authors warn that CrowdPose train may share images with other "
                "datasets' validation sets)."
            ]
            if (size, dataset) in MULTI4_MIRRORS:
                url = PUBLIC_DATA + release_name
                notes.append("Downloaded from the HF hub copy public-data/ViTPose; sha256 is the hub's LFS digest"
                             + (" (prefix: only 25 hex digits were readable)." if len(sha) < 64 else "."))
            elif (size, dataset) == ("huge", "coco"):
                url = HF + "camenduru/GVHMR/resolve/main/vitpose/" + release_name
                notes.append(
                    "Downloaded from a third-party HF hub re-host (camenduru/GVHMR) that no digest is published "
                    "for; verify the file if that matters to you."
                )
            else:
                url = onedrive
                notes.append(
                    "No direct-download copy is known and no digest is published: download it by hand and run "
                    f"`keras-pose convert --preset vitpose_{size}_multi_{dataset}_256x192 --checkpoint FILE "
                    "--output DIR`."
                )
            entries.append(
                PresetEntry(
                    name=f"vitpose_{size}_multi_{dataset}_256x192",
                    family="vitpose",
                    task_class="ViTPose",
                    description=(
                        f"ViTPose-{LETTER[size]}* multi-task (COCO+AIC+MPII+CrowdPose), "
                        f"{DATASET_TITLES[dataset]} head, 256x192"
                    ),
                    config=vitpose_config(size, "classic", keypoint_spec=_MULTI4_SPECS[dataset]),
                    preprocessing=imagenet_preprocessing(),
                    decoding=dataset_decoding(dataset),
                    source_url=url,
                    file_name=release_name,
                    sha256=sha,
                    checkpoint_format="vitpose_original",
                    license=APACHE,
                    published_accuracy=_multi4_accuracy(size, dataset),
                    notes=" ".join(notes),
                )
            )
    return entries


def _mmpose_entries():
    entries = []
    for (size, decoder), (stem, prefix, date, ap, ap50, ap75, ar, ar50) in MMPOSE_COCO.items():
        suffix = "_simple" if decoder == "simple" else ""
        file_name = f"{stem}-{prefix}_{date}.pth"
        entries.append(
            PresetEntry(
                name=f"vitpose_{size}{suffix}_coco_256x192_mmpose",
                family="vitpose",
                task_class="ViTPose",
                description=f"ViTPose-{LETTER[size]} ({decoder} decoder), COCO, 256x192; mmpose 1.x re-training",
                config=vitpose_config(size, decoder),
                preprocessing=imagenet_preprocessing(),
                decoding=udp_decoding(MMPOSE_UDP),
                source_url=MMPOSE_ROOT + "coco/" + file_name,
                file_name=file_name,
                sha256=prefix,
                checkpoint_format="mmpose",
                license=APACHE,
                published_accuracy=coco_accuracy(
                    ap, ar, SRC_MMPOSE_COCO + f" ({decoder} decoder table) and vitpose_coco.yml",
                    detector=COCO_DET_MMPOSE, AP50=ap50, AP75=ap75, AR50=ar50,
                ),
                notes=(
                    "sha256 is the 8-hex prefix published in the file name (a prefix-only check; the full digest is recorded on the first download and later reads are checked against it). Trained with mmcls "
                    "VisionTransformer keys (layers.N.ln1, ffn.layers.*); pos_embed slot 0 (cls) is dropped, "
                    "not added. Config: configs/body_2d_keypoint/topdown_heatmap/coco/" + stem + ".py."
                ),
            )
        )
    file_name = "td-hm_ViTPose-huge_3rdparty_coco-256x192-5b738c8e_20230314.pth"
    entries.append(
        PresetEntry(
            name="vitpose_huge_coco_256x192_mmpose_3rdparty",
            family="vitpose",
            task_class="ViTPose",
            description="ViTPose-H (classic decoder), COCO, 256x192; original weights converted by mmpose",
            config=vitpose_config("huge", "classic"),
            preprocessing=imagenet_preprocessing(),
            decoding=udp_decoding(MMPOSE_UDP),
            source_url=MMPOSE_ROOT + "coco/" + file_name,
            file_name=file_name,
            sha256="5b738c8e",
            checkpoint_format="mmpose",
            license=APACHE,
            published_accuracy=coco_accuracy(
                0.790, 0.840, SRC_MMPOSE_COCO + " (ViTPose-H* row, 'converted from the official repo')",
                detector=COCO_DET_MMPOSE, AP50=0.916, AP75=0.857, AR50=0.953,
            ),
            notes=(
                "mmpose's conversion of the original ViTPose-H (vitpose_huge_coco_256x192) into mmpose 1.x "
                "layout; the direct-download way to get the original ViTPose-H weights. The link in "
                "vitpose_coco.md lacks the .pth suffix; vitpose_humanart.md gives this full URL. sha256 is the "
                "8-hex prefix published in the file name (a prefix-only check; the full digest is recorded on the first download and later reads are checked against it)."
            ),
        )
    )
    for size, (stem, prefix, date, ha, ha_gt, coco) in MMPOSE_HUMANART.items():
        file_name = f"{stem}-{prefix}_{date}.pth"
        src = SRC_MMPOSE_HUMANART + f", ViTPose-{LETTER[size]}-humanart-coco rows"
        entries.append(
            PresetEntry(
                name=f"vitpose_{size}_humanart_coco_256x192_mmpose",
                family="vitpose",
                task_class="ViTPose",
                description=f"ViTPose-{LETTER[size]} (classic decoder), Human-Art + COCO, 256x192; mmpose 1.x",
                config=vitpose_config(size, "classic"),
                preprocessing=imagenet_preprocessing(),
                decoding=udp_decoding(MMPOSE_UDP),
                source_url=MMPOSE_ROOT + "human_art/" + file_name,
                file_name=file_name,
                sha256=prefix,
                checkpoint_format="mmpose",
                license=APACHE,
                published_accuracy={
                    "dataset": "Human-Art val",
                    "metric": "AP",
                    "AP": ha[0],
                    "AP50": ha[1],
                    "AP75": ha[2],
                    "AR": ha[3],
                    "AR50": ha[4],
                    "detector": "human detector with 56.2 AP on Human-Art val "
                    "(HumanArt_validation_detections_AP_H_56_person.json)",
                    "source": src,
                    "additional": [
                        {"dataset": "Human-Art val", "metric": "AP", "AP": ha_gt[0], "AR": ha_gt[1],
                         "detector": "ground-truth boxes", "source": src},
                        {"dataset": "COCO val2017", "metric": "AP", "AP": coco[0], "AR": coco[1],
                         "detector": COCO_DET_MMPOSE, "source": src},
                    ],
                },
                notes=(
                    "Trained on Human-Art + COCO (training_humanart_coco.json). sha256 is the 8-hex prefix "
                    "published in the file name (a prefix-only check; the full digest is recorded on the first download and later reads are checked against it). Config: configs/body_2d_keypoint/topdown_heatmap/humanart/"
                    + stem + ".py."
                ),
            )
        )
    return entries


def _hf_entry(name, family, task_class, description, repo, config, decoding, accuracy, notes, dataset=None):
    base = HF + repo + "/resolve/main/"
    return PresetEntry(
        name=name,
        family=family,
        task_class=task_class,
        description=description,
        config=config,
        preprocessing=imagenet_preprocessing(),
        decoding=decoding,
        source_url=base + "model.safetensors",
        file_name="model.safetensors",
        sha256=None,
        checkpoint_format="hf_safetensors",
        license=APACHE,
        published_accuracy=accuracy,
        dataset=dataset,
        extra_files={"config.json": base + "config.json"},
        notes=(
            f"HF transformers conversion ({repo}, model card licence apache-2.0). The model.safetensors "
            "LFS sha256 of this repo is not recorded here; the download is checked against the one the hub "
            "sends (X-Linked-Etag). The backbone "
            "config omits layer_norm_epsilon on purpose: HF conversions carry layer_norm_eps=1e-12 (the HF "
            "default, not the original 1e-6) and the converter takes it from config.json. " + notes
        ),
    )


def _hf_entries():
    entries = []
    for decoder, repo in (("classic", "usyd-community/vitpose-base"), ("simple", "usyd-community/vitpose-base-simple")):
        ap, ar, _ = SINGLE_TASK[("base", decoder)]
        suffix = "_simple" if decoder == "simple" else ""
        entries.append(
            _hf_entry(
                name=f"vitpose_base{suffix}_coco_256x192_hf",
                family="vitpose",
                task_class="ViTPose",
                description=f"ViTPose-B ({decoder} decoder), COCO, 256x192; HF transformers safetensors",
                repo=repo,
                config=vitpose_config("base", decoder, layer_norm_epsilon=None),
                decoding=hf_udp_decoding(),
                accuracy=coco_accuracy(ap, ar, SRC_README + f", single-task table, {decoder} decoder, ViTPose-B "
                                  "(weights converted from that release)"),
                notes=f"Converted from vitpose{'-b-simple' if decoder == 'simple' else '-b'}.pth "
                f"(preset vitpose_base{suffix}_coco_256x192).",
            )
        )
    coco, _, _, _, _ = MULTI3["base"]
    entries.append(
        _hf_entry(
            name="vitpose_base_coco_aic_mpii_256x192_hf",
            family="vitpose",
            task_class="ViTPose",
            description="ViTPose-B multi-task COCO+AIC+MPII, COCO head, 256x192; HF transformers safetensors",
            repo="usyd-community/vitpose-base-coco-aic-mpii",
            config=vitpose_config("base", "classic", layer_norm_epsilon=None),
            decoding=hf_udp_decoding(),
            accuracy=coco_accuracy(coco[0], coco[1], SRC_README + ", multi-task table (COCO+AIC+MPII), ViTPose-B "
                              "(weights converted from that release)"),
            notes="Converted from vitpose_base_coco_aic_mpii.pth (preset vitpose_base_coco_aic_mpii_256x192); "
            "HF keeps the COCO head only.",
        )
    )
    for size in SIZES:
        ap, ar = PLUS_ACCURACY["coco"][size]
        entries.append(
            _hf_entry(
                name=f"vitpose_plus_{size}_coco_256x192_hf",
                family="vitpose_plus",
                task_class="ViTPosePP",
                description=f"ViTPose++-{LETTER[size]} (6 experts, COCO head only), 256x192; HF transformers",
                repo=f"usyd-community/vitpose-plus-{size}",
                config=vitpose_config(size, "classic", layer_norm_epsilon=None, plus=True, datasets=["coco"]),
                decoding=hf_udp_decoding(),
                accuracy=coco_accuracy(ap, ar, SRC_README + f", ViTPose++-{LETTER[size]} row (weights converted from "
                                  "that release)"),
                notes=(
                    f"Converted from vitpose+_{size}.pth (preset vitpose_plus_{size}). The HF conversion keeps "
                    "all six MoE experts but only the COCO head (associate_keypoint_heads dropped), so only "
                    "dataset='coco' is usable."
                ),
                dataset="coco",
            )
        )
    return entries


def _plus_source(size):
    file_name, sha = PLUS_FILES[size]
    url = NIELSR + file_name.replace("+", "%2B")
    notes = (
        f"Original release (OneDrive): {onedrive_url(PLUS_ONEDRIVE[size])}. Downloaded from the HF hub copy "
        "nielsr/vitpose-original-checkpoints"
        + ("; sha256 is the hub's LFS digest." if sha else "; its LFS sha256 is not recorded here, so the "
           "download is checked against the one the hub sends (X-Linked-Etag) (the file name comes from "
           "transformers' convert_vitpose_to_hf.py).")
    )
    return url, file_name, sha, notes


def _plus_entries():
    entries = []
    for size in SIZES:
        url, file_name, sha, source_notes = _plus_source(size)
        pf = VITPOSE_PLUS_PART_FEATURES[VIT_SIZES[size]['hidden_dim']]
        pf_note = (
            " The repo config vitPose+_small_...py says part_features=192, but the released ViTPose++-S "
            "weights use 96 (the converter infers it from mlp.experts.0.weight)." if size == "small" else ""
        )
        common_notes = (
            "ViTPose++ multi-dataset checkpoint: MoE backbone (6 experts, part_features "
            f"{pf}) + keypoint_head (COCO) + associate_keypoint_heads.0-4 (AIC, MPII, AP-10K, APT-36K, "
            "COCO-WholeBody). Trained with UDP targets; the per-dataset evaluation configs the README links "
            "for AIC, AP-10K, APT-36K and WholeBody decode without UDP (recorded in `decoding`)." + pf_note
        )
        coco_acc = plus_accuracy(size, "coco")
        per_dataset = {d: plus_accuracy(size, d) for d in PLUS_DATASETS}
        entries.append(
            PresetEntry(
                name=f"vitpose_plus_{size}",
                family="vitpose_plus",
                task_class="ViTPosePP",
                description=f"ViTPose++-{LETTER[size]}, all 6 dataset experts and heads, 256x192",
                config=vitpose_config(size, "classic", keypoint_spec="coco", plus=True),
                preprocessing=imagenet_preprocessing(),
                decoding=dataset_decoding("coco"),
                source_url=url,
                file_name=file_name,
                sha256=sha,
                checkpoint_format="vitpose_original",
                license=APACHE,
                published_accuracy={**coco_acc, "per_dataset": per_dataset},
                notes=source_notes + " " + common_notes + " Default head: COCO (dataset index 0); pass "
                "dataset= to select another.",
            )
        )
        for dataset in PLUS_DATASETS:
            entries.append(
                PresetEntry(
                    name=f"vitpose_plus_{size}_{dataset}_256x192",
                    family="vitpose_plus",
                    task_class="ViTPosePP",
                    description=f"ViTPose++-{LETTER[size]}, {DATASET_TITLES[dataset]} expert and head, 256x192",
                    config=vitpose_config(size, "classic", keypoint_spec=dataset, plus=True),
                    preprocessing=imagenet_preprocessing(),
                    decoding=dataset_decoding(dataset),
                    source_url=url,
                    file_name=file_name,
                    sha256=sha,
                    checkpoint_format="vitpose_original",
                    license=APACHE,
                    published_accuracy=plus_accuracy(size, dataset),
                    dataset=dataset,
                    notes=source_notes + " " + common_notes + " Same file as vitpose_plus_" + size + ".",
                )
            )
    return entries


def vitpose_presets():
    """All ViTPose / ViTPose++ `PresetEntry` objects."""
    return (
        _single_task_entries()
        + _multi3_entries()
        + _multi4_entries()
        + _mmpose_entries()
        + _hf_entries()
        + _plus_entries()
    )


PRESETS = vitpose_presets()
