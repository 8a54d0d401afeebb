"""Graph-side random augmentations of the top-down pipeline (mmpose 1.x).

All functions are TensorFlow ops usable inside ``tf.data.Dataset.map`` and
take an explicit stateless seed (a ``(2,)`` int32/int64 tensor), so a given
seed always gives the same augmentation, whatever the parallelism.

They act on the crop *geometry* (box centre / size / rotation, keypoints),
as mmpose 1.x does before ``TopdownAffine``; the image is warped once at the
end (a flip is folded into that warp, see ``top_down_pipeline``).

Conventions: ``center`` ``(cx, cy)`` and ``scale`` ``(sw, sh)`` in image
pixels (float64 inside), ``keypoints`` ``(K, 2)`` image pixels, ``visible``
``(K,)`` (> 0 = labelled).

Defaults (``DEFAULT_AUGMENT``) are mmpose 1.x ``RandomFlip``,
``RandomHalfBody`` and ``RandomBBoxTransform`` defaults, plus a mild colour
jitter (not part of the mmpose ViTPose / HRNet recipes; disable with
``augment={"color_jitter": None}``).
"""

import copy

import tensorflow as tf

from keras_pose.errors import PipelineError

DEFAULT_AUGMENT = {
    # mmpose RandomFlip(direction="horizontal")
    "flip": {"prob": 0.5},
    # mmpose RandomHalfBody()
    "half_body": {
        "prob": 0.3,
        "min_total_keypoints": 9,
        "min_upper_keypoints": 2,
        "min_lower_keypoints": 3,
        "padding": 1.5,
        "upper_prioritized_prob": 0.7,
    },
    # mmpose RandomBBoxTransform()
    "bbox_transform": {
        "shift_factor": 0.16,
        "shift_prob": 0.3,
        "scale_factor": (0.5, 1.5),
        "scale_prob": 1.0,
        "rotate_factor": 80.0,
        "rotate_prob": 0.6,
    },
    # Photometric jitter on the crop, each applied with probability `prob`.
    "color_jitter": {
        "prob": 0.5,
        "brightness": 0.1,  # delta in [-b, b] x 255
        "contrast": 0.1,  # factor in [1 - c, 1 + c]
        "saturation": 0.1,  # factor in [1 - s, 1 + s]
        "hue": 0.02,  # delta in [-h, h] (fraction of the hue circle)
    },
}

_STAGES = tuple(DEFAULT_AUGMENT)


def resolve_stages(augment, stage_options, enabled, label, example):
    """Normalise a pipeline's ``augment`` argument against its stages (both pipelines use this).

    Args:
        augment: ``True`` (every stage at its default), ``False`` / ``None``
            (none), or ``{stage: None | False | True | {overrides}}``; stages
            not named keep their default.
        stage_options: ``{stage: default options dict}``, in stage order.
        enabled: ``{stage: bool}``, whether a stage not named is on.
        label: how the messages name the stages ("augmentation ", ...).
        example: an ``augment`` value quoted in the type error.

    Returns:
        dict ``stage -> options`` of the enabled stages (possibly empty).

    Raises:
        PipelineError: not a bool / dict, an unknown stage or option.
    """
    if augment is None or augment is False:
        return {}
    if augment is True:
        augment = {}
    if not isinstance(augment, dict):
        raise PipelineError(f"`augment` must be True, False or a dict of stage overrides, got "
                            f"{type(augment).__name__}; e.g. augment={example}.")
    unknown = set(augment) - set(stage_options)
    if unknown:
        raise PipelineError(f"Unknown {label}stage(s) {sorted(unknown)}; the stages are {list(stage_options)}.")
    out = {}
    for stage, options in stage_options.items():
        value = augment.get(stage, enabled[stage])
        if value is None or value is False:
            continue
        config = copy.deepcopy(options)
        if isinstance(value, dict):
            bad = set(value) - set(options)
            if bad:
                raise PipelineError(f"Unknown option(s) {sorted(bad)} for augmentation stage {stage!r}; its "
                                    f"options are {sorted(options)}.")
            config.update(value)
        elif value is not True:
            raise PipelineError(f"augment[{stage!r}] must be True, False/None or a dict of options, got {value!r}.")
        out[stage] = config
    return out


def resolve_augment(augment):
    """Normalise the ``augment`` argument of the top-down pipeline (`resolve_stages`).

    Args:
        augment: ``True`` (all defaults), ``False`` / ``None`` (none), or a
            dict ``{stage: None | False | True | {overrides}}`` for stages
            "flip", "half_body", "bbox_transform", "color_jitter". Stages
            not named keep their defaults; ``None`` / ``False`` disables one.

    Returns:
        dict ``stage -> config dict`` of the enabled stages (possibly empty).
    """
    return resolve_stages(augment, DEFAULT_AUGMENT, dict.fromkeys(_STAGES, True), "augmentation ",
                          "{'half_body': None, 'bbox_transform': {'rotate_factor': 40}}")


