"""RTMO training pieces: the loss on hand-made head outputs, the mode switch, the ignore-mask sampling."""

import types

import keras
import numpy as np
import pytest

from keras_pose.data import MixingSwitch
from keras_pose.models.rtmo.rtmo_dcc import DynamicCoordinateClassifier
from keras_pose.models.rtmo.rtmo_training import (STAGE1, RTMOLoss, RTMOModeSwitch, RTMOTrainingBranches,
                                                  sample_mask_bilinear)

K = 3
SIGMAS = np.array([0.1, 0.1, 0.1], np.float32)
IMAGE = (64, 64)
STRIDES = (16, 32)


def _fake_network():
    dcc = DynamicCoordinateClassifier(in_channels=8, num_keypoints=K, feat_channels=8, num_bins=(8, 8),
                                      spe_channels=8, gau_s=8)
    dcc.build()
    return types.SimpleNamespace(featmap_strides=STRIDES, dcc=dcc)


def _outputs(box_deltas=None, cls_logit=-4.6):
    """Head outputs for a 64x64 input (4x4 + 2x2 cells); every cell predicts `box_deltas`."""
    rng = np.random.default_rng(0)
    out = {}
    for s in STRIDES:
        n = IMAGE[0] // s
        bbox = np.zeros((1, n, n, 4), np.float32) if box_deltas is None else np.tile(box_deltas, (1, n, n, 1))
        out[f"cls_s{s}"] = np.full((1, n, n, 1), cls_logit, np.float32)
        out[f"bbox_s{s}"] = bbox.astype(np.float32)
        out[f"kpt_vis_s{s}"] = np.zeros((1, n, n, K), np.float32)
        out[f"pose_vec_s{s}"] = rng.normal(size=(1, n, n, 8)).astype(np.float32)
        out[f"kpt_reg_s{s}"] = np.zeros((1, n, n, 2 * K), np.float32)
    return out


def _targets():
    return {
        "boxes": np.array([[[8.0, 8.0, 40.0, 40.0], [0.0, 0.0, 0.0, 0.0]]], np.float32),
        "keypoints": np.array([[[[20.0, 20.0], [24.0, 24.0], [28.0, 28.0]], np.zeros((K, 2))]], np.float32),
        "keypoint_visible": np.array([[[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]], np.float32),
        "instance_valid": np.array([[1.0, 0.0]], np.float32),
        "ignore_mask": np.zeros((1, *IMAGE), np.float32),
    }


_PARTS = {}


def _parts():
    """One network and one set of branches (same weights) for every loss in this module."""
    if not _PARTS:
        keras.utils.set_random_seed(1)
        branches = RTMOTrainingBranches(num_keypoints=K, featmap_strides=STRIDES, pose_channels=8,
                                        pose_vec_channels=8)
        branches.build()
        _PARTS.update(network=_fake_network(), branches=branches)
    return _PARTS["network"], _PARTS["branches"]


def _loss_values(loss, outputs, targets):
    network, branches = _parts()
    terms = loss(targets, outputs, network, branches, IMAGE)
    return {k: float(keras.ops.convert_to_numpy(v)) for k, v in terms.items()}


def test_rtmo_loss_terms_on_hand_made_outputs():
    terms = _loss_values(RTMOLoss(SIGMAS), _outputs(), _targets())
    # Zero deltas: boxes of one stride centred on each prior; the instance (32 x 32, keypoint centre (22, 22))
    # has candidates, and the OKS-based k is 1 (proxy keypoints at the priors, far from the targets).
    assert terms["num_positives"] >= 1
    assert set(terms) == {"cls", "bbox", "vis", "oks", "mle", "num_positives"}
    # Visibility logits 0: BCE = log 2 for every keypoint, whatever the labels.
    np.testing.assert_allclose(terms["vis"], np.log(2.0), rtol=1e-5)
    for name in ("bbox", "oks", "cls"):
        assert np.isfinite(terms[name]) and terms[name] > 0
    assert np.isfinite(terms["mle"])  # the MLE term can be negative (unnormalised Laplace targets)


def test_rtmo_loss_bbox_term_by_hand_for_a_perfect_box():
    # Deltas that decode every stride-16 prior's box to... no: the loss only sees the assigned prior. With
    # (0, 0, log 2, log 2) a stride-16 prior at (23.5, 23.5) predicts (7.5, 7.5, 39.5, 39.5): IoU with the
    # target (8, 8, 40, 40) = 31.5^2 / (32^2 + 32^2 - 31.5^2).
    deltas = np.array([0.0, 0.0, np.log(2.0), np.log(2.0)], np.float32)
    terms = _loss_values(RTMOLoss(SIGMAS), _outputs(deltas), _targets())
    iou = 31.5 ** 2 / (2 * 32.0 ** 2 - 31.5 ** 2)
    if terms["num_positives"] == 1:
        np.testing.assert_allclose(terms["bbox"], STAGE1["bbox"] * (1 - iou ** 2), rtol=1e-4)
    else:  # several positives: at least the best one reaches this value
        assert terms["bbox"] >= STAGE1["bbox"] * (1 - iou ** 2) * 0.99


def test_stage_two_and_aux_loss_change_the_terms():
    outputs, targets = _outputs(), _targets()
    base = _loss_values(RTMOLoss(SIGMAS), outputs, targets)
    late = _loss_values(RTMOLoss(SIGMAS, proxy_target_cc=True, use_aux_loss=True,
                                 weights={"oks": 10.0, "mle": 5.0}), outputs, targets)
    assert "bbox_aux" in late and late["bbox_aux"] > 0
    np.testing.assert_allclose(late["mle"], base["mle"] * 5.0, rtol=1e-4)
    np.testing.assert_allclose(late["bbox"], base["bbox"], rtol=1e-6)


def test_rtmo_loss_config_round_trip_and_errors():
    loss = RTMOLoss(SIGMAS, weights={"oks": 10.0}, use_ignore_mask=True, assigner={"candidate_topk": 5})
    again = RTMOLoss.from_config(loss.get_config())
    assert again.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="Unknown RTMO loss terms"):
        RTMOLoss(SIGMAS, weights={"kpt": 1.0})
    with pytest.raises(KeyError, match="instance_valid"):
        _loss_values(RTMOLoss(SIGMAS), _outputs(), {k: v for k, v in _targets().items() if k != "instance_valid"})


