"""Top-down heatmap codecs: Gaussian target encoding and keypoint decoding.

A codec turns keypoints in model-input pixels into training targets
(``encode`` with NumPy, ``encode_tf`` with TensorFlow ops for ``tf.data``)
and model heatmaps back into keypoints (``decode``, NumPy + OpenCV).

Coordinate frames (see CONTRIBUTING.md and ``keras_pose.geometry``):

- ``encode`` takes keypoints in the crop produced by the *matching* warp,
  ``get_warp_matrix(..., udp=codec.udp)`` followed by ``transform_points``;
- ``decode`` returns keypoints in the *box frame* (``u`` in 0..W maps to
  ``x = cx - sw / 2 + u * sw / W``) for both codecs; map them to the image
  with ``keras_pose.geometry.crop_to_image``.

For ``MSRAHeatmap`` the two frames coincide. For ``UDPHeatmap`` the crop
frame has the box edges at pixel centres 0 and W - 1, so ``decode`` of an
``encode`` returns ``u = p * W / (W - 1)``; this is mmpose 1.x behaviour and
is what ``crop_to_image`` expects.

Heatmaps are channels-last: ``(h, w, K)`` per sample, ``(N, h, w, K)``
batched. ``input_size`` and ``heatmap_size`` are ``(height, width)``.
"""

import numpy as np

from keras_pose.codecs.refinement import DARK_VARIANTS
from keras_pose.codecs.refinement import CodecError
from keras_pose.codecs.refinement import get_heatmap_maximum
from keras_pose.codecs.refinement import refine_keypoints
from keras_pose.codecs.refinement import refine_keypoints_dark
from keras_pose.codecs.refinement import refine_keypoints_dark_udp

_VISIBLE_THRESHOLD = 0.5


def _as_size(size, name):
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise CodecError(
            f"`{name}` must be a (height, width) pair of positive integers, got "
            f"{size!r}; e.g. input_size=(256, 192), heatmap_size=(64, 48)."
        ) from None
    if h <= 1 or w <= 1:
        raise CodecError(f"`{name}` must be at least (2, 2), got {size!r}.")
    return (h, w)


def _check_kernel(kernel):
    if int(kernel) != kernel or kernel < 1 or kernel % 2 != 1:
        raise CodecError(
            f"`blur_kernel_size` must be a positive odd integer, got {kernel!r} "
            "(11 for sigma 2, 17 for sigma 3)."
        )
    return int(kernel)


def _check_sigma(sigma):
    sigma = float(sigma)
    if not sigma > 0:
        raise CodecError(f"`sigma` must be positive (heatmap pixels), got {sigma!r}.")
    return sigma


def _gaussian_numpy(kp_hm, visible, heatmap_size, sigma, mode):
    """Shared NumPy encoder.

    Args:
        kp_hm: ``(K, 2)`` float64 keypoints in heatmap pixels.
        visible: ``(K,)`` float64 visibility.
        heatmap_size: ``(h, w)``.
        sigma: Gaussian sigma in heatmap px.
        mode: ``"msra"`` (integer-centred, windowed), ``"udp"`` (sub-pixel
            centre, windowed) or ``"dark"`` (sub-pixel centre, full map).

    Returns:
        ``(heatmaps (h, w, K) float32, weights (K,) float32)``.
    """
    h, w = heatmap_size
    radius = 3.0 * sigma
    x, y = kp_hm[:, 0], kp_hm[:, 1]
    if mode == "dark":
        left, top = x - radius, y - radius
        right, bottom = x + radius + 1, y + radius + 1
        cx, cy = x, y
    else:
        # Integer pixel of the keypoint and the (2r+1)-wide window around
        # it; int() truncation toward zero as in mmpose.
        mu_x, mu_y = np.trunc(x + 0.5), np.trunc(y + 0.5)
        left, top = np.trunc(mu_x - radius), np.trunc(mu_y - radius)
        right, bottom = np.trunc(mu_x + radius + 1), np.trunc(mu_y + radius + 1)
        half = np.floor(radius + 0.5)  # (2r + 1) // 2
        cx, cy = left + half, top + half
        if mode == "udp":
            cx, cy = cx + (x - mu_x), cy + (y - mu_y)
        extent = np.ceil(2 * radius + 1)  # length of the Gaussian patch
        right = np.minimum(right, left + extent)
        bottom = np.minimum(bottom, top + extent)
    labelled = visible >= _VISIBLE_THRESHOLD
    inside = ~((left >= w) | (top >= h) | (right < 0) | (bottom < 0))
    keep = labelled & inside & np.isfinite(x) & np.isfinite(y)

    gx = np.arange(w, dtype=np.float64)[None, :, None]
    gy = np.arange(h, dtype=np.float64)[:, None, None]
    d2 = (gx - cx[None, None, :]) ** 2 + (gy - cy[None, None, :]) ** 2
    g = np.exp(-d2 / (2.0 * sigma**2))
    mask = keep[None, None, :]
    if mode != "dark":
        mask = (
            mask
            & (gx >= left[None, None, :])
            & (gx < right[None, None, :])
            & (gy >= top[None, None, :])
            & (gy < bottom[None, None, :])
        )
    heatmaps = np.where(mask, g, 0.0).astype(np.float32)
    weights = np.where(keep, np.clip(visible, 0.0, 1.0), 0.0).astype(np.float32)
    return heatmaps, weights


