"""Building blocks of RTMO (mmpose `projects/rtmo`), checkpoint-compatible.

Layers (registered, serialisable):

- `FocusSpaceToDepth`: YOLOX's Focus slicing (B, H, W, C) -> (B, H/2, W/2, 4C)
  in the reference's channel order (top-left, bottom-left, top-right,
  bottom-right pixels of each 2x2 cell).
- `ChannelHalves`: splits (B, H, W, 2C) into the first and the second C
  channels (the RTMO head's classification / pose inputs).
- `HybridEncoderLayer`: the DETR post-norm transformer encoder layer of
  the HybridEncoder on an NHWC map, with its 2-D sine position encoding.

Graph builders (functions adding `ConvModule`s to a functional graph and
recording each layer's PyTorch module path in `LayerFactory.paths`, so a
converter ports every layer by name): `focus_stem`, `csp_layer` (mmdet /
mmpose `CSPLayer` with Darknet bottlenecks), `spp_bottleneck`,
`csp_rep_layer` (RT-DETR `CSPRepLayer` with RepVGG blocks in their
training form: 3x3 conv-BN + 1x1 conv-BN, add, SiLU) and `channel_mapper`.

All tensors are NHWC; the activation is SiLU (mmcv "Swish" / "SiLU").
"""

import math

import keras
from keras import ops

from keras_pose.layers import TORCH_BN_EPSILON, TORCH_BN_MOMENTUM, ConvModule, TorchMaxPool2D

# mmpose's RTMO backbone and head norm: BN(momentum=0.03, eps=0.001); Keras
# keeps the old average's share as `momentum`.
RTMO_BN_EPSILON = 1e-3
RTMO_BN_MOMENTUM = 0.97


def norm_momentum_or(norm_momentum, default):
    """`norm_momentum` (a float in [0, 1)) or `default` when None; a clear error otherwise."""
    if norm_momentum is None:
        return default
    if not 0.0 <= float(norm_momentum) < 1.0:
        raise ValueError(f"norm_momentum must be in [0, 1) (Keras convention: the old average's share; mmpose's "
                         f"momentum m is 1 - m here), got {norm_momentum!r}.")
    return float(norm_momentum)


def rtmo_conv_initializer():
    """mmpose RTMO's initialisation of every ``Conv2d`` (the configs' model ``init_cfg``).

    ``Kaiming(a=sqrt(5), distribution='uniform', mode='fan_in',
    nonlinearity='leaky_relu')``: U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)),
    i.e. variance 1 / (3 fan_in) (fan_in = kernel h * w * input channels per
    group), biases 0. Keras' ``VarianceScaling(1/3, "fan_in", "uniform")`` is
    the same law. `ConvModule`'s default (he_normal, variance 2 / fan_in) is
    6x larger: an untrained network's eval-mode activations on 0..255 input
    then grow by ~2.4x per layer to ~1e4 and the decoded boxes (exp) and
    keypoints overflow to Inf / NaN. It also trains slower: Adam's steps do
    not scale with the weights, so behind a BatchNorm a 2.4x larger kernel
    moves 2.4x slower (RTMO-t depth, widen 0.25, 256 px, the 4 COCO samples,
    lr 2e-3: loss 15.8 with he_normal, 11.3 with this law after 100 steps).
    """
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def layer_name(path):
    """Keras layer name of a PyTorch module path ("stage1.1.main_conv" -> "stage1_1_main_conv")."""
    return path.replace(".", "_")


