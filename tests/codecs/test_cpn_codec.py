"""CPNHeatmap: pytorch-cpn targets and test-time decoding, CPN crops, presets.

The references in this file are written from the pytorch-cpn sources
(GengDavid/pytorch-cpn: `256.192.model/test.py`, `config.py`,
`dataloader/mscocoMulti.py`, `utils/imutils.py`) as plain loops, independent
of the codec's vectorised code.
"""

import json

import cv2
import numpy as np
import pytest
import tensorflow as tf
from pose_testing.paths import DATA_DIR
from pose_testing.paths import GOLDEN_DIR

from keras_pose.codecs import CODECS
from keras_pose.codecs import CodecError
from keras_pose.codecs import CPNHeatmap
from keras_pose.codecs import flip_test_average
from keras_pose.codecs import get_codec
from keras_pose.codecs import serialize_codec
from keras_pose.codecs.cpn_codec import opencv_gaussian_kernel
from keras_pose.geometry import GeometryError
from keras_pose.geometry import box_xywh_to_center_scale
from keras_pose.geometry import crop_to_image
from keras_pose.geometry import get_warp_matrix
from keras_pose.geometry import transform_points
from keras_pose.preprocessing import default_warp

# pytorch-cpn config.py `symmetry` (COCO left/right pairs).
CPN_SYMMETRY = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]
CPN_MEANS = np.array([122.7717, 115.9465, 102.9801])  # RGB


def _codec(size="256x192"):
    if size == "256x192":
        return CPNHeatmap((256, 192), (64, 48), kernel_sizes=(15, 11, 9, 7))
    return CPNHeatmap((384, 288), (96, 72), kernel_sizes=(23, 17, 13, 9))


# --- independent references ---------------------------------------------------


def _ref_kernel(k):
    """OpenCV 3/4 getGaussianKernel(k, 0): table up to 7, else sampled Gaussian."""
    tables = {7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]}
    if k in tables:
        g = np.array(tables[k])
    else:
        sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8
        x = np.arange(k) - (k - 1) / 2
        g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _ref_blur(image, k):
    """cv2.GaussianBlur(image, (k, k), 0) in NumPy: separable, BORDER_REFLECT_101."""
    g = _ref_kernel(k)
    r = (k - 1) // 2
    padded = np.pad(image.astype(np.float64), r, mode="reflect")  # NumPy 'reflect' = reflect-101
    rows = np.zeros((padded.shape[0], image.shape[1]))
    for t in range(k):
        rows += g[t] * padded[:, t : t + image.shape[1]]
    out = np.zeros(image.shape)
    for t in range(k):
        out += g[t] * rows[t : t + image.shape[0], :]
    return out


def _ref_generate_heatmap(point, heatmap_size, k):
    """pytorch-cpn: points //= 4, one pixel set to 1, GaussianBlur, scaled to 255."""
    hm = np.zeros(heatmap_size)
    pt = np.floor(np.asarray(point, np.float64) / 4)
    hm[int(pt[1])][int(pt[0])] = 1
    hm = _ref_blur(hm, k)
    return hm / (hm.max() / 255)


def _ref_cpn_decode(score_map, data_shape):
    """pytorch-cpn test.py post-processing of one sample, box frame instead of image.

    Args:
        score_map: (K, h, w) float32 heatmaps (NCHW without N, as test.py).
        data_shape: (H, W) input size.

    Returns:
        ((K, 2) input px 4 x + 2, (K,) scores).
    """
    single_map = score_map.copy()
    r0 = single_map.copy()
    r0 /= 255
    r0 += 0.5
    k_num, h, w = single_map.shape
    out, v_score = [], np.zeros(k_num)
    for p in range(k_num):
        single_map[p] /= np.amax(single_map[p])
        border = 10
        dr = np.zeros((h + 2 * border, w + 2 * border))
        dr[border:-border, border:-border] = single_map[p].copy()
        dr = _ref_blur(dr, 21)
        y, x = np.unravel_index(dr.argmax(), dr.shape)
        dr[y, x] = 0
        py, px = np.unravel_index(dr.argmax(), dr.shape)
        y, x = y - border, x - border
        py, px = py - border - y, px - border - x
        ln = (px**2 + py**2) ** 0.5
        if ln > 1e-3:
            x = x + 0.25 * px / ln
            y = y + 0.25 * py / ln
        x = max(0, min(x, w - 1))
        y = max(0, min(y, h - 1))
        stride_x, stride_y = data_shape[1] / w, data_shape[0] / h  # 4 in pytorch-cpn
        out.append((stride_x * x + stride_x / 2, stride_y * y + stride_y / 2))
        v_score[p] = float(r0[p, int(round(y) + 1e-10), int(round(x) + 1e-10)])
    return np.array(out), v_score


