"""Training: config-driven runs (`train_from_config`, used by `keras-pose train`),
callbacks, evaluation and extra losses (OHKM, per-output).

Modules, one job each:

- `config_schema`: the schema of a training config and its validation
  (`TrainConfig`); `config_values`: the checks of single values and their
  messages; `config_io`: YAML/JSON files, ``--set`` overrides, path rules
  (`load_train_config`).
- `optimizers`: optimizers and learning-rate schedules (`WarmupSchedule`).
- `param_groups`: per-variable learning rates (ViTPose layer-wise decay), no
  weight decay on norms / biases / position embeddings, freezing by name;
  `ema`: mmpose's ``ExpMomentumEMA`` of the weights (`ExpMomentumEMA`).
- `model_builder`: the model of a config, from any registered task class or
  a preset (`build_model_from_config`, `architectures`).
- `callbacks`: NaN guard, evaluation, history, best checkpoint, learning rate;
  `checkpoints`: atomic, finite weight files; `resume`: the complete
  training state of a run, saved atomically, and resuming from it
  (`TrainingStateCheckpoint`); `evaluation`:
  `evaluate_pose_model` / `predict_dataset`; `whole_image_evaluation`: COCO
  AP of bottom-up / one-stage models (`evaluate_whole_image_model`).
- `run_folder`: the output folder (earlier runs are never lost);
  `trainer`: the run (`train_from_config`).
"""

from keras_pose.errors import NonFiniteModelError, TrainConfigError, TrainingDivergedError
from keras_pose.losses import KeypointOHKMMSELoss  # re-exported; defined in keras_pose.losses
from keras_pose.losses import MultiOutputHeatmapLoss
from keras_pose.training.callbacks import CocoEvaluationCallback
from keras_pose.training.callbacks import PoseEvaluationCallback
from keras_pose.training.callbacks import TerminateOnNonFiniteLoss
from keras_pose.training.callbacks import ThroughputLogger
from keras_pose.training.ema import ExpMomentumEMA
from keras_pose.training.param_groups import ParamGroupAdam, ParamGroupAdamW, ParamGroupSGD
from keras_pose.training.param_groups import freeze_by_patterns, layer_decay_multipliers
from keras_pose.training.config_io import load_train_config
from keras_pose.training.config_schema import TrainConfig
from keras_pose.training.distillation import OutputDistillation
from keras_pose.training.evaluation import evaluate_pose_model
from keras_pose.training.evaluation import predict_dataset
from keras_pose.training.whole_image_evaluation import evaluate_whole_image_model
from keras_pose.training.resume import TrainingStateCheckpoint
from keras_pose.training.resume import latest_training_state
from keras_pose.training.resume import restore_training_state
from keras_pose.training.run_folder import describe_previous_run
from keras_pose.training.trainer import TrainResult, train_from_config

__all__ = [
    "CocoEvaluationCallback",
    "ExpMomentumEMA",
    "evaluate_whole_image_model",
    "ParamGroupAdam",
    "ParamGroupAdamW",
    "ParamGroupSGD",
    "ThroughputLogger",
    "freeze_by_patterns",
    "layer_decay_multipliers",
    "KeypointOHKMMSELoss",
    "MultiOutputHeatmapLoss",
    "NonFiniteModelError",
    "OutputDistillation",
    "PoseEvaluationCallback",
    "TerminateOnNonFiniteLoss",
    "TrainConfig",
    "TrainConfigError",
    "TrainResult",
    "TrainingDivergedError",
    "TrainingStateCheckpoint",
    "describe_previous_run",
    "evaluate_pose_model",
    "latest_training_state",
    "load_train_config",
    "predict_dataset",
    "restore_training_state",
    "train_from_config",
]
