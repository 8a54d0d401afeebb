"""The OpenPose BODY_25 keypoint spec (built-in ``"openpose_body25"``).

Facts from CMU-Perceptual-Computing-Lab/openpose: part order
(``poseParameters.cpp``, POSE_BODY_25_BODY_PARTS), the 26 part affinity
field limbs (POSE_BODY_PART_PAIRS of BODY_25) and the rendering colours
(``poseParametersRender.hpp``, POSE_BODY_25_COLORS_RENDER_GPU, one per
part). OpenPose colours a limb by its second part; the two shoulder-ear
limbs it does not draw (POSE_BODY_25_PAIRS_RENDER_GPU has 24 of the 26)
follow the same rule.

OKS sigmas: COCO's (pycocotools) matched by part name; the neck and the
mid-hip, which COCO lacks, take their neighbours' (shoulders' 0.079, hips'
0.107); the feet COCO-WholeBody's foot sigmas (big toe 0.068, small toe and
heel 0.066).
"""

BODY25_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
    "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe",
    "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
# The 26 PAF limbs (0-based part ids, A -> B) in POSE_BODY_PART_PAIRS order.
BODY25_LIMBS = (
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12), (12, 13),
    (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (2, 17), (5, 18), (14, 19), (19, 20), (14, 21),
    (11, 22), (22, 23), (11, 24),
)  # fmt: skip
# RGB, one per part (POSE_BODY_25_COLORS_RENDER_GPU).
BODY25_COLORS = (
    (255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (255, 0, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (255, 0, 170), (170, 0, 255), (255, 0, 255), (85, 0, 255), (0, 0, 255), (0, 0, 255),
    (0, 0, 255), (0, 255, 255), (0, 255, 255), (0, 255, 255),
)  # fmt: skip

_COCO_SIGMAS = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107, "left_knee": 0.087,
    "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
}  # fmt: skip
_EXTRA_SIGMAS = {"neck": 0.079, "mid_hip": 0.107, "big_toe": 0.068, "small_toe": 0.066, "heel": 0.066}


def _sigma(name):
    if name in _COCO_SIGMAS:
        return _COCO_SIGMAS[name]
    if name in _EXTRA_SIGMAS:
        return _EXTRA_SIGMAS[name]
    return _EXTRA_SIGMAS[name.split("_", 1)[1]]  # left_big_toe -> big_toe


def openpose_body25():
    """The `KeypointSpec` of OpenPose BODY_25: 25 parts, its 26 PAF limbs as skeleton."""
    from keras_pose.keypoints.keypoint_spec import KeypointSpec

    names = BODY25_NAMES
    lower = ("_hip", "_knee", "_ankle", "_toe", "_heel")
    return KeypointSpec(
        "openpose_body25",
        names,
        skeleton=[(names[a], names[b]) for a, b in BODY25_LIMBS],
        flip_pairs=[(n, "left_" + n[len("right_"):]) for n in names if n.startswith("right_")],
        sigmas=[_sigma(n) for n in names],
        keypoint_colors=BODY25_COLORS,
        limb_colors=[BODY25_COLORS[b] for _, b in BODY25_LIMBS],
        upper_body_names=[n for n in names if not n.endswith(lower)],
        description=(
            "OpenPose BODY_25 (CMU-Perceptual-Computing-Lab/openpose poseParameters.cpp): 25 parts, the 26 PAF "
            "limbs of POSE_BODY_PART_PAIRS as skeleton, POSE_BODY_25_COLORS_RENDER_GPU colours (a limb takes its "
            "second part's). OKS sigmas: COCO's by name; neck and mid-hip their neighbours'; feet "
            "COCO-WholeBody's foot sigmas."
        ),
    )


__all__ = ["BODY25_COLORS", "BODY25_LIMBS", "BODY25_NAMES", "openpose_body25"]
