"""The Stacked Hourglass backbone (mmpose `HourglassNet`, checkpoint-compatible).

- stem: 7x7/2 ConvModule to `stem_channels`, one stride-2 residual block to
  `stage_channels[0]` (stride 4 in all);
- per stack s: a recursive hourglass (`downsample_times` levels, nearest
  upsampling and skip additions), then a 3x3 ConvModule to `feat_channels`:
  the stack's output feature;
- between stacks (re-injection): `inter = conv1x1s[s](inter) +
  remap_convs[s](out_s)` (1x1 ConvModules with BN, no ReLU), then ReLU and
  a residual block (`inters[s]`) before the next stack.

Hourglass-52 (mmpose's released models) is one stack with
`downsample_times=5`, `stage_channels=(256, 256, 384, 384, 384, 512)`,
`stage_blocks=(2, 2, 2, 2, 2, 4)`, `feat_channels=256`; Hourglass-104 is two.
"""

import keras

from keras_pose.layers import BasicResidualBlock, ConvModule
from keras_pose.models.hourglass.hourglass_layers import hourglass_module
from keras_pose.reference_constants import HOURGLASS52  # noqa: F401 - the released architecture
from keras_pose.utils.backend_imports import import_keras_hub
from keras_pose.utils.fast_init import fast_init_constructor

keras_hub = import_keras_hub()  # without TensorFlow on JAX / PyTorch (utils.backend_imports)



def _name(path):
    return path.replace(".", "_")


@keras.saving.register_keras_serializable(package="keras_pose")
class HourglassBackbone(keras_hub.models.Backbone):
    """Stacked Hourglass backbone.

    Input normalised images (B, H, W, 3), H and W multiples of
    2 ** (downsample_times + 2); output a list of `num_stacks` features
    (B, H/4, W/4, feat_channels), first stack first.

    Args:
        image_size: (height, width) of the input.
        num_stacks: hourglasses stacked (1: Hourglass-52, 2: Hourglass-104).
        downsample_times: stride-2 levels inside each hourglass.
        stage_channels: widths per level, outermost first (len >
            downsample_times).
        stage_blocks: residual blocks per level (len > downsample_times).
        feat_channels: width of each stack's output feature.
        stem_channels: width of the stem's 7x7 convolution.
        dtype: dtype policy.

    `torch_layer_paths` maps every `ConvModule` / `BasicResidualBlock`
    layer name to its mmpose module path (without "backbone."), for
    converters.
    """

    @fast_init_constructor
    def __init__(
        self,
        *,
        image_size=(256, 256),
        num_stacks=1,
        downsample_times=5,
        stage_channels=(256, 256, 384, 384, 384, 512),
        stage_blocks=(2, 2, 2, 2, 2, 4),
        feat_channels=256,
        stem_channels=128,
        dtype=None,
        **kwargs,
    ):
        image_size = tuple(int(s) for s in image_size)
        num_stacks = int(num_stacks)
        downsample_times = int(downsample_times)
        stage_channels = [int(c) for c in stage_channels]
        stage_blocks = [int(b) for b in stage_blocks]
        if len(image_size) != 2:
            raise ValueError(f"image_size must be (height, width), got {image_size}.")
        if num_stacks < 1:
            raise ValueError(f"num_stacks must be >= 1, got {num_stacks}.")
        if downsample_times < 1:
            raise ValueError(f"downsample_times must be >= 1, got {downsample_times}.")
        if len(stage_channels) != len(stage_blocks) or len(stage_channels) <= downsample_times:
            raise ValueError(
                f"stage_channels ({len(stage_channels)}) and stage_blocks ({len(stage_blocks)}) need the "
                f"same length, greater than downsample_times ({downsample_times})."
            )
        multiple = 2 ** (downsample_times + 2)
        if any(s % multiple for s in image_size):
            raise ValueError(
                f"image_size {image_size} must be a multiple of {multiple} on both sides "
                f"(stride 4 stem and {downsample_times} halvings with exact 2x upsampling)."
            )

        paths = {}
        cur_channels = stage_channels[0]

        def conv(path, filters, kernel, **kw):
            layer = ConvModule(filters, kernel, dtype=dtype, name=_name(path), **kw)
            paths[layer.name] = path
            return layer

        def block(path, filters, strides=1):
            layer = BasicResidualBlock(filters, strides=strides, dtype=dtype, name=_name(path))
            paths[layer.name] = path
            return layer

        # === Functional model ===
        images = keras.Input(shape=(*image_size, 3), name="images")
        x = conv("stem.0", stem_channels, 7, strides=2, padding=3)(images)
        inter = block("stem.1.0", cur_channels, strides=2)(x)

        outputs = []
        for s in range(num_stacks):
            features = hourglass_module(
                inter,
                downsample_times,
                stage_channels,
                stage_blocks,
                path=f"hourglass_modules.{s}",
                paths=paths,
                dtype=dtype,
            )
            out = conv(f"out_convs.{s}", feat_channels, 3, padding=1)(features)
            outputs.append(out)
            if s < num_stacks - 1:
                skip = conv(f"conv1x1s.{s}", cur_channels, 1, activation=None)(inter)
                remap = conv(f"remap_convs.{s}", cur_channels, 1, activation=None)(out)
                inter = keras.layers.Add(dtype=dtype, name=f"reinject_{s}")([skip, remap])
                inter = keras.layers.ReLU(dtype=dtype, name=f"reinject_{s}_relu")(inter)
                inter = block(f"inters.{s}", cur_channels)(inter)

        super().__init__(inputs=images, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.image_size = image_size
        self.num_stacks = num_stacks
        self.downsample_times = downsample_times
        self.stage_channels = stage_channels
        self.stage_blocks = stage_blocks
        self.feat_channels = int(feat_channels)
        self.stem_channels = int(stem_channels)
        self.output_size = (image_size[0] // 4, image_size[1] // 4)
        self.torch_layer_paths = dict(paths)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": list(self.image_size),
                "num_stacks": self.num_stacks,
                "downsample_times": self.downsample_times,
                "stage_channels": list(self.stage_channels),
                "stage_blocks": list(self.stage_blocks),
                "feat_channels": self.feat_channels,
                "stem_channels": self.stem_channels,
            }
        )
        return config
