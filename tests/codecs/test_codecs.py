"""Heatmap codecs: encoding, decoding, refinements, flip test, configs."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from pose_testing.paths import DATA_DIR

from keras_pose.codecs import CodecError
from keras_pose.codecs import MSRAHeatmap
from keras_pose.codecs import UDPHeatmap
from keras_pose.codecs import flip_heatmaps
from keras_pose.codecs import flip_keypoints
from keras_pose.codecs import flip_test_average
from keras_pose.codecs import gaussian_blur_hf
from keras_pose.codecs import gaussian_blur_mmpose
from keras_pose.codecs import get_codec
from keras_pose.codecs import get_heatmap_maximum
from keras_pose.codecs import refine_keypoints
from keras_pose.codecs import refine_keypoints_dark
from keras_pose.codecs import refine_keypoints_dark_udp
from keras_pose.codecs import serialize_codec
from keras_pose.geometry import box_xywh_to_center_scale
from keras_pose.geometry import crop_to_image
from keras_pose.geometry import get_warp_matrix
from keras_pose.geometry import transform_points
from keras_pose.preprocessing import default_warp

COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def encoded(targets):
    """(heatmaps, keypoint_weights) of a codec's target dict."""
    return targets["heatmaps"], targets["keypoint_weights"]


def udp_warp(codec):
    """The warp the codec's models are cropped with (UDP for UDPHeatmap)."""
    return default_warp(codec) == "udp"


def _codecs():
    return {
        "msra": MSRAHeatmap((256, 192), (64, 48), sigma=2.0),
        "msra_dark": MSRAHeatmap((256, 192), (64, 48), sigma=2.0, unbiased=True),
        "udp": UDPHeatmap((256, 192), (64, 48), sigma=2.0),
        "udp_hf": UDPHeatmap((256, 192), (64, 48), sigma=2.0, dark_variant="hf"),
        "udp_384": UDPHeatmap((384, 288), (96, 72), sigma=3.0, blur_kernel_size=17),
        "msra_dark_384": MSRAHeatmap((384, 288), (96, 72), sigma=3.0, unbiased=True, blur_kernel_size=17),
    }


@pytest.fixture(scope="module")
def coco_people():
    path = DATA_DIR / "coco" / "test_coco.json"
    if not path.is_file():
        pytest.fail(f"sample annotations not found: {path}")
    anns = json.loads(path.read_text())["annotations"]
    people = []
    for ann in anns:
        kps = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        if (kps[:, 2] > 0).any():
            people.append((np.asarray(ann["bbox"], np.float64), kps[:, :2], kps[:, 2]))
    assert len(people) == 12  # 14 annotations, 2 without keypoints
    return people


def _round_trip(codec, people):
    """Warp, encode, decode, map back. Returns per-joint errors in input px."""
    h_in, w_in = codec.input_size
    errors, near_border, weights_all, vis_all = [], [], [], []
    hh, hw = codec.heatmap_size
    margin = (codec.blur_kernel_size - 1) // 2 + 1
    for box, xy, vis in people:
        center, scale = box_xywh_to_center_scale(box, codec.input_size)
        crop = transform_points(xy, get_warp_matrix(center, scale, codec.input_size, udp=udp_warp(codec)))
        heatmaps, weights = encoded(codec.encode(crop, vis))
        keypoints, scores = codec.decode(heatmaps[None])
        image_xy = crop_to_image(keypoints, center[None], scale[None], codec.input_size)[0]
        err = np.abs(image_xy - xy) * np.array([w_in, h_in]) / scale  # input px
        errors.append(err.max(-1))
        hm_xy = crop * np.asarray(codec.input_to_heatmap())
        inner = (hm_xy >= margin).all(-1) & (hm_xy[:, 0] <= hw - 1 - margin) & (hm_xy[:, 1] <= hh - 1 - margin)
        near_border.append(~inner)
        weights_all.append(weights)
        vis_all.append(vis)
        # Peak 1 at the keypoint: the grid maximum is at most half a pixel away.
        lowest = np.exp(-0.5 / (2 * codec.sigma**2))
        assert np.all((scores[0][weights > 0] >= lowest - 1e-6) & (scores[0][weights > 0] <= 1.0))
    return (np.concatenate(errors), np.concatenate(near_border), np.concatenate(weights_all), np.concatenate(vis_all))


