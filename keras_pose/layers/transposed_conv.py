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

The layer *is* a `keras.layers.Conv2DTranspose` (same `kernel` variable,
layout (4, 4, filters, in_channels), same name and weights), so converters,
`.keras` files and presets saved with the plain layer load unchanged.
"""

import keras
from keras import ops

# (phase, input offset) -> kernel tap along one axis (derivation above).
_TAP = {(0, -1): 3, (0, 0): 1, (1, 0): 2, (1, 1): 0}
_OFFSETS = {0: (-1, 0), 1: (0, 1)}
IMPLEMENTATIONS = ("auto", "phases", "transpose")


def phase_implementation_for_backend(backend=None):
    """"phases" on TensorFlow and JAX, "transpose" on PyTorch (measured faster each)."""
    backend = backend or keras.backend.backend()
    return "transpose" if backend == "torch" else "phases"


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


@keras.saving.register_keras_serializable(package="keras_pose")
class PhaseConv2DTranspose(keras.layers.Conv2DTranspose):
    """`Conv2DTranspose(filters, 4, strides=2, padding="same")` as four 2x2 convs.

    Input (B, H, W, I) -> output (B, 2H, 2W, filters), channels-last. Same
    arguments, weights and output as `keras.layers.Conv2DTranspose` (which it
    subclasses); only the computation differs (module docstring).

    Args:
        filters: output channels.
        implementation: "phases" (four 2x2 convolutions), "transpose" (the
            backend's transposed convolution) or "auto" (default: "phases" on
            TensorFlow and JAX, "transpose" on PyTorch, the faster per backend).
        **kwargs: `Conv2DTranspose` arguments; `kernel_size` 4, `strides` 2,
            `padding` "same", no dilation and channels-last are required.
    """

    def __init__(self, filters, kernel_size=4, strides=2, padding="same", implementation="auto", **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, **kwargs)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}.")
        if (
            tuple(self.kernel_size) != (4, 4)
            or tuple(self.strides) != (2, 2)
            or self.padding != "same"
            or tuple(self.dilation_rate) != (1, 1)
            or self.data_format != "channels_last"
            or self.output_padding is not None
        ):
            raise ValueError(
                "PhaseConv2DTranspose supports only kernel_size 4, strides 2, padding 'same', no dilation, "
                "no output_padding and channels_last; use keras.layers.Conv2DTranspose for other settings."
            )
        self.implementation = implementation

    def call(self, inputs):
        implementation = self.implementation
        if implementation == "auto":
            implementation = phase_implementation_for_backend()
        if implementation == "transpose":
            return super().call(inputs)
        kernel = ops.cast(self.kernel, self.compute_dtype)
        outputs = transposed_conv_4x4_s2_as_phases(inputs, kernel)
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(ops.cast(self.bias, outputs.dtype), (1, 1, 1, self.filters)))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        config["implementation"] = self.implementation
        return config