def _hand_made_heatmaps(rng, h=64, w=48, k=17):
    """(h, w, K) maps like a trained CPN's: Gaussian bumps peaking near 200,
    second bumps, noise, peaks at the borders and corners, negative maps."""
    ys, xs = np.mgrid[0:h, 0:w]
    maps = np.zeros((h, w, k), np.float32)
    for j in range(k):
        cx, cy = rng.uniform(3, w - 4), rng.uniform(3, h - 4)
        if j == 0:
            cx, cy = 0.2, 30.3  # left border
        elif j == 1:
            cx, cy = w - 1.1, h - 0.7  # bottom-right corner
        elif j == 2:
            cx, cy = 20.5, 0.4  # top border
        sigma = rng.uniform(1.2, 2.5)
        m = 200 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
        if j % 3 == 0:  # a weaker second person / limb
            m += 120 * np.exp(-((xs - rng.uniform(0, w)) ** 2 + (ys - rng.uniform(0, h)) ** 2) / 8)
        m += rng.normal(0, 4, size=m.shape)
        if j == 16:
            m = m - 300  # every value negative (a joint the net does not see)
        maps[..., j] = m
    return maps


# --- kernels and encoding -----------------------------------------------------


def test_opencv_kernels():
    for k in (3, 5, 7, 11, 13, 15, 17, 21, 23):
        # OpenCV 5 differs from 3/4 at k = 9 only; these agree across versions.
        np.testing.assert_allclose(
            opencv_gaussian_kernel(k), cv2.getGaussianKernel(k, 0, cv2.CV_64F).ravel(), rtol=0, atol=1e-15
        )
    for k in (7, 9, 11, 13, 15, 17, 21, 23):  # pytorch-cpn's kernels; k = 9: sigma 1.7
        np.testing.assert_allclose(opencv_gaussian_kernel(k), _ref_kernel(k), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(opencv_gaussian_kernel(7) * 32, [1, 3.5, 7, 9, 7, 3.5, 1])
    # The decoding blur is sigma 3.5.
    g = opencv_gaussian_kernel(21)
    np.testing.assert_allclose(g[10] / g[11], np.exp(1 / (2 * 3.5**2)), rtol=1e-12)


@pytest.mark.parametrize("size", ["256x192", "384x288"])
def test_encode_levels_match_pytorch_cpn_generate_heatmap(size):
    codec = _codec(size)
    h, w = codec.heatmap_size
    H, W = codec.input_size
    kp = np.array(
        [
            [50.3, 81.9],  # interior
            [0.5, 3.0],  # heatmap pixel (0, 0)
            [W - 0.1, H - 0.1],  # last heatmap pixel
            [4.0, 4.0],  # heatmap pixel (1, 1): reflection at the border
            [-1.0, 5.0],  # left of the crop
            [100.0, H],  # below the crop (y = H is outside)
            [7.9, 100.0],  # unlabelled (v = 0)
            [W / 2, H / 2],  # v = 1 (labelled, occluded)
        ]
    )
    vis = np.array([2, 2, 2, 2, 2, 2, 0, 1.0])
    targets = codec.encode(kp, vis)
    levels, weights = targets["heatmaps_levels"], targets["keypoint_weights"]
    np.testing.assert_array_equal(weights, [1, 1, 1, 1, 0, 0, 0, 1])
    assert len(levels) == 4
    for kernel, level in zip(codec.kernel_sizes, levels):
        assert level.shape == (h, w, 8) and level.dtype == np.float32
        for j in range(8):
            if weights[j] == 0:
                assert not level[..., j].any()
                continue
            expected = _ref_generate_heatmap(kp[j], (h, w), kernel)
            np.testing.assert_allclose(level[..., j], expected, rtol=0, atol=255 * 1e-6)
            assert level[..., j].max() == pytest.approx(255.0)
    np.testing.assert_array_equal(targets["heatmaps"], levels[-1])
    # Several crops at once give each crop's targets.
    both = codec.encode(np.stack([kp, kp[::-1]]), np.stack([vis, vis[::-1]]))
    assert both["heatmaps"].shape == (2, h, w, 8) and len(both["heatmaps_levels"]) == 4
    np.testing.assert_array_equal(both["heatmaps_levels"][0][0], levels[0])
    np.testing.assert_array_equal(both["heatmaps"][1], codec.encode(kp[::-1], vis[::-1])["heatmaps"])


def test_encode_by_hand_7x7_target():
    codec = _codec()
    # (50.3, 81.9) -> heatmap pixel (12, 20); 7x7 OpenCV kernel [1, 3.5, 7, 9, 7, 3.5, 1] / 32.
    hm = codec.encode(np.array([[50.3, 81.9]]))["heatmaps"][..., 0]
    g = np.array([1, 3.5, 7, 9, 7, 3.5, 1]) / 32
    expected = np.zeros((64, 48))
    expected[17:24, 9:16] = np.outer(g, g) / g[3] ** 2 * 255
    np.testing.assert_allclose(hm, expected, rtol=0, atol=1e-4)
    # At heatmap pixel 1, OpenCV's reflect-101 border adds the mirrored tail
    # to pixel 0: 2 * 7/32 > 9/32 + 3.5/32, so the target peaks at pixel 0.
    hm = codec.encode(np.array([[4.0, 80.0]]))["heatmaps"][..., 0]
    assert np.unravel_index(hm.argmax(), hm.shape) == (20, 0)
    # Columns 0, 1, 2 (x 1/32): 7 + 7, 9 + 3.5, 7 + 1.
    np.testing.assert_allclose(hm[20, :3], [255.0, 255 * 12.5 / 14, 255 * 8 / 14], rtol=1e-6)


@pytest.mark.parametrize("size", ["256x192", "384x288"])
def test_encode_tf_equals_encode(size):
    codec = _codec(size)
    rng = np.random.default_rng(3)
    W, H = codec.input_size[1], codec.input_size[0]
    kp = np.concatenate([rng.uniform(-20, [W + 20, H + 20], size=(15, 2)), [[0, 0], [W - 1e-3, H - 1e-3]]])
    vis = rng.choice([0.0, 1.0, 2.0], size=17)
    targets = codec.encode(kp, vis)
    heatmaps, weights = targets["heatmaps"], targets["keypoint_weights"]
    fn = tf.function(codec.encode_tf)
    targets_tf = fn(tf.constant(kp, tf.float32), tf.constant(vis))
    np.testing.assert_allclose(targets_tf["heatmaps"].numpy(), heatmaps, rtol=0, atol=1e-4 * 255)
    np.testing.assert_array_equal(targets_tf["keypoint_weights"].numpy(), weights)
    levels = codec.encode(kp.astype(np.float32), vis)["heatmaps_levels"]
    levels_tf = codec.encode_tf(kp.astype(np.float32), vis)["heatmaps_levels"]
    for a, b in zip(levels_tf, levels):
        np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-4 * 255)
    # Default visibility (all visible) inside a tf.data map.
    ds = tf.data.Dataset.from_tensor_slices(kp[None].astype(np.float32)).map(codec.encode_tf)
    element = next(iter(ds))
    hm_ds, w_ds = element["heatmaps"], element["keypoint_weights"]
    plain = codec.encode(kp.astype(np.float32))
    hm_np, w_np = plain["heatmaps"], plain["keypoint_weights"]
    np.testing.assert_allclose(hm_ds.numpy(), hm_np, rtol=0, atol=1e-4 * 255)
    np.testing.assert_array_equal(w_ds.numpy(), w_np)
    np.testing.assert_array_equal(w_np, _inside(kp.astype(np.float32), W, H).astype(np.float32))