# --- encoding ----------------------------------------------------------------


def test_msra_encode_integer_centred_gaussian_by_hand():
    codec = MSRAHeatmap((256, 192), (64, 48), sigma=2.0)
    # (50.3, 81.9) input px -> (12.575, 20.475) heatmap px -> pixel (13, 20).
    heatmaps, weights = encoded(codec.encode(np.array([[50.3, 81.9]]), np.array([1.0])))
    assert heatmaps.shape == (64, 48, 1) and heatmaps.dtype == np.float32
    hm = heatmaps[..., 0]
    assert hm[20, 13] == 1.0 and np.unravel_index(hm.argmax(), hm.shape) == (20, 13)
    np.testing.assert_allclose(hm[20, 14], np.exp(-1 / 8), rtol=1e-6)
    np.testing.assert_allclose(hm[21, 12], np.exp(-2 / 8), rtol=1e-6)
    np.testing.assert_allclose(hm[26, 19], np.exp(-72 / 8), rtol=1e-6)  # window corner
    assert hm[20, 20] == 0.0 and hm[27, 13] == 0.0  # outside the 13 x 13 window
    assert (hm > 0).sum() == 13 * 13
    np.testing.assert_array_equal(weights, [1.0])


def test_udp_encode_subpixel_gaussian_by_hand():
    codec = UDPHeatmap((256, 192), (64, 48), sigma=2.0)
    kp = np.array([[100.0, 37.0]])
    heatmaps, _ = encoded(codec.encode(kp))
    hm = heatmaps[..., 0]
    x, y = 100.0 * 47 / 191, 37.0 * 63 / 255  # (24.607, 9.141)
    ys, xs = np.mgrid[0:64, 0:48]
    expected = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 8.0)
    window = (np.abs(xs - 25) <= 6) & (np.abs(ys - 9) <= 6)
    np.testing.assert_allclose(hm, np.where(window, expected, 0.0), atol=1e-7)


def test_dark_encode_unwindowed_gaussian():
    codec = MSRAHeatmap((256, 192), (64, 48), sigma=2.0, unbiased=True)
    heatmaps, _ = encoded(codec.encode(np.array([[50.3, 81.9]])))
    ys, xs = np.mgrid[0:64, 0:48]
    expected = np.exp(-((xs - 50.3 / 4) ** 2 + (ys - 81.9 / 4) ** 2) / 8.0)
    np.testing.assert_allclose(heatmaps[..., 0], expected, atol=1e-7)


