"""CPM specifics: shapes per stage count, centre map, mmpose structure, architecture
inference, intermediate supervision, mixed precision.

The family contract (forward, fit, `.keras` and preset round trips,
predict_keypoints, converter round trip and damaged-file report, export) is
tests/models/test_family_harness.py's; reference parity of the full models is
in tests/conversion/test_golden_cpm_hourglass.py.
"""

import numpy as np
import pytest

import keras

from keras_pose.errors import CheckpointError
from keras_pose.models.cpm import CPM, CPMBackbone, CPMCenterMap
from keras_pose.models.cpm.cpm_layers import cpm_output_size
from pose_testing.cpm_models import TINY, tiny_cpm, export_state_dict
from pose_testing.families import randomize_weights
from pose_testing.harness import assert_outputs_close, flat_outputs as _as_list, save_reference_checkpoint


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize(
    "image_size,num_stages,spec",
    [((64, 48), 1, "coco"), ((64, 64), 3, "mpii"), ((72, 56), 2, "coco")],
)
def test_shapes_and_stage_count(image_size, num_stages, spec):
    model = tiny_cpm(image_size, num_stages, spec)
    k = 17 if spec == "coco" else 16
    h, w = cpm_output_size(image_size)
    assert (h, w) == tuple(-(-s // 8) for s in image_size) == model.backbone.output_size
    x = np.random.default_rng(0).normal(size=(2, *image_size, 3)).astype("float32")
    outputs = _as_list(model.predict_on_batch(x))
    assert len(outputs) == num_stages
    for out in outputs:
        assert out.shape == (2, h, w, k) and out.dtype == np.float32
    assert model.heatmaps_from_outputs(model.predict_on_batch(x)).shape == (2, h, w, k)
    # stage >= 2 input: previous belief maps + shared features
    if num_stages > 1:
        kernel = model.backbone.get_layer("cpm_stages_0_model_0").conv.kernel
        assert kernel.shape == (11, 11, k + TINY["middle_channels"], TINY["feat_channels"])
    assert model.decoding["codec"]["heatmap_size"] == [h, w]
    assert model.decoding["flip_test"] and model.decoding["shift_heatmap"]


def test_full_size_structure_matches_mmpose():
    backbone = CPMBackbone(num_keypoints=17, image_size=(256, 192))
    # 6 stages: stem (6 ConvModules + head) + middle (3) + 5 x (middle_conv + 3 + 2)
    assert len(backbone.torch_layer_paths) == 7 + 3 + 5 * 6
    assert backbone.get_layer("stem_0").conv.kernel.shape == (9, 9, 3, 128)
    assert backbone.get_layer("cpm_stages_4_model_0").conv.kernel.shape == (11, 11, 49, 128)
    assert backbone.get_layer("stem_9").use_bias and backbone.get_layer("stem_9").bn is None
    assert backbone.output_size == (32, 24)


def test_center_map_option():
    model = tiny_cpm((64, 64), 2, center_map_sigma=21.0)
    kernel = model.backbone.get_layer("cpm_stages_0_model_0").conv.kernel
    assert kernel.shape[2] == 17 + TINY["middle_channels"] + 1
    out = _as_list(model.predict_on_batch(np.zeros((1, 64, 64, 3), "float32")))
    assert [o.shape for o in out] == [(1, 8, 8, 17)] * 2
    center = keras.ops.convert_to_numpy(CPMCenterMap(2.0)(np.zeros((2, 9, 7, 5), "float32")))
    assert center.shape == (2, 9, 7, 1)
    assert center[0, 4, 3, 0] == pytest.approx(1.0) and center.max() == pytest.approx(1.0)
    assert center[0, 4, 5, 0] == pytest.approx(np.exp(-4 / 8), rel=1e-5)
    # default off, as mmpose
    assert CPMBackbone(num_keypoints=17, image_size=(64, 48), **TINY).center_map_sigma is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_stages"):
        tiny_cpm(num_stages=0)
    with pytest.raises(ValueError, match="keypoint spec has 16"):
        CPM(backbone=CPMBackbone(num_keypoints=17, image_size=(64, 48), **TINY), keypoint_spec="mpii")


# ---------------------------------------------------------------- converter
def test_converter_round_trip_infers_architecture(tmp_path):
    from keras_pose.conversion.cpm_converter import convert, infer_config

    # without a preset: every architecture key from the file, the keypoint spec from K = 16 -> mpii
    source = randomize_weights(tiny_cpm((64, 64), 3, "mpii"))
    sd = export_state_dict(source)
    assert infer_config(sd) == {"num_keypoints": 16, "num_stages": 3, **TINY}
    model = convert(save_reference_checkpoint(sd, tmp_path / "cpm_tiny.pth", "mmpose"), image_size=(64, 64))
    assert model.keypoint_spec.name == "mpii" and model.backbone.num_stages == 3
    x = np.random.default_rng(2).normal(size=(1, 64, 64, 3)).astype("float32")
    assert_outputs_close(model.predict_on_batch(x), source.predict_on_batch(x), 1e-5, "CPM converted without preset")


def test_converter_rejects_other_checkpoints_and_preset_conflicts():
    from keras_pose.conversion.cpm_converter import convert
    from keras_pose.presets.cpm_presets import PRESETS

    with pytest.raises(CheckpointError, match="not an mmpose CPM checkpoint"):
        convert({"backbone.layers.0.ln1.weight": np.zeros(4, np.float32)})
    sd = export_state_dict(tiny_cpm((64, 48), 2))
    with pytest.raises(CheckpointError, match="does not match preset 'cpm_coco_256x192'.*num_stages"):
        convert(sd, entry=PRESETS[0])


# ----------------------------------------------------------------- training
def test_fit_with_intermediate_supervision():
    from keras_pose.losses import KeypointMSELoss

    model = tiny_cpm((32, 32), 2)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    y = {
        "heatmaps": rng.uniform(size=(4, 4, 4, 17)).astype("float32"),
        "keypoint_weights": np.ones((4, 17), "float32"),
    }
    # every stage is compared with the target
    preds = _as_list(model.predict_on_batch(x))
    loss = KeypointMSELoss()
    total = float(keras.ops.convert_to_numpy(loss(y, preds)))
    parts = sum(float(np.mean(keras.ops.convert_to_numpy(loss.per_sample(y["heatmaps"], y["keypoint_weights"], p))))
                for p in preds)
    assert total == pytest.approx(parts, rel=1e-5)

    stage1_head = model.backbone.get_layer("stem_9").conv.kernel
    before = keras.ops.convert_to_numpy(stage1_head).copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # traced fits: test_family_harness
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # stage 1's own head is trained (its belief maps are supervised directly)
    assert not np.allclose(before, keras.ops.convert_to_numpy(stage1_head))


def test_mixed_bfloat16_jit_forward():
    model = tiny_cpm((32, 32), 2, dtype="mixed_bfloat16")
    assert model.backbone.get_layer("stem_0").conv.compute_dtype == "bfloat16"
    model.compile(jit_compile=True)
    outputs = _as_list(model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0))
    assert [o.shape for o in outputs] == [(2, 4, 4, 17)] * 2
    assert all(o.dtype == np.float32 and np.isfinite(o).all() for o in outputs)


# ------------------------------------------------------------------ presets
def test_presets():
    from keras_pose.presets.cpm_presets import PRESETS

    names = {e.name for e in PRESETS}
    assert names == {"cpm_coco_256x192", "cpm_coco_384x288", "cpm_mpii_368x368"}
    for entry in PRESETS:
        assert entry.family == "cpm" and entry.task_class == "CPM" and entry.checkpoint_format == "mmpose"
        assert entry.source_url.startswith("https://download.openmmlab.com/") and entry.source_url.endswith(entry.file_name)
        assert entry.sha256 in entry.file_name and entry.license == "Apache-2.0"
        codec = entry.decoding["codec"]
        assert codec["type"] == "MSRAHeatmap" and codec["input_size"] == entry.config["image_size"]
        assert tuple(codec["heatmap_size"]) == cpm_output_size(entry.config["image_size"])
        assert entry.decoding["flip_test"] and entry.decoding["shift_heatmap"]
        metric = entry.published_accuracy["metric"]
        assert 0 < entry.published_accuracy[metric] < 1
