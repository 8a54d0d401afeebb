"""Graph-side augmentations of the whole-image pipeline (bottom-up and one-stage models).

Every function is a TensorFlow op usable in ``tf.data.Dataset.map`` and
takes an explicit stateless seed (a ``(2,)`` int64 tensor), so one seed
always gives one augmentation, whatever the parallelism.

Geometry is carried as ``(2, 3)`` float64 affine matrices (source image
pixels -> model input pixels, the layout of ``cv2.warpAffine``): the
letterbox, mosaic placement, random affine and flip are composed into one
matrix per source image and the image is warped once (bilinear,
``keras_pose.data.affine_tf``), as are its keypoints, boxes and ignore mask.

Defaults (``DEFAULT_WHOLE_IMAGE_AUGMENT``) follow the YOLOX / RTMO recipe of
mmpose 1.x (``BottomupRandomAffine``, ``YOLOXHSVRandomAug``, ``RandomFlip``;
``Mosaic`` and ``YOLOXMixUp`` are off unless asked for).
"""

import math

import tensorflow as tf

from keras_pose.data.augmentations import resolve_stages

DEFAULT_WHOLE_IMAGE_AUGMENT = {
    # Random affine about the input centre (mmpose BottomupRandomAffine, RTMO):
    # scale factor uniform in scale_range, rotation uniform in [-r, r] degrees,
    # shift uniform in [-s, s] x input size, shear uniform in [-sh, sh] degrees.
    "affine": {"scale_range": (0.75, 1.25), "max_rotation": 30.0, "max_shift": 0.1, "max_shear": 0.0},
    # Horizontal flip with the keypoint spec's flip pairs.
    "flip": {"prob": 0.5},
    # YOLOX HSV jitter: each gain applied with probability 1/2; hue in OpenCV
    # degrees (0..180 circle), saturation and value in 0..255 levels.
    "hsv": {"hue_delta": 5.0, "saturation_delta": 30.0, "value_delta": 30.0},
    # YOLOX mosaic of 4 images on a 2H x 2W canvas (centre uniform in
    # center_range x size), then the random affine; off by default.
    "mosaic": None,
    # YOLOX mixup: blend with a second augmented image (ratio 0.5), instances of both.
    "mixup": None,
}

_STAGE_DEFAULTS = {
    "affine": DEFAULT_WHOLE_IMAGE_AUGMENT["affine"],
    "flip": DEFAULT_WHOLE_IMAGE_AUGMENT["flip"],
    "hsv": DEFAULT_WHOLE_IMAGE_AUGMENT["hsv"],
    "mosaic": {"prob": 1.0, "center_range": (0.5, 1.5)},
    "mixup": {"prob": 1.0, "ratio": 0.5},
}


def resolve_whole_image_augment(augment):
    """Normalise ``augment``: True (defaults), False / None (none) or ``{stage: None | True | {options}}``.

    Stages: "affine", "flip", "hsv", "mosaic", "mixup"; a stage not named
    keeps its default (mosaic and mixup default to off; ``True`` turns one
    on with probability 1).

    Returns:
        dict ``stage -> options`` of the enabled stages.
    """
    return resolve_stages(augment, _STAGE_DEFAULTS,
                          {stage: DEFAULT_WHOLE_IMAGE_AUGMENT[stage] is not None for stage in _STAGE_DEFAULTS},
                          "whole-image augmentation ", "{'mosaic': True, 'affine': {'max_rotation': 40}}")


def _f64(value):
    return tf.cast(value, tf.float64)


def affine_matrix(rows):
    """A ``(2, 3)`` float64 matrix from nested rows of scalars/tensors."""
    return tf.stack([tf.stack([_f64(v) for v in row]) for row in rows])


def compose(outer, inner):
    """``outer ∘ inner`` of ``(2, 3)`` float64 matrices (inner applied first)."""
    return tf.concat([outer[:, :2] @ inner[:, :2], (tf.linalg.matvec(outer[:, :2], inner[:, 2]) + outer[:, 2])[:, None]],
                     axis=1)


def letterbox_matrix(image_hw, output_size, pad_position="center", centre_to_centre=False):
    """Image -> input matrix of the letterbox (``WholeImageResizer`` / ``WarpLetterboxResizer`` conventions).

    Args:
        image_hw: ``(2,)`` int tensor, source ``(h, w)``.
        output_size: ``(H, W)`` Python ints.
        pad_position: "center" (offset ``(W - new_w) // 2``) or "bottom_right" (offset 0).
        centre_to_centre: the `WarpLetterboxResizer` map (image centre to
            input centre, float offset ``W / 2 - s w / 2``).
    """
    out_h, out_w = (float(v) for v in output_size)
    h, w = _f64(image_hw[0]), _f64(image_hw[1])
    s = tf.minimum(out_h / h, out_w / w)
    if centre_to_centre:
        return affine_matrix([[s, 0.0, out_w / 2.0 - s * w / 2.0], [0.0, s, out_h / 2.0 - s * h / 2.0]])
    new_h = tf.maximum(tf.round(h * s), 1.0)
    new_w = tf.maximum(tf.round(w * s), 1.0)
    sx, sy = new_w / w, new_h / h
    if pad_position == "center":
        ox, oy = tf.math.floordiv(out_w - new_w, 2.0), tf.math.floordiv(out_h - new_h, 2.0)
    else:
        ox = oy = tf.constant(0.0, tf.float64)
    return affine_matrix([[sx, 0.0, ox], [0.0, sy, oy]])