@pytest.mark.parametrize("name", ["msra", "msra_dark", "udp"])
def test_invisible_and_outside_joints_get_zero_weight(name):
    codec = _codecs()[name]
    kp = np.array([[96.0, 128.0], [96.0, 128.0], [-40.0, 50.0], [100.0, 400.0], [3.0, 3.0], [-2.0, 10.0]])
    vis = np.array([2.0, 0.0, 1.0, 1.0, 1.0, 0.3])
    heatmaps, weights = encoded(codec.encode(kp, vis))
    # COCO v=2 -> 1; v=0, off-map and v<0.5 -> 0.
    np.testing.assert_array_equal(weights, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    assert heatmaps[..., 0].max() == pytest.approx(1.0, abs=0.05)
    for k in (1, 2, 3, 5):
        assert not heatmaps[..., k].any()
    # Joint partly outside (x = -2 input px) keeps its in-map tail.
    assert heatmaps[..., 4].max() > 0.5
    # Default: all visible.
    _, weights = encoded(codec.encode(kp[:1]))
    np.testing.assert_array_equal(weights, [1.0])


@pytest.mark.parametrize("name", ["msra", "msra_dark", "udp", "udp_384"])
def test_encode_tf_equals_encode(name, coco_people):
    codec = _codecs()[name]
    encode_graph = tf.function(codec.encode_tf)
    for box, xy, vis in coco_people:
        center, scale = box_xywh_to_center_scale(box, codec.input_size)
        crop = transform_points(xy, get_warp_matrix(center, scale, codec.input_size, udp=udp_warp(codec)))
        crop[0] = [-1.3, 2.5]  # exercise rounding of negative and .5 positions
        hm_np, w_np = encoded(codec.encode(crop, vis))
        hm_tf, w_tf = encoded(encode_graph(tf.constant(crop, tf.float32), tf.constant(vis, tf.float32)))
        assert hm_tf.dtype == tf.float32 and tuple(hm_tf.shape) == hm_np.shape
        # Compare on the float32 input the graph saw.
        hm_np32, w_np32 = encoded(codec.encode(crop.astype(np.float32), vis))
        np.testing.assert_allclose(hm_tf.numpy(), hm_np32, atol=1e-6, rtol=0)
        np.testing.assert_array_equal(w_tf.numpy(), w_np32)
        np.testing.assert_allclose(hm_np32, hm_np, atol=1e-5)


def test_encode_tf_in_tf_data_pipeline():
    codec = UDPHeatmap((256, 192), (64, 48))
    kps = np.random.default_rng(0).uniform(0, 190, size=(4, 17, 2)).astype(np.float32)
    vis = np.ones((4, 17), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((kps, vis)).map(codec.encode_tf).batch(2)
    batches = [encoded(b) for b in ds]
    assert batches[0][0].shape == (2, 64, 48, 17) and batches[0][1].shape == (2, 17)
    np.testing.assert_allclose(batches[1][0].numpy()[1], codec.encode(kps[3], vis[3])["heatmaps"], atol=1e-6)
    # Several people at once: the same targets as one at a time.
    many = codec.encode(kps, vis)
    assert many["heatmaps"].shape == (4, 64, 48, 17) and many["keypoint_weights"].shape == (4, 17)
    np.testing.assert_array_equal(many["heatmaps"][2], codec.encode(kps[2], vis[2])["heatmaps"])
    many_tf = codec.encode_tf(tf.constant(kps), tf.constant(vis))
    np.testing.assert_allclose(many_tf["heatmaps"].numpy(), many["heatmaps"], atol=1e-6)


# --- decoding ----------------------------------------------------------------


def test_get_heatmap_maximum_ties_and_non_positive():
    hm = np.zeros((1, 4, 5, 3), np.float32)
    hm[0, 1, 3, 0] = 0.7
    hm[0, 2, 1, 0] = 0.7  # tie, later in row-major order
    hm[..., 1] = -0.5
    hm[0, 3, 4, 2] = 0.2
    locs, vals = get_heatmap_maximum(hm)
    np.testing.assert_array_equal(locs[0], [[3, 1], [-1, -1], [4, 3]])
    np.testing.assert_allclose(vals[0], [0.7, -0.5, 0.2])


def test_quarter_offset_refinement_values():
    hm = np.zeros((1, 64, 48, 3), np.float32)
    # k=0: peak (10, 20), right neighbour > left, upper neighbour > lower.
    hm[0, 20, 10, 0] = 1.0
    hm[0, 20, 11, 0], hm[0, 20, 9, 0] = 0.6, 0.4
    hm[0, 19, 10, 0], hm[0, 21, 10, 0] = 0.7, 0.3
    # k=1: symmetric peak -> no shift.
    hm[0, 30, 30, 1] = 1.0
    hm[0, 30, [29, 31], 1] = 0.5
    hm[0, [29, 31], 30, 1] = 0.5
    # k=2: peak at x = 1 (mmpose refines x only for 1 < x < W - 1).
    hm[0, 40, 1, 2] = 1.0
    hm[0, 40, 2, 2] = 0.5
    hm[0, 41, 1, 2] = 0.5
    locs, _ = get_heatmap_maximum(hm)
    refined = refine_keypoints(locs, hm)
    np.testing.assert_allclose(refined[0], [[10.25, 19.75], [30.0, 30.0], [1.0, 40.25]])
    keypoints, scores = MSRAHeatmap((256, 192), (64, 48)).decode(hm[0])
    assert keypoints.shape == (3, 2) and scores.shape == (3,)
    np.testing.assert_allclose(keypoints, [[41.0, 79.0], [120.0, 120.0], [4.0, 161.0]])


def test_dark_refinements_recover_analytic_peak():
    ys, xs = np.mgrid[0:64, 0:48]
    x0, y0 = 20.3, 33.7
    hm = np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * 2.0**2)).astype(np.float32)[None, ..., None]
    locs, _ = get_heatmap_maximum(hm)
    np.testing.assert_array_equal(locs[0, 0], [20, 34])
    for refined in (
        refine_keypoints_dark(locs, hm, 11),
        refine_keypoints_dark_udp(locs, hm, 11, variant="mmpose"),
        refine_keypoints_dark_udp(locs, hm, 11, variant="hf"),
    ):
        np.testing.assert_allclose(refined[0, 0], [x0, y0], atol=2e-3)


