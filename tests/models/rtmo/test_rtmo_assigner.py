"""SimOTA assignment (rtmo_assigner) on hand-made cases."""

import numpy as np
import pytest

from keras_pose.models.rtmo.rtmo_assigner import keypoint_oks, simota_assign

K = 2
SIGMAS = np.array([0.1, 0.1], np.float32)


def _priors(points, stride=8.0):
    points = np.asarray(points, np.float32)
    return points, np.full((len(points),), stride, np.float32)


def _assign(priors, strides, pred_boxes, pred_kpts, gt_boxes, gt_kpts, gt_valid=None, scores=None, **settings):
    b, p = 1, len(priors)
    m = len(gt_boxes)
    scores = np.full((b, p), 0.5, np.float32) if scores is None else np.asarray(scores, np.float32)[None]
    gt_valid = np.ones((b, m), np.float32) if gt_valid is None else np.asarray(gt_valid, np.float32)[None]
    gt_boxes = np.asarray(gt_boxes, np.float32)[None]
    areas = (gt_boxes[..., 2] - gt_boxes[..., 0]) * (gt_boxes[..., 3] - gt_boxes[..., 1])
    out = simota_assign(priors, strides, np.asarray(pred_boxes, np.float32)[None], scores,
                        np.asarray(pred_kpts, np.float32)[None], gt_boxes, np.asarray(gt_kpts, np.float32)[None],
                        np.ones((b, m, K), np.float32), gt_valid, areas, SIGMAS, **settings)
    return {k: np.asarray(v) for k, v in out.items()}


def test_keypoint_oks_matches_the_coco_formula():
    pred = np.array([[[3.0, 4.0], [10.0, 10.0]]], np.float32)
    target = np.array([[[0.0, 0.0], [10.0, 10.0]]], np.float32)
    visible = np.array([[1.0, 0.0]], np.float32)
    area = np.array([100.0], np.float32)
    got = np.asarray(keypoint_oks(pred, target, visible, area, SIGMAS))
    expected = np.exp(-(25.0 / 100.0) / (2 * (2 * 0.1) ** 2))  # only the labelled keypoint counts
    np.testing.assert_allclose(got, [expected], rtol=1e-5)


def test_prior_inside_the_box_gets_the_instance_and_outside_priors_none():
    # Prior 0 at the instance's centre (inside the box), prior 1 far away (no candidate).
    priors, strides = _priors([[50.0, 50.0], [300.0, 300.0]])
    gt_box = [[30.0, 30.0, 70.0, 70.0]]
    gt_kpts = [[[45.0, 45.0], [55.0, 55.0]]]
    pred_boxes = [[30.0, 30.0, 70.0, 70.0], [30.0, 30.0, 70.0, 70.0]]  # even a perfect box far away stays out
    pred_kpts = [gt_kpts[0], gt_kpts[0]]
    out = _assign(priors, strides, pred_boxes, pred_kpts, gt_box, gt_kpts)
    assert out["foreground"].tolist() == [[True, False]]
    assert out["gt_index"][0, 0] == 0
    np.testing.assert_allclose(out["matched_oks"][0], [1.0, 0.0], atol=1e-6)
    assert float(out["num_foreground"]) == 1.0


