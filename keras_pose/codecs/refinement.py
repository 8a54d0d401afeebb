"""Heatmap maximum search and sub-pixel refinements (NumPy + OpenCV).

All functions take heatmaps laid out ``(N, H, W, K)`` (channels last, as the
models output them) and keypoints ``(N, K, 2)`` as ``(x, y)`` in *heatmap*
pixels (integer pixel indices, pixel centres at integers). They return new
float32 arrays; inputs are never modified.

The semantics follow mmpose 1.x (``mmpose/codecs/utils/post_processing.py``
and ``refinement.py``), including its edge cases, and, for
``refine_keypoints_dark_udp(..., variant="hf")``, HF transformers
``VitPoseImageProcessor.post_process_pose_estimation``.

One deliberate difference: the DARK / DARK-UDP Newton step is bounded
(``max_offset``, default 1 heatmap px). The references take the step
unchecked, and on a flat or noisy map (an occluded joint, a quantised model,
an untrained head) the quadratic fit has no maximum near the argmax: the
step then moves a keypoint by tens or hundreds of heatmap pixels, out of
the image. Here a step no longer than ``max_offset`` is taken exactly as the
references take it (on a well-formed peak it is below one heatmap pixel, so
results equal the references'); a longer one is shortened to ``max_offset``
along its direction where the Hessian of the log map is negative definite
(a real maximum, further away) and dropped otherwise (a minimum, saddle or
flat map: the argmax is kept). A refined keypoint is therefore never more
than ``max_offset`` from its argmax.
"""

import cv2
import numpy as np

from keras_pose.errors import CodecError

DARK_VARIANTS = ("mmpose", "hf")
# Longest DARK / DARK-UDP Newton step, in heatmap pixels (see module docstring).
MAX_DARK_OFFSET = 1.0


def _as_heatmaps(heatmaps, name="heatmaps"):
    hm = np.asarray(heatmaps)
    if hm.ndim != 4:
        raise CodecError(
            f"`{name}` must be (N, H, W, K) channels-last, got shape {hm.shape}. "
            "Add a batch axis with heatmaps[None] or transpose NCHW arrays with "
            "heatmaps.transpose(0, 2, 3, 1)."
        )
    return hm.astype(np.float32, copy=False)


def _as_keypoints(keypoints, heatmaps):
    kp = np.asarray(keypoints, dtype=np.float32)
    n, _, _, k = heatmaps.shape
    if kp.shape != (n, k, 2):
        raise CodecError(
            f"`keypoints` must be (N, K, 2) = ({n}, {k}, 2) to match heatmaps of "
            f"shape {heatmaps.shape}, got {kp.shape}."
        )
    return kp


def check_odd_kernel(value, name="blur_kernel_size", hint="11 for heatmap sigma 2, 17 for sigma 3"):
    """``value`` as an int if it is a positive odd integer, else a CodecError naming ``name``."""
    try:
        ok = int(value) == value and value >= 1 and int(value) % 2 == 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise CodecError(f"`{name}` must be a positive odd integer, got {value!r} ({hint}).")
    return int(value)


def get_heatmap_maximum(heatmaps):
    """Per-map argmax and maximum (mmpose ``get_heatmap_maximum``).

    Args:
        heatmaps: ``(N, H, W, K)``.

    Returns:
        ``(locs, vals)``: ``locs`` float32 ``(N, K, 2)`` integer ``(x, y)``
        heatmap pixels of the first maximum in row-major (y, x) order;
        ``vals`` float32 ``(N, K)`` the maxima. Where the maximum is ``<= 0``
        the location is set to ``(-1, -1)``.
    """
    hm = _as_heatmaps(heatmaps)
    n, h, w, k = hm.shape
    flat = np.transpose(hm, (0, 3, 1, 2)).reshape(n, k, h * w)
    idx = np.argmax(flat, axis=-1)
    vals = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
    locs = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    locs[vals <= 0] = -1.0
    return locs, vals.astype(np.float32)


