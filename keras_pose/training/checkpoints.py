"""Weights checkpoints that are never half-written and never hold NaN.

`save_weights_atomic` writes ``*.weights.h5`` through a temporary sibling and
refuses weights that hold NaN / Inf (a good checkpoint is never replaced by a
broken one); ``best.json`` / ``last.json`` beside a checkpoint say what it is
(epoch, monitored value).
"""

import json
import math
import os

import numpy as np

import keras

from keras_pose.errors import NonFiniteModelError
from keras_pose.utils.file_utils import atomic_write


def non_finite_weights(model):
    """Names of the model's weights that hold NaN or Inf (empty: all finite)."""
    return [getattr(variable, "path", None) or variable.name for variable in model.weights
            if not all_finite([keras.ops.convert_to_numpy(variable)])]


def all_finite(arrays):
    """Whether every floating-point array (float16/32/64, bfloat16) is finite."""
    for array in arrays:
        array = np.asarray(array)
        if (array.dtype.kind in "fc" or "float" in array.dtype.name) and not np.isfinite(
            array.astype(np.float32) if array.dtype.kind not in "fc" else array
        ).all():
            return False
    return True


def save_weights_atomic(model, path, info=None):
    """``model.save_weights(path)`` through a temporary sibling + ``os.replace``.

    Args:
        model: the Keras model.
        path: a ``.weights.h5`` file.
        info: optional JSON-able dict written (atomically, after the
            weights) to the sidecar `checkpoint_info_path` (``best.json``
            for ``best.weights.h5``): what the checkpoint is (epoch, metric).

    Raises:
        NonFiniteModelError: the weights hold NaN or Inf (nothing written;
            a good checkpoint is never replaced by a broken one).
    """
    bad = non_finite_weights(model)
    if bad:
        raise NonFiniteModelError(
            f"Not saving {path!r}: {len(bad)} weights hold NaN or Inf ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''})."
        )
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if info is not None:
        with atomic_write(checkpoint_info_path(path), "w") as f:
            json.dump(json_safe(info), f, indent=1, allow_nan=False)
            f.write("\n")


def checkpoint_info_path(path):
    """The sidecar of a checkpoint: ``dir/best.weights.h5`` -> ``dir/best.json``."""
    path = os.fspath(path)
    stem = path[: -len(".weights.h5")] if path.endswith(".weights.h5") else os.path.splitext(path)[0]
    return stem + ".json"


def json_safe(value):
    """``value`` with NaN / Inf floats replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value



__all__ = ["all_finite", "checkpoint_info_path", "json_safe", "non_finite_weights", "save_weights_atomic"]