def _inside(kp, W, H):
    return (kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H)


# --- decoding -------------------------------------------------------------------


@pytest.mark.parametrize("size", ["256x192", "384x288"])
def test_decode_matches_pytorch_cpn_post_processing(size):
    codec = _codec(size)
    h, w = codec.heatmap_size
    rng = np.random.default_rng(0 if size == "256x192" else 1)
    batch = np.stack([_hand_made_heatmaps(rng, h, w) for _ in range(3)])
    keypoints, scores = codec.decode(batch)
    assert keypoints.shape == (3, 17, 2) and scores.shape == (3, 17)
    assert keypoints.dtype == np.float32 and scores.dtype == np.float32
    for n in range(3):
        ref_kp, ref_scores = _ref_cpn_decode(np.transpose(batch[n], (2, 0, 1)), codec.input_size)
        np.testing.assert_allclose(keypoints[n], ref_kp, rtol=0, atol=1e-4)
        np.testing.assert_allclose(scores[n], ref_scores, rtol=1e-6, atol=1e-6)
    # Unbatched input.
    kp0, s0 = codec.decode(batch[0])
    np.testing.assert_array_equal(kp0, keypoints[0])
    np.testing.assert_array_equal(s0, scores[0])


def test_decode_by_hand():
    codec = _codec()
    hm = np.zeros((64, 48, 3), np.float32)
    # Keypoint 0: peak 230 at (x=20, y=30), right neighbour 150, lower neighbour 100.
    # Blurred (sigma 3.5, e = exp(-1 / 24.5)): centre 230 + 250 e, right 230 e + 150
    # + 100 e^2, below 230 e + 150 e^2 + 100: the second maximum is the right
    # neighbour -> x + 0.25, y unchanged (MSRA's signs would also move y).
    hm[30, 20, 0], hm[30, 21, 0], hm[31, 20, 0] = 230, 150, 100
    # Keypoint 1: peak 200 at (5, 10), 199 at the diagonal neighbour (6, 11):
    # the step is the unit diagonal, 0.25 / sqrt(2) in x and in y.
    hm[10, 5, 1], hm[11, 6, 1] = 200, 199
    # Keypoint 2: corner peak 255 at (0, 0) and 100 at (1, 0): the blurred
    # second maximum is (1, 0) -> x = 0.25; y stays 0.
    hm[0, 0, 2], hm[0, 1, 2] = 255, 100
    keypoints, scores = codec.decode(hm)
    d = 0.25 / np.sqrt(2)
    expected = np.array([[20.25, 30.0], [5 + d, 10 + d], [0.25, 0.0]]) * 4 + 2  # 4 x + 2
    np.testing.assert_allclose(keypoints, expected, rtol=0, atol=1e-5)
    # Scores: heatmap / 255 + 0.5 at the rounded location.
    np.testing.assert_allclose(scores, [230 / 255 + 0.5, 200 / 255 + 0.5, 1.5], rtol=1e-6)
    ref_kp, ref_scores = _ref_cpn_decode(np.transpose(hm, (2, 0, 1)), (256, 192))
    np.testing.assert_allclose(keypoints, ref_kp, rtol=0, atol=1e-5)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
    # A map whose maximum is 0 gives NaN in pytorch-cpn's normalisation; the
    # keypoint ends at heatmap pixel (0, 0), score 0.5.
    kp_zero, score_zero = codec.decode(np.zeros((64, 48, 1), np.float32))
    np.testing.assert_allclose(kp_zero, [[2.0, 2.0]])
    np.testing.assert_allclose(score_zero, [0.5])


