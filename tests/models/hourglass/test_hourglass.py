"""Stacked Hourglass: shapes, stacks, serialization, converter, training, mixed precision.

Reduced depths / widths keep every test small; reference parity of the
released Hourglass-52 is in test_golden_cpm_hourglass.py.
"""

import numpy as np
import pytest

import keras

from keras_pose.errors import CheckpointError
from keras_pose.models.hourglass import HOURGLASS52, Hourglass, HourglassBackbone
from pose_testing.hourglass_models import TINY, tiny_hourglass, _np, _export_block, export_state_dict


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def randomize_norms(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.backbone._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.1, c).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.1, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize(
    "image_size,num_stacks,spec",
    [((32, 32), 1, "coco"), ((32, 48), 2, "mpii"), ((16, 16), 3, "coco")],
)
def test_shapes_and_stack_count(image_size, num_stacks, spec):
    model = tiny_hourglass(image_size, num_stacks, spec)
    k = 17 if spec == "coco" else 16
    h, w = image_size[0] // 4, image_size[1] // 4
    x = np.random.default_rng(0).normal(size=(2, *image_size, 3)).astype("float32")
    outputs = _as_list(model.predict_on_batch(x))
    assert len(outputs) == num_stacks
    for out in outputs:
        assert out.shape == (2, h, w, k) and out.dtype == np.float32
    features = _as_list(model.backbone.predict_on_batch(x))
    assert [f.shape for f in features] == [(2, h, w, TINY["feat_channels"])] * num_stacks
    # re-injection between stacks
    paths = set(model.backbone.torch_layer_paths.values())
    for s in range(num_stacks - 1):
        assert {f"conv1x1s.{s}", f"remap_convs.{s}", f"inters.{s}"} <= paths
    assert f"conv1x1s.{num_stacks - 1}" not in paths
    assert model.decoding["codec"]["heatmap_size"] == [h, w]


def test_hourglass52_structure_matches_mmpose():
    backbone = HourglassBackbone(image_size=(256, 256), **HOURGLASS52)
    paths = set(backbone.torch_layer_paths.values())
    deepest = "hourglass_modules.0" + ".low2" * 4
    assert f"{deepest}.low2.3" in paths and f"{deepest}.low3.1" in paths
    block = backbone.get_layer("hourglass_modules_0_low2_low3_1")
    assert block.conv1.conv.kernel.shape == (3, 3, 384, 256) and block.downsample is not None
    assert backbone.get_layer("hourglass_modules_0_low1_0").downsample is not None  # stride 2
    assert backbone.get_layer("hourglass_modules_0_up1_0").downsample is None
    assert backbone.count_params() > 9e7  # 94.6M with the head, as mmpose's Hourglass-52


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of 16"):
        tiny_hourglass((40, 32))
    with pytest.raises(ValueError, match="num_stacks"):
        tiny_hourglass(num_stacks=0)
    with pytest.raises(ValueError, match="greater than downsample_times"):
        tiny_hourglass(downsample_times=3)


# ------------------------------------------------------------ serialization
def test_keras_round_trip(tmp_path):
    model = tiny_hourglass((32, 32), 2, "mpii")
    randomize_norms(model)
    x = np.random.default_rng(1).normal(size=(1, 32, 32, 3)).astype("float32")
    expected = _as_list(model.predict_on_batch(x))
    path = tmp_path / "hourglass.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is Hourglass and restored.backbone.get_config() == model.backbone.get_config()
    assert restored.num_keypoints == 16 and restored.decoding == model.decoding
    for a, b in zip(expected, _as_list(restored.predict_on_batch(x))):
        np.testing.assert_allclose(a, b, atol=1e-6)


# ---------------------------------------------------------------- converter
def _save_mmpose(sd, path):
    import torch

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    torch.save({"meta": {}, "state_dict": tensors}, path, _use_new_zipfile_serialization=False)
    return path


