"""The RTMO neck: RT-DETR's HybridEncoder (mmpose `HybridEncoder` + `ChannelMapper` projector).

On the backbone features at strides 8, 16, 32 (checkpoint-compatible):

1. `input_proj.i`: 1x1 ConvModule (BN, no activation) to `hidden_dim`;
2. `encoder.0.layers.0`: one transformer encoder layer on the stride-32 map
   with the 2-D sine position encoding (`HybridEncoderLayer`);
3. FPN, top-down: `lateral_convs.j` (1x1 ConvModule, SiLU), nearest 2x
   upsampling, concatenation with the finer map, `fpn_blocks.j` (CSPRep
   layer with round(3 d) RepVGG blocks, hidden width int(hidden_dim * w));
4. PAN, bottom-up: `downsample_convs.j` (3x3 stride-2 ConvModule),
   concatenation with the FPN map of that level, `pan_blocks.j`;
5. the outputs `output_indices` (RTMO: strides 16 and 32) through the
   `projector` (ChannelMapper: 1x1 ConvModule with BN, no activation) to
   `out_channels`.

The neck's BatchNorms use torch's default (eps 1e-5, momentum 0.1).
"""

import keras

from keras_pose.models.rtmo.rtmo_layers import (
    TORCH_BN_MOMENTUM,
    HybridEncoderLayer,
    LayerFactory,
    channel_mapper,
    csp_rep_layer,
    layer_name,
    norm_momentum_or,
    with_dtype_policy,
)
from keras_pose.layers import TORCH_BN_EPSILON


@keras.saving.register_keras_serializable(package="keras_pose")
class HybridEncoder(keras.Model):
    """HybridEncoder neck with its ChannelMapper projector (functional).

    Inputs: a list of len(in_channels) maps (B, H_i, W_i, in_channels[i]),
    finest first, each level half the size of the previous one (any size).
    Outputs: a list of len(output_indices) maps (B, H_i, W_i, out_channels),
    one per selected PAN level (0 = finest).

    Args:
        in_channels: channels of the backbone features, finest first.
        hidden_dim: width of the encoder, FPN and PAN.
        deepen_factor: RepVGG blocks per CSPRep layer = round(3 d).
        widen_factor: CSPRep hidden width = int(hidden_dim * w).
        num_heads, feedforward_channels: the encoder layer's attention heads
            and FFN width.
        pe_temperature: sine position encoding temperature.
        output_indices: PAN levels returned (RTMO: (1, 2)).
        out_channels: projector width (None: no projector).
        norm_momentum: BatchNorm momentum (Keras convention: the old
            average's share) of every conv block; None keeps the reference's
            (0.9, torch's default 0.1).
        dtype: dtype policy.

    `torch_layer_paths` maps every weighted layer's name to its mmpose
    module path (without "neck.").
    """

    def __init__(
        self,
        in_channels=(128, 256, 512),
        hidden_dim=256,
        deepen_factor=0.33,
        widen_factor=0.5,
        num_heads=8,
        feedforward_channels=1024,
        pe_temperature=10000.0,
        output_indices=(1, 2),
        out_channels=256,
        norm_momentum=None,
        dtype=None,
        name="hybrid_encoder",
        **kwargs,
    ):
        in_channels = tuple(int(c) for c in in_channels)
        output_indices = tuple(int(i) for i in output_indices)
        if len(in_channels) < 2:
            raise ValueError(f"in_channels needs at least two levels, got {in_channels}.")
        if not output_indices or not set(output_indices) <= set(range(len(in_channels))):
            raise ValueError(f"output_indices must index the {len(in_channels)} levels, got {output_indices}.")
        num_blocks = round(3 * deepen_factor)
        paths = {}
        factory = LayerFactory(paths, dtype=dtype, norm_epsilon=TORCH_BN_EPSILON,
                               norm_momentum=norm_momentum_or(norm_momentum, TORCH_BN_MOMENTUM))

        # === Functional model ===
        inputs = [keras.Input(shape=(None, None, c), name=f"features_{i}") for i, c in enumerate(in_channels)]
        proj = [
            factory.conv(f"input_proj.{i}", hidden_dim, 1, activation=None)(x) for i, x in enumerate(inputs)
        ]
        encoder = HybridEncoderLayer(
            hidden_dim, num_heads, feedforward_channels, pe_temperature, dtype=dtype, name="encoder_0_layers_0"
        )
        proj[-1] = factory.layer("encoder.0.layers.0", encoder)(proj[-1])

        levels = len(in_channels)
        top_down = [proj[-1]]  # FPN outputs, finest first once complete
        for j, idx in enumerate(range(levels - 1, 0, -1)):
            high = factory.conv(f"lateral_convs.{j}", hidden_dim, 1)(top_down[0])
            top_down[0] = high
            up = keras.layers.UpSampling2D(2, interpolation="nearest", dtype=dtype, name=f"fpn_upsample_{j}")(high)
            merged = keras.layers.Concatenate(dtype=dtype, name=f"fpn_concat_{j}")([up, proj[idx - 1]])
            top_down.insert(0, csp_rep_layer(merged, factory, f"fpn_blocks.{j}", hidden_dim, num_blocks,
                                             widen_factor))
        outs = [top_down[0]]
        for j in range(levels - 1):
            down = factory.conv(f"downsample_convs.{j}", hidden_dim, 3, strides=2)(outs[-1])
            merged = keras.layers.Concatenate(dtype=dtype, name=f"pan_concat_{j}")([down, top_down[j + 1]])
            outs.append(csp_rep_layer(merged, factory, f"pan_blocks.{j}", hidden_dim, num_blocks, widen_factor))
        outs = [outs[i] for i in output_indices]
        if out_channels is not None:
            outs = channel_mapper(outs, factory, "projector", out_channels)

        super().__init__(inputs=inputs, outputs=outs, dtype=dtype, name=name, **kwargs)

        # === Config ===
        self.in_channels = in_channels
        self.hidden_dim = int(hidden_dim)
        self.deepen_factor = float(deepen_factor)
        self.widen_factor = float(widen_factor)
        self.num_heads = int(num_heads)
        self.feedforward_channels = int(feedforward_channels)
        self.pe_temperature = float(pe_temperature)
        self.output_indices = output_indices
        self.out_channels = None if out_channels is None else int(out_channels)
        self.norm_momentum = None if norm_momentum is None else float(norm_momentum)
        self.torch_layer_paths = dict(paths)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "in_channels": list(self.in_channels),
            "hidden_dim": self.hidden_dim,
            "deepen_factor": self.deepen_factor,
            "widen_factor": self.widen_factor,
            "num_heads": self.num_heads,
            "feedforward_channels": self.feedforward_channels,
            "pe_temperature": self.pe_temperature,
            "output_indices": list(self.output_indices),
            "out_channels": self.out_channels,
            **({} if self.norm_momentum is None else {"norm_momentum": self.norm_momentum}),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**with_dtype_policy(config))


__all__ = ["HybridEncoder", "layer_name"]
