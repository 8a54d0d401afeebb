"""A 4x4 stride-2 transposed convolution computed as four 2x2 convolutions.

`torch.nn.ConvTranspose2d(k=4, s=2, p=1)` (= Keras `Conv2DTranspose(4, 2,
padding="same")`) maps input row m to output rows 2m (phase 0) and 2m + 1
(phase 1) with only two kernel taps each:

    out[2m]     = x[m - 1] * w[3] + x[m] * w[1]
    out[2m + 1] = x[m]     * w[2] + x[m + 1] * w[0]

(the same along columns). So every one of the four output phases (py, px) is
an ordinary 2x2 "valid" convolution of the zero-padded input with four of
the sixteen kernel taps, and the phases interleave into the output
(depth-to-space). The result equals the transposed convolution to float32
round-off (1e-6 relative), with the same FLOPs, and its gradients are plain
convolution gradients, which XLA:CPU compiles well: on this machine the
kernel gradient of the ViTPose-B head's 256->256 deconvolution took 13.6 s
under JAX as a transposed convolution and 0.95 s in this form (batch 8);
TensorFlow's forward is 2.4x faster too. PyTorch's native `conv_transpose2d`
is faster than the four convolutions there, so the torch backend keeps it
(`implementation="auto"`).

`apply_transposed_conv(layer, x)` runs a plain `keras.layers.Conv2DTranspose`
this way: the weights stay in that layer (`kernel` (4, 4, filters,
in_channels)), so converters, `.keras` files and presets (whose weight paths
name the layer class) load unchanged.
"""

import keras
from keras import ops

# (phase, input offset) -> kernel tap along one axis (derivation above).
_TAP = {(0, -1): 3, (0, 0): 1, (1, 0): 2, (1, 1): 0}
_OFFSETS = {0: (-1, 0), 1: (0, 1)}
IMPLEMENTATIONS = ("auto", "phases", "phase_matmuls", "transpose")


def phase_implementation_for_backend(backend=None):
    """"phase_matmuls" on JAX, "phases" on TensorFlow, "transpose" on PyTorch (measured faster each).

    JAX (XLA:CPU, 1 thread, ViTPose-S head, batch 8): forward + backward of the
    256->256 deconvolution 2.19 s as four 2x2 convolutions, 1.31 s as four
    matmuls (`transposed_conv_4x4_s2_as_phase_matmuls`).
    """
    backend = backend or keras.backend.backend()
    return {"torch": "transpose", "jax": "phase_matmuls"}.get(backend, "phases")


def transposed_conv_4x4_s2_as_phases(x, kernel):
    """`conv_transpose(x, kernel, strides=2, padding="same")` for a 4x4 kernel.

    Args:
        x: (B, H, W, I) channels-last input.
        kernel: (4, 4, O, I), the Keras `Conv2DTranspose` layout.

    Returns:
        (B, 2H, 2W, O).
    """
    out_channels = kernel.shape[2]
    padded = ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = []
    for py in (0, 1):
        cols = []
        for px in (0, 1):
            dys, dxs = _OFFSETS[py], _OFFSETS[px]
            # (2, 2, O, I) taps of this phase -> Conv2D layout (2, 2, I, O).
            taps = ops.stack(
                [ops.stack([kernel[_TAP[(py, dy)], _TAP[(px, dx)]] for dx in dxs]) for dy in dys]
            )
            taps = ops.transpose(taps, (0, 1, 3, 2))
            # H + 1 of the H + 2 padded rows: rows 0..H (phase 0) or 1..H + 1 (phase 1).
            window = padded[:, :-1] if py == 0 else padded[:, 1:]
            window = window[:, :, :-1] if px == 0 else window[:, :, 1:]
            cols.append(ops.conv(window, taps, strides=1, padding="valid"))
        rows.append(ops.stack(cols, axis=3))  # (B, H, W, 2, O)
    out = ops.stack(rows, axis=2)  # (B, H, 2, W, 2, O)
    shape = ops.shape(x)
    return ops.reshape(out, (-1, shape[1] * 2, shape[2] * 2, out_channels))


