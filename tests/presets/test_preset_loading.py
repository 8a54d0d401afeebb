"""Preset resolution end to end: registry -> download -> convert -> cache -> load.

A tiny ViTPose checkpoint in the original ViTAE-Transformer layout (hidden 32,
2 layers, 2 heads, 64x48 input, simple decoder, 17 keypoints; key names as in
tests/golden/vitpose/vitpose_small_simple/keys.json) is served from a
local HTTP server; nothing touches the real network.
"""

import hashlib
import json
import os
import pathlib

import numpy as np
import pytest

from keras_pose import preset_registry
from keras_pose.errors import DownloadError
from keras_pose.errors import PresetError
from keras_pose import preset_cache
from keras_pose import preset_loading
from keras_pose.preset_cache import resolve_preset
from keras_pose.preset_loading import load_preset
from keras_pose.preset_registry import PresetEntry

from pose_testing.tiny_checkpoints import TINY_BACKBONE, make_tiny_state_dict, needs_converter, save_original_checkpoint, tiny_entry

@pytest.fixture
def tiny_checkpoint(server):
    path = save_original_checkpoint(server.root / "tiny_vitpose.pth", make_tiny_state_dict())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, f"{server.url}/tiny_vitpose.pth", digest


@pytest.fixture
def registered(tiny_checkpoint):
    """The tiny preset in the registry for the duration of one test."""
    preset_registry.list_presets()  # load the built-in presets first
    path, url, digest = tiny_checkpoint
    entry = tiny_entry(url, digest)
    preset_registry.register_presets([entry])
    yield entry, path
    preset_registry._REGISTRY.pop(entry.name, None)


PLUS_DATASETS = ["coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody"]
PLUS_KEYPOINTS = [17, 14, 16, 17, 17, 133]


def make_tiny_plus_state_dict(part_features=8, seed=1):
    """A tiny ViTPose++ multi-dataset file: 6 experts per MLP, 6 heads."""
    rng = np.random.default_rng(seed)
    sd = make_tiny_state_dict(seed=seed)
    hidden = TINY_BACKBONE["hidden_dim"]
    for i in range(TINY_BACKBONE["num_layers"]):
        b = f"backbone.blocks.{i}.mlp."
        sd[b + "fc2.weight"] = rng.normal(0, 0.05, (hidden - part_features, 4 * hidden)).astype(np.float32)
        sd[b + "fc2.bias"] = rng.normal(0, 0.05, (hidden - part_features,)).astype(np.float32)
        for e in range(6):
            sd[b + f"experts.{e}.weight"] = rng.normal(0, 0.05, (part_features, 4 * hidden)).astype(np.float32)
            sd[b + f"experts.{e}.bias"] = rng.normal(0, 0.05, (part_features,)).astype(np.float32)
    for i, k in enumerate(PLUS_KEYPOINTS[1:]):
        sd[f"associate_keypoint_heads.{i}.final_layer.weight"] = rng.normal(0, 0.05, (k, hidden, 3, 3)).astype(
            np.float32
        )
        sd[f"associate_keypoint_heads.{i}.final_layer.bias"] = rng.normal(0, 0.05, (k,)).astype(np.float32)
    return sd


def tiny_plus_entry(url, sha256, name, dataset=None):
    base = tiny_entry(url, sha256, name=name, file_name="tiny_plus.pth")
    config = dict(base.config)
    config.update({"num_experts": 6, "part_features": 8, "datasets": list(PLUS_DATASETS),
                   "keypoint_spec": dataset or "coco"})
    return PresetEntry(**{**base.to_dict(), "family": "vitpose_plus", "task_class": "ViTPosePP",
                          "config": config, "dataset": dataset})


def _images():
    return np.random.default_rng(7).normal(size=(2, 64, 48, 3)).astype("float32")


def _heatmaps(model, x):
    return np.asarray(model.predict_on_batch(x), dtype=np.float32)