def random_affine(seed, frame_size, output_size, scale_range=(0.75, 1.25), max_rotation=30.0, max_shift=0.1,
                  max_shear=0.0):
    """Frame -> input matrix: the frame centre goes to the input centre (+ shift), scaled, rotated, sheared.

    Args:
        seed: ``(2,)`` stateless seed.
        frame_size: ``(fh, fw)`` of the frame the sources were placed on
            (the input size for one image, twice it for a mosaic).
        output_size: ``(H, W)``.

    Returns:
        ``(2, 3)`` float64. Scale ``1`` keeps the frame's pixel size.
    """
    u = tf.random.stateless_uniform([5], seed, minval=-1.0, maxval=1.0, dtype=tf.float64)
    lo, hi = (float(v) for v in scale_range)
    scale = 0.5 * (lo + hi) + 0.5 * (hi - lo) * u[0]
    theta = u[1] * float(max_rotation) * math.pi / 180.0
    shear_x = tf.tan(u[2] * float(max_shear) * math.pi / 180.0)
    out_h, out_w = (float(v) for v in output_size)
    fh, fw = (float(v) for v in frame_size)
    tx = out_w / 2.0 + u[3] * float(max_shift) * out_w
    ty = out_h / 2.0 + u[4] * float(max_shift) * out_h
    c, s = tf.cos(theta) * scale, tf.sin(theta) * scale
    # rotation-scale R (clockwise on screen, y down, for positive angles) after a shear along x
    linear = affine_matrix([[c, -s, 0.0], [s, c, 0.0]])
    shear = affine_matrix([[1.0, shear_x, 0.0], [0.0, 1.0, 0.0]])
    centre = affine_matrix([[1.0, 0.0, -fw / 2.0], [0.0, 1.0, -fh / 2.0]])
    place = affine_matrix([[1.0, 0.0, tx], [0.0, 1.0, ty]])
    return compose(place, compose(linear, compose(shear, centre)))


def flip_matrix(output_width):
    """``x -> W - 1 - x`` on the input (pixel centres at integers, as ``np.fliplr``)."""
    return affine_matrix([[-1.0, 0.0, float(output_width) - 1.0], [0.0, 1.0, 0.0]])


def mosaic_matrices(seed, image_hws, output_size, center_range=(0.5, 1.5)):
    """Placement matrices of 4 images on a ``2H x 2W`` canvas (mmdet / YOLOX ``Mosaic``).

    Each image is scaled by ``min(H / h, W / w)`` and placed with a corner at
    the random centre ``(xc, yc)`` (uniform in ``center_range x (W, H)``):
    top-left, top-right, bottom-left, bottom-right, so the four never overlap.

    Args:
        image_hws: ``(4, 2)`` int tensor of source ``(h, w)``.

    Returns:
        ``(4, 2, 3)`` float64 image -> canvas matrices.
    """
    out_h, out_w = (float(v) for v in output_size)
    lo, hi = (float(v) for v in center_range)
    u = tf.random.stateless_uniform([2], seed, minval=lo, maxval=hi, dtype=tf.float64)
    xc, yc = u[0] * out_w, u[1] * out_h
    hw = _f64(image_hws)
    s = tf.minimum(out_h / hw[:, 0], out_w / hw[:, 1])
    w, h = hw[:, 1] * s, hw[:, 0] * s
    ox = tf.stack([xc - w[0], xc, xc - w[2], xc])
    oy = tf.stack([yc - h[0], yc - h[1], yc, yc])
    zero = tf.zeros([4], tf.float64)
    return tf.reshape(tf.stack([s, zero, ox, zero, s, oy], axis=1), [4, 2, 3])


def warp_with_mask(image, ignore, matrix, output_size):
    """Warp RGB + ignore mask + coverage with zero border.

    Returns:
        ``(rgb (H, W, 3), ignore (H, W), coverage (H, W))`` float32; a pixel
        is image where coverage is 1, border where it is 0 (bilinear blend
        in between).
    """
    from keras_pose.data.affine_tf import warp_image_tf

    stack = tf.concat([tf.cast(image, tf.float32), tf.cast(ignore, tf.float32)[..., None],
                       tf.ones_like(tf.cast(ignore, tf.float32))[..., None]], axis=-1)
    out = warp_image_tf(stack, tf.cast(matrix, tf.float32), output_size, fill_value=0.0)
    return out[..., :3], out[..., 3], out[..., 4]


