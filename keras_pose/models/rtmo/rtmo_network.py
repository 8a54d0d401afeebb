"""The whole RTMO network (backbone -> neck -> head module), raw outputs only.

`RTMONetwork` chains `CSPDarknetBackbone`, `HybridEncoder` and
`RTMOHeadModule` with the widths mmpose's RTMO configs derive from the
deepen / widen factors (w):

| part | width |
| --- | --- |
| backbone outputs (strides 8, 16, 32) | int(256 w), int(512 w), int(1024 w) |
| neck hidden / encoder | 256 (FFN 1024, 8 heads) |
| neck output (projector), pose vector | int(512 w) |
| head classification convs | int(256 w) |
| head pose convs | 8 groups x int(36 w) |

It returns the head's raw per-level outputs. It also holds the keypoint
decoder `dcc` (`DynamicCoordinateClassifier`), which runs on the instances
kept after box decoding and NMS (the task's decoding), outside the graph of
the raw outputs.
"""

import keras
import keras_hub

from keras_pose.models.rtmo.rtmo_backbone import RTMO_SIZES, CSPDarknetBackbone
from keras_pose.models.rtmo.rtmo_dcc import DynamicCoordinateClassifier
from keras_pose.models.rtmo.rtmo_head import RTMOHeadModule
from keras_pose.models.rtmo.rtmo_layers import with_dtype_policy
from keras_pose.models.rtmo.rtmo_neck import HybridEncoder
from keras_pose.utils.fast_init import fast_init_constructor


def rtmo_widths(widen_factor):
    """{"neck_out_channels", "pose_vec_channels", "cls_feat_channels", "channels_per_group"} for a widen factor."""
    return {
        "neck_out_channels": int(512 * widen_factor),
        "pose_vec_channels": int(512 * widen_factor),
        "cls_feat_channels": int(256 * widen_factor),
        "channels_per_group": int(36 * widen_factor),
    }


