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
  (huggingface.co/usyd-community), e.g. `vitpose_base_coco_256x192_hf`.
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

from keras_pose.models.vitpose.vitpose_backbone import VIT_SIZES, VITPOSE_PLUS_PART_FEATURES
from keras_pose.preset_entry import PresetEntry
from keras_pose.presets.common import APACHE, MMPOSE_COCO_DETECTOR, heatmap_decoding, imagenet_preprocessing

VITPOSE_REPO = "https://github.com/ViTAE-Transformer/ViTPose"
MMPOSE_ROOT = "https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/"
HF = "https://huggingface.co/"
NIELSR = HF + "nielsr/vitpose-original-checkpoints/resolve/main/"
PUBLIC_DATA = HF + "public-data/ViTPose/resolve/main/models/"
ONEDRIVE = "https://1drv.ms/u/s!"

IMAGE_SIZE = [256, 192]  # (H, W)
HEATMAP_SIZE = [64, 48]

SIZES = tuple(VIT_SIZES)  # small, base, large, huge
LETTER = {"small": "S", "base": "B", "large": "L", "huge": "H"}

# ViTPose++ dataset order (dataset_index 0..5).
PLUS_DATASETS = ["coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody"]

COCO_DET = "person detector with 56 AP on COCO val2017 (COCO_val2017_detections_AP_H_56_person.json)"
COCO_DET_MMPOSE = MMPOSE_COCO_DETECTOR
SRC_README = "ViTAE-Transformer/ViTPose README"
SRC_MMPOSE_COCO = "open-mmlab/mmpose configs/body_2d_keypoint/topdown_heatmap/coco/vitpose_coco.md"
SRC_MMPOSE_HUMANART = "open-mmlab/mmpose configs/body_2d_keypoint/topdown_heatmap/humanart/vitpose_humanart.md"


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------
def _config(size, decoder="classic", keypoint_spec="coco", layer_norm_epsilon=1e-6, plus=False, datasets=None):
    """The flat `ViTPose` / `ViTPosePP.from_checkpoint_config` arguments of a released model.

    `layer_norm_epsilon=None` leaves it out (HF: taken from the repo's config.json).
    """
    config = {
        **VIT_SIZES[size],
        "patch_size": 16,
        "patch_padding": 2,
        "qkv_bias": True,
        "image_size": list(IMAGE_SIZE),
        "decoder": decoder,
        "keypoint_spec": keypoint_spec,
    }
    if layer_norm_epsilon is not None:
        config["layer_norm_epsilon"] = layer_norm_epsilon
    if plus:
        config.update(
            {
                "num_experts": 6,
                "part_features": VITPOSE_PLUS_PART_FEATURES[VIT_SIZES[size]["hidden_dim"]],
                "datasets": list(datasets or PLUS_DATASETS),
            }
        )
    return config


def _udp_decoding(source):
    """mmpose 0.x `post_process='default', use_udp=True, modulate_kernel=11`
    (= mmpose 1.x UDPHeatmap with DARK-UDP refinement, blur kernel 11), UDP
    affine crops, flip test without heatmap shift, box padding 1.25."""
    return heatmap_decoding("UDPHeatmap", IMAGE_SIZE, HEATMAP_SIZE, 2.0, source, shift_heatmap=False,
                            blur_kernel_size=11)


def _msra_decoding(source):
    """mmpose 0.x `post_process='default'` without UDP (argmax + quarter-pixel
    shift, = mmpose 1.x MSRAHeatmap(unbiased=False)), standard affine crops,
    flip test with the one-pixel heatmap shift, box padding 1.25."""
    return heatmap_decoding("MSRAHeatmap", IMAGE_SIZE, HEATMAP_SIZE, 2.0, source, shift_heatmap=True,
                            unbiased=False)


