"""Fused-kernel building blocks give the same values as the written-out math.

Run on each backend (`KERAS_BACKEND=jax|torch`); on PyTorch these take the
fused paths (gelu, linear/addmm, scaled_dot_product_attention).
"""

import math

import numpy as np
import pytest

import keras
from keras import ops

from keras_pose.layers import FusedBiasDense
from keras_pose.layers import exact_gelu
from keras_pose.layers import multi_head_attention
from keras_pose.layers.backend_kernels import erf_gelu


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def test_exact_gelu_matches_the_erf_formula():
    x = np.linspace(-8.0, 8.0, 401).astype("float32")
    expected = np.array([v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.astype("float64")])
    np.testing.assert_allclose(_np(exact_gelu(x)), expected, atol=1e-6)
    np.testing.assert_allclose(_np(erf_gelu(x)), expected, atol=1e-6)


@pytest.mark.parametrize("activation", [None, "relu"])
def test_fused_bias_dense_equals_dense(activation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 5)).astype("float32")
    plain = keras.layers.Dense(4, activation=activation)
    fused = FusedBiasDense(4, activation=activation)
    plain.build(x.shape)
    fused.build(x.shape)
    weights = [rng.standard_normal(w.shape).astype("float32") for w in plain.get_weights()]
    plain.set_weights(weights)
    fused.set_weights(weights)
    expected = x @ weights[0] + weights[1]
    if activation == "relu":
        expected = np.maximum(expected, 0.0)
    np.testing.assert_allclose(_np(fused(x)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(fused(x)), _np(plain(x)), rtol=1e-5, atol=1e-5)
    assert FusedBiasDense.from_config(fused.get_config()).units == 4


def test_fused_bias_dense_gradients_reach_kernel_and_bias():
    layer = FusedBiasDense(3)
    x = np.ones((4, 2), "float32")
    layer.build(x.shape)
    if keras.backend.backend() == "torch":
        out = layer(x)
        out.sum().backward()
        kernel_grad = layer.kernel.value.grad.numpy()
        bias_grad = layer.bias.value.grad.numpy()
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x))
        kernel_grad, bias_grad = (g.numpy() for g in tape.gradient(loss, [layer.kernel.value, layer.bias.value]))
    else:
        import jax

        def loss(kernel, bias):
            return layer.stateless_call([kernel, bias], [], x)[0].sum()

        kernel_grad, bias_grad = (np.asarray(g) for g in jax.grad(loss, (0, 1))(layer.kernel.value, layer.bias.value))
    np.testing.assert_allclose(kernel_grad, np.full((2, 3), 4.0))
    np.testing.assert_allclose(bias_grad, np.full((3,), 4.0))


def test_multi_head_attention_matches_numpy_softmax_attention():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((2, 6, 3, 4)).astype("float32") for _ in range(3))
    scale = 4**-0.5
    scores = np.einsum("bnhd,bmhd->bhnm", q, k) * scale
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    expected = np.einsum("bhnm,bmhd->bnhd", probs, v)
    np.testing.assert_allclose(_np(multi_head_attention(q, k, v, scale)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.backends  # a JAX / PyTorch pytest process each: `python -m pytest -m backends`
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_kernels_on_other_backends(backend):
    """This file's checks through the JAX and PyTorch kernels (fused gelu, addmm, SDPA on strided views)."""
    from pose_testing.backend_runs import run_test_file_on_backend

    run_test_file_on_backend(__file__, backend, min_passed=5)
