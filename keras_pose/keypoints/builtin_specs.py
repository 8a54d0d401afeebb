"""Built-in keypoint specs of the public pose datasets.

The facts (keypoint names and order, skeleton, flip pairs, OKS sigmas,
colours, upper/lower body split, joint weights) are those of the reference
toolbox, OpenMMLab's mmpose, `configs/_base_/datasets/<dataset>.py`
(checked against open-mmlab/mmpose at commit 759b39c, 2025-08-04), except
where a spec's `description` says otherwise (OpenPose's COCO-18 body model and
AP-10K's keypoint names). Each built-in is built once, on first use.

| name | K | source |
| --- | --- | --- |
| coco | 17 | mmpose coco.py (sigmas = pycocotools' COCO person sigmas) |
| mpii | 16 | mmpose mpii.py |
| aic | 14 | mmpose aic.py |
| crowdpose | 14 | mmpose crowdpose.py |
| ochuman | 17 | mmpose ochuman.py (= COCO) |
| coco_wholebody | 133 | mmpose coco_wholebody.py |
| openpose | 18 | OpenPose COCO-18 body model (pytorch-openpose limbs/colours) |
| openpose_body25 | 25 | OpenPose BODY_25 (`keras_pose.keypoints.openpose_specs`) |
| ap10k | 17 | mmpose ap10k.py, names as in AP-10K's annotation files |
| apt36k | 17 | same keypoints as AP-10K (ViTPose trains APT-36K with ap10k.py) |
| animalpose | 20 | mmpose animalpose.py |
"""

import difflib
import os
import re

from keras_pose.errors import KeypointSpecError
from keras_pose.keypoints.keypoint_spec import KeypointSpec
from keras_pose.keypoints.openpose_specs import openpose_body25

_MMPOSE = "open-mmlab/mmpose configs/_base_/datasets/{}.py (commit 759b39c)"

# mmpose's visualisation palette (RGB).
_BLUE = (51, 153, 255)
_GREEN = (0, 255, 0)
_ORANGE = (255, 128, 0)
_WHITE = (255, 255, 255)
_PINK = (255, 153, 255)
_SKY = (102, 178, 255)
_RED = (255, 51, 51)


def _mirror_pairs(names, prefix_a, prefix_b):
    """(a, b) pairs for names starting with prefix_a whose prefix_b twin exists."""
    present = set(names)
    out = []
    for n in names:
        if n.startswith(prefix_a):
            twin = prefix_b + n[len(prefix_a) :]
            if twin in present:
                out.append((n, twin))
    return out


# ----------------------------------------------------------------------------
# COCO person keypoints (17).
# ----------------------------------------------------------------------------

_COCO_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# Face points blue, then left green / right orange alternating.
_COCO_COLORS = (_BLUE,) * 5 + (_GREEN, _ORANGE) * 6
# (keypoint a, keypoint b, colour), in the order of COCO's category skeleton.
_COCO_LIMBS = (
    ("left_ankle", "left_knee", _GREEN),
    ("left_knee", "left_hip", _GREEN),
    ("right_ankle", "right_knee", _ORANGE),
    ("right_knee", "right_hip", _ORANGE),
    ("left_hip", "right_hip", _BLUE),
    ("left_shoulder", "left_hip", _BLUE),
    ("right_shoulder", "right_hip", _BLUE),
    ("left_shoulder", "right_shoulder", _BLUE),
    ("left_shoulder", "left_elbow", _GREEN),
    ("right_shoulder", "right_elbow", _ORANGE),
    ("left_elbow", "left_wrist", _GREEN),
    ("right_elbow", "right_wrist", _ORANGE),
    ("left_eye", "right_eye", _BLUE),
    ("nose", "left_eye", _BLUE),
    ("nose", "right_eye", _BLUE),
    ("left_eye", "left_ear", _BLUE),
    ("right_eye", "right_ear", _BLUE),
    ("left_ear", "left_shoulder", _BLUE),
    ("right_ear", "right_shoulder", _BLUE),
)
_COCO_FLIP = _mirror_pairs(_COCO_NAMES, "left_", "right_")
_COCO_UPPER = _COCO_NAMES[:11]  # nose .. right_wrist
_COCO_JOINT_WEIGHTS = (1.0,) * 7 + (1.2, 1.2, 1.5, 1.5) + (1.0, 1.0, 1.2, 1.2, 1.5, 1.5)
# COCO person OKS sigmas: pycocotools COCOeval.computeOks uses
# [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
# .89, .89] / 10.
_COCO_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip


