"""Pose estimation results for one image."""

import dataclasses
import json
from typing import Optional

import numpy as np

from keras_pose.errors import ResultError


def instance_scores(keypoint_scores, box_scores, threshold=0.2):
    """mmpose top-down rescoring: box score x mean of confident keypoint scores.

    Args:
        keypoint_scores: (N, K).
        box_scores: (N,).
        threshold: keypoints with a score above it enter the mean; an instance
            with none keeps the box score times 0.

    Returns:
        (N,) float32 instance scores.
    """
    keypoint_scores = np.asarray(keypoint_scores, np.float32)
    box_scores = np.asarray(box_scores, np.float32)
    mask = keypoint_scores > threshold
    count = mask.sum(axis=-1)
    mean = np.where(count > 0, (keypoint_scores * mask).sum(-1) / np.maximum(count, 1), 0.0)
    return (box_scores * mean).astype(np.float32)


@dataclasses.dataclass
class PoseResult:
    """The people found in one image.

    Attributes:
        keypoints: (N, K, 2) float32, (x, y) in image pixels.
        scores: (N, K) float32 keypoint scores (heatmap maxima for heatmap
            models).
        boxes: (N, 4) float32 person boxes, xywh in image pixels (the boxes
            the crops were taken from).
        box_scores: (N,) float32 detector scores (1.0 for given boxes).
        keypoint_spec: the `KeypointSpec` of the keypoints.
        image_size: (height, width) of the image.
        image_id: optional identifier (COCO image id or file name).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    keypoint_spec: object
    image_size: tuple
    image_id: Optional[object] = None

    def __len__(self):
        return int(self.keypoints.shape[0])

    @property
    def instance_scores(self):
        """(N,) mmpose-style rescored instance scores."""
        return instance_scores(self.scores, self.box_scores)

    def to_coco(self, image_id=None, category_id=1):
        """COCO keypoint results: a list of dicts, one per person.

        Each has `image_id`, `category_id`, `keypoints` ([x, y, score] * K,
        flat), `score` (rescored instance score) and `bbox` (xywh).

        Raises:
            ResultError: a keypoint, score or box is NaN / Inf (JSON cannot
                hold them; for a model's output that means broken weights).
        """
        image_id = self.image_id if image_id is None else image_id
        out = []
        inst = self.instance_scores
        self._check_finite(image_id, inst)
        for i in range(len(self)):
            flat = np.concatenate([self.keypoints[i], self.scores[i][:, None]], axis=-1).reshape(-1)
            out.append(
                {
                    "image_id": image_id,
                    "category_id": int(category_id),
                    "keypoints": [round(float(v), 3) for v in flat],
                    "score": float(inst[i]),
                    "bbox": [round(float(v), 2) for v in self.boxes[i]],
                }
            )
        return out

    def to_json(self, image_id=None, category_id=1, indent=None):
        """`to_coco` as a strict JSON string (COCO results format).

        Raises:
            ResultError: non-finite values (see `to_coco`); the output never
                holds the `NaN` / `Infinity` tokens strict parsers reject.
        """
        records = self.to_coco(image_id, category_id)
        try:
            return json.dumps(records, indent=indent, allow_nan=False)
        except ValueError as e:  # e.g. a float NaN image_id
            raise ResultError(
                f"The results of image {self.image_id if image_id is None else image_id!r} hold a "
                f"value JSON cannot carry ({e}); use a finite number or a string as image_id."
            ) from None

    def _check_finite(self, image_id, instance_scores):
        if not len(self):
            return
        arrays = {
            "keypoints": np.asarray(self.keypoints, np.float64).reshape(len(self), -1),
            "keypoint scores": np.asarray(self.scores, np.float64).reshape(len(self), -1),
            "boxes": np.asarray(self.boxes, np.float64).reshape(len(self), -1),
            "box scores": np.asarray(self.box_scores, np.float64).reshape(len(self), -1),
            "instance scores": np.asarray(instance_scores, np.float64).reshape(len(self), -1),
        }
        for name, values in arrays.items():
            bad = ~np.isfinite(values).all(axis=1)
            if bad.any():
                people = np.flatnonzero(bad).tolist()
                raise ResultError(
                    f"The {name} of person(s) {people[:10]} of image {image_id!r} are NaN or Inf, "
                    "which COCO / JSON results cannot hold. The model produced non-finite outputs "
                    "(corrupt or diverged weights?) or the inputs held NaN; check them before "
                    "writing results."
                )

    def draw(self, image, keypoint_threshold=0.3, **kwargs):
        """The image (RGB uint8) with skeletons drawn; see `keras_pose.visualization`."""
        from keras_pose.visualization import draw_poses

        return draw_poses(
            image,
            self.keypoints,
            self.scores,
            self.keypoint_spec,
            boxes=self.boxes,
            keypoint_threshold=keypoint_threshold,
            **kwargs,
        )