def test_blurs():
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(3, 16, 12)).astype(np.float32)
    # mmpose blur keeps each map's maximum.
    np.testing.assert_allclose(gaussian_blur_mmpose(maps, 5).max(axis=(1, 2)), maps.max(axis=(1, 2)), rtol=1e-5)
    # HF blur of a constant map is the constant (normalised kernel, reflect borders).
    np.testing.assert_allclose(gaussian_blur_hf(np.full((1, 8, 8), 0.3, np.float32)), 0.3, rtol=1e-6)
    try:
        from scipy.ndimage import gaussian_filter
    except ImportError:
        return
    ref = np.stack([gaussian_filter(m, sigma=0.8, radius=(5, 5), mode="reflect") for m in maps])
    np.testing.assert_allclose(gaussian_blur_hf(maps, 0.8, 5), ref, atol=1e-7)


@pytest.mark.parametrize("name", list(_codecs()))
def test_encode_decode_round_trip_on_coco(name, coco_people):
    codec = _codecs()[name]
    err, near_border, weights, vis = _round_trip(codec, coco_people)
    labelled = vis > 0
    # Every labelled joint of these people lies on the heatmap.
    np.testing.assert_array_equal(weights > 0, labelled)
    assert labelled.sum() == 181
    err, near_border = err[labelled], near_border[labelled]
    stride = codec.input_size[1] / codec.heatmap_size[1]
    if name == "msra":
        # Integer-centred targets: the symmetric peak gets no quarter shift,
        # so the error is the rounding to the heatmap grid.
        assert err.max() <= stride / 2 + 1e-3
        assert err.mean() > 0.5
    elif name.startswith("msra_dark"):
        # DARK is exact away from the border. Near it mmpose skips DARK
        # (within 2 px) or the zero-padded blur biases the Newton step.
        assert err[~near_border].max() < 0.01
        assert err.max() < stride
    elif name == "udp_hf":
        assert err.max() < 0.05
    else:  # udp (mmpose variant): zero-padded blur biases border joints.
        assert err[~near_border].max() < 0.01
        assert err.max() < 1.25
    assert (~near_border).sum() >= 170


def test_decode_batch_shapes_and_size_check():
    codec = UDPHeatmap((256, 192), (64, 48))
    hm = np.random.default_rng(4).uniform(size=(3, 64, 48, 17)).astype(np.float32)
    kp, sc = codec.decode(hm)
    assert kp.shape == (3, 17, 2) and sc.shape == (3, 17)
    assert kp.dtype == np.float32 and sc.dtype == np.float32
    kp1, sc1 = codec.decode(hm[1])
    np.testing.assert_allclose(kp1, kp[1], atol=1e-5)
    np.testing.assert_allclose(sc1, sc[1])
    with pytest.raises(CodecError, match="heatmap_size"):
        codec.decode(np.zeros((1, 17, 64, 48), np.float32))


# --- flip --------------------------------------------------------------------


def test_flip_keypoints_convention():
    kp = np.array([[[10.0, 5.0], [20.0, 6.0], [30.0, 7.0]]])
    vis = np.array([[1.0, 0.0, 2.0]])
    flipped, fvis = flip_keypoints(kp, vis, [0, 2, 1], image_width=192)
    np.testing.assert_allclose(flipped, [[[181.0, 5.0], [161.0, 7.0], [171.0, 6.0]]])
    np.testing.assert_array_equal(fvis, [[1.0, 2.0, 0.0]])
    # Consistent with mirroring the pixel array: pixel x moves to W - 1 - x.
    image = np.zeros((8, 192), np.float32)
    image[5, 10] = 1.0
    assert np.argmax(image[:, ::-1][5]) == flipped[0, 0, 0]
    assert flip_keypoints(kp, None, [0, 2, 1], 192)[1] is None


