"""RTMO's `fit` (RTMOLoss with SimOTA, the training-only branches, rtmo_optimizer) on JAX and PyTorch:
2 steps of a small RTMO on the COCO samples in a subprocess per backend (tests/scripts/rtmo_fit_smoke.py)."""

import numpy as np
import pytest
from pose_testing.backend_runs import run_backend_script
from pose_testing.paths import REPO_ROOT

pytestmark = pytest.mark.backends

SCRIPT = REPO_ROOT / "tests" / "scripts" / "rtmo_fit_smoke.py"


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_rtmo_fits_two_steps_on_backend(backend, tmp_path):
    results = run_backend_script(SCRIPT, backend, tmp_path, "RTMO fit")
    assert str(results["backend"]) == backend
    for term in ("loss", "loss_cls", "loss_bbox", "loss_oks", "loss_vis", "loss_mle"):
        values = results[f"history/{term}"]
        assert values.shape == (1,) and np.isfinite(values).all(), (term, values)
    for term in ("loss", "loss_cls", "loss_bbox", "loss_oks", "loss_vis"):
        assert results[f"history/{term}"][0] > 0, term  # positives were assigned: every term is active
    assert results["network_change"] > 1e-5 and results["branches_change"] > 1e-5  # both steps updated weights
    assert bool(results["decoded_finite"])
