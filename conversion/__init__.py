"""Reference checkpoint -> keras-pose model conversion (`keras_pose.conversion`).

`convert_checkpoint` is the single entry point: it picks the converter of
the checkpoint's model family (from the preset, or sniffed from the tensor
names), builds the Keras model, and optionally writes it as a keras-hub
preset directory with a `keras_pose_preset.json` provenance record.

Each family's converter lives in its own module (imported lazily, so torch
is only needed when converting) and exposes
`convert(checkpoint, entry=None, dataset=None, **overrides) -> model`.
"""

import datetime
import importlib
import json
import os
import re

from keras_pose.errors import CheckpointError
from keras_pose.errors import PresetError

# family -> module with `convert(checkpoint, entry=None, dataset=None, **overrides)`
CONVERTERS = {
    "vitpose": "keras_pose.conversion.vitpose_converter",
    "vitpose_plus": "keras_pose.conversion.vitpose_converter",
    "cpm": "keras_pose.conversion.cpm_converter",
    "cpn": "keras_pose.conversion.cpn_converter",
    "hourglass": "keras_pose.conversion.hourglass_converter",
}

# checkpoint_io.guess_family ids -> converter family
_GUESSED_FAMILIES = {
    "vitpose": "vitpose",
    "vitpose_plus": "vitpose_plus",
    "vitpose_mmpose": "vitpose",
    "vitpose_hf": "vitpose",
    "pytorch_cpn": "cpn",
}

PRESET_METADATA_FILE = "keras_pose_preset.json"

# Version of what the converters write. It is recorded in every converted
# preset's keras_pose_preset.json and is part of the preset cache's key:
# bump it whenever a converter's output changes (a fix, a new check), so
# presets cached by an older converter are converted again.
# 2: non-finite weights refused, widths read robustly, converted_from fingerprint.
CONVERTER_VERSION = 2

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

_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")


