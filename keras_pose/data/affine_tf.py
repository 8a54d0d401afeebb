"""Top-down crop geometry in the TensorFlow graph.

These are graph (``tf.function`` / ``tf.data``) versions of
:mod:`keras_pose.geometry` with identical conventions, so a crop made in a
``tf.data`` pipeline equals the OpenCV crop made at test time:

- ``center`` ``(cx, cy)`` and ``scale`` ``(sw, sh)`` are in image pixels
  (mmpose 1.x, no /200);
- ``udp=False``: mmpose ``get_warp_matrix`` (box edges -> 0 and W,
  ``(W / sw) * R(-rot) (p - c) + (W/2, H/2)``);
- ``udp=True``: mmpose ``get_udp_warp_matrix`` (box edges -> 0 and W - 1,
  ``diag(sx, sy) * R(rot) (p - c) + ((W-1)/2, (H-1)/2)``);
- the image warp is bilinear with a constant border, sampling pixel centres
  at integer coordinates, like ``cv2.warpAffine(..., INTER_LINEAR,
  BORDER_CONSTANT)``.

Matrices are computed in float64 and returned as float32 ``(2, 3)`` tensors
(image -> crop), the layout of ``cv2.warpAffine``.
"""

import math

import tensorflow as tf


def _pair(value, dtype=tf.float64):
    return tf.reshape(tf.cast(value, dtype), [2])


def fix_aspect_ratio_tf(scale, aspect_ratio):
    """Enlarge the short side of ``scale`` ``(..., 2)`` to reach ``w / h``.

    Graph version of :func:`keras_pose.geometry.fix_aspect_ratio` (mmpose
    ``TopdownAffine._fix_aspect_ratio``). Keeps the dtype of ``scale``.
    """
    scale = tf.convert_to_tensor(scale)
    w, h = scale[..., 0], scale[..., 1]
    aspect = tf.cast(aspect_ratio, scale.dtype)
    wider = w > aspect * h
    return tf.stack(
        [tf.where(wider, w, h * aspect), tf.where(wider, w / aspect, h)], axis=-1
    )


def box_xywh_to_center_scale_tf(boxes, input_size, padding=1.25):
    """COCO ``xywh`` boxes ``(..., 4)`` -> ``(centers, scales)`` float32 ``(..., 2)``.

    Graph version of :func:`keras_pose.geometry.box_xywh_to_center_scale`:
    the box size gets the input's aspect ratio ``W / H`` (short side
    enlarged), then is multiplied by ``padding``.
    """
    h_in, w_in = (int(v) for v in input_size)
    b = tf.cast(tf.convert_to_tensor(boxes), tf.float64)
    centers = b[..., 0:2] + 0.5 * b[..., 2:4]
    scales = fix_aspect_ratio_tf(b[..., 2:4], w_in / h_in) * float(padding)
    return tf.cast(centers, tf.float32), tf.cast(scales, tf.float32)


def get_warp_matrix_tf(
    center, scale, output_size, rot=0.0, shift=(0.0, 0.0), udp=False, inverse=False
):
    """Affine ``(2, 3)`` float32 matrix mapping the crop box to the model input.

    Graph version of :func:`keras_pose.geometry.get_warp_matrix` with the same
    arguments: ``center`` ``(cx, cy)`` and ``scale`` ``(sw, sh)`` in image
    pixels, ``output_size`` ``(height, width)`` (Python ints), ``rot`` in
    degrees (scalar tensor allowed), ``shift`` as a fraction of the scale,
    ``udp`` a Python bool, ``inverse`` to get the crop -> image matrix.
    """
    h_out, w_out = (float(v) for v in output_size)
    c = _pair(center)
    s = _pair(scale)
    c = c + s * _pair(shift)
    theta = tf.cast(rot, tf.float64) * (math.pi / 180.0)
    cos_t, sin_t = tf.cos(theta), tf.sin(theta)
    if udp:
        sx = (w_out - 1.0) / s[0]
        sy = (h_out - 1.0) / s[1]
        a = tf.stack([tf.stack([cos_t * sx, -sin_t * sx]), tf.stack([sin_t * sy, cos_t * sy])])
        target = tf.stack([0.5 * s[0] * sx, 0.5 * s[1] * sy])
    else:
        k = w_out / s[0]
        a = tf.stack([tf.stack([k * cos_t, k * sin_t]), tf.stack([-k * sin_t, k * cos_t])])
        target = tf.constant([0.5 * w_out, 0.5 * h_out], tf.float64)
    t = target - tf.linalg.matvec(a, c)
    m = tf.concat([a, t[:, None]], axis=1)
    if inverse:
        m = invert_affine_tf(m)
    return tf.cast(m, tf.float32)


