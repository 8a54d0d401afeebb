"""pytorch-cpn heatmap codec: blurred-delta targets and CPN's test-time decoding.

``CPNHeatmap`` reproduces GengDavid/pytorch-cpn (the checkpoints of the CPN
presets):

Encoding (``dataloader/mscocoMulti.py`` + ``utils/imutils.py``
``generate_heatmap``): a keypoint at input pixel ``p`` becomes a single 1 at
heatmap pixel ``floor(p / stride)`` (``points //= 4``), the map is blurred
with ``cv2.GaussianBlur(map, (k, k), 0)`` (OpenCV's default
``BORDER_REFLECT_101``) and scaled to a peak of 255. GlobalNet level ``l`` is
trained on kernel ``kernel_sizes[l]`` (coarsest level first: 15, 11, 9, 7 at
256x192; 23, 17, 13, 9 at 384x288), RefineNet on the last (smallest) kernel.

Decoding (``256.192.model/test.py``, identical in ``384.288.model``), per
keypoint map: divide by its maximum (float32), zero-pad by ``blur_border``
px, blur with ``cv2.GaussianBlur((21, 21), 0)`` (sigma 3.5), take the argmax,
set it to 0 and take the argmax again (the second maximum); move
``shift`` = 0.25 heatmap px along the unit vector toward the second maximum,
subtract the padding, clip to ``[0, w - 1] x [0, h - 1]``, and map heatmap px
``x`` to input px ``(x + 0.5) * stride`` (CPN's ``4 x + 2``). Keypoint score:
``heatmap / 255 + 0.5`` of the *unnormalised* map at the rounded location.

Coordinate frames (CONTRIBUTING.md): ``encode`` takes keypoints in the
standard-warp crop (``TopDownCropper(warp="standard")``); ``decode`` returns box-frame input pixels
(``u`` in 0..W maps to ``x = cx - sw / 2 + u * sw / W``), which is exactly
CPN's ``(4 x + 2) / W * (x2 - x1) + x1`` for a crop box ``[x1, x2]``; map them
to the image with ``keras_pose.geometry.crop_to_image``.

Gaussian kernels are OpenCV 3.x / 4.x ``getGaussianKernel(k, 0)`` (the
versions pytorch-cpn ran with): the fixed table for ``k <= 7`` (k = 7:
``[1, 3.5, 7, 9, 7, 3.5, 1] / 32``), otherwise a sampled Gaussian with
``sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8`` (k = 9: 1.7, 11: 2.0, 15: 2.6,
21: 3.5, 23: 3.8), equal to OpenCV's within 1e-16. They are computed here,
not taken from the installed OpenCV: OpenCV 5 also tabulates k = 9.

Heatmaps are channels-last: ``(h, w, K)`` per sample, ``(N, h, w, K)``
batched. ``input_size`` and ``heatmap_size`` are ``(height, width)``.
"""

import cv2
import numpy as np

from keras_pose.codecs.array_ops import NUMPY_OPS
from keras_pose.codecs.base import VISIBLE_THRESHOLD
from keras_pose.codecs.base import register_codec
from keras_pose.codecs.heatmap_codecs import HeatmapCodec
from keras_pose.codecs.refinement import check_odd_kernel
from keras_pose.errors import CodecError

# OpenCV 3.x / 4.x small_gaussian_tab (getGaussianKernel with sigma <= 0).
_OPENCV_SMALL_KERNELS = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
    7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
}
_KERNEL_HINT = (
    "pytorch-cpn uses kernel sizes (15, 11, 9, 7) at 256x192, (23, 17, 13, 9) at 384x288 and a 21 px "
    "decoding blur"
)


