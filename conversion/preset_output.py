"""Writing a converted model as a preset folder, with its provenance record.

`save_converted_preset` writes `model.save_to_preset` plus
`keras_pose_preset.json` (`preset_metadata`) atomically, into a folder that
`check_output_dir` allows: new, empty, or an earlier conversion holding nothing
but preset files, never a folder holding the checkpoint itself.

The record says whether the converted file is the one the preset released
(`release_file`): its sha256 is compared with the published digest (full or
prefix). The preset's published accuracy is recorded only for that file; a
file that differs (another fine-tune, another input size) keeps the preset's
decoding settings, is recorded with `release_file: false` and no accuracy, and
the conversion warns.
"""

import datetime
import json
import os
import re
import warnings

from keras_pose.conversion.checkpoint_io import checkpoint_file, is_mapping
from keras_pose.errors import PresetError

PRESET_METADATA_FILE = "keras_pose_preset.json"

# Version of what the converters write. It is recorded in every converted
# preset's keras_pose_preset.json and is part of the preset cache's key:
# bump it whenever a converter's output changes (a fix, a new check), so
# presets cached by an older converter are converted again.
# 2: non-finite weights refused, widths read robustly, converted_from fingerprint.
# 3: the ViT input size follows the position table; release_file recorded.
CONVERTER_VERSION = 3

# The files `save_to_preset` / `save_converted_preset` write. An output
# folder holding anything else is not replaced.
PRESET_FILES = (
    "config.json",
    "task.json",
    "metadata.json",
    "model.weights.h5",
    "task.weights.h5",
    "model.weights.json",
    "preprocessor.json",
    "tokenizer.json",
    "image_converter.json",
    PRESET_METADATA_FILE,
)
_SHARD_FILE = re.compile(r"^model_\d+\.weights\.h5$")


def _keras_pose_version():
    try:
        from importlib.metadata import version

        return version("keras-pose")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def converted_from(checkpoint):
    """{file_name, sha256, size, mtime_ns, sample_sha256} of the converted file (Nones for a state dict)."""
    from keras_pose.utils.download import file_fingerprint, sha256_file

    if checkpoint is None or is_mapping(checkpoint) or hasattr(checkpoint, "tensors"):
        path = getattr(checkpoint, "path", None)
        if path is None or not os.path.isfile(path):
            return {"file_name": None, "sha256": None}
        checkpoint = path
    path = checkpoint_file(checkpoint)
    return {"file_name": os.path.basename(path), "sha256": sha256_file(path), **file_fingerprint(path)}


def is_release_file(entry, source, model=None):
    """True if the converted file is the one `entry` released, False if not, None if nobody can tell.

    Args:
        entry: the preset entry (None: None).
        source: `converted_from(...)` of the file.
        model: the converted model; an input size other than the preset's
            means another file.
    """
    from keras_pose.utils.download import sha256_matches

    if entry is None:
        return None
    size = entry.config.get("image_size")
    if model is not None and size is not None and list(model.image_size) != [int(v) for v in size]:
        return False
    if not entry.sha256 or not source.get("sha256"):
        return None
    return sha256_matches(source["sha256"], entry.sha256)


def family_license(family):
    """The restrictive licence every registered preset of ``family`` shares, else None.

    A file converted without a preset is most likely one of the family's
    released files (or trained from them); when all the family's presets
    carry one licence that restricts use (`license_gate.requires_acceptance`:
    CMU's non-commercial OpenPose weights), that licence is the safe record.
    Permissive or mixed licences give None (unknown).
    """
    from keras_pose.license_gate import requires_acceptance
    from keras_pose.preset_registry import list_presets

    if family is None:
        return None
    licenses = {e.license for e in list_presets(family=family)}
    if len(licenses) == 1:
        (license_id,) = licenses
        if requires_acceptance(license_id):
            return license_id
    return None


def resolve_license(entry, family, license=None):
    """``(licence id, source)`` recorded for a conversion.

    ``license`` given (CLI ``--license``): that id (``"none"`` / ``""``
    records no licence), source ``"given"``. Else the preset's (``"preset"``);
    without a preset, the family's shared restrictive licence
    (`family_license`, source ``"family"``, with a warning naming the
    override), else None.
    """
    if license is not None:
        text = str(license).strip()
        return (None if text.lower() in ("", "none") else text), "given"
    if entry is not None:
        return entry.license, "preset"
    shared = family_license(family)
    if shared is None:
        return None, None
    warnings.warn(
        f"No preset was named, so the converted {family} weights are recorded under {shared!r}, the licence of "
        f"every registered {family} preset (loading the folder asks for accept_license=True / --accept-license). "
        f"If these are your own weights under other terms, convert with license='<SPDX id>' "
        f"(keras-pose convert --license <SPDX id>), or license='none' to record none.",
        stacklevel=4,
    )
    return shared, "family"


