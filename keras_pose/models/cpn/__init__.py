"""CPN (Cascaded Pyramid Network): ResNet backbone, GlobalNet, RefineNet."""

from keras_pose.losses import CPNLoss  # re-exported; defined in keras_pose.losses
from keras_pose.models.cpn.cpn_backbone import CPNBackbone
from keras_pose.models.cpn.cpn_layers import AlignCornersResize
from keras_pose.models.cpn.cpn_pose_estimator import CPN
from keras_pose.models.cpn.cpn_pose_estimator import CPN_PREPROCESSING

__all__ = [
    "CPN",
    "CPNBackbone",
    "CPNLoss",
    "AlignCornersResize",
    "CPN_PREPROCESSING",
]
