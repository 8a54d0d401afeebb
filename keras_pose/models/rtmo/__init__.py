"""RTMO (Lu et al., CVPR 2024), the one-stage family: network building blocks.

`CSPDarknetBackbone` (backbone), `HybridEncoder` (neck), `RTMOHeadModule`
(raw per-level head outputs) and `RTMONetwork` (the three chained, sizes
t / s / m / l from `RTMO_SIZES`). The task (`predict_keypoints` with box
decoding, NMS and the DCC keypoint decoder) is not part of keras-pose yet.
"""

from keras_pose.models.rtmo.rtmo_backbone import RTMO_SIZES, CSPDarknetBackbone
from keras_pose.models.rtmo.rtmo_head import HEAD_OUTPUTS, RTMOHeadModule
from keras_pose.models.rtmo.rtmo_neck import HybridEncoder
from keras_pose.models.rtmo.rtmo_network import RTMONetwork

__all__ = ["CSPDarknetBackbone", "HEAD_OUTPUTS", "HybridEncoder", "RTMONetwork", "RTMOHeadModule", "RTMO_SIZES"]