@keras.saving.register_keras_serializable(package="keras_pose")
class RTMONetwork(keras_hub.models.Backbone):
    """RTMO backbone + neck + head module (functional), raw per-level outputs.

    A keras-hub `Backbone`: the `RTMO` task's `backbone` (saved as the
    preset's ``config.json`` / ``model.weights.h5``, the DCC included).

    Input images (B, H, W, 3), BGR 0..255 unnormalised as the reference
    feeds them, H and W multiples of 32. Output the head's dict
    {"<kind>_s<stride>": (B, H / stride, W / stride, channels)}
    (`rtmo_head.HEAD_OUTPUTS`).

    Args:
        image_size: (height, width).
        deepen_factor, widen_factor: size factors (`RTMO_SIZES`).
        num_keypoints: K.
        featmap_strides: head levels (16, 32).
        hidden_dim, num_heads, feedforward_channels: neck widths.
        pe_temperature: the neck's sine position encoding temperature.
        neck_out_channels, pose_vec_channels, cls_feat_channels,
            channels_per_group: None for the values `rtmo_widths` derives.
        num_groups, stacked_convs: head pose-branch groups and depth.
        dcc_feat_channels, dcc_num_bins, dcc_spe_channels,
            dcc_spe_temperature, dcc_gau_s, dcc_gau_expansion: the DCC's
            settings (`DynamicCoordinateClassifier`).
        norm_momentum: BatchNorm momentum (Keras convention, the old
            average's share) of every conv block of backbone, neck and head;
            None keeps the reference's (0.97 backbone and head, mmpose's
            0.03; 0.9 neck, torch's 0.1). With 0.97 the eval-mode statistics
            trail the weights by ~30 steps and keep 0.97^t of their (0, 1)
            start: after a short training run (an overfit test, a few hundred
            steps) 0.9 gives eval outputs that match the trained weights.
        dtype: dtype policy.

    Sub-models: `backbone`, `neck`, `head`; the keypoint decoder `dcc`.
    """

    @fast_init_constructor
    def __init__(
        self,
        image_size=(640, 640),
        deepen_factor=0.33,
        widen_factor=0.5,
        num_keypoints=17,
        featmap_strides=(16, 32),
        hidden_dim=256,
        num_heads=8,
        feedforward_channels=1024,
        pe_temperature=10000.0,
        neck_out_channels=None,
        pose_vec_channels=None,
        cls_feat_channels=None,
        channels_per_group=None,
        num_groups=8,
        stacked_convs=2,
        dcc_feat_channels=128,
        dcc_num_bins=(192, 256),
        dcc_spe_channels=128,
        dcc_spe_temperature=300.0,
        dcc_gau_s=128,
        dcc_gau_expansion=2,
        norm_momentum=None,
        dtype=None,
        name="rtmo",
        **kwargs,
    ):
        featmap_strides = tuple(int(s) for s in featmap_strides)
        derived = rtmo_widths(widen_factor)
        given = {
            "neck_out_channels": neck_out_channels,
            "pose_vec_channels": pose_vec_channels,
            "cls_feat_channels": cls_feat_channels,
            "channels_per_group": channels_per_group,
        }
        widths = {k: int(derived[k] if v is None else v) for k, v in given.items()}
        backbone = CSPDarknetBackbone(
            image_size=image_size, deepen_factor=deepen_factor, widen_factor=widen_factor,
            norm_momentum=norm_momentum, dtype=dtype,
            name="backbone",
        )
        neck_levels = [backbone.strides.index(s) for s in featmap_strides if s in backbone.strides]
        if len(neck_levels) != len(featmap_strides):
            raise ValueError(f"featmap_strides {featmap_strides} must be among the backbone's {backbone.strides}.")
        neck = HybridEncoder(
            in_channels=backbone.out_channels,
            hidden_dim=hidden_dim,
            deepen_factor=deepen_factor,
            widen_factor=widen_factor,
            num_heads=num_heads,
            feedforward_channels=feedforward_channels,
            pe_temperature=pe_temperature,
            output_indices=neck_levels,
            out_channels=widths["neck_out_channels"],
            norm_momentum=norm_momentum,
            dtype=dtype,
            name="neck",
        )
        head = RTMOHeadModule(
            in_channels=widths["neck_out_channels"],
            num_keypoints=num_keypoints,
            featmap_strides=featmap_strides,
            cls_feat_channels=widths["cls_feat_channels"],
            num_groups=num_groups,
            channels_per_group=widths["channels_per_group"],
            pose_vec_channels=widths["pose_vec_channels"],
            stacked_convs=stacked_convs,
            norm_momentum=norm_momentum,
            dtype=dtype,
            name="head",
        )

        dcc = DynamicCoordinateClassifier(
            in_channels=widths["pose_vec_channels"],
            num_keypoints=num_keypoints,
            feat_channels=dcc_feat_channels,
            num_bins=dcc_num_bins,
            spe_channels=dcc_spe_channels,
            spe_temperature=dcc_spe_temperature,
            gau_s=dcc_gau_s,
            gau_expansion=dcc_gau_expansion,
            dtype=dtype,
            name="dcc",
        )
        dcc.build()

        # === Functional model ===
        images = keras.Input(shape=(*backbone.image_size, 3), name="images")
        outputs = head(neck(backbone(images)))
        super().__init__(inputs=images, outputs=outputs, dtype=dtype, name=name, **kwargs)

        # === Config ===
        self.backbone, self.neck, self.head, self.dcc = backbone, neck, head, dcc
        self.image_size = backbone.image_size
        self.deepen_factor = float(deepen_factor)
        self.widen_factor = float(widen_factor)
        self.num_keypoints = int(num_keypoints)
        self.featmap_strides = featmap_strides
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.feedforward_channels = int(feedforward_channels)
        self.pe_temperature = float(pe_temperature)
        self.widths = widths
        self.num_groups = int(num_groups)
        self.stacked_convs = int(stacked_convs)
        self.norm_momentum = None if norm_momentum is None else float(norm_momentum)

    @classmethod
    def from_size(cls, size, image_size=None, **kwargs):
        """The network of a released size "t" / "s" / "m" / "l" (input size default: the release's)."""
        if size not in RTMO_SIZES:
            raise ValueError(f"Unknown RTMO size {size!r}; choose one of {sorted(RTMO_SIZES)}.")
        spec = dict(RTMO_SIZES[size])
        spec["image_size"] = spec["image_size"] if image_size is None else image_size
        return cls(**spec, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "image_size": list(self.image_size),
            "deepen_factor": self.deepen_factor,
            "widen_factor": self.widen_factor,
            "num_keypoints": self.num_keypoints,
            "featmap_strides": list(self.featmap_strides),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "feedforward_channels": self.feedforward_channels,
            "pe_temperature": self.pe_temperature,
            **self.widths,
            "num_groups": self.num_groups,
            "stacked_convs": self.stacked_convs,
            "dcc_feat_channels": self.dcc.feat_channels,
            "dcc_num_bins": list(self.dcc.num_bins),
            "dcc_spe_channels": self.dcc.spe_channels,
            "dcc_spe_temperature": self.dcc.spe_temperature,
            "dcc_gau_s": self.dcc.gau_s,
            "dcc_gau_expansion": self.dcc.gau_expansion,
            **({} if self.norm_momentum is None else {"norm_momentum": self.norm_momentum}),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**with_dtype_policy(config))


__all__ = ["RTMONetwork", "rtmo_widths"]
