"""Per-family XLA defaults on TensorFlow (measured in benchmarks/bench_xla.py)."""

import keras
import numpy as np
import pytest

from keras_pose.models import CPM, CPN, Hourglass, ViTPose, ViTPosePP

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow-backend defaults")


def _tiny_vitpose():
    return ViTPose.from_checkpoint_config(image_size=(64, 48), hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64)


def test_family_defaults():
    assert ViTPose.tf_train_jit_compile and ViTPosePP.tf_train_jit_compile
    assert not CPM.tf_train_jit_compile and not Hourglass.tf_train_jit_compile and not CPN.tf_train_jit_compile


def test_auto_uses_xla_for_training_not_inference_and_explicit_wins():
    model = _tiny_vitpose()
    model.compile()
    assert model.jit_compile is True
    x = np.zeros((2, 64, 48, 3), "float32")
    y = {k: np.asarray(v, "float32") for k, v in model.codec.encode(np.full((2, 17, 2), 10.0)).items()}
    assert np.isfinite(model.train_on_batch(x, y))
    eager_reference = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(model.predict_on_batch(x), eager_reference, rtol=1e-5, atol=1e-6)
    # The predict function was traced without XLA: a tf.function whose inner step has jit off.
    assert model._jit_compile is True and model.__dict__["_predict_without_xla"] is True
    explicit = _tiny_vitpose()
    explicit.compile(jit_compile=False)
    assert explicit.jit_compile is False
