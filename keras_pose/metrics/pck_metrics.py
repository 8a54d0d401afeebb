"""Distance-based keypoint metrics: PCKh (MPII), PCK, AUC and EPE.

Arithmetic follows mmpose 1.x `mmpose/evaluation/functional/keypoint_eval.py`
and `MpiiPCKAccuracy`: a keypoint is correct when its normalised distance is
strictly below the threshold; keypoints that are not visible in the ground
truth, or whose normaliser is <= 0 / not finite, are left out. Values are
fractions in [0, 1] (mmpose's MPII table reports percentages).

Shapes: `pred`, `gt` `(N, K, 2)` pixels `(x, y)`; `visible` `(N, K)` (> 0
means the ground-truth keypoint is labelled and evaluated).
"""

import numpy as np

# MPII joint order: 0 r_ankle 1 r_knee 2 r_hip 3 l_hip 4 l_knee 5 l_ankle
# 6 pelvis 7 thorax 8 upper_neck 9 head_top 10 r_wrist 11 r_elbow
# 12 r_shoulder 13 l_shoulder 14 l_elbow 15 l_wrist.
MPII_JOINT_GROUPS = {
    "Head": (9,),
    "Shoulder": (12, 13),
    "Elbow": (11, 14),
    "Wrist": (10, 15),
    "Hip": (2, 3),
    "Knee": (1, 4),
    "Ankle": (0, 5),
}
MPII_EXCLUDED_JOINTS = (6, 7)  # pelvis, thorax: left out of the mean (official eval)


def _inputs(pred, gt, visible):
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 3 or pred.shape != gt.shape:
        raise ValueError(f"pred and gt must both have shape (N, K, D); got {pred.shape} and {gt.shape}.")
    mask = np.asarray(visible)
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"visible must have shape {pred.shape[:2]} (N, K); got {mask.shape}.")
    return pred, gt, mask.astype(np.float64) > 0


def _normalizer(normalize, n, d):
    norm = np.asarray(normalize, dtype=np.float64)
    if norm.ndim == 0:
        norm = np.full((n, d), float(norm))
    elif norm.shape == (n,):
        norm = np.repeat(norm[:, None], d, axis=1)
    elif norm.shape == (n, 1):
        norm = np.repeat(norm, d, axis=1)
    if norm.shape != (n, d):
        raise ValueError(f"normalize must be a scalar, (N,) or (N, {d}) with N={n}; got {norm.shape}.")
    return norm


def normalized_distances(pred, gt, visible, normalize):
    """`(N, K)` distances `||(pred - gt) / normalize||`, NaN where not evaluated.

    A keypoint is not evaluated when `visible <= 0` or when its instance's
    normaliser is <= 0 or not finite in any dimension.
    """
    pred, gt, mask = _inputs(pred, gt, visible)
    n, _, d = pred.shape
    norm = _normalizer(normalize, n, d)
    good_norm = np.all(np.isfinite(norm) & (norm > 0), axis=1)
    mask = mask & good_norm[:, None]
    safe = np.where(good_norm[:, None], norm, 1.0)
    dist = np.linalg.norm((pred - gt) / safe[:, None, :], axis=-1)
    return np.where(mask, dist, np.nan)


def _per_keypoint_accuracy(dist, threshold):
    valid = ~np.isnan(dist)
    count = valid.sum(axis=0)
    hits = np.where(valid, np.nan_to_num(dist, nan=np.inf) < threshold, False).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(count > 0, hits / np.maximum(count, 1), np.nan)
    return acc, count


def pck_per_keypoint(pred, gt, visible, normalize, threshold=0.05):
    """Per-keypoint PCK.

    Returns:
        `(K,)` float64 fraction of evaluated instances whose normalised
        distance is below `threshold`; NaN for a keypoint never evaluated.
    """
    acc, _ = _per_keypoint_accuracy(normalized_distances(pred, gt, visible, normalize), threshold)
    return acc