class LayerFactory:
    """Creates the layers of one functional model and records their PyTorch paths.

    Args:
        paths: dict filled with {layer name: PyTorch module path (without
            the model prefix such as "backbone.")}.
        dtype: dtype policy of every layer.
        norm_epsilon / norm_momentum: the BatchNorm settings of `conv`
            (Keras momentum convention).
    """

    def __init__(self, paths, dtype=None, norm_epsilon=RTMO_BN_EPSILON, norm_momentum=RTMO_BN_MOMENTUM):
        self.paths = paths
        self.dtype = dtype
        self.norm_epsilon = norm_epsilon
        self.norm_momentum = norm_momentum

    def _record(self, layer, path):
        if layer.name in self.paths:
            raise ValueError(f"duplicate layer {layer.name!r} ({path}).")
        self.paths[layer.name] = path
        return layer

    def conv(self, path, filters, kernel_size, strides=1, groups=1, activation="silu", norm_epsilon=None,
             norm_momentum=None):
        """An mmcv ConvModule (conv without bias, BatchNorm, activation) at `path`."""
        layer = ConvModule(
            filters,
            kernel_size,
            strides=strides,
            groups=groups,
            activation=activation,
            norm_epsilon=self.norm_epsilon if norm_epsilon is None else norm_epsilon,
            norm_momentum=self.norm_momentum if norm_momentum is None else norm_momentum,
            kernel_initializer=rtmo_conv_initializer(),
            dtype=self.dtype,
            name=layer_name(path),
        )
        return self._record(layer, path)

    def plain_conv(self, path, filters, bias_initializer="zeros"):
        """A bare 1x1 `nn.Conv2d` with bias (the head's output convolutions)."""
        layer = keras.layers.Conv2D(filters, 1, kernel_initializer=rtmo_conv_initializer(),
                                    bias_initializer=bias_initializer, dtype=self.dtype,
                                    name=layer_name(path))
        return self._record(layer, path)

    def layer(self, path, layer):
        """Record any other layer (e.g. a `HybridEncoderLayer`) under `path`."""
        return self._record(layer, path)


@keras.saving.register_keras_serializable(package="keras_pose")
class FocusSpaceToDepth(keras.layers.Layer):
    """YOLOX Focus slicing: (B, H, W, C) -> (B, H/2, W/2, 4C), H and W even.

    Channel blocks in the reference order: x[::2, ::2], x[1::2, ::2],
    x[::2, 1::2], x[1::2, 1::2] (rows, columns).
    """

    def call(self, x):
        return ops.concatenate(
            [x[:, ::2, ::2, :], x[:, 1::2, ::2, :], x[:, ::2, 1::2, :], x[:, 1::2, 1::2, :]], axis=-1
        )

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else h // 2, None if w is None else w // 2, 4 * c)


