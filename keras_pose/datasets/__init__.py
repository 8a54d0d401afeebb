"""Annotation readers: COCO-format keypoints, MPII json, COCO detections."""

from keras_pose.datasets.coco_format import BOX_AREA_FACTOR, load_coco_keypoints
from keras_pose.datasets.detections import dataset_from_detections, load_coco_detections
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
    "ImageInfo",
    "PoseDataset",
    "PoseInstance",
    "dataset_from_detections",
    "load_coco_detections",
    "load_coco_keypoints",
    "load_mpii",
]
