"""mmpose Stacked Hourglass checkpoints -> `keras_pose.Hourglass`.

Layout: a `{'meta', 'state_dict'}` container with

- `backbone.stem.0` (ConvModule `.conv` / `.bn`), `backbone.stem.1.0`
  (BasicBlock: `conv1`, `bn1`, `conv2`, `bn2`, `downsample.0` / `.1`);
- `backbone.hourglass_modules.<s>.{up1,low1,low2,low3}.<i>` BasicBlocks,
  nested as `...low2.up1...` per level;
- `backbone.out_convs.<s>`, `backbone.conv1x1s.<s>`,
  `backbone.remap_convs.<s>` ConvModules and `backbone.inters.<s>`
  BasicBlocks (between stacks);
- the head `head.multi_final_layers.<s>.{weight,bias}` (mmpose 1.x) or
  `keypoint_head.multi_final_layers.<s>.*` (mmpose 0.x releases, which all
  the published Hourglass-52 files are).

Quirk: mmpose's `ResLayer` always builds at least one block, so a
single-stack `HourglassNet` has an `inters.0` block that its forward pass
never uses; the released one-stack checkpoints carry it. It is accounted
for and dropped.

The file determines the stack count, the hourglass depth, widths and block
counts, the output width and the keypoint count; the input size comes from
the preset entry or the `image_size` override.
"""

import re

from keras_pose.conversion.checkpoint_io import read_checkpoint
from keras_pose.conversion.cpm_converter import TASK_OVERRIDES, mmpose_config, port_torch_layers
from keras_pose.conversion.families import check_family
from keras_pose.conversion.key_accountant import KeyAccountant, out_channels
from keras_pose.conversion.port import port_conv
from keras_pose.conversion.settings import require_tensor
from keras_pose.errors import CheckpointError

FAMILY = "hourglass"
DEFAULT_IMAGE_SIZE = {17: (256, 256), 16: (256, 256)}
HEAD_PREFIXES = ("head.", "keypoint_head.")


def _count(tensors, pattern):
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in tensors if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def _require(tensors, key, source, what):
    return require_tensor(tensors, key, source, what, "an mmpose HourglassNet")


def head_prefix(tensors):
    """"head." (mmpose 1.x) or "keypoint_head." (0.x), whichever the file uses."""
    for prefix in HEAD_PREFIXES:
        if any(k.startswith(prefix) for k in tensors):
            return prefix
    return HEAD_PREFIXES[0]


def infer_config(tensors, source="checkpoint"):
    """Backbone / head arguments determined by an mmpose HourglassNet state dict."""
    num_stacks = _count(tensors, r"backbone\.hourglass_modules\.(\d+)\.")
    if not num_stacks:
        raise CheckpointError(
            f"Checkpoint {source} has no backbone.hourglass_modules.* tensors; it is not an mmpose "
            f"HourglassNet checkpoint (first keys: {', '.join(list(tensors)[:5])})."
        )
    channels, blocks = [], []
    prefix = "backbone.hourglass_modules.0."
    while True:
        _require(tensors, f"{prefix}up1.0.conv1.weight", source, "hourglass widths")
        channels.append(out_channels(tensors, f"{prefix}up1.0.conv1.weight"))
        blocks.append(_count(tensors, re.escape(prefix) + r"up1\.(\d+)\."))
        if f"{prefix}low2.low1.0.conv1.weight" in tensors:
            prefix += "low2."
            continue
        _require(tensors, f"{prefix}low1.0.conv1.weight", source, "innermost width")
        channels.append(out_channels(tensors, f"{prefix}low1.0.conv1.weight"))
        blocks.append(_count(tensors, re.escape(prefix) + r"low2\.(\d+)\."))
        break
    head = head_prefix(tensors)
    _require(tensors, f"{head}multi_final_layers.0.weight", source, "keypoint count")
    _require(tensors, "backbone.out_convs.0.conv.weight", source, "feature width")
    _require(tensors, "backbone.stem.0.conv.weight", source, "stem width")
    return {
        "num_keypoints": out_channels(tensors, f"{head}multi_final_layers.0.weight"),
        "num_stacks": num_stacks,
        "downsample_times": len(channels) - 1,
        "stage_channels": channels,
        "stage_blocks": blocks,
        "feat_channels": out_channels(tensors, "backbone.out_convs.0.conv.weight"),
        "stem_channels": out_channels(tensors, "backbone.stem.0.conv.weight"),
    }


def convert(checkpoint, entry=None, dataset=None, **overrides):
    """Convert an mmpose HourglassNet (+ CPMHead) checkpoint into a `Hourglass` model.

    Args:
        checkpoint: path of the `.pth` file, a mapping name -> tensor, or a
            `checkpoint_io.Checkpoint`.
        entry: the `PresetEntry` it was released as (input size, keypoint
            spec, pre-processing, decoding), or None.
        dataset: keypoint spec name when no entry gives one.
        **overrides: `image_size`, `keypoint_spec`, `preprocessing`,
            `decoding`, `dtype`, `name`.

    Returns:
        a `keras_pose.models.hourglass.Hourglass` with the checkpoint's
        weights.

    Raises:
        CheckpointError: listing every missing, unexpected and misshapen
            tensor, or naming a conflict with the preset.
    """
    from keras_pose.models.hourglass import Hourglass

    ckpt = read_checkpoint(checkpoint)
    tensors = ckpt.tensors
    check_family(ckpt, ckpt.path, (FAMILY,), "an mmpose HourglassNet")
    config = mmpose_config(ckpt, infer_config(tensors, ckpt.path), entry, dataset, overrides, FAMILY,
                           DEFAULT_IMAGE_SIZE, allowed=TASK_OVERRIDES)
    model = Hourglass.from_checkpoint_config(**config)

    acc = KeyAccountant(tensors, source=ckpt.path, family=FAMILY, ignore=("*.num_batches_tracked",))
    backbone = model.backbone
    port_torch_layers(acc, backbone)
    if backbone.num_stacks == 1:
        # mmpose's ResLayer(BasicBlock, 0, ...) still holds one (unused) block.
        acc.ignore("backbone.inters.0.*")
    head = head_prefix(tensors)
    for s, layer in enumerate(model.final_layers):
        port_conv(acc, f"{head}multi_final_layers.{s}", layer)
    acc.finish(what=f"Hourglass model ({backbone.num_stacks} stack(s), {model.num_keypoints} keypoints)")
    return model
