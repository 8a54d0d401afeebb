"""The RTMO golden case (tests/models/rtmo/test_rtmo_golden.py: checkpoint -> `keras-pose convert` ->
`from_preset`, raw outputs, decoder, letterbox, `predict_keypoints`) on the JAX and PyTorch backends,
each in a subprocess (the backend is fixed per process). Measured: 42 s (JAX), 17 s (PyTorch)."""

import os
import subprocess
import sys

import pytest

from pose_testing.paths import REPO_ROOT

pytestmark = pytest.mark.backends


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_golden_rtmo_s_on_backend(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    test_file = REPO_ROOT / "tests" / "models" / "rtmo" / "test_rtmo_golden.py"
    proc = subprocess.run(
        # Every test of the file, the slow ones included (predict_keypoints on the image).
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", "-m", "slow or not slow",
         str(test_file)],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"golden RTMO on {backend} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert "7 passed" in proc.stdout and "FAIL" not in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-3000:]