# --------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------
def _main_file(path):
    """The checkpoint file inside a folder (HF layout) or `path` itself."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return path
    for name in ("model.safetensors", "pytorch_model.bin"):
        candidate = os.path.join(path, name)
        if os.path.isfile(candidate):
            return candidate
    found = sorted(
        f for f in os.listdir(path) if f.endswith((".safetensors",) + _TORCH_SUFFIXES) and not f.startswith(".")
    )
    if len(found) == 1:
        return os.path.join(path, found[0])
    raise CheckpointError(
        f"Folder {path!r} holds {len(found)} checkpoint files ({found}); pass the checkpoint file itself."
    )


def _safetensors_keys(path):
    """Tensor names from a .safetensors header (reads only the header)."""
    from keras_pose.conversion.checkpoint_io import _safetensors_extent

    return _safetensors_extent(path)


def _torch_keys(path):
    """Tensor names of a torch checkpoint (`weights_only=True` load)."""
    try:
        from keras_pose.conversion import checkpoint_io
    except ImportError:
        checkpoint_io = None
    if checkpoint_io is not None:
        for fn_name in ("list_keys", "checkpoint_keys"):
            fn = getattr(checkpoint_io, fn_name, None)
            if callable(fn):
                return list(fn(path))
    try:
        import torch
    except ImportError as e:
        raise CheckpointError(
            f"Reading {path!r} needs PyTorch: pip install 'keras-pose[convert]' ({e})."
        ) from None
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:
            # Legacy (non-zip) files cannot be memory-mapped.
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - surface any unpickling failure clearly
        raise CheckpointError(f"Could not read {path!r} as a PyTorch checkpoint: {e}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "module"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path!r} holds a {type(obj).__name__}, not a state dict.")
    return list(obj)


def checkpoint_keys(checkpoint):
    """Tensor names of a checkpoint.

    Args:
        checkpoint: a mapping of names (returned as is), a `.safetensors`
            file, a torch file (`.pth` / `.pt` / ...), or a folder holding
            one (HF layout: `model.safetensors` + `config.json`).
    """
    if hasattr(checkpoint, "keys") and not isinstance(checkpoint, (str, bytes, os.PathLike)):
        return list(checkpoint.keys())
    path = os.fspath(checkpoint)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
    path = _main_file(path)
    if path.endswith(".safetensors"):
        return _safetensors_keys(path)
    return _torch_keys(path)


def _strip_prefix(keys):
    # DataParallel / wrapper prefixes
    out = []
    for k in keys:
        for prefix in ("module.", "model."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out.append(k)
    return out


def detect_checkpoint_format(checkpoint):
    """Layout of a ViTPose-family checkpoint from its tensor names.

    Returns "vitpose_original" (ViTAE-Transformer/ViTPose: `blocks.N`,
    `patch_embed.proj`), "mmpose" (mmpose 1.x / mmpretrain: `layers.N.ln1`,
    `patch_embed.projection`) or "hf_safetensors" (HF transformers:
    `encoder.layer.N`, `embeddings.patch_embeddings`), or None.
    """
    keys = _strip_prefix(checkpoint_keys(checkpoint))
    if any(".encoder.layer." in k or k.startswith("encoder.layer.") for k in keys) and any(
        "embeddings.patch_embeddings" in k for k in keys
    ):
        return "hf_safetensors"
    if any("patch_embed.projection" in k for k in keys) and any(".ln1." in k for k in keys):
        return "mmpose"
    if any("patch_embed.proj." in k for k in keys) and any(".blocks." in k or k.startswith("blocks.") for k in keys):
        return "vitpose_original"
    return None


def detect_family(checkpoint):
    """Model family of a checkpoint ("vitpose" or "vitpose_plus").

    Cheap key-name sniffing: mixture-of-experts MLPs (`mlp.experts.N`) mean
    ViTPose++; any other ViT pose layout (original, mmpose 1.x or HF) is
    ViTPose; other families come from `checkpoint_io.guess_family` when a
    converter for them is registered in `CONVERTERS`.

    Args:
        checkpoint: path of a checkpoint file / HF folder, or a mapping
            whose keys are the tensor names.

    Raises:
        CheckpointError: the names match no known family.
    """
    keys = _strip_prefix(checkpoint_keys(checkpoint))
    fmt = detect_checkpoint_format(keys_dict(keys))
    if fmt is not None:
        if any(".mlp.experts." in k for k in keys):
            return "vitpose_plus"
        return "vitpose"
    try:
        from keras_pose.conversion.checkpoint_io import guess_family
    except ImportError:  # pragma: no cover - checkpoint_io ships with keras-pose
        guess_family = None
    if guess_family is not None:
        guessed, _ = guess_family(keys)
        family = _GUESSED_FAMILIES.get(guessed, guessed)
        if family in CONVERTERS:
            return family
    sample = ", ".join(sorted(keys)[:5]) or "(no tensors)"
    raise CheckpointError(
        f"Cannot tell which model family the checkpoint belongs to (first tensor names: {sample}). "
        "Pass the preset it was released for, e.g. `keras-pose convert --preset NAME ...` "
        "(see `keras-pose presets`)."
    )


def keys_dict(keys):
    """A {name: None} mapping, so a list of names can go where a checkpoint can."""
    return dict.fromkeys(keys)


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------
def _resolve_entry(preset):
    from keras_pose.preset_registry import PresetEntry, get_preset_entry

    if preset is None or isinstance(preset, PresetEntry):
        return preset
    if isinstance(preset, str):
        return get_preset_entry(preset)
    raise PresetError(f"preset must be a registered name, a PresetEntry or None, got {type(preset).__name__}.")


def get_converter(family):
    """The converter module of a family (imported on first use)."""
    module_name = CONVERTERS.get(family)
    if module_name is None:
        raise PresetError(
            f"No checkpoint converter for model family {family!r}; known families: {sorted(CONVERTERS)}."
        )
    return importlib.import_module(module_name)


def _keras_pose_version():
    try:
        from importlib.metadata import version

        return version("keras-pose")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def _converted_from(checkpoint):
    """{file_name, sha256, size, mtime_ns, sample_sha256} of the converted file."""
    from keras_pose.utils.download import file_fingerprint, sha256_file

    if checkpoint is None or (hasattr(checkpoint, "keys") and not isinstance(checkpoint, (str, bytes, os.PathLike))):
        return {"file_name": None, "sha256": None}
    path = _main_file(os.fspath(checkpoint))
    return {"file_name": os.path.basename(path), "sha256": sha256_file(path), **file_fingerprint(path)}


def sha256_check(sha256):
    """How a published digest checks a download: "full", "prefix" or "none"."""
    if not sha256:
        return "none"
    return "full" if len(sha256) == 64 else "prefix"


def preset_metadata(entry=None, checkpoint=None, dataset=None, family=None, task_class=None):
    """The `keras_pose_preset.json` record of a converted preset.

    Besides the preset's provenance it records `converter_version`
    (`CONVERTER_VERSION`) and `converted_from`: the converted file's name,
    full sha256, size, modification time (ns) and sample digest
    (`keras_pose.utils.download.file_fingerprint`), which the preset cache
    compares to tell whether the file changed since.
    """
    import keras

    record = {
        "preset": entry.name if entry else None,
        "family": entry.family if entry else family,
        "task_class": entry.task_class if entry else task_class,
        "dataset": dataset if dataset is not None else (entry.dataset if entry else None),
        "source_url": entry.source_url if entry else None,
        "file_name": entry.file_name if entry else None,
        "sha256": entry.sha256 if entry else None,
        "sha256_check": sha256_check(entry.sha256 if entry else None),
        "checkpoint_format": entry.checkpoint_format if entry else None,
        "license": entry.license if entry else None,
        "published_accuracy": entry.published_accuracy if entry else {},
        "decoding": entry.decoding if entry else {},
        "notes": entry.notes if entry else "",
        "converted_from": _converted_from(checkpoint),
        "converter_version": CONVERTER_VERSION,
        "keras_pose_version": _keras_pose_version(),
        "keras_version": keras.__version__,
        "converted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return record


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


def _check_output_dir(output_dir, checkpoint=None):
    return check_output_dir(output_dir, checkpoint)


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


def convert_checkpoint(checkpoint, preset=None, output_dir=None, dataset=None, **overrides):
    """Convert a reference checkpoint into a keras-pose model.

    Args:
        checkpoint: path of the reference checkpoint file (for HF
            safetensors: `model.safetensors` with its `config.json` beside
            it, or the folder holding both).
        preset: a registered preset name, a `PresetEntry`, or None to infer
            the family from the checkpoint's tensor names.
        output_dir: if given, the model is also written there as a
            keras-hub preset directory (atomically) with a
            `keras_pose_preset.json` record of the source, licence, published
            accuracy, decoding, the converted file's sha256 and fingerprint,
            and `CONVERTER_VERSION`. An existing folder is replaced only if it
            is empty or an earlier conversion holding nothing but preset
            files, and never if the checkpoint lies inside it
            (`check_output_dir`).
        dataset: for multi-dataset models (ViTPose++), the dataset whose
            head and expert to select (default: the preset's).
        **overrides: passed to the family converter (e.g. `dtype`).

    Returns:
        The keras-pose task model.

    Raises:
        CheckpointError: the file is not a readable checkpoint (empty, text,
            truncated, a hostile pickle: named), or its tensors do not match
            the model (missing / unexpected / misshapen / non-finite, listed).
        PresetError: an unknown preset, or an output folder that would lose
            files.
    """
    entry = _resolve_entry(preset)
    if output_dir is not None:
        check_output_dir(output_dir, checkpoint)  # fail before the (slow) conversion
    if not (hasattr(checkpoint, "keys") and not isinstance(checkpoint, (str, bytes, os.PathLike))):
        if not os.path.exists(os.fspath(checkpoint)):
            raise FileNotFoundError(
                f"Checkpoint {os.fspath(checkpoint)!r} does not exist; give the path of the downloaded "
                "reference checkpoint file."
            )
    family = entry.family if entry is not None else detect_family(checkpoint)
    if dataset is not None and entry is not None:
        datasets = entry.config.get("datasets")
        if not datasets:
            raise PresetError(
                f"Preset {entry.name!r} is a single-dataset model; `dataset` applies only to "
                "multi-dataset presets such as vitpose_plus_base."
            )
        if dataset not in datasets:
            raise PresetError(f"Preset {entry.name!r} has no dataset {dataset!r}; choose one of {datasets}.")
    if dataset is None and entry is not None:
        dataset = entry.dataset
    converter = get_converter(family)
    model = converter.convert(checkpoint, entry=entry, dataset=dataset, **overrides)
    if output_dir is not None:
        metadata = preset_metadata(
            entry,
            checkpoint,
            dataset=dataset,
            family=family,
            task_class=type(model).__name__,
        )
        save_converted_preset(model, output_dir, metadata)
    return model


__all__ = [
    "CONVERTERS",
    "CONVERTER_VERSION",
    "PRESET_FILES",
    "PRESET_METADATA_FILE",
    "check_output_dir",
    "checkpoint_keys",
    "convert_checkpoint",
    "detect_checkpoint_format",
    "detect_family",
    "get_converter",
    "preset_metadata",
    "save_converted_preset",
]
