"""RTMO decoding in `keras.ops` (in the graph, every backend): raw head outputs -> instances.

As mmpose's `RTMOHead.predict` (test_cfg score_thr 0.1, nms_thr 0.65), in
model-input pixels:

1. flatten the levels (strides ascending, row-major cells); scores =
   sigmoid(cls), keypoint scores = sigmoid(kpt_vis);
2. priors at (col * s + (s - 1) / 2, row * s + (s - 1) / 2) (mmpose's
   `MlvlPointGenerator(centralize_points=True)`); boxes: centre = d * s +
   prior, size = exp(log size) * s, as (x1, y1, x2, y2);
3. candidates: scores > `score_threshold`, highest first (at most
   `max_candidates`, default every cell);
4. greedy NMS (IoU > `nms_threshold` suppresses, IoU as mmpose's
   `bbox_overlaps`: union clamped at 1e-6), keeping at most `max_instances`
   (static: padded rows have `valid` False);
5. keypoints of the kept instances: the DCC on (pose vector, box centre and
   1.25x size, prior);
6. boxes clamped to the input (x to [0, W], y to [0, H]; after the DCC, as
   the reference).

Mapping back to the original image (the letterbox inverse) is the caller's.
"""

import numpy as np
from keras import ops

from keras_pose.models.rtmo.rtmo_head import head_output_name

BBOX_PADDING = 1.25
IOU_EPSILON = 1e-6


def rtmo_priors(image_size, strides):
    """(priors (P, 2) float32 (x, y), strides (P,) float32) of the flattened levels of an (H, W) input."""
    height, width = (int(s) for s in image_size)
    priors, prior_strides = [], []
    for stride in strides:
        h, w = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
        offset = (stride - 1) / 2.0
        priors.append(np.stack([xs.ravel() * stride + offset, ys.ravel() * stride + offset], -1))
        prior_strides.append(np.full((h * w,), stride, np.float32))
    return np.concatenate(priors).astype(np.float32), np.concatenate(prior_strides)


def flatten_head_outputs(outputs, strides):
    """{kind: (B, P, channels)} from the head's per-level dict (levels in `strides` order)."""
    flat = {}
    for kind in ("cls", "bbox", "kpt_vis", "pose_vec"):
        levels = []
        for stride in strides:
            x = outputs[head_output_name(kind, stride)]
            levels.append(ops.reshape(x, (ops.shape(x)[0], -1, ops.shape(x)[-1])))
        flat[kind] = ops.concatenate(levels, axis=1)
    return flat


def decode_boxes(deltas, priors, strides):
    """(dx, dy, log w, log h) (B, P, 4) -> (x1, y1, x2, y2) (B, P, 4) in input pixels."""
    strides = ops.reshape(strides, (1, -1, 1))
    centers = deltas[..., :2] * strides + ops.expand_dims(priors, 0)
    sizes = ops.exp(deltas[..., 2:]) * strides
    return ops.concatenate([centers - sizes / 2, centers + sizes / 2], axis=-1)