ORIG_UDP = (
    "ViTPose config test_cfg: flip_test=True, post_process='default', shift_heatmap=False, "
    "target_type='GaussianHeatmap', modulate_kernel=11, use_udp=True; TopDownAffine(use_udp=True)"
)
ORIG_MSRA = (
    "ViTPose evaluation config test_cfg: flip_test=True, post_process='default', shift_heatmap=True, "
    "modulate_kernel=11 (no use_udp); TopDownAffine() without UDP"
)
MMPOSE_UDP = (
    "mmpose 1.x config: codec UDPHeatmap(sigma=2) (DARK-UDP refinement, blur_kernel_size=11), "
    "test_cfg flip_test=True, flip_mode='heatmap', shift_heatmap=False; TopdownAffine(use_udp=True); "
    "GetBBoxCenterScale(padding=1.25)"
)

# Per-dataset evaluation settings of the ViTPose multi-task / ViTPose++ models
# (the configs the README tables link to).
_DATASET_DECODING = {
    "coco": ("udp", ORIG_UDP + "; configs/body/.../coco"),
    "mpii": ("udp", ORIG_UDP + "; configs/body/.../mpii/ViTPose_*_mpii_256x192.py"),
    "aic": ("msra", ORIG_MSRA + "; configs/body/.../aic/ViTPose_*_aic_256x192.py"),
    "ap10k": ("msra", ORIG_MSRA + "; configs/animal/.../ap10k/ViTPose_*_ap10k_256x192.py"),
    "apt36k": ("msra", ORIG_MSRA + "; configs/animal/.../apt36k/ViTPose_*_apt36k_256x192.py"),
    "coco_wholebody": ("msra", ORIG_MSRA + "; configs/wholebody/.../ViTPose_*_wholebody_256x192.py"),
    "crowdpose": ("msra", ORIG_MSRA + "; configs/body/.../crowdpose/ViTPose_*_crowdpose_256x192.py"),
}


def _dataset_decoding(dataset):
    kind, source = _DATASET_DECODING[dataset]
    return _udp_decoding(source) if kind == "udp" else _msra_decoding(source)


def _coco_ap(ap, ar, source, detector=COCO_DET, **extra):
    acc = {"dataset": "COCO val2017", "metric": "AP", "AP": ap, "AR": ar, "detector": detector, "source": source}
    acc.update(extra)
    return acc


def _onedrive(share_id):
    return ONEDRIVE + share_id


# --------------------------------------------------------------------------
# Facts from the release tables
# --------------------------------------------------------------------------
# Single-task COCO (ViTPose README, "Results from this repo on MS COCO val
# set (single-task training)"): (AP, AR, OneDrive id).
_SINGLE_TASK = {
    ("small", "classic"): (0.738, 0.792, "AimBgYV7JjTlgccifT1XlGRatxg3vw?e=9wz7BY"),
    ("base", "classic"): (0.758, 0.811, "AimBgYV7JjTlgSMjp1_NrV3VRSmK?e=Q1uZKs"),
    ("large", "classic"): (0.783, 0.835, "AimBgYV7JjTlgSd9k_kuktPtiP4F?e=K7DGYT"),
    ("huge", "classic"): (0.791, 0.841, "AimBgYV7JjTlgShLMI-kkmvNfF_h?e=dEhGHe"),
    ("small", "simple"): (0.735, 0.789, "AimBgYV7JjTlgccgb_50jIgiYkHvdw?e=D7RbH2"),
    ("base", "simple"): (0.755, 0.809, "AimBgYV7JjTlgSRPKrD5PmDRiv0R?e=jifvOe"),
    ("large", "simple"): (0.782, 0.834, "AimBgYV7JjTlgSVS6DP2LmKwZ3sm?e=MmCvDT"),
    ("huge", "simple"): (0.789, 0.840, "AimBgYV7JjTlgSbHyN2mjh2n2LyG?e=y0FgMK"),
}

