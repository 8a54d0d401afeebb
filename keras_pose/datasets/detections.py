"""Person (or animal) boxes per image: COCO detection results, or boxes per file name.

A COCO results file is a json list of
`{"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float}`,
e.g. `COCO_val2017_detections_AP_H_56_person.json` used for top-down
evaluation with detected boxes. The command line also reads
`{"file name": [[x, y, w, h, score], ...]}` (score optional) for images
that have no COCO id. `load_detections` reads both, checked; every other
reader (`load_coco_detections`, `keras-pose predict / evaluate`) goes
through it.
"""

import math
import os
import warnings

import numpy as np

from keras_pose.datasets.coco_format import read_json_file
from keras_pose.datasets.pose_record import AnnotationFileNotFoundError, PoseDataset, PoseInstance
from keras_pose.errors import AnnotationError

DETECTIONS_FORMAT = (
    'COCO detection results [{"image_id": 785, "bbox": [x, y, w, h], "score": 0.98}, ...] '
    'or {"file name": [[x, y, w, h, score], ...]}'
)


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)


def _checked_box(values, context, lengths):
    """``(box, score)`` of one detection; ``score`` None when the values hold none."""
    if not isinstance(values, (list, tuple, np.ndarray)) or len(values) not in lengths \
            or not all(_is_number(v) for v in values):
        shown = repr(values.tolist() if isinstance(values, np.ndarray) else values)[:80]
        raise AnnotationError(
            f"{context} is {shown}, not a box of {' or '.join(map(str, lengths))} finite numbers (x, y, w, h in "
            f"image pixels{', score' if 5 in lengths else ''}); fix the file, expected {DETECTIONS_FORMAT}."
        )
    if values[2] <= 0 or values[3] <= 0:
        raise AnnotationError(
            f"{context} {[float(v) for v in values[:4]]} has a width or height <= 0; boxes are COCO x, y, w, h "
            "(convert x1, y1, x2, y2 corners to widths and heights)."
        )
    return [float(v) for v in values[:4]], (float(values[4]) if len(values) > 4 else None)


def _image_key(value, context):
    """An image id (int; an integral float counts) or a file name (str)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise AnnotationError(f"{context} has image_id {value!r:.40}; expected an integer id (or a file name).")


def _records(source, what):
    """The parsed JSON of ``source`` and the text naming it in messages."""
    if isinstance(source, (list, tuple, dict)):
        return source, "in the given detections"
    path = os.fspath(source)
    if os.path.isdir(path):
        raise AnnotationFileNotFoundError(f"{what} {path!r} is a folder; give the JSON file of the detections.")
    return read_json_file(path, what=what), f"in {path!r}"


def load_detections(source, min_score=0.0, category_id=None, default_score=None):
    """Read person boxes per image, checked.

    Two layouts are read:

    - COCO detection results: a list of ``{"image_id", "bbox", "score",
      "category_id"}`` records (``category_id`` optional);
    - boxes per file name: ``{"000000000785.jpg": [[x, y, w, h, score],
      ...]}``, the score optional (a box without one scores 1.0).

    Args:
        source: path of the JSON file (str / PathLike), or its parsed content.
        min_score: keep detections with ``score >= min_score``.
        category_id: keep only COCO records of this category (records
            without ``category_id`` are kept); None keeps every category.
        default_score: the score of a COCO record without ``score``; None
            (the COCO results format) makes ``score`` required.

    Returns:
        dict ``image id or file name -> (boxes, scores)``: ``boxes`` ``(M, 4)``
        float32 COCO xywh in image pixels (finite, w, h > 0), ``scores``
        ``(M,)`` float32, in file order. Images with no kept detection are
        absent.

    Raises:
        AnnotationFileNotFoundError: the file does not exist or is a folder.
        AnnotationError: not JSON, neither layout, or a record without
            ``image_id`` / ``bbox`` (/ ``score``), with a box that is not 4
            finite numbers with w, h > 0, a non-finite score, or an image id
            that is neither an integer nor a file name; the message names the
            file and the record.
    """
    data, where = _records(source, "detections file")
    boxes, scores = {}, {}

    def keep(key, box, score):
        if score >= min_score:
            boxes.setdefault(key, []).append(box)
            scores.setdefault(key, []).append(score)

    if isinstance(data, dict):
        for name, items in data.items():
            if not isinstance(items, list):
                raise AnnotationError(f"the entry for {name!r} {where} is {items!r:.80}, not a list of boxes; "
                                      f"expected {DETECTIONS_FORMAT}.")
            for i, item in enumerate(items):
                box, score = _checked_box(item, f"box {i} of {name!r} {where}", (4, 5))
                keep(name, box, 1.0 if score is None else score)
    elif isinstance(data, (list, tuple)):
        for index, det in enumerate(data):
            context = f"detection #{index} {where}"
            if not isinstance(det, dict):
                raise AnnotationError(f"{context} is a {type(det).__name__}, not an object; expected COCO "
                                      "detection results (image_id, bbox, score).")
            required = ("image_id", "bbox") + (("score",) if default_score is None else ())
            missing = [k for k in required if k not in det]
            if missing:
                raise AnnotationError(f"{context} has no {missing} (keys: {sorted(det)}); expected COCO "
                                      "detection results (image_id, bbox, score).")
            if category_id is not None and det.get("category_id", category_id) != category_id:
                continue
            key = _image_key(det["image_id"], context)
            box, _ = _checked_box(det["bbox"], f"the bbox of {context}", (4,))
            score = det.get("score", default_score)
            if not _is_number(score):
                raise AnnotationError(f"{context} has score {score!r:.40}; expected a finite number.")
            keep(key, box, float(score))
    else:
        raise AnnotationError(f"detections {where} are a JSON {type(data).__name__}; expected {DETECTIONS_FORMAT}.")
    return {
        key: (np.asarray(boxes[key], np.float32).reshape(-1, 4), np.asarray(scores[key], np.float32))
        for key in boxes
    }


def load_coco_detections(result_file, min_score=0.0, category_id=1):
    """Read COCO results-format detections (`load_detections` with a required score).

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
        AnnotationError: as `load_detections`; the message names the file
            and the record.
    """
    return load_detections(result_file, min_score=min_score, category_id=category_id)


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
