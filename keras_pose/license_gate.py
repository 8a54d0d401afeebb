"""Explicit acceptance of restrictive weight licences before a preset loads.

Some released weights may only be used for non-commercial research (CMU's
OpenPose models). Loading a preset whose licence says so needs
``accept_license=True`` (CLI: ``--accept-license``) once: the acceptance is
recorded in the cache (``<cache>/accepted_licenses.json``, per licence id),
and later loads of presets under the same licence pass. Without it the load
stops with a `PresetError` naming the licence and how to accept it; nothing
is downloaded or converted first.
"""

import json
import os

from keras_pose.errors import PresetError

RECORD_FILE = "accepted_licenses.json"


def requires_acceptance(license_id):
    """True for licences that restrict use (non-commercial / research only)."""
    text = (license_id or "").lower().replace("-", "").replace("_", "")
    return "noncommercial" in text or "researchonly" in text


def _record_path():
    from keras_pose.utils.download import cache_dir

    return os.path.join(cache_dir(), RECORD_FILE)


def accepted_licenses():
    """The licence ids accepted so far (a set; empty when none or unreadable)."""
    try:
        with open(_record_path()) as f:
            values = json.load(f)
    except (OSError, ValueError):
        return set()
    return set(values) if isinstance(values, list) else set()


def record_acceptance(license_id):
    """Remember that the user accepted `license_id` (atomically)."""
    from keras_pose.utils.file_utils import atomic_write

    values = sorted(accepted_licenses() | {license_id})
    with atomic_write(_record_path(), "w") as f:
        json.dump(values, f)


def preset_license(preset):
    """(licence id, label) of what `preset` names, or (None, None) if unknown.

    A registered name or a checkpoint URL of a registered entry: the entry's
    licence; a local preset folder: the licence its `keras_pose_preset.json`
    records.
    """
    from keras_pose.preset_cache import METADATA_FILE
    from keras_pose.preset_registry import find_preset_by_url, get_preset_entry, is_registered

    if not isinstance(preset, (str, os.PathLike)):
        return None, None
    text = os.fspath(preset)
    if os.path.isdir(text):
        try:
            with open(os.path.join(text, METADATA_FILE)) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return None, None
        return (meta.get("license") if isinstance(meta, dict) else None), text
    if is_registered(text):
        entry = get_preset_entry(text)
        return entry.license, entry.name
    if "://" in text:
        entry = find_preset_by_url(text)
        if entry is not None:
            return entry.license, entry.name
    return None, None


def check_license(preset, accept_license=False):
    """Stop unless the licence of `preset` is unrestricted, accepted now, or accepted before.

    Raises:
        PresetError: a restrictive licence that was never accepted.
    """
    license_id, label = preset_license(preset)
    if not requires_acceptance(license_id):
        return
    if accept_license:
        if license_id not in accepted_licenses():
            record_acceptance(license_id)
        return
    if license_id in accepted_licenses():
        return
    raise PresetError(
        f"Preset {label!r} has weights under the licence {license_id!r}, which restricts their use "
        "(non-commercial research only; see the preset's notes: `keras-pose presets --details`). To use them "
        "under those terms, accept the licence once: `from_preset(..., accept_license=True)` or "
        "`keras-pose predict --accept-license ...`."
    )


__all__ = ["accepted_licenses", "check_license", "preset_license", "record_acceptance", "requires_acceptance"]