@pytest.mark.parametrize("num_stacks,head", [(2, "head."), (1, "keypoint_head.")])
def test_converter_round_trip_infers_architecture(tmp_path, num_stacks, head):
    from keras_pose.conversion.hourglass_converter import convert, infer_config

    source = tiny_hourglass((32, 32), num_stacks)
    randomize_norms(source)
    sd = export_state_dict(source, head=head)
    if num_stacks == 1:
        # mmpose's one-stack HourglassNet carries an unused inters.0 block
        extra = tiny_hourglass((32, 32), 2)
        _export_block(sd, extra.backbone.get_layer("inters_0"), "backbone.inters.0")
    assert infer_config(sd) == {"num_keypoints": 17, "num_stacks": num_stacks, **TINY}
    model = convert(_save_mmpose(sd, tmp_path / "hg.pth"), image_size=(32, 32))
    x = np.random.default_rng(2).normal(size=(1, 32, 32, 3)).astype("float32")
    for a, b in zip(_as_list(source.predict_on_batch(x)), _as_list(model.predict_on_batch(x))):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_converter_lists_missing_unexpected_misshapen():
    from keras_pose.conversion.hourglass_converter import convert

    sd = export_state_dict(tiny_hourglass((32, 32), 2))
    del sd["backbone.remap_convs.0.bn.running_mean"]
    sd["backbone.unknown.weight"] = np.zeros((2,), np.float32)
    sd["backbone.hourglass_modules.1.low2.low2.1.conv2.weight"] = np.zeros((12, 12, 1, 1), np.float32)
    with pytest.raises(CheckpointError) as info:
        convert(sd, image_size=(32, 32))
    message = str(info.value)
    assert "missing (1)" in message and "backbone.remap_convs.0.bn.running_mean expected (8)" in message
    assert "unexpected (1)" in message and "backbone.unknown.weight (2)" in message
    assert "misshapen (1)" in message
    assert "hourglass_modules.1.low2.low2.1.conv2.weight: checkpoint (12, 12, 1, 1), model expects (12, 12, 3, 3)" in message


def test_converter_rejects_other_checkpoints_and_preset_conflicts():
    from keras_pose.conversion.hourglass_converter import convert
    from keras_pose.presets.hourglass_presets import PRESETS

    with pytest.raises(CheckpointError, match="not an mmpose HourglassNet checkpoint"):
        convert({"backbone.stem.0.conv.weight": np.zeros((4, 3, 7, 7), np.float32)})
    sd = export_state_dict(tiny_hourglass((32, 32), 1))
    with pytest.raises(CheckpointError, match="does not match preset 'hourglass52_coco_256x256'"):
        convert(sd, entry=PRESETS[0])


# ----------------------------------------------------------------- training
SHALLOW = dict(downsample_times=1, stage_channels=[8, 12], stage_blocks=[1, 1])


def test_fit_with_intermediate_supervision():
    model = tiny_hourglass((16, 16), 2, **SHALLOW)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 16, 16, 3)).astype("float32")
    y = {
        "heatmaps": rng.uniform(size=(4, 4, 4, 17)).astype("float32"),
        "keypoint_weights": np.ones((4, 17), "float32"),
    }
    before = [_np(layer.kernel).copy() for layer in model.final_layers]
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # both stacks' heads are supervised
    for b, layer in zip(before, model.final_layers):
        assert not np.allclose(b, _np(layer.kernel))


def test_mixed_bfloat16_jit_forward():
    model = tiny_hourglass((16, 16), 2, dtype="mixed_bfloat16", **SHALLOW)
    assert model.final_layers[0].compute_dtype == "bfloat16"
    model.compile(jit_compile=True)
    outputs = _as_list(model.predict(np.zeros((2, 16, 16, 3), "float32"), verbose=0))
    assert [o.shape for o in outputs] == [(2, 4, 4, 17)] * 2
    assert all(o.dtype == np.float32 and np.isfinite(o).all() for o in outputs)


# ------------------------------------------------------------------ presets
def test_presets():
    from keras_pose.presets.hourglass_presets import PRESETS

    assert {e.name for e in PRESETS} == {
        "hourglass52_coco_256x256",
        "hourglass52_coco_384x384",
        "hourglass52_mpii_256x256",
        "hourglass52_mpii_384x384",
    }
    for entry in PRESETS:
        assert entry.family == "hourglass" and entry.task_class == "Hourglass"
        assert entry.checkpoint_format == "mmpose" and entry.license == "Apache-2.0"
        assert entry.source_url.startswith("https://download.openmmlab.com/") and entry.source_url.endswith(entry.file_name)
        assert entry.sha256 in entry.file_name and len(entry.sha256) == 8
        assert {k: entry.config[k] for k in HOURGLASS52} == HOURGLASS52
        size = entry.config["image_size"]
        codec = entry.decoding["codec"]
        assert codec["type"] == "MSRAHeatmap" and codec["input_size"] == size
        assert codec["heatmap_size"] == [size[0] // 4, size[1] // 4]
        metric = entry.published_accuracy["metric"]
        assert 0 < entry.published_accuracy[metric] < 1
