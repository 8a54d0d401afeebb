"""Layers and graph builders of CPN (Cascaded Pyramid Network).

CPN (Chen et al., CVPR 2018) as the released PyTorch re-implementation
(GengDavid/pytorch-cpn) computes it:

- GlobalNet: for each pyramid level ``C5, C4, C3, C2`` a lateral
  ``conv1x1 -> BN -> ReLU`` to ``global_channels``; from the second level on,
  the lateral is added to the top-down path (the previous level's feature,
  upsampled x2 with align-corners bilinear, then ``conv1x1 -> BN``, no
  ReLU). Each level's feature predicts heatmaps with
  ``conv1x1 -> BN -> ReLU -> conv3x3 (K, no bias) -> resize to the heatmap
  size (align corners) -> BN``.
- RefineNet: level ``i`` (0 = coarsest) goes through ``3 - i`` bottlenecks
  (``conv1x1 / conv3x3 / conv1x1`` with BN, always a ``conv1x1 + BN``
  projection shortcut), is resized to the heatmap size; the four are
  concatenated (coarsest first) and a final bottleneck, ``conv3x3`` (K, no
  bias) and BN give the final heatmaps.

All tensors are channels-last ``(B, H, W, C)``. Layer names are stable: the
converter (`keras_pose.conversion.cpn_converter`) addresses weights by them.
"""

import numpy as np

import keras
from keras import layers
from keras import ops

BN_EPSILON = 1e-5
# torch BatchNorm momentum 0.1 == Keras momentum 0.9.
BN_MOMENTUM = 0.9


def align_corners_matrix(in_size, out_size):
    """Linear-interpolation weights of a 1-D align-corners resize.

    Output pixel ``i`` samples input coordinate ``i * (in - 1) / (out - 1)``
    (torch ``align_corners=True``; ``0`` when ``out == 1``).

    Args:
        in_size: input length (pixels).
        out_size: output length (pixels).

    Returns:
        float64 ``(out_size, in_size)`` matrix ``M`` with ``y = M @ x``; each
        row has at most two non-zero entries summing to 1.
    """
    in_size, out_size = int(in_size), int(out_size)
    if in_size < 1 or out_size < 1:
        raise ValueError(f"Sizes must be positive, got in_size={in_size}, out_size={out_size}.")
    matrix = np.zeros((out_size, in_size), np.float64)
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    for i in range(out_size):
        src = i * scale
        i0 = min(int(np.floor(src)), in_size - 1)
        i1 = min(i0 + 1, in_size - 1)
        frac = src - i0
        matrix[i, i0] += 1.0 - frac
        matrix[i, i1] += frac
    return matrix