def test_decode_is_mirror_symmetric_without_heatmap_shift():
    """u = (x + 0.5) * stride: mirroring the heatmap (x -> w - 1 - x) mirrors the
    decoded point in the crop (u -> W - u), so CPN's flip test needs no shift."""
    codec = _codec()
    rng = np.random.default_rng(5)
    hm = _hand_made_heatmaps(rng)[..., 3:16]  # interior peaks
    kp, scores = codec.decode(hm)
    kp_m, scores_m = codec.decode(np.ascontiguousarray(hm[:, ::-1]))
    np.testing.assert_allclose(kp_m[:, 0], 192 - kp[:, 0], atol=1e-4)
    np.testing.assert_allclose(kp_m[:, 1], kp[:, 1], atol=1e-4)
    np.testing.assert_array_equal(scores_m, scores)


def test_flip_test_average_reproduces_pytorch_cpn_flip():
    rng = np.random.default_rng(2)
    heatmaps = np.stack([_hand_made_heatmaps(rng) for _ in range(2)])
    flipped = np.stack([_hand_made_heatmaps(rng) for _ in range(2)])
    # test.py: NCHW score maps; each flipped map -> HWC, cv2.flip(., 1), swap pairs, average.
    score_map = np.transpose(heatmaps, (0, 3, 1, 2)).copy()
    flip_score_map = np.transpose(flipped, (0, 3, 1, 2))
    for i, fscore in enumerate(flip_score_map):
        fscore = cv2.flip(np.ascontiguousarray(fscore.transpose((1, 2, 0))), 1)
        fscore = list(fscore.transpose((2, 0, 1)))
        for q, w in CPN_SYMMETRY:
            fscore[q], fscore[w] = fscore[w], fscore[q]
        score_map[i] += np.array(fscore)
        score_map[i] /= 2
    from keras_pose.keypoints import get_keypoint_spec

    ours = flip_test_average(heatmaps, flipped, get_keypoint_spec("coco").flip_indices, shift_heatmap=False)
    np.testing.assert_array_equal(ours, np.transpose(score_map, (0, 2, 3, 1)))


