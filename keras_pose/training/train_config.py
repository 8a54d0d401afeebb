"""Compatibility names: `keras_pose.training.train_config` was split along its jobs.

Code written against the old module keeps working; new code imports from
`keras_pose.training` (``load_train_config``, ``train_from_config``, ...) or
the module that holds a name:

- `config_schema` (`TrainConfig`), `config_io` (loading, overrides),
  `config_values` (value checks),
- `optimizers` (`WarmupSchedule`, `make_schedule`, `make_optimizer`),
- `model_builder` (`build_model_from_config`, `constructor_arguments`,
  `resolve_train_keypoint_spec`),
- `callbacks` (`HistoryWriter`, `BestWeightsCheckpoint`), `checkpoints`
  (`save_weights_atomic`, `checkpoint_info_path`),
- `run_folder` (`describe_previous_run`, `PREVIOUS_RUNS_DIR`), `trainer`
  (`train_from_config`, `TrainResult`).
"""

from keras_pose.errors import TrainConfigError
from keras_pose.training.callbacks import BestWeightsCheckpoint, HistoryWriter
from keras_pose.training.checkpoints import checkpoint_info_path, save_weights_atomic
from keras_pose.training.config_io import (
    apply_overrides,
    load_train_config,
    load_yaml_text,
    parse_override,
    read_config_file,
)
from keras_pose.training.config_schema import TrainConfig
from keras_pose.training.model_builder import (
    build_model_from_config,
    constructor_arguments,
    resolve_train_keypoint_spec,
)
from keras_pose.training.optimizers import WarmupSchedule, make_optimizer, make_schedule
from keras_pose.training.run_folder import PREVIOUS_RUNS_DIR, describe_previous_run
from keras_pose.training.trainer import TrainResult, train_from_config

__all__ = [
    "BestWeightsCheckpoint",
    "HistoryWriter",
    "PREVIOUS_RUNS_DIR",
    "TrainConfig",
    "TrainConfigError",
    "TrainResult",
    "WarmupSchedule",
    "apply_overrides",
    "build_model_from_config",
    "checkpoint_info_path",
    "constructor_arguments",
    "describe_previous_run",
    "load_train_config",
    "load_yaml_text",
    "make_optimizer",
    "make_schedule",
    "parse_override",
    "read_config_file",
    "resolve_train_keypoint_spec",
    "save_weights_atomic",
    "train_from_config",
]
