"""Tiny RTMO networks: shapes (square and non-square), config and `.keras` round trips, and the
converter on files the golden case does not cover (other factors, seeds, keypoint counts, sizes)."""

import keras
import numpy as np
import pytest
from pose_testing.rtmo_models import TINY, export_state_dict, tiny_rtmo

from keras_pose.errors import CheckpointError
from keras_pose.models.rtmo import (
    HEAD_OUTPUTS,
    RTMO_SIZES,
    CSPDarknetBackbone,
    HybridEncoder,
    RTMONetwork,
    RTMOHeadModule,
)


@pytest.fixture(scope="module")
def network():
    return tiny_rtmo((64, 96), seed=3)


@pytest.fixture(scope="module")
def state_dict(network):
    return export_state_dict(network)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


def _images(image_size, seed=0, batch=2):
    return np.random.default_rng(seed).uniform(0, 255, (batch, *image_size, 3)).astype("float32")


def _dcc_inputs(network, seed=0):
    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 1, (2, 3, network.widths["pose_vec_channels"])).astype("float32")
    cs = np.concatenate([rng.uniform(20, 60, (2, 3, 2)), rng.uniform(10, 40, (2, 3, 2))], -1).astype("float32")
    grids = rng.uniform(0, 64, (2, 3, 2)).astype("float32")
    return [pose, cs, grids]


