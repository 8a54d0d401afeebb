"""OpenPose grouping against the reference parser's output (tests/golden/openpose/grouping_coco18).

The golden maps are upsampled with the same cv2 calls as the reference
decode (controlnet-aux: per-channel LANCZOS4 x8; Hzzone: INTER_CUBIC x8),
then both parsers run on them: the exact port must reproduce the candidates
and people exactly, the fast one the same people (parts, positions within
1e-6 px, scores within 1e-5).
"""

import time

import cv2
import numpy as np
import pytest
from pose_testing.paths import GOLDEN_DIR

from keras_pose.models.openpose import openpose_layers as L
from keras_pose.models.openpose.openpose_grouping import group_people, people_arrays

CASE = GOLDEN_DIR / "openpose" / "grouping_coco18"
H, W = 392, 640


def _upsample(maps, variant):
    if variant == "lanczos":  # controlnet-aux util.smart_resize_k / smart_resize, channel by channel
        up = np.stack([cv2.resize(maps[:, :, i], (maps.shape[1] * 8, maps.shape[0] * 8),
                                  interpolation=cv2.INTER_LANCZOS4) for i in range(maps.shape[2])], axis=2)
        up = up[:H, :W]
        return np.stack([cv2.resize(up[:, :, i], (W, H), interpolation=cv2.INTER_LANCZOS4)
                         for i in range(up.shape[2])], axis=2).astype(np.float64)
    up = cv2.resize(maps, (0, 0), fx=8, fy=8, interpolation=cv2.INTER_CUBIC)[:H, :W]
    return cv2.resize(up, (W, H), interpolation=cv2.INTER_CUBIC).astype(np.float64)


@pytest.fixture(scope="module", params=["lanczos", "cubic"])
def case(request):
    suffix = "" if request.param == "lanczos" else "_cubic"
    heat = _upsample(np.load(CASE / "input_heatmap.npy"), request.param)
    paf = _upsample(np.load(CASE / "input_paf.npy"), request.param)
    return (heat, paf, np.load(CASE / f"expected_candidate{suffix}.npy"), np.load(CASE / f"expected_subset{suffix}.npy"))


def _group(case, method):
    heat, paf, _, _ = case
    return group_people(heat, paf, L.COCO18_LIMBS, L.COCO18_PAF_CHANNELS, image_height=H, method=method)


def test_reference_port_is_exact(case):
    candidate, subset = _group(case, "reference")
    expected_candidate, expected_subset = case[2], case[3]
    assert candidate.shape == expected_candidate.shape and subset.shape == expected_subset.shape
    np.testing.assert_array_equal(candidate[:, [0, 1, 3]], expected_candidate[:, [0, 1, 3]])
    assert np.abs(candidate[:, 2] - expected_candidate[:, 2]).max() <= 1e-6
    np.testing.assert_array_equal(subset[:, :18], expected_subset[:, :18])
    np.testing.assert_array_equal(subset[:, 19], expected_subset[:, 19])
    assert np.abs(subset[:, 18] - expected_subset[:, 18]).max() <= 1e-5


def test_fast_parser_gives_the_same_people(case):
    candidate, subset = _group(case, "fast")
    expected_candidate, expected_subset = case[2], case[3]
    np.testing.assert_array_equal(candidate[:, [0, 1, 3]], expected_candidate[:, [0, 1, 3]])
    assert np.abs(candidate[:, 2] - expected_candidate[:, 2]).max() <= 1e-5
    kp, sc, person = people_arrays(candidate, subset, 18)
    ekp, esc, eperson = people_arrays(expected_candidate, expected_subset, 18)
    assert kp.shape == ekp.shape
    np.testing.assert_array_equal(subset[:, :18], expected_subset[:, :18])
    np.testing.assert_array_equal(subset[:, 19], expected_subset[:, 19])
    assert np.abs(kp - ekp).max() <= 1e-6
    assert np.abs(sc - esc).max() <= 1e-5 and np.abs(subset[:, 18] - expected_subset[:, 18]).max() <= 1e-5


@pytest.mark.slow
def test_fast_parser_on_tiled_maps_matches_the_port(case):
    """Many people (the maps tiled 2 x 2): both parsers give the same people, the fast one sooner."""
    heat, paf = np.tile(case[0], (2, 2, 1)), np.tile(case[1], (2, 2, 1))
    results = {}
    for method in ("reference", "fast"):
        start = time.perf_counter()
        results[method] = group_people(heat, paf, L.COCO18_LIMBS, L.COCO18_PAF_CHANNELS, image_height=2 * H,
                                       method=method)
        results[method + "_time"] = time.perf_counter() - start
    (c0, s0), (c1, s1) = results["reference"], results["fast"]
    assert len(s0) >= 15
    np.testing.assert_array_equal(c0[:, [0, 1, 3]], c1[:, [0, 1, 3]])
    np.testing.assert_array_equal(s0[:, :18], s1[:, :18])
    assert np.abs(s0[:, 18] - s1[:, 18]).max() <= 1e-5
    assert results["fast_time"] < results["reference_time"]


def test_no_people_and_bad_input():
    heat = np.zeros((40, 50, 19))
    paf = np.zeros((40, 50, 38))
    for method in ("fast", "reference"):
        candidate, subset = group_people(heat, paf, L.COCO18_LIMBS, L.COCO18_PAF_CHANNELS, 40, method=method)
        assert candidate.shape == (0, 4) and subset.shape == (0, 20)
    kp, sc, person = people_arrays(candidate, subset, 18)
    assert kp.shape == (0, 18, 2) and sc.shape == (0, 18) and person.shape == (0,)
    with pytest.raises(ValueError, match="grouping method"):
        group_people(heat, paf, L.COCO18_LIMBS, L.COCO18_PAF_CHANNELS, 40, method="greedy")
    with pytest.raises(ValueError, match="one size"):
        group_people(heat, paf[:10], L.COCO18_LIMBS, L.COCO18_PAF_CHANNELS, 40)