# Hugging Face hub copies of the original files: (url, file name, LFS sha256, where).
_SINGLE_TASK_MIRRORS = {
    ("small", "classic"): (
        NIELSR + "vitpose_small.pth",
        "vitpose_small.pth",
        "43eba5e44ea5471a449c6a85bd7f11284727da79fc25c35a3bd358d6b0cdb698",
        "HF hub nielsr/vitpose-original-checkpoints (added by its PR #2); same LFS sha256 as the "
        "ViTPose-S copies in camenduru/SMPLer-X and shauray/ViTPose",
    ),
    ("base", "classic"): (
        NIELSR + "vitpose-b.pth",
        "vitpose-b.pth",
        "2e849e1f1dbb5b87191eda7171f1b16468d5d082a7380e93e94b7ce76a061679",
        "HF hub nielsr/vitpose-original-checkpoints (also public-data/ViTPose models/vitpose-b.pth, "
        "same sha256); the file HF converted into usyd-community/vitpose-base",
    ),
    ("base", "simple"): (
        NIELSR + "vitpose-b-simple.pth",
        "vitpose-b-simple.pth",
        "1d60b1e86af84d36cb57d500c5d517f66beb211cfcb36d5e60c741f2164533da",
        "HF hub nielsr/vitpose-original-checkpoints (also public-data/ViTPose, same sha256); the "
        "file HF converted into usyd-community/vitpose-base-simple",
    ),
    ("large", "classic"): (
        PUBLIC_DATA + "vitpose-l.pth",
        "vitpose-l.pth",
        "c79ff0cbe5c00e723fb96b7ab05cd38ce12c479446501b34fc17d4ffa6f7b10f",
        "HF hub public-data/ViTPose (HF staff copy used by the ViTPose Spaces demos)",
    ),
    ("large", "simple"): (
        PUBLIC_DATA + "vitpose-l-simple.pth",
        "vitpose-l-simple.pth",
        "1f09b3690e1fbac2c9c05700cdcf73f72c707cec05281aefff1069aad23b298b",
        "HF hub public-data/ViTPose (HF staff copy used by the ViTPose Spaces demos)",
    ),
}
_SINGLE_TASK_LOCAL_NAMES = {
    ("small", "simple"): "vitpose-s-simple.pth",
    ("huge", "classic"): "vitpose-h.pth",
    ("huge", "simple"): "vitpose-h-simple.pth",
}

# Multi-task COCO+AIC+MPII (ViTPose README, "Results with multi-task
# training", rows without "*"): COCO (AP, AR), OCHuman (AP, AR), MPII PCKh,
# AIC (AP, AR), OneDrive id.
_MULTI3 = {
    "base": ((0.771, 0.822), (0.880, 0.896), 0.933, (0.320, 0.363), "AimBgYV7JjTlgcccwaTZ8xCFFM3Sjg?e=chmiK5"),
    "large": ((0.787, 0.838), (0.909, 0.922), 0.940, (0.345, 0.390), "AimBgYV7JjTlgccdOLQqSo6E87GfMw?e=TEurgW"),
    "huge": ((0.795, 0.845), (0.909, 0.923), 0.941, (0.354, 0.399), "AimBgYV7JjTlgccmHofkmfJDQDukVw?e=gRK224"),
}