@pytest.mark.parametrize("image_size", [(64, 96), (96, 64)])
def test_shapes_for_non_square_inputs(image_size, network):
    """(H, W) stays (H, W) at every level (no transposition as in mmdeploy)."""
    network = network if image_size == network.image_size else tiny_rtmo(image_size)
    h, w = image_size
    features = network.backbone(_images(image_size))
    assert [tuple(f.shape) for f in features] == [
        (2, h // s, w // s, c) for s, c in zip((8, 16, 32), network.backbone.out_channels)
    ]
    assert network.backbone.out_channels == (32, 64, 128)  # int(256 w), int(512 w), int(1024 w) at w = 1/8
    outputs = network(_images(image_size))
    widths = {"cls": 1, "bbox": 4, "kpt_vis": TINY["num_keypoints"], "pose_vec": network.widths["pose_vec_channels"]}
    assert set(outputs) == {f"{k}_s{s}" for k in HEAD_OUTPUTS for s in (16, 32)}
    for stride in (16, 32):
        for kind in HEAD_OUTPUTS:
            assert tuple(outputs[f"{kind}_s{stride}"].shape) == (2, h // stride, w // stride, widths[kind])
    keypoints = _np(network.dcc(_dcc_inputs(network)))
    assert keypoints.shape == (2, 3, TINY["num_keypoints"], 2) and np.isfinite(keypoints).all()


def test_config_round_trips(network):
    for model in (network.backbone, network.neck, network.head):
        clone = type(model).from_config(model.get_config())
        assert clone.get_config() == model.get_config()
        assert clone.count_params() == model.count_params()
    clone = RTMONetwork.from_config(network.get_config())
    assert clone.get_config() == network.get_config()
    assert clone.count_params() == network.count_params()
    dcc = type(network.dcc).from_config(network.dcc.get_config())
    assert dcc.get_config() == network.dcc.get_config()


def test_keras_file_round_trip(tmp_path, network):
    x = _images((64, 96))
    expected = {k: _np(v) for k, v in network(x).items()}
    expected_kp = _np(network.dcc(_dcc_inputs(network)))
    path = tmp_path / "rtmo.keras"
    network.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, RTMONetwork)
    assert isinstance(loaded.backbone, CSPDarknetBackbone) and isinstance(loaded.neck, HybridEncoder)
    assert isinstance(loaded.head, RTMOHeadModule)
    got = loaded(x)
    for name, value in expected.items():
        np.testing.assert_allclose(_np(got[name]), value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(loaded.dcc(_dcc_inputs(network))), expected_kp, rtol=1e-5, atol=1e-4)


def test_sizes_table_matches_the_released_configs():
    """RTMO-t/s/m/l widths as mmpose's configs state them (neck in_channels, projector / pose vector)."""
    released = {"t": ([96, 192, 384], 192), "s": ([128, 256, 512], 256), "m": ([192, 384, 768], 384),
                "l": ([256, 512, 1024], 512)}
    from keras_pose.models.rtmo.rtmo_backbone import csp_darknet_widths
    from keras_pose.models.rtmo.rtmo_network import rtmo_widths

    for size, (neck_in, pose_vec) in released.items():
        widen = RTMO_SIZES[size]["widen_factor"]
        assert list(csp_darknet_widths(widen)[2:]) == neck_in
        assert rtmo_widths(widen)["pose_vec_channels"] == pose_vec == rtmo_widths(widen)["neck_out_channels"]
    assert RTMO_SIZES["t"]["image_size"] == (416, 416)


@pytest.mark.parametrize(
    "image_size, seed, overrides",
    [((64, 96), 3, None), ((96, 64), 6, {"num_keypoints": 3, "deepen_factor": 0.67})],
)
def test_converter_round_trip_on_unseen_files(image_size, seed, overrides, network, state_dict):
    """Weights exported in the mmpose layout convert back to the same outputs (factors inferred from the file)."""
    from keras_pose.conversion.rtmo_converter import convert_network

    if overrides is not None:
        network = tiny_rtmo(image_size, seed=seed, **overrides)
    sd = state_dict if overrides is None else export_state_dict(network)
    converted = convert_network(sd, image_size=image_size)
    assert isinstance(converted, RTMONetwork) and converted.get_config()["image_size"] == list(image_size)
    for key in ("deepen_factor", "num_keypoints", "hidden_dim", "feedforward_channels"):
        assert converted.get_config()[key] == pytest.approx(network.get_config()[key], rel=0.02), key
    assert converted.widths == network.widths and converted.widen_factor == network.widen_factor
    x = _images(image_size, seed=seed)
    expected, got = network(x), converted(x)
    for name in expected:
        np.testing.assert_allclose(_np(got[name]), _np(expected[name]), rtol=1e-4, atol=1e-4)
    inputs = _dcc_inputs(network, seed)
    np.testing.assert_allclose(_np(converted.dcc(inputs)), _np(network.dcc(inputs)), rtol=1e-4, atol=1e-3)


def test_converter_reports_every_problem_by_name(state_dict):
    from keras_pose.conversion import rtmo_converter

    sd = dict(state_dict)
    sd["head.head_module.out_extra.0.weight"] = np.zeros((3, 3), np.float32)
    del sd["neck.encoder.0.layers.0.norms.1.bias"]
    del sd["neck.sincos_pos_enc.dim_t"]  # the temperature then defaults to the reference's
    sd["head.dcc.x_fc.weight"] = sd["head.dcc.x_fc.weight"][:, :-1]
    sd["backbone.stage2.0.bn.running_var"] = np.full_like(sd["backbone.stage2.0.bn.running_var"], np.nan)
    with pytest.raises(CheckpointError) as info:
        rtmo_converter.convert_network(sd, image_size=(64, 96))
    message = str(info.value)
    for expected in ("unexpected (1)", "head.head_module.out_extra.0.weight", "missing (2)",
                     "neck.encoder.0.layers.0.norms.1.bias", "neck.sincos_pos_enc.dim_t expected (8)",
                     "misshapen (1)", "head.dcc.x_fc.weight", "non-finite (1)", "backbone.stage2.0.bn.running_var"):
        assert expected in message, expected
    # The training-only tensors are known and may be absent.
    slim = {k: v for k, v in state_dict.items()
            if not any(t in k for t in ("out_kpt_reg", "sigma_fc", "loss_oks"))}
    assert rtmo_converter.convert_network(slim, image_size=(64, 96)).num_keypoints == TINY["num_keypoints"]
    # The task needs a keypoint spec: a count no built-in spec has is refused by name.
    with pytest.raises(CheckpointError, match="pass keypoint_spec"):
        rtmo_converter.convert(slim, image_size=(64, 96))


def test_converter_refuses_other_families_and_unknown_options(state_dict):
    from keras_pose.conversion import rtmo_converter

    with pytest.raises(CheckpointError, match="not an mmpose RTMO"):
        rtmo_converter.convert({"backbone.cpm_stages.0.model.0.conv.weight": np.zeros((4, 4, 3, 3), np.float32)})
    with pytest.raises(TypeError, match="input_size"):
        rtmo_converter.convert(state_dict, input_size=(64, 64))


def test_backbone_rejects_sizes_that_are_not_multiples_of_32():
    with pytest.raises(ValueError, match="multiples of 32"):
        CSPDarknetBackbone(image_size=(100, 64))


def test_greedy_nms_suppresses_only_overlaps_above_the_threshold():
    from keras_pose.models.rtmo.rtmo_decoding import greedy_nms, pairwise_iou

    boxes = np.array([[[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 5], [20, 20, 30, 30], [0, 0, 10, 10]]],
                     np.float32)
    valid = np.array([[True, True, True, True, False]])
    iou = _np(pairwise_iou(boxes))[0]
    assert iou[0, 1] == pytest.approx(9 / 11) and iou[0, 2] == pytest.approx(0.5)
    keep = keras.ops.convert_to_numpy(greedy_nms(boxes, valid, 0.65))[0]
    np.testing.assert_array_equal(keep, [True, False, True, True, False])
    keep = keras.ops.convert_to_numpy(greedy_nms(boxes, valid, 0.4))[0]
    np.testing.assert_array_equal(keep, [True, False, False, True, False])


def test_decoding_on_a_non_square_batch(network):
    """Two images of a (64, 96) input: kept rows sorted, inside the input, not overlapping, padding zeroed."""
    from keras_pose.models.rtmo import decode_rtmo
    from keras_pose.models.rtmo.rtmo_decoding import rtmo_priors

    x = _images((64, 96), seed=11)
    out = decode_rtmo(network(x), network.dcc, (64, 96), score_threshold=0.3, nms_threshold=0.5, max_instances=8)
    out = {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}
    priors, _ = rtmo_priors((64, 96), (16, 32))
    assert priors.shape == (4 * 6 + 2 * 3, 2) and tuple(priors[5]) == (87.5, 7.5) and tuple(priors[24]) == (15.5, 15.5)
    assert out["keypoints"].shape == (2, 8, TINY["num_keypoints"], 2)
    for b in range(2):
        valid = out["valid"][b]
        n = int(valid.sum())
        assert valid[:n].all() and not valid[n:].any()
        scores = out["scores"][b][:n]
        assert np.all(np.diff(scores) <= 0) and np.all(scores > 0.3)
        boxes = out["boxes"][b][:n]
        assert np.all(boxes[:, 0::2] >= 0) and np.all(boxes[:, 0::2] <= 96)
        assert np.all(boxes[:, 1::2] >= 0) and np.all(boxes[:, 1::2] <= 64)
        np.testing.assert_array_equal(out["priors"][b][:n], priors[out["prior_index"][b][:n]])
        assert np.all(out["prior_index"][b][n:] == -1) and not out["keypoints"][b][n:].any()
    assert out["valid"].sum() > 0


@pytest.mark.slow
def test_convert_writes_a_task_preset_folder(tmp_path):
    """A 17-keypoint file converts to the RTMO task (COCO spec by count) and its preset folder loads back."""
    import keras_pose
    from keras_pose.conversion import convert_checkpoint
    from keras_pose.models.rtmo import RTMO

    network = tiny_rtmo((64, 96), seed=5, num_keypoints=17)
    model = convert_checkpoint(export_state_dict(network), output_dir=tmp_path / "preset", image_size=(64, 96),
                               decoding={"score_threshold": 0.2, "max_instances": 7})
    assert isinstance(model, RTMO) and model.keypoint_spec.name == "coco"
    assert model.test_cfg["score_threshold"] == 0.2 and model.test_cfg["max_instances"] == 7
    loaded = keras_pose.from_preset(str(tmp_path / "preset"))
    assert isinstance(loaded, RTMO) and loaded.test_cfg == model.test_cfg
    x = _images((64, 96), seed=2, batch=1)
    expected = network(x)
    for name, value in loaded(x).items():
        np.testing.assert_allclose(_np(value), _np(expected[name]), rtol=1e-4, atol=1e-3)


def test_mixed_precision_forward_and_decoding(network):
    """bfloat16 compute: the same head outputs pattern as float32 and finite decoded instances."""
    from keras_pose.models.rtmo import decode_rtmo

    mixed = RTMONetwork.from_config({**network.get_config(), "dtype": "mixed_bfloat16"})
    mixed.set_weights(network.get_weights())
    x = _images((64, 96), seed=4, batch=1)
    reference, got = network(x), mixed(x)
    for name in ("cls_s16", "pose_vec_s32"):
        assert keras.backend.standardize_dtype(got[name].dtype) == "bfloat16"
        correlation = np.corrcoef(_np(got[name]).ravel(), _np(reference[name]).ravel())[0, 1]
        assert correlation > 0.9, (name, correlation)
    # Random weights on 0..255 pixels give box log-sizes in the hundreds (exp -> inf, as the reference would);
    # shrink the box outputs so the decoded boxes, hence the DCC's bins, are finite, and the score logits to
    # their prior bias (logits of -100s underflow to score 0 in bfloat16, which no threshold keeps).
    for stride_index in range(2):
        layer = mixed.head.get_layer(f"out_bbox_{stride_index}")
        layer.kernel.assign(_np(layer.kernel) * 1e-4)
        layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
        layer = mixed.head.get_layer(f"out_cls_{stride_index}")
        layer.kernel.assign(_np(layer.kernel) * 1e-4)
    got = mixed(x)
    out = decode_rtmo(got, mixed.dcc, (64, 96), score_threshold=0.0, max_instances=4)
    assert keras.ops.convert_to_numpy(out["valid"]).all()
    assert np.isfinite(keras.ops.convert_to_numpy(out["bbox_cs"])).all()
    assert np.isfinite(keras.ops.convert_to_numpy(out["keypoints"])).all()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.function / XLA compilation")
def test_decoding_compiles_in_a_graph_and_with_xla(network):
    """The whole decoding (NMS loop included) runs inside tf.function, with and without XLA, as in eager."""
    import tensorflow as tf

    from keras_pose.models.rtmo import decode_rtmo

    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in network(_images((64, 96), seed=11)).items()}

    def decode(raw):
        return decode_rtmo(raw, network.dcc, (64, 96), score_threshold=0.3, nms_threshold=0.5, max_instances=8)

    eager = {k: keras.ops.convert_to_numpy(v) for k, v in decode(outputs).items()}
    assert eager["valid"].any()
    for jit_compile in (False, True):
        graph = tf.function(decode, jit_compile=jit_compile)({k: tf.constant(v) for k, v in outputs.items()})
        for name, value in graph.items():
            np.testing.assert_allclose(np.asarray(value, np.float64), np.asarray(eager[name], np.float64),
                                       rtol=1e-5, atol=1e-3, equal_nan=True, err_msg=f"{name} jit={jit_compile}")