@keras.saving.register_keras_serializable(package="keras_pose")
class ChannelHalves(keras.layers.Layer):
    """(B, H, W, 2C) -> [(B, H, W, C) first channels, (B, H, W, C) last channels]."""

    def call(self, x):
        half = x.shape[-1] // 2
        return [x[..., :half], x[..., half:]]

    def compute_output_shape(self, input_shape):
        half = (*input_shape[:-1], input_shape[-1] // 2)
        return [half, half]


def sine_position_encoding_2d(height, width, dim_t):
    """The HybridEncoder's 2-D sine encoding of an (height, width) grid.

    Args:
        height, width: grid size (ints or scalar tensors).
        dim_t: (n,) frequencies `temperature ** (arange(n) / n)`.

    Returns:
        (height * width, 4n), row-major pixels; channels
        [cos(y / dim_t), sin(y / dim_t), cos(x / dim_t), sin(x / dim_t)].
    """
    ys = ops.cast(ops.arange(height), "float32")
    xs = ops.cast(ops.arange(width), "float32")
    grid_y = ops.reshape(ops.tile(ops.expand_dims(ys, 1), [1, width]), (-1, 1))
    grid_x = ops.reshape(ops.tile(ops.expand_dims(xs, 0), [height, 1]), (-1, 1))
    dim_t = ops.reshape(ops.cast(dim_t, "float32"), (1, -1))
    freq_y = grid_y / dim_t
    freq_x = grid_x / dim_t
    return ops.concatenate([ops.cos(freq_y), ops.sin(freq_y), ops.cos(freq_x), ops.sin(freq_x)], axis=-1)


def sine_frequencies(num, temperature):
    """`temperature ** (arange(num) / num)` in float32, as the reference's `dim_t` buffer."""
    import numpy as np

    return np.power(np.float32(temperature), np.arange(num, dtype=np.float32) / np.float32(num)).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_pose")
class HybridEncoderLayer(keras.layers.Layer):
    """DETR transformer encoder layer (post-norm) on an NHWC map, as mmpose's HybridEncoder runs it.

    With x the flattened map (B, H*W, C) and p its sine position encoding
    (`sine_position_encoding_2d`, frequencies `dim_t`):
    `x = LN(x + MHA(q=x+p, k=x+p, v=x))`, `x = LN(x + FC2(GELU(FC1(x))))`,
    reshaped back to (B, H, W, C). Any H, W.

    Args:
        hidden_dim: C (multiple of 4 and of `num_heads`).
        num_heads: attention heads.
        feedforward_channels: FFN hidden width.
        temperature: sine encoding temperature (10000).
        norm_epsilon: LayerNorm epsilon (torch 1e-5).

    Weights: `dim_t` (non-trainable, C/4: the reference's
    `sincos_pos_enc.dim_t` buffer), `in_proj` (C -> 3C, [q | k | v]),
    `out_proj`, `norm1`, `ffn_fc1`, `ffn_fc2`, `norm2`.
    """

    def __init__(self, hidden_dim=256, num_heads=8, feedforward_channels=1024, temperature=10000.0,
                 norm_epsilon=TORCH_BN_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.feedforward_channels = int(feedforward_channels)
        self.temperature = float(temperature)
        self.norm_epsilon = float(norm_epsilon)
        if self.hidden_dim % 4 or self.hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim {self.hidden_dim} must be a multiple of 4 (2-D sine encoding) and of "
                f"num_heads {self.num_heads}."
            )
        self.head_dim = self.hidden_dim // self.num_heads
        dense = lambda units, name: keras.layers.Dense(units, dtype=self.dtype_policy, name=name)  # noqa: E731
        self.in_proj = dense(3 * self.hidden_dim, "in_proj")
        self.out_proj = dense(self.hidden_dim, "out_proj")
        self.ffn_fc1 = dense(self.feedforward_channels, "ffn_fc1")
        self.ffn_fc2 = dense(self.hidden_dim, "ffn_fc2")
        norm = lambda name: keras.layers.LayerNormalization(  # noqa: E731
            epsilon=self.norm_epsilon, dtype=self.dtype_policy, name=name
        )
        self.norm1 = norm("norm1")
        self.norm2 = norm("norm2")

    def build(self, input_shape):
        tokens = (None, None, self.hidden_dim)
        n = self.hidden_dim // 4
        self.dim_t = self.add_weight(
            name="dim_t",
            shape=(n,),
            initializer=keras.initializers.Constant(sine_frequencies(n, self.temperature)),
            trainable=False,
            dtype="float32",
            autocast=False,  # frequencies stay float32 under mixed precision
        )
        self.in_proj.build(tokens)
        self.out_proj.build(tokens)
        self.ffn_fc1.build(tokens)
        self.ffn_fc2.build((None, None, self.feedforward_channels))
        self.norm1.build(tokens)
        self.norm2.build(tokens)
        self.built = True

    def _heads(self, t, n):
        return ops.transpose(ops.reshape(t, (-1, n, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def call(self, x):
        shape = ops.shape(x)
        h, w = shape[1], shape[2]
        n = h * w
        tokens = ops.reshape(x, (-1, n, self.hidden_dim))
        pos = ops.cast(ops.expand_dims(sine_position_encoding_2d(h, w, self.dim_t), 0), tokens.dtype)
        kernel = ops.cast(self.in_proj.kernel, tokens.dtype)
        bias = ops.cast(self.in_proj.bias, tokens.dtype)
        c = self.hidden_dim
        qk = ops.matmul(tokens + pos, kernel[:, : 2 * c]) + bias[: 2 * c]
        v = ops.matmul(tokens, kernel[:, 2 * c :]) + bias[2 * c :]
        q, k = self._heads(qk[..., :c], n), self._heads(qk[..., c:], n)
        v = self._heads(v, n)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(self.head_dim))
        probs = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), v.dtype)
        attn = ops.reshape(ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3)), (-1, n, c))
        tokens = self.norm1(tokens + self.out_proj(attn))
        hidden = self.ffn_fc1(tokens)
        hidden = ops.multiply(ops.multiply(hidden, 0.5), ops.add(1.0, ops.erf(hidden * (1.0 / math.sqrt(2.0)))))
        tokens = self.norm2(tokens + self.ffn_fc2(hidden))
        return ops.reshape(tokens, (-1, h, w, c))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "feedforward_channels": self.feedforward_channels,
                "temperature": self.temperature,
                "norm_epsilon": self.norm_epsilon,
            }
        )
        return config


# ---------------------------------------------------------------- graph builders


def focus_stem(x, factory, filters, path="stem"):
    """Focus stem: space-to-depth then a 3x3 stride-1 ConvModule (`<path>.conv`). (B, H/2, W/2, filters)."""
    x = FocusSpaceToDepth(dtype=factory.dtype, name=layer_name(path) + "_focus")(x)
    return factory.conv(f"{path}.conv", filters, 3)(x)


