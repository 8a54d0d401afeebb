"""Top-down crop geometry: boxes <-> (center, scale), affine warps.

Conventions (see CONTRIBUTING.md):

- sizes are ``(height, width)``; points are ``(x, y)`` in pixels;
- ``center`` is the crop box centre ``(cx, cy)`` in image pixels and
  ``scale`` is the crop box size ``(sw, sh)`` in image pixels (mmpose 1.x,
  no /200 factor);
- the *box frame* of a crop of input size ``(H, W)``: input coordinate
  ``u`` (0..W) maps to image ``x = cx - sw / 2 + u * sw / W`` (same for y
  with ``sh`` and ``H``). Heatmap codecs decode into this frame.

Two warp conventions exist, as in mmpose 1.x:

- ``udp=False`` (standard, mmpose ``get_warp_matrix``): the box edges go to
  ``0`` and ``W`` in OpenCV pixel-index coordinates, so warped coordinates
  are already in the box frame. It is a similarity transform using
  ``W / sw`` for both axes (the aspect ratio of ``scale`` is expected to be
  fixed to the input's, see :func:`box_xywh_to_center_scale`).
- ``udp=True`` (unbiased data processing, mmpose ``get_udp_warp_matrix``):
  the box edges go to the pixel centres ``0`` and ``W - 1``:
  ``x_out = (W - 1) / sw * (x - cx + sw / 2)``.

Which one a model uses is a setting of its top-down cropper
(`keras_pose.preprocessing.TopDownCropper`, ``warp="standard" | "udp"``);
``check_warp`` turns that name into the ``udp`` flag of the functions here.

All math is float64; returned arrays are float32.
"""

import math

import cv2
import numpy as np

from keras_pose.errors import GeometryError


WARPS = ("standard", "udp")


def check_warp(warp):
    """``True`` for the UDP warp, ``False`` for the standard one.

    Args:
        warp: ``"standard"`` (mmpose ``get_warp_matrix``) or ``"udp"``
            (mmpose ``get_udp_warp_matrix``).

    Raises:
        GeometryError: any other value.
    """
    if warp not in WARPS:
        raise GeometryError(
            f"`warp` must be one of {WARPS}, got {warp!r}: 'udp' for models trained on UDP crops "
            "(UDPHeatmap codecs, ViTPose), 'standard' for the others."
        )
    return warp == "udp"


def as_size(size, name, minimum=1, error=GeometryError):
    """A ``(height, width)`` pair as two ints, each at least ``minimum``.

    Args:
        size: the pair to check.
        name: the argument's name, for the message.
        minimum: smallest allowed height / width.
        error: the exception class raised (callers in other modules pass
            their own, e.g. `CodecError`).
    """
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise error(
            f"`{name}` must be a (height, width) pair of positive integers, "
            f"got {size!r}. Pass e.g. {name}=(256, 192)."
        ) from None
    if h < minimum or w < minimum:
        raise error(f"`{name}` must be at least ({minimum}, {minimum}) (height, width), got {size!r}.")
    return h, w


def _as_pair_array(value, name):
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 2:
        raise GeometryError(
            f"`{name}` must have a last dimension of size 2 (x, y) / (w, h), "
            f"got shape {arr.shape}."
        )
    return arr


def _as_matrix(matrix):
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3):
        raise GeometryError(
            f"`matrix` must be a (2, 3) affine matrix, got shape {m.shape}. "
            "Build one with keras_pose.geometry.get_warp_matrix."
        )
    return m


def fix_aspect_ratio(scales, aspect_ratio):
    """Enlarge the short side of each box size to reach ``aspect_ratio``.

    Args:
        scales: array ``(..., 2)`` of box sizes ``(w, h)`` in pixels.
        aspect_ratio: target ``w / h``.

    Returns:
        float32 array ``(..., 2)``: ``(w, w / aspect)`` where
        ``w > aspect * h``, else ``(h * aspect, h)`` (mmpose
        ``TopdownAffine._fix_aspect_ratio``).
    """
    s = _as_pair_array(scales, "scales")
    w, h = s[..., 0], s[..., 1]
    wider = w > aspect_ratio * h
    out = np.stack(
        [np.where(wider, w, h * aspect_ratio), np.where(wider, w / aspect_ratio, h)],
        axis=-1,
    )
    return out.astype(np.float32)


