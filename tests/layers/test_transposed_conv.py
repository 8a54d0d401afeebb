"""apply_transposed_conv: four 2x2 convolutions equal the 4x4 stride-2 deconvolution.

Checked on the active backend against keras' own `Conv2DTranspose` and
against `torch.nn.functional.conv_transpose2d` (the reference layer of the
converted checkpoints), forward and gradients, and run on a plain
`Conv2DTranspose` layer's own weights.
"""

import numpy as np
import pytest

import keras
from keras import ops

from keras_pose.layers import apply_transposed_conv
from keras_pose.layers.transposed_conv import phase_implementation_for_backend
from keras_pose.layers.transposed_conv import transposed_conv_4x4_s2_as_phase_matmuls
from keras_pose.layers.transposed_conv import transposed_conv_4x4_s2_as_phases

PHASE_FORMS = [transposed_conv_4x4_s2_as_phases, transposed_conv_4x4_s2_as_phase_matmuls]


def _inputs(seed=0, shape=(2, 5, 4, 6), filters=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype("float32")
    kernel = rng.standard_normal((4, 4, filters, shape[-1])).astype("float32")
    return x, kernel


@pytest.mark.parametrize("form", PHASE_FORMS)
def test_phases_equal_keras_conv_transpose(form):
    x, kernel = _inputs()
    expected = ops.convert_to_numpy(ops.conv_transpose(x, kernel, strides=2, padding="same"))
    got = ops.convert_to_numpy(form(x, kernel))
    assert got.shape == (2, 10, 8, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", PHASE_FORMS)
def test_phases_equal_torch_conv_transpose2d(form):
    torch = pytest.importorskip("torch")
    x, kernel = _inputs(seed=1, shape=(1, 3, 7, 2), filters=5)
    weight = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())  # (I, O, 4, 4), the checkpoint layout
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), weight, stride=2, padding=1
    ).numpy().transpose(0, 2, 3, 1)
    got = ops.convert_to_numpy(form(x, kernel))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_bias", [False, True])
def test_apply_on_a_plain_layer_gives_its_output(use_bias):
    x, _ = _inputs(seed=2)
    layer = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", use_bias=use_bias, activation="relu")
    layer.build(x.shape)
    rng = np.random.default_rng(3)
    layer.set_weights([rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()])
    expected = ops.convert_to_numpy(layer(x))
    assert (expected > 0).any() and (expected == 0).any()
    for implementation in ("phases", "phase_matmuls", "transpose", "auto"):
        got = ops.convert_to_numpy(apply_transposed_conv(layer, x, implementation=implementation))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_gradients_match_the_transposed_convolution():
    x, kernel = _inputs(seed=4, shape=(2, 4, 3, 5), filters=4)
    backend = keras.backend.backend()
    grads = {}
    for name, fn in (
        ("phases", transposed_conv_4x4_s2_as_phases),
        ("phase_matmuls", transposed_conv_4x4_s2_as_phase_matmuls),
        ("transpose", lambda a, k: ops.conv_transpose(a, k, strides=2, padding="same")),
    ):
        if backend == "tensorflow":
            import tensorflow as tf

            xv, kv = tf.Variable(x), tf.Variable(kernel)
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(fn(xv, kv) ** 3)
            grads[name] = [g.numpy() for g in tape.gradient(loss, [xv, kv])]
        elif backend == "jax":
            import jax

            grads[name] = [np.asarray(g) for g in jax.grad(lambda a, k: (fn(a, k) ** 3).sum(), (0, 1))(x, kernel)]
        else:
            import torch

            xv = torch.tensor(x, requires_grad=True)
            kv = torch.tensor(kernel, requires_grad=True)
            (fn(xv, kv) ** 3).sum().backward()
            grads[name] = [xv.grad.numpy(), kv.grad.numpy()]
    for form in ("phases", "phase_matmuls"):
        for got, expected in zip(grads[form], grads["transpose"]):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_phase_matmuls_equal_phase_convolutions():
    x, kernel = _inputs(seed=5, shape=(3, 6, 5, 7), filters=4)
    convs = ops.convert_to_numpy(transposed_conv_4x4_s2_as_phases(x, kernel))
    matmuls = ops.convert_to_numpy(transposed_conv_4x4_s2_as_phase_matmuls(x, kernel))
    assert matmuls.shape == (3, 12, 10, 4)
    np.testing.assert_allclose(matmuls, convs, rtol=1e-5, atol=1e-5)


def test_auto_picks_the_faster_form_per_backend():
    assert phase_implementation_for_backend("tensorflow") == "phases"
    assert phase_implementation_for_backend("jax") == "phase_matmuls"
    assert phase_implementation_for_backend("torch") == "transpose"


def test_bad_settings_name_the_fix():
    x, _ = _inputs()
    layer = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same")
    layer.build(x.shape)
    with pytest.raises(ValueError, match="implementation must be one of"):
        apply_transposed_conv(layer, x, implementation="fast")
    other = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same")
    other.build(x.shape)
    with pytest.raises(ValueError, match="kernel_size 4, strides 2"):
        apply_transposed_conv(other, x, implementation="phases")