def opencv_gaussian_kernel(ksize):
    """OpenCV 3.x / 4.x ``cv2.getGaussianKernel(ksize, 0, cv2.CV_64F)``.

    Args:
        ksize: positive odd kernel size.

    Returns:
        float64 ``(ksize,)`` normalised kernel: OpenCV's fixed table for
        ``ksize <= 7``, else ``exp(-x^2 / (2 sigma^2))`` with ``sigma = 0.3 *
        ((ksize - 1) / 2 - 1) + 0.8``, normalised to sum 1.
    """
    ksize = check_odd_kernel(ksize, "kernel size", _KERNEL_HINT)
    if ksize in _OPENCV_SMALL_KERNELS:
        k = np.asarray(_OPENCV_SMALL_KERNELS[ksize], dtype=np.float32).astype(np.float64)
    else:
        sigma = ((ksize - 1) * 0.5 - 1) * 0.3 + 0.8
        x = np.arange(ksize, dtype=np.float64) - (ksize - 1) * 0.5
        k = np.exp(-0.5 / (sigma * sigma) * x * x)
    return k * (1.0 / k.sum())


def _reflect101_delta_1d(index, length, kernel, xp=NUMPY_OPS):
    """1-D ``BORDER_REFLECT_101`` convolution of unit impulses with ``kernel``.

    Args:
        index: ``(N, K)`` impulse positions (float64 holding integers; any
            value, masked by the caller when outside ``0..length-1``).
        length: signal length (> kernel radius).
        kernel: float64 ``(2r + 1,)`` kernel (symmetric).
        xp: `NUMPY_OPS` or `tensorflow_ops()`.

    Returns:
        float64 ``(length, N, K)``: ``out[i] = g(i - c) + [c > 0] g(i + c) +
        [c < L - 1] g(2 (L - 1) - c - i)`` with ``g(d) = kernel[d + r]`` for
        ``|d| <= r``, else 0; the three terms are the impulse and its two
        single reflections (enough because ``r < length``).
    """
    r = (len(kernel) - 1) // 2
    padded = np.concatenate([np.zeros(1), np.asarray(kernel, np.float64), np.zeros(1)])

    def g(d):  # d -> kernel value; |d| > r -> 0 via the zero guards at both ends
        return xp.gather(padded, xp.clip(d + (r + 1), 0.0, float(2 * r + 2)))

    i = xp.arange(length)[:, None, None]
    c = index[None]
    zero = xp.zeros_like(i + c)
    left = xp.where(c > 0, g(i + c), zero)
    right = xp.where(c < length - 1, g(2.0 * (length - 1) - c - i), zero)
    return g(i - c) + left + right


