"""Loading a preset: `load_preset` (`keras_pose.from_preset`, and every task class's `from_preset`).

`load_preset(preset, cls=None, load_weights=True, **kwargs)` resolves the preset
once (`preset_cache.resolve`: a preset folder, a registered name, a checkpoint
URL or file, a `kaggle://` / `hf://` handle), then:

- when the resolution just converted a checkpoint, returns that model (it was
  cached with `save_to_preset`; nothing is built twice), unless the call asks
  for something the converted model is not (`load_weights=False`, a `dtype`,
  other constructor overrides), which is built from the cached folder;
- otherwise reads the folder's `task.json` once, checks the class it names is a
  subclass of `cls` (the class `from_preset` was called on; any task for
  `keras_pose.from_preset`), builds it from that config (keras-hub's rules:
  `dtype` and backbone overrides go to the backbone) and loads the weight
  files (`load_preset_weights`: a missing or unreadable file is an error naming
  it).

A local folder's config files are checked first: `config.json` must name a
registered class; every JSON file must parse (the error names file and line);
a damaged cache entry is named with how to remove it.
"""

import copy
import importlib
import json
import os

from keras_pose.errors import PresetError
from keras_pose.preset_cache import METADATA_FILE
from keras_pose.preset_cache import SHARDED_WEIGHTS_FILE
from keras_pose.preset_cache import TASK_WEIGHTS_FILE
from keras_pose.preset_cache import WEIGHTS_FILE
from keras_pose.preset_cache import presets_cache_dir
from keras_pose.utils.backend_imports import import_keras_hub
from keras_pose.preset_cache import resolve
from keras_pose.utils.json_files import read_json

# The files of a keras-hub preset a keras-pose task reads (a remote handle's are fetched).
REMOTE_FILES = ("config.json", "task.json", "preprocessor.json", "metadata.json", METADATA_FILE,
                WEIGHTS_FILE, SHARDED_WEIGHTS_FILE, TASK_WEIGHTS_FILE)


def _read_json(directory, name):
    """The parsed JSON file `name` of a preset (None if it has none).

    Raises:
        PresetError: the file is not valid JSON (naming file, line and
            column), or a remote handle's file could not be fetched.
    """
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        return None
    return read_json(path, PresetError, f"the preset is damaged. {_repair_hint(directory)}")


def _in_cache(directory):
    directory = os.path.realpath(directory)
    root = os.path.realpath(presets_cache_dir())
    return directory.startswith(root.rstrip(os.sep) + os.sep)


def _repair_hint(directory):
    """How to repair a damaged preset folder: a cache entry is deleted, a user's is re-made."""
    if _in_cache(directory):
        return (
            f"It is a keras-pose cache entry: delete the folder {directory} (e.g. `rm -r '{directory}'`) and load "
            "the preset again, which converts it anew."
        )
    return (
        f"Re-create {directory}: convert the checkpoint again (`keras-pose convert --checkpoint FILE --output "
        f"{directory}`) or save the model again with save_to_preset."
    )


def _import_model_modules(meta):
    """Import the model packages so the classes a preset names register themselves."""
    modules = ["keras_pose", "keras_pose.models"]
    meta = meta or {}
    family = (meta.get("family") or "").split("_plus")[0] if isinstance(meta, dict) else ""
    if family:
        modules.append(f"keras_pose.models.{family}")
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _registered_class(directory, name, config, meta=None):
    """The Keras class a preset config file names; PresetError if it names none."""
    import keras

    registered = config.get("registered_name") if isinstance(config, dict) else None
    if not isinstance(registered, str) or not registered:
        raise PresetError(
            f"{os.path.join(directory, name)} names no model class (its \"registered_name\" is "
            f"{'missing' if not isinstance(config, dict) or 'registered_name' not in config else repr(registered)}); "
            f"the preset is damaged or was not written by save_to_preset. {_repair_hint(directory)}"
        )
    if registered in ("Functional", "Sequential"):
        return keras.Model
    cls = keras.saving.get_registered_object(registered)
    if cls is None:
        _import_model_modules(meta)
        cls = keras.saving.get_registered_object(registered)
    if cls is None:
        raise PresetError(
            f"Preset {directory!r} needs the class {registered!r}, which is not available in this "
            "keras-pose install. Upgrade keras-pose."
        )
    return cls


