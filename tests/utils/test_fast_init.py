"""keras_pose.utils.fast_init: JAX initialisers compiled at XLA optimisation level 0 give Keras' own values."""

import keras
import numpy as np
import pytest

from pose_testing.backend_runs import run_backend_script
from pose_testing.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "tests" / "scripts" / "fast_init_check.py"


@pytest.mark.backends
def test_fast_jax_initialisers_match_keras_own(tmp_path):
    """~70 s (a JAX process; most of it builds the Hourglass the Keras way)."""
    results = run_backend_script(SCRIPT, "jax", tmp_path, "fast init")
    pairs = [k[: -len("/diff")] for k in results if k.endswith("/diff") and "/" in k[: -len("/diff")]]
    assert len(pairs) == 8
    for key in pairs:  # float rounding only: the same seed, sampler and distribution
        assert results[f"{key}/diff"] <= 1e-6 * max(1.0, float(results[f"{key}/scale"])), key
        assert results[f"{key}/scale"] > 0, key
    assert int(results["programs"]) == 8  # one program per (initialiser config, shape), reused across seeds
    # A SeedGenerator-seeded initialiser keeps Keras' path: same values, same advanced state.
    assert results["seed_generator/diff"] == 0 and bool(results["seed_generator/same_state"])
    assert int(results["hourglass/weights"]) > 100 and results["hourglass/diff"] <= 1e-6
    # Measured 23.8 s against 3.3 s (jax 0.10.2, 2 cores).
    assert results["build_seconds/fast"] < 0.5 * results["build_seconds/own"], dict(results)


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="checks the other backends")
def test_fast_initialization_is_a_no_op_off_jax():
    from keras.src.backend.common import variables

    from keras_pose.utils.fast_init import fast_initialization

    before = variables.Variable._initialize_with_initializer
    with fast_initialization():
        assert variables.Variable._initialize_with_initializer is before
        value = keras.ops.convert_to_numpy(keras.Variable(keras.initializers.HeNormal(seed=3), shape=(3, 3)))
    assert variables.Variable._initialize_with_initializer is before
    np.testing.assert_array_equal(
        value, keras.ops.convert_to_numpy(keras.Variable(keras.initializers.HeNormal(seed=3), shape=(3, 3))))
