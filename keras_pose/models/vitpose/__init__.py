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
    ViTPosePatchEmbedding,
    ViTPoseSimpleHead,
    ViTPoseTransformerBlock,
    exact_gelu,
    patch_grid_size,
)
from keras_pose.models.vitpose.vitpose_minimal_head import ViTPoseMinimalHead, pixel_shuffle
from keras_pose.models.vitpose.vitpose_multi_head import ViTPoseMultiDatasetHead
from keras_pose.models.vitpose.vitpose_plus_pose_estimator import VITPOSE_PLUS_DATASETS
from keras_pose.models.vitpose.vitpose_plus_pose_estimator import ViTPosePP
from keras_pose.models.vitpose.vitpose_pose_estimator import ViTPose
from keras_pose.models.vitpose.vitpose_transfer import transfer_weights, with_attention
from keras_pose.models.vitpose.vitpose_add_dataset import add_dataset, freeze_for_dataset
from keras_pose.models.vitpose.vitpose_multi_dataset import (
    MultiDatasetKeypointMSELoss,
    ViTPosePPMultiDataset,
    multi_dataset_inputs,
    multi_dataset_targets,
    per_dataset_losses,
)
from keras_pose.models.vitpose.vitpose_window_attention import (
    ATTENTION_TYPES,
    ViTPoseWindowAttention,
    ViTPoseWindowTransformerBlock,
)

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
    "ATTENTION_TYPES",
    "ViTPoseMinimalHead",
    "ViTPoseWindowAttention",
    "ViTPoseWindowTransformerBlock",
    "pixel_shuffle",
    "transfer_weights",
    "with_attention",
    "exact_gelu",
    "patch_grid_size",
    "standard_num_heads",
    "MultiDatasetKeypointMSELoss",
    "ViTPosePPMultiDataset",
    "add_dataset",
    "freeze_for_dataset",
    "multi_dataset_inputs",
    "multi_dataset_targets",
    "per_dataset_losses",
]
