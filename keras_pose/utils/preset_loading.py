"""Turning a preset argument into a local preset directory, and loading it.

`resolve_preset` accepts everything `from_preset` does and returns a local
keras-hub preset directory (or a remote handle keras-hub understands):

(a) a local preset directory (`save_to_preset` / `keras-pose convert`
    output): returned as is;
(b) a registered preset name (`keras-pose presets`, any letter case): the
    converted preset in `cache_dir()/presets/<name>/` if it is current, else
    the reference checkpoint is downloaded into `cache_dir()/checkpoints/`
    (sha256-checked; where no full digest is published, checked to parse
    and its full digest recorded), converted and cached;
(c) a local checkpoint file or `file://` URL: converted where it lies (never
    copied) with the matching registered preset (matched by file name) or
    by inference, and cached under `cache_dir()/presets/url-<sha1 of the
    file:// URL>/`;
(d) an `https://` / `http://` URL of a reference checkpoint: downloaded
    into the cache like (b), converted and cached under
    `cache_dir()/presets/url-<sha1 of the URL>/`;
(e) `kaggle://` and `hf://` Keras preset handles: returned unchanged (keras-hub
    downloads them; refused at once when KERAS_POSE_OFFLINE is set);
(f) anything else: a `PresetError` suggesting close preset names.

A cached conversion is current when it was written by this
`CONVERTER_VERSION` and its source file is the one it was converted from
(`converted_from` in its keras_pose_preset.json: size, modification time and
a sample digest, falling back to the full sha256 when only the time
differs); otherwise it is converted again, so a replaced or repaired
checkpoint is never shadowed by an old conversion. A downloaded checkpoint
that fails to convert is removed from the cache (unless its full published
sha256 proved it is the released file).

`load_preset(preset)` (exposed as `keras_pose.from_preset`) resolves the
preset and builds the task class recorded in its `task.json`;
`load_preset_weights` loads a preset directory's weight files, refusing a
missing or unreadable one by name.
"""

import hashlib
import importlib
import json
import os
import pathlib
import tempfile
import urllib.parse
import urllib.request

from keras_pose.errors import CheckpointError
from keras_pose.errors import DownloadError
from keras_pose.errors import PresetError
from keras_pose.utils.download import cache_dir
from keras_pose.utils.download import cached_download
from keras_pose.utils.download import cached_path_for
from keras_pose.utils.download import copy_file_atomic
from keras_pose.utils.download import discard_cached
from keras_pose.utils.download import download_file
from keras_pose.utils.download import file_fingerprint
from keras_pose.utils.download import is_offline
from keras_pose.utils.download import is_url
from keras_pose.utils.download import record_sha256
from keras_pose.utils.download import sha256_file
from keras_pose.utils.download import sha256_matches
from keras_pose.utils.download import url_file_name
from keras_pose.utils.file_utils import clean_stale_temporaries

KERAS_HUB_SCHEMES = ("kaggle://", "hf://", "gs://", "modelscope://")
_PRESET_FILES = ("config.json", "task.json")
_METADATA_FILE = "keras_pose_preset.json"
_WEIGHTS_FILE = "model.weights.h5"
_SHARDED_WEIGHTS_FILE = "model.weights.json"
_TASK_WEIGHTS_FILE = "task.weights.h5"

_cleaned_cache_dirs = set()


def presets_cache_dir():
    """`cache_dir()/presets`: where converted presets are cached."""
    return os.path.join(cache_dir(), "presets")