def _gaussian_tf(kp_hm, visible, heatmap_size, sigma, mode):
    """TensorFlow twin of :func:`_gaussian_numpy` (float64 math)."""
    import tensorflow as tf

    h, w = heatmap_size
    radius = 3.0 * sigma
    x, y = kp_hm[:, 0], kp_hm[:, 1]
    if mode == "dark":
        left, top = x - radius, y - radius
        right, bottom = x + radius + 1, y + radius + 1
        cx, cy = x, y
    else:
        def trunc(v):  # toward zero, like int() / np.trunc
            return tf.sign(v) * tf.floor(tf.abs(v))

        mu_x, mu_y = trunc(x + 0.5), trunc(y + 0.5)
        left, top = trunc(mu_x - radius), trunc(mu_y - radius)
        right, bottom = trunc(mu_x + radius + 1), trunc(mu_y + radius + 1)
        half = float(np.floor(radius + 0.5))
        cx, cy = left + half, top + half
        if mode == "udp":
            cx, cy = cx + (x - mu_x), cy + (y - mu_y)
        extent = float(np.ceil(2 * radius + 1))
        right = tf.minimum(right, left + extent)
        bottom = tf.minimum(bottom, top + extent)
    labelled = visible >= _VISIBLE_THRESHOLD
    outside = (left >= w) | (top >= h) | (right < 0) | (bottom < 0)
    finite = tf.math.is_finite(x) & tf.math.is_finite(y)
    keep = labelled & tf.logical_not(outside) & finite

    gx = tf.range(w, dtype=tf.float64)[None, :, None]
    gy = tf.range(h, dtype=tf.float64)[:, None, None]
    d2 = tf.square(gx - cx[None, None, :]) + tf.square(gy - cy[None, None, :])
    g = tf.exp(-d2 / (2.0 * sigma**2))
    mask = keep[None, None, :]
    if mode != "dark":
        mask = (
            mask
            & (gx >= left[None, None, :])
            & (gx < right[None, None, :])
            & (gy >= top[None, None, :])
            & (gy < bottom[None, None, :])
        )
    heatmaps = tf.cast(tf.where(mask, g, tf.zeros_like(g)), tf.float32)
    weights = tf.where(keep, tf.clip_by_value(visible, 0.0, 1.0), tf.zeros_like(visible))
    return heatmaps, tf.cast(weights, tf.float32)


