"""pytorch-cpn checkpoints -> `keras_pose.models.CPN`.

GengDavid/pytorch-cpn saves `torch.save({'epoch', 'state_dict', 'optimizer'})`
from a `torch.nn.DataParallel` model, so every key starts with `module.`
(`module.resnet.conv1.weight`, `module.global_net.laterals.0.0.weight`,
`module.refine_net.final_predict.2.running_var`). `checkpoint_io` unwraps the
container and strips the prefix; this module maps the rest:

| pytorch-cpn                                   | Keras layer                              |
| --------------------------------------------- | ---------------------------------------- |
| resnet.conv1 / bn1                            | backbone.resnet conv1_conv / conv1_bn    |
| resnet.layer{s+1}.{b}.conv{k} / bn{k}         | stack{s}_block{b}_{k}_conv / _bn         |
| resnet.layer{s+1}.{b}.downsample.0 / .1       | stack{s}_block{b}_0_conv / _bn           |
| global_net.laterals.{i}.0 / .1                | global_lateral{i}_conv / _bn             |
| global_net.upsamples.{i}.1 / .2               | global_upsample{i}_conv / _bn            |
| global_net.predict.{i}.0 / .1 / .3 / .5       | global_predict{i}_1_conv / _1_bn / _2_conv / _2_bn |
| refine_net.cascade.{i}.{j}.conv{k} / bn{k}   | refine_cascade{i}_block{j}_{k}_conv / _bn |
| refine_net.cascade.{i}.{j}.downsample.0 / .1  | refine_cascade{i}_block{j}_0_conv / _bn  |
| refine_net.final_predict.0.* / .1 / .2        | refine_final_block_* / refine_final_conv / refine_final_bn |

Conv kernels go from torch ``(out, in, kh, kw)`` to Keras ``(kh, kw, in, out)``;
BatchNorm ``weight, bias, running_mean, running_var`` to ``gamma, beta,
moving_mean, moving_variance``; ``num_batches_tracked`` is dropped (absent
in checkpoints saved by torch 0.4.0). Every other tensor must be consumed.

The ResNet depth (stage block counts and widths), the keypoint count and
the head widths are read from the file; the input size comes from the
preset entry (`config["image_size"]`) or the `image_size` override
(default 256x192), since a fully convolutional checkpoint does not record it.
"""

import re

from keras_pose.conversion.checkpoint_io import read_checkpoint
from keras_pose.conversion.families import check_family
from keras_pose.conversion.key_accountant import KeyAccountant, out_channels
from keras_pose.conversion.port import port_batch_norm, port_conv
from keras_pose.conversion.settings import (
    check_overrides,
    entry_config,
    entry_field,
    sized_decoding,
    task_settings,
)
from keras_pose.errors import CheckpointError
from keras_pose.errors import PresetError

FAMILY = "cpn"
OVERRIDES = (
    "image_size",
    "heatmap_size",
    "keypoint_spec",
    "dtype",
    "preprocessing",
    "decoding",
    "name",
    "loss",
)
EXPECT = (
    "A CPN checkpoint has 'resnet.*', 'global_net.*' and 'refine_net.*' tensors (with a 'module.' prefix as "
    "saved by pytorch-cpn). "
)


def _indices(keys, pattern):
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys for m in [regex.match(k)] if m})


