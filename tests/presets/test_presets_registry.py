"""The built-in preset definitions (presets/vitpose_presets.py) and registry."""

import re

import pytest

from keras_pose.errors import PresetError
from keras_pose.preset_registry import CHECKPOINT_FORMATS
from keras_pose.preset_registry import PresetEntry
from keras_pose.preset_registry import find_preset_by_url
from keras_pose.preset_registry import get_preset_entry
from keras_pose.preset_registry import is_registered
from keras_pose.preset_registry import list_presets
from keras_pose.presets.vitpose_presets import PRESETS as VITPOSE_PRESETS

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
SIZES = ("small", "base", "large", "huge")
PLUS_DATASETS = ("coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody")
WIDTHS = {"small": 384, "base": 768, "large": 1024, "huge": 1280}
DEPTHS = {"small": 12, "base": 12, "large": 24, "huge": 32}
PART_FEATURES = {"small": 96, "base": 192, "large": 256, "huge": 320}
KEYPOINTS = {"coco": 17, "aic": 14, "mpii": 16, "ap10k": 17, "apt36k": 17, "coco_wholebody": 133, "crowdpose": 14}


def _vitpose_entries():
    return [e for e in list_presets() if e.family in ("vitpose", "vitpose_plus")]


def test_names_are_well_formed_and_unique():
    names = [e.name for e in VITPOSE_PRESETS]
    assert len(names) == len(set(names)), "duplicate preset names"
    for name in names:
        assert NAME_RE.match(name), name
        assert name.startswith(("vitpose_", "vitpose_plus_"))
    registered = {e.name for e in list_presets()}
    assert set(names) <= registered


def test_every_entry_is_complete():
    for e in _vitpose_entries():
        assert e.source_url.startswith("https://"), e.name
        assert e.file_name and "/" not in e.file_name, e.name
        assert e.license == "Apache-2.0", e.name
        assert e.task_class in ("ViTPose", "ViTPosePP"), e.name
        assert e.checkpoint_format in CHECKPOINT_FORMATS, e.name
        assert e.description, e.name
        assert e.preprocessing["channel_order"] == "rgb"
        assert e.preprocessing["mean"] == pytest.approx([123.675, 116.28, 103.53])
        assert e.preprocessing["std"] == pytest.approx([58.395, 57.12, 57.375])
        assert e.decoding["codec"]["type"] in ("UDPHeatmap", "MSRAHeatmap"), e.name
        assert e.decoding["flip_test"] is True, e.name
        assert e.decoding["padding"] == 1.25, e.name
        # UDP decoding never shifts flipped heatmaps; the non-UDP evaluation configs do.
        assert e.decoding["shift_heatmap"] == (e.decoding["codec"]["type"] == "MSRAHeatmap"), e.name
        if e.sha256 is not None:
            assert re.fullmatch(r"[0-9a-f]{8,64}", e.sha256), e.name
        if e.checkpoint_format == "hf_safetensors":
            assert set(e.extra_files) == {"config.json"}, e.name
            assert e.extra_files["config.json"].endswith("/resolve/main/config.json")
        if "1drv.ms" in e.source_url:
            assert e.sha256 is None and "by hand" in e.notes, e.name


def test_configs_match_the_variants():
    for e in _vitpose_entries():
        size = next(s for s in SIZES if f"_{s}" in e.name)
        backbone = e.config  # flat: from_checkpoint_config arguments
        assert backbone["hidden_dim"] == WIDTHS[size], e.name
        assert backbone["num_layers"] == DEPTHS[size], e.name
        assert backbone["mlp_dim"] == 4 * WIDTHS[size], e.name
        assert backbone["patch_size"] == 16 and backbone["patch_padding"] == 2 and backbone["qkv_bias"] is True
        if e.checkpoint_format != "hf_safetensors":
            assert backbone["layer_norm_epsilon"] == 1e-6, e.name
        assert e.config["image_size"] == [256, 192], e.name
        assert e.decoding["codec"]["input_size"] == [256, 192]
        assert e.decoding["codec"]["heatmap_size"] == [64, 48]
        assert e.config["decoder"] == ("simple" if "_simple_" in e.name else "classic"), e.name
        assert e.config["keypoint_spec"] in KEYPOINTS, e.name
        match = re.search(r"_(\d+)x(\d+)(_|$)", e.name)
        if match:
            assert [int(match.group(1)), int(match.group(2))] == e.config["image_size"], e.name
        if e.family == "vitpose_plus":
            assert e.task_class == "ViTPosePP"
            assert e.config["num_experts"] == 6
            assert e.config["part_features"] == PART_FEATURES[size], e.name
        else:
            assert e.task_class == "ViTPose"
            assert "num_experts" not in e.config


