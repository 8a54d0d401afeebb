"""Drawing skeletons and heatmaps with OpenCV, and writing the pictures."""

import os

import cv2
import numpy as np

from keras_pose.errors import ImageWriteError


def _as_bgr_tuple(color):
    r, g, b = (int(c) for c in color)
    return (b, g, r)


def draw_poses(
    image,
    keypoints,
    scores,
    keypoint_spec,
    boxes=None,
    keypoint_threshold=0.3,
    radius=None,
    thickness=None,
    draw_boxes=True,
):
    """Draw people on an image.

    Args:
        image: (H, W, 3) uint8 RGB. Not modified; a copy is returned.
        keypoints: (N, K, 2) image pixels.
        scores: (N, K); keypoints at or below `keypoint_threshold` and limbs
            touching them are not drawn.
        keypoint_spec: a `KeypointSpec` (skeleton and colours).
        boxes: optional (N, 4) xywh boxes to outline.
        radius, thickness: in pixels; scaled to the image size if None.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    from keras_pose.keypoints import get_keypoint_spec

    spec = get_keypoint_spec(keypoint_spec)
    canvas = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2BGR)
    h, w = canvas.shape[:2]
    unit = max(1, int(round(max(h, w) / 400)))
    radius = radius or 2 * unit + 1
    thickness = thickness or unit + 1
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, spec.num_keypoints, 2)
    scores = np.asarray(scores, np.float32).reshape(-1, spec.num_keypoints)
    kp_colors = spec.keypoint_colors
    limb_colors = spec.limb_colors
    if boxes is not None and draw_boxes:
        for x, y, bw, bh in np.asarray(boxes, np.float32).reshape(-1, 4):
            cv2.rectangle(
                canvas,
                (int(round(x)), int(round(y))),
                (int(round(x + bw)), int(round(y + bh))),
                (0, 255, 0),
                max(1, unit),
                cv2.LINE_AA,
            )
    for person, person_scores in zip(keypoints, scores):
        visible = (person_scores > keypoint_threshold) & np.isfinite(person).all(-1)
        for limb, (i, j) in enumerate(spec.skeleton_indices):
            if visible[i] and visible[j]:
                p1 = tuple(int(round(v)) for v in person[i])
                p2 = tuple(int(round(v)) for v in person[j])
                cv2.line(canvas, p1, p2, _as_bgr_tuple(limb_colors[limb]), thickness, cv2.LINE_AA)
        for k in range(spec.num_keypoints):
            if visible[k]:
                center = tuple(int(round(v)) for v in person[k])
                cv2.circle(canvas, center, radius, _as_bgr_tuple(kp_colors[k]), -1, cv2.LINE_AA)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)


def overlay_heatmaps(image, heatmaps, alpha=0.5, colormap=cv2.COLORMAP_JET):
    """Blend the max over keypoints of heatmaps onto an image.

    Args:
        image: (H, W, 3) uint8 RGB (usually the model's input crop).
        heatmaps: (h, w, K) float; resized to (H, W) bilinearly.
        alpha: heatmap opacity in [0, 1].

    Returns:
        (H, W, 3) uint8 RGB.
    """
    heat = np.max(np.asarray(heatmaps, np.float32), axis=-1)
    heat = cv2.resize(heat, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    heat = np.clip(heat, 0.0, None)
    peak = heat.max()
    heat = (heat / peak * 255.0) if peak > 0 else heat
    colored = cv2.applyColorMap(heat.astype(np.uint8), colormap)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colored.astype(np.float32)
    return np.clip(blended, 0, 255).astype(np.uint8)


def save_image(path, image):
    """Write an RGB image atomically; the file extension picks the format.

    Args:
        path: destination (``.png``, ``.jpg``, ... any extension OpenCV
            encodes; none: PNG data).
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        ``path`` as a string.

    Raises:
        ImageWriteError: OpenCV has no encoder for the extension, or the file
            cannot be written (the message names ``path``, not the temporary
            file).
    """
    from keras_pose.utils.file_utils import atomic_write

    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower() or ".png"
    try:
        ok, data = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise ImageWriteError(f"OpenCV cannot write {ext!r} images; use .png or .jpg for {path!r}.")
    try:
        with atomic_write(path) as f:
            f.write(data.tobytes())
    except OSError as e:
        raise ImageWriteError(f"Could not write {path!r}: {e.strerror or e}.") from None
    return path
