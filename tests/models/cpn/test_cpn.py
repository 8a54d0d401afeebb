"""CPN specifics: layers, model shapes, defaults, the release file's quirks, converter
errors, loss, mixed precision. The family contract (forward, fit, `.keras` and
preset round trips, predict_keypoints, converter round trip, export) is
tests/models/test_family_harness.py's.

The full ResNet-50 model is built once (shapes, parameter count against the
golden checkpoint's key list); everything else uses a reduced configuration
(one bottleneck per stage, narrow heads, 64x32 input).
"""

import json

import keras
import numpy as np
import pytest
from pose_testing.paths import GOLDEN_DIR

from keras_pose.errors import CheckpointError
from keras_pose.models.cpn import CPN
from keras_pose.models.cpn import AlignCornersResize
from keras_pose.models.cpn import CPNBackbone
from keras_pose.models.cpn import CPNLoss
from keras_pose.models.cpn.cpn_layers import align_corners_matrix

TINY = {
    "stackwise_num_blocks": [1, 1, 1, 1],
    "stackwise_num_filters": [64, 16, 16, 16],
    "image_size": (64, 32),
    "global_channels": 16,
    "refine_planes": 8,
}


def tiny_cpn(**kwargs):
    config = dict(TINY)
    config.update(kwargs)
    return CPN.from_checkpoint_config(**config)


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_cpn()


# ----------------------------------------------------------------- layers
def test_align_corners_matrix_values():
    m = align_corners_matrix(3, 5)  # src = i * 2 / 4
    expected = np.array([[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1]])
    np.testing.assert_allclose(m, expected)
    np.testing.assert_allclose(align_corners_matrix(4, 4), np.eye(4))
    np.testing.assert_allclose(align_corners_matrix(4, 1), [[1, 0, 0, 0]])


def test_align_corners_resize_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3, 4)).astype(np.float32)
    for kwargs, size in (({"scale_factor": 2}, (10, 6)), ({"size": (16, 12)}, (16, 12))):
        ours = keras.ops.convert_to_numpy(AlignCornersResize(**kwargs)(x))
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(x.transpose(0, 3, 1, 2)), size=size, mode="bilinear", align_corners=True
        ).numpy().transpose(0, 2, 3, 1)
        np.testing.assert_allclose(ours, ref, atol=1e-6)
    layer = AlignCornersResize(size=(7, 5), name="r")
    clone = AlignCornersResize.from_config(layer.get_config())
    assert clone.size == (7, 5) and clone.scale_factor is None
    with pytest.raises(ValueError, match="exactly one"):
        AlignCornersResize()


# ----------------------------------------------------------------- model
@pytest.mark.large  # the full ResNet-50 CPN at 256x192
def test_cpn50_shapes_and_parameter_count():
    model = CPN.from_checkpoint_config(depth=50, image_size=(256, 192))
    assert model.image_size == (256, 192)
    assert model.backbone.stackwise_num_blocks == [3, 4, 6, 3]
    outputs = model(np.zeros((1, 256, 192, 3), np.float32))
    assert sorted(outputs) == ["global_0", "global_1", "global_2", "global_3", "refine"]
    for value in outputs.values():
        assert tuple(value.shape) == (1, 64, 48, 17)
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert model.heatmaps_from_outputs(outputs) is outputs["refine"]
    features = model.feature_model().output
    assert tuple(features["global_fm_0"].shape) == (None, 8, 6, 256)
    assert tuple(features["global_fm_3"].shape) == (None, 64, 48, 256)
    pyramid = model.backbone.output
    assert [tuple(pyramid[k].shape[1:]) for k in ("P2", "P3", "P4", "P5")] == [
        (64, 48, 256), (32, 24, 512), (16, 12, 1024), (8, 6, 2048)
    ]
    # Every value of the released layout has a Keras variable and vice versa.
    keys_path = GOLDEN_DIR / "cpn" / "cpn50_coco_256x192" / "keys.json"
    if keys_path.exists():
        with open(keys_path) as f:
            keys = json.load(f)
        torch_values = sum(int(np.prod(s)) for n, s, _ in keys if not n.endswith("num_batches_tracked"))
        assert model.count_params() == torch_values