# Multi-task "*" models (COCO+AIC+MPII+CrowdPose), one file per dataset head.
# Per size: dataset -> (published accuracy fields, OneDrive id).
_MULTI4 = {
    "base": {
        "coco": ((0.775, 0.826), "AimBgYV7JjTlgSrlMB093JzJtqq-?e=Jr5S3R"),
        "ochuman": (0.882, 0.900),
        "mpii": (0.934, "AimBgYV7JjTlgSy_OSEm906wd2LB?e=GOSg14"),
        "aic": ((0.319, 0.363), "AimBgYV7JjTlgSlvdVaXTC92SHYH?e=j7iqcp"),
        "crowdpose": ((0.747, 0.633), "AimBgYV7JjTlgStrrCb91cPlaxJx?e=6Xobo6"),
    },
    "large": {
        "coco": ((0.791, 0.841), "AimBgYV7JjTlgTBm3dCVmBUbHYT6?e=fHUrTq"),
        "ochuman": (0.915, 0.928),
        "mpii": (0.939, "AimBgYV7JjTlgTM32I6Kpjr-esl6?e=qvh0Yl"),
        "aic": ((0.346, 0.390), "AimBgYV7JjTlgTF06FX3FSAm0MOH?e=rYts9F"),
        "crowdpose": ((0.766, 0.659), "AimBgYV7JjTlgTK3dug-r7c6GFyu?e=1ZBpEG"),
    },
    "huge": {
        "coco": ((0.798, 0.848), "AimBgYV7JjTlgS5rLeRAJiWobCdh?e=41GsDd"),
        "ochuman": (0.916, 0.928),
        "mpii": (0.941, "AimBgYV7JjTlgTT90XEQBKy-scIH?e=D2WhTS"),
        "aic": ((0.353, 0.398), "AimBgYV7JjTlgS1MRmb2mcow_K04?e=q9jPab"),
        "crowdpose": ((0.763, 0.656), "AimBgYV7JjTlgS-oAvEV4MTD--Xr?e=EeW2Fu"),
    },
}
# HF hub copies (public-data/ViTPose, LFS sha256). The mpii digest is the
# prefix shown in the hub's commit view (the full digest was not readable).
_MULTI4_MIRRORS = {
    ("base", "coco"): "595b5e128b2fe6e4364d8fa9cb9a2fd0f9710301b08ea0daa5f2903595bbab27",
    ("base", "aic"): "b38cba796d786d5558209b14dd1d60a7cd3341bbc380745ce670fbe86eb9a44a",
    ("base", "mpii"): "92424e3c6a814e89096796e6c",
    ("base", "crowdpose"): "5b3c2fb5dda4ea01f6f345e2e489c9a06cd6bb22e611c97a98f0f7db60581ccd",
    ("large", "coco"): "9475d27cece040bca5c4141682de63d13917f64f358d86edd40a808b0701f8b3",
    ("large", "aic"): "3e1be9641e703fc6015d5d4df372c9ee3adf078e81fba0824f076b24053ce221",
    ("large", "mpii"): "57eab07b6d19b529df393f47194e906618cbb5f756bdb40f3a9e427734da86d4",
    ("large", "crowdpose"): "42f1ab941d060f81c8940b286ca9079ebff5bb7ba4512cd9047ba4aed4f05fd0",
}

# mmpose 1.x COCO releases (vitpose_coco.md / .yml): file stem, hash prefix,
# date, AP, AP50, AP75, AR, AR50.
_MMPOSE_COCO = {
    ("small", "classic"): ("td-hm_ViTPose-small_8xb64-210e_coco-256x192", "62d7a712", "20230314", 0.739, 0.903, 0.816, 0.792, 0.942),
    ("base", "classic"): ("td-hm_ViTPose-base_8xb64-210e_coco-256x192", "216eae50", "20230314", 0.757, 0.905, 0.829, 0.810, 0.946),
    ("large", "classic"): ("td-hm_ViTPose-large_8xb64-210e_coco-256x192", "53609f55", "20230314", 0.782, 0.914, 0.850, 0.834, 0.952),
    ("huge", "classic"): ("td-hm_ViTPose-huge_8xb64-210e_coco-256x192", "e32adcd4", "20230314", 0.788, 0.917, 0.855, 0.839, 0.954),
    ("small", "simple"): ("td-hm_ViTPose-small-simple_8xb64-210e_coco-256x192", "4c101a76", "20230314", 0.736, 0.900, 0.811, 0.790, 0.940),
    ("base", "simple"): ("td-hm_ViTPose-base-simple_8xb64-210e_coco-256x192", "0b8234ea", "20230407", 0.756, 0.906, 0.826, 0.809, 0.946),
    ("large", "simple"): ("td-hm_ViTPose-large-simple_8xb64-210e_coco-256x192", "3a7ee9e1", "20230314", 0.781, 0.914, 0.853, 0.833, 0.952),
    ("huge", "simple"): ("td-hm_ViTPose-huge-simple_8xb64-210e_coco-256x192", "ffd48c05", "20230314", 0.789, 0.916, 0.856, 0.839, 0.953),
}

