"""Image reading with clear errors (OpenCV)."""

import os

import cv2
import numpy as np

from keras_pose.errors import ImageReadError


def read_image(image):
    """Read an image as RGB uint8 (H, W, 3).

    Args:
        image: a file path (str / PathLike) or a NumPy array (H, W, 3) RGB.
            Arrays are checked, not converted: pass RGB, 3 channels.

    Raises:
        ImageReadError: the file is missing or does not decode, or the array
            has the wrong shape, channel count or dtype.
    """
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.isfile(path):
            raise ImageReadError(f"Image file not found: {path!r}.")
        data = np.fromfile(path, dtype=np.uint8)
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if decoded is None:
            raise ImageReadError(
                f"Could not decode image {path!r}: the file is empty, truncated "
                "or not an image format OpenCV reads (JPEG, PNG, BMP, TIFF, WebP)."
            )
        if decoded.dtype != np.uint8:
            decoded = cv2.normalize(decoded, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        if decoded.ndim == 2:
            return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
        if decoded.shape[2] == 4:
            return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
        if decoded.shape[2] == 3:
            return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        raise ImageReadError(
            f"Image {path!r} has {decoded.shape[2]} channels; expected 1, 3 or 4."
        )
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ImageReadError(
            f"Expected an RGB image array of shape (H, W, 3), got shape "
            f"{array.shape}. Convert grayscale with "
            "cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) and drop alpha channels."
        )
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.size and array.max() <= 1.0:
            raise ImageReadError(
                "Got a float image with values in [0, 1]; pass uint8 RGB in "
                "0..255 (e.g. (img * 255).round().astype('uint8'))."
            )
        array = np.clip(array, 0, 255).astype(np.uint8)
    return array
