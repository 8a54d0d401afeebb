"""Person boxes given to top-down inference: shape, finiteness, area, format."""

import warnings

import numpy as np

from keras_pose.errors import BoxError

BOX_FORMATS = ("xywh", "xyxy")


def check_boxes(boxes, box_format, image_size, what):
    """Boxes of one image -> ``(M, 4)`` float32 xywh, checked.

    Args:
        boxes: (M, 4) array-like, one box of 4 numbers, or an empty list.
        box_format: "xywh" or "xyxy".
        image_size: (height, width) of the image, for the outside warning.
        what: names the image in messages.
    """
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise BoxError(
            f"The boxes of {what} are not an (M, 4) array of numbers ({e}); give one "
            f"[x, y, w, h] (box_format={box_format!r}) per person."
        ) from None
    if array.ndim == 1 and array.size in (0, 4):
        array = array.reshape(-1, 4)
    if array.ndim >= 2 and array.shape[-1] == 4:
        array = array.reshape(-1, 4)
    else:
        count = array.shape[-1] if array.ndim else 1
        raise BoxError(
            f"The boxes of {what} have shape {array.shape}: a box has 4 values "
            f"({'x1, y1, x2, y2' if box_format == 'xyxy' else 'x, y, w, h'}), got {count}. Pass "
            "an (M, 4) array, one row per person."
        )
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise BoxError(
            f"{int(bad.sum())} box(es) of {what} hold NaN or Inf (first: {array[bad][0].tolist()}); "
            "boxes must be finite pixel coordinates. Drop or fix them (e.g. boxes[np.isfinite(boxes)"
            ".all(1)])."
        )
    if box_format == "xyxy":
        array = np.concatenate([array[:, :2], array[:, 2:] - array[:, :2]], axis=1)
    if len(array) and (array[:, 2:] <= 0).any():
        raise BoxError(
            f"Boxes must have positive width and height (xywh); got {array.tolist()} for {what}. "
            "Pass box_format='xyxy' if your boxes are corners."
        )
    h, w = image_size
    x, y, bw, bh = array.T
    outside = (x >= w) | (y >= h) | (x + bw <= 0) | (y + bh <= 0)
    if outside.any():
        warnings.warn(
            f"{int(outside.sum())} box(es) of {what} lie entirely outside the {w}x{h} (WxH) image "
            f"(first: {array[outside][0].tolist()} xywh); their keypoints are guesses. Check the "
            "box coordinates and box_format.",
            stacklevel=3,
        )
    return array.astype(np.float32)


def check_box_scores(scores, what):
    """Detector scores of one image -> ``(M,)`` float32, checked finite."""
    try:
        array = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise BoxError(f"The box scores of {what} are not numbers ({e}).") from None
    if not np.isfinite(array).all():
        raise BoxError(f"The box scores of {what} hold NaN or Inf ({array.tolist()}); pass finite scores.")
    return array.astype(np.float32)
