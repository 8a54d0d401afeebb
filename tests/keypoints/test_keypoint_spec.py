"""Tests of keras_pose.keypoints: KeypointSpec validation, serialisation, built-ins."""

import json

import numpy as np
import pytest
from pose_testing.paths import DATA_DIR

from keras_pose.errors import KeypointSpecError
from keras_pose.keypoints import KeypointSpec
from keras_pose.keypoints import get_keypoint_spec
from keras_pose.keypoints import infer_flip_pairs
from keras_pose.keypoints import list_keypoint_specs

EXPECTED_COUNTS = {
    "coco": 17,
    "mpii": 16,
    "aic": 14,
    "ap10k": 17,
    "apt36k": 17,
    "crowdpose": 14,
    "coco_wholebody": 133,
    "openpose": 18,
    "openpose_body25": 25,
    "animalpose": 20,
    "ochuman": 17,
}

COCO_SIGMAS = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
]  # fmt: skip


def _coco_category(path):
    with open(path) as f:
        return json.load(f)["categories"]


def _small(**overrides):
    kwargs = dict(
        name="toy",
        keypoint_names=["nose", "left_eye", "right_eye", "left_hip", "right_hip"],
        skeleton=[("nose", "left_eye"), ("nose", "right_eye"), ("left_hip", "right_hip")],
        flip_pairs=[("left_eye", "right_eye"), ("left_hip", "right_hip")],
    )
    kwargs.update(overrides)
    return KeypointSpec(**kwargs)


# -- built-ins -----------------------------------------------------------------


def test_list_keypoint_specs():
    assert list_keypoint_specs() == sorted(EXPECTED_COUNTS)


@pytest.mark.parametrize("name,count", sorted(EXPECTED_COUNTS.items()))
def test_builtin_counts_and_shapes(name, count):
    spec = get_keypoint_spec(name)
    assert spec.name == name
    assert spec.num_keypoints == count
    assert len(spec.keypoint_names) == count
    assert spec.keypoint_colors.shape == (count, 3)
    assert spec.keypoint_colors.dtype == np.uint8
    assert spec.limb_colors.shape == (spec.num_limbs, 3)
    assert spec.joint_weights.shape == (count,)
    assert spec.joint_weights.dtype == np.float32
    assert spec.sigmas.shape == (count,) and spec.sigmas.dtype == np.float32
    assert np.all(spec.sigmas > 0)
    assert "mmpose" in spec.description or "openpose" in spec.description.lower()
    # Body split: disjoint, sorted, in range.
    upper, lower = spec.upper_body_indices, spec.lower_body_indices
    assert upper and lower and not set(upper) & set(lower)
    assert max(upper + lower) < count


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_builtin_flip_indices_are_an_involution(name):
    spec = get_keypoint_spec(name)
    flip = spec.flip_indices
    assert sorted(flip) == list(range(spec.num_keypoints))
    assert [flip[flip[i]] for i in range(spec.num_keypoints)] == list(range(spec.num_keypoints))
    # Every pair swaps, every unpaired keypoint is fixed.
    paired = {i for pair in spec.flip_pair_indices for i in pair}
    for i, j in enumerate(flip):
        assert (i != j) == (i in paired)


def test_coco_facts():
    spec = get_keypoint_spec("coco")
    assert spec.flip_indices == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    np.testing.assert_array_equal(spec.sigmas, np.asarray(COCO_SIGMAS, np.float32))
    assert spec.keypoint_names[0] == "nose" and spec.keypoint_names[16] == "right_ankle"
    assert spec.num_limbs == 19
    assert spec.skeleton_indices[0] == (15, 13)  # COCO's [16, 14], 1-based
    assert spec.upper_body_indices == list(range(11))
    assert spec.lower_body_indices == list(range(11, 17))
    np.testing.assert_allclose(
        spec.joint_weights, [1, 1, 1, 1, 1, 1, 1, 1.2, 1.2, 1.5, 1.5, 1, 1, 1.2, 1.2, 1.5, 1.5]
    )
    assert spec.keypoint_colors[0].tolist() == [51, 153, 255]
    assert spec.keypoint_colors[5].tolist() == [0, 255, 0]  # left = green
    assert spec.keypoint_colors[6].tolist() == [255, 128, 0]  # right = orange