def invert_affine_tf(matrix):
    """Inverse of a ``(2, 3)`` affine matrix (keeps the dtype)."""
    m = tf.convert_to_tensor(matrix)
    a, t = m[:, :2], m[:, 2]
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    a_inv = tf.stack([tf.stack([a[1, 1], -a[0, 1]]), tf.stack([-a[1, 0], a[0, 0]])]) / det
    return tf.concat([a_inv, -tf.linalg.matvec(a_inv, t)[:, None]], axis=1)


def compose_affine_tf(outer, inner):
    """``outer ∘ inner`` for two ``(2, 3)`` affine matrices (apply inner first)."""
    outer = tf.convert_to_tensor(outer)
    inner = tf.cast(inner, outer.dtype)
    a = tf.matmul(outer[:, :2], inner[:, :2])
    t = tf.linalg.matvec(outer[:, :2], inner[:, 2]) + outer[:, 2]
    return tf.concat([a, t[:, None]], axis=1)


def transform_points_tf(points, matrix, dtype=tf.float32):
    """Apply a ``(2, 3)`` matrix to points ``(..., 2)``.

    The math is float64 (as :func:`keras_pose.geometry.transform_points`);
    the result is cast to ``dtype``.
    """
    p = tf.cast(points, tf.float64)
    m = tf.cast(matrix, tf.float64)
    return tf.cast(tf.linalg.matvec(m[:, :2], p) + m[:, 2], dtype)


def warp_image_tf(image, matrix, output_size, fill_value=0.0):
    """Bilinear affine warp of one image in the graph (``cv2.warpAffine`` twin).

    Args:
        image: ``(H_img, W_img, C)`` tensor, any real dtype.
        matrix: ``(2, 3)`` image -> crop matrix (:func:`get_warp_matrix_tf`).
        output_size: ``(height, width)`` of the crop (Python ints).
        fill_value: value outside the image (constant border): a scalar, or
            one value per channel (as OpenCV's ``borderValue``).

    Returns:
        float32 ``(height, width, C)``.

    ``tf.raw_ops.ImageProjectiveTransformV3`` maps *output* pixel coordinates
    to *input* ones, so the inverse matrix is passed; both it and OpenCV put
    pixel centres at integer coordinates. OpenCV quantises the bilinear
    weights to 1/32 pixel and rounds uint8 results, so the two agree to about
    one intensity level in the interior. A per-channel fill is blended the
    way OpenCV blends its border: the image is warped with a zero border
    next to a channel of ones, and ``(1 - warped ones) * fill`` is added.
    """
    h_out, w_out = (int(v) for v in output_size)
    inv = tf.cast(invert_affine_tf(tf.cast(matrix, tf.float64)), tf.float32)
    transform = tf.concat([tf.reshape(inv, [6]), tf.zeros([2], tf.float32)], axis=0)
    image = tf.cast(image, tf.float32)
    fill = [float(v) for v in (fill_value if isinstance(fill_value, (list, tuple)) else [fill_value])]
    per_channel = len(set(fill)) > 1
    if per_channel:
        image = tf.concat([image, tf.ones_like(image[..., :1])], axis=-1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.constant([h_out, w_out], tf.int32),
        fill_value=tf.constant(0.0 if per_channel else fill[0], tf.float32),
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]
    if per_channel:
        out = out[..., :-1] + (1.0 - out[..., -1:]) * tf.constant(fill, tf.float32)
    return out


def horizontal_flip_matrix_tf(image_width):
    """``(2, 3)`` float64 matrix of a left-right image flip: ``x -> W - 1 - x``.

    The mirror of pixel index ``i`` is ``W - 1 - i`` (pixel centres at
    integers), the convention of mmpose ``flip_keypoints`` / ``flip_bbox``
    and of ``np.fliplr`` followed by an OpenCV warp.
    """
    w = tf.cast(image_width, tf.float64)
    return tf.stack(
        [
            tf.stack([tf.constant(-1.0, tf.float64), tf.constant(0.0, tf.float64), w - 1.0]),
            tf.constant([0.0, 1.0, 0.0], tf.float64),
        ]
    )