class _HeatmapCodec:
    """Shared plumbing of the Gaussian heatmap codecs."""

    udp = False

    def __init__(self, input_size, heatmap_size, sigma=2.0, blur_kernel_size=11):
        self.input_size = _as_size(input_size, "input_size")
        self.heatmap_size = _as_size(heatmap_size, "heatmap_size")
        self.sigma = _check_sigma(sigma)
        self.blur_kernel_size = _check_kernel(blur_kernel_size)

    # --- coordinate scaling (subclasses define the factor) -----------------
    def _input_to_heatmap(self):
        """Factor ``(fx, fy)``: heatmap px = input px * factor (float64)."""
        raise NotImplementedError

    def _encode_mode(self):
        raise NotImplementedError

    # --- encode ---------------------------------------------------------------
    def _check_encode_args(self, keypoints, keypoints_visible):
        kp = np.asarray(keypoints, dtype=np.float64)
        if kp.ndim != 2 or kp.shape[-1] != 2:
            raise CodecError(
                f"`keypoints` must be (K, 2) (x, y) input pixels of one person, got "
                f"shape {kp.shape}. Encode one instance at a time."
            )
        if keypoints_visible is None:
            vis = np.ones(kp.shape[0], dtype=np.float64)
        else:
            vis = np.asarray(keypoints_visible, dtype=np.float64)
            if vis.shape == (kp.shape[0], 1):
                vis = vis[:, 0]
            if vis.shape != (kp.shape[0],):
                raise CodecError(
                    f"`keypoints_visible` must be ({kp.shape[0]},) to match keypoints "
                    f"{kp.shape}, got {vis.shape}."
                )
        return kp, vis

    def encode(self, keypoints, keypoints_visible=None):
        """Encode one person's keypoints as Gaussian heatmaps.

        Args:
            keypoints: ``(K, 2)`` ``(x, y)`` in crop (model input) pixels, as
                produced by the warp matching ``self.udp``.
            keypoints_visible: ``(K,)`` visibility; joints with a value below
                0.5 get an empty heatmap and weight 0 (a COCO ``v`` of 1 or 2
                counts as visible). Defaults to all visible.

        Returns:
            ``(heatmaps, keypoint_weights)``: float32 ``(h, w, K)`` maps with
            peak value 1, and float32 ``(K,)`` weights: ``min(visible, 1)``,
            or 0 for unlabelled joints and joints whose Gaussian window lies
            entirely outside the heatmap.
        """
        kp, vis = self._check_encode_args(keypoints, keypoints_visible)
        kp_hm = kp * np.asarray(self._input_to_heatmap(), dtype=np.float64)
        return _gaussian_numpy(kp_hm, vis, self.heatmap_size, self.sigma, self._encode_mode())

    def encode_tf(self, keypoints, keypoints_visible=None):
        """TensorFlow version of :meth:`encode` (graph compatible, for tf.data).

        Args:
            keypoints: ``(K, 2)`` tensor, input pixels.
            keypoints_visible: ``(K,)`` tensor or None.

        Returns:
            ``(heatmaps (h, w, K) float32, keypoint_weights (K,) float32)``
            tensors, equal to :meth:`encode` within 1e-6.
        """
        import tensorflow as tf

        kp = tf.cast(tf.convert_to_tensor(keypoints), tf.float64)
        kp = tf.reshape(kp, [-1, 2])
        if keypoints_visible is None:
            vis = tf.ones(tf.shape(kp)[:1], dtype=tf.float64)
        else:
            vis = tf.reshape(tf.cast(tf.convert_to_tensor(keypoints_visible), tf.float64), [-1])
        factor = tf.constant(self._input_to_heatmap(), dtype=tf.float64)
        return _gaussian_tf(kp * factor, vis, self.heatmap_size, self.sigma, self._encode_mode())

    # --- decode ---------------------------------------------------------------
    def _check_decode_args(self, heatmaps):
        hm = np.asarray(heatmaps, dtype=np.float32)
        unbatched = hm.ndim == 3
        if unbatched:
            hm = hm[None]
        if hm.ndim != 4:
            raise CodecError(
                f"`heatmaps` must be (N, h, w, K) or (h, w, K) channels-last, got shape "
                f"{np.shape(heatmaps)}. Transpose NCHW arrays with .transpose(0, 2, 3, 1)."
            )
        if tuple(hm.shape[1:3]) != self.heatmap_size:
            raise CodecError(
                f"heatmaps are {tuple(hm.shape[1:3])} (h, w) but this codec has "
                f"heatmap_size={self.heatmap_size}; build the codec with the model's "
                "output size or pass channels-last (N, h, w, K) arrays."
            )
        return hm, unbatched

    def _refine(self, locs, heatmaps):
        raise NotImplementedError

    def _heatmap_to_input(self, locs):
        raise NotImplementedError

    def decode(self, heatmaps):
        """Decode heatmaps to keypoints.

        Args:
            heatmaps: ``(N, h, w, K)`` or ``(h, w, K)`` model heatmaps.

        Returns:
            ``(keypoints, scores)``: float32 ``(N, K, 2)`` box-frame input
            pixels and float32 ``(N, K)`` heatmap maxima (raw, before any
            blur); ``(K, 2)`` / ``(K,)`` for unbatched input. Keypoints whose
            maximum is ``<= 0`` start from heatmap location ``(-1, -1)`` as in
            mmpose; treat them as missing (their score says so).
        """
        hm, unbatched = self._check_decode_args(heatmaps)
        locs, scores = get_heatmap_maximum(hm)
        locs = self._refine(locs, hm)
        keypoints = self._heatmap_to_input(locs).astype(np.float32)
        if unbatched:
            return keypoints[0], scores[0]
        return keypoints, scores

    # --- config ---------------------------------------------------------------
    def get_config(self):
        return {
            "input_size": list(self.input_size),
            "heatmap_size": list(self.heatmap_size),
            "sigma": self.sigma,
            "blur_kernel_size": self.blur_kernel_size,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        type_name = config.pop("type", cls.__name__)
        if type_name != cls.__name__:
            raise CodecError(
                f"config is for codec type {type_name!r}, not {cls.__name__}; "
                "use keras_pose.codecs.get_codec(config)."
            )
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(self)))


