"""Annotation readers: COCO-format keypoints, MPII json, detections, any of them by path."""

from keras_pose.datasets.annotation_files import detect_annotation_format, load_pose_annotations
from keras_pose.datasets.coco_format import BOX_AREA_FACTOR, load_coco_keypoints
from keras_pose.datasets.detections import (
    DETECTIONS_FORMAT,
    dataset_from_detections,
    load_coco_detections,
    load_detections,
)
from keras_pose.datasets.mpii import load_mpii
from keras_pose.datasets.pose_record import (
    AnnotationFileNotFoundError,
    ImageInfo,
    PoseDataset,
    PoseInstance,
)

__all__ = [
    "AnnotationFileNotFoundError",
    "BOX_AREA_FACTOR",
    "DETECTIONS_FORMAT",
    "ImageInfo",
    "PoseDataset",
    "PoseInstance",
    "dataset_from_detections",
    "detect_annotation_format",
    "load_coco_detections",
    "load_coco_keypoints",
    "load_detections",
    "load_mpii",
    "load_pose_annotations",
]