def _coco_like(name, description):
    return KeypointSpec(
        name,
        _COCO_NAMES,
        skeleton=[(a, b) for a, b, _ in _COCO_LIMBS],
        flip_pairs=_COCO_FLIP,
        sigmas=_COCO_SIGMAS,
        keypoint_colors=_COCO_COLORS,
        limb_colors=[c for _, _, c in _COCO_LIMBS],
        upper_body_names=_COCO_UPPER,
        joint_weights=_COCO_JOINT_WEIGHTS,
        description=description,
    )


def _coco():
    return _coco_like(
        "coco",
        "MS COCO person keypoints (17). Names, order and 1-based skeleton as in "
        "the COCO person category; OKS sigmas as in pycocotools COCOeval; flip "
        "pairs, colours, upper/lower body split and joint weights from "
        + _MMPOSE.format("coco")
        + ".",
    )


def _ochuman():
    return _coco_like(
        "ochuman",
        "OCHuman (17 keypoints, identical to COCO's order, skeleton and sigmas; "
        "evaluated with COCO OKS). Facts from " + _MMPOSE.format("ochuman") + ".",
    )


# ----------------------------------------------------------------------------
# MPII (16).
# ----------------------------------------------------------------------------

_MPII_NAMES = (
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "pelvis",
    "thorax",
    "upper_neck",
    "head_top",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
)
_MPII_COLORS = (_ORANGE,) * 3 + (_GREEN,) * 3 + (_BLUE,) * 4 + (_ORANGE,) * 3 + (_GREEN,) * 3
_MPII_LIMBS = (
    ("right_ankle", "right_knee", _ORANGE),
    ("right_knee", "right_hip", _ORANGE),
    ("right_hip", "pelvis", _ORANGE),
    ("pelvis", "left_hip", _GREEN),
    ("left_hip", "left_knee", _GREEN),
    ("left_knee", "left_ankle", _GREEN),
    ("pelvis", "thorax", _BLUE),
    ("thorax", "upper_neck", _BLUE),
    ("upper_neck", "head_top", _BLUE),
    ("upper_neck", "right_shoulder", _ORANGE),
    ("right_shoulder", "right_elbow", _ORANGE),
    ("right_elbow", "right_wrist", _ORANGE),
    ("upper_neck", "left_shoulder", _GREEN),
    ("left_shoulder", "left_elbow", _GREEN),
    ("left_elbow", "left_wrist", _GREEN),
)
_MPII_SIGMAS = (
    0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026,
    0.026, 0.026, 0.062, 0.072, 0.179, 0.179, 0.072, 0.062,
)  # fmt: skip
_MPII_JOINT_WEIGHTS = (
    1.5, 1.2, 1.0, 1.0, 1.2, 1.5, 1.0, 1.0, 1.0, 1.0, 1.5, 1.2, 1.0, 1.0, 1.2, 1.5,
)  # fmt: skip


def _mpii():
    return KeypointSpec(
        "mpii",
        _MPII_NAMES,
        skeleton=[(a, b) for a, b, _ in _MPII_LIMBS],
        flip_pairs=_mirror_pairs(_MPII_NAMES, "right_", "left_"),
        sigmas=_MPII_SIGMAS,
        keypoint_colors=_MPII_COLORS,
        limb_colors=[c for _, _, c in _MPII_LIMBS],
        upper_body_names=_MPII_NAMES[7:],  # thorax .. left_wrist
        joint_weights=_MPII_JOINT_WEIGHTS,
        description=(
            "MPII Human Pose (16 keypoints, MPII joint order 0..15). All facts from "
            + _MMPOSE.format("mpii")
            + ". MPII is evaluated with PCKh, which does not use the sigmas; they "
            "are mmpose's (for OKS-based tools only)."
        ),
    )


