"""Turning a preset argument into a local preset directory, and loading it.

`resolve_preset` accepts everything `from_preset` does and returns a local
keras-hub preset directory (or a remote handle keras-hub understands):

(a) a local preset directory (`save_to_preset` / `keras-pose convert`
    output): returned as is;
(b) a registered preset name (`keras-pose presets`): the converted preset in
    `cache_dir()/presets/<name>/` if it is there, else the reference
    checkpoint is downloaded into `cache_dir()/checkpoints/` (sha256-checked),
    converted and cached, once;
(c) an `https://`, `http://` or `file://` URL of a reference checkpoint (or a
    local checkpoint file): downloaded, converted with the matching
    registered preset (matched by URL or file name) or by inference, and
    cached under `cache_dir()/presets/url-<sha1 of the URL>/`;
(d) `kaggle://` and `hf://` Keras preset handles: returned unchanged (keras-hub
    downloads them);
(e) anything else: a `PresetError` suggesting close preset names.

`load_preset(preset)` (exposed as `keras_pose.from_preset`) resolves the
preset and builds the task class recorded in its `task.json`.
"""

import hashlib
import importlib
import json
import os

from keras_pose.errors import PresetError
from keras_pose.utils.download import cache_dir
from keras_pose.utils.download import cached_download
from keras_pose.utils.download import cached_path_for
from keras_pose.utils.download import copy_file_atomic
from keras_pose.utils.download import download_file
from keras_pose.utils.download import is_url
from keras_pose.utils.download import sha256_file
from keras_pose.utils.download import sha256_matches
from keras_pose.utils.download import url_file_name

KERAS_HUB_SCHEMES = ("kaggle://", "hf://", "gs://", "modelscope://")
_PRESET_FILES = ("config.json", "task.json")


def presets_cache_dir():
    """`cache_dir()/presets`: where converted presets are cached."""
    return os.path.join(cache_dir(), "presets")


