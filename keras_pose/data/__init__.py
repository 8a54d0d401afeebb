"""``tf.data`` pipelines: top-down crops, whole images (bottom-up / one-stage), augmentations and targets."""

from keras_pose.data.affine_tf import box_xywh_to_center_scale_tf
from keras_pose.data.affine_tf import get_warp_matrix_tf
from keras_pose.data.affine_tf import transform_points_tf
from keras_pose.data.affine_tf import warp_image_tf
from keras_pose.data.augmentations import DEFAULT_AUGMENT
from keras_pose.data.top_down_pipeline import META_KEYS
from keras_pose.data.top_down_pipeline import PipelineError
from keras_pose.data.top_down_pipeline import build_top_down_dataset
from keras_pose.data.model_datasets import model_dataset
from keras_pose.data.multi_dataset_pipeline import build_multi_dataset_pipeline
from keras_pose.data.whole_image_augmentations import DEFAULT_WHOLE_IMAGE_AUGMENT
from keras_pose.data.whole_image_pipeline import INSTANCE_KEYS
from keras_pose.data.whole_image_pipeline import MixingSwitch
from keras_pose.data.whole_image_pipeline import build_whole_image_dataset
from keras_pose.utils.backend_imports import attach_tensorflow_to_keras_hub

# These pipelines imported TensorFlow: keras-hub, if it was imported without
# it (JAX / PyTorch backends), gets it now, so it recognises tf.data datasets.
attach_tensorflow_to_keras_hub()

__all__ = [
    "DEFAULT_AUGMENT",
    "DEFAULT_WHOLE_IMAGE_AUGMENT",
    "INSTANCE_KEYS",
    "META_KEYS",
    "PipelineError",
    "box_xywh_to_center_scale_tf",
    "build_top_down_dataset",
    "build_multi_dataset_pipeline",
    "MixingSwitch",
    "build_whole_image_dataset",
    "get_warp_matrix_tf",
    "model_dataset",
    "transform_points_tf",
    "warp_image_tf",
]