def darknet_bottleneck(x, factory, path, channels, add_identity):
    """Darknet bottleneck (expansion 1): 1x1 then 3x3 ConvModule, plus the input if `add_identity`."""
    out = factory.conv(f"{path}.conv1", channels, 1)(x)
    out = factory.conv(f"{path}.conv2", channels, 3)(out)
    if add_identity and x.shape[-1] == channels:
        out = keras.layers.Add(dtype=factory.dtype, name=layer_name(path) + "_add")([out, x])
    return out


def csp_layer(x, factory, path, out_channels, num_blocks, add_identity=True, expand_ratio=0.5):
    """CSP layer: cat(blocks(main_conv(x)), short_conv(x)) -> final_conv. (B, H, W, out_channels)."""
    mid = int(out_channels * expand_ratio)
    short = factory.conv(f"{path}.short_conv", mid, 1)(x)
    main = factory.conv(f"{path}.main_conv", mid, 1)(x)
    for i in range(num_blocks):
        main = darknet_bottleneck(main, factory, f"{path}.blocks.{i}", mid, add_identity)
    merged = keras.layers.Concatenate(dtype=factory.dtype, name=layer_name(path) + "_concat")([main, short])
    return factory.conv(f"{path}.final_conv", out_channels, 1)(merged)


def spp_bottleneck(x, factory, path, out_channels, kernel_sizes=(5, 9, 13)):
    """SPP: conv1 (1x1, C/2), cat with stride-1 max pools of each kernel size, conv2 (1x1)."""
    mid = x.shape[-1] // 2
    x = factory.conv(f"{path}.conv1", mid, 1)(x)
    pooled = [
        TorchMaxPool2D(k, strides=1, padding=k // 2, dtype=factory.dtype, name=f"{layer_name(path)}_pool{k}")(x)
        for k in kernel_sizes
    ]
    x = keras.layers.Concatenate(dtype=factory.dtype, name=layer_name(path) + "_concat")([x, *pooled])
    return factory.conv(f"{path}.conv2", out_channels, 1)(x)


def repvgg_block(x, factory, path, channels):
    """RepVGG block (training form, no identity norm): SiLU(BN(conv3x3(x)) + BN(conv1x1(x)))."""
    a = factory.conv(f"{path}.branch_3x3", channels, 3, activation=None)(x)
    b = factory.conv(f"{path}.branch_1x1", channels, 1, activation=None)(x)
    out = keras.layers.Add(dtype=factory.dtype, name=layer_name(path) + "_add")([a, b])
    return keras.layers.Activation("silu", dtype=factory.dtype, name=layer_name(path) + "_act")(out)


def csp_rep_layer(x, factory, path, out_channels, num_blocks, widen_factor=1.0):
    """CSPRep layer: conv3(bottlenecks(conv1(x)) + conv2(x)); conv3 only if the hidden width differs."""
    hidden = int(out_channels * widen_factor)
    main = factory.conv(f"{path}.conv1", hidden, 1)(x)
    for i in range(num_blocks):
        main = repvgg_block(main, factory, f"{path}.bottlenecks.{i}", hidden)
    short = factory.conv(f"{path}.conv2", hidden, 1)(x)
    out = keras.layers.Add(dtype=factory.dtype, name=layer_name(path) + "_add")([main, short])
    if hidden != out_channels:
        out = factory.conv(f"{path}.conv3", out_channels, 1)(out)
    return out


def channel_mapper(features, factory, path, out_channels):
    """mmdet ChannelMapper (kernel 1, BN, no activation): one 1x1 ConvModule per input (`<path>.convs.i`)."""
    return [
        factory.conv(f"{path}.convs.{i}", out_channels, 1, activation=None)(f) for i, f in enumerate(features)
    ]


def with_dtype_policy(config):
    """A copy of a functional sub-model's config with its serialised `dtype` policy deserialised (for `from_config`)."""
    config = dict(config)
    if isinstance(config.get("dtype"), dict):
        config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
    return config


__all__ = [
    "ChannelHalves",
    "FocusSpaceToDepth",
    "HybridEncoderLayer",
    "LayerFactory",
    "RTMO_BN_EPSILON",
    "RTMO_BN_MOMENTUM",
    "TORCH_BN_MOMENTUM",
    "channel_mapper",
    "csp_layer",
    "csp_rep_layer",
    "focus_stem",
    "layer_name",
    "sine_frequencies",
    "sine_position_encoding_2d",
    "spp_bottleneck",
    "with_dtype_policy",
]