def test_flip_heatmaps_mirror_swap_and_shift():
    hm = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)
    out = flip_heatmaps(hm, [0, 2, 1])
    np.testing.assert_array_equal(out[:, :, 0, 1], hm[:, :, 3, 2])
    np.testing.assert_array_equal(out[:, :, 1, 0], hm[:, :, 2, 0])
    shifted = flip_heatmaps(hm, [0, 2, 1], shift_heatmap=True)
    np.testing.assert_array_equal(shifted[:, :, 1:], out[:, :, :-1])
    np.testing.assert_array_equal(shifted[:, :, 0], out[:, :, 0])
    # Backend tensors take the Keras ops path with the same result.
    for shift in (False, True):
        t = flip_heatmaps(keras.ops.convert_to_tensor(hm), [0, 2, 1], shift_heatmap=shift)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(t), flip_heatmaps(hm, [0, 2, 1], shift))
    with pytest.raises(CodecError, match="flip_indices"):
        flip_heatmaps(hm, [0, 1])


def _flipped_pair(codec, box, xy, vis):
    h_in, w_in = codec.input_size
    center, scale = box_xywh_to_center_scale(box, codec.input_size)
    crop = transform_points(xy, get_warp_matrix(center, scale, codec.input_size, udp=udp_warp(codec)))
    heatmaps, weights = encoded(codec.encode(crop, vis))
    crop_f, vis_f = flip_keypoints(crop, vis, COCO_FLIP, w_in)
    heatmaps_f, _ = encoded(codec.encode(crop_f, vis_f))  # a perfect model on the mirrored crop
    return heatmaps, heatmaps_f, weights, crop


def test_flip_test_udp_is_aligned(coco_people):
    codec = UDPHeatmap((256, 192), (64, 48))
    for box, xy, vis in coco_people:
        heatmaps, heatmaps_f, weights, _ = _flipped_pair(codec, box, xy, vis)
        kp, _ = codec.decode(heatmaps)
        back = flip_heatmaps(heatmaps_f[None], COCO_FLIP)[0]
        ok = weights > 0
        kp_back, _ = codec.decode(back)
        np.testing.assert_allclose(kp_back[ok], kp[ok], atol=0.01)
        kp_avg, _ = codec.decode(flip_test_average(heatmaps[None], heatmaps_f[None], COCO_FLIP)[0])
        np.testing.assert_allclose(kp_avg[ok], kp[ok], atol=0.01)


def test_flip_test_msra_offsets(coco_people):
    codec = MSRAHeatmap((256, 192), (64, 48), unbiased=True)
    stride = 4.0
    dx = {"raw": [], "shift": [], "avg": []}
    for box, xy, vis in coco_people:
        heatmaps, heatmaps_f, weights, crop = _flipped_pair(codec, box, xy, vis)
        hm_x = crop[:, 0] / stride
        ok = (weights > 0) & (hm_x > 4) & (hm_x < 43) & (crop[:, 1] / stride > 3) & (crop[:, 1] / stride < 60)
        kp, _ = codec.decode(heatmaps)
        raw, _ = codec.decode(flip_heatmaps(heatmaps_f, COCO_FLIP))
        shifted, _ = codec.decode(flip_heatmaps(heatmaps_f, COCO_FLIP, shift_heatmap=True))
        avg, _ = codec.decode(flip_test_average(heatmaps, heatmaps_f, COCO_FLIP, shift_heatmap=True))
        dx["raw"].append((raw - kp)[ok, 0])
        dx["shift"].append((shifted - kp)[ok, 0])
        dx["avg"].append((avg - kp)[ok, 0])
        np.testing.assert_allclose((shifted - kp)[ok, 1], 0.0, atol=0.01)
    # Mirroring pixel indices (x -> W - 1 - x) leaves MSRA heatmaps offset by
    # 1/stride - 1 heatmap px; the one-pixel shift leaves +1/stride.
    np.testing.assert_allclose(np.concatenate(dx["raw"]), 1.0 - stride, atol=0.02)
    np.testing.assert_allclose(np.concatenate(dx["shift"]), 1.0, atol=0.02)
    np.testing.assert_allclose(np.concatenate(dx["avg"]), 0.5, atol=0.05)