def test_training_branches_config_round_trip():
    branches = RTMOTrainingBranches(num_keypoints=K, featmap_strides=STRIDES, pose_channels=8, pose_vec_channels=8)
    again = RTMOTrainingBranches.from_config(branches.get_config())
    assert again.get_config() == branches.get_config()
    branches.build()
    sig = keras.ops.convert_to_numpy(branches.sigmas(np.zeros((2, 8), np.float32)))
    np.testing.assert_allclose(sig, 0.05, rtol=1e-6)  # sigmoid(0) * the 0.1 scale


def test_sample_mask_bilinear_by_hand():
    mask = np.zeros((1, 4, 4), np.float32)
    mask[0, 1, 2] = 1.0
    points = np.array([[[2.0, 1.0], [2.5, 1.0], [2.5, 1.5], [-3.0, 1.0]]], np.float32)
    got = keras.ops.convert_to_numpy(sample_mask_bilinear(mask, points))
    np.testing.assert_allclose(got, [[1.0, 0.5, 0.25, 0.0]], atol=1e-6)


def test_mode_switch_changes_the_loss_at_its_epochs():
    calls = []
    model = types.SimpleNamespace(rtmo_loss=RTMOLoss(SIGMAS), make_train_function=lambda force: calls.append(force))
    switch = RTMOModeSwitch(switch_epoch=2, last_stage_epoch=4, on_last_stage=lambda: calls.append("pipeline"))
    switch.set_model(model)
    switch.on_epoch_begin(1)
    assert not model.rtmo_loss.proxy_target_cc and calls == []
    switch.on_epoch_begin(2)
    assert model.rtmo_loss.proxy_target_cc and model.rtmo_loss.weights["oks"] == 10.0
    assert model.rtmo_loss.weights["mle"] == 5.0 and not model.rtmo_loss.use_aux_loss
    switch.on_epoch_begin(4)
    assert model.rtmo_loss.use_aux_loss and model.rtmo_loss.use_ignore_mask
    assert calls == [True, "pipeline", True]
    with pytest.raises(TypeError, match="on_last_stage"):
        RTMOModeSwitch(on_last_stage="mosaic off")
    # the pipeline's switch (tests/pipelines: what it does to the elements), from a resumed epoch too
    mixing = MixingSwitch()
    resumed = RTMOModeSwitch(switch_epoch=2, last_stage_epoch=4, on_last_stage=mixing.turn_off)
    resumed.set_model(types.SimpleNamespace(rtmo_loss=RTMOLoss(SIGMAS), make_train_function=lambda force: None))
    resumed.on_epoch_begin(3)
    assert mixing.on
    resumed.on_epoch_begin(6)
    assert not mixing.on


def test_dcc_batch_norm_statistics_come_from_the_masked_rows_only():
    # mmpose runs the DCC's BatchNorm1d on the positive priors only: padding rows (any values) must change
    # neither the real rows' training outputs nor the moving statistics.
    rng = np.random.default_rng(3)
    real = rng.normal(size=(3, 8)).astype(np.float32)
    padding = (100.0 + 50.0 * rng.normal(size=(5, 8))).astype(np.float32)
    boxes = np.tile(np.array([[32.0, 32.0, 40.0, 40.0]], np.float32), (8, 1))
    grids = np.tile(np.array([[24.0, 24.0]], np.float32), (8, 1))

    def run(vecs, mask):
        keras.utils.set_random_seed(2)
        dcc = DynamicCoordinateClassifier(in_channels=8, num_keypoints=K, feat_channels=8, num_bins=(8, 8),
                                          spe_channels=8, gau_s=8)
        dcc.build()
        n = vecs.shape[0]
        kpts, x_probs, _ = dcc.keypoints_and_heatmaps(vecs, boxes[:n], grids[:n], training=True, mask=mask)
        moving = keras.ops.convert_to_numpy(dcc.pose_to_kpts_bn.moving_mean)
        return keras.ops.convert_to_numpy(kpts)[:3], keras.ops.convert_to_numpy(x_probs)[:3], moving

    alone = run(real, None)
    padded = run(np.concatenate([real, padding]), np.array([True] * 3 + [False] * 5))
    unmasked = run(np.concatenate([real, padding]), None)
    for a, b in zip(alone, padded):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert np.abs(unmasked[2] - alone[2]).max() > 1.0  # without the mask the padding shifts the statistics
    assert np.abs(alone[2]).max() > 0  # the moving mean did update