def test_core_presets_exist():
    for size in SIZES:
        for name in (
            f"vitpose_{size}_coco_256x192",
            f"vitpose_{size}_simple_coco_256x192",
            f"vitpose_{size}_coco_256x192_mmpose",
            f"vitpose_{size}_simple_coco_256x192_mmpose",
            f"vitpose_plus_{size}",
            f"vitpose_plus_{size}_coco_256x192_hf",
        ):
            assert is_registered(name), name
        multi = get_preset_entry(f"vitpose_plus_{size}")
        assert multi.dataset is None
        assert multi.config["datasets"] == list(PLUS_DATASETS)
        assert multi.published_accuracy["per_dataset"].keys() == set(PLUS_DATASETS)
        for dataset in PLUS_DATASETS:
            expert = get_preset_entry(f"vitpose_plus_{size}_{dataset}_256x192")
            assert expert.dataset == dataset
            assert expert.config["keypoint_spec"] == dataset
            assert expert.config["datasets"] == list(PLUS_DATASETS)
            # Every expert preset converts the same released multi-dataset file.
            assert (expert.source_url, expert.file_name, expert.sha256) == (
                multi.source_url,
                multi.file_name,
                multi.sha256,
            )
    for size in ("base", "large", "huge"):
        assert is_registered(f"vitpose_{size}_coco_aic_mpii_256x192")
        for dataset in ("coco", "aic", "mpii", "crowdpose"):
            e = get_preset_entry(f"vitpose_{size}_multi_{dataset}_256x192")
            assert e.config["keypoint_spec"] == dataset
    for name in ("vitpose_base_coco_256x192_hf", "vitpose_base_simple_coco_256x192_hf",
                 "vitpose_base_coco_aic_mpii_256x192_hf", "vitpose_huge_coco_256x192_mmpose_3rdparty"):
        assert is_registered(name), name


def test_published_accuracy():
    for e in _vitpose_entries():
        acc = e.published_accuracy
        assert acc["source"] and acc["dataset"] and acc["detector"], e.name
        metric = acc["metric"]
        assert 0.0 < acc[metric] <= 1.0, e.name
        for other in acc.get("additional", []):
            assert 0.0 < other[other["metric"]] <= 1.0
    # Spot checks against the release tables.
    assert get_preset_entry("vitpose_base_coco_256x192").published_accuracy["AP"] == 0.758
    assert get_preset_entry("vitpose_huge_coco_256x192").published_accuracy["AR"] == 0.841
    assert get_preset_entry("vitpose_small_coco_256x192_mmpose").published_accuracy["AP"] == 0.739
    assert get_preset_entry("vitpose_plus_large_ap10k_256x192").published_accuracy["AP"] == 0.804
    assert get_preset_entry("vitpose_plus_small_mpii_256x192").published_accuracy["PCKh"] == 0.927
    assert get_preset_entry("vitpose_plus_huge_coco_wholebody_256x192").published_accuracy["AP"] == 0.612
    assert get_preset_entry("vitpose_base_multi_crowdpose_256x192").published_accuracy["AP_hard"] == 0.633


def test_decoding_follows_the_evaluation_configs():
    udp = get_preset_entry("vitpose_base_coco_256x192").decoding
    assert udp["codec"] == {"type": "UDPHeatmap", "input_size": [256, 192], "heatmap_size": [64, 48],
                            "sigma": 2.0, "blur_kernel_size": 11}
    assert "use_udp=True" in udp["reference"] and "modulate_kernel=11" in udp["reference"]
    assert get_preset_entry("vitpose_plus_base_mpii_256x192").decoding["codec"]["type"] == "UDPHeatmap"
    for dataset in ("aic", "ap10k", "apt36k", "coco_wholebody"):
        decoding = get_preset_entry(f"vitpose_plus_base_{dataset}_256x192").decoding
        assert decoding["codec"]["type"] == "MSRAHeatmap" and decoding["shift_heatmap"] is True


def test_mmpose_hash_prefixes_come_from_the_file_names():
    mmpose = [e for e in _vitpose_entries() if e.checkpoint_format == "mmpose"]
    assert len(mmpose) == 13
    for e in mmpose:
        assert e.source_url.startswith("https://download.openmmlab.com/mmpose/v1/")
        assert e.source_url.endswith("/" + e.file_name)
        assert re.fullmatch(r"[0-9a-f]{8}", e.sha256)
        assert f"-{e.sha256}_" in e.file_name


def test_full_digests_where_the_hub_publishes_them():
    full = {
        "vitpose_small_coco_256x192": "43eba5e4",
        "vitpose_base_coco_256x192": "2e849e1f",
        "vitpose_base_simple_coco_256x192": "1d60b1e8",
        "vitpose_large_coco_256x192": "c79ff0cb",
        "vitpose_base_coco_aic_mpii_256x192": "995bde40",
        "vitpose_plus_small": "75df941c",
        "vitpose_plus_base": "de043d2e",
    }
    for name, start in full.items():
        sha = get_preset_entry(name).sha256
        assert len(sha) == 64 and sha.startswith(start), name


def test_find_preset_by_url():
    e = get_preset_entry("vitpose_small_coco_256x192_mmpose")
    assert find_preset_by_url(e.source_url) is e
    assert find_preset_by_url("https://mirror.example/" + e.file_name) is e
    plus = find_preset_by_url(get_preset_entry("vitpose_plus_small_ap10k_256x192").source_url)
    assert plus.name == "vitpose_plus_small"  # the multi-dataset preset owns the shared file
    assert find_preset_by_url("https://example.com/unknown.pth") is None


def test_registry_rejects_bad_entries():
    entry = get_preset_entry("vitpose_base_coco_256x192")
    with pytest.raises(PresetError):
        PresetEntry(**{**entry.to_dict(), "name": "Bad-Name"})
    with pytest.raises(PresetError):
        PresetEntry(**{**entry.to_dict(), "sha256": "XYZ"})
    with pytest.raises(PresetError):
        PresetEntry(**{**entry.to_dict(), "checkpoint_format": "onnx"})


def test_list_presets_filters():
    plus = list_presets(family="vitpose_plus")
    assert plus and all(e.family == "vitpose_plus" for e in plus)
    assert [e.name for e in plus] == sorted(e.name for e in plus)
    assert all(e.task_class == "ViTPose" for e in list_presets(task_class="ViTPose"))
