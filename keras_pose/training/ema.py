"""EMA of the weights with mmpose's ``ExpMomentumEMA`` (RTMO's recipe), as a ``fit`` callback.

After every optimizer step ``s`` (0, 1, 2, ...), every float weight ``w``
of the model (trainable and non-trainable: batch-norm statistics too, as
mmpose's ``update_buffers=True``) updates its average ``a``::

    s == 0:  a = w
    s >= 1:  momentum = (1 - m) * exp(-(1 + s) / gamma) + m
             a = a + momentum * (w - a)          # a.lerp_(w, momentum)

with ``m = 0.0002``, ``gamma = 2000`` (mmpose RTMO configs): the average
follows the weights closely at first (momentum near 1) and settles to a
2 / m = 10,000-step horizon after a few ``gamma`` steps.

Keras' own ``optimizer(use_ema=True, ema_momentum=0.99)`` (Keras 3.15) is
not this: after a first step that copies the weights, its momentum is fixed
(``a = mu * a + (1 - mu) * w``, ``mu`` constant: no exponential warm-up),
it averages trainable variables only (no batch-norm statistics),
and it overwrites the model's weights with the average every
``ema_overwrite_frequency`` steps and at the end of ``fit``; the weights
training continues from are then the average. mmpose keeps training the raw
weights and uses the average for validation and checkpoints, which is what
`ExpMomentumEMA` does.

::

    ema = ExpMomentumEMA(momentum=0.0002, gamma=2000)
    model.fit(data, epochs=..., callbacks=[ema, *ema.evaluation_callbacks(eval_cb, best_ckpt)])
    ema.swap_in()        # the model now holds the averages (save / evaluate); ema.swap_out() undoes it

`ExpMomentumEMA.save_state` / ``restore_state`` write and read
``ema.npz`` (the averages and the step count) in a training-state folder
(`keras_pose.training.resume` calls them), so a resumed run continues the
same average.

Cost: one eager ``a += momentum * (w - a)`` per weight after every step (on
JAX the trainer's state is synced into the variables first).
"""

import json
import math
import os

import numpy as np

import keras

EMA_FILE = "ema.npz"


def ema_momentum(step, momentum=0.0002, gamma=2000.0):
    """The weight of the new value at optimizer step ``step`` (>= 1): ``(1 - m) exp(-(1 + step) / gamma) + m``."""
    return (1.0 - momentum) * math.exp(-float(1 + step) / gamma) + momentum


def _averaged_variables(model):
    """The float weights of the model (no RNG states), in a fixed order."""
    return [v for v in model.weights
            if "float" in str(v.dtype) and "seed_generator" not in (getattr(v, "path", "") or v.name)]


