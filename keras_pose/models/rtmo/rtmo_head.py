"""The RTMO head module (mmpose `RTMOHeadModule`, checkpoint-compatible): raw per-level outputs.

Per feature level i (RTMO: strides 16 and 32) the neck map (B, H, W, 2C) is
split by channels: the first C go to the classification branch, the last C
to the pose branch.

- classification: `conv_cls.i.{0..S-1}` 3x3 ConvModules (BN eps 1e-3, SiLU)
  to `cls_feat_channels`, then `out_cls.i` (1x1 conv + bias) -> `cls` logits
  (B, H, W, num_classes); sigmoid gives the instance score;
- pose: `conv_pose.i.{0..2S-1}` 3x3 ConvModules to G * channels_per_group
  channels (grouped, G groups, after the first), then 1x1 convs: `out_bbox.i`
  -> `bbox` (dx, dy, log w, log h) in units of the stride, `out_kpt_vis.i`
  -> `kpt_vis` logits (B, H, W, K), `out_pose.i` -> `pose_vec` (B, H, W,
  pose_vec_channels), the input of the dynamic coordinate classifier (DCC).

Box decoding (`rtmo_decoding.decode_rtmo`): cx = dx * stride + prior_x,
w = exp(log w) * stride, with priors at (col * stride + (stride - 1) / 2,
row * stride + (stride - 1) / 2) as mmpose's
`MlvlPointGenerator(centralize_points=True)`. The training-only
keypoint-offset branch (`out_kpt_reg`) lives in the task's training branches
(`rtmo_training.RTMOTrainingBranches`). Untrained, the classification biases
start at the logit of 0.01 (mmpose's init).
"""

import math

import keras

from keras_pose.models.rtmo.rtmo_layers import (RTMO_BN_MOMENTUM, ChannelHalves, LayerFactory, norm_momentum_or,
                                               with_dtype_policy)

HEAD_OUTPUTS = ("cls", "bbox", "kpt_vis", "pose_vec")
# mmpose RTMOHeadModule.init_weights: classification biases start at the logit of a 0.01 prior
# (bias_init_with_prob(0.01)), so an untrained head scores every cell ~0.01.
CLS_PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)


def head_output_name(kind, stride):
    """Name of a raw head output, e.g. ("cls", 16) -> "cls_s16"."""
    return f"{kind}_s{int(stride)}"


@keras.saving.register_keras_serializable(package="keras_pose")
class RTMOHeadModule(keras.Model):
    """RTMO head module (functional).

    Inputs: one map per stride (B, H_i, W_i, in_channels), any size.
    Outputs: a dict {"<kind>_s<stride>": tensor} with kind in `HEAD_OUTPUTS`:
    `cls` (B, H, W, num_classes), `bbox` (B, H, W, 4), `kpt_vis` (B, H, W,
    num_keypoints), `pose_vec` (B, H, W, pose_vec_channels).

    Args:
        in_channels: channels of each neck map (2C: C per branch).
        num_keypoints: K.
        featmap_strides: stride of each input level.
        cls_feat_channels: width of the classification convs (mmpose
            int(256 * widen_factor)).
        num_groups: groups of the pose convs after the first.
        channels_per_group: width per group (mmpose int(36 * widen_factor)).
        pose_vec_channels: width of the pose vector.
        stacked_convs: S; the classification branch has S convs, the pose
            branch 2S.
        num_classes: instance classes (1: person).
        norm_momentum: BatchNorm momentum (Keras convention: the old
            average's share) of every conv block; None keeps the reference's
            (0.97, mmpose's momentum 0.03).
        dtype: dtype policy.

    `torch_layer_paths` maps every weighted layer's name to its mmpose
    module path (without "head.head_module.").
    """

    def __init__(
        self,
        in_channels=256,
        num_keypoints=17,
        featmap_strides=(16, 32),
        cls_feat_channels=128,
        num_groups=8,
        channels_per_group=18,
        pose_vec_channels=256,
        stacked_convs=2,
        num_classes=1,
        norm_momentum=None,
        dtype=None,
        name="rtmo_head",
        **kwargs,
    ):
        in_channels = int(in_channels)
        featmap_strides = tuple(int(s) for s in featmap_strides)
        if in_channels % 2:
            raise ValueError(
                f"in_channels {in_channels} must be even: the first half feeds the classification branch, "
                "the second the pose branch."
            )
        if int(num_keypoints) < 1 or int(num_classes) < 1 or not featmap_strides:
            raise ValueError(
                f"num_keypoints ({num_keypoints}), num_classes ({num_classes}) and featmap_strides "
                f"({featmap_strides}) must be positive / non-empty."
            )
        pose_channels = int(num_groups) * int(channels_per_group)
        paths = {}
        factory = LayerFactory(paths, dtype=dtype, norm_momentum=norm_momentum_or(norm_momentum, RTMO_BN_MOMENTUM))

        # === Functional model ===
        inputs = [keras.Input(shape=(None, None, in_channels), name=f"features_s{s}") for s in featmap_strides]
        outputs = {}
        for i, (x, stride) in enumerate(zip(inputs, featmap_strides)):
            cls_feat, pose_feat = ChannelHalves(dtype=dtype, name=f"split_{i}")(x)
            for j in range(int(stacked_convs)):
                cls_feat = factory.conv(f"conv_cls.{i}.{j}", cls_feat_channels, 3)(cls_feat)
            for j in range(2 * int(stacked_convs)):
                groups = 1 if j == 0 else int(num_groups)
                pose_feat = factory.conv(f"conv_pose.{i}.{j}", pose_channels, 3, groups=groups)(pose_feat)
            outputs[head_output_name("cls", stride)] = factory.plain_conv(
                f"out_cls.{i}", num_classes, bias_initializer=keras.initializers.Constant(CLS_PRIOR_BIAS)
            )(cls_feat)
            outputs[head_output_name("bbox", stride)] = factory.plain_conv(f"out_bbox.{i}", 4)(pose_feat)
            outputs[head_output_name("kpt_vis", stride)] = factory.plain_conv(f"out_kpt_vis.{i}", num_keypoints)(
                pose_feat
            )
            outputs[head_output_name("pose_vec", stride)] = factory.plain_conv(f"out_pose.{i}", pose_vec_channels)(
                pose_feat
            )

        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, name=name, **kwargs)

        # === Config ===
        self.in_channels = in_channels
        self.num_keypoints = int(num_keypoints)
        self.featmap_strides = featmap_strides
        self.cls_feat_channels = int(cls_feat_channels)
        self.num_groups = int(num_groups)
        self.channels_per_group = int(channels_per_group)
        self.pose_vec_channels = int(pose_vec_channels)
        self.stacked_convs = int(stacked_convs)
        self.num_classes = int(num_classes)
        self.norm_momentum = None if norm_momentum is None else float(norm_momentum)
        self.torch_layer_paths = dict(paths)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "in_channels": self.in_channels,
            "num_keypoints": self.num_keypoints,
            "featmap_strides": list(self.featmap_strides),
            "cls_feat_channels": self.cls_feat_channels,
            "num_groups": self.num_groups,
            "channels_per_group": self.channels_per_group,
            "pose_vec_channels": self.pose_vec_channels,
            "stacked_convs": self.stacked_convs,
            "num_classes": self.num_classes,
            **({} if self.norm_momentum is None else {"norm_momentum": self.norm_momentum}),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**with_dtype_policy(config))


__all__ = ["HEAD_OUTPUTS", "RTMOHeadModule", "head_output_name"]
