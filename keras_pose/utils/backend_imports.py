"""Import keras-hub without TensorFlow on the JAX and PyTorch backends.

keras-hub imports `tensorflow` and `tensorflow_text` when its package loads
(`keras_hub.src.utils.tensor_utils`, `keras_hub.src.utils.pipeline_model`),
on every backend, although it runs without them (it checks `tf is None`
where it needs TensorFlow). On this machine that import costs ~3.5 s and
~850 MB of resident memory that a JAX or PyTorch process never uses, unless
it builds a `tf.data` pipeline.

`import_keras_hub()` therefore imports keras-hub with the two modules marked
unavailable when the Keras backend is not TensorFlow and TensorFlow is not
loaded yet; keras-hub then records `tf = None`. When TensorFlow is imported
later (the `tf.data` pipelines of `keras_pose.data`),
`attach_tensorflow_to_keras_hub()` hands it to those keras-hub modules, so
keras-hub recognises `tf.data` datasets and tensors again. (`fit` /
`evaluate` / `predict` of keras-pose tasks are Keras' own and do not go
through keras-hub's input handling.)
"""

import importlib
import sys

_BLOCKED_WHEN_NOT_TENSORFLOW = ("tensorflow", "tensorflow_text")
# keras-hub modules holding a module-level `tf` (None when imported without TensorFlow).
_KERAS_HUB_TF_HOLDERS = ("keras_hub.src.utils.tensor_utils", "keras_hub.src.utils.pipeline_model")


def _backend():
    import keras

    return keras.backend.backend()


def import_keras_hub():
    """The `keras_hub` module; on JAX / PyTorch imported without TensorFlow.

    TensorFlow backend, or TensorFlow already imported, or keras-hub already
    imported: a plain import (then TensorFlow is handed over if it is loaded).
    """
    if "keras_hub" in sys.modules or _backend() == "tensorflow" or "tensorflow" in sys.modules:
        module = importlib.import_module("keras_hub")
        attach_tensorflow_to_keras_hub()
        return module
    blocked = [name for name in _BLOCKED_WHEN_NOT_TENSORFLOW if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # `import name` raises ImportError while this holds
    try:
        return importlib.import_module("keras_hub")
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def attach_tensorflow_to_keras_hub():
    """Give keras-hub the TensorFlow module if it is loaded now and keras-hub lacks it.

    Returns True when keras-hub's modules hold TensorFlow after the call
    (False: TensorFlow is not loaded, or keras-hub is not imported).
    """
    tf = sys.modules.get("tensorflow")
    if tf is None or not hasattr(tf, "executing_eagerly"):
        return False
    attached = False
    for holder in _KERAS_HUB_TF_HOLDERS:
        module = sys.modules.get(holder)
        if module is None:
            continue
        if getattr(module, "tf", None) is None:
            module.tf = tf
        attached = True
    return attached