def test_ochuman_is_coco_order():
    coco, och = get_keypoint_spec("coco"), get_keypoint_spec("ochuman")
    assert och.keypoint_names == coco.keypoint_names
    assert och.skeleton == coco.skeleton
    assert och.flip_indices == coco.flip_indices
    np.testing.assert_array_equal(och.sigmas, coco.sigmas)


def test_mpii_facts():
    spec = get_keypoint_spec("mpii")
    assert spec.keypoint_names[6:10] == ["pelvis", "thorax", "upper_neck", "head_top"]
    assert spec.flip_indices == [5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]
    assert spec.sigmas[12] == pytest.approx(0.179)
    assert spec.lower_body_indices == [0, 1, 2, 3, 4, 5, 6]


def test_aic_crowdpose_facts():
    aic = get_keypoint_spec("aic")
    assert aic.keypoint_names[12:] == ["head_top", "neck"]
    assert aic.flip_indices == [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8, 12, 13]
    assert aic.sigmas[0] == pytest.approx(0.01388152)
    crowd = get_keypoint_spec("crowdpose")
    assert crowd.keypoint_names[12:] == ["top_head", "neck"]
    assert crowd.flip_indices == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13]
    np.testing.assert_array_equal(crowd.sigmas[:12], np.asarray(COCO_SIGMAS[5:], np.float32))


def test_coco_wholebody_facts():
    spec = get_keypoint_spec("coco-wholebody")
    names = spec.keypoint_names
    coco = get_keypoint_spec("coco")
    assert names[:17] == coco.keypoint_names
    assert names[17:23] == [
        "left_big_toe", "left_small_toe", "left_heel",
        "right_big_toe", "right_small_toe", "right_heel",
    ]  # fmt: skip
    assert names[23] == "face-0" and names[90] == "face-67"
    assert names[91] == "left_hand_root" and names[112] == "right_hand_root"
    assert names[132] == "right_pinky_finger4"
    flip = spec.flip_indices
    assert flip[:17] == coco.flip_indices
    assert flip[17:23] == [20, 21, 22, 17, 18, 19]
    assert flip[23] == 39 and flip[31] == 31  # face-0 <-> face-16; chin face-8 fixed
    assert flip[91 + 4] == 112 + 4  # left_thumb4 <-> right_thumb4
    np.testing.assert_array_equal(spec.sigmas[:17], coco.sigmas)
    assert spec.sigmas[17] == pytest.approx(0.068)
    np.testing.assert_array_equal(spec.sigmas[91:112], spec.sigmas[112:133])
    assert spec.num_limbs == 65
    # Face and hands are in neither body half (as in mmpose).
    assert spec.upper_body_indices == list(range(11))
    assert spec.lower_body_indices == list(range(11, 23))
    np.testing.assert_array_equal(spec.joint_weights, np.ones(133, np.float32))


def test_openpose_facts():
    spec = get_keypoint_spec("openpose")
    assert spec.keypoint_names == [
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
        "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
        "left_eye", "right_ear", "left_ear",
    ]  # fmt: skip
    # pytorch-openpose limbSeq (1-based) minus one.
    limb_seq = [
        [2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12],
        [12, 13], [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18], [3, 17], [6, 18],
    ]  # fmt: skip
    assert spec.skeleton_indices == [(a - 1, b - 1) for a, b in limb_seq]
    assert spec.flip_indices == [0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16]
    coco = get_keypoint_spec("coco")
    for i, n in enumerate(spec.keypoint_names):
        if n != "neck":
            assert spec.sigmas[i] == coco.sigmas[coco.index(n)]
    assert spec.sigmas[1] == pytest.approx((0.079 + 0.079) / 2)
    assert spec.keypoint_colors[0].tolist() == [255, 0, 0]