def refine_keypoints(keypoints, heatmaps):
    """Quarter-offset refinement (mmpose ``refine_keypoints``).

    Each coordinate moves 0.25 heatmap px towards the larger of its two
    neighbours: ``x += 0.25 * sign(H[y, x+1] - H[y, x-1])`` when
    ``1 < x < W - 1`` and ``0 < y < H``; ``y += 0.25 * sign(H[y+1, x] -
    H[y-1, x])`` when ``1 < y < H - 1`` and ``0 < x < W`` (mmpose's bounds,
    kept as they are: x = 1 / y = 1 are not refined). Ties give no shift.

    Args:
        keypoints: ``(N, K, 2)`` heatmap px (from :func:`get_heatmap_maximum`).
        heatmaps: ``(N, H, W, K)`` raw heatmaps.

    Returns:
        float32 ``(N, K, 2)``.
    """
    hm = _as_heatmaps(heatmaps)
    kp = _as_keypoints(keypoints, hm).copy()
    n, h, w, k = hm.shape
    x = np.trunc(kp[..., 0]).astype(np.int64)
    y = np.trunc(kp[..., 1]).astype(np.int64)
    ni = np.arange(n)[:, None]
    ki = np.arange(k)[None, :]

    def at(yy, xx):
        return hm[ni, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1), ki]

    ok_x = (x > 1) & (x < w - 1) & (y > 0) & (y < h)
    ok_y = (y > 1) & (y < h - 1) & (x > 0) & (x < w)
    dx = np.where(ok_x, at(y, x + 1) - at(y, x - 1), 0.0)
    dy = np.where(ok_y, at(y + 1, x) - at(y - 1, x), 0.0)
    kp[..., 0] += np.sign(dx).astype(np.float32) * np.float32(0.25)
    kp[..., 1] += np.sign(dy).astype(np.float32) * np.float32(0.25)
    return kp


def gaussian_blur_mmpose(maps, kernel=11):
    """mmpose 1.x ``gaussian_blur``: zero-padded ``cv2.GaussianBlur``.

    Each map is padded with ``(kernel - 1) / 2`` zeros, blurred with
    ``cv2.GaussianBlur(map, (kernel, kernel), 0)`` (OpenCV's sigma
    ``0.3 * ((kernel - 1) / 2 - 1) + 0.8``), cropped, and rescaled so its
    maximum equals the original maximum. Maps whose blurred maximum is 0 are
    left unscaled (mmpose would divide by zero).

    Args:
        maps: ``(M, H, W)`` float maps.
        kernel: odd kernel size.

    Returns:
        float32 ``(M, H, W)``.
    """
    kernel = check_odd_kernel(kernel)
    maps = np.asarray(maps, dtype=np.float32)
    border = (kernel - 1) // 2
    out = np.empty_like(maps)
    for i, m in enumerate(maps):
        padded = np.pad(m, border, mode="constant")
        blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)
        if border:
            blurred = blurred[border:-border, border:-border]
        origin_max = np.max(m)
        new_max = np.max(blurred)
        if new_max != 0:
            blurred = blurred * (origin_max / new_max)
        out[i] = blurred
    return out


def _gaussian_kernel_1d(sigma, radius):
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def gaussian_blur_hf(maps, sigma=0.8, radius=5):
    """HF ``post_dark_udp`` blur without SciPy.

    Equals ``scipy.ndimage.gaussian_filter(map, sigma, radius=radius,
    mode='reflect')`` per map: a separable ``2 * radius + 1`` tap normalised
    Gaussian, half-sample symmetric borders (``'reflect'`` in SciPy,
    ``'symmetric'`` in ``np.pad``, ``cv2.BORDER_REFLECT``), rows (axis 0)
    first, each pass accumulated in float64 and stored as float32.

    Args:
        maps: ``(M, H, W)`` float maps.

    Returns:
        float32 ``(M, H, W)``.
    """
    maps = np.asarray(maps, dtype=np.float32)
    weights = _gaussian_kernel_1d(sigma, radius)
    out = maps
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out.astype(np.float64), pad, mode="symmetric")
        size = out.shape[axis]
        acc = np.zeros(out.shape, dtype=np.float64)
        for j, wgt in enumerate(weights):
            acc += wgt * np.take(padded, np.arange(j, j + size), axis=axis)
        out = acc.astype(np.float32)
    return out


def _check_max_offset(max_offset):
    if max_offset is None:
        return None
    try:
        value = float(max_offset)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or not np.isfinite(value):
        raise CodecError(
            f"`max_offset` must be a positive number of heatmap pixels (default {MAX_DARK_OFFSET}) or None "
            f"for the references' unbounded Newton step, got {max_offset!r}."
        )
    return value


