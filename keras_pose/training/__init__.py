"""Training helpers: extra losses (OHKM, per-output) and evaluation callbacks."""

from keras_pose.training.callbacks import CocoEvaluationCallback
from keras_pose.training.callbacks import PoseEvaluationCallback
from keras_pose.training.callbacks import evaluate_pose_model
from keras_pose.training.callbacks import predict_dataset
from keras_pose.training.losses import KeypointOHKMMSELoss
from keras_pose.training.losses import MultiOutputHeatmapLoss

__all__ = [
    "CocoEvaluationCallback",
    "KeypointOHKMMSELoss",
    "MultiOutputHeatmapLoss",
    "PoseEvaluationCallback",
    "evaluate_pose_model",
    "predict_dataset",
]