# ----------------------------------------------------------------------------
# AI Challenger (14).
# ----------------------------------------------------------------------------

_AIC_NAMES = (
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "head_top",
    "neck",
)
_AIC_COLORS = ((_ORANGE,) * 3 + (_GREEN,) * 3) * 2 + (_BLUE, _BLUE)
_AIC_LIMBS = (
    ("right_wrist", "right_elbow", _ORANGE),
    ("right_elbow", "right_shoulder", _ORANGE),
    ("right_shoulder", "neck", _BLUE),
    ("neck", "left_shoulder", _BLUE),
    ("left_shoulder", "left_elbow", _GREEN),
    ("left_elbow", "left_wrist", _GREEN),
    ("right_ankle", "right_knee", _ORANGE),
    ("right_knee", "right_hip", _ORANGE),
    ("right_hip", "left_hip", _BLUE),
    ("left_hip", "left_knee", _GREEN),
    ("left_knee", "left_ankle", _GREEN),
    ("head_top", "neck", _BLUE),
    ("right_shoulder", "right_hip", _BLUE),
    ("left_shoulder", "left_hip", _BLUE),
)
_AIC_SIGMAS = (
    0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642,
    0.03686941, 0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173,
)  # fmt: skip


def _aic():
    return KeypointSpec(
        "aic",
        _AIC_NAMES,
        skeleton=[(a, b) for a, b, _ in _AIC_LIMBS],
        flip_pairs=_mirror_pairs(_AIC_NAMES, "right_", "left_"),
        sigmas=_AIC_SIGMAS,
        keypoint_colors=_AIC_COLORS,
        limb_colors=[c for _, _, c in _AIC_LIMBS],
        upper_body_names=_AIC_NAMES[:6] + ("head_top", "neck"),
        joint_weights=(1.0, 1.2, 1.5) * 4 + (1.0, 1.0),
        description=(
            "AI Challenger human keypoints (14), in the dataset's order (its "
            "annotation files spell the names 'Right Shoulder', ..., 'Head top', "
            "'Neck'). All facts, including the AIC OKS sigmas, from "
            + _MMPOSE.format("aic")
            + "."
        ),
    )


# ----------------------------------------------------------------------------
# CrowdPose (14).
# ----------------------------------------------------------------------------

_CROWDPOSE_NAMES = _COCO_NAMES[5:] + ("top_head", "neck")
# mmpose's CrowdPose colours (as published there; not the left/right scheme).
_CROWDPOSE_COLORS = (_BLUE,) * 5 + (_GREEN, _ORANGE) * 4 + (_GREEN,)
_CROWDPOSE_LIMBS = _COCO_LIMBS[:12] + (
    ("top_head", "neck", _BLUE),
    ("right_shoulder", "neck", _BLUE),
    ("left_shoulder", "neck", _BLUE),
)
_CROWDPOSE_SIGMAS = (
    0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107,
    0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079,
)  # fmt: skip
_CROWDPOSE_JOINT_WEIGHTS = (
    0.2, 0.2, 0.2, 1.3, 1.5, 0.2, 1.3, 1.5, 0.2, 0.2, 0.5, 0.2, 0.2, 0.5,
)  # fmt: skip


