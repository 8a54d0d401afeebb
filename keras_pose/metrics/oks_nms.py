"""Object keypoint similarity (OKS) and OKS-based non-maximum suppression.

Same arithmetic as mmpose `mmpose/evaluation/functional/nms.py` (itself from
HRNet): `OKS = mean_k exp(-d_k^2 / (2 * s * (2 sigma_k)^2))` with `s` the mean
of the two instances' areas.
"""

import numpy as np

# COCO person keypoint sigmas (the 17 of the COCO keypoint challenge).
COCO_SIGMAS = (
    np.array(
        [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
    )
    / 10.0
)


def resolve_sigmas(sigmas, num_keypoints=None):
    """`(K,)` float64 OKS sigmas from a spec, a spec name, an array or `None`.

    Args:
        sigmas: a KeypointSpec (its `.sigmas`), a spec name (resolved lazily
            with `keras_pose.keypoints.get_keypoint_spec`), a `(K,)` array, or
            `None` (the COCO sigmas, allowed only when `num_keypoints` is 17 or
            unknown).
        num_keypoints: expected K, checked when given.
    """
    if sigmas is None:
        if num_keypoints not in (None, 17):
            raise ValueError(
                f"OKS needs per-keypoint sigmas for {num_keypoints} keypoints; pass sigmas= "
                "(an array or the dataset's KeypointSpec). The COCO default has 17."
            )
        return COCO_SIGMAS.copy()
    if isinstance(sigmas, str):
        from keras_pose.keypoints import get_keypoint_spec

        sigmas = get_keypoint_spec(sigmas)
    if hasattr(sigmas, "num_keypoints"):
        spec = sigmas
        sigmas = getattr(spec, "sigmas", None)
        if sigmas is None:
            raise ValueError(
                f"keypoint spec {getattr(spec, 'name', '')!r} defines no OKS sigmas; pass sigmas= "
                "explicitly."
            )
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if num_keypoints is not None and sigmas.shape[0] != num_keypoints:
        raise ValueError(
            f"{sigmas.shape[0]} OKS sigmas given for {num_keypoints} keypoints; use the sigmas of "
            "the keypoint spec the predictions follow."
        )
    if not np.all(np.isfinite(sigmas)) or np.any(sigmas <= 0):
        raise ValueError(f"OKS sigmas must be positive and finite; got {sigmas.tolist()}.")
    return sigmas


def _as_instances(keypoints, name):
    """`(N, K, C)` float64 from `(N, K, 2|3)` or flat `(N, 3K)`."""
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim == 2 and kpts.shape[1] % 3 == 0 and kpts.shape[1] > 3:
        kpts = kpts.reshape(kpts.shape[0], -1, 3)
    if kpts.ndim != 3 or kpts.shape[2] not in (2, 3):
        raise ValueError(
            f"{name} must have shape (N, K, 2), (N, K, 3) or (N, 3K); got {np.shape(keypoints)}."
        )
    return kpts


def oks_iou(reference, others, reference_area, other_areas, sigmas=None, vis_threshold=None):
    """OKS between one instance and each of several others.

    Args:
        reference: `(K, 2)`, `(K, 3)` (`[x, y, score]`) or flat `(3K,)`
            keypoints in pixels.
        others: `(N, K, 2|3)` or `(N, 3K)` keypoints.
        reference_area: area (px^2) of the reference instance.
        other_areas: `(N,)` areas of the others.
        sigmas: per-keypoint sigmas (see `resolve_sigmas`).
        vis_threshold: when given (needs the score column), only keypoints
            whose score is above it in both instances count.

    Returns:
        `(N,)` float32 OKS values in [0, 1].
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref = _as_instances(ref.reshape(1, -1) if ref.ndim == 1 else ref[None], "reference")[0]
    others = _as_instances(others, "others") if np.size(others) else np.zeros((0,) + ref.shape)
    if others.shape[1:] != ref.shape and others.shape[0]:
        raise ValueError(f"others have shape {others.shape[1:]} per instance; reference has {ref.shape}.")
    k = ref.shape[0]
    sigmas = resolve_sigmas(sigmas, k)
    variances = (sigmas * 2) ** 2
    areas = np.asarray(other_areas, dtype=np.float64).reshape(-1)
    if areas.shape[0] != others.shape[0]:
        raise ValueError(f"{areas.shape[0]} areas given for {others.shape[0]} instances.")
    ious = np.zeros(others.shape[0], dtype=np.float32)
    for n in range(others.shape[0]):
        d2 = np.sum((others[n, :, :2] - ref[:, :2]) ** 2, axis=1)
        e = d2 / variances / ((reference_area + areas[n]) / 2 + np.spacing(1)) / 2
        if vis_threshold is not None:
            if ref.shape[1] < 3:
                raise ValueError("vis_threshold needs keypoint scores: pass (K, 3) [x, y, score] keypoints.")
            e = e[(ref[:, 2] > vis_threshold) & (others[n, :, 2] > vis_threshold)]
        ious[n] = np.sum(np.exp(-e)) / e.size if e.size else 0.0
    return ious


def _check_nms_inputs(keypoints, scores, areas):
    kpts = _as_instances(keypoints, "keypoints") if np.size(keypoints) else None
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    n = 0 if kpts is None else kpts.shape[0]
    if scores.shape[0] != n or areas.shape[0] != n:
        raise ValueError(f"{n} instances but {scores.shape[0]} scores and {areas.shape[0]} areas.")
    return kpts, scores, areas


def oks_nms(keypoints, scores, areas, threshold=0.9, sigmas=None, vis_threshold=None):
    """Greedy OKS non-maximum suppression (mmpose `oks_nms`).

    Instances are visited by descending score; every remaining instance whose
    OKS with the kept one is above `threshold` is removed.

    Args:
        keypoints: `(N, K, 2|3)` or `(N, 3K)` keypoints in pixels (the third
            column, keypoint scores, is used only with `vis_threshold`).
        scores: `(N,)` instance scores.
        areas: `(N,)` instance areas (px^2), e.g. box area.
        threshold: OKS above which an instance is a duplicate (mmpose 0.9).
        sigmas: per-keypoint sigmas (see `resolve_sigmas`).
        vis_threshold: see `oks_iou`.

    Returns:
        int64 array of the kept indices, highest score first.
    """
    kpts, scores, areas = _check_nms_inputs(keypoints, scores, areas)
    if kpts is None:
        return np.zeros((0,), dtype=np.int64)
    order = np.argsort(scores, kind="stable")[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        overlap = oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, vis_threshold)
        order = order[1:][overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def soft_oks_nms(
    keypoints, scores, areas, threshold=0.9, max_dets=20, sigmas=None, vis_threshold=None,
    method="gaussian", return_scores=False,
):
    """Soft OKS-NMS (mmpose `soft_oks_nms`).

    Instead of removing overlapping instances, their scores decay:
    gaussian `s * exp(-oks^2 / threshold)` or linear `s * (1 - oks)` where
    `oks >= threshold`; the best remaining instance is taken next.

    Args:
        keypoints, scores, areas, sigmas, vis_threshold: as `oks_nms`.
        threshold: decay parameter (see above).
        max_dets: keep at most this many instances.
        method: "gaussian" (mmpose default) or "linear".
        return_scores: also return the decayed scores of the kept instances.

    Returns:
        int64 array of kept indices in selection order, and the `(M,)`
        decayed scores when `return_scores`.
    """
    if method not in ("gaussian", "linear"):
        raise ValueError(f"method must be 'gaussian' or 'linear'; got {method!r}.")
    kpts, scores, areas = _check_nms_inputs(keypoints, scores, areas)
    if kpts is None:
        empty = np.zeros((0,), dtype=np.int64)
        return (empty, np.zeros((0,))) if return_scores else empty
    order = np.argsort(scores, kind="stable")[::-1]
    current = scores[order]
    keep, kept_scores = [], []
    while order.size and len(keep) < max_dets:
        i = order[0]
        keep.append(i)
        kept_scores.append(current[0])
        overlap = oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, vis_threshold)
        order, current = order[1:], current[1:].copy()
        if method == "linear":
            hit = overlap >= threshold
            current[hit] = current[hit] * (1 - overlap[hit])
        else:
            current = current * np.exp(-(overlap.astype(np.float64) ** 2) / threshold)
        resort = np.argsort(current, kind="stable")[::-1]
        order, current = order[resort], current[resort]
    keep = np.asarray(keep, dtype=np.int64)
    return (keep, np.asarray(kept_scores)) if return_scores else keep
