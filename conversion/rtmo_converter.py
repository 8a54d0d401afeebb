"""mmpose 1.x RTMO checkpoints -> `keras_pose.models.rtmo.RTMO` (or the raw `RTMONetwork`).

Layout (`{'meta', 'state_dict'}`, published in the legacy non-zip torch
format; `read_checkpoint` loads it with `weights_only=True`):

- `backbone.*`: CSPDarknet (`stem.conv`, `stage{1..4}.{0,1,2}` ConvModules
  with `.conv.weight` and `.bn.*`);
- `neck.*`: HybridEncoder (`input_proj.i`, `encoder.0.layers.0` (attention
  `self_attn.attn.in_proj_*` / `out_proj.*`, `ffn.layers.{0.0,1}`,
  `norms.{0,1}`), the `sincos_pos_enc.dim_t` buffer, `lateral_convs.j`,
  `fpn_blocks.j`, `downsample_convs.j`, `pan_blocks.j`, `projector.convs.i`);
- `head.head_module.*`: the per-level branches (`conv_cls`, `out_cls`,
  `conv_pose`, `out_bbox`, `out_kpt_vis`, `out_pose`, and the training-only
  `out_kpt_reg`);
- `head.dcc.*`: the dynamic coordinate classifier (DCC), the keypoint
  decoder run after NMS, and its training-only `sigma_fc`;
- `head.loss_oks.sigmas`: the OKS loss's keypoint sigmas (a buffer).

The file determines the size (deepen / widen factors, matched to the
released t / s / m / l where they fit), the keypoint count and every width;
the input size (not in the file) comes from the `image_size` override, else
the release of that size (t: 416x416, others 640x640).

Every tensor is accounted for: ported (the DCC into `RTMONetwork.dcc`), or
in `TRAINING_ONLY` (used by the reference only while training, listed by
name).
"""

import re

import numpy as np

from keras_pose.conversion.checkpoint_io import read_checkpoint
from keras_pose.conversion.families import check_family
from keras_pose.conversion.key_accountant import KeyAccountant, out_channels
from keras_pose.conversion.port import assign, port_conv, port_conv_module, port_dense, port_layer_norm, port_tensor
from keras_pose.conversion.settings import check_agrees, check_overrides, require_tensor
from keras_pose.errors import CheckpointError

FAMILY = "rtmo"
KIND = "an mmpose RTMO"
OVERRIDES = ("image_size", "dtype", "name", "keypoint_spec", "preprocessing", "decoding")
NETWORK_OVERRIDES = ("image_size", "dtype", "name")
WRITES_PRESETS = True
# The keypoint spec of a file that names none, by its keypoint count (RTMO releases: COCO / body7, CrowdPose).
DEFAULT_SPEC = {17: "coco", 14: "crowdpose"}

# Tensors the reference uses only in training (the Keras network does not hold them).
TRAINING_ONLY = (
    "head.head_module.out_kpt_reg.*",  # keypoint proxy regression (SimOTA's OKS cost, OKS loss)
    "head.dcc.sigma_fc.*",  # the predicted sigma of the MLE coordinate-classification loss
    "head.loss_oks.sigmas",  # the OKS loss's per-keypoint sigmas (the keypoint spec's)
)


def _width(tensors, key, source, what):
    require_tensor(tensors, key, source, what, KIND)
    return out_channels(tensors, key)


def _count(tensors, pattern):
    """1 + the largest index captured by `pattern` among the names (0 if none)."""
    found = [int(m.group(1)) for k in tensors if (m := re.match(pattern, k))]
    return max(found) + 1 if found else 0


def _factors(stem_width, depths, neck_blocks, source):
    """(deepen_factor, widen_factor, size name or None) of a file's stem width, stage depths and CSPRep depth.

    A released size (t / s / m / l) where one fits; otherwise widen = stem / 64
    and the first deepen factor d among depths[1] / 9 and neck_blocks / 3 with
    max(round(n d), 1) = depths (n = 3, 9, 9, 3) and round(3 d) = neck_blocks.
    """
    from keras_pose.models.rtmo.rtmo_backbone import RTMO_SIZES, csp_darknet_depths, csp_darknet_widths

    def fits(deepen):
        return csp_darknet_depths(deepen) == depths and round(3 * deepen) == neck_blocks

    for size, spec in RTMO_SIZES.items():
        if csp_darknet_widths(spec["widen_factor"])[0] == stem_width and fits(spec["deepen_factor"]):
            return spec["deepen_factor"], spec["widen_factor"], size
    # A released factor where it fits (0.33 rather than 1 / 3), else the one the depths give.
    released = sorted({spec["deepen_factor"] for spec in RTMO_SIZES.values()})
    for deepen in (*released, depths[1] / 9.0, neck_blocks / 3.0):
        if deepen > 0 and fits(deepen):
            return deepen, stem_width / 64.0, None
    raise CheckpointError(
        f"Checkpoint {source}: CSPDarknet stage depths {depths} and {neck_blocks} RepVGG blocks per neck CSPRep "
        "layer fit no deepen factor d (max(round(n d), 1) for n = 3, 9, 9, 3 and round(3 d)); it is not "
        + KIND + " checkpoint."
    )