def _crowdpose():
    return KeypointSpec(
        "crowdpose",
        _CROWDPOSE_NAMES,
        skeleton=[(a, b) for a, b, _ in _CROWDPOSE_LIMBS],
        flip_pairs=_mirror_pairs(_CROWDPOSE_NAMES, "left_", "right_"),
        sigmas=_CROWDPOSE_SIGMAS,
        keypoint_colors=_CROWDPOSE_COLORS,
        limb_colors=[c for _, _, c in _CROWDPOSE_LIMBS],
        upper_body_names=_CROWDPOSE_NAMES[:6] + ("top_head", "neck"),
        joint_weights=_CROWDPOSE_JOINT_WEIGHTS,
        description=(
            "CrowdPose (14 keypoints: COCO's 12 limb joints + top of head + "
            "neck; the dataset's files call the 13th keypoint 'head'). All facts "
            "(sigmas, colours, joint weights as published) from "
            + _MMPOSE.format("crowdpose")
            + "."
        ),
    )


# ----------------------------------------------------------------------------
# COCO-WholeBody (133 = body 17 + feet 6 + face 68 + left hand 21 + right hand 21).
# ----------------------------------------------------------------------------

_FEET_NAMES = (
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)
_FACE_NAMES = tuple(f"face-{i}" for i in range(68))
# Mirror pairs of the 68-point (iBUG/300-W) face, as face-point numbers:
# jaw, brows, nose wings, eyes, outer lips, inner lips. Unpaired: 8 (chin),
# 27-30 (nose bridge), 33, 51, 57, 62, 66.
_FACE_FLIP = (
    [(i, 16 - i) for i in range(8)]
    + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]
    + [(60, 64), (61, 63), (65, 67)]
)
_FINGERS = (
    ("thumb", _ORANGE),
    ("forefinger", _PINK),
    ("middle_finger", _SKY),
    ("ring_finger", _RED),
    ("pinky_finger", _GREEN),
)


def _hand_names(side):
    names = [f"{side}_hand_root"]
    for finger, _ in _FINGERS:
        names += [f"{side}_{finger}{j}" for j in range(1, 5)]
    return tuple(names)


def _hand_colors():
    colors = [_WHITE]
    for _, c in _FINGERS:
        colors += [c] * 4
    return tuple(colors)


def _hand_limbs(side):
    limbs = []
    for finger, c in _FINGERS:
        chain = [f"{side}_hand_root"] + [f"{side}_{finger}{j}" for j in range(1, 5)]
        limbs += [(a, b, c) for a, b in zip(chain[:-1], chain[1:])]
    return tuple(limbs)


_FEET_SIGMAS = (0.068, 0.066, 0.066, 0.092, 0.094, 0.094)
_FACE_SIGMAS = (
    0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023,
    0.029, 0.032, 0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011,
    0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015, 0.009, 0.007, 0.007,
    0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011,
    0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008,
    0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007,
    0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.010, 0.008,
)  # fmt: skip
# Same sigmas for the left and the right hand.
_HAND_SIGMAS = (
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
    0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.020, 0.019, 0.022, 0.031,
)  # fmt: skip


def _coco_wholebody():
    left_hand, right_hand = _hand_names("left"), _hand_names("right")
    names = _COCO_NAMES + _FEET_NAMES + _FACE_NAMES + left_hand + right_hand
    limbs = (
        _COCO_LIMBS
        + tuple((f"{s}_ankle", f"{s}_{p}", c)
                for s, c in (("left", _GREEN), ("right", _ORANGE))
                for p in ("big_toe", "small_toe", "heel"))
        + _hand_limbs("left")
        + _hand_limbs("right")
    )  # fmt: skip
    flip = (
        _COCO_FLIP
        + _mirror_pairs(_FEET_NAMES, "left_", "right_")
        + [(_FACE_NAMES[a], _FACE_NAMES[b]) for a, b in _FACE_FLIP]
        + list(zip(left_hand, right_hand))
    )
    return KeypointSpec(
        "coco_wholebody",
        names,
        skeleton=[(a, b) for a, b, _ in limbs],
        flip_pairs=flip,
        sigmas=_COCO_SIGMAS + _FEET_SIGMAS + _FACE_SIGMAS + _HAND_SIGMAS * 2,
        keypoint_colors=_COCO_COLORS + (_ORANGE,) * 6 + (_WHITE,) * 68 + _hand_colors() * 2,
        limb_colors=[c for _, _, c in limbs],
        upper_body_names=_COCO_UPPER,
        lower_body_names=_COCO_NAMES[11:] + _FEET_NAMES,
        joint_weights=None,
        description=(
            "COCO-WholeBody (133 keypoints: body 0-16 in COCO order, feet 17-22, "
            "face 23-90 (68-point face, 'face-0'..'face-67'), left hand 91-111, "
            "right hand 112-132). Sigmas are COCO-WholeBody's evaluation sigmas "
            "(jin-s13/COCO-WholeBody myeval_wholebody.py). All facts from "
            + _MMPOSE.format("coco_wholebody")
            + "; joint weights all 1.0. Upper body = COCO upper body, lower "
            "body = COCO lower body + feet; face and hands are in neither half, "
            "as in mmpose."
        ),
    )


