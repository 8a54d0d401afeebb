"""Pose estimation results for one image."""

import dataclasses
import json
from typing import Optional

import numpy as np

from keras_pose.errors import ResultError


def rescore_instances(keypoint_scores, bbox_scores, keypoint_score_threshold=0.2):
    """mmpose top-down instance score (`score_mode="bbox_keypoint"`).

    `score = bbox_score * mean(keypoint scores > threshold)`; 0 when no
    keypoint score is above the threshold (as mmpose).

    Args:
        keypoint_scores: `(N, K)` per-keypoint confidences.
        bbox_scores: `(N,)` detection scores (1 for ground-truth boxes).
        keypoint_score_threshold: mmpose's `keypoint_score_thr`, 0.2.

    Returns:
        `(N,)` float64 instance scores.
    """
    kscores = np.asarray(keypoint_scores, dtype=np.float64)
    if kscores.ndim != 2:
        raise ValueError(f"keypoint_scores must have shape (N, K); got {kscores.shape}.")
    bscores = np.broadcast_to(np.asarray(bbox_scores, dtype=np.float64).reshape(-1), (kscores.shape[0],))
    above = kscores > keypoint_score_threshold
    count = above.sum(axis=1)
    mean = np.where(count > 0, np.where(above, kscores, 0.0).sum(axis=1) / np.maximum(count, 1), 0.0)
    return bscores * mean


@dataclasses.dataclass
class PoseResult:
    """The people found in one image.

    Attributes:
        keypoints: (N, K, 2) float32, (x, y) in image pixels.
        scores: (N, K) float32 keypoint scores (heatmap maxima for heatmap
            models).
        boxes: (N, 4) float32 person boxes, xywh in image pixels (top-down:
            the boxes the crops were taken from; one-stage: the predicted
            boxes), or None for paradigms without boxes (bottom-up).
        box_scores: (N,) float32 detector scores (1.0 for given boxes), or
            None.
        keypoint_spec: the `KeypointSpec` of the keypoints.
        image_size: (height, width) of the image.
        image_id: optional identifier (COCO image id or file name).
        person_scores: optional (N,) float32 instance scores the model gives
            itself (bottom-up grouping, one-stage detection); None: the
            top-down rescoring of `box_scores` (see `instance_scores`).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: Optional[np.ndarray]
    box_scores: Optional[np.ndarray]
    keypoint_spec: object
    image_size: tuple
    image_id: Optional[object] = None
    person_scores: Optional[np.ndarray] = None

    def __len__(self):
        return int(self.keypoints.shape[0])

    @property
    def instance_scores(self):
        """(N,) float32 instance scores: `person_scores`, else mmpose's top-down rescoring.

        The rescoring is `box score * mean(keypoint scores > 0.2)` (box score
        1 without boxes; `rescore_instances`).
        """
        if self.person_scores is not None:
            return np.asarray(self.person_scores, np.float32)
        box_scores = np.ones(len(self), np.float32) if self.box_scores is None else self.box_scores
        return rescore_instances(self.scores, box_scores).astype(np.float32)

    def to_coco(self, image_id=None, category_id=1):
        """COCO keypoint results: a list of dicts, one per person.

        Each has `image_id`, `category_id`, `keypoints` ([x, y, score] * K,
        flat), `score` (the instance score) and, where the result has boxes,
        `bbox` (xywh).

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
            record = {
                "image_id": image_id,
                "category_id": int(category_id),
                "keypoints": [round(float(v), 3) for v in flat],
                "score": float(inst[i]),
            }
            if self.boxes is not None:
                record["bbox"] = [round(float(v), 2) for v in self.boxes[i]]
            out.append(record)
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
            "boxes": self.boxes,
            "box scores": self.box_scores,
            "instance scores": instance_scores,
        }
        for name, values in arrays.items():
            if values is None:
                continue
            values = np.asarray(values, np.float64).reshape(len(self), -1)
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