def infer_config(tensors, source="checkpoint"):
    """`RTMONetwork` arguments (and the size name) determined by an mmpose RTMO state dict."""
    stages = [
        _count(tensors, rf"backbone\.stage{i}\.{2 if i == 4 else 1}\.blocks\.(\d+)\.") for i in range(1, 5)
    ]
    stem = _width(tensors, "backbone.stem.conv.conv.weight", source, "stem width")
    neck_blocks = _count(tensors, r"neck\.fpn_blocks\.0\.bottlenecks\.(\d+)\.")
    deepen, widen, size = _factors(stem, tuple(stages), neck_blocks, source)
    h = "head.head_module."
    levels = _count(tensors, r"head\.head_module\.out_cls\.(\d+)\.")
    if levels not in (2, 3):
        raise CheckpointError(f"Checkpoint {source} has {levels} head levels (out_cls.*); RTMO has 2 (or 3).")
    pose_channels = _width(tensors, h + "conv_pose.0.0.conv.weight", source, "pose branch width")
    require_tensor(tensors, h + "conv_pose.0.1.conv.weight", source, "pose branch groups", KIND)
    per_group = int(tensors[h + "conv_pose.0.1.conv.weight"].shape[1])
    config = {
        "deepen_factor": deepen,
        "widen_factor": widen,
        "num_keypoints": _width(tensors, h + "out_kpt_vis.0.weight", source, "keypoint count"),
        "featmap_strides": (16, 32) if levels == 2 else (8, 16, 32),
        "hidden_dim": _width(tensors, "neck.input_proj.0.conv.weight", source, "neck width"),
        "feedforward_channels": _width(tensors, "neck.encoder.0.layers.0.ffn.layers.0.0.weight", source,
                                       "encoder FFN width"),
        "neck_out_channels": _width(tensors, "neck.projector.convs.0.conv.weight", source, "neck output width"),
        "pose_vec_channels": _width(tensors, h + "out_pose.0.weight", source, "pose vector width"),
        "cls_feat_channels": _width(tensors, h + "conv_cls.0.0.conv.weight", source, "classification width"),
        "channels_per_group": per_group,
        "num_groups": max(pose_channels // max(per_group, 1), 1),
        "stacked_convs": _count(tensors, r"head\.head_module\.conv_cls\.0\.(\d+)\."),
        "pe_temperature": _temperature(tensors, "neck.sincos_pos_enc.dim_t", source, 10000.0),
    }
    config.update(_dcc_config(tensors, config["num_keypoints"], source))
    return config, size


def _temperature(tensors, key, source, default):
    """The temperature T of a sine encoding's `dim_t` = T ** (arange(n) / n) buffer (5 significant digits).

    `default` (the reference's) when the file lacks the buffer: the accountant then lists it as missing.
    """
    if key not in tensors:
        return default
    dim_t = np.asarray(tensors[key], np.float64)
    if dim_t.ndim != 1 or dim_t.shape[0] < 2 or not np.all(np.isfinite(dim_t)) or dim_t[-1] <= 0:
        raise CheckpointError(
            f"Checkpoint {source}: {key} {tuple(dim_t.shape)} is not a sine encoding's frequencies "
            "(T ** (arange(n) / n)); the file is corrupt."
        )
    n = dim_t.shape[0]
    return float(f"{dim_t[-1] ** (n / (n - 1)):.5g}")  # dim_t[-1] = T ** ((n - 1) / n)


def _dcc_config(tensors, num_keypoints, source):
    """The DCC settings the file determines (`RTMONetwork` dcc_* arguments)."""
    d = "head.dcc."
    feat = _width(tensors, d + "pose_to_kpts.0.weight", source, "DCC keypoint feature width") // num_keypoints
    s = int(require_tensor(tensors, d + "gau.gamma", source, "GAU attention width", KIND).shape[-1])
    uv = _width(tensors, d + "gau.uv.weight", source, "GAU width")
    return {
        "dcc_feat_channels": feat,
        "dcc_num_bins": tuple(
            int(require_tensor(tensors, d + f"{axis}_bins", source, f"{axis} bin count", KIND).shape[0])
            for axis in ("x", "y")
        ),
        "dcc_spe_channels": 2 * int(require_tensor(tensors, d + "spe.dim_t", source, "bin encoding width",
                                                   KIND).shape[0]),
        "dcc_spe_temperature": _temperature(tensors, d + "spe.dim_t", source, 300.0),
        "dcc_gau_s": s,
        "dcc_gau_expansion": max((uv - s) // (2 * max(feat, 1)), 1),
    }


def _port_layers(acc, model, prefix):
    """Port every ConvModule / Conv2D of a sub-model's `torch_layer_paths` from `<prefix><path>`."""
    from keras_pose.layers import ConvModule

    for name, path in model.torch_layer_paths.items():
        layer = model.get_layer(name)
        if isinstance(layer, ConvModule):
            norm = f"{prefix}{path}.bn" if layer.bn is not None else None
            port_conv_module(acc, layer, f"{prefix}{path}.conv", norm)
        elif hasattr(layer, "kernel") and len(layer.kernel.shape) == 4:
            port_conv(acc, f"{prefix}{path}", layer)


def port_encoder_layer(acc, layer, prefix, dim_t_key):
    """A mmcv DETR encoder layer at `prefix` (+ the sine encoding's `dim_t` buffer) into a `HybridEncoderLayer`."""
    c = layer.hidden_dim
    port_tensor(acc, f"{prefix}.self_attn.attn.in_proj_weight", layer.in_proj.kernel, (3 * c, c), np.transpose)
    port_tensor(acc, f"{prefix}.self_attn.attn.in_proj_bias", layer.in_proj.bias, (3 * c,))
    port_dense(acc, f"{prefix}.self_attn.attn.out_proj", layer.out_proj)
    port_dense(acc, f"{prefix}.ffn.layers.0.0", layer.ffn_fc1)
    port_dense(acc, f"{prefix}.ffn.layers.1", layer.ffn_fc2)
    port_layer_norm(acc, f"{prefix}.norms.0", layer.norm1)
    port_layer_norm(acc, f"{prefix}.norms.1", layer.norm2)
    dim_t = acc.pop(dim_t_key, tuple(layer.dim_t.shape))
    if dim_t is not None:
        assign(layer.dim_t, dim_t)


def port_dcc(acc, dcc, prefix="head.dcc"):
    """mmpose's DCC at `prefix` into a `DynamicCoordinateClassifier` (its training-only sigma_fc excepted)."""
    from keras_pose.conversion.port import port_batch_norm

    port_dense(acc, f"{prefix}.pose_to_kpts.0", dcc.pose_to_kpts)
    port_batch_norm(acc, f"{prefix}.pose_to_kpts.1", dcc.pose_to_kpts_bn)
    port_dense(acc, f"{prefix}.gau.uv", dcc.gau_uv)
    port_dense(acc, f"{prefix}.gau.o", dcc.gau_o)
    port_dense(acc, f"{prefix}.x_fc", dcc.x_fc)
    port_dense(acc, f"{prefix}.y_fc", dcc.y_fc)
    for key, variable in (
        ("gau.gamma", dcc.gau_gamma),
        ("gau.beta", dcc.gau_beta),
        ("gau.ln.g", dcc.gau_ln_g),
        ("gau.res_scale.scale", dcc.gau_res_scale),
        ("pos_enc", dcc.pos_enc),
        ("x_bins", dcc.x_bins),
        ("y_bins", dcc.y_bins),
        ("spe.dim_t", dcc.spe_dim_t),
    ):
        port_tensor(acc, f"{prefix}.{key}", variable)


def port_network(acc, network):
    """Port backbone, neck and head module of an `RTMONetwork` through the accountant."""
    _port_layers(acc, network.backbone, "backbone.")
    _port_layers(acc, network.neck, "neck.")
    encoder_path = "encoder.0.layers.0"
    encoder = network.neck.get_layer(next(n for n, p in network.neck.torch_layer_paths.items() if p == encoder_path))
    port_encoder_layer(acc, encoder, "neck." + encoder_path, "neck.sincos_pos_enc.dim_t")
    _port_layers(acc, network.head, "head.head_module.")
    port_dcc(acc, network.dcc)


def _read(checkpoint, entry, overrides, allowed):
    """(ckpt, inferred config, size name, image size) of an RTMO file, checked against the entry."""
    from keras_pose.conversion.settings import entry_config, preset_label
    from keras_pose.models.rtmo import RTMO_SIZES

    check_overrides(overrides, allowed, FAMILY)
    ckpt = read_checkpoint(checkpoint)
    check_family(ckpt, ckpt.path, (FAMILY,), KIND, required=True)
    config, size = infer_config(ckpt.tensors, ckpt.path)
    given = entry_config(entry)
    as_tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if k in config}
    check_agrees(config, as_tuples, ckpt.path, preset_label(entry))
    image_size = overrides.get("image_size") or given.get("image_size")
    if image_size is None:
        image_size = RTMO_SIZES[size]["image_size"] if size else (640, 640)
    return ckpt, config, size, tuple(int(v) for v in image_size)


def _port(ckpt, network, config, size):
    acc = KeyAccountant(
        ckpt.tensors,
        source=ckpt.path,
        family=FAMILY,
        ignore=("*.num_batches_tracked", *TRAINING_ONLY),
    )
    port_network(acc, network)
    label = f"RTMO-{size}" if size else f"RTMO (deepen {config['deepen_factor']}, widen {config['widen_factor']})"
    acc.finish(what=f"{label} network ({config['num_keypoints']} keypoints)")


def convert_network(checkpoint, entry=None, **overrides):
    """Convert an mmpose 1.x RTMO checkpoint into its raw `RTMONetwork` (no task settings).

    Args:
        checkpoint: path of the `.pth` file, a mapping name -> tensor, or a
            `checkpoint_io.Checkpoint`.
        entry: a `PresetEntry` whose config states the architecture (checked
            against the file), or None.
        **overrides: `image_size` (H, W), multiples of 32; `dtype`; `name`.

    Raises:
        CheckpointError: another family's file, or a list of every missing,
            unexpected, misshapen and non-finite tensor.
    """
    from keras_pose.models.rtmo import RTMONetwork

    ckpt, config, size, image_size = _read(checkpoint, entry, overrides, NETWORK_OVERRIDES)
    network = RTMONetwork(image_size=image_size, dtype=overrides.get("dtype"),
                          name=overrides.get("name") or (f"rtmo_{size}" if size else "rtmo"), **config)
    _port(ckpt, network, config, size)
    return network


def convert(checkpoint, entry=None, dataset=None, **overrides):
    """Convert an mmpose 1.x RTMO checkpoint into an `RTMO` task model.

    Args:
        checkpoint: path of the `.pth` file, a mapping name -> tensor, or a
            `checkpoint_io.Checkpoint`.
        entry: the `PresetEntry` it was released as (input size, keypoint
            spec, pre-processing, decoding settings), or None.
        dataset: keypoint spec name when neither the entry nor the overrides
            give one (default: "coco" for 17 keypoints, "crowdpose" for 14).
        **overrides: `image_size` (H, W), multiples of 32; `keypoint_spec`;
            `preprocessing`; `decoding` (``score_threshold``,
            ``nms_threshold``, ``max_instances``, ``max_candidates``);
            `dtype`; `name`.

    Returns:
        a `keras_pose.models.rtmo.RTMO` with the checkpoint's weights.

    Raises:
        CheckpointError: another family's file, a keypoint count no spec has
            (pass `keypoint_spec`), or a list of every missing, unexpected,
            misshapen and non-finite tensor.
    """
    from keras_pose.conversion.settings import default_keypoint_spec, entry_config, task_settings
    from keras_pose.models.rtmo import RTMO

    ckpt, config, size, image_size = _read(checkpoint, entry, overrides, OVERRIDES)
    k = config["num_keypoints"]
    spec = overrides.get("keypoint_spec") or entry_config(entry).get("keypoint_spec")
    if spec is None:
        spec = default_keypoint_spec(k, dataset, DEFAULT_SPEC, ckpt.path)
    name = overrides.get("name") or (entry.name if entry is not None and getattr(entry, "name", None) else None)
    model = RTMO.from_checkpoint_config(
        image_size=image_size,
        keypoint_spec=spec,
        dtype=overrides.get("dtype"),
        name=name or (f"rtmo_{size}" if size else "rtmo"),
        **task_settings(entry, overrides),
        **config,
    )
    _port(ckpt, model.backbone, config, size)
    return model


__all__ = [
    "TRAINING_ONLY",
    "WRITES_PRESETS",
    "convert",
    "convert_network",
    "infer_config",
    "port_dcc",
    "port_encoder_layer",
    "port_network",
]
