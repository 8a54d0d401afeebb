"""Tiny CPM models and their weights exported in the mmpose checkpoint layout."""

import keras
import numpy as np

from keras_pose.models.cpm import CPM


TINY = dict(feat_channels=8, middle_channels=4, stem_channels=8, stem_mid_channels=4, stem_head_channels=16)


def tiny_cpm(image_size=(64, 48), num_stages=3, keypoint_spec="coco", **kwargs):
    return CPM.from_checkpoint_config(
        image_size=image_size, keypoint_spec=keypoint_spec, num_stages=num_stages, **{**TINY, **kwargs}
    )


def export_state_dict(model):
    """An mmpose-style CPM state dict holding `model`'s weights."""
    sd = {}
    for name, path in model.backbone.torch_layer_paths.items():
        export_conv_module(sd, model.backbone.get_layer(name), f"backbone.{path}.conv", f"backbone.{path}.bn")
    return sd


def export_conv_module(sd, layer, conv_prefix, bn_prefix):
    """A ConvModule's weights under torch names / layouts (the inverse of the converter)."""
    sd[f"{conv_prefix}.weight"] = np.transpose(keras.ops.convert_to_numpy(layer.conv.kernel), (3, 2, 0, 1))
    if layer.use_bias:
        sd[f"{conv_prefix}.bias"] = keras.ops.convert_to_numpy(layer.conv.bias)
    if layer.bn is not None:
        bn = layer.bn
        for key, var in (("weight", bn.gamma), ("bias", bn.beta), ("running_mean", bn.moving_mean),
                         ("running_var", bn.moving_variance)):
            sd[f"{bn_prefix}.{key}"] = keras.ops.convert_to_numpy(var)
        sd[f"{bn_prefix}.num_batches_tracked"] = np.array(0, np.int64)
