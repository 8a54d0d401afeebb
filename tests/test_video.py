"""`keras_pose.video.predict_video` with a stand-in model (no network, no backend)."""

import cv2
import numpy as np
import pytest

from keras_pose.errors import VideoReadError
from keras_pose.keypoints import get_keypoint_spec
from keras_pose.results import PoseResult
from keras_pose.video import predict_video


class CentreModel:
    """One person per box whose 17 keypoints all sit at the brightest pixel column's centre row."""

    def __init__(self):
        self.calls = []

    def predict_keypoints(self, image, boxes=None, **kwargs):
        self.calls.append((image.shape, boxes, kwargs))
        h, w = image.shape[:2]
        x = float(np.argmax(image[..., 0].sum(axis=0)))
        boxes = np.asarray(boxes if boxes is not None else [[0, 0, w, h]], np.float32).reshape(-1, 4)
        n = len(boxes)
        keypoints = np.tile(np.asarray([x, h / 2], np.float32), (n, 17, 1))
        return PoseResult(keypoints, np.ones((n, 17), np.float32), boxes, np.ones(n, np.float32),
                          get_keypoint_spec("coco"), (h, w))


def _clip(path, frames=3, size=(48, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (size[1], size[0]))
    for i in range(frames):
        frame = np.zeros((*size, 3), np.uint8)
        frame[:, 10 + 15 * i, 2] = 255  # a bright column (red in BGR) moving right
        writer.write(frame)
    writer.release()
    return path


def test_one_result_per_frame_and_the_drawn_video(tmp_path):
    clip = _clip(tmp_path / "clip.mp4")
    model = CentreModel()
    out = tmp_path / "sub" / "drawn.mp4"
    results = predict_video(model, clip, [[1, 2, 30, 40]], output=out, flip_test=False)
    assert len(results) == 3 and all(len(r) == 1 for r in results)
    xs = [float(r.keypoints[0, 0, 0]) for r in results]
    assert xs == pytest.approx([10, 25, 40], abs=2)  # the frames in order, RGB
    assert all(call[1] == [[1, 2, 30, 40]] and call[2] == {"flip_test": False} for call in model.calls)
    capture = cv2.VideoCapture(str(out))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 3
    assert sorted(p.name for p in out.parent.iterdir()) == ["drawn.mp4"]  # no temporary left


def test_unreadable_video_is_a_named_error_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoReadError, match="bad.mp4"):
        predict_video(CentreModel(), bad, output=tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]


def test_a_failing_frame_leaves_no_partial_video(tmp_path):
    clip = _clip(tmp_path / "clip.mp4")

    class Failing(CentreModel):
        def predict_keypoints(self, image, boxes=None, **kwargs):
            if len(self.calls) == 2:
                raise RuntimeError("model failed")
            return super().predict_keypoints(image, boxes, **kwargs)

    with pytest.raises(RuntimeError, match="model failed"):
        predict_video(Failing(), clip, output=tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