class MSRAHeatmap(_HeatmapCodec):
    """mmpose 1.x ``MSRAHeatmap`` (SimpleBaseline / HRNet targets).

    Encoding: heatmap px = input px * heatmap / input. ``unbiased=False``
    puts a Gaussian (peak 1, radius 3 sigma window) on the *rounded* heatmap
    pixel (mmpose ``generate_gaussian_heatmaps``); ``unbiased=True`` puts an
    unwindowed Gaussian on the exact sub-pixel position (DARK encoding,
    ``generate_unbiased_gaussian_heatmaps``).

    Decoding: argmax, then ``unbiased=True``: DARK Newton refinement
    (``refine_keypoints_dark``, blur kernel ``blur_kernel_size``) or
    ``unbiased=False``: the quarter-pixel shift (``refine_keypoints``); then
    input px = heatmap px * input / heatmap. Pairs with the standard warp
    (``udp = False``).

    Args:
        input_size: model input ``(height, width)``.
        heatmap_size: heatmap ``(height, width)``.
        sigma: Gaussian sigma in heatmap pixels.
        unbiased: DARK encoding + decoding.
        blur_kernel_size: odd kernel of the DARK blur (11 for sigma 2).
    """

    udp = False

    def __init__(self, input_size, heatmap_size, sigma=2.0, unbiased=False, blur_kernel_size=11):
        super().__init__(input_size, heatmap_size, sigma, blur_kernel_size)
        self.unbiased = bool(unbiased)

    def _input_to_heatmap(self):
        (ih, iw), (hh, hw) = self.input_size, self.heatmap_size
        return (hw / iw, hh / ih)

    def _encode_mode(self):
        return "dark" if self.unbiased else "msra"

    def _refine(self, locs, heatmaps):
        if self.unbiased:
            return refine_keypoints_dark(locs, heatmaps, self.blur_kernel_size)
        return refine_keypoints(locs, heatmaps)

    def _heatmap_to_input(self, locs):
        (ih, iw), (hh, hw) = self.input_size, self.heatmap_size
        factor = np.array([iw / hw, ih / hh], dtype=np.float32)  # mmpose: float32
        return locs * factor

    def get_config(self):
        config = super().get_config()
        config["unbiased"] = self.unbiased
        return config