def is_preset_dir(path):
    """True if `path` is a folder holding a keras-hub preset (config.json/task.json)."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, f)) for f in _PRESET_FILES)


def _clean_cache_folder(folder):
    """Remove what killed writers left in a cache folder (once per process)."""
    folder = os.path.abspath(folder)
    if folder not in _cleaned_cache_dirs:
        _cleaned_cache_dirs.add(folder)
        clean_stale_temporaries(folder, legacy=True)


def _is_complete(path):
    # Presets are written with atomic_directory, so a folder that exists with
    # its files is complete.
    has_weights = any(os.path.isfile(os.path.join(path, f)) for f in (_WEIGHTS_FILE, _SHARDED_WEIGHTS_FILE))
    return has_weights and all(os.path.isfile(os.path.join(path, f)) for f in ("config.json", _METADATA_FILE))


def _cached_preset_is_current(target, source=None, entry=None):
    """True if the cached conversion in `target` can be used as is.

    It must be complete, written by this `CONVERTER_VERSION`, match the
    registry entry's digest (if any), and, when its source file `source`
    exists, have been converted from that very file.
    """
    from keras_pose.conversion import CONVERTER_VERSION

    if not _is_complete(target):
        return False
    try:
        with open(os.path.join(target, _METADATA_FILE), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("converter_version") != CONVERTER_VERSION:
        return False
    if entry is not None and meta.get("sha256") != entry.sha256:
        return False
    if source is None or not os.path.isfile(source):
        return True
    recorded = meta.get("converted_from") or {}
    current = file_fingerprint(source)
    if all(recorded.get(k) == v for k, v in current.items()):
        return True
    if recorded.get("size") == current["size"] and recorded.get("sample_sha256") == current["sample_sha256"]:
        # Only the modification time differs (a copy, a `touch`): compare the content.
        return recorded.get("sha256") == sha256_file(source)
    return False


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


def _check_complete(path):
    from keras_pose.conversion.checkpoint_io import check_complete

    check_complete(path)


def fetch_checkpoint(entry, progress=True):
    """Download a registered preset's checkpoint (and extra files) into the cache.

    Files go to `cache_dir()/checkpoints/<key of source_url>/`; the extra
    files (e.g. an HF `config.json`) are placed beside the checkpoint.
    Presets that share a source file share the download. Where the entry
    has no full sha256, the file must parse as a complete checkpoint before
    it is cached, and its full digest is recorded for later reads.

    Returns:
        The local checkpoint path.
    """
    path = cached_download(
        entry.source_url,
        file_name=entry.file_name,
        sha256=entry.sha256,
        progress=progress,
        preset_name=entry.name,
        verify=_check_complete,
    )
    for name, url in (entry.extra_files or {}).items():
        extra = cached_path_for(entry.source_url, file_name=name)
        if not os.path.isfile(extra):
            download_file(url, extra, progress=False, preset_name=entry.name)
    return path


def _convert_into(checkpoint, target, entry=None, dataset=None, downloaded=False):
    """Convert `checkpoint` into the cache folder `target`.

    `downloaded`: the checkpoint is a cached download; if it fails to
    convert it is removed from the cache (unless a full published sha256
    proved it is the released file), so the next call fetches it again
    instead of failing on the same bad copy forever.
    """
    from keras_pose.conversion import convert_checkpoint

    _clean_cache_folder(os.path.dirname(target))
    try:
        convert_checkpoint(checkpoint, preset=entry, output_dir=target, dataset=dataset)
    except CheckpointError as error:
        full = entry is not None and entry.sha256 is not None and len(entry.sha256) == 64
        if not downloaded or full:
            raise
        discard_cached(checkpoint)
        raise CheckpointError(
            f"{error} The downloaded file was removed from the cache ({checkpoint}); the next call downloads "
            "it again."
        ) from None
    return target


def _resolve_registered(name, dataset=None, progress=True):
    from keras_pose.preset_registry import get_preset_entry

    entry = get_preset_entry(name)
    _check_dataset(entry, dataset)
    key = entry.name if dataset in (None, entry.dataset) else f"{entry.name}-{dataset}"
    target = os.path.join(presets_cache_dir(), key)
    source = cached_path_for(entry.source_url, file_name=entry.file_name)
    if _cached_preset_is_current(target, source=source, entry=entry):
        return target
    checkpoint = fetch_checkpoint(entry, progress=progress)
    return _convert_into(checkpoint, target, entry=entry, dataset=dataset, downloaded=True)


def _cache_key(url, entry, dataset):
    key = "url-" + hashlib.sha1(url.encode("utf-8")).hexdigest()
    if dataset is not None and (entry is None or dataset != entry.dataset):
        key += f"-{dataset}"
    return key


def _resolve_checkpoint_url(url, dataset=None, progress=True):
    from keras_pose.preset_registry import find_preset_by_url

    if url.split("://", 1)[0].lower() == "file":
        return _resolve_local_checkpoint(_file_url_path(url), dataset=dataset, progress=progress)
    entry = find_preset_by_url(url)
    if entry is not None:
        _check_dataset(entry, dataset)
    target = os.path.join(presets_cache_dir(), _cache_key(url, entry, dataset))
    sha = entry.sha256 if entry is not None else None
    file_name = entry.file_name if entry is not None else url_file_name(url)
    if _cached_preset_is_current(target, source=cached_path_for(url, file_name=file_name), entry=entry):
        return target
    checkpoint = cached_download(
        url,
        file_name=file_name,
        sha256=sha,
        progress=progress,
        preset_name=entry.name if entry else None,
        verify=_check_complete,
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
        except DownloadError:
            if entry is not None:
                raise
    return _convert_into(checkpoint, target, entry=entry, dataset=dataset, downloaded=True)


def _file_url_path(url):
    parsed = urllib.parse.urlparse(url)
    return urllib.request.url2pathname(parsed.path)


def _resolve_local_checkpoint(path, dataset=None, progress=True):
    """Convert a local checkpoint where it lies (it is never copied into the cache)."""
    from keras_pose.conversion import _main_file
    from keras_pose.preset_registry import find_preset_by_url

    path = str(pathlib.Path(os.path.expanduser(path)).resolve())
    if not os.path.exists(path):
        raise PresetError(f"Checkpoint {path!r} does not exist; check the path.")
    url = pathlib.Path(path).as_uri()
    entry = find_preset_by_url(url)
    if entry is not None:
        _check_dataset(entry, dataset)
    target = os.path.join(presets_cache_dir(), _cache_key(url, entry, dataset))
    main = _main_file(path)
    if _cached_preset_is_current(target, source=main, entry=entry):
        return target
    if entry is not None and entry.sha256 is not None:
        actual = sha256_file(main)
        if not sha256_matches(actual, entry.sha256):
            raise PresetError(
                f"{path!r} has the file name of preset {entry.name!r} but not its content: expected sha256 "
                f"{entry.sha256}, got {actual}. If it is your own checkpoint, convert it with `keras-pose convert "
                "--checkpoint FILE --output DIR` (add --preset NAME for a release's settings) and load DIR."
            )
    missing = {
        name: extra_url for name, extra_url in (entry.extra_files or {}).items()
        if not os.path.isfile(os.path.join(os.path.dirname(main), name))
    } if entry is not None else {}
    if not missing:
        return _convert_into(main if not os.path.isdir(path) else path, target, entry=entry, dataset=dataset)
    # The converter reads the extra files (an HF config.json) beside the
    # checkpoint: give it a temporary folder with a link to the checkpoint
    # and the downloaded extras.
    staging = os.path.join(cache_dir(), "staging")
    os.makedirs(staging, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging) as folder:
        linked = os.path.join(folder, os.path.basename(main))
        try:
            os.symlink(main, linked)
        except OSError:
            copy_file_atomic(main, linked)
        for name, extra_url in missing.items():
            extra = cached_path_for(entry.source_url, file_name=name)
            if not os.path.isfile(extra):
                download_file(extra_url, extra, progress=False, preset_name=entry.name)
            copy_file_atomic(extra, os.path.join(folder, name))
        return _convert_into(linked, target, entry=entry, dataset=dataset)


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
        if is_offline():
            raise DownloadError(
                f"KERAS_POSE_OFFLINE is set, so the Keras preset handle {preset} was not fetched (keras-hub would "
                "download it). Unset KERAS_POSE_OFFLINE, or download the preset folder by hand and pass its path."
            )
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
    """The parsed JSON file `name` of a preset (None if it has none).

    Raises:
        PresetError: the file is not valid JSON (naming file, line and
            column), or a remote handle's file could not be fetched.
    """
    path = os.path.join(directory, name)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except json.JSONDecodeError as error:
            raise PresetError(
                f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); the preset is "
                f"damaged. {_repair_hint(directory)}"
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise PresetError(f"Could not read {path}: {error}. {_repair_hint(directory)}") from None
    if not os.path.isdir(directory):
        # A keras-hub handle: let keras-hub fetch the file.
        from keras_hub.src.utils.preset_utils import load_json

        try:
            return load_json(directory, name)
        except FileNotFoundError:
            return None
        except Exception as error:  # noqa: BLE001 - network / hub errors, reported with the handle
            raise PresetError(f"Could not fetch {name} of the preset {directory}: {error}") from None
    return None


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


def _import_model_modules(directory):
    """Import the model packages so the classes a preset names register themselves."""
    modules = ["keras_pose", "keras_pose.models"]
    meta = _read_json(directory, _METADATA_FILE) or {}
    family = (meta.get("family") or "").split("_plus")[0] if isinstance(meta, dict) else ""
    if family:
        modules.append(f"keras_pose.models.{family}")
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _registered_class(directory, name, config):
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
        _import_model_modules(directory)
        cls = keras.saving.get_registered_object(registered)
    if cls is None:
        raise PresetError(
            f"Preset {directory!r} needs the class {registered!r}, which is not available in this "
            "keras-pose install. Upgrade keras-pose."
        )
    return cls


def check_preset_dir(directory):
    """Check a local preset folder's config files before keras-hub reads them.

    `config.json` (the backbone) must exist, be valid JSON and name a
    registered class; `task.json` and `keras_pose_preset.json`, where present,
    must be valid JSON.

    Raises:
        PresetError: naming the file (and line, for invalid JSON) and the fix.
    """
    if not os.path.isdir(directory):
        return
    config = _read_json(directory, "config.json")
    if config is None:
        raise PresetError(
            f"Preset {directory!r} has no config.json (the backbone's configuration); it is incomplete. "
            + _repair_hint(directory)
        )
    _registered_class(directory, "config.json", config)
    _read_json(directory, _METADATA_FILE)
    _read_json(directory, "task.json")


def task_class_of(directory):
    """The task class recorded in a preset's `task.json` (imports its module).

    A local folder's config files are checked first (`check_preset_dir`).
    """
    task = _read_json(directory, "task.json")
    if task is None:
        raise PresetError(
            f"Preset {directory!r} has no task.json naming a task class; it holds only a backbone. "
            "Load it with the task class, e.g. keras_pose.ViTPose.from_preset(...)."
        )
    cls = _registered_class(directory, "task.json", task)
    check_preset_dir(directory)
    return cls


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
    model_weights = os.path.join(directory, _WEIGHTS_FILE)
    if not os.path.isfile(model_weights):
        sharded = os.path.join(directory, _SHARDED_WEIGHTS_FILE)
        if not os.path.isfile(sharded):
            raise PresetError(
                f"Preset {directory!r} has no {_WEIGHTS_FILE} (the backbone weights); it is incomplete and would "
                f"load with random weights. {_repair_hint(directory)}"
            )
        model_weights = sharded
    task_weights = os.path.join(directory, _TASK_WEIGHTS_FILE)
    has_task_weights = task.has_task_weights() if hasattr(task, "has_task_weights") else False
    if has_task_weights and not os.path.isfile(task_weights):
        raise PresetError(
            f"Preset {directory!r} has no {_TASK_WEIGHTS_FILE} (the weights of the head); it is incomplete and "
            f"would predict with a randomly initialised head. {_repair_hint(directory)}"
        )
    try:
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
    destination = copy_file_atomic(path, cached_path_for(entry.source_url, file_name=entry.file_name))
    record_sha256(destination, sha256_file(destination))
    return destination


__all__ = [
    "check_preset_dir",
    "fetch_checkpoint",
    "import_checkpoint",
    "is_preset_dir",
    "load_preset",
    "load_preset_weights",
    "presets_cache_dir",
    "resolve_preset",
    "task_class_of",
    "verify_checkpoint",
]
