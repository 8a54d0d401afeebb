"""CPN backbone: a torchvision-layout ResNet returning its four stage outputs.

The feature extractor is `keras_hub.models.ResNetBackbone` with
``block_type="bottleneck_block"`` (ResNet v1.5: the stride sits on the 3x3
convolution, as in torchvision), a 7x7/2 stem with torch-style explicit
zero padding and a 3x3/2 max pool (padding 1; zero padding equals torch's
-inf padding after the ReLU). That is exactly pytorch-cpn's `networks/resnet.py`
(checked numerically by `tests/conversion/test_golden_cpn.py`), so it is reused rather
than re-implemented; its layer names (``conv1_conv``, ``stack{s}_block{b}_{k}_conv``
...) are what the converter addresses.
"""

import keras
from keras_pose.utils.backend_imports import import_keras_hub
from keras_pose.utils.fast_init import fast_init_constructor

keras_hub = import_keras_hub()  # without TensorFlow on JAX / PyTorch (utils.backend_imports)

RESNET_DEPTHS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
PYRAMID_LEVELS = ("P2", "P3", "P4", "P5")


@keras.saving.register_keras_serializable(package="keras_pose")
class CPNBackbone(keras_hub.models.Backbone):
    """ResNet (bottleneck, v1.5) feature pyramid for CPN.

    Calling the backbone on images ``(B, H, W, 3)`` returns a dict
    ``{"P2": (B, H/4, W/4, 4*f0), "P3": (B, H/8, W/8, 4*f1),
    "P4": (B, H/16, W/16, 4*f2), "P5": (B, H/32, W/32, 4*f3)}``
    (torchvision ``layer1``..``layer4``; 256/512/1024/2048 channels for
    ResNet-50/101/152).

    Args:
        depth: 50, 101 or 152 (sets `stackwise_num_blocks`); ignored when
            `stackwise_num_blocks` is given.
        stackwise_num_blocks: bottlenecks per stage, e.g. ``[3, 4, 6, 3]``.
        stackwise_num_filters: bottleneck widths per stage (outputs are 4x);
            ``[64, 128, 256, 512]`` for the standard ResNets. keras-hub
            requires the first to be 64.
        image_shape: ``(H, W, 3)``; H and W must be static multiples of 32
            for CPN (its top-down path doubles each level).
        dtype: dtype policy (e.g. ``"mixed_bfloat16"``).
    """

    @fast_init_constructor
    def __init__(
        self,
        depth=50,
        stackwise_num_blocks=None,
        stackwise_num_filters=(64, 128, 256, 512),
        image_shape=(256, 192, 3),
        dtype=None,
        **kwargs,
    ):
        if stackwise_num_blocks is None:
            if depth not in RESNET_DEPTHS:
                raise ValueError(
                    f"CPNBackbone depth must be one of {sorted(RESNET_DEPTHS)}, got {depth!r}; "
                    "or pass stackwise_num_blocks explicitly."
                )
            stackwise_num_blocks = RESNET_DEPTHS[depth]
        stackwise_num_blocks = [int(b) for b in stackwise_num_blocks]
        stackwise_num_filters = [int(f) for f in stackwise_num_filters]
        if len(stackwise_num_blocks) != 4 or len(stackwise_num_filters) != 4:
            raise ValueError(
                "CPNBackbone has 4 stages; stackwise_num_blocks and stackwise_num_filters "
                f"need 4 entries each, got {stackwise_num_blocks} and {stackwise_num_filters}."
            )
        image_shape = tuple(None if v is None else int(v) for v in image_shape)
        if len(image_shape) != 3 or image_shape[-1] != 3:
            raise ValueError(f"image_shape must be (height, width, 3), got {image_shape!r}.")

        # === Layers ===
        resnet = keras_hub.models.ResNetBackbone(
            input_conv_filters=[64],
            input_conv_kernel_sizes=[7],
            stackwise_num_filters=stackwise_num_filters,
            stackwise_num_blocks=stackwise_num_blocks,
            stackwise_num_strides=[1, 2, 2, 2],
            block_type="bottleneck_block",
            use_pre_activation=False,
            image_shape=image_shape,
            data_format="channels_last",
            dtype=dtype,
            name="resnet",
        )
        extractor = keras.Model(
            inputs=resnet.inputs,
            outputs={k: resnet.pyramid_outputs[k] for k in PYRAMID_LEVELS},
            name="resnet_pyramid",
        )

        # === Functional Model ===
        inputs = keras.Input(shape=image_shape, name="images")
        outputs = extractor(inputs)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.resnet = resnet
        self.depth = depth
        self.stackwise_num_blocks = stackwise_num_blocks
        self.stackwise_num_filters = stackwise_num_filters
        self.image_shape = image_shape

    @property
    def pyramid_channels(self):
        """Output channels of P2..P5."""
        return [4 * f for f in self.stackwise_num_filters]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "depth": self.depth,
                "stackwise_num_blocks": list(self.stackwise_num_blocks),
                "stackwise_num_filters": list(self.stackwise_num_filters),
                "image_shape": list(self.image_shape),
            }
        )
        return config
