"""Layers shared by several model families (torch-compatible conv blocks)."""

from keras_pose.layers.backend_kernels import FusedBiasDense
from keras_pose.layers.backend_kernels import exact_gelu
from keras_pose.layers.backend_kernels import multi_head_attention
from keras_pose.layers.conv_blocks import BasicResidualBlock
from keras_pose.layers.conv_blocks import ConvModule
from keras_pose.layers.conv_blocks import TORCH_BN_EPSILON
from keras_pose.layers.conv_blocks import TORCH_BN_MOMENTUM
from keras_pose.layers.conv_blocks import TorchMaxPool2D
from keras_pose.layers.conv_blocks import torch_padding
from keras_pose.layers.drop_path import DropPath
from keras_pose.layers.transposed_conv import apply_transposed_conv

__all__ = [
    "BasicResidualBlock",
    "ConvModule",
    "DropPath",
    "FusedBiasDense",
    "TORCH_BN_EPSILON",
    "TORCH_BN_MOMENTUM",
    "TorchMaxPool2D",
    "apply_transposed_conv",
    "exact_gelu",
    "multi_head_attention",
    "torch_padding",
]