def pairwise_iou(boxes):
    """IoU (B, N, N) of xyxy boxes (B, N, 4), as mmpose's `bbox_overlaps` (no +1, union >= 1e-6)."""
    boxes = ops.convert_to_tensor(boxes, "float32")
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    lt = ops.maximum(boxes[:, :, None, :2], boxes[:, None, :, :2])
    rb = ops.minimum(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    wh = ops.maximum(rb - lt, 0.0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area[:, :, None] + area[:, None, :] - overlap
    return overlap / ops.maximum(union, IOU_EPSILON)


def greedy_nms(boxes, valid, threshold):
    """Greedy NMS over candidates already sorted by score (B, N): a bool (B, N) keep mask.

    Candidate i is kept if valid and no kept earlier candidate overlaps it
    with IoU > `threshold`.
    """
    iou = pairwise_iou(boxes)
    valid = ops.convert_to_tensor(valid, "bool")
    n = ops.shape(iou)[1]
    positions = ops.arange(n)

    def body(i, keep):
        overlaps = ops.take(iou, i, axis=2) > threshold  # (B, N): candidate j overlaps i
        suppressed = ops.any(ops.logical_and(keep, overlaps), axis=1)
        keep_i = ops.logical_and(ops.take(valid, i, axis=1), ops.logical_not(suppressed))
        return ops.where(ops.expand_dims(positions == i, 0), ops.expand_dims(keep_i, 1), keep)

    return ops.fori_loop(0, n, body, ops.zeros_like(valid))


def _gather(x, index):
    """x (B, P) or (B, P, C) at index (B, M) -> (B, M) or (B, M, C)."""
    index = ops.cast(index, "int32")
    if len(x.shape) == 2:
        return ops.take_along_axis(x, index, axis=1)
    return ops.take_along_axis(x, ops.repeat(ops.expand_dims(index, -1), x.shape[-1], axis=-1), axis=1)


def decode_rtmo(outputs, dcc, image_size, strides=(16, 32), score_threshold=0.1, nms_threshold=0.65,
                max_instances=100, max_candidates=None):
    """Instances from RTMO's raw head outputs (batched, static sizes).

    Args:
        outputs: the head's dict {"<kind>_s<stride>": (B, H / s, W / s, C)}.
        dcc: the network's `DynamicCoordinateClassifier`.
        image_size: the model input (H, W).
        strides: the head levels.
        score_threshold: keep scores > this (0.1).
        nms_threshold: IoU above which a lower-scored box is suppressed (0.65).
        max_instances: M, instances returned per image (padded).
        max_candidates: candidates entering NMS (None: every cell).

    Returns:
        dict with `boxes` (B, M, 4) xyxy, `scores` (B, M), `keypoints`
        (B, M, K, 2), `keypoint_scores` (B, M, K), `bbox_cs` (B, M, 4) the
        DCC's (cx, cy, 1.25 w, 1.25 h), `priors` (B, M, 2), `prior_index`
        (B, M) int32 (flattened cell), `valid` (B, M) bool; rows in
        descending score order, padded rows zero where not valid. Pixels of
        the model input.
    """
    strides = tuple(int(s) for s in strides)
    priors, prior_strides = rtmo_priors(image_size, strides)
    num_priors = priors.shape[0]
    flat = flatten_head_outputs(outputs, strides)
    scores = ops.sigmoid(ops.cast(flat["cls"][..., 0], "float32"))  # (B, P); one class (person)
    boxes = decode_boxes(ops.cast(flat["bbox"], "float32"), ops.convert_to_tensor(priors),
                         ops.convert_to_tensor(prior_strides))

    k = num_priors if max_candidates is None else min(int(max_candidates), num_priors)
    masked = ops.where(scores > score_threshold, scores, -1.0)
    top_scores, top_index = ops.top_k(masked, k)  # descending
    candidate_valid = top_scores > score_threshold
    candidate_boxes = _gather(boxes, top_index)
    keep = greedy_nms(candidate_boxes, candidate_valid, nms_threshold)

    # The first M kept candidates, in score order.
    m = min(int(max_instances), k)
    order_key = ops.where(keep, ops.cast(k - ops.arange(k), "float32")[None, :], 0.0)
    key_values, slot = ops.top_k(order_key, m)
    valid = key_values > 0
    index = _gather(top_index, slot)
    kept_boxes = _gather(boxes, index)
    kept_scores = _gather(scores, index)
    kept_priors = ops.take(ops.convert_to_tensor(priors), index, axis=0)
    pose_vecs = _gather(flat["pose_vec"], index)
    keypoint_scores = ops.sigmoid(ops.cast(_gather(flat["kpt_vis"], index), "float32"))

    centers = (kept_boxes[..., :2] + kept_boxes[..., 2:]) * 0.5
    sizes = (kept_boxes[..., 2:] - kept_boxes[..., :2]) * BBOX_PADDING
    bbox_cs = ops.concatenate([centers, sizes], axis=-1)
    keypoints = ops.cast(dcc([pose_vecs, bbox_cs, kept_priors]), "float32")

    height, width = (float(s) for s in image_size)
    limits = ops.convert_to_tensor(np.array([width, height, width, height], np.float32))
    kept_boxes = ops.minimum(ops.maximum(kept_boxes, 0.0), limits)

    def padded(x):  # zero rows that hold no instance (their values may be non-finite)
        v = valid
        for _ in range(len(x.shape) - 2):  # expand_dims, not reshape: the batch may be unknown in a graph
            v = ops.expand_dims(v, -1)
        return ops.where(v, x, ops.zeros_like(x))

    return {
        "boxes": padded(kept_boxes),
        "scores": padded(kept_scores),
        "keypoints": padded(keypoints),
        "keypoint_scores": padded(keypoint_scores),
        "bbox_cs": padded(bbox_cs),
        "priors": padded(kept_priors),
        "prior_index": ops.where(valid, ops.cast(index, "int32"), -1),
        "valid": valid,
    }


__all__ = ["decode_boxes", "decode_rtmo", "flatten_head_outputs", "greedy_nms", "pairwise_iou", "rtmo_priors"]
