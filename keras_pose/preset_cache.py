"""Where presets come from: names, URLs and checkpoint files, converted once and cached.

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

`resolve(preset, ...)` does the same and also returns the model a conversion
just built (None when nothing was converted), so `preset_loading.load_preset`
returns that model instead of building it again from the folder it was cached
in.

A cached conversion is current when it was written by this
`CONVERTER_VERSION` and its source file is the one it was converted from
(`converted_from` in its keras_pose_preset.json: size, modification time and
a sample digest, falling back to the full sha256 when only the time
differs); otherwise it is converted again, so a replaced or repaired
checkpoint is never shadowed by an old conversion. A downloaded checkpoint
that fails to convert is removed from the cache (unless its full published
sha256 proved it is the released file).

The converters are a higher layer: they are reached by module name
(`importlib.import_module("keras_pose.conversion")`), never imported here.
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
from keras_pose.utils.paths import looks_like_path

KERAS_HUB_SCHEMES = ("kaggle://", "hf://", "gs://", "modelscope://")
PRESET_CONFIG_FILES = ("config.json", "task.json")
METADATA_FILE = "keras_pose_preset.json"  # = keras_pose.conversion.PRESET_METADATA_FILE
WEIGHTS_FILE = "model.weights.h5"
SHARDED_WEIGHTS_FILE = "model.weights.json"
TASK_WEIGHTS_FILE = "task.weights.h5"

_cleaned_cache_dirs = set()


def _conversion(module=""):
    """`keras_pose.conversion` (or a module of it), reached by name: a higher layer."""
    return importlib.import_module("keras_pose.conversion" + (f".{module}" if module else ""))


def presets_cache_dir():
    """`cache_dir()/presets`: where converted presets are cached."""
    return os.path.join(cache_dir(), "presets")


def is_preset_dir(path):
    """True if `path` is a folder holding a keras-hub preset (config.json/task.json)."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, f)) for f in PRESET_CONFIG_FILES)


def _clean_cache_folder(folder):
    """Remove what killed writers left in a cache folder (once per process)."""
    folder = os.path.abspath(folder)
    if folder not in _cleaned_cache_dirs:
        _cleaned_cache_dirs.add(folder)
        clean_stale_temporaries(folder, legacy=True)


def _is_complete(path):
    # Presets are written with atomic_directory, so a folder that exists with
    # its files is complete.
    has_weights = any(os.path.isfile(os.path.join(path, f)) for f in (WEIGHTS_FILE, SHARDED_WEIGHTS_FILE))
    return has_weights and all(os.path.isfile(os.path.join(path, f)) for f in ("config.json", METADATA_FILE))


def _cached_preset_is_current(target, source=None, entry=None):
    """True if the cached conversion in `target` can be used as is.

    It must be complete, written by this `CONVERTER_VERSION`, match the
    registry entry's digest (if any), and, when its source file `source`
    exists, have been converted from that very file.
    """
    if not _is_complete(target):
        return False
    try:
        with open(os.path.join(target, METADATA_FILE), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("converter_version") != _conversion().CONVERTER_VERSION:
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



def _check_complete(path):
    _conversion("file_formats").check_complete(path)


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
    """Convert `checkpoint` into the cache folder `target`; returns (target, the converted model).

    `downloaded`: the checkpoint is a cached download; if it fails to
    convert it is removed from the cache (unless a full published sha256
    proved it is the released file), so the next call fetches it again
    instead of failing on the same bad copy forever.
    """
    _clean_cache_folder(os.path.dirname(target))
    try:
        model = _conversion().convert_checkpoint(checkpoint, preset=entry, output_dir=target, dataset=dataset)
    except CheckpointError as error:
        full = entry is not None and entry.sha256 is not None and len(entry.sha256) == 64
        if not downloaded or full:
            raise
        discard_cached(checkpoint)
        raise CheckpointError(
            f"{error} The downloaded file was removed from the cache ({checkpoint}); the next call downloads "
            "it again."
        ) from None
    return target, model


def _resolve_registered(name, dataset=None, progress=True):
    from keras_pose.preset_registry import get_preset_entry

    entry = get_preset_entry(name)
    entry.check_dataset(dataset)
    key = entry.name if dataset in (None, entry.dataset) else f"{entry.name}-{dataset}"
    target = os.path.join(presets_cache_dir(), key)
    source = cached_path_for(entry.source_url, file_name=entry.file_name)
    if _cached_preset_is_current(target, source=source, entry=entry):
        return target, None
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
        entry.check_dataset(dataset)
    target = os.path.join(presets_cache_dir(), _cache_key(url, entry, dataset))
    sha = entry.sha256 if entry is not None else None
    file_name = entry.file_name if entry is not None else url_file_name(url)
    if _cached_preset_is_current(target, source=cached_path_for(url, file_name=file_name), entry=entry):
        return target, None
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
    from keras_pose.preset_registry import find_preset_by_url

    path = str(pathlib.Path(os.path.expanduser(path)).resolve())
    if not os.path.exists(path):
        raise PresetError(f"Checkpoint {path!r} does not exist; check the path.")
    url = pathlib.Path(path).as_uri()
    entry = find_preset_by_url(url)
    if entry is not None:
        entry.check_dataset(dataset)
    target = os.path.join(presets_cache_dir(), _cache_key(url, entry, dataset))
    main = _conversion("checkpoint_io").checkpoint_file(path)
    if _cached_preset_is_current(target, source=main, entry=entry):
        return target, None
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

    See `resolve`, which also returns the model a conversion built.
    """
    return resolve(preset, dataset=dataset, progress=progress)[0]


def resolve(preset, dataset=None, progress=True):
    """(directory, converted model or None) for `preset`.

    Args:
        preset: a local preset directory, a registered preset name, an
            `https://` / `http://` / `file://` URL of a reference checkpoint,
            a local checkpoint file, or a `kaggle://` / `hf://` handle.
        dataset: for multi-dataset models (ViTPose++), the dataset whose
            expert and head the converted model uses (default: the preset's).
            It selects a separate cache entry.
        progress: show download progress bars.

    Returns:
        (directory, model): the path of a complete preset directory (or the
        handle unchanged for `kaggle://` / `hf://`), and the model just
        converted into it (None when the folder was already there).

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
        return preset, None
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
        return os.path.abspath(expanded), None
    if os.path.isfile(expanded):
        return _resolve_local_checkpoint(expanded, dataset=dataset, progress=progress)
    if looks_like_path(preset):
        raise PresetError(
            f"{preset!r} does not exist. Pass an existing preset directory or checkpoint file, a registered "
            "preset name (`keras-pose presets`), or an https:// / file:// URL."
        )
    return _resolve_registered(preset, dataset=dataset, progress=progress)


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
    "fetch_checkpoint",
    "import_checkpoint",
    "is_preset_dir",
    "presets_cache_dir",
    "resolve",
    "resolve_preset",
    "verify_checkpoint",
]
