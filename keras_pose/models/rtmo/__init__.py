"""RTMO (Lu et al., CVPR 2024), the one-stage family: network building blocks.

`CSPDarknetBackbone` (backbone), `HybridEncoder` (neck), `RTMOHeadModule`
(raw per-level head outputs), `DynamicCoordinateClassifier` (the DCC
keypoint decoder), `RTMONetwork` (all of them, sizes t / s / m / l from
`RTMO_SIZES`) and `decode_rtmo` (raw outputs -> boxes, scores, keypoints in
model-input pixels, with NMS, in `keras.ops`); the task `RTMO`
(`predict_keypoints` on whole images with the reference letterbox, in-graph
decoding `RTMODecoder`). Training: `RTMO.compile()` / `fit` on target dicts
(`rtmo_training`: SimOTA `rtmo_assigner`, the losses `rtmo_losses`, the
two-stage `RTMOModeSwitch`).
"""

from keras_pose.models.rtmo.rtmo_backbone import RTMO_SIZES, CSPDarknetBackbone
from keras_pose.models.rtmo.rtmo_dcc import DynamicCoordinateClassifier
from keras_pose.models.rtmo.rtmo_decoding import decode_rtmo
from keras_pose.models.rtmo.rtmo_head import HEAD_OUTPUTS, RTMOHeadModule
from keras_pose.models.rtmo.rtmo_neck import HybridEncoder
from keras_pose.models.rtmo.rtmo_network import RTMONetwork
from keras_pose.models.rtmo.rtmo_pose_estimator import RTMO, RTMODecoder
from keras_pose.models.rtmo.rtmo_training import RTMOLoss, RTMOModeSwitch, RTMOTrainingBranches, rtmo_optimizer

__all__ = [
    "CSPDarknetBackbone",
    "DynamicCoordinateClassifier",
    "HEAD_OUTPUTS",
    "HybridEncoder",
    "RTMO",
    "RTMODecoder",
    "RTMOLoss",
    "RTMOModeSwitch",
    "RTMOTrainingBranches",
    "RTMONetwork",
    "RTMOHeadModule",
    "RTMO_SIZES",
    "decode_rtmo",
    "rtmo_optimizer",
]