# mmpose 1.x Human-Art + COCO releases (vitpose_humanart.md): stem, hash,
# date, Human-Art val (detector AP 56.2) AP/AP50/AP75/AR/AR50, Human-Art GT
# boxes AP/AR, COCO val AP/AR.
_MMPOSE_HUMANART = {
    "small": ("td-hm_ViTPose-small_8xb64-210e_humanart-256x192", "5cbe2bfc", "20230611",
              (0.381, 0.532, 0.405, 0.448, 0.602), (0.738, 0.768), (0.737, 0.792)),
    "base": ("td-hm_ViTPose-base_8xb64-210e_humanart-256x192", "b417f546", "20230611",
             (0.410, 0.549, 0.434, 0.475, 0.615), (0.759, 0.790), (0.758, 0.812)),
    "large": ("td-hm_ViTPose-large_8xb64-210e_humanart-256x192", "9aba9345", "20230614",
              (0.459, 0.592, 0.487, 0.525, 0.656), (0.789, 0.819), (0.782, 0.835)),
    "huge": ("td-hm_ViTPose-huge_8xb64-210e_humanart-256x192", "603bb573", "20230612",
             (0.468, 0.594, 0.498, 0.534, 0.655), (0.800, 0.828), (0.788, 0.841)),
}

# ViTPose++ (README, bold "ViTPose++" rows): per dataset, per size.
_PLUS_ACCURACY = {
    "coco": {"small": (0.758, 0.826), "base": (0.770, 0.826), "large": (0.786, 0.841), "huge": (0.794, 0.848)},
    "ochuman": {"small": (0.784, 0.806), "base": (0.826, 0.848), "large": (0.857, 0.875), "huge": (0.857, 0.874)},
    "mpii": {"small": 0.927, "base": 0.928, "large": 0.940, "huge": 0.942},
    "aic": {"small": (0.297, 0.343), "base": (0.318, 0.363), "large": (0.343, 0.389), "huge": (0.348, 0.391)},
    "ap10k": {"small": 0.714, "base": 0.745, "large": 0.804, "huge": 0.824},
    "apt36k": {"small": 0.742, "base": 0.759, "large": 0.808, "huge": 0.823},
    "coco_wholebody": {"small": 0.544, "base": 0.574, "large": 0.606, "huge": 0.612},
}
_PLUS_ONEDRIVE = {
    "small": "AimBgYV7JjTlgccrwORr61gT9E4n8g?e=kz9sz5",
    "base": "AimBgYV7JjTlgcckRZk1bIAuRa_E1w?e=ylDB2G",
    "large": "AimBgYV7JjTlgccs1SNFUGSTsmRJ8w?e=a9zKwZ",
    "huge": "AimBgYV7JjTlgccoXv8rCUgVe7oD9Q?e=ZBw6gR",
}
# nielsr/vitpose-original-checkpoints file names (from transformers'
# convert_vitpose_to_hf.py) and LFS sha256 where the hub page was found.
_PLUS_FILES = {
    "small": ("vitpose+_small.pth", "75df941cd7ae632a7b0abb136d6c11c9f967643f9ea4a1dd52cf6b642b1eb8f3"),
    "base": ("vitpose+_base.pth", "de043d2ea25a8bcffeb8ea278a68f52e487b918866b629efb2f894b15fdb3545"),
    "large": ("vitpose+_large.pth", None),
    "huge": ("vitpose+_huge.pth", None),
}

