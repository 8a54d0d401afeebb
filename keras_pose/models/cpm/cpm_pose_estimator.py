"""`CPM`: Convolutional Pose Machines as a top-down pose estimator."""

import keras

from keras_pose.models.cpm.cpm_backbone import CPMBackbone
from keras_pose.models.top_down_pose_estimator import TopDownPoseEstimator, resolve_num_keypoints


# mmpose's heatmap test setting (CPM, Hourglass): MSRAHeatmap sigma 2, flip test with
# the one-pixel heatmap shift, padding 1.25, standard warp.
MMPOSE_HEATMAP_CODEC = {"type": "MSRAHeatmap", "sigma": 2.0, "unbiased": False}
MMPOSE_HEATMAP_TEST_CFG = {"flip_test": True, "shift_heatmap": True}


@keras.saving.register_keras_serializable(package="keras_pose")
class CPM(TopDownPoseEstimator):
    """Convolutional Pose Machine top-down pose estimator.

    Input normalised crops (B, H, W, 3) (ImageNet mean / std, RGB, as
    mmpose); output a list of T belief maps (B, H/8, W/8, K) float32 (also
    under mixed precision), stage 1 first. The last is the final prediction
    (`heatmaps_from_outputs`); training compares every stage with the target
    (intermediate supervision; `KeypointMSELoss` sums them).

    Args:
        backbone: a `CPMBackbone` (its `image_size` is the model input).
        keypoint_spec: `KeypointSpec`, built-in name ("coco", "mpii"), dict
            or file path; must have `backbone.num_keypoints` keypoints.
        **kwargs: `preprocessor`, `codec`, `test_cfg`, `loss`, the old
            `preprocessing` / `decoding` dicts (see `TopDownPoseEstimator`;
            the defaults are mmpose's CPM test setting: MSRAHeatmap sigma 2,
            flip test with heatmap shift, padding 1.25), `name`, `dtype`.

    Layers: `backbone`, `stage1` ... `stageT` (float32 casts).
    """

    backbone_cls = CPMBackbone
    # XLA slows CPM on TF (bench_xla.py --quick: 0.82x train step, 0.64x predict): off.
    tf_train_jit_compile = False
    supports_new_keypoints = False  # the backbone stages predict the keypoints: no re-heading for a new spec
    default_codec = MMPOSE_HEATMAP_CODEC
    default_test_cfg = MMPOSE_HEATMAP_TEST_CFG

    def __init__(self, backbone, keypoint_spec="coco", **kwargs):
        resolve_num_keypoints(keypoint_spec, backbone.num_keypoints, what="backbone")

        # === Layers ===
        self.backbone = backbone
        self.stage_outputs = [
            keras.layers.Activation("linear", dtype="float32", name=f"stage{i + 1}")
            for i in range(backbone.num_stages)
        ]

        # === Functional model ===
        inputs = keras.Input(shape=(*backbone.image_size, 3), name="images")
        belief_maps = backbone(inputs)
        outputs = [cast(b) for cast, b in zip(self.stage_outputs, belief_maps)]
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            keypoint_spec=keypoint_spec,
            **kwargs,
        )

    @classmethod
    def from_checkpoint_config(
        cls,
        *,
        num_keypoints=None,
        keypoint_spec="coco",
        image_size=(256, 192),
        preprocessing=None,
        decoding=None,
        dtype=None,
        name=None,
        **backbone_kwargs,
    ):
        """An untrained model from a preset `config` (backbone keyword arguments + task settings)."""
        if num_keypoints is None:
            num_keypoints = resolve_num_keypoints(keypoint_spec)
        backbone = CPMBackbone(num_keypoints=num_keypoints, image_size=image_size, dtype=dtype, **backbone_kwargs)
        kwargs = {"name": name} if name else {}
        return cls(
            backbone=backbone,
            keypoint_spec=keypoint_spec,
            preprocessing=preprocessing,
            decoding=decoding,
            **kwargs,
        )
