"""RTMO's loss terms in `keras.ops` (elementwise; the caller reduces), as mmpose defines them.

| term | mmpose class | formula (per element) |
| --- | --- | --- |
| `varifocal_loss` | ``VariFocalLoss`` (alpha 0.75, gamma 2) | BCE(clip(x, +-10), t) (a p(x)^g [t <= 1e-4] + t) |
| `iou_loss` | ``IoULoss(mode='square', eps=1e-16)`` | 1 - IoU^2 (IoU of aligned xyxy boxes, clamped >= eps) |
| `oks_loss` | ``OKSLoss(mode='linear')`` | 1 - sum_k OKS_k w_k / K |
| `bce_with_logits` | ``BCELoss`` | -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) |
| `mle_cc_loss` | ``MLECCLoss(mode='log')`` | -log(sum_x p_x h_x * sum_y p_y h_y + 1e-4) * w |
| `l1_loss` | ``L1Loss`` | abs(x - t) |

`target_heatmaps` builds the MLE targets as RTMO's DCC
(``generate_target_heatmap``): per bin b at position x_b (pixels),
h = exp(-|x - x_b| / (2 sqrt(area) sigma)) / sigma with sigma = the
predicted sigma clipped at 1e-3 and sqrt(area) clipped at 1 (a Laplace
likelihood, not normalised).
"""

import numpy as np
from keras import ops

from keras_pose.models.rtmo.rtmo_assigner import keypoint_oks


def varifocal_loss(logits, targets, alpha=0.75, gamma=2.0):
    """Varifocal loss per element: logits and targets (quality in [0, 1], 0 = negative) of one shape."""
    logits = ops.cast(logits, "float32")
    targets = ops.cast(targets, "float32")
    label = ops.cast(targets > 1e-4, "float32")
    weight = alpha * ops.power(ops.sigmoid(logits), gamma) * (1.0 - label) + targets
    return bce_with_logits(ops.clip(logits, -10.0, 10.0), targets) * weight


def bce_with_logits(logits, targets):
    """Binary cross entropy on logits per element (numerically stable form)."""
    logits = ops.cast(logits, "float32")
    targets = ops.cast(targets, "float32")
    return ops.maximum(logits, 0.0) - logits * targets + ops.log1p(ops.exp(-ops.abs(logits)))


def aligned_iou(boxes_a, boxes_b, eps=1e-16):
    """IoU (...) of aligned xyxy boxes (..., 4), clamped at `eps` (mmdet ``bbox_overlaps(is_aligned=True)``)."""
    area_a = (boxes_a[..., 2] - boxes_a[..., 0]) * (boxes_a[..., 3] - boxes_a[..., 1])
    area_b = (boxes_b[..., 2] - boxes_b[..., 0]) * (boxes_b[..., 3] - boxes_b[..., 1])
    lt = ops.maximum(boxes_a[..., :2], boxes_b[..., :2])
    rb = ops.minimum(boxes_a[..., 2:], boxes_b[..., 2:])
    wh = ops.maximum(rb - lt, 0.0)
    overlap = wh[..., 0] * wh[..., 1]
    union = ops.maximum(area_a + area_b - overlap, 1e-6)
    return ops.maximum(overlap / union, eps)


def iou_loss(pred_boxes, target_boxes, eps=1e-16):
    """1 - IoU^2 per box (...), xyxy boxes (..., 4) in pixels."""
    return 1.0 - ops.square(aligned_iou(pred_boxes, target_boxes, eps))


def oks_loss(pred, target, weights, areas, sigmas, eps=1e-8):
    """1 - OKS per instance (...): keypoints (..., K, 2), weights (..., K), areas (...) in pixels^2.

    The per-keypoint similarities are weighted by ``weights / K`` (mmpose's
    ``norm_target_weight=False``), so unlabelled keypoints count as 0.
    """
    # Squared distances directly (the similarity needs d^2; sqrt has no gradient at 0).
    dist_sq = ops.sum(ops.square(pred - target), axis=-1) / ops.square(ops.maximum(ops.sqrt(areas), eps))[..., None]
    dist_sq = dist_sq / ops.square(2.0 * ops.convert_to_tensor(np.asarray(sigmas, np.float32)))
    num_keypoints = int(np.asarray(sigmas).shape[0])
    similarity = ops.sum(ops.exp(-dist_sq / 2.0) * weights / num_keypoints, axis=-1)
    return 1.0 - similarity


def target_heatmaps(keypoints, bbox_cs, sigmas, areas, x_bins, y_bins):
    """MLE targets of the DCC (module docstring).

    Args:
        keypoints: (N, K, 2) target keypoints in pixels.
        bbox_cs: (N, 4) (cx, cy, w, h) of the 1.25x predicted boxes.
        sigmas: (N, K) predicted sigmas (may be <= 0: clipped at 1e-3).
        areas: (N,) instance areas in pixels^2.
        x_bins, y_bins: (Nx,), (Ny,) the DCC's linspace(-0.5, 0.5) bins.

    Returns:
        (hm_x (N, K, Nx), hm_y (N, K, Ny)).
    """
    center, size = bbox_cs[:, :2], bbox_cs[:, 2:]
    xs = x_bins[None, :] * size[:, 0:1] + center[:, 0:1]  # (N, Nx)
    ys = y_bins[None, :] * size[:, 1:2] + center[:, 1:2]
    scale = ops.maximum(ops.sqrt(areas), 1.0)[:, None, None]
    sigmas = ops.maximum(sigmas, 1e-3)[..., None]  # (N, K, 1)
    dist_x = ops.abs(keypoints[..., 0:1] - xs[:, None, :]) / scale / sigmas
    dist_y = ops.abs(keypoints[..., 1:2] - ys[:, None, :]) / scale / sigmas
    return ops.exp(-dist_x / 2.0) / sigmas, ops.exp(-dist_y / 2.0) / sigmas


def mle_cc_loss(x_probs, y_probs, x_targets, y_targets, weights):
    """-log(likelihood + 1e-4) * weight per keypoint (N, K); probs / targets (N, K, bins). NaN -> 0."""
    prob = ops.sum(x_probs * x_targets, axis=-1) * ops.sum(y_probs * y_targets, axis=-1)
    loss = -ops.log(prob + 1e-4)
    loss = ops.where(ops.isnan(loss), 0.0, loss)
    return loss * weights


def l1_loss(pred, target):
    """abs(pred - target) per element."""
    return ops.abs(pred - target)


__all__ = [
    "aligned_iou",
    "bce_with_logits",
    "iou_loss",
    "keypoint_oks",
    "l1_loss",
    "mle_cc_loss",
    "oks_loss",
    "target_heatmaps",
    "varifocal_loss",
]