# ----------------------------------------------------------------------------
# OpenPose COCO-18 body model.
# ----------------------------------------------------------------------------

_OPENPOSE_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
# OpenPose's rendering colours, one per keypoint (RGB).
_OPENPOSE_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
# The 19 limbs (part affinity fields) of the body model, pytorch-openpose's
# limbSeq order, as 0-based keypoint indices.
_OPENPOSE_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)  # fmt: skip


def _openpose():
    coco_sigma = dict(zip(_COCO_NAMES, _COCO_SIGMAS))
    coco_sigma["neck"] = (coco_sigma["left_shoulder"] + coco_sigma["right_shoulder"]) / 2
    names = _OPENPOSE_NAMES
    # Limb i is drawn with colour i (pytorch-openpose draws limbs 0..16); the
    # two ear-shoulder limbs, which OpenPose does not draw, take the colour of
    # their ear keypoint (OpenPose colours a limb by its second keypoint).
    limb_colors = [_OPENPOSE_COLORS[i] for i in range(17)] + [
        _OPENPOSE_COLORS[names.index("right_ear")],
        _OPENPOSE_COLORS[names.index("left_ear")],
    ]
    return KeypointSpec(
        "openpose",
        names,
        skeleton=[(names[i], names[j]) for i, j in _OPENPOSE_LIMBS],
        flip_pairs=_mirror_pairs(names, "right_", "left_"),
        sigmas=[coco_sigma[n] for n in names],
        keypoint_colors=_OPENPOSE_COLORS,
        limb_colors=limb_colors,
        upper_body_names=[n for n in names if not n.endswith(("_hip", "_knee", "_ankle"))],
        joint_weights=None,
        description=(
            "OpenPose COCO-18 body model (CMU-Perceptual-Computing-Lab/openpose "
            "POSE_COCO): keypoint order and rendering colours of OpenPose, the "
            "19 limbs of its part affinity fields in pytorch-openpose's limbSeq "
            "order (Hzzone/pytorch-openpose src/util.py); names spelled as in "
            + _MMPOSE.format("coco_openpose")
            + ". OKS sigmas are COCO's mapped by keypoint name; the neck, which "
            "COCO lacks, gets the mean of the two shoulder sigmas (0.079). Limbs "
            "17-18 (shoulder-ear), not drawn by OpenPose, take their ear's colour. "
            "Upper/lower body split as in mmpose coco_openpose.py; joint weights "
            "all 1.0."
        ),
    )


# ----------------------------------------------------------------------------
# AP-10K / APT-36K animals (17).
# ----------------------------------------------------------------------------

