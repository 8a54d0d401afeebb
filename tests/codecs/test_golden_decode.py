"""Decode-only parity with HF transformers VitPoseImageProcessor.post_process_pose_estimation.

Golden set: tests/golden/vitpose/end_to_end_base/ ("decode_only" in its
meta.json): heatmaps with well separated maxima (including a border peak and
an all-negative map per person), the two boxes, and the keypoints / scores HF
returned for them.
"""

import json

import numpy as np
import pytest
from pose_testing.paths import GOLDEN_DIR

from keras_pose.codecs import UDPHeatmap
from keras_pose.geometry import box_xywh_to_center_scale
from keras_pose.geometry import crop_to_image

CASE = GOLDEN_DIR / "vitpose" / "end_to_end_base"
INPUT_SIZE = (256, 192)
HEATMAP_SIZE = (64, 48)


@pytest.fixture(scope="module")
def golden():
    if not (CASE / "meta.json").is_file():
        pytest.fail(f"golden case not found: {CASE}")
    meta = json.loads((CASE / "meta.json").read_text())
    decode_only = meta["decode_only"]
    return {
        "meta": decode_only,
        "heatmaps": np.load(CASE / "decode_heatmaps.npy").transpose(0, 2, 3, 1),  # NCHW -> NHWC
        "boxes": np.asarray(decode_only["boxes_xywh"], np.float64),
        "keypoints": np.load(CASE / "expected_decode_keypoints.npy"),
        "scores": np.load(CASE / "expected_decode_scores.npy"),
    }


def _decode_to_image(heatmaps, boxes, codec):
    keypoints, scores = codec.decode(heatmaps)
    centers, scales = box_xywh_to_center_scale(boxes, INPUT_SIZE, padding=1.25)
    return crop_to_image(keypoints, centers, scales, INPUT_SIZE), scores


def test_hf_decode_matches_golden(golden):
    assert golden["heatmaps"].shape == (2, 64, 48, 17)
    codec = UDPHeatmap(INPUT_SIZE, HEATMAP_SIZE, dark_variant="hf", blur_kernel_size=11)
    keypoints, scores = _decode_to_image(golden["heatmaps"], golden["boxes"], codec)
    tol = golden["meta"]["tolerance"]
    assert keypoints.shape == golden["keypoints"].shape == (2, 17, 2)
    np.testing.assert_allclose(keypoints, golden["keypoints"], rtol=0, atol=tol["keypoints_px"]["atol"])
    np.testing.assert_allclose(scores, golden["scores"], rtol=0, atol=tol["scores"]["atol"])
    # In practice far tighter than the stated tolerance.
    assert np.abs(keypoints - golden["keypoints"]).max() < 1e-3


def test_golden_edge_cases(golden):
    codec = UDPHeatmap(INPUT_SIZE, HEATMAP_SIZE, dark_variant="hf")
    heatmap_kp, scores = codec.decode(golden["heatmaps"])
    # Keypoint 16 is all-negative: score <= 0, location (-1, -1) unrefined
    # (flat log map -> zero derivatives), i.e. u = -1 / (w - 1) * W.
    assert (scores[:, 16] <= 0).all()
    np.testing.assert_allclose(heatmap_kp[:, 16], [[-192 / 47, -256 / 63]] * 2, atol=1e-4)
    # Keypoint 15 peaks on the border (x = 0 for person 0, y = 63 for person 1).
    argmax = golden["heatmaps"][:, :, :, 15].reshape(2, -1).argmax(-1)
    assert argmax[0] % 48 == 0 and argmax[1] // 48 == 63


def test_mmpose_variant_differs_only_by_blur(golden):
    """The mmpose 1.x blur (zero-padded 11x11, sigma 2) moves peaks by < 1.5 px here."""
    hf = UDPHeatmap(INPUT_SIZE, HEATMAP_SIZE, dark_variant="hf")
    mm = UDPHeatmap(INPUT_SIZE, HEATMAP_SIZE, dark_variant="mmpose")
    kp_hf, sc_hf = _decode_to_image(golden["heatmaps"], golden["boxes"], hf)
    kp_mm, sc_mm = _decode_to_image(golden["heatmaps"], golden["boxes"], mm)
    np.testing.assert_array_equal(sc_hf, sc_mm)
    diff = np.abs(kp_hf - kp_mm)[:, :16]
    assert diff.max() < 1.5 and diff.max() > 1e-3
