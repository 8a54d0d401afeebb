"""Layers shared by several model families (torch-compatible conv blocks)."""

from keras_pose.layers.conv_blocks import BasicResidualBlock
from keras_pose.layers.conv_blocks import ConvModule
from keras_pose.layers.conv_blocks import TORCH_BN_EPSILON
from keras_pose.layers.conv_blocks import TORCH_BN_MOMENTUM
from keras_pose.layers.conv_blocks import TorchMaxPool2D
from keras_pose.layers.conv_blocks import conv_kernel_from_torch
from keras_pose.layers.conv_blocks import load_basic_block
from keras_pose.layers.conv_blocks import load_conv_module
from keras_pose.layers.conv_blocks import set_batch_norm_weights
from keras_pose.layers.conv_blocks import set_conv_weights
from keras_pose.layers.conv_blocks import torch_padding

__all__ = [
    "BasicResidualBlock",
    "ConvModule",
    "TORCH_BN_EPSILON",
    "TORCH_BN_MOMENTUM",
    "TorchMaxPool2D",
    "conv_kernel_from_torch",
    "load_basic_block",
    "load_conv_module",
    "set_batch_norm_weights",
    "set_conv_weights",
    "torch_padding",
]