# Names as spelled in the AP-10K annotation files (mmpose's display names, in
# the same order: L_Eye, R_Eye, Nose, Neck, Root of tail, L_Shoulder, L_Elbow,
# L_F_Paw, R_Shoulder, R_Elbow, R_F_Paw, L_Hip, L_Knee, L_B_Paw, R_Hip, R_Knee,
# R_B_Paw).
_AP10K_NAMES = (
    "left_eye",
    "right_eye",
    "nose",
    "neck",
    "root_of_tail",
    "left_shoulder",
    "left_elbow",
    "left_front_paw",
    "right_shoulder",
    "right_elbow",
    "right_front_paw",
    "left_hip",
    "left_knee",
    "left_back_paw",
    "right_hip",
    "right_knee",
    "right_back_paw",
)
# mmpose's AP-10K keypoint colours, as published.
_AP10K_COLORS = (
    _GREEN, _ORANGE, _BLUE, _BLUE, _BLUE, _BLUE, _BLUE, _GREEN, _GREEN,
    _ORANGE, _GREEN, _ORANGE, _ORANGE, _GREEN, _GREEN, _GREEN, _GREEN,
)  # fmt: skip
_AP10K_LIMBS = (
    ("left_eye", "right_eye", (0, 0, 255)),
    ("left_eye", "nose", (0, 0, 255)),
    ("right_eye", "nose", (0, 0, 255)),
    ("nose", "neck", (0, 255, 0)),
    ("neck", "root_of_tail", (0, 255, 0)),
    ("neck", "left_shoulder", (0, 255, 255)),
    ("left_shoulder", "left_elbow", (0, 255, 255)),
    ("left_elbow", "left_front_paw", (0, 255, 255)),
    ("neck", "right_shoulder", (6, 156, 250)),
    ("right_shoulder", "right_elbow", (6, 156, 250)),
    ("right_elbow", "right_front_paw", (6, 156, 250)),
    ("root_of_tail", "left_hip", (0, 255, 255)),
    ("left_hip", "left_knee", (0, 255, 255)),
    ("left_knee", "left_back_paw", (0, 255, 255)),
    ("root_of_tail", "right_hip", (6, 156, 250)),
    ("right_hip", "right_knee", (6, 156, 250)),
    ("right_knee", "right_back_paw", (6, 156, 250)),
)
# mmpose marks right_front_paw as 'lower' (left_front_paw is 'upper'); kept as
# published so half-body augmentation matches the reference.
_AP10K_UPPER = (
    "left_eye",
    "right_eye",
    "nose",
    "neck",
    "left_shoulder",
    "left_elbow",
    "left_front_paw",
    "right_shoulder",
    "right_elbow",
)
_AP10K_SIGMAS = (
    0.025, 0.025, 0.026, 0.035, 0.035, 0.079, 0.072, 0.062, 0.079,
    0.072, 0.062, 0.107, 0.087, 0.089, 0.107, 0.087, 0.089,
)  # fmt: skip


def _ap10k_like(name, description):
    return KeypointSpec(
        name,
        _AP10K_NAMES,
        skeleton=[(a, b) for a, b, _ in _AP10K_LIMBS],
        flip_pairs=_mirror_pairs(_AP10K_NAMES, "left_", "right_"),
        sigmas=_AP10K_SIGMAS,
        keypoint_colors=_AP10K_COLORS,
        limb_colors=[c for _, _, c in _AP10K_LIMBS],
        upper_body_names=_AP10K_UPPER,
        joint_weights=_COCO_JOINT_WEIGHTS,
        description=description,
    )


_AP10K_SOURCE = (
    "Names as spelled in the AP-10K annotation files (mmpose displays them as "
    "L_Eye, R_Eye, Nose, Neck, Root of tail, L_Shoulder, L_Elbow, L_F_Paw, "
    "R_Shoulder, R_Elbow, R_F_Paw, L_Hip, L_Knee, L_B_Paw, R_Hip, R_Knee, "
    "R_B_Paw; same order). Order, skeleton (= the annotation files' 1-based "
    "skeleton), flip pairs, sigmas, colours, joint weights and the upper/lower "
    "split (right_front_paw is 'lower' there, kept) from "
    + _MMPOSE.format("ap10k")
    + "."
)


def _ap10k():
    return _ap10k_like(
        "ap10k", "AP-10K animal pose (17 keypoints, 54 species). " + _AP10K_SOURCE
    )