# --------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------
@needs_converter
def test_from_preset_downloads_converts_caches(registered, server, home):
    from keras_pose.conversion import convert_checkpoint

    entry, path = registered
    model = load_preset(entry.name)
    assert type(model).__name__ == "ViTPose"
    assert server.requests == ["/tiny_vitpose.pth"]

    cached = home / "presets" / entry.name
    assert (cached / "config.json").is_file() and (cached / "task.json").is_file()
    meta = json.loads((cached / "keras_pose_preset.json").read_text())
    assert meta["preset"] == entry.name
    assert meta["source_url"] == entry.source_url
    assert meta["sha256"] == entry.sha256
    assert meta["license"] == "Apache-2.0"
    assert meta["converted_from"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["keras_pose_version"]

    # Second call: served from the cache, no request.
    again = load_preset(entry.name)
    assert server.requests == ["/tiny_vitpose.pth"]
    assert resolve_preset(entry.name) == str(cached)

    # Same outputs as a direct conversion of the file.
    direct = convert_checkpoint(str(path), preset=entry)
    x = _images()
    expected = _heatmaps(direct, x)
    assert expected.shape == (2, 16, 12, 17)
    np.testing.assert_allclose(_heatmaps(model, x), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(_heatmaps(again, x), expected, rtol=0, atol=1e-6)
    assert model.decoding["flip_test"] is True


@needs_converter
def test_cached_preset_loads_offline(registered, server, home, monkeypatch):
    entry, _ = registered
    resolve_preset(entry.name)
    monkeypatch.setenv("KERAS_POSE_OFFLINE", "1")
    model = load_preset(entry.name)
    assert type(model).__name__ == "ViTPose"
    # The task class's own from_preset resolves registered names the same way.
    from keras_pose.models.vitpose.vitpose_pose_estimator import ViTPose

    assert isinstance(ViTPose.from_preset(entry.name), ViTPose)
    assert server.requests == ["/tiny_vitpose.pth"]


@needs_converter
def test_url_of_registered_checkpoint(registered, server, home):
    entry, _ = registered
    directory = resolve_preset(entry.source_url)
    expected_dir = home / "presets" / ("url-" + hashlib.sha1(entry.source_url.encode()).hexdigest())
    assert directory == str(expected_dir)
    meta = json.loads((expected_dir / "keras_pose_preset.json").read_text())
    assert meta["preset"] == entry.name  # matched through find_preset_by_url
    assert resolve_preset(entry.source_url) == directory
    assert server.requests == ["/tiny_vitpose.pth"]


@needs_converter
def test_file_url_and_local_file_without_entry(tmp_path, home):
    # 384 wide is a standard ViTPose width, so the head count is inferred.
    path = save_original_checkpoint(
        tmp_path / "loose" / "vit_s_1layer.pth", make_tiny_state_dict(hidden=384, layers=1, grid=(16, 12))
    )
    directory = resolve_preset(path.as_uri())
    meta = json.loads(pathlib.Path(directory, "keras_pose_preset.json").read_text())
    assert meta["preset"] is None and meta["family"] == "vitpose"
    model = load_preset(str(path))  # a local checkpoint file resolves the same way
    assert model.image_size == (256, 192)


@needs_converter
def test_vitpose_plus_dataset_selection(server, home):
    preset_registry.list_presets()
    path = save_original_checkpoint(server.root / "tiny_plus.pth", make_tiny_plus_state_dict())
    url, digest = f"{server.url}/tiny_plus.pth", hashlib.sha256(path.read_bytes()).hexdigest()
    multi = tiny_plus_entry(url, digest, "test_tiny_plus")
    expert = tiny_plus_entry(url, digest, "test_tiny_plus_mpii_64x48", dataset="mpii")
    preset_registry.register_presets([multi, expert])
    try:
        x = _images()
        default = load_preset(multi.name)
        assert type(default).__name__ == "ViTPosePP"
        assert _heatmaps(default, x).shape == (2, 16, 12, 17)  # COCO head by default
        mpii = load_preset(multi.name, dataset="mpii")
        assert _heatmaps(mpii, x).shape == (2, 16, 12, 16)
        assert (home / "presets" / "test_tiny_plus-mpii" / "config.json").is_file()
        same = load_preset(expert.name)
        np.testing.assert_allclose(_heatmaps(same, x), _heatmaps(mpii, x), rtol=0, atol=1e-6)
        # A converted multi-dataset directory switches dataset at load time.
        aic = load_preset(str(home / "presets" / multi.name), dataset="aic")
        assert aic.dataset == "aic" and _heatmaps(aic, x).shape == (2, 16, 12, 14)
        # Three conversions, one download of the shared file.
        assert server.requests == ["/tiny_plus.pth"]
        with pytest.raises(PresetError, match="no dataset"):
            load_preset(multi.name, dataset="horses")
    finally:
        for entry in (multi, expert):
            preset_registry._REGISTRY.pop(entry.name, None)


def test_registered_download_checks_sha256(tiny_checkpoint, home):
    preset_registry.list_presets()
    _, url, digest = tiny_checkpoint
    bad = tiny_entry(url, "0" * 64, name="test_tiny_bad_sha")
    preset_registry.register_presets([bad])
    try:
        with pytest.raises(DownloadError) as info:
            resolve_preset(bad.name)
        assert digest in str(info.value)
        assert not (home / "presets" / bad.name).exists()
        checkpoints = home / "checkpoints"
        assert not any(p.is_file() for p in checkpoints.rglob("*")) if checkpoints.exists() else True
    finally:
        preset_registry._REGISTRY.pop(bad.name, None)


def test_offline_registered_preset_fails_fast(registered, server, home, monkeypatch):
    entry, _ = registered
    monkeypatch.setenv("KERAS_POSE_OFFLINE", "1")
    with pytest.raises(DownloadError, match="KERAS_POSE_OFFLINE"):
        resolve_preset(entry.name)
    assert server.requests == []


def test_onedrive_only_preset_asks_for_manual_download(home):
    with pytest.raises(DownloadError) as info:
        resolve_preset("vitpose_huge_coco_256x192")
    message = str(info.value)
    assert "keras-pose convert --preset vitpose_huge_coco_256x192" in message
    assert str(home / "checkpoints") in message  # where to put the file by hand


# --------------------------------------------------------------------------
# Other preset arguments
# --------------------------------------------------------------------------
def test_unknown_preset_suggests_close_names(home):
    with pytest.raises(PresetError) as info:
        resolve_preset("vitpose_base_coco_256x19")
    assert "vitpose_base_coco_256x192" in str(info.value)
    assert "keras-pose presets" in str(info.value)


def test_keras_hub_handles_pass_through():
    assert resolve_preset("hf://someone/vitpose") == "hf://someone/vitpose"
    assert resolve_preset("kaggle://keras/vitpose/keras/base") == "kaggle://keras/vitpose/keras/base"


def test_directory_must_be_a_preset(tmp_path):
    empty = tmp_path / "not_a_preset"
    empty.mkdir()
    with pytest.raises(PresetError, match="not a keras-pose preset directory"):
        resolve_preset(str(empty))
    (empty / "config.json").write_text("{}")
    assert resolve_preset(str(empty)) == str(empty)


def test_missing_path(tmp_path):
    with pytest.raises(PresetError, match="does not exist"):
        resolve_preset(str(tmp_path / "nothing" / "here"))
    with pytest.raises(PresetError):
        resolve_preset(42)


def test_dataset_argument_is_checked(home):
    with pytest.raises(PresetError, match="single-dataset"):
        resolve_preset("vitpose_base_coco_256x192", dataset="ap10k")
    with pytest.raises(PresetError, match="no dataset 'horses'"):
        resolve_preset("vitpose_plus_base", dataset="horses")
    with pytest.raises(PresetError, match="only the 'coco' head"):
        resolve_preset("vitpose_plus_base_coco_256x192_hf", dataset="ap10k")


def test_task_class_of_requires_task_json(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(PresetError, match="task.json"):
        preset_loading.task_class_of(str(tmp_path))


def test_fetch_places_extra_files_beside_checkpoint(server, home):
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(server.root / "model.safetensors"))
    (server.root / "config.json").write_text('{"model_type": "vitpose"}')
    entry = PresetEntry(
        name="test_tiny_hf_layout",
        family="vitpose",
        task_class="ViTPose",
        description="",
        config={},
        preprocessing={},
        decoding={},
        source_url=f"{server.url}/model.safetensors",
        file_name="model.safetensors",
        checkpoint_format="hf_safetensors",
        license="Apache-2.0",
        extra_files={"config.json": f"{server.url}/config.json"},
    )
    path = preset_cache.fetch_checkpoint(entry, progress=False)
    assert os.path.basename(path) == "model.safetensors"
    assert pathlib.Path(path).with_name("config.json").read_text() == '{"model_type": "vitpose"}'
    preset_cache.fetch_checkpoint(entry, progress=False)
    assert sorted(server.requests) == ["/config.json", "/model.safetensors"]


# --------------------------------------------------------------------------
# Family detection (conversion dispatch)
# --------------------------------------------------------------------------
def _golden_keys(golden_dir, case):
    return {name: None for name, _, _ in json.loads((golden_dir / "vitpose" / case / "keys.json").read_text())}


@pytest.mark.parametrize(
    "case, family, layout",
    [
        ("vitpose_small_simple", "vitpose", "vitpose_original"),
        ("vitpose_base_classic", "vitpose", "vitpose_original"),
        ("vitpose_plus_small_moe", "vitpose_plus", "vitpose_original"),
        ("mmpose_small_coco", "vitpose", "mmpose"),
        ("vitpose_base_hf", "vitpose", "hf_safetensors"),
    ],
)
def test_detect_family_from_key_names(golden_dir, case, family, layout):
    from keras_pose.conversion import detect_family

    keys = _golden_keys(golden_dir, case)
    assert detect_family(keys) == (family, layout)


def test_detect_family_from_files(tmp_path):
    from safetensors.numpy import save_file

    from keras_pose.conversion import detect_family

    sd = make_tiny_state_dict()
    pth = save_original_checkpoint(tmp_path / "a.pth", sd)
    assert detect_family(str(pth)) == ("vitpose", "vitpose_original")
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    save_file(
        {
            "backbone.embeddings.patch_embeddings.projection.weight": np.zeros((4, 3, 16, 16), np.float32),
            "backbone.encoder.layer.0.mlp.experts.0.weight": np.zeros((2, 16), np.float32),
        },
        str(hf_dir / "model.safetensors"),
    )
    assert detect_family(str(hf_dir)) == ("vitpose_plus", "hf_safetensors")
    assert detect_family(str(hf_dir / "model.safetensors")) == ("vitpose_plus", "hf_safetensors")


def test_detect_family_unknown():
    from keras_pose.conversion import detect_family
    from keras_pose.errors import CheckpointError

    with pytest.raises(CheckpointError, match="--preset"):
        detect_family({"features.0.weight": None, "classifier.weight": None})


def test_looks_like_path():
    from keras_pose.utils.paths import looks_like_path

    for value in ("./x", "~/ckpt", "dir/vitpose", "vitpose_b.pth", "model.SAFETENSORS", ".hidden"):
        assert looks_like_path(value), value
    for value in ("vitpose_base_coco_256x192", "coco", "", None, 3):
        assert not looks_like_path(value), value
    assert looks_like_path("train.yaml", suffixes=(".json", ".yaml", ".yml"))
    assert not looks_like_path("train.yaml")


@needs_converter
def test_keras_hub_handle_loads_through_its_local_copy(tmp_path, home, monkeypatch):
    """A `hf://` / `kaggle://` preset: keras-hub fetches the files, the same loader builds the task."""
    import shutil

    from keras_hub.src.utils import preset_utils

    from keras_pose.conversion import convert_checkpoint

    ckpt = save_original_checkpoint(tmp_path / "tiny.pth", make_tiny_state_dict(seed=2))
    published = tmp_path / "published"
    expected = convert_checkpoint(str(ckpt), preset=tiny_entry("https://example.invalid/t.pth", None),
                                  output_dir=published)
    hub_cache = tmp_path / "hub_cache"
    hub_cache.mkdir()
    fetched = []

    def get_file(handle, name):
        assert handle == "hf://someone/tiny_vitpose"
        fetched.append(name)
        return str(shutil.copy(published / name, hub_cache / name))

    monkeypatch.setattr(preset_utils, "get_file", get_file)
    monkeypatch.setattr(preset_utils, "check_file_exists", lambda handle, name: (published / name).is_file())
    model = load_preset("hf://someone/tiny_vitpose")
    assert {"config.json", "task.json", "model.weights.h5", "task.weights.h5"} <= set(fetched)
    x = _images()
    np.testing.assert_allclose(_heatmaps(model, x), _heatmaps(expected, x), rtol=0, atol=1e-6)
