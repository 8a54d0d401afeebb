"""Issue 8 item 13: the DARK / DARK-UDP Newton step is bounded.

On flat or noisy heatmaps the references' unbounded step moves keypoints by
tens of heatmap pixels; here it stays within one heatmap pixel of the argmax,
while well-formed peaks (and the golden decode cases) decode exactly as the
references do.
"""

import json

import numpy as np
import pytest
from pose_testing.paths import GOLDEN_DIR

from keras_pose.codecs import CodecError
from keras_pose.codecs import MSRAHeatmap
from keras_pose.codecs import UDPHeatmap
from keras_pose.codecs import get_heatmap_maximum
from keras_pose.codecs import refine_keypoints_dark
from keras_pose.codecs import refine_keypoints_dark_udp

GOLDEN = GOLDEN_DIR / "vitpose" / "end_to_end_base"


def _refiners():
    return {
        "dark": lambda locs, hm, **kw: refine_keypoints_dark(locs, hm, 11, **kw),
        "dark_udp_mmpose": lambda locs, hm, **kw: refine_keypoints_dark_udp(locs, hm, 11, "mmpose", **kw),
        "dark_udp_hf": lambda locs, hm, **kw: refine_keypoints_dark_udp(locs, hm, 11, "hf", **kw),
    }


def _bad_heatmaps():
    """Flat, noisy and low-confidence (N, 64, 48, K) maps, all with a positive maximum."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.01, (4, 64, 48, 17))
    flat = 0.1 + rng.normal(0.0, 1e-4, (4, 64, 48, 17))
    uniform = rng.uniform(0.0, 0.05, (4, 64, 48, 17))
    return np.concatenate([noise, flat, uniform]).astype(np.float32)


@pytest.mark.parametrize("name", list(_refiners()))
def test_flat_and_noisy_heatmaps_stay_within_one_heatmap_pixel(name):
    refine = _refiners()[name]
    hm = _bad_heatmaps()
    locs, scores = get_heatmap_maximum(hm)
    assert (scores > 0).all()
    # The references' unbounded step (max_offset=None) runs far away here.
    unbounded = np.linalg.norm(refine(locs, hm, max_offset=None) - locs, axis=-1)
    assert unbounded.max() > 10.0
    moved = np.linalg.norm(refine(locs, hm) - locs, axis=-1)
    assert np.isfinite(moved).all()
    assert moved.max() <= 1.0 + 1e-5
    # Sub-pixel refinement still happens where the step is short.
    assert (moved > 0).mean() > 0.3


def test_codec_decode_of_noisy_heatmaps_stays_in_the_crop():
    hm = _bad_heatmaps()
    for codec in (
        UDPHeatmap((256, 192), (64, 48)),
        UDPHeatmap((256, 192), (64, 48), dark_variant="hf"),
        MSRAHeatmap((256, 192), (64, 48), unbiased=True),
    ):
        keypoints, _ = codec.decode(hm)
        locs, _ = get_heatmap_maximum(hm)
        if isinstance(codec, UDPHeatmap):
            per_px = np.array([192 / 47, 256 / 63])
        else:
            per_px = np.array([4.0, 4.0])
        np.testing.assert_allclose(per_px, np.array([192, 256]) / np.array(codec.heatmap_span))
        start = locs * per_px
        # One heatmap pixel in each direction, in input pixels.
        assert (np.abs(keypoints - start) <= per_px + 1e-3).all()
        assert (keypoints >= -per_px).all() and (keypoints <= np.array([192, 256]) + per_px).all()


def test_export_runtime_decode_is_bounded_too():
    """An exported model's `decode` (the codec recorded in its metadata) takes the same bounded step."""
    from keras_pose.codecs.base import serialize_codec
    from keras_pose.export.runtime import ExportedModelRunner

    hm = _bad_heatmaps()

    class _Runner(ExportedModelRunner):  # the heatmaps an exported graph returned
        def heatmaps(self, images):
            return hm

    codecs = (UDPHeatmap((256, 192), (64, 48), dark_variant="hf"), MSRAHeatmap((256, 192), (64, 48), unbiased=True))
    for codec in codecs:
        metadata = json.loads(json.dumps({"decoding": {"codec": serialize_codec(codec)}}))  # as written to <model>.json
        keypoints, scores = _Runner("model.tflite", metadata).decode(np.zeros((len(hm), 256, 192, 3), np.float32))
        expected, expected_scores = codec.decode(hm)
        np.testing.assert_array_equal(keypoints, expected)
        np.testing.assert_array_equal(scores, expected_scores)
        locs, _ = get_heatmap_maximum(hm)
        per_px = np.array([192, 256]) / np.array(codec.heatmap_span)
        assert (np.abs(keypoints - locs * per_px) <= per_px + 1e-3).all()


@pytest.mark.parametrize("name", list(_refiners()))
def test_well_formed_peaks_decode_exactly_as_the_references(name):
    """Gaussian peaks anywhere, borders included: the bound never bites."""
    refine = _refiners()[name]
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:64, 0:48]
    centres = np.concatenate([rng.uniform([0, 0], [47, 63], (30, 2)), [[0.2, 30.0], [47.0, 0.3], [23.4, 63.0]]])
    hm = np.stack(
        [np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0**2)) for x, y in centres], axis=-1
    ).astype(np.float32)[None]
    locs, _ = get_heatmap_maximum(hm)
    bounded = refine(locs, hm)
    np.testing.assert_array_equal(bounded, refine(locs, hm, max_offset=None))
    assert np.linalg.norm(bounded - locs, axis=-1).max() < 1.0


def test_golden_decode_heatmaps_are_unchanged_by_the_bound():
    if not (GOLDEN / "meta.json").is_file():
        pytest.fail(f"golden case not found: {GOLDEN}")
    assert "decode_only" in json.loads((GOLDEN / "meta.json").read_text())
    hm = np.load(GOLDEN / "decode_heatmaps.npy").transpose(0, 2, 3, 1)
    locs, scores = get_heatmap_maximum(hm)
    found = scores > 0
    for name, refine in _refiners().items():
        bounded = refine(locs, hm)
        np.testing.assert_array_equal(bounded[found], refine(locs, hm, max_offset=None)[found], err_msg=name)


def test_missing_keypoints_stay_at_minus_one():
    hm = np.full((2, 16, 12, 3), -0.5, np.float32)
    hm[0, 5, 5, 0] = 1.0  # map 0 of instance 0 has a peak; the others are missing
    hm[1, 8, 3, 1] = 0.7
    locs, scores = get_heatmap_maximum(hm)
    for variant in ("mmpose", "hf"):
        refined = refine_keypoints_dark_udp(locs, hm, 5, variant)
        missing = scores <= 0
        np.testing.assert_array_equal(refined[missing], -1.0)
        assert np.linalg.norm(refined[~missing] - locs[~missing], axis=-1).max() <= 1.0


def test_max_offset_argument():
    hm = _bad_heatmaps()[:1]
    locs, _ = get_heatmap_maximum(hm)
    moved = np.abs(refine_keypoints_dark_udp(locs, hm, 11, max_offset=0.25) - locs)
    assert np.linalg.norm(moved, axis=-1).max() <= 0.25 + 1e-6
    for bad in (0, -1, float("nan"), float("inf"), "x"):
        with pytest.raises(CodecError, match="max_offset"):
            refine_keypoints_dark(locs, hm, 11, max_offset=bad)
