"""Any supported annotation file by path: format sniffing and loading, detections optional.

`load_pose_annotations` is what `keras-pose evaluate` (and any tool that
takes "an annotation file") calls: it tells a COCO-format file (a JSON
object) from an MPII file (a JSON list), reads it with the matching reader,
and replaces the ground-truth boxes by detections when given.
"""

import os

from keras_pose.datasets.coco_format import load_coco_keypoints
from keras_pose.datasets.detections import dataset_from_detections, load_detections
from keras_pose.datasets.mpii import load_mpii
from keras_pose.datasets.pose_record import AnnotationFileNotFoundError
from keras_pose.errors import AnnotationError

ANNOTATION_FORMATS = ("coco", "mpii")


def detect_annotation_format(path):
    """``"mpii"`` for a JSON list (the MPII json conversion), ``"coco"`` for anything else.

    Reads only the first 4 KiB of the file.

    Raises:
        AnnotationFileNotFoundError: the file does not exist (or is a folder).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AnnotationFileNotFoundError(f"Annotation file {path!r} does not exist"
                                          + (" (it is a folder)." if os.path.isdir(path) else "."))
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "mpii" if head.startswith(b"[") else "coco"


def load_pose_annotations(annotation_file, image_root=None, *, format="auto", keypoint_spec=None, mode="eval",
                          detections=None, min_detection_score=0.0, category_id=1):
    """Read a COCO-format or MPII annotation file; optionally swap its boxes for detections.

    Args:
        annotation_file: path of the JSON file.
        image_root: folder its image names are relative to (default: the
            file's folder).
        format: "auto" (`detect_annotation_format`), "coco" or "mpii".
        keypoint_spec: KeypointSpec, spec name or keypoint count the file must
            match (see `load_coco_keypoints`).
        mode: "train" or "eval".
        detections: COCO detection results (path or parsed list, see
            `load_detections`) whose boxes replace the ground-truth boxes
            (COCO-format files only).
        min_detection_score: detections scored lower are left out.
        category_id: the detections' category to use (1: COCO person).

    Returns:
        ``(dataset, format)``: the `PoseDataset` and the format read.

    Raises:
        AnnotationFileNotFoundError: the annotation file, the image folder or
            the detections file does not exist.
        AnnotationError: a malformed file (see the readers), detections given
            for an MPII file, or an unknown ``format``.
    """
    if format not in ("auto",) + ANNOTATION_FORMATS:
        raise AnnotationError(f"format {format!r} is not one of auto, {', '.join(ANNOTATION_FORMATS)}.")
    found = detect_annotation_format(annotation_file)
    format = found if format == "auto" else format
    if image_root is not None and not os.path.isdir(image_root):
        raise AnnotationFileNotFoundError(f"Image folder {os.fspath(image_root)!r} does not exist.")
    if format == "mpii":
        if detections is not None:
            raise AnnotationError("Detections apply to COCO-format annotation files; MPII is evaluated on its "
                                  "own boxes.")
        return load_mpii(annotation_file, image_root, mode=mode, keypoint_spec=keypoint_spec), format
    dataset = load_coco_keypoints(annotation_file, image_root, keypoint_spec=keypoint_spec, mode=mode)
    if detections is not None:
        boxes = load_detections(detections, min_score=min_detection_score, category_id=category_id)
        dataset = dataset_from_detections(boxes, dataset, category_id=category_id)
    return dataset, format
