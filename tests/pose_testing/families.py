"""The families the registry knows, at a tiny size: the one table a family adds to.

`keras_pose.preset_registry` lists every registered preset; each family's
*reference entry* is its smallest registered preset (`reference_entry`). The
harness tests (tests/models/test_family_harness.py) build that entry's flat
`config` with the family's `TINY_OVERRIDES` on top (`tiny_config`), so a
family that registers presets gets backbone, task, preset and converter tests
without new test code. A family adds here:

- one line in `TINY_OVERRIDES`: the architecture keys (and `image_size`) that
  make its reference entry tiny (a forward pass in milliseconds);
- one line in `REFERENCE_EXPORTERS`: the checkpoint layout its converter reads
  and a function `model -> {name: array}` writing a model's weights in that
  layout (the inverse of the converter, written from the reference code's
  module names), e.g. `pose_testing.cpm_models.export_state_dict`.
"""

import dataclasses

import keras
import numpy as np

from pose_testing import cpm_models, cpn_models, hourglass_models, openpose_models, rtmo_models, vitpose_models

_VIT_TINY = {"image_size": [64, 48], "hidden_dim": 32, "num_layers": 2, "num_heads": 2, "mlp_dim": 64,
             "deconv_filters": [16, 16]}

# family -> from_checkpoint_config keys replacing the reference entry's (image_size included).
TINY_OVERRIDES = {
    "vitpose": _VIT_TINY,
    "vitpose_plus": {**_VIT_TINY, "part_features": 8},
    "cpm": {"image_size": [64, 48], "num_stages": 2, **cpm_models.TINY},
    "hourglass": {"image_size": [32, 32], "num_stacks": 2, **hourglass_models.TINY},
    "cpn": {"image_size": [64, 32], "depth": None, "stackwise_num_blocks": [1, 1, 1, 1],
            "stackwise_num_filters": [64, 16, 16, 16], "global_channels": 16, "refine_planes": 8},
    "rtmo": {"image_size": [64, 96], **{k: v for k, v in rtmo_models.TINY.items() if k != "num_keypoints"}},
    "openpose": {"image_size": [32, 32], "num_stages": 2, **openpose_models.TINY},
}

# family -> (checkpoint_format of the file written, model -> state dict in that layout)
REFERENCE_EXPORTERS = {
    "vitpose": ("vitpose_original", vitpose_models.export_original_state_dict),
    "vitpose_plus": ("vitpose_original", vitpose_models.export_original_state_dict),
    "cpm": ("mmpose", cpm_models.export_state_dict),
    "hourglass": ("mmpose", hourglass_models.export_state_dict),
    "cpn": ("pytorch_cpn", cpn_models.export_state_dict),
    "rtmo": ("mmpose", rtmo_models.export_task_state_dict),
    "openpose": ("pytorch_openpose", openpose_models.export_state_dict),
}


def registered_families():
    """Every family with a registered preset, sorted."""
    from keras_pose.preset_registry import list_presets

    return sorted({entry.family for entry in list_presets()})


def lookup(table, table_name, family):
    """`table[family]`, or a test failure naming the table a new family must add a line to."""
    import pytest

    if family not in table:
        pytest.fail(
            f"Family {family!r} registers presets but has no line in pose_testing.families.{table_name}; add one "
            "(see CONTRIBUTING.md, 'Adding a family')."
        )
    return table[family]


def _numbers(value):
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, int):  # widths, depths, counts (not epsilons)
        return float(value)
    if isinstance(value, (list, tuple)):
        return sum(_numbers(v) for v in value)
    return 0.0


def _size_key(entry):
    """Architecture size first (the sum of the config's integers: widths, depths, stages), then input
    area, then the name (the plain release before its `_hf` / `_mmpose` re-publications)."""
    config = entry.config
    arch = sum(_numbers(v) for k, v in config.items() if k not in ("image_size", "heatmap_size", "num_keypoints"))
    h, w = config["image_size"]
    return (arch, h * w, entry.name)


def reference_entry(family):
    """The family's smallest registered preset (`PresetEntry`)."""
    from keras_pose.preset_registry import list_presets

    return min(list_presets(family=family), key=_size_key)


def task_class(entry):
    import keras_pose

    return getattr(keras_pose, entry.task_class)


def _scaled(size, entry_input, entry_output):
    return [int(round(s * o / i)) for s, i, o in zip(size, entry_input, entry_output)]


def tiny_entry(family):
    """The reference entry made tiny: config with `TINY_OVERRIDES`, codec sizes scaled to the tiny input."""
    entry = reference_entry(family)
    config = {**entry.config, **lookup(TINY_OVERRIDES, "TINY_OVERRIDES", family)}
    config = {k: v for k, v in config.items() if v is not None}
    decoding = dict(entry.decoding)
    if "codec" not in decoding:  # one-stage models (RTMO): no heatmap codec to size
        return dataclasses.replace(entry, name=f"test_tiny_{family}", config=config, sha256=None)
    codec = dict(decoding["codec"])
    heatmap_size = _scaled(config["image_size"], codec["input_size"], codec["heatmap_size"])
    codec.update(input_size=list(config["image_size"]), heatmap_size=heatmap_size)
    decoding["codec"] = codec
    if "heatmap_size" in entry.config and "heatmap_size" not in TINY_OVERRIDES[family]:
        config["heatmap_size"] = heatmap_size
    return dataclasses.replace(entry, name=f"test_tiny_{family}", config=config, decoding=decoding, sha256=None)


def build(entry, **kwargs):
    """`TaskClass.from_checkpoint_config(**entry.config)` with the entry's preprocessing and decoding."""
    return task_class(entry).from_checkpoint_config(
        **entry.config, preprocessing=entry.preprocessing, decoding=entry.decoding, **kwargs
    )


def randomize_weights(model, seed=0):
    """Non-trivial values where initialisers give constants (norm statistics, biases, tables).

    Random kernels keep their initialisation; BatchNorm / LayerNorm scales,
    offsets and moving statistics, zero biases and zero position tables get
    random values, so a tensor ported to the wrong place shows in outputs.
    """
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = keras.ops.convert_to_numpy(w)
        if not np.issubdtype(value.dtype, np.floating):
            continue
        shape = tuple(w.shape)
        if "moving_variance" in w.path:
            new = rng.uniform(0.5, 1.5, shape)
        elif "gamma" in w.path:
            new = rng.uniform(0.7, 1.3, shape)
        elif value.size and np.all(value == value.flat[0]):
            new = value + rng.normal(0.0, 0.05, shape)
        else:
            continue
        w.assign(new.astype(value.dtype))
    return model


def tiny_model(family, seed=0):
    """The family's tiny model, weights randomized (`randomize_weights`)."""
    keras.utils.set_random_seed(seed)
    return randomize_weights(build(tiny_entry(family)), seed)


def smallest_full_size_model(family):
    """The family's smallest registered preset at full size (random weights)."""
    return build(reference_entry(family))
