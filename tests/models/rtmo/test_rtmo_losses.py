"""RTMO loss terms (rtmo_losses) against hand computations in NumPy."""

import numpy as np

from keras_pose.models.rtmo.rtmo_losses import (bce_with_logits, iou_loss, l1_loss, mle_cc_loss, oks_loss,
                                               target_heatmaps, varifocal_loss)

RNG = np.random.default_rng(0)


def _np(x):
    return np.asarray(x, np.float64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _bce(x, t):
    p = _sigmoid(x)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def test_varifocal_loss_weights_negatives_by_alpha_p_gamma_and_positives_by_their_target():
    logits = np.array([[-2.0, 0.5, 3.0, 12.0]], np.float32)
    targets = np.array([[0.0, 0.0, 0.7, 0.9]], np.float32)
    got = _np(varifocal_loss(logits, targets))
    p = _sigmoid(_np(logits))
    clipped = np.clip(_np(logits), -10, 10)  # the BCE sees logits clipped to +-10, the weight does not
    weight = np.where(targets > 1e-4, targets, 0.75 * p ** 2)
    np.testing.assert_allclose(got, _bce(clipped, targets) * weight, rtol=1e-5)


def test_bce_with_logits_matches_the_definition():
    x = RNG.normal(size=(3, 5)).astype(np.float32) * 3
    t = (RNG.uniform(size=(3, 5)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(_np(bce_with_logits(x, t)), _bce(_np(x), t), rtol=1e-5, atol=1e-6)


def test_iou_loss_is_one_minus_squared_iou():
    pred = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 1.0, 1.0]], np.float32)
    target = np.array([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 6.0, 6.0]], np.float32)
    iou = np.array([50.0 / 150.0, 1.0, 1e-16])  # the last: no overlap, clamped at eps
    np.testing.assert_allclose(_np(iou_loss(pred, target)), 1.0 - iou ** 2, rtol=1e-6)


def test_oks_loss_weights_keypoints_by_label_over_k():
    sigmas = np.array([0.05, 0.1, 0.2], np.float32)
    pred = np.array([[[1.0, 1.0], [4.0, 0.0], [0.0, 0.0]]], np.float32)
    target = np.zeros((1, 3, 2), np.float32)
    weights = np.array([[1.0, 1.0, 0.0]], np.float32)
    areas = np.array([64.0], np.float32)
    d2 = np.array([2.0, 16.0, 0.0]) / 64.0 / (2 * sigmas.astype(np.float64)) ** 2
    expected = 1.0 - np.sum(np.exp(-d2 / 2) * weights[0] / 3.0)
    np.testing.assert_allclose(_np(oks_loss(pred, target, weights, areas, sigmas)), [expected], rtol=1e-5)


def test_target_heatmaps_and_mle_loss_by_hand():
    x_bins = np.linspace(-0.5, 0.5, 5).astype(np.float32)
    y_bins = np.linspace(-0.5, 0.5, 4).astype(np.float32)
    keypoints = np.array([[[12.0, 18.0], [9.0, 25.0]]], np.float32)  # (N=1, K=2, 2)
    bbox_cs = np.array([[10.0, 20.0, 8.0, 12.0]], np.float32)
    sigmas = np.array([[0.05, -0.3]], np.float32)  # the second is negative: clipped at 1e-3
    areas = np.array([0.25], np.float32)  # sqrt(area) clipped at 1
    hm_x, hm_y = (_np(h) for h in target_heatmaps(keypoints, bbox_cs, sigmas, areas, x_bins, y_bins))
    xs = x_bins * 8.0 + 10.0
    ys = y_bins * 12.0 + 20.0
    s = np.array([0.05, 1e-3])
    exp_x = np.exp(-np.abs(keypoints[0, :, 0:1] - xs[None]) / 1.0 / s[:, None] / 2) / s[:, None]
    exp_y = np.exp(-np.abs(keypoints[0, :, 1:2] - ys[None]) / 1.0 / s[:, None] / 2) / s[:, None]
    np.testing.assert_allclose(hm_x[0], exp_x, rtol=1e-4, atol=1e-30)
    np.testing.assert_allclose(hm_y[0], exp_y, rtol=1e-4, atol=1e-30)

    px = RNG.uniform(size=(1, 2, 5)).astype(np.float32)
    px /= px.sum(-1, keepdims=True)
    py = RNG.uniform(size=(1, 2, 4)).astype(np.float32)
    py /= py.sum(-1, keepdims=True)
    weights = np.array([[1.0, 0.0]], np.float32)
    got = _np(mle_cc_loss(px, py, hm_x.astype(np.float32), hm_y.astype(np.float32), weights))
    prob = (px * hm_x).sum(-1) * (py * hm_y).sum(-1)
    np.testing.assert_allclose(got, -np.log(prob + 1e-4) * weights, rtol=1e-4)


def test_l1_loss():
    np.testing.assert_allclose(_np(l1_loss(np.array([1.0, -2.0]), np.array([0.5, 1.0]))), [0.5, 3.0])
