"""ViTPose window-attention variants on the JAX and PyTorch backends (subprocesses, `-m backends`).

Forward outputs must equal the TensorFlow backend's for the same weights;
a 2-step fit must give finite losses; the mixed bfloat16 forward must keep
the heatmap pattern and float32 output. Output and knowledge-token
distillation fit for 2 steps with finite losses (the token unchanged).
"""


import numpy as np
import pytest

from pose_testing.backend_runs import run_backend_script
from pose_testing.paths import REPO_ROOT

pytestmark = pytest.mark.backends

SCRIPT = REPO_ROOT / "tests" / "scripts" / "vitpose_window_smoke.py"
MODELS = ["stride8_shifted_pooling_minimal", "stride16_shifted_classic"]


def _run(backend, tmp_path):
    return run_backend_script(SCRIPT, backend, tmp_path, "window smoke")


@pytest.fixture(scope="module")
def tensorflow_results(tmp_path_factory):
    return _run("tensorflow", tmp_path_factory.mktemp("tf"))


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_window_variants_forward_fit_and_mixed(backend, tmp_path, tensorflow_results):
    results = tensorflow_results if backend == "tensorflow" else _run(backend, tmp_path)
    for name in MODELS:
        reference, actual = tensorflow_results[f"{name}/forward"], results[f"{name}/forward"]
        diff = float(np.abs(actual - reference).max())
        print(f"[{backend} {name}] forward max abs diff vs TensorFlow {diff:.2e}")
        assert actual.shape == reference.shape == (2, 16, 12, 17)
        assert diff <= 1e-4 * max(1.0, float(np.abs(reference).max())), (name, diff)
        losses = results[f"{name}/loss"]
        assert losses.shape == (1,) and np.isfinite(losses).all(), (name, losses)
        assert not np.allclose(results[f"{name}/after_fit"], actual), name  # the fit changed the model
        assert str(results[f"{name}/mixed_dtype"]) == "float32", name
        correlation = np.corrcoef(results[f"{name}/mixed"].ravel(), actual.ravel())[0, 1]
        assert correlation > 0.75, (name, correlation)
    for kind in ("output", "token"):
        losses = results[f"distill_{kind}/loss"]
        assert losses.shape == (2,) and np.isfinite(losses).all(), (kind, losses)
    assert bool(results["distill_token/unchanged"])  # the knowledge token stays frozen in the student