class ExpMomentumEMA(keras.callbacks.Callback):
    """Exponential moving average of a model's weights with mmpose's warm-up momentum.

    Args:
        momentum: the final momentum ``m`` (the weight of the new value),
            in (0, 1) [0.0002].
        gamma: the warm-up length in steps (> 0) [2000].

    Attributes:
        steps: the number of updates done (mmpose's ``steps``).
        averages: list of numpy arrays (host copies) or None before the
            first step; `swap_in` puts them into the model.
        swapped: whether the model holds the averages now.
    """

    def __init__(self, momentum=0.0002, gamma=2000.0):
        super().__init__()
        momentum, gamma = float(momentum), float(gamma)
        if not 0.0 < momentum < 1.0:
            raise ValueError(f"EMA momentum must be in (0, 1), got {momentum!r} (mmpose RTMO: 0.0002).")
        if gamma <= 0.0:
            raise ValueError(f"EMA gamma must be > 0 steps, got {gamma!r} (mmpose RTMO: 2000).")
        self.momentum = momentum
        self.gamma = gamma
        self.steps = 0
        self._averages = None  # keras Variables (on the device), same order as _averaged_variables
        self.swapped = False

    # ------------------------------------------------------------- updates
    def _variables(self):
        return _averaged_variables(self.model)

    def _ensure_averages(self):
        if self._averages is None:
            self._averages = [keras.Variable(keras.ops.convert_to_numpy(v), trainable=False, dtype=v.dtype,
                                             name="ema_" + v.name) for v in self._variables()]

    def on_train_batch_end(self, batch, logs=None):
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX: the step's weights live in the trainer's state until synced
            sync()
        variables = self._variables()
        if self._averages is None or self.steps == 0:
            self._averages = None
            self._ensure_averages()
        else:
            rate = ema_momentum(self.steps, self.momentum, self.gamma)
            for average, variable in zip(self._averages, variables):
                average.assign(average + keras.ops.cast(rate, average.dtype) * (variable - average))
        self.steps += 1

    # --------------------------------------------------------- swap in/out
    def swap_in(self):
        """Put the averages into the model (the raw weights are kept aside); no-op before the first step."""
        if self.swapped or self._averages is None:
            return
        # An exchange: the same operation undoes it (`swap_out`).
        for average, variable in zip(self._averages, self._variables()):
            raw = keras.ops.convert_to_numpy(variable)
            variable.assign(average)
            average.assign(raw)
        self.swapped = True

    def swap_out(self):
        """Put the raw (trained) weights back after `swap_in`."""
        if not self.swapped:
            return
        for average, variable in zip(self._averages, self._variables()):
            raw = keras.ops.convert_to_numpy(variable)
            variable.assign(average)
            average.assign(raw)
        self.swapped = False

    def averages(self):
        """The averages as numpy arrays (None before the first step)."""
        if self._averages is None:
            return None
        source = self._variables() if self.swapped else self._averages
        return [keras.ops.convert_to_numpy(a) for a in source]

    def evaluation_callbacks(self, *callbacks):
        """``[swap in, *callbacks, swap out]``: run these epoch-end callbacks on the averaged weights."""
        return [_Swap(self, True), *callbacks, _Swap(self, False)]

    # ---------------------------------------------------- training state
    def save_state(self, folder):
        """Write ``ema.npz`` (averages, step count, settings) into a state folder."""
        arrays = {f"ema_{i}": a for i, a in enumerate(self.averages() or [])}
        info = {"steps": self.steps, "momentum": self.momentum, "gamma": self.gamma}
        arrays["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
        np.savez(os.path.join(folder, EMA_FILE), **arrays)

    def restore_state(self, folder, model=None):
        """Read ``ema.npz`` of a state folder (saved by `save_state`); returns False when it has none."""
        if model is not None:
            self.set_model(model)
        path = os.path.join(folder, EMA_FILE)
        if not os.path.isfile(path):
            return False
        with np.load(path, allow_pickle=False) as saved:
            info = json.loads(saved["info"].tobytes().decode())
            arrays = [saved[f"ema_{i}"] for i in range(len(saved.files) - 1)]
        self.steps = int(info["steps"])
        self.swapped = False
        if not arrays:
            self._averages = None
            return True
        variables = self._variables()
        if len(arrays) != len(variables) or any(tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables)):
            raise ValueError(f"the EMA state in {folder!r} holds {len(arrays)} averages that do not match the "
                             f"model's {len(variables)} weights: it was saved by another model.")
        self._averages = None
        self._ensure_averages()
        for average, array in zip(self._averages, arrays):
            average.assign(array)
        return True

    def get_config(self):
        return {"momentum": self.momentum, "gamma": self.gamma}


class _Swap(keras.callbacks.Callback):
    """Epoch end: swap the EMA averages in (``into=True``) or out."""

    def __init__(self, ema, into):
        super().__init__()
        self.ema, self.into = ema, into

    def on_epoch_end(self, epoch, logs=None):
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        if self.into:
            self.ema.swap_in()
        else:
            self.ema.swap_out()


__all__ = ["EMA_FILE", "ExpMomentumEMA", "ema_momentum"]