@keras.saving.register_keras_serializable(package="keras_pose")
class AlignCornersResize(layers.Layer):
    """Bilinear resize with ``align_corners=True`` (channels-last).

    The equivalent of torch ``nn.Upsample(size=..., mode="bilinear",
    align_corners=True)`` / ``nn.Upsample(scale_factor=s, ...)``.
    ``keras.ops.image.resize`` samples at half-pixel centres and does not
    give these values. The resize is separable and applied as two fixed
    interpolation matrices (``einsum`` over height, then width), which runs
    unchanged on TensorFlow (incl. XLA), JAX and PyTorch.

    Args:
        size: output ``(height, width)`` in pixels; or
        scale_factor: integer factor for both axes (output = input * factor).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Input shape: ``(B, H, W, C)`` with static ``H`` and ``W``.
    Output shape: ``(B, out_h, out_w, C)``.
    """

    def __init__(self, size=None, scale_factor=None, **kwargs):
        super().__init__(**kwargs)
        if (size is None) == (scale_factor is None):
            raise ValueError(
                "AlignCornersResize needs exactly one of `size` ((height, width)) "
                f"or `scale_factor`; got size={size!r}, scale_factor={scale_factor!r}."
            )
        if size is not None:
            size = tuple(int(v) for v in size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"`size` must be a (height, width) pair of positive ints, got {size!r}.")
        if scale_factor is not None:
            if int(scale_factor) != scale_factor or scale_factor < 1:
                raise ValueError(f"`scale_factor` must be a positive integer, got {scale_factor!r}.")
            scale_factor = int(scale_factor)
        self.size = size
        self.scale_factor = scale_factor
        self._matrices = None

    def _output_hw(self, in_h, in_w):
        if self.size is not None:
            return self.size
        return (in_h * self.scale_factor, in_w * self.scale_factor)

    def build(self, input_shape):
        in_h, in_w = input_shape[1], input_shape[2]
        if in_h is None or in_w is None:
            raise ValueError(
                f"{self.name}: AlignCornersResize needs static spatial dimensions, got "
                f"input shape {tuple(input_shape)}. Build the model with a fixed "
                "image_shape, e.g. (256, 192, 3)."
            )
        out_h, out_w = self._output_hw(in_h, in_w)
        self._matrices = (
            None if out_h == in_h else align_corners_matrix(in_h, out_h).astype(np.float32),
            None if out_w == in_w else align_corners_matrix(in_w, out_w).astype(np.float32),
        )
        self.built = True

    def call(self, inputs):
        mh, mw = self._matrices
        x = inputs
        if mh is not None:
            x = ops.einsum("oh,bhwc->bowc", ops.cast(mh, x.dtype), x)
        if mw is not None:
            x = ops.einsum("pw,bhwc->bhpc", ops.cast(mw, x.dtype), x)
        return x

    def compute_output_shape(self, input_shape):
        in_h, in_w = input_shape[1], input_shape[2]
        if in_h is None or in_w is None:
            return (input_shape[0], *(self.size or (None, None)), input_shape[3])
        return (input_shape[0], *self._output_hw(in_h, in_w), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"size": None if self.size is None else list(self.size), "scale_factor": self.scale_factor})
        return config


def conv_bn(x, filters, kernel_size, *, name, relu, use_bias=False, dtype=None, relu_name=None):
    """``Conv2D ("same", stride 1) -> BatchNorm [-> ReLU]``.

    Layers are named ``{name}_conv``, ``{name}_bn`` and ``{name}_relu`` (or
    `relu_name`).
    """
    x = layers.Conv2D(
        filters, kernel_size, padding="same", use_bias=use_bias, dtype=dtype, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, dtype=dtype, name=f"{name}_bn")(x)
    if relu:
        x = layers.ReLU(dtype=dtype, name=relu_name or f"{name}_relu")(x)
    return x


def apply_refine_bottleneck(x, planes, *, name, dtype=None):
    """pytorch-cpn's RefineNet bottleneck (output ``2 * planes`` channels).

    ``conv1x1(planes) -> BN -> ReLU -> conv3x3(planes) -> BN -> ReLU ->
    conv1x1(2 * planes) -> BN``, plus a ``conv1x1(2 * planes) -> BN``
    projection shortcut (always present, even when the channel counts
    match), added, then ReLU. Stride 1.

    Layers: ``{name}_{1,2,3}_{conv,bn}`` (main path, keras-hub ResNet style)
    and ``{name}_0_{conv,bn}`` (shortcut).
    """
    shortcut = conv_bn(x, 2 * planes, 1, name=f"{name}_0", relu=False, dtype=dtype)
    y = conv_bn(x, planes, 1, name=f"{name}_1", relu=True, dtype=dtype)
    y = conv_bn(y, planes, 3, name=f"{name}_2", relu=True, dtype=dtype)
    y = conv_bn(y, 2 * planes, 1, name=f"{name}_3", relu=False, dtype=dtype)
    y = layers.Add(dtype=dtype, name=f"{name}_add")([y, shortcut])
    return layers.ReLU(dtype=dtype, name=f"{name}_out")(y)