@register_codec("CPNHeatmap")
class CPNHeatmap(HeatmapCodec):
    """pytorch-cpn targets (blurred single pixel, peak 255) and test-time decoding.

    Targets (`encode`): ``"heatmaps"`` (the RefineNet target, the last of
    ``kernel_sizes``), ``"keypoint_weights"`` and ``"heatmaps_levels"``, a
    tuple with one target per GlobalNet level (``kernel_sizes`` order), which
    `keras_pose.losses.CPNLoss` trains the levels on.

    Args:
        input_size: model input ``(height, width)``.
        heatmap_size: heatmap ``(height, width)``; ``input / heatmap`` is the
            stride (4 in pytorch-cpn).
        kernel_sizes: odd ``cv2.GaussianBlur`` kernel of each GlobalNet
            level's target, coarsest level first (the order of the CPN
            model's ``global_0`` .. ``global_3`` and of ``CPNLoss``'s
            ``heatmaps_levels``); RefineNet (``"heatmaps"``) uses the last.
            pytorch-cpn: ``(15, 11, 9, 7)`` at 256x192 (``config.py`` gk15 ..
            gk7), ``(23, 17, 13, 9)`` at 384x288.
        target_peak: value of each target's maximum (255).
        blur_kernel_size: odd kernel of the decoding blur (21, sigma 3.5).
        blur_border: zero padding (heatmap px) around each normalised map
            before the decoding blur (10).
        shift: length of the step toward the second maximum, heatmap px
            (0.25).
        score_offset: keypoint score ``= heatmap / target_peak +
            score_offset`` (0.5).

    Trained on standard-warp crops. ``sigma`` (read-only) is the OpenCV
    sigma of the RefineNet kernel, for reference only.
    """

    target_keys = ("heatmaps", "keypoint_weights", "heatmaps_levels")

    def __init__(
        self,
        input_size,
        heatmap_size,
        kernel_sizes=(15, 11, 9, 7),
        target_peak=255.0,
        blur_kernel_size=21,
        blur_border=10,
        shift=0.25,
        score_offset=0.5,
    ):
        super().__init__(input_size, heatmap_size)
        if isinstance(kernel_sizes, (int, np.integer)):
            kernel_sizes = (kernel_sizes,)
        try:
            kernel_sizes = tuple(kernel_sizes)
        except TypeError:
            raise CodecError(
                f"`kernel_sizes` must be a list of odd kernel sizes, coarsest GlobalNet level "
                f"first, got {kernel_sizes!r}; e.g. (15, 11, 9, 7)."
            ) from None
        if not kernel_sizes:
            raise CodecError("`kernel_sizes` must name at least one kernel, e.g. (15, 11, 9, 7).")
        self.kernel_sizes = tuple(check_odd_kernel(k, "kernel_sizes", _KERNEL_HINT) for k in kernel_sizes)
        h, w = self.heatmap_size
        too_big = [k for k in self.kernel_sizes if (k - 1) // 2 >= min(h, w)]
        if too_big:
            raise CodecError(
                f"target kernels {too_big} are too large for heatmap_size {self.heatmap_size}: "
                "the kernel radius must be smaller than the heatmap height and width."
            )
        self.target_peak = float(target_peak)
        if not self.target_peak > 0:
            raise CodecError(f"`target_peak` must be positive, got {target_peak!r} (255 in pytorch-cpn).")
        self.blur_kernel_size = check_odd_kernel(blur_kernel_size, "blur_kernel_size", _KERNEL_HINT)
        self.blur_border = int(blur_border)
        if self.blur_border != blur_border or self.blur_border < 0:
            raise CodecError(f"`blur_border` must be a non-negative integer, got {blur_border!r} (10).")
        self.shift = float(shift)
        self.score_offset = float(score_offset)
        self._kernels = {k: opencv_gaussian_kernel(k) for k in (*self.kernel_sizes, self.blur_kernel_size)}

    @property
    def sigma(self):
        """OpenCV sigma of the RefineNet kernel (heatmap px; informational)."""
        k = self.kernel_sizes[-1]
        return 0.3 * ((k - 1) * 0.5 - 1) + 0.8

    @property
    def stride(self):
        """``(sx, sy)`` input px per heatmap px."""
        (ih, iw), (hh, hw) = self.input_size, self.heatmap_size
        return (iw / hw, ih / hh)

    # --- encode ---------------------------------------------------------------
    def targets(self, kp, visible, xp):
        """Targets of ``N`` crops: a 1 at heatmap pixel ``floor(p / stride)``, blurred, peak `target_peak`.

        Weights are ``min(visible, 1)``, 0 for unlabelled joints and joints
        outside the crop (``floor(p / stride)`` off the map; pytorch-cpn
        zeroes their visibility). pytorch-cpn's GlobalNet loss additionally
        drops ``v = 1`` (labelled, occluded) joints (``valid > 1.1``), its
        RefineNet loss keeps them (``valid > 0.1``).
        """
        h, w = self.heatmap_size
        (ih, iw) = self.input_size
        pix = xp.floor(kp * np.array([w / iw, h / ih], np.float64))
        finite = xp.all(xp.isfinite(pix), axis=-1)
        pix = xp.where(finite[..., None], pix, -xp.ones_like(pix))
        x, y = pix[..., 0], pix[..., 1]
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        keep = (visible >= VISIBLE_THRESHOLD) & inside & finite
        weights = xp.cast(xp.where(keep, xp.clip(visible, 0.0, 1.0), xp.zeros_like(visible)), xp.float32)
        levels = []
        for k in self.kernel_sizes:
            kernel = self._kernels[k]
            bx = xp.transpose(_reflect101_delta_1d(x, w, kernel, xp), (1, 0, 2))  # (N, w, K)
            by = xp.transpose(_reflect101_delta_1d(y, h, kernel, xp), (1, 0, 2))  # (N, h, K)
            maps = by[:, :, None, :] * bx[:, None, :, :]
            peak = xp.reduce_max(bx, axis=1) * xp.reduce_max(by, axis=1)
            peak = xp.where(keep, peak, xp.ones_like(peak))
            maps = maps / (peak / self.target_peak)[:, None, None, :]
            maps = xp.where(keep[:, None, None, :], maps, xp.zeros_like(maps))
            levels.append(xp.cast(maps, xp.float32))
        return {"heatmaps": levels[-1], "keypoint_weights": weights, "heatmaps_levels": tuple(levels)}

    # --- decode ---------------------------------------------------------------
    def _blur(self, maps):
        """``cv2.GaussianBlur(map, (k, k), 0)`` of ``(H, W, M)`` float64 maps."""
        kernel = self._kernels[self.blur_kernel_size]
        out = np.empty_like(maps)
        step = 128  # channels per call: OpenCV 5 accepts at most 128 (OpenCV 4: 512)
        for start in range(0, maps.shape[-1], step):
            chunk = np.ascontiguousarray(maps[..., start : start + step])
            res = cv2.sepFilter2D(chunk, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
            out[..., start : start + step] = res.reshape(chunk.shape)
        return out

    def argmax_to_input(self):
        """``(scale, offset)`` = ``(stride, (0.5, 0.5))``: pixel centres, ``u = (x + 0.5) * stride``."""
        return tuple(float(s) for s in self.stride), (0.5, 0.5)

    def decode_heatmaps(self, hm):
        """pytorch-cpn test-time decoding (`decode` checks the input and calls this).

        Args:
            hm: ``(N, h, w, K)`` float32 model heatmaps (after the flip-test
                average, as CPN's ``score_map``).

        Returns:
            ``(keypoints, scores)``: float32 ``(N, K, 2)`` box-frame input
            pixels ``(x + 0.5) * stride`` and float32 ``(N, K)`` keypoint
            scores ``heatmap / target_peak + score_offset`` at the rounded
            location (CPN's ``r0``). A map whose maximum is 0 gives NaN after
            the normalisation, as in pytorch-cpn; its keypoint then lands at
            the padded map's origin (clipped to heatmap pixel (0, 0)).
        """
        n, h, w, k = hm.shape
        b = self.blur_border
        # Normalise each map by its maximum in float32, as CPN does in place.
        peak = hm.max(axis=(1, 2), keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = hm / peak
        maps = np.zeros((h + 2 * b, w + 2 * b, n * k), np.float64)
        maps[b : b + h, b : b + w] = np.transpose(norm, (1, 2, 0, 3)).reshape(h, w, n * k)
        blurred = self._blur(maps)
        hp, wp = h + 2 * b, w + 2 * b
        flat = np.transpose(blurred, (2, 0, 1)).reshape(n * k, hp * wp)
        rows = np.arange(n * k)
        first = np.argmax(flat, axis=-1)
        flat[rows, first] = 0.0
        second = np.argmax(flat, axis=-1)
        y, x = (first // wp).astype(np.float64), (first % wp).astype(np.float64)
        dy, dx = second // wp - first // wp, second % wp - first % wp
        length = np.sqrt(dx.astype(np.float64) ** 2 + dy.astype(np.float64) ** 2)
        move = length > 1e-3
        safe = np.where(move, length, 1.0)
        x = np.where(move, x + self.shift * dx / safe, x) - b
        y = np.where(move, y + self.shift * dy / safe, y) - b
        x = np.clip(x, 0, w - 1)
        y = np.clip(y, 0, h - 1)
        # Score: the unnormalised map / peak + offset (float32) at the rounded location.
        # |shift| <= 0.25 < 0.5: rounding never meets a tie.
        ix = np.rint(x).astype(np.int64)
        iy = np.rint(y).astype(np.int64)
        per = np.transpose(hm, (0, 3, 1, 2)).reshape(n * k, h, w)
        values = per[rows, iy, ix]
        scores = values / np.float32(self.target_peak) + np.float32(self.score_offset)
        sx, sy = self.stride
        keypoints = np.stack([(x + 0.5) * sx, (y + 0.5) * sy], axis=-1).reshape(n, k, 2).astype(np.float32)
        scores = scores.reshape(n, k).astype(np.float32)
        return keypoints, scores

    # --- config ---------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_sizes": list(self.kernel_sizes),
                "target_peak": self.target_peak,
                "blur_kernel_size": self.blur_kernel_size,
                "blur_border": self.blur_border,
                "shift": self.shift,
                "score_offset": self.score_offset,
            }
        )
        return config
