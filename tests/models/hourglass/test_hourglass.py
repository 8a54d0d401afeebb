"""Stacked Hourglass specifics: shapes per stack count, mmpose structure, architecture
inference (one-stack files with mmpose's unused block), intermediate supervision,
mixed precision.

The family contract (forward, fit, `.keras` and preset round trips,
predict_keypoints, converter round trip and damaged-file report, export) is
tests/models/test_family_harness.py's; reference parity of the released
Hourglass-52 is in tests/conversion/test_golden_cpm_hourglass.py.
"""

import numpy as np
import pytest

import keras

from keras_pose.errors import CheckpointError
from keras_pose.models.hourglass import HOURGLASS52, Hourglass, HourglassBackbone
from pose_testing.families import randomize_weights
from pose_testing.harness import assert_outputs_close, flat_outputs as _as_list, save_reference_checkpoint
from pose_testing.hourglass_models import TINY, tiny_hourglass, _np, _export_block, export_state_dict


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


@pytest.mark.large  # builds the 94.6M-parameter Hourglass-52
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


# ---------------------------------------------------------------- converter
@pytest.mark.parametrize("num_stacks,head", [(2, "head."), (1, "keypoint_head.")])
def test_converter_round_trip_infers_architecture(tmp_path, num_stacks, head):
    from keras_pose.conversion.hourglass_converter import convert, infer_config

    source = randomize_weights(tiny_hourglass((32, 32), num_stacks))
    sd = export_state_dict(source, head=head)
    if num_stacks == 1:
        # mmpose's one-stack HourglassNet carries an unused inters.0 block
        extra = tiny_hourglass((32, 32), 2)
        _export_block(sd, extra.backbone.get_layer("inters_0"), "backbone.inters.0")
    assert infer_config(sd) == {"num_keypoints": 17, "num_stacks": num_stacks, **TINY}
    model = convert(save_reference_checkpoint(sd, tmp_path / "hg.pth", "mmpose"), image_size=(32, 32))
    x = np.random.default_rng(2).normal(size=(1, 32, 32, 3)).astype("float32")
    assert_outputs_close(model.predict_on_batch(x), source.predict_on_batch(x), 1e-5, f"{num_stacks}-stack Hourglass")


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
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # traced fits: test_family_harness
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # both stacks' heads are supervised
    for b, layer in zip(before, model.final_layers):
        assert not np.allclose(b, _np(layer.kernel))


@pytest.mark.slow  # XLA compilation; CPM's is the fast suite's mixed-precision check
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