def test_decode_rejects_bad_heatmaps():
    codec = _codec()
    with pytest.raises(CodecError, match="heatmap_size"):
        codec.decode(np.zeros((1, 32, 24, 17), np.float32))
    with pytest.raises(CodecError, match="channels-last"):
        codec.decode(np.zeros((64, 48), np.float32))


# --- round trip on COCO people ---------------------------------------------------


@pytest.fixture(scope="module")
def coco_dataset():
    from keras_pose.datasets import load_coco_keypoints

    path = DATA_DIR / "coco" / "test_coco.json"
    if not path.is_file():
        pytest.fail(f"sample annotations not found: {path}")
    dataset = load_coco_keypoints(path, keypoint_spec="coco")
    assert len(dataset) == 12
    return dataset


@pytest.mark.parametrize("size", ["256x192", "384x288"])
def test_round_trip_on_coco_people(coco_dataset, size):
    """Crop (+10 % / +15 % per side), encode the RefineNet target, decode, map back.

    Encoding floors to the 4-px heatmap cell and decoding returns its centre
    (<= 2 input px) moved 0.25 heatmap px (1 input px): <= 3 input px per
    axis for keypoints two cells or more inside the map. At the map border
    the reflected target and the zero-padded blur move the peak by up to one
    more cell (<= 7 input px).
    """
    codec = _codec(size)
    H, W = codec.input_size
    h, w = codec.heatmap_size
    errors, inner = [], []
    for inst in coco_dataset:
        center, scale = box_xywh_to_center_scale(inst.bbox, codec.input_size, padding=(1.2, 1.3))
        matrix = get_warp_matrix(center, scale, codec.input_size, udp=default_warp(codec) == "udp")
        crop = transform_points(inst.keypoints, matrix)
        targets = codec.encode(crop, inst.keypoints_visible)
        heatmaps, weights = targets["heatmaps"], targets["keypoint_weights"]
        labelled = inst.keypoints_visible > 0
        np.testing.assert_array_equal(weights > 0, labelled & _inside(crop, W, H))
        keypoints, scores = codec.decode(heatmaps[None])
        image_xy = crop_to_image(keypoints, center[None], scale[None], codec.input_size)[0]
        err = np.abs(image_xy - inst.keypoints) * np.array([W, H]) / scale  # input px
        cell = np.floor(crop / 4)
        ok = weights > 0
        errors.append(err[ok])
        inner.append(((cell >= 2) & (cell <= np.array([w - 3, h - 3]))).all(-1)[ok])
        # Scores: target peak 255 -> 255 / 255 + 0.5 (the decoded cell is the peak or a neighbour).
        assert np.all(scores[0][ok] > 1.2) and np.all(scores[0][ok] <= 1.5 + 1e-6)
    errors, inner = np.concatenate(errors), np.concatenate(inner)
    assert len(errors) > 100 and inner.sum() > 100
    assert errors[inner].max() <= 3.0 + 1e-4
    assert errors.max() <= 7.0 + 1e-4
    assert errors[inner].mean() < 2.0


