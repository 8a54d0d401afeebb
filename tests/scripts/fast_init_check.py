"""Compare keras-pose's fast JAX initialisation with Keras' own (run under KERAS_BACKEND=jax).

Writes a .npz: per initialiser, the largest difference between the two paths'
values and the largest |value|; the number of programs compiled; whether a
`SeedGenerator`-seeded initialiser advanced its state as Keras' own does; the
largest weight difference of a small Hourglass built both ways from the same
global seed, and its build time both ways.

    KERAS_BACKEND=jax python tests/scripts/fast_init_check.py OUT.npz
"""

import sys
import time

import keras
import numpy as np

from keras_pose.models.hourglass import HourglassBackbone
from keras_pose.utils import fast_init

INITIALIZERS = {
    "he_normal": lambda: keras.initializers.HeNormal(seed=3),
    "glorot_uniform": lambda: keras.initializers.GlorotUniform(seed=4),
    "truncated_normal": lambda: keras.initializers.TruncatedNormal(stddev=0.02, seed=5),
    "variance_scaling": lambda: keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=6),
}
SHAPES = [(1, 1, 12, 8), (64,)]  # conv kernels of other shapes: the Hourglass below


def _variable(initializer, shape):
    return keras.ops.convert_to_numpy(keras.Variable(initializer, shape=shape, dtype="float32"))


def _hourglass():
    return HourglassBackbone(**_hourglass_kwargs())


def main(out_path):
    results = {}
    for name, make in INITIALIZERS.items():
        for shape in SHAPES:
            own = _variable(make(), shape)
            with fast_init.fast_initialization():
                fast = _variable(make(), shape)
            key = f"{name}/{'x'.join(map(str, shape))}"
            results[f"{key}/diff"] = np.float32(np.abs(own - fast).max())
            results[f"{key}/scale"] = np.float32(np.abs(own).max())
    results["programs"] = np.int32(len(fast_init._programs))
    own_seed, fast_seed = keras.random.SeedGenerator(7), keras.random.SeedGenerator(7)
    own = _variable(keras.initializers.HeNormal(seed=own_seed), (4, 4))
    with fast_init.fast_initialization():
        fast = _variable(keras.initializers.HeNormal(seed=fast_seed), (4, 4))
    results["seed_generator/diff"] = np.float32(np.abs(own - fast).max())
    results["seed_generator/same_state"] = np.bool_(np.array_equal(
        keras.ops.convert_to_numpy(own_seed.state), keras.ops.convert_to_numpy(fast_seed.state)))
    models = {}
    for label, fast_path in (("own", False), ("fast", True)):
        keras.utils.set_random_seed(11)
        start = time.perf_counter()
        if fast_path:
            models[label] = _hourglass()  # the constructor runs under fast_initialization
        else:
            original = HourglassBackbone.__init__.__wrapped__
            model = HourglassBackbone.__new__(HourglassBackbone)
            original(model, **_hourglass_kwargs())
            models[label] = model
        results[f"build_seconds/{label}"] = np.float32(time.perf_counter() - start)
    results["hourglass/diff"] = np.float32(max(np.abs(a - b).max() for a, b in zip(
        models["own"].get_weights(), models["fast"].get_weights())))
    results["hourglass/weights"] = np.int32(len(models["fast"].weights))
    np.savez(out_path, **results)


def _hourglass_kwargs():
    return dict(image_size=(32, 32), num_stacks=1, downsample_times=2, stage_channels=[8, 8, 12],
                stage_blocks=[1, 1, 2], feat_channels=8, stem_channels=4)


if __name__ == "__main__":
    main(sys.argv[1])