def pck(pred, gt, visible, normalize, threshold=0.05):
    """Percentage of correct keypoints (mmpose `keypoint_pck_accuracy`).

    Args:
        pred, gt: `(N, K, 2)` pixels.
        visible: `(N, K)`.
        normalize: normaliser per instance and axis: scalar, `(N,)` or
            `(N, 2)` (e.g. box `(w, h)`, or `max(w, h)` repeated, as mmpose's
            `PCKAccuracy` with `norm_item="bbox"` uses). Pixels.
        threshold: normalised distance threshold.

    Returns:
        float: mean over keypoints (that were evaluated at least once) of the
        per-keypoint PCK, as mmpose averages; 0.0 when nothing is evaluated.
    """
    acc = pck_per_keypoint(pred, gt, visible, normalize, threshold)
    valid = acc[~np.isnan(acc)]
    return float(valid.mean()) if valid.size else 0.0


def auc(pred, gt, visible, normalize=30.0, num_thresholds=20):
    """Area under the PCK curve (mmpose `keypoint_auc`).

    Distances are divided by `normalize` (pixels; mmpose's `norm_factor`,
    30 px for the hand benchmarks) and PCK is taken at thresholds
    `0, 1/T, ..., (T-1)/T`; the AUC is their mean. So `normalize` is the
    largest pixel threshold of the curve.

    Args:
        pred, gt, visible: as `pck`.
        normalize: scalar, `(N,)` or `(N, 2)` pixels.
        num_thresholds: T.

    Returns:
        float in [0, 1).
    """
    dist = normalized_distances(pred, gt, visible, normalize)
    total = 0.0
    for i in range(num_thresholds):
        acc, _ = _per_keypoint_accuracy(dist, i / num_thresholds)
        valid = acc[~np.isnan(acc)]
        total += float(valid.mean()) if valid.size else 0.0
    return total / num_thresholds


def epe(pred, gt, visible):
    """End-point error: mean Euclidean distance (pixels) over visible keypoints.

    Returns 0.0 when no keypoint is visible (as mmpose `keypoint_epe`).
    """
    pred, gt, mask = _inputs(pred, gt, visible)
    dist = np.linalg.norm(pred - gt, axis=-1)[mask]
    return float(dist.mean()) if dist.size else 0.0


def pckh(pred, gt, visible, head_sizes, threshold=0.5):
    """MPII PCKh table (mmpose `MpiiPCKAccuracy`, official joint grouping).

    Distances are divided by each person's head size (`PoseInstance.head_size`,
    0.6 x head-box diagonal in the official evaluation); people whose head
    size is missing (NaN), zero or negative are left out.

    Args:
        pred, gt: `(N, 16, 2)` pixels, MPII joint order, same pixel grid.
        visible: `(N, 16)`, > 0 for labelled ground-truth joints.
        head_sizes: `(N,)` pixels.
        threshold: PCKh threshold (0.5 for PCKh@0.5).

    Returns:
        dict of fractions in [0, 1]: "Head", "Shoulder", "Elbow", "Wrist",
        "Hip", "Knee", "Ankle" (left/right averaged), "PCKh" (mean over the
        joints weighted by their labelled counts, pelvis and thorax excluded,
        at `threshold`), "PCKh@0.1" (same mean at 0.1), and "per_joint"
        `(16,)` (NaN for a joint never evaluated). A group whose joints are
        never evaluated is NaN.
    """
    pred, gt, mask = _inputs(pred, gt, visible)
    if pred.shape[1] != 16:
        raise ValueError(f"pckh expects the 16 MPII joints in MPII order; got {pred.shape[1]} keypoints.")
    head_sizes = np.asarray(head_sizes, dtype=np.float64).reshape(-1)
    if head_sizes.shape[0] != pred.shape[0]:
        raise ValueError(f"{head_sizes.shape[0]} head sizes given for {pred.shape[0]} people.")
    dist = normalized_distances(pred, gt, mask, head_sizes)
    per_joint, count = _per_keypoint_accuracy(dist, threshold)
    per_joint_01, _ = _per_keypoint_accuracy(dist, 0.1)

    weights = count.astype(np.float64)
    weights[list(MPII_EXCLUDED_JOINTS)] = 0.0
    total = weights.sum()

    def weighted_mean(acc):
        if total <= 0:
            return float("nan")
        return float(np.sum(np.nan_to_num(acc) * weights) / total)

    table = {}
    for name, joints in MPII_JOINT_GROUPS.items():
        values = per_joint[list(joints)]
        values = values[~np.isnan(values)]
        table[name] = float(values.mean()) if values.size else float("nan")
    table["PCKh"] = weighted_mean(per_joint)
    table["PCKh@0.1"] = weighted_mean(per_joint_01)
    table["per_joint"] = per_joint
    return table