@pytest.mark.parametrize("size", ["256x192", "384x288"])
def test_round_trip_at_the_crop_border(size):
    """Keypoints on the crop's edges: <= 3 input px two cells inside, <= 7 at the border."""
    codec = _codec(size)
    H, W = codec.input_size
    h, w = codec.heatmap_size
    t = np.arange(0.3, 1.0, 0.013)
    edges = [np.stack([t * W, np.full_like(t, v)], -1) for v in (0.2, 5.1, 9.5, H - 0.2, H - 6.3)]
    edges += [np.stack([np.full_like(t, v), t * H], -1) for v in (0.2, 4.7, 8.1, W - 0.2, W - 5.9)]
    points = np.concatenate(edges)  # > 128 maps in one decode call (OpenCV's channel limit)
    assert len(points) > 500
    targets = codec.encode(points)
    heatmaps, weights = targets["heatmaps"], targets["keypoint_weights"]
    assert weights.all()
    keypoints, _ = codec.decode(heatmaps)
    err = np.abs(keypoints - points)
    cell = np.floor(points / 4)
    inner = ((cell >= 2) & (cell <= np.array([w - 3, h - 3]))).all(-1)
    assert inner.sum() > 50 and (~inner).sum() > 200
    assert err[inner].max() <= 3.0 + 1e-4
    assert err.max() <= 7.0 + 1e-4


# --- config, registry, presets ----------------------------------------------------


def test_config_round_trip():
    codec = CPNHeatmap((384, 288), (96, 72), kernel_sizes=[23, 17, 13, 9], blur_border=8, shift=0.3)
    config = serialize_codec(codec)
    assert config["type"] == "CPNHeatmap"
    assert config["kernel_sizes"] == [23, 17, 13, 9]
    rebuilt = get_codec(json.loads(json.dumps(config)))
    assert isinstance(rebuilt, CPNHeatmap) and rebuilt == codec
    assert CPNHeatmap.from_config(codec.get_config()) == codec
    assert get_codec(codec) is codec
    assert CODECS["CPNHeatmap"] is CPNHeatmap
    assert default_warp(codec) == "standard" and codec.heatmap_span == (72, 96)
    assert codec.sigma == pytest.approx(1.7) and codec.stride == (4.0, 4.0)
    assert "CPNHeatmap(" in repr(codec)
    with pytest.raises(CodecError, match="MSRAHeatmap"):
        CPNHeatmap.from_config({"type": "MSRAHeatmap", "input_size": [256, 192], "heatmap_size": [64, 48]})


def test_bad_arguments():
    with pytest.raises(CodecError, match="odd"):
        CPNHeatmap((256, 192), (64, 48), kernel_sizes=(15, 10))
    with pytest.raises(CodecError, match="too large"):
        CPNHeatmap((32, 32), (8, 8), kernel_sizes=(23,))
    with pytest.raises(CodecError, match="blur_kernel_size"):
        CPNHeatmap((256, 192), (64, 48), blur_kernel_size=20)
    with pytest.raises(CodecError, match="at least one"):
        CPNHeatmap((256, 192), (64, 48), kernel_sizes=())
    with pytest.raises(CodecError, match="CPNHeatmap"):
        get_codec({"type": "CPNHeatmap", "input_size": [256, 192], "heatmap_size": [64, 48], "sigma": 2})
    with pytest.raises(CodecError, match=r"\(K, 2\)"):
        CPNHeatmap((256, 192), (64, 48)).encode(np.zeros((2, 3)))