def _preset_files(directory):
    """(task.json, config.json, keras_pose_preset.json) of a local preset folder, each read once and checked.

    Raises:
        PresetError: no task.json (a backbone-only preset), no config.json,
            a file that is not valid JSON (naming file and line), or a config
            that names no registered class.
    """
    task = _read_json(directory, "task.json")
    if task is None:
        raise PresetError(
            f"Preset {directory!r} has no task.json naming a task class; it holds only a backbone. "
            "Load it with the task class, e.g. keras_pose.ViTPose.from_preset(...)."
        )
    config = _read_json(directory, "config.json")
    if config is None:
        raise PresetError(
            f"Preset {directory!r} has no config.json (the backbone's configuration); it is incomplete. "
            + _repair_hint(directory)
        )
    meta = _read_json(directory, METADATA_FILE)
    _registered_class(directory, "config.json", config, meta)
    return task, config, meta


def check_preset_dir(directory):
    """Check a local preset folder's config files (see `_preset_files`)."""
    if os.path.isdir(directory):
        _preset_files(directory)


def task_class_of(directory):
    """The task class recorded in a local preset folder's `task.json` (imports its module)."""
    task, _, meta = _preset_files(directory)
    return _registered_class(directory, "task.json", task, meta)


def _local_copy(handle):
    """The local folder holding a `kaggle://` / `hf://` preset's files (keras-hub fetches and caches them)."""
    import_keras_hub()  # keras-hub without TensorFlow on JAX / PyTorch
    from keras_hub.src.utils.preset_utils import check_file_exists, get_file

    try:
        directory = os.path.dirname(get_file(handle, "config.json"))
        for name in REMOTE_FILES[1:]:
            if check_file_exists(handle, name):
                get_file(handle, name)
        sharded = os.path.join(directory, SHARDED_WEIGHTS_FILE)
        if os.path.isfile(sharded):
            with open(sharded, encoding="utf-8") as f:
                shards = json.load(f)["weight_map"].values()
            for shard in sorted({s for v in shards for s in (v if isinstance(v, list) else [v])}):
                get_file(handle, shard)
    except Exception as error:  # noqa: BLE001 - network / hub errors, reported with the handle
        raise PresetError(f"Could not fetch the preset {handle}: {error}") from None
    return directory


def _build_task(directory, task_class, task_config, backbone_config, **kwargs):
    """The task `task.json` describes, with keras-hub's override rules, weights not loaded."""
    import_keras_hub()  # keras-hub without TensorFlow on JAX / PyTorch
    from keras_hub.src.utils.preset_utils import KerasPresetLoader

    loader = KerasPresetLoader(directory, backbone_config)
    task_config = copy.deepcopy(task_config)
    kwargs["dtype"] = loader._resolve_dtype(backbone_config, kwargs)
    backbone_kwargs, kwargs = loader.get_backbone_kwargs(**kwargs)
    if isinstance(task_config.get("config", {}).get("backbone"), dict):
        backbone = task_config["config"]["backbone"]
        backbone["config"] = {**backbone["config"], **backbone_kwargs}
    task = loader._load_serialized_object(task_config, **kwargs)
    if not isinstance(task, task_class):  # pragma: no cover - the registered class decides
        raise PresetError(f"{directory}/task.json built a {type(task).__name__}, not a {task_class.__name__}.")
    if getattr(task, "preprocessor", None) is not None and hasattr(task.preprocessor, "load_preset_assets"):
        task.preprocessor.load_preset_assets(directory)
    return task


def _check_class(preset, task_class, cls, dataset):
    if cls is not None and not issubclass(task_class, cls):
        raise PresetError(
            f"Preset {preset!r} holds a {task_class.__name__}, not a {cls.__name__}. Load it with "
            f"keras_pose.{task_class.__name__}.from_preset(...) or keras_pose.from_preset(...)."
        )
    if dataset is not None and not hasattr(task_class, "with_dataset"):
        raise PresetError(
            f"dataset={dataset!r} is only for multi-dataset presets (ViTPose++); {preset!r} holds a "
            f"{task_class.__name__} with one keypoint set."
        )


