"""The converter contract (issue 9): what the file determines wins, the record tells the
released file from another, and a conversion is built once.

Tiny ViTPose checkpoints (hidden 32, 2 layers) in the original layout; see
test_preset_loading.py. KERAS_POSE_HOME points into tmp_path.
"""

import hashlib
import json
import warnings

import numpy as np
import pytest

from keras_pose import preset_registry
from keras_pose.conversion import convert_checkpoint
from keras_pose.errors import PresetError
from keras_pose.preset_loading import load_preset

from pose_testing.http_server import LocalHTTPServer as _Server
from pose_testing.tiny_checkpoints import make_tiny_state_dict
from pose_testing.tiny_checkpoints import save_original_checkpoint
from pose_testing.tiny_checkpoints import tiny_entry

torch = pytest.importorskip("torch")

ACCURACY = {"dataset": "COCO val2017", "metric": "AP", "AP": 0.5, "source": "test"}


def _entry(name, sha256=None, url="https://example.invalid/tiny.pth", image_size=(64, 48)):
    """The tiny preset with a published accuracy, released at `image_size`."""
    base = tiny_entry(url, sha256, name=name)
    h, w = image_size
    decoding = json.loads(json.dumps(base.decoding))
    decoding["codec"].update(input_size=[h, w], heatmap_size=[h // 4, w // 4])
    return preset_registry.PresetEntry(**{**base.to_dict(), "config": {**base.config, "image_size": [h, w]},
                                          "decoding": decoding, "published_accuracy": dict(ACCURACY)})


def _ours(caught):
    """The conversion's own warnings among `caught` (input size, not the released file)."""
    return [str(w.message) for w in caught if "input size" in str(w.message) or "released" in str(w.message)]


def _meta(folder):
    return json.loads((folder / "keras_pose_preset.json").read_text())


# --------------------------------------------------------------------------
# The input size follows the position table
# --------------------------------------------------------------------------
def test_convert_infers_384x288_from_the_position_table(tmp_path, capsys):
    """`keras-pose convert --preset <a 256x192 preset>` on a file trained at 384x288."""
    from keras_pose.cli import main

    ckpt = save_original_checkpoint(tmp_path / "vit_384x288.pth", make_tiny_state_dict(grid=(24, 18)))
    preset_registry.list_presets()
    entry = _entry("test_contract_tiny_256x192", image_size=(256, 192))
    preset_registry.register_presets([entry])
    out = tmp_path / "converted"
    try:
        with pytest.warns(UserWarning) as caught:
            code = main(["convert", "--preset", entry.name, "--checkpoint", str(ckpt), "--output", str(out)])
        assert code == 0, capsys.readouterr().err
    finally:
        preset_registry._REGISTRY.pop(entry.name, None)
    messages = " ".join(str(w.message) for w in caught)
    assert "256x192" in messages and "384x288" in messages and "433 rows" in messages
    model = load_preset(str(out))
    assert model.image_size == (384, 288)
    assert model.backbone.grid_size == (24, 18)
    # The preset's decoding, at the file's size.
    codec = model.decoding["codec"]
    assert codec["type"] == "UDPHeatmap" and codec["input_size"] == [384, 288] and codec["heatmap_size"] == [96, 72]
    heatmaps = np.asarray(model.predict_on_batch(np.zeros((1, 384, 288, 3), np.float32)))
    assert heatmaps.shape == (1, 96, 72, 17)
    # Not the released file: its accuracy is not recorded, the decoding is kept.
    meta = _meta(out)
    assert meta["release_file"] is False and meta["published_accuracy"] == {}
    assert meta["decoding"] == entry.decoding


def test_input_size_aspect_comes_from_the_preset(tmp_path):
    # 24 patches: 6x4 at 4:3, 4x6 for a 3:4 (portrait-to-landscape) preset.
    path = save_original_checkpoint(tmp_path / "t.pth", make_tiny_state_dict(grid=(4, 6)))
    entry = _entry("test_contract_landscape", image_size=(32, 48))
    with pytest.warns(UserWarning, match="32x48"):
        model = convert_checkpoint(str(path), preset=entry)
    assert model.image_size == (64, 96)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert convert_checkpoint(str(path), preset=_entry("test_contract_fits", image_size=(64, 96))).image_size == (
            64, 96)
        assert convert_checkpoint(str(path), num_heads=2).image_size == (96, 64)  # no preset: 4:3
    assert not _ours(caught)


# --------------------------------------------------------------------------
# The record tells the released file from another
# --------------------------------------------------------------------------
def test_sha256_mismatch_warns_and_drops_the_published_accuracy(tmp_path):
    path = save_original_checkpoint(tmp_path / "tiny.pth", make_tiny_state_dict(seed=4))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    released = tmp_path / "released"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert_checkpoint(str(path), preset=_entry("test_contract_full", digest), output_dir=released)
    assert not _ours(caught)
    meta = _meta(released)
    assert meta["release_file"] is True and meta["published_accuracy"] == ACCURACY

    prefix = tmp_path / "prefix"
    convert_checkpoint(str(path), preset=_entry("test_contract_prefix", digest[:8]), output_dir=prefix)
    assert _meta(prefix)["release_file"] is True and _meta(prefix)["published_accuracy"] == ACCURACY

    unknown = tmp_path / "unknown"  # nothing published: nobody can tell, the accuracy stays
    convert_checkpoint(str(path), preset=_entry("test_contract_none", None), output_dir=unknown)
    assert _meta(unknown)["release_file"] is None and _meta(unknown)["published_accuracy"] == ACCURACY

    other = tmp_path / "other"
    entry = _entry("test_contract_other", "0" * 64)
    with pytest.warns(UserWarning, match="not the file released as preset 'test_contract_other'") as caught:
        convert_checkpoint(str(path), preset=entry, output_dir=other)
    message = str(caught[0].message)
    assert digest in message and "0" * 64 in message and "published accuracy" in message
    meta = _meta(other)
    assert meta["release_file"] is False and meta["published_accuracy"] == {}
    assert meta["decoding"] == entry.decoding and meta["sha256"] == "0" * 64
    assert meta["converted_from"]["sha256"] == digest


# --------------------------------------------------------------------------
# from_preset returns the converted model: one build
# --------------------------------------------------------------------------
@pytest.fixture
def served(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    server = _Server(root)
    path = save_original_checkpoint(root / "tiny.pth", make_tiny_state_dict(seed=6))
    entry = tiny_entry(f"{server.url}/tiny.pth", hashlib.sha256(path.read_bytes()).hexdigest(),
                       name="test_contract_served")
    preset_registry.list_presets()
    preset_registry.register_presets([entry])
    yield entry, path
    preset_registry._REGISTRY.pop(entry.name, None)
    server.close()


def _count_builds(monkeypatch):
    from keras_pose.models.vitpose.vitpose_pose_estimator import ViTPose

    builds = []
    original = ViTPose.__init__

    def counting(self, *args, **kwargs):
        builds.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ViTPose, "__init__", counting)
    return builds


def test_from_preset_returns_the_converted_model_without_building_it_again(served, home, monkeypatch):
    from keras_pose.models.vitpose.vitpose_pose_estimator import ViTPose

    entry, path = served
    builds = _count_builds(monkeypatch)
    model = ViTPose.from_preset(entry.name)  # download, convert, cache: one model built
    assert builds == ["ViTPose"] and isinstance(model, ViTPose)
    cached = home / "presets" / entry.name
    assert (cached / "task.weights.h5").is_file()
    again = load_preset(entry.name)  # from the cache: built once from task.json
    assert builds == ["ViTPose", "ViTPose"]
    x = np.random.default_rng(1).normal(size=(1, 64, 48, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(again.predict_on_batch(x)), np.asarray(model.predict_on_batch(x)),
                               rtol=0, atol=1e-6)
    direct = convert_checkpoint(str(path), preset=entry)
    np.testing.assert_allclose(np.asarray(direct.predict_on_batch(x)), np.asarray(model.predict_on_batch(x)),
                               rtol=0, atol=1e-6)


def test_converted_model_is_checked_against_the_class(served, home):
    from keras_pose.models.cpm import CPM

    entry, _ = served
    with pytest.raises(PresetError, match="holds a ViTPose, not a CPM"):
        CPM.from_preset(entry.name)
    # The conversion was cached all the same; the class check on the folder says the same.
    with pytest.raises(PresetError, match="holds a ViTPose, not a CPM"):
        CPM.from_preset(str(home / "presets" / entry.name))


def test_overrides_build_from_the_cached_folder(served, home, monkeypatch):
    entry, _ = served
    builds = _count_builds(monkeypatch)
    fresh = load_preset(entry.name, load_weights=False)  # converted, cached, then built without weights
    assert len(builds) == 2
    trained = load_preset(entry.name)
    assert not np.allclose(np.asarray(fresh.head.final_conv.kernel), np.asarray(trained.head.final_conv.kernel))