def test_cpn_presets_use_the_codec():
    from keras_pose.presets.cpn_presets import PRESETS

    assert PRESETS
    for entry in PRESETS:
        decoding = entry.decoding
        codec = get_codec(decoding["codec"])
        assert isinstance(codec, CPNHeatmap), entry.name
        h, w = entry.config["image_size"]
        assert codec.input_size == (h, w) and codec.heatmap_size == (h // 4, w // 4)
        assert codec.kernel_sizes == ((15, 11, 9, 7) if (h, w) == (256, 192) else (23, 17, 13, 9))
        assert codec.blur_kernel_size == 21 and codec.blur_border == 10
        assert codec.shift == 0.25 and codec.target_peak == 255.0 and codec.score_offset == 0.5
        assert decoding["flip_test"] is True and decoding["shift_heatmap"] is False
        assert decoding["padding_xy"] == [1.2, 1.3] and decoding["border"] == "mean"
        assert decoding["padding"] == 1.3


# --- CPN crops ------------------------------------------------------------------


def test_per_axis_padding_reproduces_cpn_crop_box():
    # pytorch-cpn's integer GT box of COCO annotation 442619 (image 785): xyxy 280, 44, 499, 391.
    center, scale = box_xywh_to_center_scale([280, 44, 219, 347], (256, 192), padding=(1.2, 1.3))
    # crop_h = 347 * 1.3 = 451.1 wins (451.1 / 256 > 262.8 / 192); width 451.1 * 192 / 256.
    np.testing.assert_allclose(center, [389.5, 217.5])
    np.testing.assert_allclose(scale, [338.325, 451.1], rtol=1e-6)
    corners = np.floor(np.concatenate([center - scale / 2, center + scale / 2]))
    # test.py's `augmentation_details` (int() of the padded-image corners) of the golden case.
    np.testing.assert_array_equal(corners, [220, -9, 558, 443])
    # A wide box: the width wins.
    _, scale = box_xywh_to_center_scale([0, 0, 300, 100], (256, 192), padding=(1.2, 1.3))
    np.testing.assert_allclose(scale, [360, 480], rtol=1e-6)
    # A scalar equals the pair (p, p); bad values are rejected.
    a = box_xywh_to_center_scale([[10, 20, 50, 80], [0, 0, 300, 90]], (256, 192), padding=1.3)
    b = box_xywh_to_center_scale([[10, 20, 50, 80], [0, 0, 300, 90]], (256, 192), padding=(1.3, 1.3))
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
    for bad in ((1.2, 1.3, 1.4), (1.2, -1.0), 0.0, "wide"):
        with pytest.raises(GeometryError, match="padding"):
            box_xywh_to_center_scale([0, 0, 10, 10], (256, 192), padding=bad)


def test_crop_people_with_cpn_decoding_matches_pytorch_cpn_crop():
    """`crop_people` with the preset's padding_xy and mean border vs the golden
    pytorch-cpn crop (test-mode MscocoMulti.augmentationCropImage)."""
    from keras_pose.models.cpn.cpn_pose_estimator import CPN_PREPROCESSING
    from keras_pose.preprocessing import resolve_top_down_settings
    from keras_pose.presets.cpn_presets import PRESETS
    from keras_pose.utils.image_io import read_image

    case = GOLDEN_DIR / "cpn" / "cpn50_coco_256x192"
    if not (case / "input.npy").is_file():
        pytest.fail(f"golden case not found: {case}")
    entry = next(e for e in PRESETS if e.name == "cpn50_coco_256x192")
    image = read_image(str(DATA_DIR / "coco" / "000000000785.jpg"))
    golden = np.load(case / "input.npy")[0].transpose(1, 2, 0)  # normalised: x / 255 - mean / 255
    golden = np.round((golden + (CPN_MEANS / 255).astype(np.float32)) * 255)

    def crop(decoding):
        preprocessor, _, _ = resolve_top_down_settings(
            (256, 192), (64, 48), preprocessing=dict(CPN_PREPROCESSING), decoding=decoding
        )
        crops, centers, scales = preprocessor.cropper.crop(
            image, np.array([[280, 44, 219, 347.0]]), fill_value=preprocessor.crop_fill_value()
        )
        return crops[0].astype(np.float32), centers[0], scales[0]

    ours, center, scale = crop(entry.decoding)
    np.testing.assert_allclose(scale, [338.325, 451.1], rtol=1e-6)
    # Rows above the image (y < 0) hold the pixel means rounded to uint8, as cv2.copyMakeBorder.
    np.testing.assert_array_equal(ours[:4], np.broadcast_to([123.0, 116.0, 103.0], (4, 192, 3)))
    np.testing.assert_array_equal(golden[:4], ours[:4])
    mean_diff = np.abs(ours - golden).mean()
    assert mean_diff < 2.5  # 1.75: integer corners and cv2.resize sampling are not reproduced
    # The old approximation (uniform padding 1.3, zero border) is much further off.
    old = dict(entry.decoding, border=None, padding_xy=None)
    assert np.abs(crop(old)[0] - golden).mean() > 3 * mean_diff