def load_preset_weights(task, directory):
    """Load a local preset folder's weight files into `task`, by name.

    keras-hub's loader silently keeps a freshly initialised head when
    `task.weights.h5` is missing and reports a missing `model.weights.h5` as
    a missing `model.weights.json`. Here both files are required (the task
    weights where the task has weights outside its backbone), and a file
    that cannot be read is named, with how to repair the preset.

    Args:
        task: a task built from the preset with `load_weights=False`.
        directory: the local preset folder.

    Raises:
        PresetError: a weights file is missing or unreadable.
    """
    model_weights = os.path.join(directory, WEIGHTS_FILE)
    if not os.path.isfile(model_weights):
        sharded = os.path.join(directory, SHARDED_WEIGHTS_FILE)
        if not os.path.isfile(sharded):
            raise PresetError(
                f"Preset {directory!r} has no {WEIGHTS_FILE} (the backbone weights); it is incomplete and would "
                f"load with random weights. {_repair_hint(directory)}"
            )
        model_weights = sharded
    task_weights = os.path.join(directory, TASK_WEIGHTS_FILE)
    has_task_weights = task.has_task_weights() if hasattr(task, "has_task_weights") else False
    if has_task_weights and not os.path.isfile(task_weights):
        raise PresetError(
            f"Preset {directory!r} has no {TASK_WEIGHTS_FILE} (the weights of the head); it is incomplete and "
            f"would predict with a randomly initialised head. {_repair_hint(directory)}"
        )
    try:
        import_keras_hub()
        from keras_hub.src.utils.preset_utils import jax_memory_cleanup
    except ImportError:  # pragma: no cover - keras-hub internals moved
        jax_memory_cleanup = None

    def load(path, fn):
        try:
            fn(path)
        except Exception as error:  # noqa: BLE001 - h5py OSError, Keras ValueError, ... all mean the same here
            detail = " ".join(str(error).split())[:300] or "no details"
            raise PresetError(
                f"Could not read the weights file {path} ({type(error).__name__}: {detail}); it is corrupt, "
                f"incomplete or belongs to another configuration. {_repair_hint(directory)}"
            ) from None

    if has_task_weights:
        if jax_memory_cleanup is not None:
            jax_memory_cleanup(task)
        load(task_weights, task.load_task_weights)
    elif jax_memory_cleanup is not None:
        jax_memory_cleanup(task.backbone)
    load(model_weights, task.backbone.load_weights)
    return task


def load_preset(preset, cls=None, load_weights=True, **kwargs):
    """Build the model a preset describes (`keras_pose.from_preset`, `TaskClass.from_preset`).

    Args:
        preset: a registered preset name, a local preset folder, an
            `https://` / `file://` URL or a local path of a reference
            checkpoint, or a `kaggle://` / `hf://` handle (see
            `preset_cache.resolve_preset`).
        cls: the class `from_preset` was called on; the preset must hold a
            subclass of it. None (`keras_pose.from_preset`): any task class.
        load_weights: load the weights (True) or keep a fresh initialisation.
        **kwargs: `accept_license=True` to accept a restrictive weight
            licence (non-commercial OpenPose presets; `license_gate`), constructor overrides (e.g. `dtype="mixed_bfloat16"`), and
            `dataset=` for ViTPose++ (the dataset whose expert and head are
            active; a registered preset is converted for it).

    Returns:
        The task model (the class named in the preset's `task.json`).

    Raises:
        PresetError: unknown preset (with suggestions), a class mismatch, a
            damaged preset folder (invalid JSON, no class named) or a missing
            or unreadable weights file (named, with how to repair it).
        DownloadError / CheckpointError: from fetching or converting the
            reference checkpoint.
    """
    from keras_pose.license_gate import check_license

    check_license(preset, kwargs.pop("accept_license", False))  # restrictive weight licences: accepted first
    dataset = kwargs.get("dataset")
    if dataset is None:
        kwargs.pop("dataset", None)
    directory, converted = resolve(preset, dataset=dataset)
    if converted is not None and load_weights and not set(kwargs) - {"dataset"}:
        _check_class(preset, type(converted), cls, dataset)
        return converted
    if not os.path.isdir(directory):
        directory = _local_copy(directory)
    task_config, backbone_config, meta = _preset_files(directory)
    task_class = _registered_class(directory, "task.json", task_config, meta)
    _check_class(preset, task_class, cls, dataset)
    task = _build_task(directory, task_class, task_config, backbone_config, **kwargs)
    if load_weights:
        load_preset_weights(task, directory)
    return task


__all__ = [
    "check_preset_dir",
    "load_preset",
    "load_preset_weights",
    "task_class_of",
]
