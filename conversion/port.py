"""Porting PyTorch tensors into Keras layers, one helper per layer kind.

Every helper takes the converter's `KeyAccountant` (`acc`), the PyTorch module
path of the tensors (`prefix`, e.g. "backbone.stem.0.conv"; a trailing "." is
allowed) and the built Keras layer. It pops each tensor with the shape the
layer needs, *in the checkpoint's layout* (so a missing, misshapen or
non-finite tensor is recorded by the accountant and reported by
`acc.finish()`, with every other problem), and assigns what arrived.

Layouts:

| PyTorch                                   | Keras                                        |
| ----------------------------------------- | -------------------------------------------- |
| Conv2d weight (O, I/groups, kh, kw)       | Conv2D kernel (kh, kw, I/groups, O)          |
| ConvTranspose2d weight (I, O, kh, kw)     | Conv2DTranspose kernel (kh, kw, O, I)        |
| Linear weight (O, I)                      | Dense kernel (I, O)                          |
| BatchNorm2d weight, bias, running_mean, running_var | gamma, beta, moving_mean, moving_variance |
| LayerNorm weight, bias                    | gamma, beta                                  |

Both convolution kinds go (.., .., a, b) <- (b, a, kh, kw) by the same
transpose (2, 3, 1, 0). `num_batches_tracked` is never read (converters ignore
it through the accountant).
"""

import keras
import numpy as np

from keras_pose.errors import CheckpointError

BATCH_NORM_TENSORS = (
    ("weight", "gamma"),
    ("bias", "beta"),
    ("running_mean", "moving_mean"),
    ("running_var", "moving_variance"),
)


def _key(prefix, leaf):
    return f"{prefix.rstrip('.')}.{leaf}"


def assign(variable, value):
    """Assign a NumPy array (Keras layout) to a variable, cast to its dtype.

    Raises:
        CheckpointError: the shapes differ (a converter bug: the accountant
            checked the checkpoint's shape already).
    """
    value = np.asarray(value)
    if tuple(variable.shape) != value.shape:
        raise CheckpointError(
            f"Internal shape mismatch assigning {variable.path}: {value.shape} vs {tuple(variable.shape)}."
        )
    variable.assign(keras.ops.cast(value.astype(np.float32, copy=False), variable.dtype))


def port_tensor(acc, key, variable, torch_shape=None, to_keras=None):
    """Pop `key` (shape `torch_shape`, default the variable's) and assign `to_keras(value)`.

    Returns True if the tensor was there with the right shape.
    """
    value = acc.pop(key, tuple(variable.shape) if torch_shape is None else torch_shape)
    if value is None:
        return False
    assign(variable, value if to_keras is None else to_keras(value))
    return True


def port_conv(acc, prefix, conv):
    """`<prefix>.weight` (+ `.bias` where the layer has one) into a Conv2D / Conv2DTranspose."""
    kh, kw, a, b = (int(d) for d in conv.kernel.shape)
    ok = port_tensor(acc, _key(prefix, "weight"), conv.kernel, (b, a, kh, kw), lambda w: w.transpose(2, 3, 1, 0))
    if getattr(conv, "use_bias", False):
        ok = port_tensor(acc, _key(prefix, "bias"), conv.bias) and ok
    return ok


def port_dense(acc, prefix, dense):
    """A Linear layer's `<prefix>.weight` (O, I) (+ `.bias`) into a Dense layer."""
    n_in, n_out = (int(d) for d in dense.kernel.shape)
    ok = port_tensor(acc, _key(prefix, "weight"), dense.kernel, (n_out, n_in), np.transpose)
    if dense.use_bias:
        ok = port_tensor(acc, _key(prefix, "bias"), dense.bias) and ok
    return ok


def port_layer_norm(acc, prefix, norm):
    """A LayerNorm's `<prefix>.weight` / `.bias` into a LayerNormalization."""
    ok = port_tensor(acc, _key(prefix, "weight"), norm.gamma)
    return port_tensor(acc, _key(prefix, "bias"), norm.beta) and ok


def port_batch_norm(acc, prefix, norm):
    """A BatchNorm2d's weight, bias, running mean and variance into a BatchNormalization."""
    ok = True
    for leaf, attribute in BATCH_NORM_TENSORS:
        variable = getattr(norm, attribute, None)
        if variable is not None:  # gamma / beta exist only with scale / center
            ok = port_tensor(acc, _key(prefix, leaf), variable) and ok
    return ok


def port_conv_module(acc, layer, conv_prefix, norm_prefix=None):
    """An mmcv `ConvModule` (Conv2d [+ BatchNorm2d]) into a `keras_pose.layers.ConvModule`.

    Args:
        conv_prefix: the Conv2d's module path ("backbone.stem.0.conv").
        norm_prefix: the BatchNorm2d's module path ("backbone.stem.0.bn"),
            required when the layer has a norm.
    """
    ok = port_conv(acc, conv_prefix, layer.conv)
    if layer.bn is not None:
        if norm_prefix is None:
            raise ValueError(f"layer {layer.name!r} has a BatchNorm; give its norm_prefix.")
        ok = port_batch_norm(acc, norm_prefix, layer.bn) and ok
    return ok


def port_basic_block(acc, block, prefix):
    """A torchvision / mmpose ResNet `BasicBlock` at `prefix` into a `BasicResidualBlock`.

    Reads `<prefix>.conv1.weight`, `.bn1.*`, `.conv2.weight`, `.bn2.*` and,
    with a projection shortcut, `.downsample.0.weight` / `.downsample.1.*`.
    """
    prefix = prefix.rstrip(".")
    ok = port_conv_module(acc, block.conv1, f"{prefix}.conv1", f"{prefix}.bn1")
    ok = port_conv_module(acc, block.conv2, f"{prefix}.conv2", f"{prefix}.bn2") and ok
    if block.downsample is not None:
        ok = port_conv_module(acc, block.downsample, f"{prefix}.downsample.0", f"{prefix}.downsample.1") and ok
    return ok


def port_stacked(acc, keys, variable, torch_shape, stack):
    """Several tensors (`keys`, each `torch_shape`) combined by `stack(list)` into one variable.

    E.g. HF's separate query / key / value projections into one qkv kernel, or
    the ViTPose++ experts into one (E, ...) kernel. Nothing is assigned unless
    every tensor arrived.
    """
    values = [acc.pop(key, torch_shape) for key in keys]
    if any(v is None for v in values):
        return False
    assign(variable, stack(values))
    return True


__all__ = [
    "assign",
    "port_basic_block",
    "port_batch_norm",
    "port_conv",
    "port_conv_module",
    "port_dense",
    "port_layer_norm",
    "port_stacked",
    "port_tensor",
]