def test_untrained_rtmo_has_mmpose_conv_init_and_finite_eval_outputs():
    """mmpose RTMO initialises every Conv2d with Kaiming(a=sqrt(5), uniform, fan_in): U(+-1/sqrt(fan_in)).

    With `ConvModule`'s he_normal (6x the variance) an untrained RTMO's eval-mode
    outputs on 0..255 images reached ~1e4 (cls up to 3e4, bbox 6e4): the decoded
    boxes overflowed and every keypoint was NaN, so an untrained model could not
    even be evaluated (`evaluate_pose_model` raised NonFiniteModelError).
    """
    from keras_pose.models.rtmo import RTMO
    from keras_pose.models.rtmo.rtmo_head import CLS_PRIOR_BIAS

    keras.utils.set_random_seed(0)
    model = RTMO.from_checkpoint_config(image_size=(128, 128), deepen_factor=0.33, widen_factor=0.25)
    model.compile()  # adds the training-only branches (out_kpt_reg convs)
    convs = [l for l in model._flatten_layers() if isinstance(l, keras.layers.Conv2D)]
    convs += list(model.training_branches.kpt_reg)
    assert len(convs) > 40
    for layer in convs:
        kernel = _np(layer.kernel)
        bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))
        assert np.abs(kernel).max() <= bound * (1 + 1e-5), layer.name
        if kernel.size >= 2000:  # the uniform law's std, bound / sqrt(3)
            assert abs(kernel.std() / (bound / np.sqrt(3.0)) - 1.0) < 0.1, layer.name
    outputs = {k: _np(v) for k, v in model(_images((128, 128), batch=2), training=False).items()}
    for name, value in outputs.items():
        assert np.isfinite(value).all() and np.abs(value).max() < 10.0, name
        if name.startswith("cls"):
            np.testing.assert_allclose(value, CLS_PRIOR_BIAS, atol=0.1)  # every cell scores ~0.01
    decoded = model.end_to_end_model().predict_on_batch(_images((128, 128), batch=2))
    assert all(np.isfinite(_np(decoded[k])).all() for k in ("boxes", "scores", "keypoints", "keypoint_scores"))


