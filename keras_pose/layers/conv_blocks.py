"""Convolutional building blocks shared by the CNN families.

The blocks compute what their PyTorch counterparts compute, so converted
checkpoints reproduce the reference outputs to float32 round-off:

- `ConvModule`: mmcv's `ConvModule` (Conv2d -> optional BatchNorm ->
  optional activation). Torch pads symmetrically (`padding` pixels on every
  side); Keras "same" pads asymmetrically when the stride is > 1, so unless
  the two agree (stride 1, odd kernel, half padding) the layer pads
  explicitly (`ZeroPadding2D`) and convolves with "valid".
- `TorchMaxPool2D`: `nn.MaxPool2d(k, s, padding)` (padding with -inf,
  floor output size).
- `BasicResidualBlock`: torchvision / mmpose ResNet `BasicBlock`
  (3x3 conv-BN-ReLU, 3x3 conv-BN, identity or 1x1 conv-BN projection
  shortcut, add, ReLU).

BatchNorm uses torch's defaults: epsilon 1e-5 and momentum 0.1 in torch's
convention, i.e. Keras `momentum=0.9` (Keras keeps `momentum` of the old
moving average). All tensors are NHWC; kernels are HWIO. Loading PyTorch
tensors into these layers is the converters' job (`keras_pose.conversion.port`).
"""

import keras
from keras import ops

TORCH_BN_EPSILON = 1e-5
TORCH_BN_MOMENTUM = 0.9  # torch momentum 0.1 in Keras' convention


def _pair(value, name):
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}.")
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))