def transposed_conv_4x4_s2_as_phase_matmuls(x, kernel):
    """`transposed_conv_4x4_s2_as_phases` with each phase as one matmul (im2col).

    Phase (py, px) gathers its four shifted (B, H, W, I) windows of the padded
    input along channels, (B, H, W, 4I), and multiplies them by its four taps
    stacked to (4I, O): the same products as the 2x2 convolution (same FLOPs),
    but the gradients are matmuls, which XLA:CPU runs faster than the
    convolution kernel gradient.

    Args:
        x: (B, H, W, I) channels-last input.
        kernel: (4, 4, O, I), the Keras `Conv2DTranspose` layout.

    Returns:
        (B, 2H, 2W, O).
    """
    out_channels = kernel.shape[2]
    height, width = x.shape[1], x.shape[2]
    padded = ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = []
    for py in (0, 1):
        cols = []
        for px in (0, 1):
            windows, taps = [], []
            for dy in _OFFSETS[py]:
                for dx in _OFFSETS[px]:
                    windows.append(padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width])
                    taps.append(ops.transpose(kernel[_TAP[(py, dy)], _TAP[(px, dx)]]))  # (I, O)
            cols.append(ops.matmul(ops.concatenate(windows, axis=-1), ops.concatenate(taps, axis=0)))
        rows.append(ops.stack(cols, axis=3))  # (B, H, W, 2, O)
    out = ops.stack(rows, axis=2)  # (B, H, 2, W, 2, O)
    return ops.reshape(out, (-1, height * 2, width * 2, out_channels))


def check_phase_compatible(layer):
    """Raise ValueError unless `layer` is a Conv2DTranspose(k=4, s=2, "same") `apply_transposed_conv` computes."""
    if (
        not isinstance(layer, keras.layers.Conv2DTranspose)
        or tuple(layer.kernel_size) != (4, 4)
        or tuple(layer.strides) != (2, 2)
        or layer.padding != "same"
        or tuple(layer.dilation_rate) != (1, 1)
        or layer.data_format != "channels_last"
        or layer.output_padding is not None
    ):
        raise ValueError(
            "The phase form supports only keras.layers.Conv2DTranspose with kernel_size 4, strides 2, "
            "padding 'same', no dilation, no output_padding and channels_last; "
            f"got {type(layer).__name__} {getattr(layer, 'name', '')!r}."
        )


def apply_transposed_conv(layer, x, implementation="auto"):
    """Run a `Conv2DTranspose(filters, 4, strides=2, padding="same")` layer on `x`.

    The layer keeps its weights (and so every saved file and converter keeps
    working); only the computation is chosen:

    Args:
        layer: a built `keras.layers.Conv2DTranspose` (see `check_phase_compatible`).
        x: (B, H, W, I) channels-last input.
        implementation: "phases" (four 2x2 convolutions), "phase_matmuls"
            (the same as four matmuls), "transpose" (the layer itself, the
            backend's transposed convolution) or "auto":
            `phase_implementation_for_backend()` ("phase_matmuls" on JAX,
            "phases" on TensorFlow, "transpose" on PyTorch, the faster on each).

    Returns:
        (B, 2H, 2W, filters) in the layer's compute dtype.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}.")
    if implementation == "auto":
        implementation = phase_implementation_for_backend()
    if implementation == "transpose":
        return layer(x)
    check_phase_compatible(layer)
    dtype = layer.compute_dtype
    compute = transposed_conv_4x4_s2_as_phase_matmuls if implementation == "phase_matmuls" else (
        transposed_conv_4x4_s2_as_phases)
    outputs = compute(ops.cast(x, dtype), ops.cast(layer.kernel, dtype))
    if layer.use_bias:
        outputs = ops.add(outputs, ops.reshape(ops.cast(layer.bias, dtype), (1, 1, 1, layer.filters)))
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs
