"""`DropPath`: stochastic depth for residual branches (Huang et al. 2016; timm's DropPath)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_pose")
class DropPath(keras.layers.Layer):
    """Zero a residual branch for a random subset of samples while training.

    ``call(y, training)``: with ``training``, each sample's branch output
    ``y`` (B, ...) is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)`` (the expectation is unchanged), otherwise zeroed;
    at inference ``y`` passes unchanged. The block adds the result to its
    residual stream: ``x + drop_path(branch(x))``. The random state is a
    `keras.random.SeedGenerator` (saved with a run's training state).

    Args:
        rate: probability of dropping a sample's branch, in [0, 1).
        seed: optional int seed.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"DropPath rate must be in [0, 1), got {rate!r}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, y, training=None):
        if not training or self.rate == 0.0:
            return y
        keep = 1.0 - self.rate
        shape = (ops.shape(y)[0],) + (1,) * (len(y.shape) - 1)
        mask = ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=y.dtype))
        return y * mask / ops.cast(keep, y.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


__all__ = ["DropPath"]
