"""Top-down heatmap codecs: Gaussian target encoding and keypoint decoding.

A heatmap codec turns the keypoints of ``N`` crops, in model-input pixels,
into training targets (``encode`` with NumPy, ``encode_tf`` with TensorFlow
ops for ``tf.data``, both from one definition, `gaussian_heatmaps`) and model
heatmaps back into keypoints (``decode``, NumPy + OpenCV); see
`keras_pose.codecs.base` for the interface.

Coordinate frames (see CONTRIBUTING.md and ``keras_pose.geometry``):

- ``encode`` takes keypoints in the crop produced by the warp the model was
  trained with (``warp="udp"`` for ``UDPHeatmap``, ``"standard"`` for
  ``MSRAHeatmap`` in every released model; the cropper holds that setting)
  followed by ``transform_points``;
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

from keras_pose.codecs.array_ops import NUMPY_OPS
from keras_pose.codecs.array_ops import tensorflow_ops
from keras_pose.codecs.base import VISIBLE_THRESHOLD
from keras_pose.codecs.base import PoseCodec
from keras_pose.codecs.base import check_keypoints
from keras_pose.codecs.base import check_keypoints_tf
from keras_pose.codecs.base import register_codec
from keras_pose.codecs.base import unbatch_targets
from keras_pose.codecs.refinement import DARK_VARIANTS
from keras_pose.codecs.refinement import check_odd_kernel
from keras_pose.codecs.refinement import get_heatmap_maximum
from keras_pose.codecs.refinement import refine_keypoints
from keras_pose.codecs.refinement import refine_keypoints_dark
from keras_pose.codecs.refinement import refine_keypoints_dark_udp
from keras_pose.errors import CodecError
from keras_pose.geometry import as_size


def _check_sigma(sigma):
    sigma = float(sigma)
    if not sigma > 0:
        raise CodecError(f"`sigma` must be positive (heatmap pixels), got {sigma!r}.")
    return sigma


def gaussian_heatmaps(kp_hm, visible, heatmap_size, sigma, mode, xp=NUMPY_OPS):
    """Gaussian targets of ``N`` instances (the one definition for NumPy and TF).

    Args:
        kp_hm: ``(N, K, 2)`` float64 keypoints in heatmap pixels.
        visible: ``(N, K)`` float64 visibility.
        heatmap_size: ``(h, w)``.
        sigma: Gaussian sigma in heatmap px.
        mode: ``"msra"`` (integer-centred, windowed; mmpose
            ``generate_gaussian_heatmaps``), ``"udp"`` (sub-pixel centre,
            windowed; ``generate_udp_gaussian_heatmaps``) or ``"dark"``
            (sub-pixel centre, full map; ``generate_unbiased_gaussian_heatmaps``).
        xp: `keras_pose.codecs.array_ops.NUMPY_OPS` or `tensorflow_ops()`.

    Returns:
        ``(heatmaps (N, h, w, K) float32, weights (N, K) float32)``: peak 1;
        weight ``min(visible, 1)``, 0 for joints below the visibility
        threshold, non-finite or with their window outside the map.
    """
    h, w = heatmap_size
    radius = 3.0 * sigma
    x, y = kp_hm[..., 0], kp_hm[..., 1]
    if mode == "dark":
        left, top = x - radius, y - radius
        right, bottom = x + radius + 1, y + radius + 1
        cx, cy = x, y
    else:
        # Integer pixel of the keypoint and the (2r+1)-wide window around
        # it; int() truncation toward zero as in mmpose.
        mu_x, mu_y = xp.trunc(x + 0.5), xp.trunc(y + 0.5)
        left, top = xp.trunc(mu_x - radius), xp.trunc(mu_y - radius)
        right, bottom = xp.trunc(mu_x + radius + 1), xp.trunc(mu_y + radius + 1)
        half = float(np.floor(radius + 0.5))  # (2r + 1) // 2
        cx, cy = left + half, top + half
        if mode == "udp":
            cx, cy = cx + (x - mu_x), cy + (y - mu_y)
        extent = float(np.ceil(2 * radius + 1))  # length of the Gaussian patch
        right = xp.minimum(right, left + extent)
        bottom = xp.minimum(bottom, top + extent)
    labelled = visible >= VISIBLE_THRESHOLD
    inside = ~((left >= w) | (top >= h) | (right < 0) | (bottom < 0))
    keep = labelled & inside & xp.isfinite(x) & xp.isfinite(y)

    def per_map(value):  # (N, K) -> (N, 1, 1, K), broadcast over the map
        return value[:, None, None, :]

    gx = xp.arange(w)[None, None, :, None]
    gy = xp.arange(h)[None, :, None, None]
    g = xp.exp(-((gx - per_map(cx)) ** 2 + (gy - per_map(cy)) ** 2) / (2.0 * sigma**2))
    mask = per_map(keep)
    if mode != "dark":
        mask = (
            mask
            & (gx >= per_map(left))
            & (gx < per_map(right))
            & (gy >= per_map(top))
            & (gy < per_map(bottom))
        )
    heatmaps = xp.cast(xp.where(mask, g, xp.zeros_like(g)), xp.float32)
    weights = xp.cast(xp.where(keep, xp.clip(visible, 0.0, 1.0), xp.zeros_like(visible)), xp.float32)
    return heatmaps, weights


class HeatmapCodec(PoseCodec):
    """Base of the top-down heatmap codecs: sizes, argument checks, encode / decode plumbing.

    Subclasses implement `targets(kp, visible, xp)` (batched float64 input
    pixels -> dict of targets), `refine(locs, heatmaps)` and
    `heatmap_to_input(locs)` (or override `decode_heatmaps`).

    Args:
        input_size: model input ``(height, width)``.
        heatmap_size: heatmap ``(height, width)``.
    """

    target_keys = ("heatmaps", "keypoint_weights")

    def __init__(self, input_size, heatmap_size):
        self.input_size = as_size(input_size, "input_size", minimum=2, error=CodecError)
        self.heatmap_size = as_size(heatmap_size, "heatmap_size", minimum=2, error=CodecError)

    @property
    def heatmap_span(self):
        """``(w_span, h_span)``: heatmap px spanning the input width / height.

        ``decode`` maps a heatmap location ``x`` to input px ``x * W /
        w_span``: ``(w, h)`` for codecs on pixel edges (MSRA, CPN), ``(w - 1,
        h - 1)`` for UDP (pixel centres); `argmax_to_input` scales by it.
        """
        return (self.heatmap_size[1], self.heatmap_size[0])

    # --- encode ---------------------------------------------------------------
    def targets(self, kp, visible, xp):
        raise NotImplementedError

    def encode(self, keypoints, keypoints_visible=None):
        """Encode the keypoints of ``N`` crops.

        Args:
            keypoints: ``(N, K, 2)`` (or ``(K, 2)``) ``(x, y)`` in crop
                (model input) pixels.
            keypoints_visible: ``(N, K)`` (or ``(K,)``) visibility; joints
                below 0.5 get an empty map and weight 0 (a COCO ``v`` of 1 or
                2 counts as visible). Defaults to all visible.

        Returns:
            dict of float32 targets keyed by `target_keys`, e.g.
            ``"heatmaps"`` ``(N, h, w, K)`` and ``"keypoint_weights"``
            ``(N, K)`` (no ``N`` axis for unbatched input).
        """
        kp, vis, unbatched = check_keypoints(keypoints, keypoints_visible)
        return unbatch_targets(self.targets(kp, vis, NUMPY_OPS), unbatched)

    def encode_tf(self, keypoints, keypoints_visible=None):
        """TensorFlow version of `encode` (graph compatible, for tf.data).

        Args:
            keypoints: ``(N, K, 2)`` or ``(K, 2)`` tensor, input pixels
                (static rank).
            keypoints_visible: matching tensor or None.

        Returns:
            dict of float32 tensors equal to `encode` within 1e-6.
        """
        kp, vis, unbatched = check_keypoints_tf(keypoints, keypoints_visible)
        return unbatch_targets(self.targets(kp, vis, tensorflow_ops()), unbatched)

    # --- decode ---------------------------------------------------------------
    def check_heatmaps(self, outputs):
        """``(N, h, w, K)`` float32 heatmaps from an array or an outputs dict, and whether unbatched."""
        heatmaps = outputs["heatmaps"] if isinstance(outputs, dict) else outputs
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

    def refine(self, locs, heatmaps):
        raise NotImplementedError

    def heatmap_to_input(self, locs):
        raise NotImplementedError

    def argmax_to_input(self):
        """``(scale, offset)``: the map from an argmax heatmap pixel to input px.

        Input px ``u = (x + offset) * scale`` per axis, ``(x, y)`` order,
        float64: the scaling `decode` applies after its sub-pixel
        refinement. Default ``scale = (W / w_span, H / h_span)``
        (`heatmap_span`), offset 0. The in-graph decode of exported models
        (`keras_pose.export.in_graph_decode`) applies this same map in
        TensorFlow ops.
        """
        (ih, iw), (dx, dy) = self.input_size, self.heatmap_span
        return (iw / dx, ih / dy), (0.0, 0.0)

    def decode_argmax(self, outputs):
        """`decode` without the sub-pixel refinement: the argmax mapped by `argmax_to_input`.

        Args:
            outputs: ``(N, h, w, K)`` / ``(h, w, K)`` heatmaps or a dict
                holding them under ``"heatmaps"``.

        Returns:
            ``(keypoints, scores)``: float32 ``(N, K, 2)`` box-frame input
            px of the first maximum (row-major) of each map, and float32
            ``(N, K)`` maxima; a map whose maximum is ``<= 0`` starts from
            heatmap location ``(-1, -1)`` (`get_heatmap_maximum`).
        """
        hm, unbatched = self.check_heatmaps(outputs)
        locs, scores = get_heatmap_maximum(hm)
        scale, offset = self.argmax_to_input()
        keypoints = ((locs.astype(np.float64) + np.array(offset)) * np.array(scale)).astype(np.float32)
        if unbatched:
            return keypoints[0], scores[0]
        return keypoints, scores

    def decode_heatmaps(self, heatmaps):
        """``(N, h, w, K)`` float32 heatmaps -> ``(keypoints (N, K, 2), scores (N, K))``."""
        locs, scores = get_heatmap_maximum(heatmaps)
        locs = self.refine(locs, heatmaps)
        return self.heatmap_to_input(locs).astype(np.float32), scores

    def decode(self, outputs):
        """Decode heatmaps to keypoints.

        Args:
            outputs: ``(N, h, w, K)`` or ``(h, w, K)`` model heatmaps, or a
                dict holding them under ``"heatmaps"``.

        Returns:
            ``(keypoints, scores)``: float32 ``(N, K, 2)`` box-frame input
            pixels and float32 ``(N, K)`` heatmap maxima (raw, before any
            blur); ``(K, 2)`` / ``(K,)`` for unbatched input. Keypoints whose
            maximum is ``<= 0`` start from heatmap location ``(-1, -1)`` as in
            mmpose; treat them as missing (their score says so).
        """
        hm, unbatched = self.check_heatmaps(outputs)
        keypoints, scores = self.decode_heatmaps(hm)
        if unbatched:
            return keypoints[0], scores[0]
        return keypoints, scores

    def get_config(self):
        return {"input_size": list(self.input_size), "heatmap_size": list(self.heatmap_size)}


class GaussianHeatmapCodec(HeatmapCodec):
    """Gaussian targets (peak 1) with an argmax + refinement decoder.

    Args:
        input_size, heatmap_size: see `HeatmapCodec`.
        sigma: Gaussian sigma in heatmap pixels.
        blur_kernel_size: odd kernel of the DARK blur (11 for sigma 2).
    """

    encode_mode = None

    def __init__(self, input_size, heatmap_size, sigma=2.0, blur_kernel_size=11):
        super().__init__(input_size, heatmap_size)
        self.sigma = _check_sigma(sigma)
        self.blur_kernel_size = check_odd_kernel(blur_kernel_size, hint="11 for sigma 2, 17 for sigma 3")

    def input_to_heatmap(self):
        """Factor ``(fx, fy)``: heatmap px = input px * factor (float64)."""
        raise NotImplementedError

    def targets(self, kp, visible, xp):
        factor = np.asarray(self.input_to_heatmap(), dtype=np.float64)
        heatmaps, weights = gaussian_heatmaps(kp * factor, visible, self.heatmap_size, self.sigma, self.encode_mode, xp)
        return {"heatmaps": heatmaps, "keypoint_weights": weights}

    def get_config(self):
        config = super().get_config()
        config.update({"sigma": self.sigma, "blur_kernel_size": self.blur_kernel_size})
        return config


@register_codec("MSRAHeatmap")
class MSRAHeatmap(GaussianHeatmapCodec):
    """mmpose 1.x ``MSRAHeatmap`` (SimpleBaseline / HRNet targets).

    Encoding: heatmap px = input px * heatmap / input. ``unbiased=False``
    puts a Gaussian (peak 1, radius 3 sigma window) on the *rounded* heatmap
    pixel (mmpose ``generate_gaussian_heatmaps``); ``unbiased=True`` puts an
    unwindowed Gaussian on the exact sub-pixel position (DARK encoding,
    ``generate_unbiased_gaussian_heatmaps``).

    Decoding: argmax, then ``unbiased=True``: DARK Newton refinement
    (``refine_keypoints_dark``, blur kernel ``blur_kernel_size``) or
    ``unbiased=False``: the quarter-pixel shift (``refine_keypoints``); then
    input px = heatmap px * input / heatmap. Trained on standard-warp crops.

    Args:
        input_size: model input ``(height, width)``.
        heatmap_size: heatmap ``(height, width)``.
        sigma: Gaussian sigma in heatmap pixels.
        unbiased: DARK encoding + decoding.
        blur_kernel_size: odd kernel of the DARK blur (11 for sigma 2).
    """

    def __init__(self, input_size, heatmap_size, sigma=2.0, unbiased=False, blur_kernel_size=11):
        super().__init__(input_size, heatmap_size, sigma, blur_kernel_size)
        self.unbiased = bool(unbiased)
        self.encode_mode = "dark" if self.unbiased else "msra"

    def input_to_heatmap(self):
        (ih, iw), (hh, hw) = self.input_size, self.heatmap_size
        return (hw / iw, hh / ih)

    def refine(self, locs, heatmaps):
        if self.unbiased:
            return refine_keypoints_dark(locs, heatmaps, self.blur_kernel_size)
        return refine_keypoints(locs, heatmaps)

    def heatmap_to_input(self, locs):
        (ih, iw), (hh, hw) = self.input_size, self.heatmap_size
        factor = np.array([iw / hw, ih / hh], dtype=np.float32)  # mmpose: float32
        return locs * factor

    def get_config(self):
        config = super().get_config()
        config["unbiased"] = self.unbiased
        return config


@register_codec("UDPHeatmap")
class UDPHeatmap(GaussianHeatmapCodec):
    """mmpose 1.x ``UDPHeatmap`` with ``heatmap_type='gaussian'``.

    Encoding: heatmap px = input px * (heatmap - 1) / (input - 1); a
    Gaussian centred on the exact sub-pixel position inside the radius
    3 sigma window around the rounded pixel (``generate_udp_gaussian_heatmaps``).

    Decoding: argmax, DARK-UDP Newton step (``refine_keypoints_dark_udp``),
    then ``u = x_hm / (w - 1) * W`` (box frame). Trained on UDP-warp crops
    (``TopDownCropper(warp="udp")``).

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

    encode_mode = "udp"

    def __init__(self, input_size, heatmap_size, sigma=2.0, blur_kernel_size=11, dark_variant="mmpose"):
        super().__init__(input_size, heatmap_size, sigma, blur_kernel_size)
        if dark_variant not in DARK_VARIANTS:
            raise CodecError(
                f"`dark_variant` must be one of {DARK_VARIANTS}, got {dark_variant!r}: "
                "'mmpose' reproduces mmpose 1.x decoding, 'hf' HF transformers ViTPose."
            )
        self.dark_variant = dark_variant

    @property
    def heatmap_span(self):
        (hh, hw) = self.heatmap_size
        return (hw - 1, hh - 1)

    def input_to_heatmap(self):
        (ih, iw), (hh, hw) = self.input_size, self.heatmap_size
        return ((hw - 1) / (iw - 1), (hh - 1) / (ih - 1))

    def refine(self, locs, heatmaps):
        return refine_keypoints_dark_udp(locs, heatmaps, self.blur_kernel_size, variant=self.dark_variant)

    def heatmap_to_input(self, locs):
        (ih, iw), (hh, hw) = self.input_size, self.heatmap_size
        return locs.astype(np.float64) / np.array([hw - 1, hh - 1]) * np.array([iw, ih])

    def get_config(self):
        config = super().get_config()
        config["dark_variant"] = self.dark_variant
        return config