def test_dynamic_k_is_the_truncated_sum_of_the_top_oks():
    # Six candidates; their proxy keypoints give OKS 1, 1, 0.9, 0.4, ... -> sum of top 10 = 3.x -> k = 3.
    points = [[48.0 + 2 * i, 50.0] for i in range(6)]
    priors, strides = _priors(points)
    gt_box = [[20.0, 20.0, 80.0, 80.0]]
    gt_kpts = np.array([[[45.0, 45.0], [55.0, 55.0]]], np.float32)
    area = 60.0 * 60.0
    shifts = [0.0, 0.0, 1.0, 8.0, 30.0, 60.0]
    pred_kpts = [gt_kpts[0] + s for s in shifts]
    oks = [float(np.exp(-(s * s * 2 / area) / (2 * (0.2 ** 2)))) for s in shifts]
    expected_k = max(int(np.floor(sum(sorted(oks, reverse=True)[:10]))), 1)
    assert expected_k == 3
    out = _assign(priors, strides, [gt_box[0]] * 6, pred_kpts, gt_box, gt_kpts)
    # The k lowest-cost candidates (same boxes and scores: the best OKS) are the positives.
    assert out["foreground"][0].tolist() == [True, True, True, False, False, False]
    np.testing.assert_allclose(out["matched_oks"][0][:3], oks[:3], rtol=1e-4)


def test_dynamic_k_is_at_least_one():
    priors, strides = _priors([[50.0, 50.0], [52.0, 50.0]])
    gt_box = [[30.0, 30.0, 70.0, 70.0]]
    gt_kpts = [[[45.0, 45.0], [55.0, 55.0]]]
    far = np.array(gt_kpts[0]) + 200.0  # OKS ~ 0 everywhere -> sum 0 -> k = 1
    out = _assign(priors, strides, [gt_box[0], [0.0, 0.0, 5.0, 5.0]], [far, far], gt_box, gt_kpts)
    assert out["foreground"][0].tolist() == [True, False]  # the better box wins the single slot


def test_a_prior_claimed_twice_goes_to_the_lowest_cost_instance():
    # Two overlapping instances, one candidate prior: both take it (k >= 1); it goes to the instance its
    # prediction matches (instance 1), not to the first one.
    priors, strides = _priors([[50.0, 50.0]])
    gt_boxes = [[30.0, 30.0, 70.0, 70.0], [35.0, 35.0, 68.0, 72.0]]
    gt_kpts = [[[45.0, 45.0], [55.0, 55.0]], [[48.0, 40.0], [52.0, 62.0]]]
    out = _assign(priors, strides, [gt_boxes[1]], [gt_kpts[1]], gt_boxes, gt_kpts)
    assert out["foreground"][0].tolist() == [True]
    assert out["gt_index"][0, 0] == 1
    # Swap which instance the prediction matches: the prior follows.
    out = _assign(priors, strides, [gt_boxes[0]], [gt_kpts[0]], gt_boxes, gt_kpts)
    assert out["gt_index"][0, 0] == 0


def test_padded_instances_take_nothing_and_the_center_region_counts():
    # Prior 1 lies outside the box but within 2.5 strides of the keypoint centre: still a candidate.
    priors, strides = _priors([[50.0, 50.0], [50.0, 85.0], [50.0, 140.0]], stride=16.0)
    gt_boxes = [[40.0, 40.0, 60.0, 80.0], [0.0, 0.0, 200.0, 200.0]]
    gt_kpts = [[[50.0, 60.0], [50.0, 70.0]], [[100.0, 100.0], [110.0, 110.0]]]
    pred_boxes = [gt_boxes[0]] * 3
    pred_kpts = [gt_kpts[0]] * 3
    out = _assign(priors, strides, pred_boxes, pred_kpts, gt_boxes, gt_kpts, gt_valid=[1.0, 0.0])
    assert out["foreground"][0].tolist() == [True, True, False]
    assert (out["gt_index"][0][:2] == 0).all()


@pytest.mark.parametrize("topk", [1, 2])
def test_candidate_topk_bounds_k(topk):
    points = [[48.0 + 2 * i, 50.0] for i in range(5)]
    priors, strides = _priors(points)
    gt_box = [[20.0, 20.0, 80.0, 80.0]]
    gt_kpts = [[[45.0, 45.0], [55.0, 55.0]]]
    out = _assign(priors, strides, [gt_box[0]] * 5, [gt_kpts[0]] * 5, gt_box, gt_kpts, candidate_topk=topk)
    assert int(out["foreground"].sum()) == topk