def infer_architecture(tensors, source="checkpoint"):
    """CPN hyper-parameters read from a (prefix-free) state dict.

    Returns:
        dict with `stackwise_num_blocks` (4 ints), `stackwise_num_filters`,
        `depth` (50 / 101 / 152 or None), `num_keypoints`,
        `global_channels`, `refine_planes`, `refine_num_blocks`,
        `upsample_bias`.
    """
    from keras_pose.models.cpn.cpn_backbone import RESNET_DEPTHS

    keys = list(tensors)
    needed = ["resnet.conv1.weight", "global_net.laterals.0.0.weight", "refine_net.final_predict.1.weight",
              "refine_net.final_predict.0.conv1.weight"]
    missing = [k for k in needed if k not in tensors]
    blocks = [len(_indices(keys, rf"^resnet\.layer{s}\.(\d+)\.conv1\.weight$")) for s in range(1, 5)]
    if any(b == 0 for b in blocks):
        missing += [f"resnet.layer{s}.0.conv1.weight" for s, b in zip(range(1, 5), blocks) if b == 0]
    levels = _indices(keys, r"^global_net\.laterals\.(\d+)\.0\.weight$")
    if levels and levels != [0, 1, 2, 3]:
        raise CheckpointError(
            f"{source}: CPN has 4 GlobalNet levels, the checkpoint has laterals {levels}."
        )
    if missing:
        raise CheckpointError(
            f"{source} lacks tensors needed to read the CPN architecture: {missing}."
        )
    # Widths from the BatchNorm / bias beside each conv where present, so a
    # transposed weight is reported as misshapen instead of changing the model.
    filters = [out_channels(tensors, f"resnet.layer{s}.0.conv1.weight") for s in range(1, 5)]
    depth = next((d for d, b in RESNET_DEPTHS.items() if list(b) == blocks), None)
    refine_blocks = [len(_indices(keys, rf"^refine_net\.cascade\.{i}\.(\d+)\.conv1\.weight$")) for i in range(4)]
    return {
        "depth": depth,
        "stackwise_num_blocks": blocks,
        "stackwise_num_filters": filters,
        "num_keypoints": out_channels(tensors, "refine_net.final_predict.1.weight"),
        "global_channels": out_channels(tensors, "global_net.laterals.0.0.weight"),
        "refine_planes": out_channels(tensors, "refine_net.final_predict.0.conv1.weight"),
        "refine_num_blocks": refine_blocks,
        "upsample_bias": "global_net.upsamples.0.1.bias" in tensors,
    }


# ------------------------------------------------------------------ weights
def _port_conv_bn(acc, get, keras_name, conv_prefix, bn_prefix):
    port_conv(acc, conv_prefix, get(f"{keras_name}_conv"))
    port_batch_norm(acc, bn_prefix, get(f"{keras_name}_bn"))


def _port_bottleneck(acc, get, keras_name, torch_prefix, shortcut=True):
    for k in (1, 2, 3):
        _port_conv_bn(acc, get, f"{keras_name}_{k}", f"{torch_prefix}.conv{k}", f"{torch_prefix}.bn{k}")
    if shortcut:
        _port_conv_bn(acc, get, f"{keras_name}_0", f"{torch_prefix}.downsample.0", f"{torch_prefix}.downsample.1")


def load_weights(model, tensors, source="checkpoint"):
    """Port a prefix-free pytorch-cpn state dict into a built `CPN`.

    Raises:
        CheckpointError: listing every missing, unexpected and misshapen
            tensor.
    """
    acc = KeyAccountant(tensors, source=source, family=FAMILY, ignore=("*.num_batches_tracked",))
    resnet = model.backbone.resnet
    _port_conv_bn(acc, resnet.get_layer, "conv1", "resnet.conv1", "resnet.bn1")
    for s, num in enumerate(model.backbone.stackwise_num_blocks):
        for b in range(num):
            _port_bottleneck(acc, resnet.get_layer, f"stack{s}_block{b}", f"resnet.layer{s + 1}.{b}", b == 0)

    get = model.get_layer
    for i in range(4):
        _port_conv_bn(acc, get, f"global_lateral{i}", f"global_net.laterals.{i}.0", f"global_net.laterals.{i}.1")
        if i < 3:
            _port_conv_bn(acc, get, f"global_upsample{i}", f"global_net.upsamples.{i}.1",
                          f"global_net.upsamples.{i}.2")
        _port_conv_bn(acc, get, f"global_predict{i}_1", f"global_net.predict.{i}.0", f"global_net.predict.{i}.1")
        _port_conv_bn(acc, get, f"global_predict{i}_2", f"global_net.predict.{i}.3", f"global_net.predict.{i}.5")

    layer_names = {layer.name for layer in model.layers}
    for i in range(4):
        j = 0
        while f"refine_cascade{i}_block{j}_1_conv" in layer_names:
            _port_bottleneck(acc, get, f"refine_cascade{i}_block{j}", f"refine_net.cascade.{i}.{j}")
            j += 1
    _port_bottleneck(acc, get, "refine_final_block", "refine_net.final_predict.0")
    _port_conv_bn(acc, get, "refine_final", "refine_net.final_predict.1", "refine_net.final_predict.2")
    acc.finish("CPN model")
    return model