def test_openpose_body25_facts():
    spec = get_keypoint_spec("openpose_body25")
    names = spec.keypoint_names
    assert names[:9] == ["nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
                         "left_elbow", "left_wrist", "mid_hip"]
    assert names[19:] == ["left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
                          "right_heel"]
    # openpose poseParameters.cpp POSE_BODY_PART_PAIRS of BODY_25 (0-based, flat).
    pairs = [1, 8, 1, 2, 1, 5, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 10, 11, 8, 12, 12, 13, 13, 14, 1, 0, 0, 15, 15,
             17, 0, 16, 16, 18, 2, 17, 5, 18, 14, 19, 19, 20, 14, 21, 11, 22, 22, 23, 11, 24]
    assert spec.skeleton_indices == list(zip(pairs[0::2], pairs[1::2]))
    assert spec.flip_indices == [0, 1, 5, 6, 7, 2, 3, 4, 8, 12, 13, 14, 9, 10, 11, 16, 15, 18, 17, 22, 23, 24, 19,
                                 20, 21]
    assert spec.flip_indices == get_keypoint_spec(spec.get_config()).flip_indices
    coco = get_keypoint_spec("coco")
    for i, n in enumerate(names):
        if n in coco.keypoint_names:
            assert spec.sigmas[i] == coco.sigmas[coco.index(n)]
    assert spec.sigmas[names.index("mid_hip")] == pytest.approx(0.107)
    assert spec.sigmas[names.index("left_big_toe")] == pytest.approx(0.068)
    assert spec.keypoint_colors[0].tolist() == [255, 0, 85] and spec.keypoint_colors[24].tolist() == [0, 255, 255]
    assert spec.limb_colors[0].tolist() == spec.keypoint_colors[8].tolist()  # neck -> mid-hip: mid-hip's colour
    from keras_pose.models.openpose.openpose_layers import body25_keypoint_spec

    assert body25_keypoint_spec() is spec


def test_animal_facts():
    ap = get_keypoint_spec("ap10k")
    assert ap.keypoint_names[4] == "root_of_tail"
    assert ap.flip_indices == [1, 0, 2, 3, 4, 8, 9, 10, 5, 6, 7, 14, 15, 16, 11, 12, 13]
    apt = get_keypoint_spec("APT-36K")
    assert apt.keypoint_names == ap.keypoint_names and apt.flip_indices == ap.flip_indices
    np.testing.assert_array_equal(apt.sigmas, ap.sigmas)
    animal = get_keypoint_spec("animal_pose")
    assert animal.keypoint_names[:4] == ["L_Eye", "R_Eye", "L_EarBase", "R_EarBase"]
    assert animal.flip_indices[16:] == [17, 16, 19, 18]
    assert animal.sigmas[5] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "alias,name",
    [
        ("COCO", "coco"),
        ("coco17", "coco"),
        ("coco-wholebody", "coco_wholebody"),
        ("COCO_WholeBody", "coco_wholebody"),
        ("wholebody", "coco_wholebody"),
        ("coco18", "openpose"),
        ("BODY_25", "openpose_body25"),
        ("openpose-25", "openpose_body25"),
        ("AP-10K", "ap10k"),
        ("apt_36k", "apt36k"),
        ("Animal-Pose", "animalpose"),
        ("CrowdPose", "crowdpose"),
        ("ai_challenger", "aic"),
    ],
)
def test_aliases(alias, name):
    assert get_keypoint_spec(alias) is get_keypoint_spec(name)


