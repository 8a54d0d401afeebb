"""`WarpLetterboxResizer`: mmpose's ``BottomupResize`` letterbox (RTMO, DEKR), by one affine warp.

mmpose's ``BottomupResize(input_size=(W, H), resize_mode="fit",
use_udp=False, pad_val=114)`` does not resize and paste: it warps the whole
image with ``cv2.warpAffine`` (bilinear, constant border ``pad_val``) by the
matrix that maps the image centre ``(w / 2, h / 2)`` to the input centre
``(W / 2, H / 2)`` with one scale ``s = min(W / w, H / h)`` (the aspect
ratio kept, the long side to the input). The resized image is therefore
centred with a possibly fractional offset (a 640x425 image in a 640x640
input starts at y = 107.5, and row 107 is half padding, half image), which a
resize-and-paste letterbox (`WholeImageResizer`) does not reproduce.

A point ``p`` in image pixels is ``s * (p - (w / 2, h / 2)) + (W / 2, H / 2)``
in the input; mmpose maps predictions back with ``p_in / input_size *
input_scale + input_center - input_scale / 2``, the inverse of that map
(`to_image`).
"""

import cv2
import keras
import numpy as np

from keras_pose.errors import PreprocessingError
from keras_pose.preprocessing.whole_image_resizer import WholeImageResizer


INTER_BITS = 5  # OpenCV: 1/32 pixel sub-positions
AB_BITS = 10  # OpenCV warpAffine: fixed-point coordinates with 10 fractional bits
COEF_BITS = 15  # OpenCV: bilinear weights in 1/32768


def warp_affine_bilinear_uint8(image, matrix, output_size, border_value):
    """``cv2.warpAffine(image, matrix, (W, H), INTER_LINEAR, BORDER_CONSTANT)`` as OpenCV 4.x computes it.

    OpenCV 4.x (the reference pipelines' version) rounds source positions to
    1/32 pixel and the weighted sum half up from 15-bit weights; OpenCV 5
    rounds differently (up to 1 grey level apart on half-pixel offsets). This
    NumPy version gives OpenCV 4.x's pixels on every OpenCV.

    Args:
        image: ``(h, w, C)`` uint8.
        matrix: ``(2, 3)`` image -> output matrix.
        output_size: ``(H, W)``.
        border_value: value of output pixels whose source lies outside.

    Returns:
        ``(H, W, C)`` uint8.
    """
    h, w, channels = image.shape
    out_h, out_w = (int(v) for v in output_size)
    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    scale = 1 << AB_BITS
    xs, ys = np.arange(out_w, dtype=np.float64), np.arange(out_h, dtype=np.float64)
    # x0 = round(M[0,1] y + M[0,2]) and round(M[0,0] x) separately, as OpenCV's fixed-point loop
    ax = np.rint(inverse[0, 0] * xs * scale).astype(np.int64)[None, :]
    ay = np.rint(inverse[1, 0] * xs * scale).astype(np.int64)[None, :]
    bx = np.rint((inverse[0, 1] * ys + inverse[0, 2]) * scale).astype(np.int64)[:, None]
    by = np.rint((inverse[1, 1] * ys + inverse[1, 2]) * scale).astype(np.int64)[:, None]
    shift, half = AB_BITS - INTER_BITS, 1 << (AB_BITS - INTER_BITS - 1)
    sx, sy = (ax + bx + half) >> shift, (ay + by + half) >> shift
    x0, y0 = sx >> INTER_BITS, sy >> INTER_BITS
    fx = (sx & ((1 << INTER_BITS) - 1)).astype(np.int64)
    fy = (sy & ((1 << INTER_BITS) - 1)).astype(np.int64)
    size = 1 << INTER_BITS
    weights = [w_.astype(np.int32) for w_ in ((size - fx) * (size - fy), fx * (size - fy), (size - fx) * fy, fx * fy)]
    padded = np.full((h + 2, w + 2, channels), int(round(border_value)), np.int32)
    padded[1:-1, 1:-1] = image
    total = np.zeros((out_h, out_w, channels), np.int32)
    for (dx, dy), weight in zip(((0, 0), (1, 0), (0, 1), (1, 1)), weights):
        cx = np.clip(x0 + dx + 1, 0, w + 1)
        cy = np.clip(y0 + dy + 1, 0, h + 1)
        total += padded[cy, cx] * (weight << (COEF_BITS - 2 * INTER_BITS))[..., None]
    outside = (x0 < -1) | (x0 >= w) | (y0 < -1) | (y0 >= h)  # all four corners outside
    result = np.clip((total + (1 << (COEF_BITS - 1))) >> COEF_BITS, 0, 255).astype(np.uint8)
    result[outside] = np.uint8(np.clip(round(border_value), 0, 255))
    return result


