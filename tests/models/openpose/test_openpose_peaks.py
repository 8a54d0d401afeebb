"""The fast parser's peaks (cell-bounded, box-wise Gaussian) against the full-map reference computation.

Random maps of odd sizes (cells cut by the map's edge), blobs centred on and
beyond the edges, noise, float32 and float64 inputs, several sigmas: the
candidates must be exactly those of scipy's full ``gaussian_filter`` + the
reference's 4-neighbour test (out-of-map neighbours 0).
"""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from keras_pose.models.openpose.openpose_grouping import find_peaks_fast


def _reference_peaks(maps, threshold, sigma):
    rows = []
    for part in range(maps.shape[2]):
        s = gaussian_filter(maps[:, :, part].astype(np.float64), sigma=sigma)
        up, down, left, right = (np.zeros_like(s) for _ in range(4))
        up[1:], down[:-1], left[:, 1:], right[:, :-1] = s[:-1], s[1:], s[:, :-1], s[:, 1:]
        ys, xs = np.nonzero((s >= up) & (s >= down) & (s >= left) & (s >= right) & (s > threshold))
        rows += [(x, y, float(maps[y, x, part]), part) for y, x in zip(ys, xs)]
    return np.asarray(rows, np.float64).reshape(-1, 4)


@pytest.mark.parametrize("seed", range(4))
def test_fast_peaks_equal_the_full_map_filter(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for trial in range(40):
        h, w, k = int(rng.integers(3, 90)), int(rng.integers(3, 90)), 3
        maps = np.zeros((h, w, k))
        yy, xx = np.mgrid[:h, :w]
        for _ in range(int(rng.integers(0, 6))):
            cy, cx, s = rng.uniform(-5, h + 5), rng.uniform(-5, w + 5), rng.uniform(0.5, 8)
            part = int(rng.integers(k))
            blob = rng.uniform(0.05, 1.2) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
            maps[:, :, part] = np.maximum(maps[:, :, part], blob)
        maps += rng.normal(0, float(rng.choice([0, 0.02, 0.1])), maps.shape)
        if trial % 2:
            maps = maps.astype(np.float32)
        sigma = float(rng.choice([0.7, 1.5, 3.0, 4.5]))
        candidate, slices = find_peaks_fast(maps, k, threshold=0.1, sigma=sigma)
        expected = _reference_peaks(maps, 0.1, sigma)
        assert candidate.shape == expected.shape
        np.testing.assert_array_equal(candidate[:, :3], expected[:, :3])
        np.testing.assert_array_equal(candidate[:, 3], np.arange(len(candidate)))
        for part, rows in enumerate(slices):
            assert (expected[rows, 3] == part).all()
        checked += len(candidate)
    assert checked > 20  # the cases do hold peaks


def test_fast_parser_takes_float32_and_strided_maps():
    """cv2's float32 maps and non-contiguous views give the golden people, as the float64 copies do."""
    import cv2
    from pose_testing.paths import GOLDEN_DIR

    from keras_pose.models.openpose import openpose_layers as L
    from keras_pose.models.openpose.openpose_grouping import group_people

    case = GOLDEN_DIR / "openpose" / "grouping_coco18"
    h, w = 392, 640
    maps = [cv2.resize(np.load(case / name), (w, h), interpolation=cv2.INTER_CUBIC)
            for name in ("input_heatmap.npy", "input_paf.npy")]
    expected_candidate = np.load(case / "expected_candidate_cubic.npy")
    expected_subset = np.load(case / "expected_subset_cubic.npy")
    padded = [np.pad(m.astype(np.float64), ((0, 3), (0, 5), (0, 0))) for m in maps]
    variants = {"float32": maps, "float64": [m.astype(np.float64) for m in maps],
                "strided": [p[:h, :w] for p in padded]}
    assert not variants["strided"][1].flags.c_contiguous
    for name, (heat, paf) in variants.items():
        candidate, subset = group_people(heat, paf, L.COCO18_LIMBS, L.COCO18_PAF_CHANNELS, h)
        np.testing.assert_array_equal(candidate[:, [0, 1, 3]], expected_candidate[:, [0, 1, 3]], err_msg=name)
        np.testing.assert_array_equal(subset[:, :18], expected_subset[:, :18], err_msg=name)
        np.testing.assert_array_equal(subset[:, 19], expected_subset[:, 19], err_msg=name)
        assert np.abs(subset[:, 18] - expected_subset[:, 18]).max() <= 1e-5, name
        assert len(subset) == 5