def test_cpn_rejects_bad_input_size():
    with pytest.raises(ValueError, match="multiples of 32"):
        CPN(backbone=CPNBackbone(stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_filters=[64, 8, 8, 8],
                                 image_shape=(100, 64, 3)))


def test_tiny_shapes_and_defaults(tiny_model):
    outputs = tiny_model(np.zeros((2, 64, 32, 3), np.float32))
    assert all(tuple(v.shape) == (2, 16, 8, 17) for v in outputs.values())
    assert tiny_model.preprocessing["std"] == [255.0, 255.0, 255.0]
    assert tiny_model.decoding["codec"]["type"] == "MSRAHeatmap"
    assert tiny_model.decoding["flip_test"] is True
    assert isinstance(tiny_model._default_loss, CPNLoss)
    # list form: Keras' flat outputs are in sorted key order, refine last
    flat = [outputs[k] for k in sorted(outputs)]
    assert tiny_model.heatmaps_from_outputs(flat) is outputs["refine"]


# ----------------------------------------------------------------- converter
def _bn(sd, prefix, c, rng, tracked=True):
    sd[f"{prefix}.weight"] = 1 + 0.1 * rng.normal(size=c)
    sd[f"{prefix}.bias"] = 0.1 * rng.normal(size=c)
    sd[f"{prefix}.running_mean"] = 0.1 * rng.normal(size=c)
    sd[f"{prefix}.running_var"] = rng.uniform(0.5, 1.5, size=c)
    if tracked:
        sd[f"{prefix}.num_batches_tracked"] = np.zeros((), np.int64)


def _conv(sd, name, cout, cin, k, rng):
    sd[name] = rng.normal(size=(cout, cin, k, k)) / np.sqrt(cin * k * k)


def _bottleneck(sd, prefix, cin, planes, cout, rng, shortcut, tracked=True):
    _conv(sd, f"{prefix}.conv1.weight", planes, cin, 1, rng)
    _bn(sd, f"{prefix}.bn1", planes, rng, tracked)
    _conv(sd, f"{prefix}.conv2.weight", planes, planes, 3, rng)
    _bn(sd, f"{prefix}.bn2", planes, rng, tracked)
    _conv(sd, f"{prefix}.conv3.weight", cout, planes, 1, rng)
    _bn(sd, f"{prefix}.bn3", cout, rng, tracked)
    if shortcut:
        _conv(sd, f"{prefix}.downsample.0.weight", cout, cin, 1, rng)
        _bn(sd, f"{prefix}.downsample.1", cout, rng, tracked)


def tiny_state_dict(num_keypoints=17, tracked=True, blocks=(1, 1, 1, 1), filters=(64, 16, 16, 16), g=16, r=8):
    """pytorch-cpn's layout (networks/resnet.py, globalNet.py, refineNet.py) at a tiny size."""
    rng = np.random.default_rng(0)
    sd = {}
    _conv(sd, "resnet.conv1.weight", 64, 3, 7, rng)
    _bn(sd, "resnet.bn1", 64, rng, tracked)
    cin = 64
    for s, (n, f) in enumerate(zip(blocks, filters)):
        for b in range(n):
            _bottleneck(sd, f"resnet.layer{s + 1}.{b}", cin, f, 4 * f, rng, b == 0, tracked)
            cin = 4 * f
    channels = [4 * f for f in filters][::-1]
    for i, c in enumerate(channels):
        _conv(sd, f"global_net.laterals.{i}.0.weight", g, c, 1, rng)
        _bn(sd, f"global_net.laterals.{i}.1", g, rng, tracked)
        if i < 3:
            _conv(sd, f"global_net.upsamples.{i}.1.weight", g, g, 1, rng)
            _bn(sd, f"global_net.upsamples.{i}.2", g, rng, tracked)
        _conv(sd, f"global_net.predict.{i}.0.weight", g, g, 1, rng)
        _bn(sd, f"global_net.predict.{i}.1", g, rng, tracked)
        _conv(sd, f"global_net.predict.{i}.3.weight", num_keypoints, g, 3, rng)
        _bn(sd, f"global_net.predict.{i}.5", num_keypoints, rng, tracked)
    for i in range(4):
        for j in range(3 - i):
            _bottleneck(sd, f"refine_net.cascade.{i}.{j}", g, r, 2 * r, rng, True, tracked)
    concat = 3 * 2 * r + g
    _bottleneck(sd, "refine_net.final_predict.0", concat, r, 2 * r, rng, True, tracked)
    _conv(sd, "refine_net.final_predict.1.weight", num_keypoints, 2 * r, 3, rng)
    _bn(sd, "refine_net.final_predict.2", num_keypoints, rng, tracked)
    return {k: np.asarray(v, np.int64 if v.dtype == np.int64 else np.float32) for k, v in sd.items()}


