"""Tiny Stacked Hourglass models and their weights exported in the mmpose checkpoint layout."""

import keras
import numpy as np

from keras_pose.layers import BasicResidualBlock
from keras_pose.models.hourglass import Hourglass
from pose_testing.cpm_models import export_conv_module as _export_conv


TINY = dict(downsample_times=2, stage_channels=[8, 8, 12], stage_blocks=[1, 1, 2], feat_channels=8, stem_channels=4)


def tiny_hourglass(image_size=(32, 32), num_stacks=2, keypoint_spec="coco", **kwargs):
    return Hourglass.from_checkpoint_config(
        image_size=image_size, keypoint_spec=keypoint_spec, num_stacks=num_stacks, **{**TINY, **kwargs}
    )


def _np(v):
    return keras.ops.convert_to_numpy(v)


def _export_block(sd, block, prefix):
    _export_conv(sd, block.conv1, f"{prefix}.conv1", f"{prefix}.bn1")
    _export_conv(sd, block.conv2, f"{prefix}.conv2", f"{prefix}.bn2")
    if block.downsample is not None:
        _export_conv(sd, block.downsample, f"{prefix}.downsample.0", f"{prefix}.downsample.1")


def export_state_dict(model, head="keypoint_head."):
    """An mmpose-style HourglassNet + CPMHead state dict holding `model`'s weights."""
    sd = {}
    for name, path in model.backbone.torch_layer_paths.items():
        layer = model.backbone.get_layer(name)
        if isinstance(layer, BasicResidualBlock):
            _export_block(sd, layer, f"backbone.{path}")
        else:
            _export_conv(sd, layer, f"backbone.{path}.conv", f"backbone.{path}.bn")
    for s, layer in enumerate(model.final_layers):
        sd[f"{head}multi_final_layers.{s}.weight"] = np.transpose(_np(layer.kernel), (3, 2, 0, 1))
        sd[f"{head}multi_final_layers.{s}.bias"] = _np(layer.bias)
    return sd
