"""`TopDownCropper`: person boxes -> model-input crops, and back.

The crop convention of a top-down model is a setting of its preset, not of
its codec: the box padding (one factor or one per axis), what fills the crop
outside the image, and the warp (``"standard"``: box edges at 0 and W;
``"udp"``: box edges at pixel centres 0 and W - 1; see `keras_pose.geometry`).
Inference (`crop`, OpenCV) and the ``tf.data`` pipeline
(`keras_pose.data`) read the same cropper, so training crops and test crops
agree.
"""

import keras
import numpy as np

from keras_pose.errors import PreprocessingError
from keras_pose.geometry import as_size
from keras_pose.geometry import box_xywh_to_center_scale
from keras_pose.geometry import check_warp
from keras_pose.geometry import crop_to_image
from keras_pose.geometry import get_warp_matrix
from keras_pose.geometry import warp_image
from keras_pose.utils.config_object import ConfigObject

BORDERS = ("zeros", "mean")


def _positive(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or not np.isfinite(value):
        raise PreprocessingError(f"`{name}` must be a positive factor, got {value!r}; e.g. {name}=1.25.")
    return value


@keras.saving.register_keras_serializable(package="keras_pose")
class TopDownCropper(ConfigObject):
    """The crop convention of a top-down model.

    Args:
        image_size: model input ``(height, width)``.
        padding: box enlargement factor (mmpose ``GetBBoxCenterScale``, 1.25).
        padding_xy: optional per-axis factors ``(px, py)`` used instead of
            ``padding`` (CPN: ``(1.2, 1.3)``); the box becomes ``(w * px, h *
            py)`` before its aspect ratio is fixed.
        border: what fills the crop outside the image: ``"zeros"`` or
            ``"mean"`` (the image converter's mean, i.e. zeros after
            normalisation).
        warp: ``"standard"`` or ``"udp"``: the affine convention the model
            was trained with (UDP for ``UDPHeatmap`` models).

    Scales are crop box sizes ``(sw, sh)`` in image pixels with the aspect
    ratio of the input (CONTRIBUTING.md).
    """

    def __init__(self, image_size, padding=1.25, padding_xy=None, border="zeros", warp="standard"):
        self.image_size = as_size(image_size, "image_size", error=PreprocessingError)
        self.padding = _positive(padding, "padding")
        if padding_xy is not None:
            pair = list(np.asarray(padding_xy, dtype=np.float64).reshape(-1)) if np.size(padding_xy) == 2 else None
            if pair is None:
                raise PreprocessingError(
                    f"`padding_xy` must be an (x, y) pair of positive factors, got {padding_xy!r}; e.g. (1.2, 1.3)."
                )
            padding_xy = [_positive(pair[0], "padding_xy"), _positive(pair[1], "padding_xy")]
        self.padding_xy = padding_xy
        border = "zeros" if border is None else border
        if border not in BORDERS:
            raise PreprocessingError(
                f"`border` must be one of {BORDERS} (what fills the crop outside the image), got {border!r}."
            )
        self.border = border
        check_warp(warp)
        self.warp = warp

    @property
    def crop_padding(self):
        """The padding the geometry applies: the ``padding_xy`` pair if set, else ``padding``."""
        return tuple(self.padding_xy) if self.padding_xy is not None else self.padding

    @property
    def udp(self):
        """True for the UDP warp."""
        return self.warp == "udp"

    def centers_and_scales(self, boxes):
        """``(M, 4)`` xywh boxes -> ``(centers (M, 2), scales (M, 2))`` float32, image pixels."""
        return box_xywh_to_center_scale(boxes, self.image_size, padding=self.crop_padding)

    def crop(self, image, boxes, fill_value=0):
        """Crops of the boxes of one image.

        Args:
            image: ``(H, W, C)`` array (uint8 RGB for inference).
            boxes: ``(M, 4)`` xywh boxes in image pixels.
            fill_value: what fills the crop outside the image (a scalar or
                one value per channel; the preprocessor passes its
                converter's mean for ``border="mean"``).

        Returns:
            ``(crops (M, h, w, C), centers (M, 2), scales (M, 2))``; crops
            have the image's dtype.
        """
        image = np.asarray(image)
        centers, scales = self.centers_and_scales(np.asarray(boxes, np.float32).reshape(-1, 4))
        crops = np.empty((len(centers), *self.image_size, *image.shape[2:]), image.dtype)
        for i in range(len(centers)):
            matrix = get_warp_matrix(centers[i], scales[i], self.image_size, udp=self.udp)
            crops[i] = warp_image(image, matrix, self.image_size, border_value=fill_value)
        return crops, centers, scales

    def to_image(self, keypoints, centers, scales):
        """Box-frame input pixels (a codec's ``decode``) -> image pixels (`crop_to_image`)."""
        return crop_to_image(keypoints, centers, scales, self.image_size)

    def get_config(self):
        return {
            "image_size": list(self.image_size),
            "padding": self.padding,
            "padding_xy": None if self.padding_xy is None else list(self.padding_xy),
            "border": self.border,
            "warp": self.warp,
        }