def is_preset_dir(path):
    """True if `path` is a folder holding a keras-hub preset (config.json/task.json)."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, f)) for f in _PRESET_FILES)


def _is_complete(path):
    # Presets are written with atomic_directory, so a folder that exists with
    # its config is complete.
    return os.path.isfile(os.path.join(path, "config.json"))


def _looks_like_path(value):
    return (
        os.sep in value
        or (os.altsep is not None and os.altsep in value)
        or value.startswith((".", "~"))
        or value.endswith((".pth", ".pt", ".safetensors", ".ckpt", ".bin"))
    )


def _check_dataset(entry, dataset):
    if dataset is None or dataset == entry.dataset:
        return
    if entry.dataset is not None and entry.checkpoint_format == "hf_safetensors":
        raise PresetError(
            f"Preset {entry.name!r} holds only the {entry.dataset!r} head (HF conversion); use the "
            f"original multi-dataset preset (e.g. {entry.name.split('_coco')[0]}) for dataset={dataset!r}."
        )
    datasets = entry.config.get("datasets")
    if not datasets:
        raise PresetError(
            f"Preset {entry.name!r} is a single-dataset model; `dataset={dataset!r}` applies only to "
            "multi-dataset presets (ViTPose++: vitpose_plus_small, ...)."
        )
    if dataset not in datasets:
        raise PresetError(f"Preset {entry.name!r} has no dataset {dataset!r}; choose one of {datasets}.")


def fetch_checkpoint(entry, progress=True):
    """Download a registered preset's checkpoint (and extra files) into the cache.

    Files go to `cache_dir()/checkpoints/<key of source_url>/`; the extra
    files (e.g. an HF `config.json`) are placed beside the checkpoint.
    Presets that share a source file share the download.

    Returns:
        The local checkpoint path.
    """
    path = cached_download(
        entry.source_url, file_name=entry.file_name, sha256=entry.sha256, progress=progress, preset_name=entry.name
    )
    for name, url in (entry.extra_files or {}).items():
        extra = cached_path_for(entry.source_url, file_name=name)
        if not os.path.isfile(extra):
            download_file(url, extra, progress=False, preset_name=entry.name)
    return path


def _convert_into(checkpoint, target, entry=None, dataset=None):
    from keras_pose.conversion import convert_checkpoint

    convert_checkpoint(checkpoint, preset=entry, output_dir=target, dataset=dataset)
    return target


def _resolve_registered(name, dataset=None, progress=True):
    from keras_pose.preset_registry import get_preset_entry

    entry = get_preset_entry(name)
    _check_dataset(entry, dataset)
    key = entry.name if dataset in (None, entry.dataset) else f"{entry.name}-{dataset}"
    target = os.path.join(presets_cache_dir(), key)
    if _is_complete(target):
        return target
    checkpoint = fetch_checkpoint(entry, progress=progress)
    return _convert_into(checkpoint, target, entry=entry, dataset=dataset)


def _resolve_checkpoint_url(url, dataset=None, progress=True):
    from keras_pose.preset_registry import find_preset_by_url

    entry = find_preset_by_url(url)
    if entry is not None:
        _check_dataset(entry, dataset)
    key = "url-" + hashlib.sha1(url.encode("utf-8")).hexdigest()
    if dataset is not None and (entry is None or dataset != entry.dataset):
        key += f"-{dataset}"
    target = os.path.join(presets_cache_dir(), key)
    if _is_complete(target):
        return target
    sha = entry.sha256 if entry is not None else None
    file_name = entry.file_name if entry is not None else url_file_name(url)
    checkpoint = cached_download(
        url, file_name=file_name, sha256=sha, progress=progress, preset_name=entry.name if entry else None
    )
    folder_files = dict(entry.extra_files) if entry is not None else {}
    if entry is None and file_name.endswith(".safetensors"):
        # An HF model file: its config.json usually sits beside it.
        folder_files["config.json"] = url.rsplit("/", 1)[0] + "/config.json"
    for name, extra_url in folder_files.items():
        extra = cached_path_for(url, file_name=name)
        if os.path.isfile(extra):
            continue
        try:
            download_file(extra_url, extra, progress=False, preset_name=entry.name if entry else None)
        except Exception:
            if entry is not None:
                raise
    return _convert_into(checkpoint, target, entry=entry, dataset=dataset)


def _resolve_local_checkpoint(path, dataset=None, progress=True):
    import pathlib

    return _resolve_checkpoint_url(pathlib.Path(path).resolve().as_uri(), dataset=dataset, progress=progress)


def resolve_preset(preset, dataset=None, progress=True):
    """A local preset directory (or keras-hub handle) for `preset`.

    Args:
        preset: a local preset directory, a registered preset name, an
            `https://` / `http://` / `file://` URL of a reference checkpoint,
            a local checkpoint file, or a `kaggle://` / `hf://` handle.
        dataset: for multi-dataset models (ViTPose++), the dataset whose
            expert and head the converted model uses (default: the preset's).
            It selects a separate cache entry.
        progress: show download progress bars.

    Returns:
        The path of a complete preset directory, or the handle unchanged for
        `kaggle://` / `hf://`.

    Raises:
        PresetError: unknown name (with suggestions), a folder that is not a
            preset, or a bad `dataset`.
        DownloadError: the checkpoint could not be downloaded or failed its
            sha256 check.
    """
    if not isinstance(preset, (str, os.PathLike)):
        raise PresetError(
            f"preset must be a preset name, directory or URL string, got {type(preset).__name__}."
        )
    preset = os.fspath(preset)
    if preset.lower().startswith(KERAS_HUB_SCHEMES):
        return preset
    if is_url(preset):
        return _resolve_checkpoint_url(preset, dataset=dataset, progress=progress)
    expanded = os.path.expanduser(preset)
    if os.path.isdir(expanded):
        if not is_preset_dir(expanded):
            raise PresetError(
                f"{preset!r} is not a keras-pose preset directory (it has no config.json or task.json). "
                "Convert a reference checkpoint with `keras-pose convert --preset NAME --checkpoint FILE "
                "--output DIR` and load DIR, or pass a registered preset name (`keras-pose presets`)."
            )
        return os.path.abspath(expanded)
    if os.path.isfile(expanded):
        return _resolve_local_checkpoint(expanded, dataset=dataset, progress=progress)
    if _looks_like_path(preset):
        raise PresetError(
            f"{preset!r} does not exist. Pass an existing preset directory or checkpoint file, a registered "
            "preset name (`keras-pose presets`), or an https:// / file:// URL."
        )
    return _resolve_registered(preset, dataset=dataset, progress=progress)


def _read_json(directory, name):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    if not os.path.isdir(directory):
        # A keras-hub handle: let keras-hub fetch the file.
        try:
            from keras_hub.src.utils.preset_utils import load_json

            return load_json(directory, name)
        except Exception:  # noqa: BLE001 - reported below as "no task.json"
            return None
    return None


def task_class_of(directory):
    """The task class recorded in a preset's `task.json` (imports its module)."""
    import keras

    task = _read_json(directory, "task.json")
    if not task or not task.get("registered_name"):
        raise PresetError(
            f"Preset {directory!r} has no task.json naming a task class; it holds only a backbone. "
            "Load it with the task class, e.g. keras_pose.ViTPose.from_preset(...)."
        )
    registered = task["registered_name"]
    cls = keras.saving.get_registered_object(registered)
    if cls is None:
        # Import the model packages so their classes register themselves.
        modules = ["keras_pose", "keras_pose.models"]
        meta = _read_json(directory, "keras_pose_preset.json") or {}
        family = (meta.get("family") or "").split("_plus")[0]
        if family:
            modules.append(f"keras_pose.models.{family}")
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError:
                pass
        cls = keras.saving.get_registered_object(registered)
    if cls is None:
        raise PresetError(
            f"Preset {directory!r} needs the class {registered!r}, which is not available in this "
            "keras-pose install. Upgrade keras-pose."
        )
    return cls


def load_preset(preset, cls=None, **kwargs):
    """Build the model a preset describes (`keras_pose.from_preset`).

    Args:
        preset: see `resolve_preset`.
        cls: the task class to build; default: the class named in the
            preset's `task.json`.
        **kwargs: passed to `cls.from_preset` (e.g. `load_weights=False`,
            `dtype=...`, `dataset=` for ViTPose++: the dataset whose expert
            and head are active).

    Returns:
        The task model (e.g. `ViTPose`).
    """
    # `dataset` picks the conversion to resolve (a registered ViTPose++ preset
    # is converted for that dataset) and is passed on, so a multi-dataset
    # preset directory loads with that dataset active too.
    directory = resolve_preset(preset, dataset=kwargs.get("dataset"))
    if kwargs.get("dataset") is None:
        kwargs.pop("dataset", None)
    if cls is None:
        cls = task_class_of(directory)
    if kwargs.get("dataset") is not None and not hasattr(cls, "with_dataset"):
        raise PresetError(
            f"dataset={kwargs['dataset']!r} is only for multi-dataset presets (ViTPose++); "
            f"{preset!r} holds a {cls.__name__} with one keypoint set."
        )
    return cls.from_preset(directory, **kwargs)


def verify_checkpoint(path, entry):
    """True if the file at `path` matches `entry.sha256` (or it has none)."""
    return entry.sha256 is None or sha256_matches(sha256_file(path), entry.sha256)


def import_checkpoint(path, entry):
    """Copy a hand-downloaded checkpoint to where `resolve_preset` looks for it.

    Raises PresetError if its sha256 does not match the preset's.
    """
    if not verify_checkpoint(path, entry):
        raise PresetError(
            f"{path!r} does not match preset {entry.name!r}: expected sha256 {entry.sha256}, got "
            f"{sha256_file(path)}."
        )
    return copy_file_atomic(path, cached_path_for(entry.source_url, file_name=entry.file_name))


__all__ = [
    "fetch_checkpoint",
    "import_checkpoint",
    "is_preset_dir",
    "load_preset",
    "presets_cache_dir",
    "resolve_preset",
    "task_class_of",
    "verify_checkpoint",
]