_DATASET_TITLES = {
    "coco": "COCO",
    "aic": "AI Challenger",
    "mpii": "MPII",
    "ap10k": "AP-10K",
    "apt36k": "APT-36K",
    "coco_wholebody": "COCO-WholeBody",
    "crowdpose": "CrowdPose",
}


def _plus_accuracy(size, dataset):
    src = SRC_README + ", ViTPose++ rows"
    if dataset == "coco":
        ap, ar = _PLUS_ACCURACY["coco"][size]
        oap, oar = _PLUS_ACCURACY["ochuman"][size]
        return _coco_ap(ap, ar, src, additional=[
            {"dataset": "OCHuman test", "metric": "AP", "AP": oap, "AR": oar, "detector": "ground-truth boxes",
             "source": src},
        ])
    if dataset == "mpii":
        return {"dataset": "MPII val", "metric": "PCKh", "PCKh": _PLUS_ACCURACY["mpii"][size],
                "detector": "ground-truth boxes", "source": src}
    if dataset == "aic":
        ap, ar = _PLUS_ACCURACY["aic"][size]
        return {"dataset": "AI Challenger test", "metric": "AP", "AP": ap, "AR": ar,
                "detector": "ground-truth boxes", "source": src}
    if dataset == "ap10k":
        return {"dataset": "AP-10K test", "metric": "AP", "AP": _PLUS_ACCURACY["ap10k"][size],
                "detector": "ground-truth boxes", "source": src}
    if dataset == "apt36k":
        return {"dataset": "APT-36K val", "metric": "AP", "AP": _PLUS_ACCURACY["apt36k"][size],
                "detector": "ground-truth boxes", "source": src}
    if dataset == "coco_wholebody":
        return {"dataset": "COCO-WholeBody val", "metric": "AP", "AP": _PLUS_ACCURACY["coco_wholebody"][size],
                "detector": COCO_DET, "source": src}
    raise KeyError(dataset)


# --------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------
def _single_task_entries():
    entries = []
    for size in SIZES:
        for decoder in ("classic", "simple"):
            ap, ar, share = _SINGLE_TASK[(size, decoder)]
            suffix = "_simple" if decoder == "simple" else ""
            onedrive = _onedrive(share)
            mirror = _SINGLE_TASK_MIRRORS.get((size, decoder))
            notes = [f"Original release (OneDrive): {onedrive}."]
            if mirror:
                url, file_name, sha, where = mirror
                notes.append(f"Downloaded from the {where}; sha256 is the hub's LFS digest.")
            else:
                url, file_name, sha = onedrive, _SINGLE_TASK_LOCAL_NAMES[(size, decoder)], None
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
                    config=_config(size, decoder),
                    preprocessing=imagenet_preprocessing(),
                    decoding=_udp_decoding(ORIG_UDP),
                    source_url=url,
                    file_name=file_name,
                    sha256=sha,
                    checkpoint_format="vitpose_original",
                    license=APACHE,
                    published_accuracy=_coco_ap(
                        ap, ar, SRC_README + f", single-task table, {decoder} decoder, ViTPose-{LETTER[size]}"
                    ),
                    notes=" ".join(notes),
                )
            )
    return entries