def _apt36k():
    return _ap10k_like(
        "apt36k",
        "APT-36K animal pose and tracking (17 keypoints, the same keypoint "
        "definition as AP-10K; ViTPose's apt36k configs use mmpose's ap10k.py "
        "dataset info). " + _AP10K_SOURCE,
    )


# ----------------------------------------------------------------------------
# Animal-Pose (20).
# ----------------------------------------------------------------------------

_ANIMALPOSE_NAMES = (
    "L_Eye",
    "R_Eye",
    "L_EarBase",
    "R_EarBase",
    "Nose",
    "Throat",
    "TailBase",
    "Withers",
    "L_F_Elbow",
    "R_F_Elbow",
    "L_B_Elbow",
    "R_B_Elbow",
    "L_F_Knee",
    "R_F_Knee",
    "L_B_Knee",
    "R_B_Knee",
    "L_F_Paw",
    "R_F_Paw",
    "L_B_Paw",
    "R_B_Paw",
)
_ANIMALPOSE_COLORS = (_GREEN, _ORANGE) * 2 + (_BLUE,) * 4 + (_GREEN, _ORANGE) * 6
_ANIMALPOSE_LIMBS = (
    ("L_Eye", "R_Eye", _BLUE),
    ("L_Eye", "L_EarBase", _GREEN),
    ("R_Eye", "R_EarBase", _ORANGE),
    ("L_Eye", "Nose", _GREEN),
    ("R_Eye", "Nose", _ORANGE),
    ("Nose", "Throat", _BLUE),
    ("Throat", "Withers", _BLUE),
    ("TailBase", "Withers", _BLUE),
    ("Throat", "L_F_Elbow", _GREEN),
    ("L_F_Elbow", "L_F_Knee", _GREEN),
    ("L_F_Knee", "L_F_Paw", _GREEN),
    ("Throat", "R_F_Elbow", _ORANGE),
    ("R_F_Elbow", "R_F_Knee", _ORANGE),
    ("R_F_Knee", "R_F_Paw", _ORANGE),
    ("TailBase", "L_B_Elbow", _GREEN),
    ("L_B_Elbow", "L_B_Knee", _GREEN),
    ("L_B_Knee", "L_B_Paw", _GREEN),
    ("TailBase", "R_B_Elbow", _ORANGE),
    ("R_B_Elbow", "R_B_Knee", _ORANGE),
    ("R_B_Knee", "R_B_Paw", _ORANGE),
)
_ANIMALPOSE_SIGMAS = (
    0.025, 0.025, 0.026, 0.035, 0.035, 0.10, 0.10, 0.10, 0.107, 0.107,
    0.107, 0.107, 0.087, 0.087, 0.087, 0.087, 0.089, 0.089, 0.089, 0.089,
)  # fmt: skip


def _animalpose():
    names = _ANIMALPOSE_NAMES
    return KeypointSpec(
        "animalpose",
        names,
        skeleton=[(a, b) for a, b, _ in _ANIMALPOSE_LIMBS],
        flip_pairs=_mirror_pairs(names, "L_", "R_"),
        sigmas=_ANIMALPOSE_SIGMAS,
        keypoint_colors=_ANIMALPOSE_COLORS,
        limb_colors=[c for _, _, c in _ANIMALPOSE_LIMBS],
        upper_body_names=[
            n for n in names if not (n == "TailBase" or n.startswith(("L_B_", "R_B_")))
        ],
        joint_weights=(1.0,) * 12 + (1.2,) * 4 + (1.5,) * 4,
        description=(
            "Animal-Pose (20 keypoints, 5 species), names as in its annotation "
            "files. All facts from "
            + _MMPOSE.format("animalpose")
            + " (its sigmas are used as published, including the unequal "
            "L_EarBase 0.026 / R_EarBase 0.035)."
        ),
    )


# ----------------------------------------------------------------------------
# Registry.
# ----------------------------------------------------------------------------

