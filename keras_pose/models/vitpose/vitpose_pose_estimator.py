"""`ViTPose`: ViT backbone + classic or simple heatmap head (top-down)."""

import keras

from keras_pose.models.top_down_pose_estimator import TopDownPoseEstimator, resolve_num_keypoints
from keras_pose.models.vitpose.vitpose_backbone import ViTPoseBackbone, vit_backbone
from keras_pose.models.vitpose.vitpose_layers import DECODERS, make_head


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPose(TopDownPoseEstimator):
    """ViTPose top-down pose estimator.

    Input normalised crops (B, H, W, 3) (the preprocessor's image converter:
    ImageNet mean / std, RGB by default); output heatmaps (B, H/4, W/4, K)
    float32 (also under mixed precision). Default decoding: `UDPHeatmap`
    (sigma 2) on UDP-warp crops, padding 1.25, no flip test.

    Args:
        backbone: a `ViTPoseBackbone` without experts (`num_experts=0`);
            a ViTPose++ backbone is accepted too and runs its
            `dataset_index` expert.
        num_keypoints: K; defaults to the keypoint spec's count.
        decoder: "classic" (2 deconvolutions + 1x1 conv), "simple" (ReLU,
            bilinear x4, 3x3 conv) or "minimal" (per-token linear projection
            + pixel shuffle x4, `ViTPoseMinimalHead`). The simple and minimal
            decoders upsample by patch stride / 4 (x2 for a stride-8
            backbone); give a stride-8 classic decoder one deconvolution.
        deconv_filters: widths of the classic head's deconvolutions
            ((256, 256) in every released model).
        keypoint_spec: `KeypointSpec`, built-in name ("coco", ...), dict or
            file path.
        **kwargs: `preprocessor`, `codec`, `test_cfg`, `loss`, the old
            `preprocessing` / `decoding` dicts (see `TopDownPoseEstimator`),
            `name`, `dtype`.

    Layers: `backbone`, `head` (`ViTPoseClassicHead` / `ViTPoseSimpleHead`),
    `heatmaps` (float32 cast).
    """

    backbone_cls = ViTPoseBackbone
    # XLA helps the TF training step (ViTPose-S, bench_xla.py --quick: 1.18x train, 1.31x predict;
    # issue 11: 1.10 s -> 1.04 s at batch 8, but +1.2 GB peak RSS): on for compile(jit_compile="auto").
    tf_train_jit_compile = True

    def __init__(
        self,
        backbone,
        num_keypoints=None,
        decoder="classic",
        deconv_filters=(256, 256),
        keypoint_spec="coco",
        **kwargs,
    ):
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
        num_keypoints = resolve_num_keypoints(keypoint_spec, num_keypoints)

        # === Layers ===
        self.backbone = backbone
        deconv_filters = [int(f) for f in deconv_filters]
        upsample = max(1, int(getattr(backbone, "patch_stride", 16)) // 4)  # heatmaps at 1/4 of the input
        self.head = make_head(
            decoder, num_keypoints, deconv_filters, dtype=backbone.dtype_policy, name="head", upsample=upsample
        )
        self.heatmap_output = keras.layers.Activation("linear", dtype="float32", name="heatmaps")

        # === Functional model ===
        inputs = keras.Input(shape=(*backbone.image_size, 3), name="images")
        features = backbone(inputs)
        outputs = self.heatmap_output(self.head(features))
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            keypoint_spec=keypoint_spec,
            **kwargs,
        )

        # === Config ===
        self.num_keypoints = num_keypoints
        self.decoder = decoder
        self.deconv_filters = deconv_filters

    @classmethod
    def from_checkpoint_config(
        cls,
        *,
        image_size=(256, 192),
        keypoint_spec="coco",
        dtype=None,
        name=None,
        preprocessing=None,
        decoding=None,
        decoder="classic",
        deconv_filters=(256, 256),
        num_keypoints=None,
        loss=None,
        **backbone_kwargs,
    ):
        """An untrained ViTPose from flat settings (a preset's `config`, see `keras_pose.preset_entry`).

        Args:
            image_size: (H, W) input, pixels.
            keypoint_spec: keypoint spec (its count = heatmap channels).
            dtype: dtype policy.
            name: model name.
            preprocessing, decoding, loss: see `TopDownPoseEstimator`.
            decoder, deconv_filters, num_keypoints: the head (see `ViTPose`).
            **backbone_kwargs: `ViTPoseBackbone` arguments (`hidden_dim`,
                `num_layers`, `num_heads`, `mlp_dim`, ...), or `size`
                ("small" ... "huge", `VIT_SIZES`).
        """
        backbone = vit_backbone(image_size, dtype=dtype, **backbone_kwargs)
        return cls(
            backbone,
            num_keypoints=num_keypoints,
            decoder=decoder,
            deconv_filters=deconv_filters,
            keypoint_spec=keypoint_spec,
            preprocessing=preprocessing,
            decoding=decoding,
            loss=loss,
            **({"name": name} if name else {}),
        )

    def with_attention(self, attention, window_size=None):
        """This model with other backbone attention types and these weights (`vitpose_transfer`)."""
        from keras_pose.models.vitpose.vitpose_transfer import with_attention

        return with_attention(self, attention, window_size=window_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_keypoints": self.num_keypoints, "decoder": self.decoder, "deconv_filters": list(self.deconv_filters)}
        )
        return config
