"""The registry of built-in presets.

A built-in preset names one released reference checkpoint and everything
needed to turn it into a Keras model: the model class and configuration, the
checkpoint's source (URL, file name, sha256, licence), its published accuracy
and the pre-processing and decoding the published number used. The entries
themselves (`keras_pose.preset_entry.PresetEntry`) live in `keras_pose.presets`
(the top-level `presets/` folder), one module per family, and are registered
here on first use.

Preset names follow `<family>_<variant>_<dataset>_<H>x<W>`, lowercase
(`vitpose_base_coco_256x192`); a multi-dataset preset drops the dataset
(`vitpose_plus_base`). Look-ups ignore letter case.

How a download is checked depends on what was published: the full sha256
(`sha256_check == "full"`), only the 8-hex prefix mmpose puts in the file
name ("prefix"), or nothing ("none"). For "prefix" and "none" the full
digest a server publishes is checked where it sends one (the Hugging Face
Hub's `X-Linked-Etag`), the file must also parse as a complete checkpoint,
and the full digest of the first download is recorded in the cache
(`<file>.sha256`) and every later read of the cached file is checked against
it.
"""

import difflib

from keras_pose.errors import PresetError
from keras_pose.preset_entry import CHECKPOINT_FORMATS  # noqa: F401 - re-exported
from keras_pose.preset_entry import PresetEntry

_REGISTRY: dict[str, PresetEntry] = {}


def register_presets(entries):
    """Add `PresetEntry` objects to the registry (names must be unique)."""
    for entry in entries:
        if entry.name in _REGISTRY and _REGISTRY[entry.name] != entry:
            raise PresetError(f"Preset {entry.name!r} is registered twice.")
        _REGISTRY[entry.name] = entry


_loaded = []


def _ensure_loaded():
    """Register the built-in entries (`keras_pose.presets`) on first use."""
    if not _loaded:
        import keras_pose.presets

        register_presets(keras_pose.presets.all_presets())
        _loaded.append(True)


def list_presets(family=None, task_class=None):
    """Registered preset entries, sorted by name, optionally filtered."""
    _ensure_loaded()
    entries = sorted(_REGISTRY.values(), key=lambda e: e.name)
    if family is not None:
        entries = [e for e in entries if e.family == family]
    if task_class is not None:
        entries = [e for e in entries if e.task_class == task_class]
    return entries


def get_preset_entry(name):
    """The registered entry for `name`; a PresetError with suggestions if none."""
    _ensure_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    entry = _REGISTRY.get(_normalize_name(name))
    if entry is not None:
        return entry
    close = difflib.get_close_matches(_normalize_name(name), list(_REGISTRY), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise PresetError(
        f"Unknown preset {name!r}.{hint} Run `keras-pose presets` to list the "
        "built-in presets, or pass a local preset directory or an https:// / "
        "file:// URL of a reference checkpoint."
    )


def _normalize_name(name):
    """Registered names are lowercase: look names up in any letter case."""
    return str(name).strip().lower()


def is_registered(name):
    """True if `name` (any letter case) is a registered preset."""
    _ensure_loaded()
    return name in _REGISTRY or _normalize_name(name) in _REGISTRY


def find_preset_by_url(url):
    """The entry whose `source_url` or file name matches `url`, or None."""
    _ensure_loaded()
    for entry in _REGISTRY.values():
        if entry.source_url == url:
            return entry
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    matches = [e for e in _REGISTRY.values() if e.file_name == tail]
    return matches[0] if len(matches) == 1 else None


__all__ = [
    "CHECKPOINT_FORMATS",
    "PresetEntry",
    "find_preset_by_url",
    "get_preset_entry",
    "is_registered",
    "list_presets",
    "register_presets",
]