_BUILDERS = {
    "coco": _coco,
    "mpii": _mpii,
    "aic": _aic,
    "crowdpose": _crowdpose,
    "ochuman": _ochuman,
    "coco_wholebody": _coco_wholebody,
    "openpose": _openpose,
    "openpose_body25": openpose_body25,
    "ap10k": _ap10k,
    "apt36k": _apt36k,
    "animalpose": _animalpose,
}

# Alternative spellings, compared after lower-casing and removing everything
# but letters and digits ("COCO-WholeBody" -> "cocowholebody").
_ALIASES = {
    "coco17": "coco",
    "cocobody": "coco",
    "mscoco": "coco",
    "mpii16": "mpii",
    "aichallenger": "aic",
    "aic14": "aic",
    "crowdpose14": "crowdpose",
    "ochuman17": "ochuman",
    "wholebody": "coco_wholebody",
    "cocowholebody133": "coco_wholebody",
    "coco133": "coco_wholebody",
    "wholebody133": "coco_wholebody",
    "coco18": "openpose",
    "cocoopenpose": "openpose",
    "openpose18": "openpose",
    "openposecoco": "openpose",
    "openposebody": "openpose",
    "body25": "openpose_body25",
    "openpose25": "openpose_body25",
    "ap10k17": "ap10k",
    "apt36k17": "apt36k",
    "animalpose20": "animalpose",
}

_CACHE = {}


def _key(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


_LOOKUP = {_key(n): n for n in _BUILDERS}
_LOOKUP.update(_ALIASES)


def list_keypoint_specs():
    """Names of the built-in keypoint specs (sorted)."""
    return sorted(_BUILDERS)


def builtin_keypoint_spec(name):
    """The built-in spec called `name` (case-insensitive; aliases allowed).

    Raises:
        KeypointSpecError: unknown name (the message suggests close matches).
    """
    canonical = _LOOKUP.get(_key(name))
    if canonical is None:
        candidates = sorted(set(_BUILDERS) | set(_ALIASES))
        close = difflib.get_close_matches(name.lower(), candidates, n=3, cutoff=0.5)
        close = sorted({_LOOKUP.get(_key(c), c) for c in close})
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeypointSpecError(
            f"Unknown keypoint spec {name!r}.{hint} Built-in specs: "
            f"{', '.join(list_keypoint_specs())}. You can also pass a KeypointSpec, "
            "a config dict, or a path to a .json/.yaml spec file."
        )
    if canonical not in _CACHE:
        _CACHE[canonical] = _BUILDERS[canonical]()
    return _CACHE[canonical]


def get_keypoint_spec(spec):
    """Resolve `spec` to a `KeypointSpec`.

    Args:
        spec: a `KeypointSpec` (returned as is); a built-in name such as
            "coco", "COCO17", "coco-wholebody" (case-insensitive, see
            `list_keypoint_specs()`); a config dict (`KeypointSpec.get_config()`
            output); or a path (str or os.PathLike) to a .json/.yaml/.yml spec
            file or COCO annotation file.

    Returns:
        KeypointSpec.

    Raises:
        KeypointSpecError: unknown name, malformed dict or file.
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(spec, KeypointSpec):
        return spec
    if isinstance(spec, dict):
        return KeypointSpec.from_config(spec)
    if isinstance(spec, os.PathLike):
        return KeypointSpec.from_file(spec)
    if isinstance(spec, str):
        if _key(spec) in _LOOKUP:
            return builtin_keypoint_spec(spec)
        looks_like_path = (
            spec.lower().endswith((".json", ".yaml", ".yml"))
            or os.sep in spec
            or "/" in spec
            or os.path.isfile(spec)
        )
        if looks_like_path:
            return KeypointSpec.from_file(spec)
        return builtin_keypoint_spec(spec)
    raise KeypointSpecError(
        f"Cannot make a KeypointSpec from {type(spec).__name__} {spec!r}. Pass a "
        "KeypointSpec, a built-in name (see list_keypoint_specs()), a config "
        "dict, or a path to a .json/.yaml file."
    )
