"""Convolutional Pose Machines (CPM): `CPMBackbone` and the `CPM` task."""

from keras_pose.models.cpm.cpm_backbone import CPMBackbone
from keras_pose.models.cpm.cpm_layers import CPMCenterMap
from keras_pose.models.cpm.cpm_pose_estimator import CPM

__all__ = ["CPM", "CPMBackbone", "CPMCenterMap"]