def apply_global_net(
    features, num_keypoints, heatmap_size, *, channels=256, upsample_bias=False, dtype=None
):
    """GlobalNet on the pyramid ``[C5, C4, C3, C2]`` (coarsest first).

    Args:
        features: list of 4-D tensors, coarsest first; each level must be
            twice the size of the previous one.
        num_keypoints: heatmap channels K.
        heatmap_size: ``(h, w)`` of the predicted heatmaps.
        channels: lateral / top-down channels (256 in CPN).
        upsample_bias: whether the top-down ``conv1x1`` has a bias (False in
            the released code; early pytorch-cpn revisions had one).
        dtype: layer dtype policy.

    Returns:
        ``(feature_maps, heatmaps)``: lists (coarsest first) of the level
        features ``(B, h_i, w_i, channels)`` (layers ``global_fm{i}``) and
        heatmaps ``(B, h, w, K)`` (compute dtype, before the float32 cast).
    """
    feature_maps, heatmaps = [], []
    up = None
    num_levels = len(features)
    for i, c in enumerate(features):
        # The first level's feature is its lateral (ReLU layer named global_fm0).
        lateral = conv_bn(
            c, channels, 1, name=f"global_lateral{i}", relu=True, dtype=dtype,
            relu_name=f"global_fm{i}" if up is None else None,
        )
        if up is None:
            feature = lateral
        else:
            feature = layers.Add(dtype=dtype, name=f"global_fm{i}")([lateral, up])
        feature_maps.append(feature)
        if i != num_levels - 1:
            up = AlignCornersResize(scale_factor=2, dtype=dtype, name=f"global_upsample{i}_resize")(feature)
            up = conv_bn(up, channels, 1, name=f"global_upsample{i}", relu=False, use_bias=upsample_bias, dtype=dtype)
        y = conv_bn(feature, channels, 1, name=f"global_predict{i}_1", relu=True, dtype=dtype)
        y = layers.Conv2D(
            num_keypoints, 3, padding="same", use_bias=False, dtype=dtype, name=f"global_predict{i}_2_conv"
        )(y)
        y = AlignCornersResize(size=heatmap_size, dtype=dtype, name=f"global_predict{i}_resize")(y)
        y = layers.BatchNormalization(
            epsilon=BN_EPSILON, momentum=BN_MOMENTUM, dtype=dtype, name=f"global_predict{i}_2_bn"
        )(y)
        heatmaps.append(y)
    return feature_maps, heatmaps


def apply_refine_net(feature_maps, num_keypoints, heatmap_size, *, planes=128, num_blocks=None, dtype=None):
    """RefineNet on the GlobalNet features (coarsest first).

    Args:
        feature_maps: list of GlobalNet features, coarsest first.
        num_keypoints: heatmap channels K.
        heatmap_size: ``(h, w)`` of the output heatmaps.
        planes: bottleneck width (128 in CPN; bottleneck output
            ``2 * planes``).
        num_blocks: bottlenecks per level; default ``[n-1, ..., 1, 0]`` for
            ``n`` levels (``[3, 2, 1, 0]``).
        dtype: layer dtype policy.

    Returns:
        the final heatmaps ``(B, h, w, K)`` (compute dtype).
    """
    n = len(feature_maps)
    num_blocks = list(range(n - 1, -1, -1)) if num_blocks is None else [int(b) for b in num_blocks]
    if len(num_blocks) != n:
        raise ValueError(f"refine num_blocks needs one entry per level ({n}), got {num_blocks}.")
    cascades = []
    for i, x in enumerate(feature_maps):
        for j in range(num_blocks[i]):
            x = apply_refine_bottleneck(x, planes, name=f"refine_cascade{i}_block{j}", dtype=dtype)
        x = AlignCornersResize(size=heatmap_size, dtype=dtype, name=f"refine_cascade{i}_resize")(x)
        cascades.append(x)
    x = layers.Concatenate(axis=-1, dtype=dtype, name="refine_concat")(cascades)
    x = apply_refine_bottleneck(x, planes, name="refine_final_block", dtype=dtype)
    x = layers.Conv2D(num_keypoints, 3, padding="same", use_bias=False, dtype=dtype, name="refine_final_conv")(x)
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, dtype=dtype, name="refine_final_bn")(x)