def split_seed(seed, num):
    """``num`` independent stateless seeds ``(num, 2)`` from one ``(2,)`` seed."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=num)


def _uniform(seed, shape=()):
    return tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float64)


def random_flip(seed, image_width, center, keypoints, visible, flip_indices, prob=0.5):
    """mmpose ``RandomFlip(direction="horizontal")`` on the crop geometry.

    With probability ``prob``: ``cx -> W - 1 - cx``, keypoint ``x -> W - 1 -
    x`` (pixel centres at integers, the mirror of ``np.fliplr``) and the
    keypoints / visibility re-ordered by ``flip_indices`` (left <-> right).

    Returns:
        ``(flipped (bool), center, keypoints, visible)``. The image itself is
        not flipped here: compose the warp with
        ``affine_tf.horizontal_flip_matrix_tf(W)`` when ``flipped``.
    """
    flipped = _uniform(seed) < prob
    w = tf.cast(image_width, tf.float64)
    center = tf.cast(center, tf.float64)
    keypoints = tf.cast(keypoints, tf.float64)
    flip_indices = tf.constant(list(flip_indices), tf.int32)
    f_center = tf.stack([w - 1.0 - center[0], center[1]])
    f_kps = tf.gather(tf.stack([w - 1.0 - keypoints[:, 0], keypoints[:, 1]], axis=-1), flip_indices)
    f_vis = tf.gather(visible, flip_indices)
    center = tf.where(flipped, f_center, center)
    keypoints = tf.where(flipped, f_kps, keypoints)
    visible = tf.where(flipped, f_vis, visible)
    return flipped, center, keypoints, visible


def random_half_body(
    seed,
    center,
    scale,
    keypoints,
    visible,
    upper_body_indices,
    lower_body_indices,
    prob=0.3,
    min_total_keypoints=9,
    min_upper_keypoints=2,
    min_lower_keypoints=3,
    padding=1.5,
    upper_prioritized_prob=0.7,
):
    """mmpose ``RandomHalfBody``: crop the upper or the lower body only.

    Applies when the person has at least ``min_total_keypoints`` labelled
    keypoints, with probability ``prob``. The upper body is chosen with
    probability ``upper_prioritized_prob`` when both halves are usable (at
    least ``min_upper_keypoints`` / ``min_lower_keypoints`` labelled), else
    the usable half. The new box: centre = mean of the chosen labelled
    keypoints, size = their extent x ``padding`` (its aspect ratio is fixed
    later, at the warp).

    Returns:
        ``(half (int32: 0 none, 1 upper, 2 lower), center, scale)``.
    """
    num_k = int(keypoints.shape[0])
    keypoints = tf.cast(keypoints, tf.float64)
    center = tf.cast(center, tf.float64)
    scale = tf.cast(scale, tf.float64)
    labelled = tf.cast(visible, tf.float64) > 0
    is_upper = tf.constant([i in set(upper_body_indices) for i in range(num_k)])
    is_lower = tf.constant([i in set(lower_body_indices) for i in range(num_k)])
    upper = labelled & is_upper
    lower = labelled & is_lower
    n_total = tf.reduce_sum(tf.cast(labelled, tf.int32))
    n_upper = tf.reduce_sum(tf.cast(upper, tf.int32))
    n_lower = tf.reduce_sum(tf.cast(lower, tf.int32))
    u = _uniform(seed, [2])
    upper_ok = n_upper >= min_upper_keypoints
    lower_ok = n_lower >= min_lower_keypoints
    apply = (n_total >= min_total_keypoints) & (u[0] <= prob) & (upper_ok | lower_ok)
    prefer_upper = u[1] < upper_prioritized_prob
    choose_upper = tf.where(~lower_ok, True, tf.where(~upper_ok, False, prefer_upper))
    mask = tf.where(choose_upper, upper, lower)
    maskf = tf.cast(mask, tf.float64)[:, None]
    count = tf.maximum(tf.reduce_sum(maskf), 1.0)
    hb_center = tf.reduce_sum(keypoints * maskf, axis=0) / count
    big = tf.constant(1e12, tf.float64)
    lo = tf.reduce_min(tf.where(mask[:, None], keypoints, big), axis=0)
    hi = tf.reduce_max(tf.where(mask[:, None], keypoints, -big), axis=0)
    hb_scale = (hi - lo) * padding
    apply = apply & (tf.reduce_max(hb_scale) > 0)
    center = tf.where(apply, hb_center, center)
    scale = tf.where(apply, hb_scale, scale)
    half = tf.where(apply, tf.where(choose_upper, 1, 2), 0)
    return half, center, scale


def random_bbox_transform(
    seed,
    center,
    scale,
    shift_factor=0.16,
    shift_prob=0.3,
    scale_factor=(0.5, 1.5),
    scale_prob=1.0,
    rotate_factor=80.0,
    rotate_prob=0.6,
):
    """mmpose ``RandomBBoxTransform``: random shift, rescale and rotation.

    With ``v ~ truncnorm(-1, 1)`` (4 values): ``center += v[:2] *
    shift_factor * scale`` (prob ``shift_prob``), ``scale *= mu + v[2] *
    sigma`` for ``scale_factor = (mu - sigma, mu + sigma)`` (prob
    ``scale_prob``), ``rot = v[3] * rotate_factor`` degrees (prob
    ``rotate_prob``).

    Returns:
        ``(center, scale, rot)`` float64.
    """
    seeds = split_seed(seed, 2)
    v = tf.random.stateless_parameterized_truncated_normal(
        shape=[4], seed=seeds[0], means=0.0, stddevs=1.0, minvals=-1.0, maxvals=1.0
    )
    v = tf.cast(v, tf.float64)
    u = _uniform(seeds[1], [3])
    center = tf.cast(center, tf.float64)
    scale = tf.cast(scale, tf.float64)
    offset = tf.where(u[0] < shift_prob, v[:2] * shift_factor, tf.zeros([2], tf.float64))
    lo, hi = (float(s) for s in scale_factor)
    factor = tf.where(u[1] < scale_prob, v[2] * (hi - lo) * 0.5 + (hi + lo) * 0.5, 1.0)
    rot = tf.where(u[2] < rotate_prob, v[3] * rotate_factor, 0.0)
    return center + offset * scale, scale * factor, rot


_GRAY = (0.299, 0.587, 0.114)
# RGB <-> YIQ (NTSC); a hue shift is a rotation of the (I, Q) chroma plane.
_RGB_TO_YIQ = (
    (0.299, 0.587, 0.114),
    (0.595716, -0.274453, -0.321263),
    (0.211456, -0.522591, 0.311135),
)


def color_jitter(seed, image, prob=0.5, brightness=0.1, contrast=0.1, saturation=0.1, hue=0.02):
    """Random brightness, contrast, saturation and hue of an RGB crop.

    The four adjustments (each applied with probability ``prob``, in this
    order) are affine in RGB, so they are composed into one 3x3 matrix and
    offset and applied in a single pass (no HSV round trip):

    - brightness: ``x + d``, ``d`` uniform in ``[-b, b] * 255``;
    - contrast: ``m + f (x - m)``, ``m`` the mean grey level of the crop,
      ``f`` in ``[1 - c, 1 + c]`` (torchvision ``adjust_contrast``);
    - saturation: ``g + f (x - g)``, ``g`` the pixel's grey level
      (ITU-R 601 luma), ``f`` in ``[1 - s, 1 + s]`` (torchvision
      ``adjust_saturation``);
    - hue: rotation of the YIQ chroma plane by ``2 pi * h``, ``h`` in
      ``[-hue, hue]`` (the usual linear approximation of an HSV hue shift).

    Args:
        seed: ``(2,)`` stateless seed.
        image: ``(H, W, 3)`` float32 RGB in 0..255.

    Returns:
        float32 ``(H, W, 3)`` clipped to 0..255.
    """
    import math

    seeds = split_seed(seed, 2)
    u = tf.random.stateless_uniform([4], seed=seeds[0], dtype=tf.float32)
    r = tf.random.stateless_uniform([4], seed=seeds[1], minval=-1.0, maxval=1.0, dtype=tf.float32)
    on = tf.cast(u < prob, tf.float32) * tf.constant(
        [float(bool(brightness)), float(bool(contrast)), float(bool(saturation)), float(bool(hue))]
    )
    delta = on[0] * r[0] * (float(brightness) * 255.0)
    c = 1.0 + on[1] * r[1] * float(contrast)
    s = 1.0 + on[2] * r[2] * float(saturation)
    theta = on[3] * r[3] * float(hue) * 2.0 * math.pi
    gray = tf.constant(_GRAY, tf.float32)
    eye = tf.eye(3)
    ones_gray = tf.ones([3, 1]) * gray[None, :]  # row i = gray weights
    # Column-vector maps p -> A p + b, composed in order.
    yiq = tf.constant(_RGB_TO_YIQ, tf.float32)
    cos_t, sin_t = tf.cos(theta), tf.sin(theta)
    rot = tf.stack(
        [tf.constant([1.0, 0.0, 0.0]), tf.stack([0.0, cos_t, -sin_t]), tf.stack([0.0, sin_t, cos_t])]
    )
    hue_m = tf.linalg.inv(yiq) @ rot @ yiq
    sat_m = s * eye + (1.0 - s) * ones_gray
    # brightness then contrast: c (x + d - m) + m with m = mean grey of x + d.
    mean_gray = tf.reduce_sum(tf.reduce_mean(image, axis=[0, 1]) * gray) + delta
    a = hue_m @ sat_m * c
    b = tf.linalg.matvec(hue_m @ sat_m, tf.fill([3], (1.0 - c) * mean_gray + c * delta))
    out = tf.tensordot(image, tf.transpose(a), axes=1) + b
    return tf.clip_by_value(out, 0.0, 255.0)
