"""CSPDarknet, the RTMO backbone (mmpose / mmdet `CSPDarknet`, YOLOX's, checkpoint-compatible).

Architecture P5 (the one RTMO uses), with w = widen_factor and d = deepen_factor:

- stem: Focus (space-to-depth) + 3x3 ConvModule to int(64 w) channels (stride 2);
- stage i = 1..4: a 3x3 stride-2 ConvModule to int(c_i w) channels
  (c = 128, 256, 512, 1024), for stage 4 an SPP bottleneck (pools 5, 9, 13),
  then a CSP layer of max(round(n_i d), 1) Darknet bottlenecks (n = 3, 9, 9, 3;
  identity shortcuts except in stage 4).

ConvModules are conv (no bias) + BatchNorm(eps 1e-3) + SiLU. RTMO reads
stages 2, 3, 4 (strides 8, 16, 32). The RTMO sizes (mmpose configs
`configs/body_2d_keypoint/rtmo/`) are in `RTMO_SIZES`.
"""

import keras
import keras_hub

from keras_pose.models.rtmo.rtmo_layers import (RTMO_BN_MOMENTUM, LayerFactory, csp_layer, focus_stem,
                                               norm_momentum_or, spp_bottleneck)
from keras_pose.utils.fast_init import fast_init_constructor

# in_channels, out_channels, num_blocks, add_identity, use_spp (mmdet CSPDarknet "P5")
CSP_DARKNET_P5 = (
    (64, 128, 3, True, False),
    (128, 256, 9, True, False),
    (256, 512, 9, True, False),
    (512, 1024, 3, False, True),
)

# The released RTMO models: factors of backbone, neck and head, and input size (H, W).
RTMO_SIZES = {
    "t": {"deepen_factor": 0.33, "widen_factor": 0.375, "image_size": (416, 416)},
    "s": {"deepen_factor": 0.33, "widen_factor": 0.5, "image_size": (640, 640)},
    "m": {"deepen_factor": 0.67, "widen_factor": 0.75, "image_size": (640, 640)},
    "l": {"deepen_factor": 1.0, "widen_factor": 1.0, "image_size": (640, 640)},
}


def csp_darknet_widths(widen_factor):
    """Channels of the stem and of stages 1..4: (int(64 w), int(128 w), int(256 w), int(512 w), int(1024 w))."""
    return (int(64 * widen_factor),) + tuple(int(out * widen_factor) for _, out, _, _, _ in CSP_DARKNET_P5)


def csp_darknet_depths(deepen_factor):
    """Darknet bottlenecks per stage: max(round(n d), 1) for n = 3, 9, 9, 3."""
    return tuple(max(round(n * deepen_factor), 1) for _, _, n, _, _ in CSP_DARKNET_P5)


@keras.saving.register_keras_serializable(package="keras_pose")
class CSPDarknetBackbone(keras_hub.models.Backbone):
    """CSPDarknet backbone (YOLOX / RTMO).

    Input images (B, H, W, 3) as the reference feeds them (RTMO: BGR 0..255,
    no normalisation), H and W multiples of 32; output a list of the
    features of stages `out_indices` (0 = stem at stride 2, i = stage i at
    stride 2 ** (i + 1)): for (2, 3, 4) (B, H/8, W/8, int(256 w)),
    (B, H/16, W/16, int(512 w)), (B, H/32, W/32, int(1024 w)).

    Args:
        image_size: (height, width) of the input.
        deepen_factor: depth multiplier d of the CSP layers.
        widen_factor: width multiplier w of every layer.
        out_indices: which stages to return (ascending).
        spp_kernel_sizes: max-pool sizes of the stage-4 SPP bottleneck.
        norm_momentum: BatchNorm momentum (Keras convention: the old
            average's share) of every conv block; None keeps the reference's
            (0.97, mmpose's momentum 0.03).
        dtype: dtype policy.

    `torch_layer_paths` maps every weighted layer's name to its mmpose
    module path (without "backbone."), for converters.
    """

    @fast_init_constructor
    def __init__(
        self,
        *,
        image_size=(640, 640),
        deepen_factor=0.33,
        widen_factor=0.5,
        out_indices=(2, 3, 4),
        spp_kernel_sizes=(5, 9, 13),
        norm_momentum=None,
        dtype=None,
        **kwargs,
    ):
        image_size = tuple(int(s) for s in image_size)
        out_indices = tuple(int(i) for i in out_indices)
        spp_kernel_sizes = tuple(int(k) for k in spp_kernel_sizes)
        if len(image_size) != 2 or any(s <= 0 or s % 32 for s in image_size):
            raise ValueError(
                f"image_size must be (height, width) with both sides positive multiples of 32 (the "
                f"stride of the last stage), got {image_size}; resize or pad the input to such a size."
            )
        if not out_indices or sorted(set(out_indices)) != list(out_indices) or not set(out_indices) <= set(range(5)):
            raise ValueError(f"out_indices must be ascending stage indices in 0..4, got {out_indices}.")
        if not 0 < float(deepen_factor) <= 4 or not 0 < float(widen_factor) <= 4:
            raise ValueError(
                f"deepen_factor and widen_factor must be in (0, 4], got {deepen_factor}, {widen_factor}."
            )
        if any(k % 2 == 0 for k in spp_kernel_sizes):
            raise ValueError(f"spp_kernel_sizes must be odd (same-size pooling), got {spp_kernel_sizes}.")

        widths = csp_darknet_widths(widen_factor)
        depths = csp_darknet_depths(deepen_factor)
        paths = {}
        factory = LayerFactory(paths, dtype=dtype, norm_momentum=norm_momentum_or(norm_momentum, RTMO_BN_MOMENTUM))

        # === Functional model ===
        images = keras.Input(shape=(*image_size, 3), name="images")
        x = focus_stem(images, factory, widths[0])
        stage_outputs = [x]
        for i, (_, _, _, add_identity, use_spp) in enumerate(CSP_DARKNET_P5):
            stage, out = f"stage{i + 1}", widths[i + 1]
            x = factory.conv(f"{stage}.0", out, 3, strides=2)(x)
            if use_spp:
                x = spp_bottleneck(x, factory, f"{stage}.1", out, spp_kernel_sizes)
            x = csp_layer(x, factory, f"{stage}.{2 if use_spp else 1}", out, depths[i], add_identity)
            stage_outputs.append(x)
        outputs = [stage_outputs[i] for i in out_indices]

        super().__init__(inputs=images, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.image_size = image_size
        self.deepen_factor = float(deepen_factor)
        self.widen_factor = float(widen_factor)
        self.out_indices = out_indices
        self.spp_kernel_sizes = spp_kernel_sizes
        self.norm_momentum = None if norm_momentum is None else float(norm_momentum)
        self.out_channels = tuple(widths[i] for i in out_indices)
        self.strides = tuple(2 ** (i + 1) for i in out_indices)
        self.torch_layer_paths = dict(paths)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": list(self.image_size),
                "deepen_factor": self.deepen_factor,
                "widen_factor": self.widen_factor,
                "out_indices": list(self.out_indices),
                "spp_kernel_sizes": list(self.spp_kernel_sizes),
            }
        )
        if self.norm_momentum is not None:
            config["norm_momentum"] = self.norm_momentum
        return config