# --- configs -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(_codecs()))
def test_config_round_trip(name):
    codec = _codecs()[name]
    config = codec.get_config()
    json.dumps(config)
    clone = type(codec).from_config(config)
    assert clone == codec and clone.heatmap_span == codec.heatmap_span
    assert get_codec(serialize_codec(codec)) == codec
    assert get_codec(codec) is codec
    assert clone.input_size == codec.input_size and isinstance(clone.input_size, tuple)


def test_get_codec_and_bad_arguments():
    codec = get_codec({"type": "UDPHeatmap", "input_size": [256, 192], "heatmap_size": [64, 48]})
    assert isinstance(codec, UDPHeatmap) and codec.heatmap_span == (47, 63) and codec.dark_variant == "mmpose"
    msra = get_codec({"type": "MSRAHeatmap", "input_size": (256, 192), "heatmap_size": (64, 48)})
    assert msra.heatmap_span == (48, 64) and default_warp(msra) == "standard" and default_warp(codec) == "udp"
    with pytest.raises(CodecError, match="unknown codec type"):
        get_codec({"type": "SimCC"})
    with pytest.raises(CodecError, match="bad arguments"):
        get_codec({"type": "UDPHeatmap", "input_size": (256, 192), "heatmap_size": (64, 48), "foo": 1})
    with pytest.raises(ValueError, match="dark_variant"):
        UDPHeatmap((256, 192), (64, 48), dark_variant="scipy")
    with pytest.raises(CodecError, match="blur_kernel_size"):
        MSRAHeatmap((256, 192), (64, 48), blur_kernel_size=10)
    with pytest.raises(CodecError, match="input_size"):
        MSRAHeatmap(256, (64, 48))
    with pytest.raises(CodecError, match="keypoints"):
        MSRAHeatmap((256, 192), (64, 48)).encode(np.zeros((2, 1, 17, 2)))
    with pytest.raises(CodecError, match="not MSRAHeatmap"):
        MSRAHeatmap.from_config({"type": "UDPHeatmap", "input_size": (256, 192), "heatmap_size": (64, 48)})


@pytest.mark.parametrize("name", ["msra", "msra_dark", "udp", "udp_hf"])
def test_multi_instance_round_trip_on_real_people(name, coco_people):
    """All 12 COCO sample people encoded at once (N, K, 2) -> targets -> decode -> image pixels."""
    codec = _codecs()[name]
    h_in, w_in = codec.input_size
    centers, scales, crops, vis = [], [], [], []
    for box, xy, v in coco_people:
        center, scale = box_xywh_to_center_scale(box, codec.input_size)
        crops.append(transform_points(xy, get_warp_matrix(center, scale, codec.input_size, udp=udp_warp(codec))))
        centers.append(center)
        scales.append(scale)
        vis.append(v)
    crops, vis = np.stack(crops), np.stack(vis)
    targets = codec.encode(crops, vis)
    n = len(coco_people)
    assert targets["heatmaps"].shape == (n, *codec.heatmap_size, 17) and targets["keypoint_weights"].shape == (n, 17)
    for i in (0, n - 1):  # the same targets as one person at a time
        single = codec.encode(crops[i], vis[i])
        np.testing.assert_array_equal(targets["heatmaps"][i], single["heatmaps"])
        np.testing.assert_array_equal(targets["keypoint_weights"][i], single["keypoint_weights"])
    keypoints, scores = codec.decode(targets)  # an outputs dict decodes like the array
    assert keypoints.shape == (n, 17, 2) and scores.shape == (n, 17)
    image_xy = crop_to_image(keypoints, np.stack(centers), np.stack(scales), codec.input_size)
    gt = np.stack([xy for _, xy, _ in coco_people])
    err = np.abs(image_xy - gt) * np.array([w_in, h_in]) / np.stack(scales)[:, None, :]  # input px
    ok = targets["keypoint_weights"] > 0
    assert ok.sum() > 100
    # Within a quarter heatmap pixel (MSRA's quarter-offset decoder) of the annotation, input px.
    assert err[ok].max() <= 0.25 * w_in / codec.heatmap_size[1] + 1.0, err[ok].max()
