"""`WholeImageResizer`: a whole image -> a bottom-up / one-stage model input, and back.

Bottom-up (OpenPose) and one-stage (RTMO) models see the whole image. The
resizer scales it (keeping the aspect ratio, or not) and pads it:

- fixed size (``size_multiple=None``): the image is fitted into
  ``image_size`` and padded to exactly ``image_size`` (a letterbox), the
  padding around it (``pad_position="center"``) or after it
  (``"bottom_right"``, as YOLOX / RTMO pad);
- dynamic size (``size_multiple=s``): the image is fitted into
  ``image_size`` and padded only to the next multiple of ``s`` (the network
  stride; OpenPose-style inputs whose size follows the image).

Coordinates follow mmpose's ``Resize``: a point ``p`` in image pixels is
``p * scale + offset`` in the input (no half-pixel term). `resize` returns
that map as a ``(2, 3)`` affine matrix (image -> input), the layout of
`keras_pose.geometry.transform_points`; `to_image` applies its inverse.
"""

import math

import cv2
import keras
import numpy as np

from keras_pose.errors import PreprocessingError
from keras_pose.geometry import as_size
from keras_pose.geometry import invert_affine
from keras_pose.geometry import transform_points
from keras_pose.utils.config_object import ConfigObject

PAD_POSITIONS = ("center", "bottom_right")


@keras.saving.register_keras_serializable(package="keras_pose")
class WholeImageResizer(ConfigObject):
    """Resize (and letterbox) whole images for a bottom-up or one-stage model.

    Args:
        image_size: ``(height, width)`` the image is fitted into.
        keep_aspect_ratio: scale both axes by one factor (True) or stretch
            to ``image_size`` (False).
        pad_value: the value of padded pixels (e.g. 114 for YOLOX / RTMO, 0).
        pad_position: ``"center"`` or ``"bottom_right"``.
        size_multiple: None for a fixed ``image_size`` output, or a stride
            ``s``: the output is the resized image padded to multiples of
            ``s``.
    """

    def __init__(self, image_size, keep_aspect_ratio=True, pad_value=0, pad_position="center", size_multiple=None):
        self.image_size = as_size(image_size, "image_size", error=PreprocessingError)
        self.keep_aspect_ratio = bool(keep_aspect_ratio)
        try:
            self.pad_value = float(pad_value)
        except (TypeError, ValueError):
            raise PreprocessingError(f"`pad_value` must be a number (0..255), got {pad_value!r}.") from None
        if pad_position not in PAD_POSITIONS:
            raise PreprocessingError(f"`pad_position` must be one of {PAD_POSITIONS}, got {pad_position!r}.")
        self.pad_position = pad_position
        if size_multiple is not None and (int(size_multiple) != size_multiple or size_multiple < 1):
            raise PreprocessingError(f"`size_multiple` must be a positive integer (the stride) or None, got {size_multiple!r}.")
        self.size_multiple = None if size_multiple is None else int(size_multiple)

    def output_size(self, image_shape):
        """``((out_h, out_w), (new_h, new_w))``: the input size and the resized image's size."""
        h, w = int(image_shape[0]), int(image_shape[1])
        if h < 1 or w < 1:
            raise PreprocessingError(f"Cannot resize an empty image of shape {tuple(image_shape)}.")
        target_h, target_w = self.image_size
        if self.keep_aspect_ratio:
            ratio = min(target_h / h, target_w / w)
            new_h, new_w = max(1, int(round(h * ratio))), max(1, int(round(w * ratio)))
        else:
            new_h, new_w = target_h, target_w
        if self.size_multiple is None:
            return (target_h, target_w), (new_h, new_w)
        s = self.size_multiple
        return (math.ceil(new_h / s) * s, math.ceil(new_w / s) * s), (new_h, new_w)

    def transform(self, image_shape):
        """The ``(2, 3)`` float32 image -> input matrix for an image of ``image_shape`` ``(H, W, ...)``."""
        (out_h, out_w), (new_h, new_w) = self.output_size(image_shape)
        sx, sy = new_w / int(image_shape[1]), new_h / int(image_shape[0])
        ox = oy = 0.0
        if self.pad_position == "center":
            ox, oy = float((out_w - new_w) // 2), float((out_h - new_h) // 2)
        return np.array([[sx, 0.0, ox], [0.0, sy, oy]], np.float32)

    def resize(self, image):
        """Resize and pad one image.

        Args:
            image: ``(H, W, C)`` array (uint8 RGB for inference).

        Returns:
            ``(array, matrix)``: the model-input image (``image``'s dtype,
            bilinear ``cv2.resize``), and its ``(2, 3)`` image -> input
            matrix.
        """
        image = np.asarray(image)
        if image.ndim != 3:
            raise PreprocessingError(f"`image` must be (H, W, C), got shape {image.shape}.")
        (out_h, out_w), (new_h, new_w) = self.output_size(image.shape)
        matrix = self.transform(image.shape)
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR).reshape(new_h, new_w, -1)
        out = np.full((out_h, out_w, image.shape[2]), self.pad_value, dtype=image.dtype)
        x0, y0 = int(matrix[0, 2]), int(matrix[1, 2])
        out[y0 : y0 + new_h, x0 : x0 + new_w] = resized
        return out, matrix

    def to_image(self, points, matrix):
        """Input-pixel points ``(..., 2)`` -> image pixels (the inverse of `resize`'s matrix)."""
        return transform_points(points, invert_affine(matrix))

    def get_config(self):
        return {
            "image_size": list(self.image_size),
            "keep_aspect_ratio": self.keep_aspect_ratio,
            "pad_value": self.pad_value,
            "pad_position": self.pad_position,
            "size_multiple": self.size_multiple,
        }
