"""Model families. Importing this package registers every task class."""

from keras_pose.models.cpm import CPM, CPMBackbone
from keras_pose.models.cpn import CPN, CPNBackbone
from keras_pose.models.hourglass import Hourglass, HourglassBackbone
from keras_pose.models.openpose import OpenPose, OpenPoseBackbone
from keras_pose.models import rtmo  # noqa: F401 - registers the RTMO building blocks (no task yet)
from keras_pose.models.one_stage_pose_estimator import OneStagePoseEstimator
from keras_pose.models.rtmo import RTMO, RTMONetwork
from keras_pose.models.pose_estimator import PoseEstimator
from keras_pose.models.top_down_pose_estimator import TopDownPoseEstimator
from keras_pose.models.vitpose import ViTPose, ViTPoseBackbone, ViTPosePP

__all__ = [
    "CPM",
    "CPMBackbone",
    "CPN",
    "CPNBackbone",
    "Hourglass",
    "HourglassBackbone",
    "OneStagePoseEstimator",
    "OpenPose",
    "OpenPoseBackbone",
    "PoseEstimator",
    "RTMO",
    "RTMONetwork",
    "TopDownPoseEstimator",
    "ViTPose",
    "ViTPoseBackbone",
    "ViTPosePP",
]
