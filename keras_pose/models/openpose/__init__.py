"""OpenPose (Cao et al., CVPR 2017 / TPAMI 2019): `OpenPoseBackbone`, the `OpenPose` task and its grouping."""

from keras_pose.models.openpose.openpose_backbone import OpenPoseBackbone
from keras_pose.models.openpose.openpose_layers import coco17_to_op18, op18_to_coco17
from keras_pose.models.openpose.openpose_pose_estimator import OpenPose

__all__ = ["OpenPose", "OpenPoseBackbone", "coco17_to_op18", "op18_to_coco17"]
