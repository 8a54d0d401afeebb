"""Stacked Hourglass networks: `HourglassBackbone` and the `Hourglass` task."""

from keras_pose.models.hourglass.hourglass_backbone import HOURGLASS52
from keras_pose.models.hourglass.hourglass_backbone import HourglassBackbone
from keras_pose.models.hourglass.hourglass_pose_estimator import Hourglass

__all__ = ["HOURGLASS52", "Hourglass", "HourglassBackbone"]