def test_unknown_builtin_suggests_close_matches():
    with pytest.raises(KeypointSpecError, match=r"Unknown keypoint spec 'cocoo'") as e:
        get_keypoint_spec("cocoo")
    assert "Did you mean 'coco'" in str(e.value)
    assert "mpii" in str(e.value)  # lists the built-ins
    with pytest.raises(KeypointSpecError, match="crowdpose"):
        get_keypoint_spec("crowdpse")


def test_get_keypoint_spec_rejects_other_types():
    with pytest.raises(KeypointSpecError, match="Cannot make a KeypointSpec from int"):
        get_keypoint_spec(17)


# -- serialisation ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_config_round_trip(name):
    spec = get_keypoint_spec(name)
    config = spec.get_config()
    restored = KeypointSpec.from_config(json.loads(json.dumps(config)))
    assert restored == spec
    assert restored.get_config() == config
    assert restored.flip_indices == spec.flip_indices
    np.testing.assert_array_equal(restored.sigmas, spec.sigmas)
    np.testing.assert_array_equal(restored.limb_colors, spec.limb_colors)
    assert KeypointSpec.from_dict(spec.to_dict()) == spec


def test_json_and_yaml_file_round_trip(tmp_path):
    spec = get_keypoint_spec("coco_wholebody")
    json_path = tmp_path / "spec.json"
    spec.to_json(json_path)
    assert KeypointSpec.from_file(json_path) == spec
    assert get_keypoint_spec(str(json_path)) == spec
    assert get_keypoint_spec(json_path) == spec  # os.PathLike
    for suffix in (".yaml", ".yml"):
        path = tmp_path / ("spec" + suffix)
        spec.save(path)
        loaded = KeypointSpec.from_file(path)
        assert loaded == spec
        assert loaded.get_config() == spec.get_config()
    # Atomic write leaves no temporary files behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json", "spec.yaml", "spec.yml"]


def test_defaults_round_trip_and_are_deterministic():
    spec = _small()
    assert spec.get_config()["keypoint_colors"] is None
    assert spec.keypoint_colors.shape == (5, 3)
    assert len({tuple(c) for c in spec.keypoint_colors.tolist()}) == 5
    np.testing.assert_array_equal(spec.keypoint_colors, _small().keypoint_colors)
    np.testing.assert_array_equal(spec.joint_weights, np.ones(5, np.float32))
    assert spec.sigmas is None
    assert spec.upper_body_indices == [] and spec.lower_body_indices == []
    assert KeypointSpec.from_config(spec.get_config()) == spec


def test_body_split_and_equality():
    spec = _small(upper_body_names=["nose", "left_eye", "right_eye"])
    assert spec.upper_body_indices == [0, 1, 2]
    assert spec.lower_body_indices == [3, 4]  # the rest
    assert spec != _small()
    assert spec == KeypointSpec.from_config(spec.get_config())
    # Equality is semantic: the order in which body names are listed does not matter.
    assert spec == _small(upper_body_names=["right_eye", "nose", "left_eye"])
    assert "num_keypoints=5" in repr(spec) and "toy" in repr(spec)


def test_arrays_are_read_only():
    spec = get_keypoint_spec("coco")
    with pytest.raises(ValueError):
        spec.sigmas[0] = 1.0
    flip = spec.flip_indices
    flip[0] = 5
    assert spec.flip_indices[0] == 0


def test_from_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        KeypointSpec.from_file(tmp_path / "missing.json")
    bad_ext = tmp_path / "spec.txt"
    bad_ext.write_text("{}")
    with pytest.raises(KeypointSpecError, match=r"\.json, \.yaml or \.yml"):
        KeypointSpec.from_file(bad_ext)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(KeypointSpecError, match="not valid JSON"):
        KeypointSpec.from_file(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"name": "x", "keypoint_names": ["a"], "colour": 1}))
    with pytest.raises(KeypointSpecError, match="unknown keys 'colour'"):
        KeypointSpec.from_file(wrong)


# -- validation errors -----------------------------------------------------------


