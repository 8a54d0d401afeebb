"""SimOTA label assignment for RTMO / YOLOX-Pose training, vectorised over (batch, priors, instances).

mmpose's ``SimOTAAssigner`` as RTMO configures it (``dynamic_k_indicator='oks'``,
``use_keypoints_for_center=True``), for a padded batch with static shapes:

1. candidates: a prior (grid point) is a candidate of the image if it lies
   strictly inside some ground-truth box, or within `center_radius` (2.5)
   strides of some instance's centre (the mean of its labelled keypoints, the
   box centre when none is labelled); other priors are never assigned;
2. cost of (prior, instance) = ``iou_weight * -log(IoU + 1e-7)`` +
   ``oks_weight * -log(OKS + 1e-7)`` (OKS of the prior's proxy keypoints
   against the instance) + ``cls_weight * -log(score)`` (the binary cross
   entropy of the score against 1; score = sqrt(sigmoid(cls logit))) +
   1e5 when the prior is not both inside the box and near the centre;
3. dynamic k per instance = int(sum of its `candidate_topk` (10) largest OKS
   over the candidates), at least 1; the instance takes its k lowest-cost
   candidates;
4. a prior taken by several instances goes to the one of lowest cost.

Padded instances (``instance_valid`` 0) take no prior. Everything is in
model-input pixels. The matched OKS is the classification target (before
RTMO's ``overlaps_power``).
"""

import numpy as np
from keras import ops

INF = 1e5
EPS = 1e-7
OKS_EPS = 1e-8


