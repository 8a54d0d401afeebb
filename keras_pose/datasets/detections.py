"""Person (or animal) detections in the COCO results format.

A COCO results file is a json list of
`{"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float}`,
e.g. `COCO_val2017_detections_AP_H_56_person.json` used for top-down
evaluation with detected boxes.
"""

import math
import os
import warnings

import numpy as np

from keras_pose.datasets.coco_format import read_json_file
from keras_pose.datasets.pose_record import PoseDataset, PoseInstance
from keras_pose.errors import AnnotationError


def load_coco_detections(result_file, min_score=0.0, category_id=1):
    """Read COCO results-format detections.

    Args:
        result_file: path of the json list (or an already-loaded list).
        min_score: keep detections with `score >= min_score`.
        category_id: keep only this category (1 = person in COCO); `None`
            keeps every category.

    Returns:
        dict `image_id -> (boxes, scores)`: `boxes` `(M, 4)` float32 xywh in
        image pixels and `scores` `(M,)` float32, in file order. Images with
        no kept detection are absent.

    Raises:
        AnnotationError: not a list, or a record without `image_id`/`bbox`/
            `score`, with a bbox that is not 4 finite numbers or a
            non-finite score; the message names the file and the record.
    """
    if isinstance(result_file, (list, tuple)):
        records, where = result_file, "in the given detections list"
    else:
        result_file = os.fspath(result_file)
        records = read_json_file(result_file, what="detection results file")
        where = f"in {result_file!r}"
    if not isinstance(records, (list, tuple)):
        raise AnnotationError(
            f"detection results {where} must be a JSON list of {{image_id, category_id, bbox, "
            f"score}} records; got a {type(records).__name__}."
        )
    boxes, scores = {}, {}
    for index, det in enumerate(records):
        context = f"detection #{index} {where}"
        if not isinstance(det, dict):
            raise AnnotationError(f"{context} is a {type(det).__name__}, not an object.")
        missing = [k for k in ("image_id", "bbox", "score") if k not in det]
        if missing:
            raise AnnotationError(f"{context} has no {missing} (keys: {sorted(det)}).")
        if category_id is not None and det.get("category_id", category_id) != category_id:
            continue
        try:
            bbox = np.asarray(det["bbox"], dtype=np.float64).reshape(-1)
            score = float(det["score"])
        except (TypeError, ValueError) as e:
            raise AnnotationError(f"{context} has non-numeric bbox/score ({e}).") from e
        if bbox.shape != (4,) or not np.all(np.isfinite(bbox)):
            raise AnnotationError(f"{context} has bbox {det['bbox']!r}; expected 4 finite numbers.")
        if not math.isfinite(score):
            raise AnnotationError(f"{context} has score {det['score']!r}; expected a finite number.")
        if score < min_score:
            continue
        image_id = det["image_id"]
        boxes.setdefault(image_id, []).append(bbox)
        scores.setdefault(image_id, []).append(score)
    return {
        image_id: (
            np.asarray(boxes[image_id], dtype=np.float32).reshape(-1, 4),
            np.asarray(scores[image_id], dtype=np.float32),
        )
        for image_id in boxes
    }


def dataset_from_detections(detections, reference, category_id=1, strict=True):
    """Turn detections into a `PoseDataset` for top-down inference.

    mmpose's `bbox_file` path: one instance per detected box, keypoints
    unknown. Here unknown keypoints are `(0, 0)` with visibility 0
    (mmpose uses visibility 1 for its dummy keypoints).

    Args:
        detections: dict from `load_coco_detections`.
        reference: a `PoseDataset` (usually `mode="eval"`) providing the
            image table, `image_root` and keypoint spec.
        category_id: category id given to every instance.
        strict: raise when a detection's image id is not in the image table
            (else such detections are dropped).

    Raises:
        AnnotationError: a box or score is NaN / Inf, or the counts of boxes
            and scores differ. Boxes entirely outside their image (when the
            image table knows its size) give one warning.

    Returns:
        `PoseDataset` in eval mode; `instance_id` is a running index,
        `bbox_score` the detection score, `area` the box area. Order: images
        in table order, boxes in file order.
    """
    unknown = [image_id for image_id in detections if image_id not in reference.images]
    if unknown and strict:
        raise AnnotationError(
            f"{len(unknown)} detected image id(s) are not in the image table of "
            f"{reference.annotation_file!r} (e.g. {unknown[:5]}); the detections belong to another "
            "dataset split. Pass strict=False to drop them."
        )
    k = reference.num_keypoints
    if k is None:
        raise ValueError("the reference dataset has no keypoint count; load it with keypoint_spec=.")
    instances, outside = [], []
    for image_id, image in reference.images.items():
        if image_id not in detections:
            continue
        boxes, scores = detections[image_id]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise AnnotationError(
                f"image {image_id} has {len(boxes)} detected boxes but {len(scores)} scores; "
                "give one score per box."
            )
        bad = ~(np.isfinite(boxes).all(axis=1) & np.isfinite(scores))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AnnotationError(
                f"image {image_id} has {int(bad.sum())} detection(s) with NaN/Inf values (first: box "
                f"{boxes[i].tolist()}, score {scores[i]}); boxes and scores must be finite numbers."
            )
        if image.width is not None and image.height is not None:
            x, y, w, h = boxes.T
            off = (x >= image.width) | (y >= image.height) | (x + w <= 0) | (y + h <= 0)
            outside += [(image_id, boxes[i].tolist()) for i in np.flatnonzero(off)]
        for box, score in zip(boxes, scores):
            instances.append(
                PoseInstance(
                    image_path=image.path,
                    image_id=image_id,
                    instance_id=len(instances),
                    bbox=box,
                    keypoints=np.zeros((k, 2), np.float32),
                    keypoints_visible=np.zeros((k,), np.float32),
                    area=float(max(box[2], 0.0) * max(box[3], 0.0)),
                    iscrowd=0,
                    category_id=category_id,
                    num_keypoints=0,
                    bbox_score=float(score),
                )
            )
    if outside:
        warnings.warn(
            f"{len(outside)} detected box(es) lie entirely outside their image (first: image "
            f"{outside[0][0]}, box {outside[0][1]} xywh); their keypoints will be guesses. Check "
            "that the detections belong to these images and are xywh (not xyxy).",
            stacklevel=2,
        )
    return PoseDataset(
        instances,
        keypoint_spec=reference.keypoint_spec if reference.keypoint_spec is not None else k,
        image_root=reference.image_root,
        annotation_file=reference.annotation_file,
        images=reference.images,
        num_keypoints=k,
        mode="eval",
        categories=reference.categories,
    )