def torch_padding(kernel_size, dilation_rate=1, padding="auto"):
    """Symmetric padding (ph, pw) in pixels of a torch convolution.

    Args:
        kernel_size: int or (kh, kw).
        dilation_rate: int or (dh, dw).
        padding: "auto" (= `dilation * (k - 1) // 2`, keeps the size at
            stride 1 for odd kernels), an int or a (ph, pw) pair.
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    dh, dw = _pair(dilation_rate, "dilation_rate")
    if padding == "auto" or padding is None:
        return (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
    return _pair(padding, "padding")


@keras.saving.register_keras_serializable(package="keras_pose")
class ConvModule(keras.layers.Layer):
    """Conv2D -> BatchNorm -> activation with torch-compatible padding.

    mmcv `ConvModule(in, filters, kernel_size, stride, padding, dilation,
    groups, bias="auto", norm_cfg=BN, act_cfg=ReLU)`.

    Input (B, H, W, C_in); output (B, H', W', filters) with
    H' = (H + 2 * ph - dh * (kh - 1) - 1) // stride + 1 (torch's formula).

    Args:
        filters: output channels.
        kernel_size: int or (kh, kw).
        strides: int or (sh, sw).
        padding: "auto" (half the dilated kernel, torch's usual choice), an
            int or (ph, pw) in pixels on each side.
        dilation_rate: int or (dh, dw).
        groups: convolution groups.
        use_bias: "auto" (bias only without a norm layer, as mmcv), or bool.
        use_norm: follow the conv with BatchNormalization.
        activation: an activation name ("relu") or None.
        norm_epsilon: BatchNorm epsilon (torch 1e-5).
        norm_momentum: BatchNorm momentum in Keras' convention (torch 0.1 ->
            0.9).
        kernel_initializer: conv kernel initializer.

    Sublayers: `pad` (or None), `conv`, `bn` (or None), `act` (or None).
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="auto",
        dilation_rate=1,
        groups=1,
        use_bias="auto",
        use_norm=True,
        activation="relu",
        norm_epsilon=TORCH_BN_EPSILON,
        norm_momentum=TORCH_BN_MOMENTUM,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.padding = torch_padding(self.kernel_size, self.dilation_rate, padding)
        self.groups = int(groups)
        self.use_norm = bool(use_norm)
        if use_bias == "auto":
            use_bias = not self.use_norm
        self.use_bias = bool(use_bias)
        self.activation = activation
        self.norm_epsilon = float(norm_epsilon)
        self.norm_momentum = float(norm_momentum)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        # Keras "same" equals torch's symmetric padding only at stride 1 with
        # padding = dilation * (k - 1) / 2 on both axes.
        keras_same = self.strides == (1, 1) and all(
            2 * p == d * (k - 1) for p, d, k in zip(self.padding, self.dilation_rate, self.kernel_size)
        )
        if keras_same and self.padding == (0, 0):
            conv_padding, self.pad = "valid", None
        elif keras_same:
            conv_padding, self.pad = "same", None
        else:
            conv_padding = "valid"
            self.pad = (
                keras.layers.ZeroPadding2D(self.padding, dtype=self.dtype_policy, name="pad")
                if self.padding != (0, 0)
                else None
            )
        # A strided 1x1 convolution without padding is a subsample followed by
        # a 1x1 convolution. Computing it that way sidesteps a TensorFlow
        # oneDNN CPU bug (memory corruption in the gradient of strided 1x1
        # convolutions with few channels) and skips work on the dropped pixels.
        self.subsample = None
        conv_strides = self.strides
        if self.kernel_size == (1, 1) and self.strides != (1, 1) and self.padding == (0, 0) and self.groups == 1:
            self.subsample, conv_strides = self.strides, (1, 1)
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            strides=conv_strides,
            padding=conv_padding,
            dilation_rate=self.dilation_rate,
            groups=self.groups,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.bn = (
            keras.layers.BatchNormalization(
                epsilon=self.norm_epsilon,
                momentum=self.norm_momentum,
                dtype=self.dtype_policy,
                name="bn",
            )
            if self.use_norm
            else None
        )
        self.act = (
            keras.layers.Activation(activation, dtype=self.dtype_policy, name="act")
            if activation is not None
            else None
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.pad is not None:
            self.pad.build(shape)
            shape = tuple(self.pad.compute_output_shape(shape))
        if self.subsample is not None:
            shape = (
                shape[0],
                None if shape[1] is None else -(-shape[1] // self.subsample[0]),
                None if shape[2] is None else -(-shape[2] // self.subsample[1]),
                shape[3],
            )
        self.conv.build(shape)
        shape = tuple(self.conv.compute_output_shape(shape))
        if self.bn is not None:
            self.bn.build(shape)
        if self.act is not None:
            self.act.build(shape)
        self.built = True

    def call(self, x, training=None):
        if self.pad is not None:
            x = self.pad(x)
        if self.subsample is not None:
            x = x[:, :: self.subsample[0], :: self.subsample[1], :]
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x, training=training)
        if self.act is not None:
            x = self.act(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        out = []
        for i, axis in enumerate((1, 2)):
            size = shape[axis]
            if size is None:
                out.append(None)
                continue
            k, s, d, p = self.kernel_size[i], self.strides[i], self.dilation_rate[i], self.padding[i]
            out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
        return (shape[0], out[0], out[1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "strides": list(self.strides),
                "padding": list(self.padding),
                "dilation_rate": list(self.dilation_rate),
                "groups": self.groups,
                "use_bias": self.use_bias,
                "use_norm": self.use_norm,
                "activation": self.activation,
                "norm_epsilon": self.norm_epsilon,
                "norm_momentum": self.norm_momentum,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class TorchMaxPool2D(keras.layers.Layer):
    """`torch.nn.MaxPool2d(pool_size, strides, padding)` (floor mode).

    Pads `padding` pixels of -inf on every side, then max-pools with "valid":
    output size (H + 2 * p - k) // s + 1, as torch. (Keras "same" pooling
    pads only bottom/right at stride 2, which shifts the windows.)

    Args:
        pool_size: int or (kh, kw).
        strides: int or (sh, sw); defaults to `pool_size`.
        padding: int or (ph, pw) pixels on each side.
    """

    def __init__(self, pool_size=2, strides=None, padding=0, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = _pair(self.pool_size if strides is None else strides, "strides")
        self.padding = _pair(padding, "padding")
        self.pool = keras.layers.MaxPooling2D(
            self.pool_size, strides=self.strides, padding="valid", dtype=self.dtype_policy, name="pool"
        )

    def build(self, input_shape):
        self.built = True

    def call(self, x):
        ph, pw = self.padding
        if ph or pw:
            x = ops.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]], constant_values=float("-inf"))
        return self.pool(x)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        out = []
        for i, axis in enumerate((1, 2)):
            size = shape[axis]
            out.append(
                None
                if size is None
                else (size + 2 * self.padding[i] - self.pool_size[i]) // self.strides[i] + 1
            )
        return (shape[0], out[0], out[1], shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": list(self.pool_size),
                "strides": list(self.strides),
                "padding": list(self.padding),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class BasicResidualBlock(keras.layers.Layer):
    """ResNet `BasicBlock` (expansion 1), as torchvision / mmpose.

    `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, conv1 3x3 with
    the stride, conv2 3x3, both without bias; the shortcut is the identity,
    or a 1x1 conv (stride, no bias) + BN when the stride is > 1 or the
    channel count changes (or `use_projection=True`).

    Input (B, H, W, C_in); output (B, ceil(H / stride), ceil(W / stride),
    filters) (torch: (H + 2 - 3) // stride + 1).

    Args:
        filters: output channels.
        strides: stride of conv1 and of the projection shortcut.
        use_projection: None (automatic), True or False.
        norm_epsilon, norm_momentum: BatchNorm settings (torch defaults).

    Sublayers: `conv1`, `conv2` (`ConvModule`s; `conv2` without activation),
    `downsample` (`ConvModule` without activation, or None).
    """

    def __init__(
        self,
        filters,
        strides=1,
        use_projection=None,
        norm_epsilon=TORCH_BN_EPSILON,
        norm_momentum=TORCH_BN_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.use_projection = use_projection
        self.norm_epsilon = float(norm_epsilon)
        self.norm_momentum = float(norm_momentum)
        common = dict(norm_epsilon=self.norm_epsilon, norm_momentum=self.norm_momentum, dtype=self.dtype_policy)
        self.conv1 = ConvModule(self.filters, 3, strides=self.strides, padding=1, name="conv1", **common)
        self.conv2 = ConvModule(self.filters, 3, padding=1, activation=None, name="conv2", **common)
        self.downsample = None
        self.residual_add = keras.layers.Add(dtype=self.dtype_policy, name="residual_add")
        self.relu = keras.layers.ReLU(dtype=self.dtype_policy, name="relu")

    def build(self, input_shape):
        shape = tuple(input_shape)
        in_channels = shape[-1]
        projection = self.use_projection
        if projection is None:
            projection = self.strides != 1 or in_channels != self.filters
        if projection:
            self.downsample = ConvModule(
                self.filters,
                1,
                strides=self.strides,
                padding=0,
                activation=None,
                norm_epsilon=self.norm_epsilon,
                norm_momentum=self.norm_momentum,
                dtype=self.dtype_policy,
                name="downsample",
            )
            self.downsample.build(shape)
        self.conv1.build(shape)
        mid = self.conv1.compute_output_shape(shape)
        self.conv2.build(mid)
        out = self.conv2.compute_output_shape(mid)
        self.residual_add.build([out, out])
        self.relu.build(out)
        self.built = True

    def call(self, x, training=None):
        shortcut = x if self.downsample is None else self.downsample(x, training=training)
        y = self.conv1(x, training=training)
        y = self.conv2(y, training=training)
        return self.relu(self.residual_add([y, shortcut]))

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "use_projection": self.use_projection,
                "norm_epsilon": self.norm_epsilon,
                "norm_momentum": self.norm_momentum,
            }
        )
        return config
