"""`Hourglass`: Stacked Hourglass networks as a top-down pose estimator."""

import keras

from keras_pose.models.cpm.cpm_pose_estimator import MMPOSE_HEATMAP_CODEC, MMPOSE_HEATMAP_TEST_CFG
from keras_pose.models.hourglass.hourglass_backbone import HourglassBackbone
from keras_pose.models.top_down_pose_estimator import TopDownPoseEstimator, resolve_num_keypoints


@keras.saving.register_keras_serializable(package="keras_pose")
class Hourglass(TopDownPoseEstimator):
    """Stacked Hourglass top-down pose estimator (mmpose HourglassNet + CPMHead).

    Input normalised crops (B, H, W, 3) (ImageNet mean / std, RGB, as
    mmpose); output the per-stack heatmaps (B, H/4, W/4, K) float32 (also
    under mixed precision), first stack first: a list for several stacks,
    a single tensor for one (Keras returns a one-output model's output
    unwrapped). The last stack's heatmaps are the prediction
    (`heatmaps_from_outputs`); training compares every stack with the target
    (intermediate supervision; `KeypointMSELoss` sums them).

    Args:
        backbone: a `HourglassBackbone`.
        num_keypoints: K; defaults to the keypoint spec's count.
        keypoint_spec: `KeypointSpec`, built-in name ("coco", "mpii"), dict
            or file path.
        **kwargs: `preprocessor`, `codec`, `test_cfg`, `loss`, the old
            `preprocessing` / `decoding` dicts (see `TopDownPoseEstimator`;
            the defaults are mmpose's test setting: MSRAHeatmap sigma 2, flip
            test with heatmap shift, padding 1.25), `name`, `dtype`.

    Layers: `backbone`, `final_layer_<s>` (1x1 conv per stack, mmpose
    `head.multi_final_layers.<s>`), `stack<s+1>` (float32 casts).
    """

    backbone_cls = HourglassBackbone
    # XLA slows Hourglass on TF (bench_xla.py --quick: 0.87x train step, 0.51x predict;
    # issue 11: 0.74x): off.
    tf_train_jit_compile = False
    default_codec = MMPOSE_HEATMAP_CODEC
    default_test_cfg = MMPOSE_HEATMAP_TEST_CFG

    def __init__(self, backbone, num_keypoints=None, keypoint_spec="coco", **kwargs):
        num_keypoints = resolve_num_keypoints(keypoint_spec, num_keypoints)

        # === Layers ===
        self.backbone = backbone
        self.final_layers = [
            keras.layers.Conv2D(num_keypoints, 1, dtype=backbone.dtype_policy, name=f"final_layer_{s}")
            for s in range(backbone.num_stacks)
        ]
        self.stack_outputs = [
            keras.layers.Activation("linear", dtype="float32", name=f"stack{s + 1}")
            for s in range(backbone.num_stacks)
        ]

        # === Functional model ===
        inputs = keras.Input(shape=(*backbone.image_size, 3), name="images")
        features = backbone(inputs)
        if not isinstance(features, (list, tuple)):
            features = [features]
        outputs = [cast(final(f)) for final, cast, f in zip(self.final_layers, self.stack_outputs, features)]
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            keypoint_spec=keypoint_spec,
            **kwargs,
        )

        # === Config ===
        self.num_keypoints = num_keypoints

    @classmethod
    def from_checkpoint_config(
        cls,
        *,
        num_keypoints=None,
        keypoint_spec="coco",
        image_size=(256, 256),
        preprocessing=None,
        decoding=None,
        dtype=None,
        name=None,
        **backbone_kwargs,
    ):
        """An untrained model from a preset `config` (backbone keyword arguments + task settings)."""
        backbone = HourglassBackbone(image_size=image_size, dtype=dtype, **backbone_kwargs)
        kwargs = {"name": name} if name else {}
        return cls(
            backbone=backbone,
            num_keypoints=num_keypoints,
            keypoint_spec=keypoint_spec,
            preprocessing=preprocessing,
            decoding=decoding,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config["num_keypoints"] = self.num_keypoints
        return config
