"""The CPM backbone (Convolutional Pose Machines, Wei et al. CVPR 2016).

Architecture of mmpose's `CPM` backbone (checkpoint-compatible):

- stage 1 ("stem"), from local image evidence: 3 x [9x9 ConvModule,
  3x3/2 max-pool], a 5x5 ConvModule to `stem_mid_channels`, a 9x9 to
  `stem_head_channels`, a 1x1 and a 1x1 conv (with bias, no BN / ReLU) to the
  K belief maps, at stride 8;
- shared image features ("middle"): 3 x [9x9 ConvModule, max-pool];
- stages 2..T: `middle_conv` (5x5 ConvModule to `middle_channels`) of the
  shared features, concatenated after the previous stage's belief maps (and
  the optional centre map), 3 x 11x11 ConvModule (`feat_channels`), a 1x1
  ConvModule and a 1x1 conv (bias, no BN / ReLU) to K belief maps.

Every stage's belief maps are outputs (intermediate supervision).
"""

import keras

from keras_pose.layers import ConvModule, TorchMaxPool2D
from keras_pose.models.cpm.cpm_layers import CPM_STRIDE, CPMCenterMap, cpm_output_size
from keras_pose.utils.backend_imports import import_keras_hub
from keras_pose.utils.fast_init import fast_init_constructor

keras_hub = import_keras_hub()  # without TensorFlow on JAX / PyTorch (utils.backend_imports)


def _name(path):
    return path.replace(".", "_")


@keras.saving.register_keras_serializable(package="keras_pose")
class CPMBackbone(keras_hub.models.Backbone):
    """CPM backbone: T stages of belief maps.

    Input normalised images (B, H, W, 3); output a list of T belief maps
    (B, h, w, K), h, w = `output_size` (H/8, W/8 rounded up), stage 1 first.

    Args:
        num_keypoints: K, belief maps per stage.
        image_size: (height, width) of the input.
        num_stages: T >= 1 (6 in the released models).
        feat_channels: width of the stage >= 2 convolutions (128).
        middle_channels: width of the shared-feature projection fed into
            stages >= 2 (32).
        stem_channels: width of the 9x9 convolutions of the stem and the
            shared-feature branch (128).
        stem_mid_channels: width of the stem's 5x5 convolution (32).
        stem_head_channels: width of the stem's 9x9 and 1x1 convolutions
            before its belief maps (512).
        center_map_sigma: None (mmpose; default): no centre map. A float
            turns on the original CPM's centre map: a Gaussian of this sigma
            in input pixels at the crop centre, concatenated as one more
            input channel of every stage >= 2 (see `CPMCenterMap`).
            Checkpoints converted from mmpose have none.
        dtype: dtype policy.

    `torch_layer_paths` maps every `ConvModule` layer name to its mmpose
    module path (without the "backbone." prefix), for converters.
    """

    @fast_init_constructor
    def __init__(
        self,
        *,
        num_keypoints,
        image_size=(256, 192),
        num_stages=6,
        feat_channels=128,
        middle_channels=32,
        stem_channels=128,
        stem_mid_channels=32,
        stem_head_channels=512,
        center_map_sigma=None,
        dtype=None,
        **kwargs,
    ):
        image_size = tuple(int(s) for s in image_size)
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size must be (height, width) with positive sides, got {image_size}.")
        num_stages = int(num_stages)
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}.")
        num_keypoints = int(num_keypoints)
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}.")
        if center_map_sigma is not None:
            center_map_sigma = float(center_map_sigma)

        paths = {}

        def conv(path, filters, kernel, **kw):
            layer = ConvModule(filters, kernel, dtype=dtype, name=_name(path), **kw)
            paths[layer.name] = path
            return layer

        def pool(path):
            return TorchMaxPool2D(3, 2, 1, dtype=dtype, name=_name(path))

        def head(path, filters):
            return conv(path, filters, 1, use_norm=False, activation=None, use_bias=True)

        # === Functional model ===
        images = keras.Input(shape=(*image_size, 3), name="images")

        x = images
        for layer in (
            conv("stem.0", stem_channels, 9),
            pool("stem.1"),
            conv("stem.2", stem_channels, 9),
            pool("stem.3"),
            conv("stem.4", stem_channels, 9),
            pool("stem.5"),
            conv("stem.6", stem_mid_channels, 5),
            conv("stem.7", stem_head_channels, 9),
            conv("stem.8", stem_head_channels, 1),
            head("stem.9", num_keypoints),
        ):
            x = layer(x)
        outputs = [x]

        middle = images
        for layer in (
            conv("middle.0", stem_channels, 9),
            pool("middle.1"),
            conv("middle.2", stem_channels, 9),
            pool("middle.3"),
            conv("middle.4", stem_channels, 9),
            pool("middle.5"),
        ):
            middle = layer(middle)

        center = None
        if center_map_sigma is not None and num_stages > 1:
            center = CPMCenterMap(center_map_sigma / CPM_STRIDE, dtype=dtype, name="center_map")(middle)

        for i in range(num_stages - 1):
            shared = conv(f"middle_conv.{i}.0", middle_channels, 5)(middle)
            parts = [outputs[-1], shared] + ([center] if center is not None else [])
            x = keras.layers.Concatenate(axis=-1, dtype=dtype, name=f"stage{i + 2}_input")(parts)
            for j in range(3):
                x = conv(f"cpm_stages.{i}.model.{j}", feat_channels, 11)(x)
            x = conv(f"out_convs.{i}.0", feat_channels, 1)(x)
            x = head(f"out_convs.{i}.1", num_keypoints)(x)
            outputs.append(x)

        super().__init__(inputs=images, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.num_keypoints = num_keypoints
        self.image_size = image_size
        self.num_stages = num_stages
        self.feat_channels = int(feat_channels)
        self.middle_channels = int(middle_channels)
        self.stem_channels = int(stem_channels)
        self.stem_mid_channels = int(stem_mid_channels)
        self.stem_head_channels = int(stem_head_channels)
        self.center_map_sigma = center_map_sigma
        self.output_size = cpm_output_size(image_size)
        self.torch_layer_paths = dict(paths)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_keypoints": self.num_keypoints,
                "image_size": list(self.image_size),
                "num_stages": self.num_stages,
                "feat_channels": self.feat_channels,
                "middle_channels": self.middle_channels,
                "stem_channels": self.stem_channels,
                "stem_mid_channels": self.stem_mid_channels,
                "stem_head_channels": self.stem_head_channels,
                "center_map_sigma": self.center_map_sigma,
            }
        )
        return config
