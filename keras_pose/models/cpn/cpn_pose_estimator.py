"""CPN (Cascaded Pyramid Network) top-down pose estimator.

Chen et al., "Cascaded Pyramid Network for Multi-Person Pose Estimation",
CVPR 2018, as released in PyTorch by GengDavid/pytorch-cpn (the checkpoints
the presets convert).
"""

import keras

from keras_pose.losses import CPNLoss
from keras_pose.models.cpn.cpn_backbone import PYRAMID_LEVELS
from keras_pose.models.cpn.cpn_backbone import RESNET_DEPTHS
from keras_pose.models.cpn.cpn_backbone import CPNBackbone
from keras_pose.models.cpn.cpn_layers import apply_global_net
from keras_pose.models.cpn.cpn_layers import apply_refine_net
from keras_pose.models.top_down_pose_estimator import TopDownPoseEstimator
from keras_pose.reference_constants import CPN_PREPROCESSING



@keras.saving.register_keras_serializable(package="keras_pose")
class CPN(TopDownPoseEstimator):
    """Cascaded Pyramid Network: ResNet + GlobalNet + RefineNet.

    Calling the model on normalised crops ``(B, H, W, 3)`` (float, RGB,
    ``(x - mean) / 255``, the preprocessor's image converter) returns a dict of float32
    NHWC heatmaps ``(B, h, w, K)``:

    - ``"global_0"`` .. ``"global_3"``: GlobalNet predictions from pyramid
      levels C5, C4, C3, C2 (coarsest first), as pytorch-cpn's
      ``global_outs``;
    - ``"refine"``: the RefineNet output, the final heatmaps
      (`heatmaps_from_outputs` returns it; Keras' flat ``model.outputs``
      list is in sorted key order, so refine is last there too).

    Released checkpoints are trained on heatmaps that peak at 255.

    Args:
        backbone: a `CPNBackbone` (ResNet with static ``image_shape``, H and
            W multiples of 32).
        keypoint_spec: `KeypointSpec`, built-in name or dict; its keypoint
            count sets the heatmap channels.
        heatmap_size: ``(h, w)``; default input / 4.
        global_channels: GlobalNet channels (256).
        refine_planes: RefineNet bottleneck width (128; outputs 256).
        refine_num_blocks: bottlenecks per level, coarsest first; default
            ``[3, 2, 1, 0]``.
        upsample_bias: bias on GlobalNet's top-down conv1x1 (False in the
            released code).
        loss: default training loss; `CPNLoss()` (GlobalNet L2 + RefineNet
            OHKM top-8) if None.
        **kwargs: `preprocessor`, `codec`, `test_cfg`, the old
            `preprocessing` / `decoding` dicts (see `TopDownPoseEstimator`),
            `name`, `dtype` (the heads follow the backbone's dtype policy).

    Defaults (closest to pytorch-cpn's ``test.py``): `CPN_PREPROCESSING`
    (pixel means, std 255), MSRA heatmap decoding (argmax + quarter-pixel
    shift) with the flip test (no one-pixel shift), padding 1.3 (pytorch-cpn
    extends the box 10 % per side in x and 15 % in y before fixing the aspect
    ratio: 1.3 x the height of the usual tall boxes), standard warp. The
    presets use the exact `CPNHeatmap` codec and per-axis padding instead.
    """

    backbone_cls = CPNBackbone
    # XLA: 0.85x train step, 1.07x predict on TF (bench_xla.py --quick): off.
    tf_train_jit_compile = False
    default_codec = {"type": "MSRAHeatmap", "sigma": 2.0}
    default_test_cfg = {"flip_test": True, "shift_heatmap": False}
    default_crop = {"padding": 1.3}
    default_preprocessing = CPN_PREPROCESSING

    def __init__(
        self,
        backbone,
        keypoint_spec="coco",
        heatmap_size=None,
        global_channels=256,
        refine_planes=128,
        refine_num_blocks=None,
        upsample_bias=False,
        loss=None,
        **kwargs,
    ):
        from keras_pose.keypoints import get_keypoint_spec

        dtype = kwargs.pop("dtype", None)
        dtype = backbone.dtype_policy if dtype is None else dtype
        spec = get_keypoint_spec(keypoint_spec)
        num_keypoints = spec.num_keypoints
        image_shape = tuple(backbone.image_shape)
        image_h, image_w = image_shape[0], image_shape[1]
        if image_h is None or image_w is None or image_h % 32 or image_w % 32:
            raise ValueError(
                f"CPN needs a fixed input size with height and width multiples of 32 "
                f"(its top-down path doubles each pyramid level), got backbone image_shape="
                f"{image_shape}. Use e.g. CPNBackbone(image_shape=(256, 192, 3))."
            )
        if heatmap_size is None:
            heatmap_size = (image_h // 4, image_w // 4)
        heatmap_size = tuple(int(v) for v in heatmap_size)
        refine_num_blocks = None if refine_num_blocks is None else [int(b) for b in refine_num_blocks]

        # === Layers ===
        self.backbone = backbone

        # === Functional Model ===
        inputs = keras.Input(shape=image_shape, name="images")
        pyramid = backbone(inputs)
        features = [pyramid[k] for k in reversed(PYRAMID_LEVELS)]  # C5, C4, C3, C2
        feature_maps, global_heatmaps = apply_global_net(
            features,
            num_keypoints,
            heatmap_size,
            channels=int(global_channels),
            upsample_bias=bool(upsample_bias),
            dtype=dtype,
        )
        refine = apply_refine_net(
            feature_maps,
            num_keypoints,
            heatmap_size,
            planes=int(refine_planes),
            num_blocks=refine_num_blocks,
            dtype=dtype,
        )
        outputs = {
            f"global_{i}": keras.layers.Activation("linear", dtype="float32", name=f"global_{i}")(h)
            for i, h in enumerate(global_heatmaps)
        }
        outputs["refine"] = keras.layers.Activation("linear", dtype="float32", name="refine")(refine)

        super().__init__(
            inputs=inputs,
            outputs=outputs,
            keypoint_spec=spec,
            loss=CPNLoss() if loss is None else loss,
            **kwargs,
        )

        # === Config ===
        # A tuple: Keras would wrap a list in a TrackedList.
        self.refine_num_blocks = None if refine_num_blocks is None else tuple(refine_num_blocks)
        self.global_channels = int(global_channels)
        self.refine_planes = int(refine_planes)
        self.upsample_bias = bool(upsample_bias)

    # ----------------------------------------------------------------- outputs
    def heatmaps_from_outputs(self, outputs):
        """The RefineNet heatmaps from the raw outputs.

        Args:
            outputs: the dict (``"refine"``) or list (refine last, Keras'
                sorted-key flattening) the model returns.
        """
        if isinstance(outputs, dict):
            return outputs["refine"]
        if isinstance(outputs, (list, tuple)):
            return outputs[-1]
        return outputs

    def feature_model(self):
        """A model returning the GlobalNet features and all heatmaps.

        Returns:
            `keras.Model` mapping images to a dict: ``"global_fm_{i}"``
            ``(B, h_i, w_i, global_channels)`` (level i, coarsest first, the
            RefineNet inputs), plus the raw outputs ``"global_{i}"`` and
            ``"refine"``. For inspection and parity tests.
        """
        names = {layer.name for layer in self.layers}
        outputs = {}
        i = 0
        while f"global_fm{i}" in names:
            outputs[f"global_fm_{i}"] = self.get_layer(f"global_fm{i}").output
            outputs[f"global_{i}"] = self.get_layer(f"global_{i}").output
            i += 1
        outputs["refine"] = self.get_layer("refine").output
        return keras.Model(self.inputs, outputs, name=f"{self.name}_features")

    # ----------------------------------------------------------------- builders
    @classmethod
    def from_checkpoint_config(
        cls,
        *,
        image_size=(256, 192),
        keypoint_spec="coco",
        dtype=None,
        name=None,
        depth=50,
        heatmap_size=None,
        stackwise_num_blocks=None,
        stackwise_num_filters=(64, 128, 256, 512),
        global_channels=256,
        refine_planes=128,
        upsample_bias=False,
        preprocessing=None,
        decoding=None,
        **kwargs,
    ):
        """A freshly initialised CPN from flat settings (a preset's `config`, see `keras_pose.preset_entry`).

        Args:
            depth: ResNet depth (50, 101, 152).
            image_size: input ``(H, W)``, multiples of 32.
            heatmap_size: ``(h, w)``; default input / 4.
            keypoint_spec: keypoint spec (its count = heatmap channels).
            stackwise_num_blocks / stackwise_num_filters: explicit ResNet
                stages (override `depth`).
            global_channels, refine_planes, upsample_bias: head settings.
            preprocessing, decoding: see `CPN`.
            dtype: dtype policy.
            name: model name.
            **kwargs: other `CPN` arguments (`loss`, `refine_num_blocks`).
        """
        if stackwise_num_blocks is None and depth not in RESNET_DEPTHS:
            raise ValueError(f"CPN depth must be one of {sorted(RESNET_DEPTHS)}, got {depth!r}.")
        h, w = (int(v) for v in image_size)
        backbone = CPNBackbone(
            depth=depth,
            stackwise_num_blocks=stackwise_num_blocks,
            stackwise_num_filters=stackwise_num_filters,
            image_shape=(h, w, 3),
            dtype=dtype,
        )
        return cls(
            backbone=backbone,
            keypoint_spec=keypoint_spec,
            heatmap_size=heatmap_size,
            global_channels=global_channels,
            refine_planes=refine_planes,
            upsample_bias=upsample_bias,
            preprocessing=preprocessing,
            decoding=decoding,
            **({"name": name} if name else {}),
            **kwargs,
        )

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "heatmap_size": list(self.heatmap_size),
                "global_channels": self.global_channels,
                "refine_planes": self.refine_planes,
                "refine_num_blocks": None if self.refine_num_blocks is None else list(self.refine_num_blocks),
                "upsample_bias": self.upsample_bias,
            }
        )
        return config