def _as_padding(padding):
    """``padding`` as a float, or as a float64 ``(px, py)`` array for a pair."""
    if np.ndim(padding) == 0:
        try:
            value = float(padding)
        except (TypeError, ValueError):
            value = float("nan")
        if not value > 0:
            raise GeometryError(f"`padding` must be a positive factor, got {padding!r}.")
        return value
    pair = np.asarray(padding, dtype=np.float64).reshape(-1)
    if pair.shape != (2,) or not np.all(pair > 0):
        raise GeometryError(
            f"`padding` must be a positive factor or a positive (x, y) pair, got "
            f"{padding!r}; e.g. padding=1.25 or padding=(1.2, 1.3) (CPN's +10 % / "
            "+15 % per side)."
        )
    return pair


def box_xywh_to_center_scale(boxes, input_size, padding=1.25):
    """COCO ``xywh`` boxes -> crop centres and scales (pixel box sizes).

    ``center = (x + w / 2, y + h / 2)``; ``scale = (w, h)`` with the short
    side enlarged so that ``w / h`` equals the input's ``W / H``, then
    multiplied by ``padding``. This equals mmpose 1.x
    ``GetBBoxCenterScale(padding)`` + ``TopdownAffine`` and HF
    ``VitPoseImageProcessor`` (whose scale is this value / 200).

    A per-axis ``padding=(px, py)`` first extends the box to ``(w * px,
    h * py)`` and then fixes the aspect ratio (enlarging the short side).
    ``(1.2, 1.3)`` is pytorch-cpn's test crop (``bbox_extend_factor`` 10 %
    per side in x, 15 % in y), before its integer rounding of the crop
    corners. A scalar ``p`` gives the same result as ``(p, p)``.

    Args:
        boxes: array ``(..., 4)`` of ``(x, y, w, h)`` in image pixels (a
            trailing score column, ``(..., 5)``, is ignored).
        input_size: model input ``(height, width)``.
        padding: box enlargement factor, or an ``(x, y)`` pair of
            per-axis factors.

    Returns:
        ``(centers, scales)``: float32 arrays ``(..., 2)`` in image pixels.
    """
    h_in, w_in = as_size(input_size, "input_size")
    padding = _as_padding(padding)
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim == 0 or b.shape[-1] not in (4, 5):
        raise GeometryError(
            f"`boxes` must have shape (..., 4) COCO (x, y, w, h), got shape "
            f"{b.shape}. Convert xyxy boxes with w = x2 - x1, h = y2 - y1."
        )
    x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    centers = np.stack([x + 0.5 * w, y + 0.5 * h], axis=-1)
    if isinstance(padding, float):
        scales = fix_aspect_ratio(np.stack([w, h], axis=-1), w_in / h_in).astype(np.float64)
        scales = scales * padding
    else:
        extended = np.stack([w * padding[0], h * padding[1]], axis=-1)
        scales = fix_aspect_ratio(extended, w_in / h_in).astype(np.float64)
    return centers.astype(np.float32), scales.astype(np.float32)


def get_warp_matrix(
    center,
    scale,
    output_size,
    rot=0.0,
    shift=(0.0, 0.0),
    udp=False,
    inverse=False,
):
    """Affine matrix that maps the crop box of an image to the model input.

    Args:
        center: ``(cx, cy)`` box centre in image pixels.
        scale: ``(sw, sh)`` box size in image pixels.
        output_size: ``(height, width)`` of the crop (model input).
        rot: rotation in degrees, as in mmpose 1.x. Note that mmpose's two
            functions rotate in opposite senses for the same angle: the
            standard matrix is ``(W / sw) * R(-rot) (p - c)``, the UDP matrix
            ``diag(sx, sy) * R(rot) (p - c)`` with ``R(a) = [[cos a, -sin a],
            [sin a, cos a]]``; both are reproduced as they are.
        shift: ``(fx, fy)`` translation of the box centre as a fraction of
            the scale (``center + scale * shift``).
        udp: False: mmpose ``get_warp_matrix`` (box edges -> 0 and W);
            True: mmpose ``get_udp_warp_matrix`` (box edges -> 0 and W - 1).
        inverse: return the crop -> image matrix instead.

    Returns:
        float32 ``(2, 3)`` matrix for ``cv2.warpAffine`` / ``transform_points``.
    """
    h_out, w_out = as_size(output_size, "output_size")
    c = _as_pair_array(center, "center").reshape(-1)
    s = _as_pair_array(scale, "scale").reshape(-1)
    if c.shape != (2,) or s.shape != (2,):
        raise GeometryError(
            "`center` and `scale` must each be a single (x, y) / (w, h) pair; "
            f"got shapes {c.shape} and {s.shape}. Call once per box."
        )
    if s[0] <= 0 or s[1] <= 0:
        raise GeometryError(f"`scale` must be positive (w, h) in pixels, got {s}.")
    shift = _as_pair_array(shift, "shift").reshape(-1)
    c = c + s * shift

    theta = math.radians(float(rot))
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    if udp:
        sx = (w_out - 1.0) / s[0]
        sy = (h_out - 1.0) / s[1]
        a = np.array([[cos_t * sx, -sin_t * sx], [sin_t * sy, cos_t * sy]])
        # Box centre -> ((W - 1) / 2, (H - 1) / 2).
        t = np.array([0.5 * s[0] * sx, 0.5 * s[1] * sy]) - a @ c
    else:
        k = w_out / s[0]
        a = k * np.array([[cos_t, sin_t], [-sin_t, cos_t]])
        # Box centre -> (W / 2, H / 2).
        t = np.array([0.5 * w_out, 0.5 * h_out]) - a @ c
    m = np.concatenate([a, t[:, None]], axis=1)
    if inverse:
        m = invert_affine(m)
    return m.astype(np.float32)