@pytest.mark.parametrize(
    "overrides,patterns",
    [
        (dict(keypoint_names=[]), ["keypoint_names is empty"]),
        (dict(keypoint_names=["a", ""]), ["non-empty strings", "(1, '')"]),
        (
            dict(keypoint_names=["a", "b", "a"], skeleton=(), flip_pairs=()),
            ["duplicate keypoint names", "'a' at indices 0 and 2", "unique"],
        ),
        (
            dict(skeleton=[("nose", "left_eyes")]),
            ["skeleton refers to unknown keypoint names 'left_eyes'", "keypoint_names"],
        ),
        (dict(skeleton=[(0, 1)]), ["not keypoint names", "names[i], names[j]"]),
        (dict(skeleton=[("nose", "nose")]), ["connect a keypoint to itself"]),
        (
            dict(skeleton=[("nose", "left_eye"), ("left_eye", "nose")]),
            ["duplicate skeleton limbs"],
        ),
        (
            dict(flip_pairs=[("left_eye", "right_eyes")]),
            ["flip_pairs refers to unknown keypoint names 'right_eyes'"],
        ),
        (dict(flip_pairs=[("nose", "nose")]), ["flip a keypoint with itself", "unpaired"]),
        (
            dict(flip_pairs=[("left_eye", "right_eye"), ("right_eye", "left_eye")]),
            ["duplicate flip pairs", "(a, b) and (b, a) are the same pair"],
        ),
        (
            dict(flip_pairs=[("left_eye", "right_eye"), ("right_eye", "left_hip")]),
            ["'right_eye' is in both ('left_eye', 'right_eye') and ('right_eye', 'left_hip')",
             "at most one mirror"],
        ),  # fmt: skip
        (dict(flip_pairs=[("left_eye",)]), ["pairs of two keypoint names"]),
        (dict(sigmas=[0.1, 0.1]), ["sigmas has 2 entries but there are 5 keypoints"]),
        (
            dict(sigmas=[0.1, 0.0, 0.1, -0.2, 0.1]),
            ["positive", "'left_eye'=0.0", "'left_hip'=-0.2"],
        ),
        (dict(sigmas=[0.1, float("nan"), 0.1, 0.1, 0.1]), ["finite"]),
        (dict(joint_weights=[1.0] * 4), ["joint_weights has 4 entries"]),
        (dict(joint_weights=[1.0, -1.0, 1.0, 1.0, 1.0]), ["non-negative"]),
        (dict(keypoint_colors=[(0, 0, 0)] * 4), ["keypoint_colors has 4 colours", "5 keypoints"]),
        (
            dict(keypoint_colors=[(0, 0, 0)] * 4 + [(0, 256, 0)]),
            ["#4=(0, 256, 0)", "0..255"],
        ),
        (dict(limb_colors=[(0, 0, 0)]), ["limb_colors has 1 colours", "3 skeleton limbs"]),
        (dict(limb_colors=[(0, 0)] * 3), ["#0=(0, 0)", "three integers"]),
        (
            dict(upper_body_names=["nose", "neck"]),
            ["upper_body_names contains unknown keypoint names 'neck'"],
        ),
        (
            dict(upper_body_names=["nose"], lower_body_names=["nose", "left_hip"]),
            ["'nose' are in both upper_body_names and lower_body_names"],
        ),
        (dict(name=""), ["name must be a non-empty string"]),
    ],
)
def test_validation_errors(overrides, patterns):
    with pytest.raises(KeypointSpecError) as e:
        _small(**overrides)
    message = str(e.value)
    for pattern in patterns:
        assert pattern in message, f"{pattern!r} not in {message!r}"
    assert isinstance(e.value, ValueError)


# -- COCO categories ------------------------------------------------------------