@keras.saving.register_keras_serializable(package="keras_pose")
class WarpLetterboxResizer(WholeImageResizer):
    """Letterbox whole images as mmpose's ``BottomupResize`` (fit mode, no UDP) does.

    Args:
        image_size: ``(height, width)`` of the model input.
        pad_value: the value of pixels outside the image (114 for RTMO).

    `resize(image)` returns the ``(H, W, C)`` input (the image's dtype) and
    the ``(2, 3)`` float32 image -> input matrix; `to_image(points, matrix)`
    maps input pixels back to image pixels.
    """

    def __init__(self, image_size, pad_value=114):
        super().__init__(image_size, keep_aspect_ratio=True, pad_value=pad_value, pad_position="center")

    def scale_factor(self, image_shape):
        """``s = min(W / w, H / h)`` for an image of ``image_shape`` ``(h, w, ...)`` (float64)."""
        h, w = int(image_shape[0]), int(image_shape[1])
        if h < 1 or w < 1:
            raise PreprocessingError(f"Cannot resize an empty image of shape {tuple(image_shape)}.")
        target_h, target_w = self.image_size
        return min(target_w / w, target_h / h)

    def output_size(self, image_shape):
        """``((H, W), (round(h s), round(w s)))``: the input size and the resized image's size."""
        s = self.scale_factor(image_shape)
        h, w = int(image_shape[0]), int(image_shape[1])
        return tuple(self.image_size), (max(1, int(round(h * s))), max(1, int(round(w * s))))

    def transform(self, image_shape):
        """The ``(2, 3)`` float32 image -> input matrix: centre to centre, scale ``s``."""
        s = self.scale_factor(image_shape)
        h, w = int(image_shape[0]), int(image_shape[1])
        target_h, target_w = self.image_size
        return np.array(
            [[s, 0.0, target_w / 2.0 - s * w / 2.0], [0.0, s, target_h / 2.0 - s * h / 2.0]], np.float64
        ).astype(np.float32)

    def resize(self, image):
        """Warp one image into the input.

        Args:
            image: ``(H, W, C)`` array (uint8 RGB for inference).

        Returns:
            ``(array, matrix)``: the ``(H', W', C)`` model input (bilinear
            ``cv2.warpAffine``, border `pad_value`) and the ``(2, 3)`` image
            -> input matrix.
        """
        image = np.asarray(image)
        if image.ndim != 3:
            raise PreprocessingError(f"`image` must be (H, W, C), got shape {image.shape}.")
        matrix = self.transform(image.shape)
        target_h, target_w = self.image_size
        channels = image.shape[2]
        if image.dtype == np.uint8:
            out = warp_affine_bilinear_uint8(image, matrix, (target_h, target_w), self.pad_value)
        else:
            out = cv2.warpAffine(
                image,
                matrix.astype(np.float64),
                (target_w, target_h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=(self.pad_value,) * min(channels, 4),
            )
        return out.reshape(target_h, target_w, channels), matrix

    def get_config(self):
        return {"image_size": list(self.image_size), "pad_value": self.pad_value}


__all__ = ["WarpLetterboxResizer"]