def _multi3_entries():
    entries = []
    for size, (coco, ochuman, mpii, aic, share) in _MULTI3.items():
        onedrive = _onedrive(share)
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
                config=_config(size, "classic"),
                preprocessing=imagenet_preprocessing(),
                decoding=_udp_decoding(ORIG_UDP),
                source_url=url,
                file_name=file_name,
                sha256=sha,
                checkpoint_format="vitpose_original",
                license=APACHE,
                published_accuracy=_coco_ap(
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
    facts = _MULTI4[size]
    src = SRC_README + f", multi-task table (COCO+AIC+MPII+CrowdPose), ViTPose-{LETTER[size]}*"
    if dataset == "coco":
        (ap, ar), _ = facts["coco"]
        oap, oar = facts["ochuman"]
        return _coco_ap(ap, ar, src, additional=[
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
            share = _MULTI4[size][dataset][1]
            onedrive = _onedrive(share)
            release_name = f"vitpose-{LETTER[size].lower()}-multi-{dataset}.pth"
            sha = _MULTI4_MIRRORS.get((size, dataset))
            notes = [
                f"Original release (OneDrive): {onedrive}. Multi-task training on COCO+AIC+MPII+CrowdPose "
                "(the README's '*' models; the authors warn that CrowdPose train may share images with other "
                "datasets' validation sets)."
            ]
            if (size, dataset) in _MULTI4_MIRRORS:
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
                        f"{_DATASET_TITLES[dataset]} head, 256x192"
                    ),
                    config=_config(size, "classic", keypoint_spec=_MULTI4_SPECS[dataset]),
                    preprocessing=imagenet_preprocessing(),
                    decoding=_dataset_decoding(dataset),
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
    for (size, decoder), (stem, prefix, date, ap, ap50, ap75, ar, ar50) in _MMPOSE_COCO.items():
        suffix = "_simple" if decoder == "simple" else ""
        file_name = f"{stem}-{prefix}_{date}.pth"
        entries.append(
            PresetEntry(
                name=f"vitpose_{size}{suffix}_coco_256x192_mmpose",
                family="vitpose",
                task_class="ViTPose",
                description=f"ViTPose-{LETTER[size]} ({decoder} decoder), COCO, 256x192; mmpose 1.x re-training",
                config=_config(size, decoder),
                preprocessing=imagenet_preprocessing(),
                decoding=_udp_decoding(MMPOSE_UDP),
                source_url=MMPOSE_ROOT + "coco/" + file_name,
                file_name=file_name,
                sha256=prefix,
                checkpoint_format="mmpose",
                license=APACHE,
                published_accuracy=_coco_ap(
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
            config=_config("huge", "classic"),
            preprocessing=imagenet_preprocessing(),
            decoding=_udp_decoding(MMPOSE_UDP),
            source_url=MMPOSE_ROOT + "coco/" + file_name,
            file_name=file_name,
            sha256="5b738c8e",
            checkpoint_format="mmpose",
            license=APACHE,
            published_accuracy=_coco_ap(
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
    for size, (stem, prefix, date, ha, ha_gt, coco) in _MMPOSE_HUMANART.items():
        file_name = f"{stem}-{prefix}_{date}.pth"
        src = SRC_MMPOSE_HUMANART + f", ViTPose-{LETTER[size]}-humanart-coco rows"
        entries.append(
            PresetEntry(
                name=f"vitpose_{size}_humanart_coco_256x192_mmpose",
                family="vitpose",
                task_class="ViTPose",
                description=f"ViTPose-{LETTER[size]} (classic decoder), Human-Art + COCO, 256x192; mmpose 1.x",
                config=_config(size, "classic"),
                preprocessing=imagenet_preprocessing(),
                decoding=_udp_decoding(MMPOSE_UDP),
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
            "LFS sha256 of this repo was not found, so the download is not digest-checked. The backbone "
            "config omits layer_norm_epsilon on purpose: HF conversions carry layer_norm_eps=1e-12 (the HF "
            "default, not the original 1e-6) and the converter takes it from config.json. " + notes
        ),
    )


def _hf_entries():
    entries = []
    for decoder, repo in (("classic", "usyd-community/vitpose-base"), ("simple", "usyd-community/vitpose-base-simple")):
        ap, ar, _ = _SINGLE_TASK[("base", decoder)]
        suffix = "_simple" if decoder == "simple" else ""
        entries.append(
            _hf_entry(
                name=f"vitpose_base{suffix}_coco_256x192_hf",
                family="vitpose",
                task_class="ViTPose",
                description=f"ViTPose-B ({decoder} decoder), COCO, 256x192; HF transformers safetensors",
                repo=repo,
                config=_config("base", decoder, layer_norm_epsilon=None),
                decoding=_udp_decoding(ORIG_UDP),
                accuracy=_coco_ap(ap, ar, SRC_README + f", single-task table, {decoder} decoder, ViTPose-B "
                                  "(weights converted from that release)"),
                notes=f"Converted from vitpose{'-b-simple' if decoder == 'simple' else '-b'}.pth "
                f"(preset vitpose_base{suffix}_coco_256x192).",
            )
        )
    coco, _, _, _, _ = _MULTI3["base"]
    entries.append(
        _hf_entry(
            name="vitpose_base_coco_aic_mpii_256x192_hf",
            family="vitpose",
            task_class="ViTPose",
            description="ViTPose-B multi-task COCO+AIC+MPII, COCO head, 256x192; HF transformers safetensors",
            repo="usyd-community/vitpose-base-coco-aic-mpii",
            config=_config("base", "classic", layer_norm_epsilon=None),
            decoding=_udp_decoding(ORIG_UDP),
            accuracy=_coco_ap(coco[0], coco[1], SRC_README + ", multi-task table (COCO+AIC+MPII), ViTPose-B "
                              "(weights converted from that release)"),
            notes="Converted from vitpose_base_coco_aic_mpii.pth (preset vitpose_base_coco_aic_mpii_256x192); "
            "HF keeps the COCO head only.",
        )
    )
    for size in SIZES:
        ap, ar = _PLUS_ACCURACY["coco"][size]
        entries.append(
            _hf_entry(
                name=f"vitpose_plus_{size}_coco_256x192_hf",
                family="vitpose_plus",
                task_class="ViTPosePP",
                description=f"ViTPose++-{LETTER[size]} (6 experts, COCO head only), 256x192; HF transformers",
                repo=f"usyd-community/vitpose-plus-{size}",
                config=_config(size, "classic", layer_norm_epsilon=None, plus=True, datasets=["coco"]),
                decoding=_udp_decoding(ORIG_UDP),
                accuracy=_coco_ap(ap, ar, SRC_README + f", ViTPose++-{LETTER[size]} row (weights converted from "
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
    file_name, sha = _PLUS_FILES[size]
    url = NIELSR + file_name.replace("+", "%2B")
    notes = (
        f"Original release (OneDrive): {_onedrive(_PLUS_ONEDRIVE[size])}. Downloaded from the HF hub copy "
        "nielsr/vitpose-original-checkpoints"
        + ("; sha256 is the hub's LFS digest." if sha else "; its LFS sha256 was not found, so the download "
           "is not digest-checked (the file name comes from transformers' convert_vitpose_to_hf.py).")
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
        coco_acc = _plus_accuracy(size, "coco")
        per_dataset = {d: _plus_accuracy(size, d) for d in PLUS_DATASETS}
        entries.append(
            PresetEntry(
                name=f"vitpose_plus_{size}",
                family="vitpose_plus",
                task_class="ViTPosePP",
                description=f"ViTPose++-{LETTER[size]}, all 6 dataset experts and heads, 256x192",
                config=_config(size, "classic", keypoint_spec="coco", plus=True),
                preprocessing=imagenet_preprocessing(),
                decoding=_dataset_decoding("coco"),
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
                    description=f"ViTPose++-{LETTER[size]}, {_DATASET_TITLES[dataset]} expert and head, 256x192",
                    config=_config(size, "classic", keypoint_spec=dataset, plus=True),
                    preprocessing=imagenet_preprocessing(),
                    decoding=_dataset_decoding(dataset),
                    source_url=url,
                    file_name=file_name,
                    sha256=sha,
                    checkpoint_format="vitpose_original",
                    license=APACHE,
                    published_accuracy=_plus_accuracy(size, dataset),
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
