"""ViTPose and ViTPose++ (Xu et al. 2022 / 2023): plain-ViT top-down pose estimators."""

from keras_pose.models.vitpose.vitpose_backbone import (
    VIT_SIZES,
    VITPOSE_PLUS_PART_FEATURES,
    VITPOSE_VARIANTS,
    ViTPoseBackbone,
    standard_num_heads,
)
from keras_pose.models.vitpose.vitpose_layers import (
    ExactGELU,
    ViTPoseAttention,
    ViTPoseClassicHead,
    ViTPoseMLP,
    ViTPoseMultiDatasetHead,
    ViTPosePatchEmbedding,
    ViTPoseSimpleHead,
    ViTPoseTransformerBlock,
    exact_gelu,
    patch_grid_size,
)
from keras_pose.models.vitpose.vitpose_plus_pose_estimator import VITPOSE_PLUS_DATASETS
from keras_pose.models.vitpose.vitpose_plus_pose_estimator import ViTPosePP
from keras_pose.models.vitpose.vitpose_pose_estimator import ViTPose

__all__ = [
    "ExactGELU",
    "VITPOSE_PLUS_DATASETS",
    "VIT_SIZES",
    "VITPOSE_PLUS_PART_FEATURES",
    "VITPOSE_VARIANTS",
    "ViTPose",
    "ViTPoseAttention",
    "ViTPoseBackbone",
    "ViTPoseClassicHead",
    "ViTPoseMLP",
    "ViTPoseMultiDatasetHead",
    "ViTPosePP",
    "ViTPosePatchEmbedding",
    "ViTPoseSimpleHead",
    "ViTPoseTransformerBlock",
    "exact_gelu",
    "patch_grid_size",
    "standard_num_heads",
]