def invert_affine(matrix):
    """Inverse of a ``(2, 3)`` affine matrix (float64 math, float32 result)."""
    m = _as_matrix(matrix)
    a_inv = np.linalg.inv(m[:, :2])
    return np.concatenate([a_inv, -(a_inv @ m[:, 2])[:, None]], axis=1).astype(np.float32)


def warp_image(image, matrix, output_size, border_value=0):
    """Warp an image with ``cv2.warpAffine`` (bilinear, constant border).

    Args:
        image: ``(H_img, W_img)`` or ``(H_img, W_img, C)`` array.
        matrix: ``(2, 3)`` image -> crop matrix (:func:`get_warp_matrix`).
        output_size: ``(height, width)`` of the crop.
        border_value: fill value outside the image.

    Returns:
        the crop, ``(height, width[, C])``, same dtype as ``image``.
    """
    h_out, w_out = as_size(output_size, "output_size")
    m = _as_matrix(matrix)
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise GeometryError(
            f"`image` must be (H, W) or (H, W, C), got shape {image.shape}. "
            "Warp batched images one at a time."
        )
    if np.isscalar(border_value):
        border = (border_value,) * 4
    else:
        border = tuple(border_value)
    return cv2.warpAffine(
        image,
        m,
        (w_out, h_out),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def transform_points(points, matrix):
    """Apply a ``(2, 3)`` affine matrix to points.

    Args:
        points: array ``(..., 2)`` of ``(x, y)``.
        matrix: ``(2, 3)`` affine matrix.

    Returns:
        float32 array ``(..., 2)``: ``matrix[:, :2] @ p + matrix[:, 2]``.
    """
    p = _as_pair_array(points, "points")
    m = _as_matrix(matrix)
    return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)


def crop_to_image(keypoints, centers, scales, input_size):
    """Map keypoints from the crop's box frame back to the image.

    ``x = cx - sw / 2 + u * sw / W`` and ``y = cy - sh / 2 + v * sh / H``
    (no rotation). This is the test-time inverse for both warp conventions
    when the keypoints come from a matching codec's ``decode`` (mmpose 1.x
    ``TopdownPoseEstimator`` / HF ``transform_preds``).

    Args:
        keypoints: ``(N, K, 2)`` (or ``(K, 2)``) box-frame input pixels.
        centers: ``(N, 2)`` (or ``(2,)``) box centres in image pixels.
        scales: ``(N, 2)`` (or ``(2,)``) box sizes in image pixels.
        input_size: model input ``(height, width)``.

    Returns:
        float32 array with the shape of ``keypoints``, image pixels.
    """
    h_in, w_in = as_size(input_size, "input_size")
    kp = _as_pair_array(keypoints, "keypoints")
    c = _as_pair_array(centers, "centers")
    s = _as_pair_array(scales, "scales")
    if kp.ndim == 3:
        if c.shape != (kp.shape[0], 2) or s.shape != (kp.shape[0], 2):
            raise GeometryError(
                f"`centers` and `scales` must be ({kp.shape[0]}, 2) for keypoints "
                f"of shape {kp.shape}; got {c.shape} and {s.shape}."
            )
        c, s = c[:, None, :], s[:, None, :]
    elif kp.ndim == 2:
        if c.shape != (2,) or s.shape != (2,):
            raise GeometryError(
                "For unbatched keypoints (K, 2) pass one center (2,) and one "
                f"scale (2,); got {c.shape} and {s.shape}."
            )
    else:
        raise GeometryError(
            f"`keypoints` must be (N, K, 2) or (K, 2), got shape {kp.shape}."
        )
    out = kp * (s / np.array([w_in, h_in], dtype=np.float64)) + c - 0.5 * s
    return out.astype(np.float32)
