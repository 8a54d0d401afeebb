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

import re

from keras_pose.conversion.checkpoint_io import read_checkpoint
from keras_pose.conversion.families import check_family
from keras_pose.conversion.key_accountant import KeyAccountant, out_channels
from keras_pose.conversion.port import port_basic_block, port_conv_module
from keras_pose.conversion.settings import (
    check_agrees,
    check_overrides,
    default_keypoint_spec,
    entry_config,
    preset_label,
    require_tensor,
    task_settings,
)

FAMILY = "cpm"
# Keypoint spec and input size used when neither a preset entry nor an
# override says (the mmpose releases for these keypoint counts).
DEFAULT_SPEC = {17: "coco", 16: "mpii"}
DEFAULT_IMAGE_SIZE = {17: (256, 192), 16: (368, 368)}
# Keyword options of `convert`: the task settings, and backbone arguments the file does not hold.
TASK_OVERRIDES = ("keypoint_spec", "image_size", "preprocessing", "decoding", "dtype", "name")
OVERRIDES = TASK_OVERRIDES + ("center_map_sigma",)


def _dim(tensors, key, source, what):
    require_tensor(tensors, key, source, what, "an mmpose CPM")
    return out_channels(tensors, key)  # from the bias / BatchNorm (robust to a transposed weight)


def infer_config(tensors, source="checkpoint"):
    """`CPMBackbone` arguments determined by an mmpose CPM state dict."""
    p = "backbone."
    num_keypoints = _dim(tensors, p + "stem.9.conv.weight", source, "keypoint count")
    stages = {int(m.group(1)) for k in tensors if (m := re.match(r"backbone\.cpm_stages\.(\d+)\.", k))}
    config = {
        "num_keypoints": num_keypoints,
        "num_stages": 1 + (max(stages) + 1 if stages else 0),
        "stem_channels": _dim(tensors, p + "stem.0.conv.weight", source, "stem width"),
        "stem_mid_channels": _dim(tensors, p + "stem.6.conv.weight", source, "stem 5x5 width"),
        "stem_head_channels": _dim(tensors, p + "stem.7.conv.weight", source, "stem head width"),
    }
    if stages:
        config["feat_channels"] = _dim(tensors, p + "cpm_stages.0.model.0.conv.weight", source, "stage width")
        config["middle_channels"] = _dim(tensors, p + "middle_conv.0.0.conv.weight", source, "middle width")
    return config


def mmpose_config(ckpt, inferred, entry, dataset, overrides, family, default_image_size, allowed=OVERRIDES):
    """The flat `from_checkpoint_config` arguments of an mmpose CNN checkpoint (CPM, Hourglass).

    The preset config and the file must agree on what the file determines;
    the overrides go on top; keypoint spec and input size fall back to the
    release with the file's keypoint count.
    """
    check_overrides(overrides, allowed, family)
    config = entry_config(entry)
    check_agrees(inferred, config, ckpt.path, preset_label(entry))
    config.update(inferred)
    config.update({k: v for k, v in overrides.items() if k not in ("preprocessing", "decoding")})
    k = config["num_keypoints"]
    if config.get("keypoint_spec") is None:
        config["keypoint_spec"] = default_keypoint_spec(k, dataset, DEFAULT_SPEC, ckpt.path)
    if config.get("image_size") is None:
        config["image_size"] = tuple(default_image_size.get(k, next(iter(default_image_size.values()))))
    config.update(task_settings(entry, overrides))
    return config


def port_torch_layers(acc, backbone):
    """Port every layer `backbone.torch_layer_paths` names (ConvModules, BasicResidualBlocks) from `backbone.*`."""
    from keras_pose.layers import BasicResidualBlock

    for name, path in backbone.torch_layer_paths.items():
        layer = backbone.get_layer(name)
        prefix = f"backbone.{path}"
        if isinstance(layer, BasicResidualBlock):
            port_basic_block(acc, layer, prefix)
        else:
            port_conv_module(acc, layer, f"{prefix}.conv", f"{prefix}.bn" if layer.bn is not None else None)


def convert(checkpoint, entry=None, dataset=None, **overrides):
    """Convert an mmpose CPM checkpoint into a `CPM` model.

    Args:
        checkpoint: path of the `.pth` file, a mapping name -> tensor, or a
            `checkpoint_io.Checkpoint`.
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

    ckpt = read_checkpoint(checkpoint)
    check_family(ckpt, ckpt.path, (FAMILY,), "an mmpose CPM")
    config = mmpose_config(ckpt, infer_config(ckpt.tensors, ckpt.path), entry, dataset, overrides, FAMILY,
                           DEFAULT_IMAGE_SIZE)
    model = CPM.from_checkpoint_config(**config)

    acc = KeyAccountant(ckpt.tensors, source=ckpt.path, family=FAMILY, ignore=("*.num_batches_tracked",))
    port_torch_layers(acc, model.backbone)
    acc.finish(what=f"CPM model ({config['num_stages']} stages, {config['num_keypoints']} keypoints)")
    return model
