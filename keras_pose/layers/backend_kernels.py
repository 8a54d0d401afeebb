"""Transformer building blocks that use a backend's fused kernel where it has one.

Each function computes the same math on every backend; only the kernel
differs, and only where it was measured faster (ViTPose-B, batch 8, 2 CPU
threads, this project's benchmark `benchmarks/bench_vs_reference.py`):

- `exact_gelu`: PyTorch calls its fused `torch.nn.functional.gelu` (the erf
  GELU written out as five element-wise ops cost ~0.24 s per forward against
  15 ms fused). TensorFlow keeps `0.5 * x * (1 + erf(x / sqrt(2)))`: export
  (ONNX via tf2onnx, TFLite) runs on TensorFlow, and `tf.nn.gelu`'s exact
  form exports as `Erfc`, which onnxruntime rejects. JAX keeps the same form
  (XLA fuses it into one loop).
- `FusedBiasDense`: a `keras.layers.Dense` whose PyTorch forward is one
  `torch.nn.functional.linear` (matmul with the bias add fused, `addmm`, as
  `torch.nn.Linear` does); other backends run `Dense` unchanged.
- `multi_head_attention`: PyTorch calls `scaled_dot_product_attention` (fused
  SDPA) on strided views of q, k, v (`keras.ops.dot_product_attention` copies
  each to a contiguous tensor first); TensorFlow and JAX keep
  the explicit `softmax(q k^T * scale) v` (XLA fuses it; the TF graph stays
  the one the exporters were checked with).
"""

import keras
from keras import ops

_SQRT1_2 = 0.7071067811865476  # 1 / sqrt(2), torch's M_SQRT1_2


def erf_gelu(x):
    """Exact (erf) GELU written out, `x * 0.5 * (1 + erf(x / sqrt(2)))`; export-safe."""
    return ops.multiply(ops.multiply(x, 0.5), ops.add(1.0, ops.erf(ops.multiply(x, _SQRT1_2))))


def exact_gelu(x):
    """Exact (erf) GELU, as `torch.nn.GELU()` computes it; same shape as `x`.

    PyTorch backend: the fused `torch.nn.functional.gelu`; TensorFlow / JAX:
    `erf_gelu` (the form ONNX / TFLite export needs).
    """
    if keras.backend.backend() == "torch":
        return ops.gelu(x, approximate=False)
    return erf_gelu(x)


@keras.saving.register_keras_serializable(package="keras_pose")
class FusedBiasDense(keras.layers.Dense):
    """`keras.layers.Dense` with the bias add fused into the matmul on PyTorch.

    Same arguments, variables (`kernel` (I, O), `bias` (O,)) and output as
    `Dense`. On the PyTorch backend, without LoRA or quantization, the
    forward is `torch.nn.functional.linear(x, kernel^T, bias)` (one `addmm`
    for 2-D and folded 3-D inputs) followed by the activation; otherwise
    `Dense.call`.
    """

    def call(self, inputs, training=None):
        if (
            keras.backend.backend() != "torch"
            or not self.use_bias
            or self.lora_enabled
            or self.quantization_mode is not None
        ):
            return super().call(inputs, training=training)
        import torch

        kernel = ops.convert_to_tensor(self.kernel, dtype=self.compute_dtype)
        bias = ops.convert_to_tensor(self.bias, dtype=self.compute_dtype)
        outputs = torch.nn.functional.linear(ops.convert_to_tensor(inputs, dtype=self.compute_dtype), kernel.T, bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


def multi_head_attention(query, key, value, scale):
    """`softmax(q k^T * scale) v` per head, softmax in float32.

    Args:
        query, key, value: (B, N, heads, head_dim).
        scale: the score multiplier (`head_dim ** -0.5`).

    Returns:
        (B, N, heads, head_dim), in the inputs' dtype.
    """
    if keras.backend.backend() == "torch":
        # torch's fused SDPA on (B, heads, N, hd) views: `ops.dot_product_attention`
        # would copy q, k and v to contiguous tensors first (36 copies per ViT-B forward).
        import torch

        q, k, v = (ops.convert_to_tensor(t).transpose(1, 2) for t in (query, key, value))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=scale)
        return out.transpose(1, 2)
    q = ops.transpose(query, (0, 2, 1, 3))  # (B, heads, N, hd)
    k = ops.transpose(key, (0, 2, 3, 1))  # (B, heads, hd, N)
    v = ops.transpose(value, (0, 2, 1, 3))
    scores = ops.matmul(q, k) * scale
    probs = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), v.dtype)
    return ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))