class UDPHeatmap(_HeatmapCodec):
    """mmpose 1.x ``UDPHeatmap`` with ``heatmap_type='gaussian'``.

    Encoding: heatmap px = input px * (heatmap - 1) / (input - 1); a
    Gaussian centred on the exact sub-pixel position inside the radius
    3 sigma window around the rounded pixel (``generate_udp_gaussian_heatmaps``).

    Decoding: argmax, DARK-UDP Newton step (``refine_keypoints_dark_udp``),
    then ``u = x_hm / (w - 1) * W`` (box frame). Pairs with the UDP warp
    (``udp = True``).

    Args:
        input_size: model input ``(height, width)``.
        heatmap_size: heatmap ``(height, width)``.
        sigma: Gaussian sigma in heatmap pixels.
        blur_kernel_size: odd kernel of the DARK blur.
        dark_variant: ``"mmpose"`` (mmpose 1.x: zero-padded
            ``cv2.GaussianBlur(k, k, 0)`` rescaled to the original maximum)
            or ``"hf"`` (HF ``VitPoseImageProcessor.post_process_pose_estimation``:
            ``gaussian_filter(sigma=0.8, radius=(k-1)//2, mode='reflect')``,
            no rescaling). Only decoding differs.
    """

    udp = True

    def __init__(self, input_size, heatmap_size, sigma=2.0, blur_kernel_size=11, dark_variant="mmpose"):
        super().__init__(input_size, heatmap_size, sigma, blur_kernel_size)
        if dark_variant not in DARK_VARIANTS:
            raise CodecError(
                f"`dark_variant` must be one of {DARK_VARIANTS}, got {dark_variant!r}: "
                "'mmpose' reproduces mmpose 1.x decoding, 'hf' HF transformers ViTPose."
            )
        self.dark_variant = dark_variant

    def _input_to_heatmap(self):
        (ih, iw), (hh, hw) = self.input_size, self.heatmap_size
        return ((hw - 1) / (iw - 1), (hh - 1) / (ih - 1))

    def _encode_mode(self):
        return "udp"

    def _refine(self, locs, heatmaps):
        return refine_keypoints_dark_udp(
            locs, heatmaps, self.blur_kernel_size, variant=self.dark_variant
        )

    def _heatmap_to_input(self, locs):
        (ih, iw), (hh, hw) = self.input_size, self.heatmap_size
        return locs.astype(np.float64) / np.array([hw - 1, hh - 1]) * np.array([iw, ih])

    def get_config(self):
        config = super().get_config()
        config["dark_variant"] = self.dark_variant
        return config


CODECS = {"MSRAHeatmap": MSRAHeatmap, "UDPHeatmap": UDPHeatmap}


def serialize_codec(codec):
    """``{"type": <class name>, **codec.get_config()}``, the form ``get_codec`` reads."""
    return {"type": type(codec).__name__, **codec.get_config()}


def get_codec(config_or_instance):
    """Build a codec.

    Args:
        config_or_instance: a codec instance (returned as is), or a dict
            ``{"type": "MSRAHeatmap" | "UDPHeatmap", **constructor kwargs}``
            (the output of :func:`serialize_codec`).

    Returns:
        the codec.
    """
    if isinstance(config_or_instance, _HeatmapCodec):
        return config_or_instance
    if not isinstance(config_or_instance, dict):
        raise CodecError(
            "get_codec expects a codec instance or a dict like "
            "{'type': 'UDPHeatmap', 'input_size': (256, 192), 'heatmap_size': (64, 48)}, "
            f"got {type(config_or_instance).__name__}."
        )
    config = dict(config_or_instance)
    type_name = config.pop("type", None)
    if type_name not in CODECS:
        raise CodecError(
            f"unknown codec type {type_name!r}; the config needs 'type' set to one of "
            f"{sorted(CODECS)}."
        )
    try:
        return CODECS[type_name](**config)
    except TypeError as e:
        raise CodecError(f"bad arguments for {type_name}: {e}. Config: {config_or_instance!r}") from None