def test_infer_flip_pairs_token_styles():
    names = ["nose", "left_eye", "right_eye", "L_F_Paw", "R_F_Paw", "Left Wrist",
             "Right Wrist", "leftHand", "rightHand", "l_knee", "r_knee", "lower_lip",
             "cleft", "left_only"]  # fmt: skip
    assert infer_flip_pairs(names) == [
        ("left_eye", "right_eye"),
        ("L_F_Paw", "R_F_Paw"),
        ("Left Wrist", "Right Wrist"),
        ("leftHand", "rightHand"),
        ("l_knee", "r_knee"),
    ]


def test_coco_sample_category_matches_builtin():
    (category,) = _coco_category(DATA_DIR / "coco" / "test_coco.json")
    spec = KeypointSpec.from_coco_category(category)
    coco = get_keypoint_spec("coco")
    assert spec.name == "person"
    assert spec.keypoint_names == coco.keypoint_names
    assert spec.skeleton == coco.skeleton
    assert spec.flip_pairs == coco.flip_pairs
    assert spec.flip_indices == coco.flip_indices
    assert spec.sigmas is None
    # Round trip through the COCO category format.
    assert coco.to_coco_category()["skeleton"] == category["skeleton"]
    with_sigmas = KeypointSpec.from_coco_category(category, sigmas=COCO_SIGMAS, name="c")
    np.testing.assert_array_equal(with_sigmas.sigmas, coco.sigmas)


def test_coco_annotation_file_as_spec_path():
    spec = get_keypoint_spec(str(DATA_DIR / "ochuman" / "test_ochuman.json"))
    och = get_keypoint_spec("ochuman")
    assert spec.keypoint_names == och.keypoint_names
    assert spec.skeleton == och.skeleton
    assert spec.flip_indices == och.flip_indices


def test_ap10k_sample_categories_match_builtin():
    categories = _coco_category(DATA_DIR / "ap10k" / "test_ap10k.json")
    assert len(categories) == 54
    ap = get_keypoint_spec("ap10k")
    for category in categories:
        assert category["keypoints"] == ap.keypoint_names, category["name"]
    spec = KeypointSpec.from_coco_category(categories[0])
    assert spec.skeleton == ap.skeleton
    assert spec.flip_indices == ap.flip_indices


def test_animalpose_sample_category_matches_builtin():
    (category,) = _coco_category(DATA_DIR / "animalpose" / "test_animalpose.json")
    animal = get_keypoint_spec("animalpose")
    assert category["keypoints"] == animal.keypoint_names
    spec = KeypointSpec.from_coco_category(category)
    assert spec.skeleton == animal.skeleton
    assert spec.flip_pairs == animal.flip_pairs


def test_aic_sample_category_matches_builtin_order():
    (category,) = _coco_category(DATA_DIR / "aic" / "test_aic.json")
    spec = KeypointSpec.from_coco_category(category)
    aic = get_keypoint_spec("aic")
    # The file spells the names "Right Shoulder", ...; order and structure agree.
    snake_case = [n.lower().replace(" ", "_") for n in spec.keypoint_names]
    assert snake_case[:12] == aic.keypoint_names[:12]
    assert spec.skeleton_indices == aic.skeleton_indices
    assert spec.flip_indices == aic.flip_indices


def test_coco_category_with_bad_skeleton():
    # The CrowdPose sample file carries COCO's 17-keypoint skeleton for 14 keypoints.
    (category,) = _coco_category(DATA_DIR / "crowdpose" / "test_crowdpose.json")
    with pytest.raises(KeypointSpecError) as e:
        KeypointSpec.from_coco_category(category)
    message = str(e.value)
    assert "[16, 14]" in message and "1..14" in message and "1-based" in message
    zero_based = {"name": "z", "keypoints": ["a", "b", "c"], "skeleton": [[0, 1], [1, 2]]}
    with pytest.raises(KeypointSpecError, match="looks 0-based"):
        KeypointSpec.from_coco_category(zero_based)
    with pytest.raises(KeypointSpecError, match="'keypoints' list"):
        KeypointSpec.from_coco_category({"name": "x"})
