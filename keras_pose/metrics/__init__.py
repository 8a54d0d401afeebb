"""Evaluation metrics: COCO keypoint AP (pycocotools), CrowdPose AP, OKS-NMS, PCKh, PCK, AUC, EPE."""

from keras_pose.metrics.coco_metric import (
    STAT_NAMES,
    CocoKeypointEvaluator,
    make_topdown_results,
    rescore_instances,
)
from keras_pose.metrics.crowdpose_eval import (
    CROWD_INDEX_THRESHOLDS,
    CROWD_STAT_NAMES,
    MMPOSE_CROWD_STAT_NAMES,
    CrowdPoseCOCOeval,
    crowd_index_buckets,
)
from keras_pose.metrics.oks_nms import COCO_SIGMAS, oks_iou, oks_nms, resolve_sigmas, soft_oks_nms
from keras_pose.metrics.pck_metrics import (
    MPII_EXCLUDED_JOINTS,
    MPII_JOINT_GROUPS,
    auc,
    epe,
    normalized_distances,
    pck,
    pck_per_keypoint,
    pckh,
)

__all__ = [
    "COCO_SIGMAS",
    "CROWD_INDEX_THRESHOLDS",
    "CROWD_STAT_NAMES",
    "CocoKeypointEvaluator",
    "CrowdPoseCOCOeval",
    "MPII_EXCLUDED_JOINTS",
    "MMPOSE_CROWD_STAT_NAMES",
    "MPII_JOINT_GROUPS",
    "STAT_NAMES",
    "auc",
    "crowd_index_buckets",
    "epe",
    "make_topdown_results",
    "normalized_distances",
    "oks_iou",
    "oks_nms",
    "pck",
    "pck_per_keypoint",
    "pckh",
    "rescore_instances",
    "resolve_sigmas",
    "soft_oks_nms",
]
