"""mmpose CPM checkpoints -> `keras_pose.CPM`.

Layout (mmpose 0.x and 1.x releases alike): a `{'meta', 'state_dict'}`
container whose state dict holds `backbone.*` only (mmpose's `CPMHead`
without a final layer has no parameters):

- `backbone.stem.{0,2,4,6,7,8}` ConvModules (`.conv.weight`, `.bn.*`),
  `backbone.stem.9.conv.{weight,bias}` (stage-1 belief maps);
- `backbone.middle.{0,2,4}` ConvModules (shared image features);
- per stage i = 0..T-2: `backbone.middle_conv.i.0`,
  `backbone.cpm_stages.i.model.{0,1,2}`, `backbone.out_convs.i.0`
  ConvModules and `backbone.out_convs.i.1.conv.{weight,bias}`.

The file determines the stage count, the widths and the keypoint count;
the input size (not stored in the file) comes from the preset entry or the
`image_size` override.
"""

import os
import re

from keras_pose.conversion.checkpoint_io import KeyAccountant, out_channels, read_checkpoint, to_numpy
from keras_pose.errors import CheckpointError
from keras_pose.layers import load_conv_module

FAMILY = "cpm"
# Keypoint spec and input size used when neither a preset entry nor an
# override says (the mmpose releases for these keypoint counts).
DEFAULT_SPEC = {17: "coco", 16: "mpii"}
DEFAULT_IMAGE_SIZE = {17: (256, 192), 16: (368, 368)}
# Task settings a caller may override; everything else is a backbone argument.
TASK_KEYS = ("keypoint_spec", "image_size", "preprocessing", "decoding", "dtype", "name")


def read_tensors(checkpoint):
    """(tensors {name: array}, source) from a path or a mapping of tensors."""
    if hasattr(checkpoint, "keys") and not isinstance(checkpoint, (str, bytes, os.PathLike)):
        return {k: to_numpy(v) for k, v in checkpoint.items()}, "state dict"
    ckpt = read_checkpoint(checkpoint)
    return ckpt.tensors, ckpt.path


def _dim(tensors, key, axis, source, what):
    if key not in tensors:
        raise CheckpointError(
            f"Checkpoint {source} has no {key}, which gives the {what}; it is not an mmpose CPM "
            f"checkpoint (first keys: {', '.join(list(tensors)[:5])})."
        )
    if axis == 0:  # from the bias / BatchNorm where present (robust to a transposed weight)
        return out_channels(tensors, key)
    return int(tensors[key].shape[axis])


def infer_config(tensors, source="checkpoint"):
    """Backbone arguments determined by an mmpose CPM state dict."""
    p = "backbone."
    num_keypoints = _dim(tensors, p + "stem.9.conv.weight", 0, source, "keypoint count")
    stages = {int(m.group(1)) for k in tensors if (m := re.match(r"backbone\.cpm_stages\.(\d+)\.", k))}
    config = {
        "num_keypoints": num_keypoints,
        "num_stages": 1 + (max(stages) + 1 if stages else 0),
        "stem_channels": _dim(tensors, p + "stem.0.conv.weight", 0, source, "stem width"),
        "stem_mid_channels": _dim(tensors, p + "stem.6.conv.weight", 0, source, "stem 5x5 width"),
        "stem_head_channels": _dim(tensors, p + "stem.7.conv.weight", 0, source, "stem head width"),
    }
    if stages:
        config["feat_channels"] = _dim(tensors, p + "cpm_stages.0.model.0.conv.weight", 0, source, "stage width")
        config["middle_channels"] = _dim(tensors, p + "middle_conv.0.0.conv.weight", 0, source, "middle width")
    return config


def merge_config(inferred, entry, overrides, source, family=FAMILY):
    """Preset config + what the file determines (must agree) + overrides."""
    config = dict(entry.config) if entry is not None else {}
    conflicts = [
        f"{k}: preset {config[k]!r}, checkpoint {v!r}"
        for k, v in inferred.items()
        if k in config and config[k] is not None and config[k] != v
    ]
    if conflicts:
        raise CheckpointError(
            f"Checkpoint {source} does not match preset {entry.name!r} ({'; '.join(conflicts)}). "
            f"Convert it without a preset, or with the preset it was released for."
        )
    config.update(inferred)
    config.update(overrides)
    return config


def default_task_settings(config, dataset, default_image_size):
    """Fill keypoint_spec / image_size when neither entry nor overrides gave them."""
    k = config["num_keypoints"]
    if config.get("keypoint_spec") is None:
        if dataset is not None:
            config["keypoint_spec"] = dataset
        elif k in DEFAULT_SPEC:
            config["keypoint_spec"] = DEFAULT_SPEC[k]
        else:
            raise CheckpointError(
                f"The checkpoint predicts {k} keypoints; pass keypoint_spec=... (a built-in name, "
                "a KeypointSpec or a file) for them."
            )
    if config.get("image_size") is None:
        config["image_size"] = tuple(default_image_size.get(k, next(iter(default_image_size.values()))))
    return config


def convert(checkpoint, entry=None, dataset=None, **overrides):
    """Convert an mmpose CPM checkpoint into a `CPM` model.

    Args:
        checkpoint: path of the `.pth` file, or a mapping name -> tensor.
        entry: the `PresetEntry` it was released as (input size, keypoint
            spec, pre-processing, decoding), or None.
        dataset: keypoint spec name when no entry gives one.
        **overrides: `image_size`, `keypoint_spec`, `preprocessing`,
            `decoding`, `dtype`, `name`, `center_map_sigma` (never set in
            mmpose checkpoints).

    Returns:
        a `keras_pose.models.cpm.CPM` with the checkpoint's weights.

    Raises:
        CheckpointError: listing every missing, unexpected and misshapen
            tensor, or naming a conflict with the preset.
    """
    from keras_pose.models.cpm import CPM

    tensors, source = read_tensors(checkpoint)
    config = merge_config(infer_config(tensors, source), entry, overrides, source)
    config = default_task_settings(config, dataset, DEFAULT_IMAGE_SIZE)
    if entry is not None:
        config.setdefault("preprocessing", entry.preprocessing)
        config.setdefault("decoding", entry.decoding)
    model = CPM.from_checkpoint_config(**config)

    accountant = KeyAccountant(tensors, source=source, family=FAMILY, ignore=("*.num_batches_tracked",))
    for name, path in model.backbone.torch_layer_paths.items():
        layer = model.backbone.get_layer(name)
        prefix = f"backbone.{path}"
        load_conv_module(layer, accountant.pop, f"{prefix}.conv", f"{prefix}.bn" if layer.bn is not None else None)
    accountant.finish(what=f"CPM model ({config['num_stages']} stages, {config['num_keypoints']} keypoints)")
    return model