def preset_metadata(entry=None, checkpoint=None, dataset=None, family=None, task_class=None, model=None,
                    license=None):
    """The `keras_pose_preset.json` record of a converted preset.

    Besides the preset's provenance it records `converter_version`
    (`CONVERTER_VERSION`), `converted_from` (the converted file's name, full
    sha256, size, modification time (ns) and sample digest, which the preset
    cache compares to tell whether the file changed since) and
    `release_file`: True when the file's sha256 matches the preset's
    published digest, False when it does not (or the model's input size is
    not the preset's), None when no digest is published. The published
    accuracy is recorded unless `release_file` is False; the conversion then
    warns. The licence is `resolve_license`'s (``license`` overrides; without
    a preset, the family's shared restrictive licence), its origin in
    `license_source`.
    """
    import keras

    from keras_pose.utils.download import sha256_matches

    source = converted_from(checkpoint)
    license_id, license_source = resolve_license(entry, entry.family if entry else family, license)
    release = is_release_file(entry, source, model)
    accuracy = entry.published_accuracy if entry else {}
    if release is False:
        accuracy = {}
        differs = [f"sha256 {source.get('sha256')}, the release's {entry.sha256}"] if source.get("sha256") and \
            entry.sha256 and not sha256_matches(source["sha256"], entry.sha256) else []
        if model is not None and list(model.image_size) != list(entry.config.get("image_size", model.image_size)):
            differs.append(f"input size {list(model.image_size)}, the release's {entry.config['image_size']}")
        warnings.warn(
            f"{source.get('file_name') or 'The checkpoint'} is not the file released as preset {entry.name!r} "
            f"({'; '.join(differs)}). It was converted with the preset's settings, but the preset's published "
            "accuracy does not apply to it and is not recorded (release_file: false in keras_pose_preset.json).",
            stacklevel=3,
        )
    return {
        "preset": entry.name if entry else None,
        "family": entry.family if entry else family,
        "task_class": entry.task_class if entry else task_class,
        "dataset": dataset if dataset is not None else (entry.dataset if entry else None),
        "source_url": entry.source_url if entry else None,
        "file_name": entry.file_name if entry else None,
        "sha256": entry.sha256 if entry else None,
        "sha256_check": entry.sha256_check if entry else "none",
        "release_file": release,
        "checkpoint_format": entry.checkpoint_format if entry else None,
        "license": license_id,
        "license_source": license_source,
        "published_accuracy": accuracy,
        "decoding": entry.decoding if entry else {},
        "notes": entry.notes if entry else "",
        "converted_from": source,
        "converter_version": CONVERTER_VERSION,
        "keras_pose_version": _keras_pose_version(),
        "keras_version": keras.__version__,
        "converted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _is_preset_file(name):
    return name in PRESET_FILES or bool(_SHARD_FILE.match(name))


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_dir(output_dir, checkpoint=None):
    """The absolute output folder, if converting into it loses nothing.

    A folder is replaced only when it is empty or recognisably a converted
    keras-pose preset: it has `keras_pose_preset.json` and nothing but the
    files a preset consists of (`PRESET_FILES`). Anything else (a user's own
    files, a preset saved by `save_to_preset` with trained weights, the
    checkpoint itself) makes it refuse.

    Args:
        output_dir: the folder to write.
        checkpoint: the checkpoint being converted (path), if any; it must
            not lie inside `output_dir`.

    Raises:
        PresetError: naming the folder, the files that would be lost and
            the fix.
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    if checkpoint is not None and isinstance(checkpoint, (str, os.PathLike)):
        if _inside(os.fspath(checkpoint), output_dir):
            raise PresetError(
                f"The checkpoint {os.fspath(checkpoint)!r} lies inside the output folder {output_dir!r}, which "
                "converting replaces as a whole. Choose an --output folder that does not contain the checkpoint "
                "(e.g. a new folder beside it)."
            )
    if not os.path.exists(output_dir):
        return output_dir
    if not os.path.isdir(output_dir):
        raise PresetError(f"Output {output_dir!r} exists and is not a folder; choose another --output.")
    contents = sorted(os.listdir(output_dir))
    if not contents:
        return output_dir
    foreign = [
        name + ("/" if os.path.isdir(os.path.join(output_dir, name)) else "")
        for name in contents
        if not (_is_preset_file(name) and os.path.isfile(os.path.join(output_dir, name)))
    ]
    shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
    if PRESET_METADATA_FILE not in contents:
        raise PresetError(
            f"Output folder {output_dir!r} is not empty and is not a preset keras-pose converted (it has no "
            f"{PRESET_METADATA_FILE}; it holds {shown or ', '.join(contents[:8])}); converting would delete "
            "its contents. Choose a new or empty folder for --output."
        )
    if foreign:
        raise PresetError(
            f"Output folder {output_dir!r} is not empty: besides a converted preset it holds {shown}, which "
            "replacing the preset would delete. Move those out of it, or choose a new or empty folder for --output."
        )
    return output_dir


def save_converted_preset(model, output_dir, metadata):
    """Write `model` as a preset directory plus its provenance, atomically."""
    from keras_pose.utils.file_utils import atomic_directory

    output_dir = check_output_dir(output_dir)
    with atomic_directory(output_dir) as tmp:
        model.save_to_preset(tmp)
        with open(os.path.join(tmp, PRESET_METADATA_FILE), "w") as f:
            json.dump(metadata, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
    return output_dir


__all__ = [
    "CONVERTER_VERSION",
    "PRESET_FILES",
    "PRESET_METADATA_FILE",
    "check_output_dir",
    "converted_from",
    "family_license",
    "is_release_file",
    "preset_metadata",
    "resolve_license",
    "save_converted_preset",
]