def test_norm_momentum_reaches_every_conv_block_and_round_trips():
    """Default: the reference's BatchNorm momenta (backbone / head 0.97, neck 0.9); `norm_momentum` sets them all."""
    from keras_pose.models.rtmo.rtmo_layers import RTMO_BN_MOMENTUM, TORCH_BN_MOMENTUM

    def momenta(net):
        return {part: {round(l.momentum, 6) for l in getattr(net, part)._flatten_layers()
                       if isinstance(l, keras.layers.BatchNormalization)} for part in ("backbone", "neck", "head")}

    default = RTMONetwork(image_size=(64, 64), **TINY)
    assert momenta(default) == {"backbone": {RTMO_BN_MOMENTUM}, "neck": {TORCH_BN_MOMENTUM},
                                "head": {RTMO_BN_MOMENTUM}}
    assert "norm_momentum" not in default.get_config()  # presets keep their config
    fast = RTMONetwork(image_size=(64, 64), norm_momentum=0.8, **TINY)
    assert momenta(fast) == {"backbone": {0.8}, "neck": {0.8}, "head": {0.8}}
    assert momenta(RTMONetwork.from_config(fast.get_config())) == momenta(fast)
    with pytest.raises(ValueError, match="norm_momentum must be in"):
        RTMONetwork(image_size=(64, 64), norm_momentum=1.5, **TINY)
