"""Horizontal-flip helpers for flip augmentation and flip-test averaging.

Coordinate convention (mmpose 1.x ``flip_keypoints``): keypoints are in
OpenCV pixel-index coordinates (pixel centres at integers, the frame that
``cv2.warpAffine`` and both warps of ``keras_pose.geometry`` produce), so
mirroring an image of width ``W`` (``image[:, ::-1]``) maps ``x`` to
``W - 1 - x``. This holds for standard and UDP crops alike.

Flip test: run the model on the mirrored crop, un-mirror its heatmaps with
:func:`flip_heatmaps` and average (:func:`flip_test_average`). With UDP
targets the un-mirrored heatmap is aligned exactly (``shift_heatmap=False``,
mmpose 1.x UDP configs). With MSRA targets (heatmap px = input px / stride)
it is offset by ``1 / stride - 1`` heatmap px in x; ``shift_heatmap=True``
(mmpose's one-pixel shift, used by its MSRA configs) moves it by +1, leaving
``1 / stride`` heatmap px (1 input px).
"""

import numpy as np

from keras_pose.errors import CodecError


def _check_indices(flip_indices, k):
    idx = [int(i) for i in flip_indices]
    if len(idx) != k or sorted(idx) != list(range(k)):
        raise CodecError(
            f"`flip_indices` must be a permutation of range({k}) (each keypoint's "
            f"mirror partner), got {list(flip_indices)!r}. Take it from the "
            "dataset's keypoint spec."
        )
    return idx


def flip_heatmaps(heatmaps, flip_indices, shift_heatmap=False):
    """Mirror heatmaps horizontally and swap left/right channels.

    Args:
        heatmaps: ``(N, h, w, K)`` (or ``(h, w, K)``) NumPy array or backend
            tensor (then Keras ops are used).
        flip_indices: length-K permutation: output channel ``k`` takes input
            channel ``flip_indices[k]``.
        shift_heatmap: then shift the result one pixel to the right
            (``out[..., 1:, :] = out[..., :-1, :]`` along width, column 0
            kept), as mmpose's ``shift_heatmap=True``.

    Returns:
        heatmaps of the same shape and type.
    """
    ndim = len(heatmaps.shape) if hasattr(heatmaps, "shape") else np.ndim(heatmaps)
    if ndim not in (3, 4):
        raise CodecError(
            f"`heatmaps` must be (N, h, w, K) or (h, w, K) channels-last, got {ndim} dims."
        )
    w_axis = ndim - 2
    k = heatmaps.shape[-1]
    idx = _check_indices(flip_indices, k)
    if isinstance(heatmaps, (np.ndarray, list, tuple)):
        hm = np.asarray(heatmaps)
        out = np.flip(hm, axis=w_axis)[..., idx]
        if shift_heatmap:
            out = out.copy()
            src = [slice(None)] * ndim
            dst = [slice(None)] * ndim
            src[w_axis] = slice(None, -1)
            dst[w_axis] = slice(1, None)
            out[tuple(dst)] = out[tuple(src)].copy()
        return out
    from keras import ops

    out = ops.take(ops.flip(heatmaps, axis=w_axis), np.asarray(idx, "int32"), axis=-1)
    if shift_heatmap:
        first = [slice(None)] * ndim
        rest = [slice(None)] * ndim
        first[w_axis] = slice(0, 1)
        rest[w_axis] = slice(0, -1)
        out = ops.concatenate([out[tuple(first)], out[tuple(rest)]], axis=w_axis)
    return out


def flip_keypoints(keypoints, keypoints_visible, flip_indices, image_width):
    """Mirror keypoints horizontally (mmpose 1.x ``flip_keypoints``).

    Args:
        keypoints: ``(..., K, 2)`` ``(x, y)`` pixel-index coordinates.
        keypoints_visible: ``(..., K)`` or None.
        flip_indices: length-K permutation of mirror partners.
        image_width: width ``W`` of the mirrored image (crop or full image).

    Returns:
        ``(keypoints, keypoints_visible)``: channels swapped and
        ``x -> W - 1 - x`` (float32), visibility swapped (None stays None).
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim < 2 or kp.shape[-1] != 2:
        raise CodecError(f"`keypoints` must be (..., K, 2), got shape {kp.shape}.")
    idx = _check_indices(flip_indices, kp.shape[-2])
    out = kp[..., idx, :].copy()
    out[..., 0] = np.float32(image_width) - 1 - out[..., 0]
    vis = None
    if keypoints_visible is not None:
        vis = np.asarray(keypoints_visible)
        if vis.shape != kp.shape[:-1]:
            raise CodecError(
                f"`keypoints_visible` must be {kp.shape[:-1]} to match keypoints "
                f"{kp.shape}, got {vis.shape}."
            )
        vis = vis[..., idx].copy()
    return out, vis


def flip_test_average(heatmaps, flipped_heatmaps, flip_indices, shift_heatmap=False):
    """Average a crop's heatmaps with those of its mirrored crop.

    Args:
        heatmaps: ``(N, h, w, K)`` model output on the crop.
        flipped_heatmaps: ``(N, h, w, K)`` model output on the mirrored crop.
        flip_indices: length-K permutation of mirror partners.
        shift_heatmap: see :func:`flip_heatmaps` (False for UDP, True for
            MSRA-trained models as in mmpose).

    Returns:
        ``(heatmaps + flip_heatmaps(flipped_heatmaps)) / 2``.
    """
    back = flip_heatmaps(flipped_heatmaps, flip_indices, shift_heatmap)
    if isinstance(back, np.ndarray):
        hm = np.asarray(heatmaps)
        if hm.shape != back.shape:
            raise CodecError(
                f"heatmaps {hm.shape} and flipped_heatmaps {back.shape} must have the same shape."
            )
        return (hm + back) * 0.5
    return (heatmaps + back) * 0.5
