"""Training helpers: extra losses (OHKM, per-output), evaluation callbacks and
config-driven training (`train_from_config`, used by `keras-pose train`)."""

from keras_pose.losses import KeypointOHKMMSELoss  # re-exported; defined in keras_pose.losses
from keras_pose.losses import MultiOutputHeatmapLoss
from keras_pose.training.callbacks import CocoEvaluationCallback
from keras_pose.training.callbacks import NonFiniteModelError
from keras_pose.training.callbacks import PoseEvaluationCallback
from keras_pose.training.callbacks import TerminateOnNonFiniteLoss
from keras_pose.training.callbacks import TrainingDivergedError
from keras_pose.training.callbacks import evaluate_pose_model
from keras_pose.training.callbacks import predict_dataset
from keras_pose.training.train_config import load_train_config, train_from_config

__all__ = [
    "CocoEvaluationCallback",
    "KeypointOHKMMSELoss",
    "MultiOutputHeatmapLoss",
    "NonFiniteModelError",
    "PoseEvaluationCallback",
    "TerminateOnNonFiniteLoss",
    "TrainingDivergedError",
    "evaluate_pose_model",
    "load_train_config",
    "predict_dataset",
    "train_from_config",
]
