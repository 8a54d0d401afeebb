"""Pose estimation on a video, frame by frame, optionally drawing the result into a new video."""

import contextlib
import os
import tempfile

from keras_pose.errors import VideoReadError


@contextlib.contextmanager
def _video_writer(path, fps):
    """Yields ``write(rgb_frame)``; the mp4v video replaces ``path`` only when the block completes."""
    import cv2

    directory = os.path.dirname(os.path.abspath(path))
    state = {"writer": None, "tmp": None}

    def write(rgb):
        if state["writer"] is None:
            os.makedirs(directory, exist_ok=True)
            fd, state["tmp"] = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                                suffix=os.path.splitext(path)[1] or ".mp4", dir=directory)
            os.close(fd)
            h, w = rgb.shape[:2]
            state["writer"] = cv2.VideoWriter(state["tmp"], cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        state["writer"].write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    try:
        yield write
        if state["writer"] is not None:
            state["writer"].release()
            state["writer"] = None
            os.replace(state["tmp"], path)
            state["tmp"] = None
    finally:
        if state["writer"] is not None:
            state["writer"].release()
        if state["tmp"] is not None:
            with contextlib.suppress(OSError):
                os.remove(state["tmp"])


def predict_video(model, path, boxes=None, *, output=None, keypoint_threshold=0.3, **predict_kwargs):
    """Run ``model.predict_keypoints`` on every frame of a video.

    Args:
        model: a pose task (anything with ``predict_keypoints(image, boxes,
            **kwargs) -> PoseResult``).
        path: the video file (anything OpenCV's ``VideoCapture`` opens).
        boxes: person boxes ``[[x, y, w, h], ...]`` (frame pixels) used on
            every frame; None: as ``predict_keypoints`` (the whole frame).
        output: optional path of a video (mp4v, at the source frame rate)
            with the skeletons drawn; written to a temporary file first and
            moved into place only when every frame is done.
        keypoint_threshold: keypoint score threshold for drawing.
        **predict_kwargs: passed to ``predict_keypoints`` (``flip_test``,
            ``dataset``, ...).

    Returns:
        list of `PoseResult`, one per frame, in frame order.

    Raises:
        VideoReadError: the file cannot be opened as a video, or has no
            readable frame.
    """
    import cv2

    path = os.fspath(path)
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(f"Could not open video {path!r} (unsupported codec or not a video).")
    results = []
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        with contextlib.ExitStack() as stack:
            write = stack.enter_context(_video_writer(os.fspath(output), fps)) if output else None
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                result = model.predict_keypoints(rgb, boxes, **predict_kwargs)
                results.append(result)
                if write is not None:
                    write(result.draw(rgb, keypoint_threshold=keypoint_threshold))
            if not results:
                raise VideoReadError(f"Video {path!r} has no readable frames.")
    finally:
        capture.release()
    return results