def _bound_newton_offset(offset, hxx, det, max_offset):
    """Bound a DARK Newton step (module docstring).

    Args:
        offset: ``(..., 2)`` the Newton step ``-inv(Hess) @ grad``, heatmap px.
        hxx: ``(...)`` the Hessian's ``d2/dx2`` entry (of the matrix inverted).
        det: ``(...)`` its determinant.
        max_offset: longest step in heatmap px (Euclidean), or None to
            return ``offset`` unchanged (the references' behaviour).

    Returns:
        ``offset`` (same dtype): steps of length ``<= max_offset`` bit for
        bit; longer ones shortened to ``max_offset`` where the Hessian is
        negative definite (``hxx < 0`` and ``det > 0``), else zero; zero
        where the step is not finite.
    """
    if max_offset is None:
        return offset
    offset = np.asarray(offset)
    finite = np.all(np.isfinite(offset), axis=-1)
    safe = np.where(finite[..., None], offset, 0).astype(np.float64)
    norm = np.sqrt(np.sum(np.square(safe), axis=-1))
    long = norm > max_offset
    maximum = (hxx < 0) & (det > 0)
    scale = np.where(long, np.where(maximum, max_offset / np.where(long, norm, 1.0), 0.0), 1.0)
    bounded = np.where(long[..., None], safe * scale[..., None], np.where(finite[..., None], offset, 0))
    return bounded.astype(offset.dtype)


def refine_keypoints_dark(keypoints, heatmaps, blur_kernel_size=11, max_offset=MAX_DARK_OFFSET):
    """DARK refinement (mmpose ``refine_keypoints_dark``).

    Heatmaps are blurred (:func:`gaussian_blur_mmpose`), floored at 1e-10 and
    log-transformed; for keypoints with ``1 < x < W - 2`` and
    ``1 < y < H - 2`` a Newton step ``-inv(Hess) @ grad`` is added, with the
    gradient from central differences and the Hessian from 2-pixel-step
    differences, skipped where ``det(Hess) == 0``. Computed in float32 as
    mmpose does. Unlike mmpose the step is bounded to ``max_offset`` heatmap
    px (module docstring); shorter steps are mmpose's.

    Args:
        keypoints: ``(N, K, 2)`` heatmap px.
        heatmaps: ``(N, H, W, K)``.
        blur_kernel_size: odd Gaussian kernel size.
        max_offset: longest Newton step in heatmap px (default 1.0); None
            takes mmpose's unbounded step.

    Returns:
        float32 ``(N, K, 2)``.
    """
    max_offset = _check_max_offset(max_offset)
    hm = _as_heatmaps(heatmaps)
    kp = _as_keypoints(keypoints, hm).copy()
    n, h, w, k = hm.shape
    maps = np.transpose(hm, (0, 3, 1, 2)).reshape(n * k, h, w)
    logm = np.log(np.maximum(gaussian_blur_mmpose(maps, blur_kernel_size), 1e-10))
    logm = logm.astype(np.float32).reshape(n, k, h, w)

    x = np.trunc(kp[..., 0]).astype(np.int64)
    y = np.trunc(kp[..., 1]).astype(np.int64)
    ok = (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2)
    ni = np.arange(n)[:, None]
    ki = np.arange(k)[None, :]

    def at(dy, dx):
        return logm[ni, ki, np.clip(y + dy, 0, h - 1), np.clip(x + dx, 0, w - 1)]

    half, quarter = np.float32(0.5), np.float32(0.25)
    center = at(0, 0)
    gx = half * (at(0, 1) - at(0, -1))
    gy = half * (at(1, 0) - at(-1, 0))
    hxx = quarter * (at(0, 2) - 2 * center + at(0, -2))
    hxy = quarter * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    hyy = quarter * (at(2, 0) - 2 * center + at(-2, 0))
    det = hxx * hyy - hxy**2
    ok &= det != 0
    hess = np.stack([np.stack([hxx, hxy], -1), np.stack([hxy, hyy], -1)], -2)
    hess[~ok] = np.eye(2, dtype=np.float32)
    grad = np.stack([gx, gy], -1)[..., None]
    offset = -(np.linalg.inv(hess) @ grad)[..., 0]
    offset = _bound_newton_offset(offset, hxx, det, max_offset)
    kp[ok] += offset[ok].astype(np.float32)
    return kp