def _save_release(sd, path):
    torch = pytest.importorskip("torch")
    state = {f"module.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    torch.save({"epoch": 32, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


def test_convert_tiny_release_file(tmp_path):
    from keras_pose.conversion.cpn_converter import convert, infer_architecture

    sd = tiny_state_dict()
    arch = infer_architecture(sd)
    assert arch["stackwise_num_blocks"] == [1, 1, 1, 1] and arch["depth"] is None
    assert arch["num_keypoints"] == 17 and arch["global_channels"] == 16 and arch["refine_planes"] == 8
    assert arch["refine_num_blocks"] == [3, 2, 1, 0] and arch["upsample_bias"] is False

    path = _save_release(sd, tmp_path / "tiny.pth.tar")
    model = convert(path, image_size=(64, 32))
    assert model.image_size == (64, 32)
    kernel = model.get_layer("refine_final_conv").get_weights()[0]
    np.testing.assert_array_equal(kernel, sd["refine_net.final_predict.1.weight"].transpose(2, 3, 1, 0))
    gamma, beta, mean, var = model.backbone.resnet.get_layer("stack3_block0_0_bn").get_weights()
    np.testing.assert_array_equal(var, sd["resnet.layer4.0.downsample.1.running_var"])
    out = model.predict_on_batch(np.zeros((1, 64, 32, 3), np.float32))
    assert np.isfinite(out["refine"]).all()

    # torch 0.4.0 saves have no num_batches_tracked; a plain mapping works too
    model = convert(tiny_state_dict(tracked=False), image_size=(64, 32))
    assert isinstance(model, CPN)


def test_converter_errors(tmp_path):
    from keras_pose.conversion.cpn_converter import convert

    sd = tiny_state_dict()
    broken = dict(sd)
    del broken["global_net.predict.2.3.weight"]
    broken["refine_net.extra.weight"] = np.zeros((3,), np.float32)
    broken["global_net.laterals.1.1.bias"] = np.zeros((5,), np.float32)
    with pytest.raises(CheckpointError) as info:
        convert(broken, image_size=(64, 32))
    message = str(info.value)
    assert "global_net.predict.2.3.weight" in message  # missing
    assert "refine_net.extra.weight" in message  # unexpected
    assert "global_net.laterals.1.1.bias" in message and "misshapen" in message

    vitpose = {"backbone.blocks.0.attn.qkv.weight": np.zeros((9, 3), np.float32),
               "backbone.patch_embed.proj.weight": np.zeros((3, 3, 16, 16), np.float32)}
    with pytest.raises(CheckpointError, match="not a pytorch-cpn checkpoint.*ViTPose"):
        convert(vitpose)

    with pytest.raises(CheckpointError, match="keypoints"):
        convert(tiny_state_dict(num_keypoints=5), image_size=(64, 32))

    from keras_pose.presets.cpn_presets import PRESETS

    entry = next(e for e in PRESETS if e.name == "cpn50_coco_256x192")
    with pytest.raises(CheckpointError, match="ResNet-50"):
        convert(sd, entry=entry)
    with pytest.raises(TypeError, match="overrides"):
        convert(sd, image_sise=(64, 32))


def test_presets():
    from keras_pose.presets.cpn_presets import PRESETS
    from keras_pose.preset_registry import get_preset_entry

    names = {e.name for e in PRESETS}
    assert {"cpn50_coco_256x192", "cpn101_coco_384x288"} <= names
    for entry in PRESETS:
        assert get_preset_entry(entry.name) == entry
        assert entry.checkpoint_format == "pytorch_cpn" and entry.task_class == "CPN"
        assert entry.preprocessing["std"] == [255.0, 255.0, 255.0]
        h, w = entry.config["image_size"]
        assert entry.decoding["codec"]["input_size"] == [h, w]
        assert entry.decoding["codec"]["heatmap_size"] == [h // 4, w // 4]
        from keras_pose.codecs import get_codec

        get_codec(entry.decoding["codec"])
    assert get_preset_entry("cpn101_coco_384x288").config["depth"] == 101


# ----------------------------------------------------------------- loss
def test_cpn_loss_hand_computed():
    b, h, w, k = 2, 2, 2, 3
    target = np.zeros((b, h, w, k), np.float32)
    refine = np.zeros((b, h, w, k), np.float32)
    # per-keypoint refine MSE (mean over 4 pixels): sample 0 -> [1, 4, 0.25]; sample 1 -> [9, 0, 1]
    refine[0, :, :, 0] = 1.0
    refine[0, :, :, 1] = 2.0
    refine[0, :, :, 2] = 0.5
    refine[1, :, :, 0] = 3.0
    refine[1, :, :, 2] = 1.0
    weights = np.array([[1, 1, 1], [0, 1, 1]], np.float32)  # sample 1 keypoint 0 unlabelled
    g0 = np.full((b, h, w, k), 0.5, np.float32)
    g1 = np.full((b, h, w, k), 1.0, np.float32)
    y_true = {"heatmaps": target, "keypoint_weights": weights}
    y_pred = {"global_0": g0, "global_1": g1, "refine": refine}

    loss = CPNLoss(top_k=2)
    # OHKM: sample 0 keeps 4 and 1 -> 2.5; sample 1 weighted [0, 0, 1] keeps 1 and 0 -> 0.5; mean 1.5
    # GlobalNet: target * w = 0 -> mean(0.25) / 2 + mean(1) / 2 = 0.625
    value = float(keras.ops.convert_to_numpy(loss(y_true, y_pred)))
    assert value == pytest.approx(0.625 + 1.5, rel=1e-6)

    # list form (refine last) gives the same
    value = float(keras.ops.convert_to_numpy(loss(y_true, [g0, g1, refine])))
    assert value == pytest.approx(2.125, rel=1e-6)

    # per-level targets: level 0 target 0.5 everywhere (masked by weights)
    levels = [np.full((b, h, w, k), 0.5, np.float32), target]
    g_expected = np.mean((g0 - levels[0] * weights[:, None, None, :]) ** 2) / 2 + 0.5
    value = float(keras.ops.convert_to_numpy(loss({**y_true, "heatmaps_levels": levels}, y_pred)))
    assert value == pytest.approx(g_expected + 1.5, rel=1e-6)

    # top_k = all keypoints: plain weighted mean of per-keypoint losses
    value = float(keras.ops.convert_to_numpy(CPNLoss(top_k=3, global_weight=0.0)(y_true, y_pred)))
    assert value == pytest.approx(((1 + 4 + 0.25) / 3 + (0 + 0 + 1) / 3) / 2, rel=1e-6)

    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(clone, CPNLoss) and clone.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="heatmaps_levels"):
        loss({**y_true, "heatmaps_levels": [target]}, y_pred)


# ----------------------------------------------------------------- training / precision
@pytest.mark.slow  # XLA compilation; CPM's is the fast suite's mixed-precision check
def test_mixed_bfloat16_jit_forward():
    model = tiny_cpn(dtype="mixed_bfloat16")
    assert model.get_layer("refine_final_conv").compute_dtype == "bfloat16"
    model.compile(jit_compile=True)
    x = np.random.default_rng(0).normal(size=(2, 64, 32, 3)).astype(np.float32)
    outputs = model.predict(x, batch_size=2, verbose=0)
    for value in outputs.values():
        assert value.dtype == np.float32 and value.shape == (2, 16, 8, 17)
        assert np.isfinite(value).all()
