"""Run a smoke script or a test file on one Keras backend in a subprocess (the backend is fixed per process)."""

import os
import re
import subprocess
import sys

import numpy as np

from pose_testing.paths import REPO_ROOT


def _backend_env(backend, **extra):
    """This process's environment with ``KERAS_BACKEND=backend``, quiet TensorFlow and no GPU."""
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **extra}


def run_backend_script(script, backend, out_dir, label="smoke", args=()):
    """``python SCRIPT OUT.npz [ARGS]`` with ``KERAS_BACKEND=backend``; returns the saved arrays as a dict."""
    out = out_dir / f"{backend}.npz"
    env = _backend_env(backend)
    proc = subprocess.run(
        [sys.executable, str(script), str(out), *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"{backend} {label} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return dict(np.load(out))


def run_test_file_on_backend(test_file, backend, min_passed, extra_args=()):
    """Run the tests of ``test_file`` (minus its ``backends``-marked ones) in a pytest process on ``backend``.

    Fails unless the process exits 0 with at least ``min_passed`` passed tests and its output names no
    failure or error anywhere.
    """
    env = _backend_env(backend, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file), "-m",
                           "not backends", "-o", "addopts=", *extra_args],
                          env=env, capture_output=True, text=True, timeout=900, cwd=str(REPO_ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    passed = re.search(r"\b(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= min_passed and not re.search(r"failed|error", proc.stdout), (
        proc.stdout[-500:])
