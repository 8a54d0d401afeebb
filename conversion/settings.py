"""What a converter takes from the preset entry, the caller's options and the file.

Every converter follows the same contract (`convert(checkpoint, entry=None,
dataset=None, **overrides) -> model`):

1. what the file determines (depth, widths, keypoint counts, the ViT input size)
   is inferred from it;
2. the preset entry's flat `config` (the keyword arguments of the task class's
   `from_checkpoint_config`) and the `overrides` must agree with that
   (`check_agrees`), and fill what the file cannot tell (attention heads,
   keypoint spec, input size of a fully convolutional net);
3. the task settings (`preprocessing`, `decoding`) come from the overrides, else
   the entry (`task_settings`), with the decoding's codec sized to the model
   (`sized_decoding`);
4. the model is built with `TaskClass.from_checkpoint_config(**config)` and the
   tensors are ported (`conversion.port`) through a `KeyAccountant`.
"""

import copy

from keras_pose.errors import CheckpointError


def entry_field(entry, name, default=None):
    """A field of a `PresetEntry` (or of a dict with the same fields); `default` if absent."""
    if entry is None:
        return default
    if isinstance(entry, dict):
        return entry.get(name, default)
    return getattr(entry, name, default)


def entry_config(entry):
    """A copy of the entry's flat `config` ({} without an entry)."""
    return copy.deepcopy(dict(entry_field(entry, "config", None) or {}))


def check_overrides(overrides, allowed, family):
    """Refuse keyword options a converter does not know (a typo must not pass silently)."""
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(
            f"Unknown {family} conversion overrides {unknown}; allowed: {sorted(allowed)}."
        )


def preset_label(entry):
    """How messages name the preset: "preset 'NAME'" (or "the preset config" for an unnamed one)."""
    name = entry_field(entry, "name")
    return f"preset {name!r}" if name else "the preset config"


def check_agrees(inferred, given, source, by):
    """Raise unless every value in `given` agrees with what the file determines.

    Args:
        inferred: {name: value} read from the checkpoint.
        given: {name: value} from a preset config, the caller's options or a
            config file beside the checkpoint (None values are not checked).
        source: the checkpoint's path or name.
        by: who gave `given`, for the message: `preset_label(entry)`, "the
            conversion options", "its config.json".

    Raises:
        CheckpointError: "Checkpoint <source> does not match <by>: <by> says
            num_layers=12, the checkpoint has num_layers=2; ...".
    """
    conflicts = [
        f"{by} says {name}={given[name]!r}, the checkpoint has {name}={value!r}"
        for name, value in inferred.items()
        if given.get(name) is not None and value is not None and given[name] != value
    ]
    if conflicts:
        raise CheckpointError(
            f"Checkpoint {source} does not match {by}: {'; '.join(conflicts)}. Use the preset the file was "
            "released as, or convert it without one (the converter infers what the file determines)."
        )


def task_settings(entry, overrides):
    """{"preprocessing", "decoding"} from the overrides, else the entry (None where neither has one)."""
    return {key: copy.deepcopy(overrides.get(key) or entry_field(entry, key) or None)
            for key in ("preprocessing", "decoding")}


def sized_decoding(decoding, image_size, heatmap_size):
    """A copy of `decoding` whose codec sizes are the model's (input and heatmap (H, W)).

    A preset's decoding names the released input size; a file fine-tuned at
    another size keeps the preset's codec settings at its own size.
    """
    if not decoding or "codec" not in decoding:
        return decoding
    decoding = copy.deepcopy(decoding)
    decoding["codec"]["input_size"] = [int(v) for v in image_size]
    decoding["codec"]["heatmap_size"] = [int(v) for v in heatmap_size]
    return decoding


def require_tensor(tensors, key, source, what, kind):
    """`tensors[key]`, which gives the architecture's `what`; a CheckpointError naming it if absent.

    Args:
        kind: the file kind with its article ("an mmpose CPM").
    """
    if key not in tensors:
        raise CheckpointError(
            f"Checkpoint {source} has no {key}, which gives the {what}; it is not {kind} checkpoint "
            f"(first keys: {', '.join(list(tensors)[:5])})."
        )
    return tensors[key]


def default_keypoint_spec(num_keypoints, dataset, by_count, source):
    """The keypoint spec of a file that names none: `dataset`, else the built-in one with that count."""
    if dataset is not None:
        return dataset
    if num_keypoints in by_count:
        return by_count[num_keypoints]
    raise CheckpointError(
        f"{source} predicts {num_keypoints} keypoints, which matches no built-in keypoint spec by count; "
        "pass keypoint_spec=... (a built-in name, a KeypointSpec or a file)."
    )


__all__ = [
    "check_agrees",
    "check_overrides",
    "default_keypoint_spec",
    "entry_config",
    "entry_field",
    "preset_label",
    "require_tensor",
    "sized_decoding",
    "task_settings",
]