def box_iou_pairwise(boxes_a, boxes_b):
    """IoU (B, P, M) between xyxy boxes (B, P, 4) and (B, M, 4) (mmdet ``bbox_overlaps``, union >= 1e-6)."""
    area_a = (boxes_a[..., 2] - boxes_a[..., 0]) * (boxes_a[..., 3] - boxes_a[..., 1])
    area_b = (boxes_b[..., 2] - boxes_b[..., 0]) * (boxes_b[..., 3] - boxes_b[..., 1])
    lt = ops.maximum(boxes_a[:, :, None, :2], boxes_b[:, None, :, :2])
    rb = ops.minimum(boxes_a[:, :, None, 2:], boxes_b[:, None, :, 2:])
    wh = ops.maximum(rb - lt, 0.0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area_a[:, :, None] + area_b[:, None, :] - overlap
    return overlap / ops.maximum(union, 1e-6)


def keypoint_oks(pred, target, visible, areas, sigmas, eps=OKS_EPS):
    """Object keypoint similarity, broadcasting (mmpose ``PoseOKS``).

    Args:
        pred, target: keypoints (..., K, 2) in pixels (broadcastable).
        visible: (..., K) 0 / 1 labels of the target; the OKS averages over
            the labelled keypoints (all zero -> OKS 0).
        areas: (...) instance areas in pixels^2 (the scale s^2).
        sigmas: (K,) per-keypoint sigmas.

    Returns:
        (...) OKS in [0, 1]: mean over labelled k of exp(-d^2 / (2 s^2 (2 sigma_k)^2)).
    """
    dist_sq = ops.sum(ops.square(pred - target), axis=-1) / ops.square(ops.maximum(ops.sqrt(areas), eps))[..., None]
    dist_sq = dist_sq / ops.square(2.0 * ops.convert_to_tensor(np.asarray(sigmas, np.float32)))
    weights = visible / ops.maximum(ops.sum(visible, axis=-1, keepdims=True), eps)
    return ops.sum(ops.exp(-dist_sq / 2.0) * weights, axis=-1)


def instance_centers(boxes, keypoints, visible):
    """(B, M, 2) centres: mean of the labelled keypoints, the box centre for instances without any."""
    count = ops.sum(visible, axis=-1, keepdims=True)
    kpt_center = ops.sum(keypoints * visible[..., None], axis=-2) / ops.maximum(count, 1e-8)
    box_center = (boxes[..., :2] + boxes[..., 2:]) * 0.5
    return ops.where(count > 0, kpt_center, box_center)


def simota_assign(priors, strides, pred_boxes, pred_scores, pred_keypoints, gt_boxes, gt_keypoints,
                  gt_visible, gt_valid, gt_areas, sigmas, center_radius=2.5, candidate_topk=10, iou_weight=3.0,
                  oks_weight=3.0, cls_weight=1.0):
    """SimOTA assignment (module docstring) for a batch.

    Args:
        priors: (P, 2) prior points (x, y); strides: (P,) their strides.
        pred_boxes: (B, P, 4) decoded xyxy boxes; pred_scores: (B, P)
            instance scores in [0, 1] (RTMO: sqrt(sigmoid(cls))).
        pred_keypoints: (B, P, K, 2) the proxy keypoints.
        gt_boxes: (B, M, 4) xyxy; gt_keypoints: (B, M, K, 2);
            gt_visible: (B, M, K) 0 / 1; gt_valid: (B, M) 0 / 1;
            gt_areas: (B, M) pixels^2.
        sigmas: (K,) OKS sigmas.
        center_radius, candidate_topk, iou_weight, oks_weight, cls_weight:
            the assigner's settings (mmpose defaults).

    Returns:
        dict (no gradient) with ``foreground`` (B, P) bool, ``gt_index``
        (B, P) int32 (the assigned instance, 0 where not foreground),
        ``matched_oks`` (B, P) OKS with the assigned instance (0 elsewhere),
        ``num_foreground`` () float32.
    """
    sg = ops.stop_gradient
    pred_boxes, pred_scores, pred_keypoints = (sg(ops.cast(t, "float32")) for t in
                                                (pred_boxes, pred_scores, pred_keypoints))
    gt_boxes, gt_keypoints, gt_visible, gt_areas = (ops.cast(t, "float32") for t in
                                                    (gt_boxes, gt_keypoints, gt_visible, gt_areas))
    gt_valid = ops.cast(gt_valid, "float32") > 0.5
    priors = ops.convert_to_tensor(np.asarray(priors, np.float32))
    strides = ops.convert_to_tensor(np.asarray(strides, np.float32))

    # 1. candidates.
    px, py = priors[None, :, None, 0], priors[None, :, None, 1]  # (1, P, 1)
    deltas = ops.stack([px - gt_boxes[:, None, :, 0], py - gt_boxes[:, None, :, 1],
                        gt_boxes[:, None, :, 2] - px, gt_boxes[:, None, :, 3] - py], axis=-1)
    in_box = ops.logical_and(ops.min(deltas, axis=-1) > 0, gt_valid[:, None, :])  # (B, P, M)
    centers = instance_centers(gt_boxes, gt_keypoints, gt_visible)
    radius = center_radius * strides[None, :, None]
    in_center = ops.logical_and(
        ops.logical_and(ops.abs(px - centers[:, None, :, 0]) < radius, ops.abs(py - centers[:, None, :, 1]) < radius),
        gt_valid[:, None, :],
    )
    candidate = ops.any(ops.logical_or(in_box, in_center), axis=-1)  # (B, P)
    pair_ok = ops.logical_and(in_box, in_center)

    # 2. cost.
    ious = box_iou_pairwise(pred_boxes, gt_boxes)  # (B, P, M)
    oks = keypoint_oks(pred_keypoints[:, :, None], gt_keypoints[:, None], gt_visible[:, None], gt_areas[:, None],
                       sigmas)  # (B, P, M)
    cls_cost = -ops.maximum(ops.log(ops.clip(pred_scores, 0.0, 1.0)), -100.0)  # BCE with target 1 (torch clamp)
    cost = (iou_weight * -ops.log(ious + EPS) + oks_weight * -ops.log(oks + EPS) + cls_weight * cls_cost[..., None]
            + ops.where(pair_ok, 0.0, INF))
    pair_allowed = ops.logical_and(candidate[..., None], gt_valid[:, None, :])
    # Non-candidates and padded instances rank after every allowed pair.
    cost = ops.where(pair_allowed, cost, 1e3 * INF)

    # 3. dynamic k: the sum of the top-k OKS over the candidates, truncated, >= 1.
    num_priors = int(priors.shape[0])
    topk = min(int(candidate_topk), num_priors)
    oks_t = ops.transpose(ops.where(candidate[..., None], oks, 0.0), (0, 2, 1))  # (B, M, P)
    top_oks, _ = ops.top_k(oks_t, topk)
    dynamic_k = ops.maximum(ops.floor(ops.sum(top_oks, axis=-1)), 1.0)  # (B, M)
    dynamic_k = ops.where(gt_valid, dynamic_k, 0.0)
    _, lowest = ops.top_k(-ops.transpose(cost, (0, 2, 1)), topk)  # (B, M, topk) lowest cost first
    rank_ok = ops.cast(ops.arange(topk)[None, None, :], "float32") < dynamic_k[..., None]  # (B, M, topk)
    chosen = ops.one_hot(lowest, num_priors) * ops.cast(rank_ok, "float32")[..., None]  # (B, M, topk, P)
    matching = ops.transpose(ops.minimum(ops.sum(chosen, axis=2), 1.0), (0, 2, 1))  # (B, P, M)

    # 4. conflicts: a prior matched more than once goes to its lowest-cost instance.
    multi = ops.sum(matching, axis=-1, keepdims=True) > 1.0
    best = ops.one_hot(ops.argmin(cost, axis=-1), ops.shape(cost)[-1])
    matching = ops.where(multi, best, matching)
    foreground = ops.sum(matching, axis=-1) > 0.0
    gt_index = ops.cast(ops.argmax(matching, axis=-1), "int32")
    matched_oks = ops.sum(matching * oks, axis=-1)
    return {
        "foreground": foreground,
        "gt_index": ops.where(foreground, gt_index, 0),
        "matched_oks": ops.where(foreground, matched_oks, 0.0),
        "num_foreground": ops.sum(ops.cast(foreground, "float32")),
    }


__all__ = ["INF", "box_iou_pairwise", "instance_centers", "keypoint_oks", "simota_assign"]