# ------------------------------------------------------------------ entry point
def convert(checkpoint, entry=None, dataset=None, **overrides):
    """Convert a pytorch-cpn checkpoint into a `CPN` task model.

    Args:
        checkpoint: path of the `.pth.tar` file (container
            `{'epoch', 'state_dict', 'optimizer'}`, `module.` prefix), a
            state dict mapping (torch tensors or NumPy arrays), or a
            `checkpoint_io.Checkpoint`.
        entry: the `PresetEntry` the file was released as: input size,
            keypoint spec, pre-processing and decoding come from it; its
            ResNet depth is checked against the file. None: 256x192 COCO
            defaults.
        dataset: must be None or "coco" (CPN presets are single-dataset).
        **overrides: `image_size` ((H, W), multiples of 32), `heatmap_size`,
            `keypoint_spec`, `dtype`, `preprocessing`, `decoding`, `name`,
            `loss`.

    Returns:
        A `keras_pose.models.cpn.CPN` with the checkpoint's weights.

    Raises:
        CheckpointError: not a CPN checkpoint (the message names the family
            it looks like), or tensors missing / unexpected / misshapen, or
            the file disagrees with the preset (depth, keypoint count).
    """
    from keras_pose.keypoints import get_keypoint_spec
    from keras_pose.models.cpn.cpn_pose_estimator import CPN

    check_overrides(overrides, OVERRIDES, FAMILY)
    config = entry_config(entry)
    spec_name = overrides.get("keypoint_spec", config.get("keypoint_spec", "coco"))
    if dataset is not None and isinstance(spec_name, str) and dataset != spec_name:
        raise PresetError(
            f"CPN checkpoints are single-dataset ({spec_name!r}); dataset={dataset!r} does not apply. "
            "Leave `dataset` unset."
        )

    ckpt = read_checkpoint(checkpoint)
    source = ckpt.path
    check_family(ckpt, source, (FAMILY,), "a pytorch-cpn", expect=EXPECT)
    arch = infer_architecture(ckpt.tensors, source)
    if config.get("depth") is not None and arch["depth"] != config["depth"]:
        found = (
            f"ResNet-{arch['depth']}"
            if arch["depth"]
            else f"a ResNet with stage blocks {arch['stackwise_num_blocks']}"
        )
        raise CheckpointError(
            f"{source} holds a CPN with {found}, but preset {entry_field(entry, 'name')!r} is "
            f"ResNet-{config['depth']}. Pick the preset matching the file (see `keras-pose presets --family cpn`) "
            "or convert without a preset."
        )
    spec = get_keypoint_spec(spec_name)
    if spec.num_keypoints != arch["num_keypoints"]:
        raise CheckpointError(
            f"{source} predicts {arch['num_keypoints']} keypoints but keypoint spec {spec.name!r} has "
            f"{spec.num_keypoints}; pass keypoint_spec= a spec with {arch['num_keypoints']} keypoints."
        )

    image_size = tuple(int(v) for v in overrides.get("image_size", config.get("image_size", (256, 192))))
    heatmap_size = overrides.get("heatmap_size", config.get("heatmap_size"))
    if heatmap_size is None:
        heatmap_size = (image_size[0] // 4, image_size[1] // 4)
    heatmap_size = tuple(int(v) for v in heatmap_size)
    settings = task_settings(entry, overrides)
    if not overrides.get("decoding"):
        # The release's decoding at this input size (CPN's own default without an entry).
        settings["decoding"] = sized_decoding(settings["decoding"], image_size, heatmap_size)

    deep = arch["depth"] is not None
    model = CPN.from_checkpoint_config(
        depth=arch["depth"] if deep else 50,
        stackwise_num_blocks=None if deep else arch["stackwise_num_blocks"],
        stackwise_num_filters=arch["stackwise_num_filters"],
        image_size=image_size,
        heatmap_size=heatmap_size,
        keypoint_spec=spec,
        global_channels=arch["global_channels"],
        refine_planes=arch["refine_planes"],
        refine_num_blocks=arch["refine_num_blocks"],
        upsample_bias=arch["upsample_bias"],
        dtype=overrides.get("dtype"),
        **settings,
        **{key: overrides[key] for key in ("name", "loss") if key in overrides},
    )
    return load_weights(model, ckpt.tensors, source)
