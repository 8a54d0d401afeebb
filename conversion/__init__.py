"""Reference checkpoint -> keras-pose model conversion (`keras_pose.conversion`).

`convert_checkpoint(checkpoint, preset=None, output_dir=None, dataset=None,
**overrides) -> model` is the entry point: it reads the checkpoint once
(`checkpoint_io.read_checkpoint`), picks the converter of its model family
(from the preset, or `families.detect_family` on the tensor names), and
returns the converted model; with `output_dir` it also writes it as a
keras-hub preset directory with a `keras_pose_preset.json` provenance record
(`preset_output`).

The converter contract (one module per family, imported lazily by name through
`CONVERTERS`, so torch is only needed when converting):

    convert(checkpoint, entry=None, dataset=None, **overrides) -> model

`checkpoint` is a path, a state dict or a `Checkpoint`; `entry` a
`PresetEntry` (its flat `config` is the task class's `from_checkpoint_config`
arguments) or None. A converter infers everything the file determines, checks
the entry and overrides against it (`settings`), builds the model with
`TaskClass.from_checkpoint_config` and ports the tensors with the `port`
helpers through a `KeyAccountant`, which lists every missing, unexpected,
misshapen and non-finite tensor.

Module layout: `checkpoint_io` (the tensor reader), `file_formats` (what a
file is; safe torch loading), `families` (the family detector),
`key_accountant`, `port` (layer helpers), `settings` (entry / options / file),
`preset_output` (the written preset and its record), and the converters
`vitpose_converter` (+ `vitpose_layouts`), `cpm_converter`,
`hourglass_converter`, `cpn_converter`, `rtmo_converter` (the `RTMO` task;
`rtmo_converter.convert_network` for the raw network).
"""

import importlib
import os

from keras_pose.conversion.checkpoint_io import is_mapping, read_checkpoint
from keras_pose.conversion.families import detect_family, match_family
from keras_pose.conversion.preset_output import (
    CONVERTER_VERSION,
    PRESET_FILES,
    PRESET_METADATA_FILE,
    check_output_dir,
    preset_metadata,
    save_converted_preset,
)
from keras_pose.errors import CheckpointError
from keras_pose.errors import PresetError

# family -> module with `convert(checkpoint, entry=None, dataset=None, **overrides)`
CONVERTERS = {
    "vitpose": "keras_pose.conversion.vitpose_converter",
    "vitpose_plus": "keras_pose.conversion.vitpose_converter",
    "cpm": "keras_pose.conversion.cpm_converter",
    "cpn": "keras_pose.conversion.cpn_converter",
    "hourglass": "keras_pose.conversion.hourglass_converter",
    "rtmo": "keras_pose.conversion.rtmo_converter",
    "openpose": "keras_pose.conversion.openpose_converter",
}


def get_converter(family):
    """The converter module of a family (imported on first use)."""
    module_name = CONVERTERS.get(family)
    if module_name is None:
        raise PresetError(
            f"No checkpoint converter for model family {family!r}; known families: {sorted(CONVERTERS)}."
        )
    return importlib.import_module(module_name)


def _resolve_entry(preset):
    from keras_pose.preset_registry import PresetEntry, get_preset_entry

    if preset is None or isinstance(preset, PresetEntry):
        return preset
    if isinstance(preset, str):
        return get_preset_entry(preset)
    raise PresetError(f"preset must be a registered name, a PresetEntry or None, got {type(preset).__name__}.")


def _family_of(ckpt):
    family, _ = detect_family(ckpt)
    if family not in CONVERTERS:
        raise CheckpointError(
            f"{ckpt.path} looks like {match_family(ckpt).description}, a family keras-pose has no converter for "
            f"(converters: {', '.join(sorted(CONVERTERS))})."
        )
    return family


def convert_checkpoint(checkpoint, preset=None, output_dir=None, dataset=None, license=None, **overrides):
    """Convert a reference checkpoint into a keras-pose model.

    Args:
        checkpoint: path of the reference checkpoint file (for HF
            safetensors: `model.safetensors` with its `config.json` beside
            it, or the folder holding both), or a state dict.
        preset: a registered preset name, a `PresetEntry`, or None to infer
            the family from the checkpoint's tensor names.
        output_dir: if given, the model is also written there as a
            keras-hub preset directory (atomically) with a
            `keras_pose_preset.json` record of the source, licence, published
            accuracy (for the released file only: a file whose sha256 differs
            from the published one is converted with the preset's settings,
            with a warning, and recorded as `release_file: false` without the
            accuracy), decoding, the converted file's sha256 and fingerprint,
            and `CONVERTER_VERSION`. An existing folder is replaced only if it
            is empty or an earlier conversion holding nothing but preset
            files, and never if the checkpoint lies inside it
            (`check_output_dir`).
        dataset: for multi-dataset models (ViTPose++), the dataset whose
            head and expert to select (default: the preset's).
        license: the licence id recorded in `keras_pose_preset.json`
            (SPDX id or ``LicenseRef-...``; ``"none"`` records none).
            Default: the preset's; without a preset, the licence all the
            family's registered presets share when it restricts use (CMU's
            non-commercial OpenPose weights: the folder then needs
            ``accept_license=True`` to load), with a warning; else none.
        **overrides: passed to the family converter (e.g. `dtype`).

    Returns:
        The keras-pose task model (the one written to `output_dir`).

    Raises:
        CheckpointError: the file is not a readable checkpoint (empty, text,
            truncated, a hostile pickle: named), or its tensors do not match
            the model (missing / unexpected / misshapen / non-finite, listed).
        PresetError: an unknown preset, a dataset the preset does not have,
            or an output folder that would lose files.
    """
    entry = _resolve_entry(preset)
    if output_dir is not None:
        check_output_dir(output_dir, checkpoint)  # fail before the (slow) conversion
    if not is_mapping(checkpoint) and not os.path.exists(os.fspath(checkpoint)):
        raise FileNotFoundError(
            f"Checkpoint {os.fspath(checkpoint)!r} does not exist; give the path of the downloaded "
            "reference checkpoint file."
        )
    if entry is not None:
        entry.check_dataset(dataset)
        dataset = dataset if dataset is not None else entry.dataset
    ckpt = read_checkpoint(checkpoint)
    family = entry.family if entry is not None else _family_of(ckpt)
    converter = get_converter(family)
    if output_dir is not None and not getattr(converter, "WRITES_PRESETS", True):
        raise PresetError(
            f"{ckpt.path} is {match_family(ckpt).description}: keras-pose converts it to its raw network only "
            f"(no task model yet), which cannot be written as a preset directory; convert it without an output "
            "folder (`keras_pose.conversion.convert_checkpoint(path)`) and save the returned model with "
            "`model.save(...)`."
        )
    model = converter.convert(ckpt, entry=entry, dataset=dataset, **overrides)
    if output_dir is not None:
        metadata = preset_metadata(
            entry,
            checkpoint,
            dataset=dataset,
            family=family,
            task_class=type(model).__name__,
            model=model,
            license=license,
        )
        save_converted_preset(model, output_dir, metadata)
    return model


__all__ = [
    "CONVERTERS",
    "CONVERTER_VERSION",
    "PRESET_FILES",
    "PRESET_METADATA_FILE",
    "check_output_dir",
    "convert_checkpoint",
    "detect_family",
    "get_converter",
    "preset_metadata",
    "save_converted_preset",
]