def random_hsv(seed, image, hue_delta=5.0, saturation_delta=30.0, value_delta=30.0):
    """YOLOX ``HSVRandomAug`` on an RGB float image in 0..255.

    Gains ``uniform(-1, 1) * delta``, each kept with probability 1/2: hue
    shifted by ``gain / 180`` of the circle (OpenCV's 0..180 hue), saturation
    and value shifted by ``gain`` levels (of 255) and clipped.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    gains = tf.random.stateless_uniform([3], seeds[0], minval=-1.0, maxval=1.0)
    on = tf.cast(tf.random.stateless_uniform([3], seeds[1]) < 0.5, tf.float32)
    gains = gains * on * tf.constant([hue_delta / 180.0, saturation_delta / 255.0, value_delta / 255.0])
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(image, 0.0, 255.0) / 255.0)
    hue = tf.math.floormod(hsv[..., 0] + gains[0], 1.0)
    sat = tf.clip_by_value(hsv[..., 1] + gains[1], 0.0, 1.0)
    val = tf.clip_by_value(hsv[..., 2] + gains[2], 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hue, sat, val], axis=-1)) * 255.0


def transform_instances(keypoints, visible, boxes_xywh, valid, matrix, output_size, flipped, flip_indices,
                        min_box_size=1.0, min_keypoints=1):
    """Map instances through ``matrix`` and filter them (annotation filtering).

    Keypoints outside the input (``x`` not in ``[0, W)`` or ``y`` not in
    ``[0, H)``) get visibility 0 (coordinates kept); boxes are the extent of
    their 4 transformed corners clipped to the input; an instance stays
    valid if its clipped box is at least ``min_box_size`` pixels on both
    sides and it keeps ``min_keypoints`` visible keypoints.

    Args:
        keypoints: ``(N, K, 2)``; visible ``(N, K)``; boxes_xywh ``(N, 4)``;
            valid ``(N,)`` bool; matrix ``(2, 3)`` (already including a flip).
        flipped: scalar bool; when True the keypoints are re-ordered by
            ``flip_indices`` (left <-> right) and boxes mirror.

    Returns:
        ``(keypoints (N, K, 2), visible (N, K), boxes (N, 4) xyxy, valid (N,))``.
    """
    out_h, out_w = (float(v) for v in output_size)
    m = _f64(matrix)
    kps = tf.einsum("ij,nkj->nki", m[:, :2], _f64(keypoints)) + m[:, 2]
    vis = tf.minimum(tf.cast(visible, tf.float32), 1.0)
    if flip_indices is not None:
        order = tf.constant(list(flip_indices), tf.int32)
        kps = tf.where(flipped, tf.gather(kps, order, axis=1), kps)
        vis = tf.where(flipped, tf.gather(vis, order, axis=1), vis)
    inside = (kps[..., 0] >= 0) & (kps[..., 0] < out_w) & (kps[..., 1] >= 0) & (kps[..., 1] < out_h)
    vis = vis * tf.cast(inside, tf.float32)
    b = _f64(boxes_xywh)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    corners = tf.stack([tf.stack([x1, y1], -1), tf.stack([x2, y1], -1), tf.stack([x1, y2], -1),
                        tf.stack([x2, y2], -1)], axis=1)
    corners = tf.einsum("ij,nkj->nki", m[:, :2], corners) + m[:, 2]
    lo = tf.reduce_min(corners, axis=1)
    hi = tf.reduce_max(corners, axis=1)
    boxes = tf.concat([tf.clip_by_value(lo, 0.0, [out_w, out_h]), tf.clip_by_value(hi, 0.0, [out_w, out_h])], -1)
    size_ok = ((boxes[:, 2] - boxes[:, 0]) >= min_box_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_box_size)
    kps_ok = tf.reduce_sum(vis, axis=1) >= float(min_keypoints)
    valid = tf.cast(valid, tf.bool) & size_ok & kps_ok
    return tf.cast(kps, tf.float32), vis, tf.cast(boxes, tf.float32), valid


def pack_instances(keypoints, visible, boxes, valid, max_instances):
    """Valid instances first (stable, in source order), padded / truncated to ``max_instances``.

    Returns the padded-instance dict ``{"boxes", "keypoints",
    "keypoint_visible", "instance_valid"}`` (invalid rows zero).
    """
    n = tf.shape(valid)[0]
    order = tf.argsort(tf.cast(~valid, tf.int32), stable=True)
    pad = tf.maximum(max_instances - n, 0)

    def take(x):
        x = tf.gather(x, order)[:max_instances]
        paddings = [[0, pad]] + [[0, 0]] * (len(x.shape) - 1)
        return tf.pad(x, paddings)

    keep = take(tf.cast(valid, tf.float32))
    k = keypoints.shape[1]
    return {
        "boxes": tf.ensure_shape(take(boxes) * keep[:, None], [max_instances, 4]),
        "keypoints": tf.ensure_shape(take(keypoints) * keep[:, None, None], [max_instances, k, 2]),
        "keypoint_visible": tf.ensure_shape(take(visible) * keep[:, None], [max_instances, k]),
        "instance_valid": tf.ensure_shape(keep, [max_instances]),
    }