def refine_keypoints_dark_udp(keypoints, heatmaps, blur_kernel_size=11, variant="mmpose", max_offset=MAX_DARK_OFFSET):
    """DARK refinement for UDP heatmaps.

    Blurred heatmaps are clipped to ``[1e-3, 50]``, log-transformed and
    edge-padded by one pixel; at each integer location one Newton step
    ``coords -= inv(Hess + eps * I) @ grad`` is taken with central
    differences (``eps`` = float32 machine epsilon). No bounds check: border
    maxima use the edge padding. Locations ``(-1, -1)`` (non-positive
    maxima) are refined too by the references, reading across map
    boundaries of the flattened padded array; here (with ``max_offset`` set)
    they are left at ``(-1, -1)``, and the step is bounded to ``max_offset``
    heatmap px as the module docstring describes (the Hessian tested is
    ``Hess + eps * I``); shorter steps are the references'.

    Args:
        keypoints: ``(N, K, 2)`` heatmap px.
        heatmaps: ``(N, H, W, K)``.
        blur_kernel_size: odd kernel size.
        variant: ``"mmpose"``: mmpose 1.x ``refine_keypoints_dark_udp``
            (blur :func:`gaussian_blur_mmpose`, one instance at a time);
            ``"hf"``: HF transformers ``post_dark_udp`` (blur
            :func:`gaussian_blur_hf` with sigma 0.8 and radius
            ``(blur_kernel_size - 1) // 2``, the whole batch flattened).
        max_offset: longest Newton step in heatmap px (default 1.0); None
            takes the references' unbounded step (missing keypoints included).

    Returns:
        float32 ``(N, K, 2)``.
    """
    if variant not in DARK_VARIANTS:
        raise CodecError(f"`variant` must be one of {DARK_VARIANTS}, got {variant!r}.")
    kernel = check_odd_kernel(blur_kernel_size)
    max_offset = _check_max_offset(max_offset)
    hm = _as_heatmaps(heatmaps)
    kp = _as_keypoints(keypoints, hm).copy()
    n, h, w, k = hm.shape
    maps = np.transpose(hm, (0, 3, 1, 2)).reshape(n * k, h, w)
    if variant == "hf":
        blurred = gaussian_blur_hf(maps, sigma=0.8, radius=(kernel - 1) // 2)
    else:
        blurred = gaussian_blur_mmpose(maps, kernel)
    logm = np.log(np.clip(blurred, np.float32(1e-3), np.float32(50.0))).astype(np.float32)
    padded = np.pad(logm, ((0, 0), (1, 1), (1, 1)), mode="edge")
    if variant == "hf":
        groups = [padded.reshape(-1)]
        coords = [kp.reshape(n * k, 2)]
    else:
        padded = padded.reshape(n, k * (h + 2) * (w + 2))
        groups = list(padded)
        coords = list(kp)
    row = w + 2
    results = []
    for flat, xy in zip(groups, coords):
        m = xy.shape[0]
        index = xy[:, 0] + 1 + (xy[:, 1] + 1) * row
        index = index + row * (h + 2) * np.arange(m)
        index = index.astype(np.int64)
        i_ = flat[index]
        ix1 = flat[index + 1]
        iy1 = flat[index + row]
        ix1y1 = flat[index + row + 1]
        ix1_y1_ = flat[index - row - 1]
        ix1_ = flat[index - 1]
        iy1_ = flat[index - row]
        half = np.float32(0.5)
        dx = half * (ix1 - ix1_)
        dy = half * (iy1 - iy1_)
        dxx = ix1 - 2 * i_ + ix1_
        dyy = iy1 - 2 * i_ + iy1_
        dxy = half * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)
        hess = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)
        hess = hess.astype(np.float64) + np.finfo(np.float32).eps * np.eye(2)
        grad = np.stack([dx, dy], -1).astype(np.float64)[..., None]
        step = (np.linalg.inv(hess) @ grad)[..., 0]
        if max_offset is not None:
            det = hess[..., 0, 0] * hess[..., 1, 1] - hess[..., 0, 1] * hess[..., 1, 0]
            step = -_bound_newton_offset(-step, hess[..., 0, 0], det, max_offset)
            step[np.any(xy < 0, axis=-1)] = 0.0  # missing: location (-1, -1) kept
        results.append((xy.astype(np.float64) - step).astype(np.float32))
    return np.stack(results).reshape(n, k, 2)
