"""Run a smoke script on one Keras backend in a subprocess and read back the arrays it saved."""

import os
import subprocess
import sys

import numpy as np

from pose_testing.paths import REPO_ROOT


def run_backend_script(script, backend, out_dir, label="smoke", args=()):
    """``python SCRIPT OUT.npz [ARGS]`` with ``KERAS_BACKEND=backend``; returns the saved arrays as a dict."""
    out = out_dir / f"{backend}.npz"
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(script), str(out), *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"{backend} {label} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return dict(np.load(out))
