"""Constants and small helpers of the OpenPose family (Cao et al., CVPR 2017 / TPAMI 2019).

Keypoint orders, limb (PAF) definitions and the OpenPose-18 <-> COCO-17
mapping. Facts from CMU-Perceptual-Computing-Lab/openpose
(`poseParameters.cpp`: POSE_BODY_PART_PAIRS, POSE_MAP_INDEX) and
Hzzone/pytorch-openpose `src/body.py` (limbSeq, mapIdx).
"""

import numpy as np

from keras_pose.keypoints.openpose_specs import BODY25_LIMBS, BODY25_NAMES

OPENPOSE_STRIDE = 8

# OpenPose COCO-18 body parts (heatmap channels 0..17; channel 18 = background).
COCO18_PARTS = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
# Limbs of the COCO-18 model in the reference grouping order (0-based part ids, A -> B).
COCO18_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
    (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)
# PAF channels (x, y) of each limb within the 38 PAF channels.
COCO18_PAF_CHANNELS = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5), (6, 7),
    (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27),
)

BODY25_PARTS = BODY25_NAMES
_BODY25_MAP = (0, 1, 14, 15, 22, 23, 16, 17, 18, 19, 24, 25, 26, 27, 6, 7, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13,
               30, 31, 32, 33, 36, 37, 34, 35, 38, 39, 20, 21, 28, 29, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,
               50, 51)
BODY25_PAF_CHANNELS = tuple(zip(_BODY25_MAP[0::2], _BODY25_MAP[1::2]))

# COCO-17 keypoint k is OpenPose-18 part COCO17_TO_OP18[k] (the neck has no COCO counterpart).
COCO17_TO_OP18 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)


def op18_to_coco17(keypoints, scores=None):
    """OpenPose-18 keypoints -> COCO-17 (drops the neck).

    Args:
        keypoints: ``(..., 18, D)`` array (D = 2 or 3), OpenPose-18 order.
        scores: optional ``(..., 18)`` array.

    Returns:
        ``(..., 17, D)`` keypoints (and ``(..., 17)`` scores when given).
    """
    keypoints = np.asarray(keypoints)
    if keypoints.shape[-2] != 18:
        raise ValueError(f"OpenPose-18 keypoints have 18 parts on axis -2, got shape {keypoints.shape}.")
    index = np.asarray(COCO17_TO_OP18)
    out = keypoints[..., index, :]
    if scores is None:
        return out
    return out, np.asarray(scores)[..., index]


def coco17_to_op18(keypoints, visible=None):
    """COCO-17 keypoints ``(..., 17, D)`` -> OpenPose-18 ``(..., 18, D)``.

    The neck (part 1) is the mean of the two shoulders where both are
    visible (``visible`` ``(..., 17)`` > 0, or all visible when None), and
    zero otherwise; a ``D = 3`` array's third column (visibility) is set to
    the smaller of the two shoulders' values for the neck.
    """
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.shape[-2] != 17:
        raise ValueError(f"COCO-17 keypoints have 17 parts on axis -2, got shape {keypoints.shape}.")
    out = np.zeros(keypoints.shape[:-2] + (18, keypoints.shape[-1]), np.float64)
    out[..., np.asarray(COCO17_TO_OP18), :] = keypoints
    if visible is None:
        visible = keypoints[..., 2] if keypoints.shape[-1] == 3 else np.ones(keypoints.shape[:-1])
    visible = np.asarray(visible)
    both = (visible[..., 5] > 0) & (visible[..., 6] > 0)
    neck = (keypoints[..., 5, :] + keypoints[..., 6, :]) / 2.0
    if keypoints.shape[-1] == 3:
        neck[..., 2] = np.minimum(keypoints[..., 5, 2], keypoints[..., 6, 2])
    out[..., 1, :] = np.where(both[..., None], neck, 0.0)
    return out


def body25_keypoint_spec():
    """The `KeypointSpec` of OpenPose BODY_25: the built-in ``"openpose_body25"`` (`keras_pose.keypoints.openpose_specs`)."""
    from keras_pose.keypoints import get_keypoint_spec

    return get_keypoint_spec("openpose_body25")


def resolve_limbs(spec, num_pafs, limbs=None, paf_channels=None):
    """``(limbs, paf_channels)`` of a model: given, the released variant's, or the spec's skeleton.

    Args:
        spec: the `KeypointSpec` of the heatmaps.
        num_pafs: PAF channels of the network (2 per limb).
        limbs: ``[(part_a, part_b), ...]`` or None.
        paf_channels: ``[(x_channel, y_channel), ...]`` or None.

    Raises:
        ValueError: the limb count does not match ``num_pafs / 2``, or a
            channel / part index is out of range.
    """
    k = spec.num_keypoints
    if limbs is None:
        if k == 18 and num_pafs == 2 * len(COCO18_LIMBS):
            limbs, paf_channels = COCO18_LIMBS, paf_channels or COCO18_PAF_CHANNELS
        elif k == 25 and num_pafs == 2 * len(BODY25_LIMBS):
            limbs, paf_channels = BODY25_LIMBS, paf_channels or BODY25_PAF_CHANNELS
        else:
            limbs = [tuple(pair) for pair in spec.skeleton_indices]
    limbs = [tuple(int(v) for v in pair) for pair in limbs]
    if paf_channels is None:
        paf_channels = [(2 * i, 2 * i + 1) for i in range(len(limbs))]
    paf_channels = [tuple(int(v) for v in pair) for pair in paf_channels]
    if 2 * len(limbs) != num_pafs or len(paf_channels) != len(limbs):
        raise ValueError(f"The network has {num_pafs} PAF channels (2 per limb) but {len(limbs)} limbs and "
                         f"{len(paf_channels)} channel pairs were given; give one limb per PAF channel pair.")
    if any(not 0 <= v < k for pair in limbs for v in pair) or any(not 0 <= c < num_pafs for p in paf_channels
                                                                   for c in p):
        raise ValueError(f"Limb parts must be in [0, {k}) and PAF channels in [0, {num_pafs}); got {limbs}, "
                         f"{paf_channels}.")
    return limbs, paf_channels
