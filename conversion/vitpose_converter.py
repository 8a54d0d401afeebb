"""Convert ViTPose / ViTPose++ reference checkpoints to Keras models.

The three layouts (original ViTAE-Transformer, mmpose 1.x, HF safetensors) and
what a file determines are in `vitpose_layouts`. Everything the file determines
is inferred: width, depth, MLP width, experts, expert width, decoder, keypoint
counts, and the input size from the position table (its aspect from the preset,
the HF config.json or 4:3; when the preset names another size, the file's
wins, with a warning naming both). What the file cannot tell (attention heads,
keypoint spec, datasets) comes from the preset entry, the HF config.json, or
the standard variant for that width (`VIT_SIZES`). Every tensor is accounted
for (`KeyAccountant`); `backbone.cls_token`, `num_batches_tracked` and
container entries (meta, optimizer) are ignored.
"""

import warnings

import numpy as np

from keras_pose.conversion.checkpoint_io import read_checkpoint
from keras_pose.conversion.key_accountant import KeyAccountant
from keras_pose.conversion.port import (
    assign,
    port_batch_norm,
    port_conv,
    port_dense,
    port_layer_norm,
    port_stacked,
)
from keras_pose.conversion.settings import (
    check_agrees,
    check_overrides,
    default_keypoint_spec,
    entry_config,
    entry_field,
    preset_label,
    sized_decoding,
    task_settings,
)
from keras_pose.conversion.vitpose_layouts import VITPOSE_FAMILIES, Names, inspect_checkpoint
from keras_pose.errors import CheckpointError

# Keypoint spec by head size for files that carry nothing else.
DEFAULT_SPEC_BY_K = {17: "coco", 14: "aic", 16: "mpii", 133: "coco_wholebody"}
DEFAULT_ASPECT = (4, 3)  # H : W of 256x192
IGNORED = ("*.num_batches_tracked", "backbone.cls_token", "data_preprocessor.*")
# What the file determines: checked against the preset config and the options.
FILE_DETERMINED = ("hidden_dim", "num_layers", "mlp_dim", "patch_size", "num_experts", "part_features", "decoder")

# Keyword options of `convert` (what the file determines is only checked).
OVERRIDES = FILE_DETERMINED + (
    "num_heads",
    "image_size",
    "layer_norm_epsilon",
    "patch_padding",
    "dtype",
    "keypoint_spec",
    "preprocessing",
    "decoding",
    "datasets",
    "dataset_decodings",
)


# ------------------------------------------------------------------ resolution
def _factor_grid(n, aspect):
    """(error, (Hp, Wp)) with Hp * Wp = n and Hp / Wp closest to aspect[0] / aspect[1]."""
    target = aspect[0] / aspect[1]
    best = None
    for hp in range(1, n + 1):
        if n % hp:
            continue
        wp = n // hp
        err = abs(np.log(hp / wp) - np.log(target))
        if best is None or err < best[0]:
            best = (err, (hp, wp))
    return best


def _hf_backbone(info):
    config = info["hf_config"] or {}
    return config.get("backbone_config", config)


def _requested_image_size(overrides, config, info):
    """(image size or None, who asked: "caller", "preset" or "config.json")."""
    if overrides.get("image_size") is not None:
        return tuple(overrides["image_size"]), "caller"
    if config.get("image_size") is not None:
        return tuple(config["image_size"]), "preset"
    size = _hf_backbone(info).get("image_size")
    if size is not None:
        return (tuple(size) if not isinstance(size, int) else (size, size)), "config.json"
    return None, None


def resolve_image_size(info, requested, by, source):
    """(image_size (H, W), patch grid (Hp, Wp), cls slot present in the file) from the position table.

    The file's table fixes the number of patches; `requested` (or 4:3) fixes
    the aspect. A requested size the table does not fit is refused when the
    caller asked for it, and replaced by the file's (with a warning naming
    both) when the preset or config.json named it.
    """
    from keras_pose.models.vitpose.vitpose_layers import patch_grid_size

    rows, patch = info["pos_rows"], info["patch_size"]
    if rows is None:
        raise CheckpointError(f"{source}: the position table is not (1, N, C).")
    candidates = [rows - 1] if info["layout"] != "mmpose" else [rows, rows - 1]
    if requested is not None:
        grid = patch_grid_size(requested, patch, 2)
        if grid[0] * grid[1] in candidates:
            return tuple(int(s) for s in requested), grid, grid[0] * grid[1] == rows - 1
    best = None
    for n in candidates:
        if n >= 1:
            err, grid = _factor_grid(n, requested or DEFAULT_ASPECT)
            if best is None or err < best[0] - 1e-9:
                best = (err, grid, n)
    _, grid, n = best
    image_size = (grid[0] * patch, grid[1] * patch)
    if requested is not None:
        message = (
            f"the checkpoint {source} has a position table of {rows} rows, a {grid[0]}x{grid[1]} patch grid: "
            f"it was trained at input size {image_size[0]}x{image_size[1]} (H x W), not "
            f"{requested[0]}x{requested[1]}"
        )
        if by == "caller":
            raise CheckpointError(
                f"image_size={tuple(requested)} does not fit this file: {message}. Leave image_size out (the "
                "converter reads it from the file) or pass the file's size."
            )
        warnings.warn(
            f"The {by} names input size {requested[0]}x{requested[1]}, but {message}; converting it at "
            f"{image_size[0]}x{image_size[1]}. The preset's published accuracy does not apply to this file.",
            stacklevel=4,
        )
    return image_size, grid, n == rows - 1


def resolve_config(info, entry=None, overrides=None, source="checkpoint"):
    """The flat `ViTPose(PP).from_checkpoint_config` architecture of a checkpoint.

    Returns:
        (config, has_cls_slot, grid): `config` holds the backbone arguments,
        `image_size`, `decoder` and `deconv_filters`.
    """
    overrides = dict(overrides or {})
    config = entry_config(entry)
    hf, hf_top = _hf_backbone(info), info["hf_config"] or {}
    inferred = {name: info[name] for name in FILE_DETERMINED}
    check_agrees(inferred, config, source, preset_label(entry))
    check_agrees(inferred, overrides, source, "the conversion options")
    if config.get("qkv_bias") is not None:
        check_agrees({"qkv_bias": info["qkv_bias"]}, {"qkv_bias": bool(config["qkv_bias"])}, source,
                     preset_label(entry))
    from_hf = {}
    if hf and "use_simple_decoder" in hf_top:
        from_hf["decoder"] = "simple" if hf_top["use_simple_decoder"] else "classic"
    for ours, theirs in (("hidden_dim", "hidden_size"), ("num_layers", "num_hidden_layers")):
        if hf.get(theirs) is not None:
            from_hf[ours] = int(hf[theirs])
    check_agrees(inferred, from_hf, source, "its config.json")

    from keras_pose.models.vitpose.vitpose_backbone import standard_num_heads

    num_heads = overrides.get("num_heads") or config.get("num_heads") or hf.get("num_attention_heads")
    num_heads = num_heads or standard_num_heads(info["hidden_dim"])
    if not num_heads:
        raise CheckpointError(
            f"{source}: width {info['hidden_dim']} is not a standard ViTPose variant, and a checkpoint does not "
            "record the number of attention heads; pass num_heads=... ."
        )
    eps = next((v for v in (overrides.get("layer_norm_epsilon"), config.get("layer_norm_epsilon"),
                            hf.get("layer_norm_eps")) if v is not None), 1e-6)
    patch_padding = int(overrides.get("patch_padding", config.get("patch_padding", 2)))
    if patch_padding != 2:
        raise CheckpointError(f"ViTPose checkpoints use patch_padding=2, got {patch_padding}.")
    requested, by = _requested_image_size(overrides, config, info)
    image_size, grid, has_cls_slot = resolve_image_size(info, requested, by, source)
    resolved = {
        "image_size": list(image_size),
        "patch_size": info["patch_size"],
        "patch_padding": patch_padding,
        "hidden_dim": info["hidden_dim"],
        "num_layers": info["num_layers"],
        "num_heads": int(num_heads),
        "mlp_dim": info["mlp_dim"],
        "layer_norm_epsilon": float(eps),
        "qkv_bias": info["qkv_bias"],
        "pos_embed_cls_slot": "add" if info["layout"] != "mmpose" else "none",
        "decoder": info["decoder"],
        "deconv_filters": info["deconv_filters"] or [256, 256],
        "dtype": overrides.get("dtype"),
    }
    if info["num_experts"]:
        resolved.update(num_experts=info["num_experts"], part_features=info["part_features"])
    return resolved, has_cls_slot, grid


# ------------------------------------------------------------------ porting
def _port_backbone(acc, names, backbone, has_cls_slot):
    emb = backbone.patch_embedding
    port_conv(acc, names.patch, emb.projection)
    table = emb.position_embedding
    c = backbone.hidden_dim
    pos = acc.pop(names.pos, (1, None, c))
    if pos is not None:
        if names.layout == "mmpose" and has_cls_slot:
            pos = pos[:, 1:]  # mmcls / mmpretrain never add slot 0 to the patches
        if pos.shape[1] != table.shape[1]:
            acc.misshapen.append((names.pos, tuple(pos.shape), tuple(table.shape)))
        else:
            assign(table, pos)
    for i, block in enumerate(backbone.transformer_layers):
        keys = names.block(i)
        port_layer_norm(acc, keys["norm1"], block.norm1)
        attn = block.attention
        if "qkv" in keys:
            port_dense(acc, keys["qkv"], attn.qkv)
        else:  # HF: separate query / key / value projections
            parts = [keys[p] for p in ("q", "k", "v")]
            port_stacked(acc, [p + ".weight" for p in parts], attn.qkv.kernel, (c, c),
                         lambda ws: np.concatenate(ws, axis=0).T)
            if attn.qkv_bias:
                port_stacked(acc, [p + ".bias" for p in parts], attn.qkv.bias, (c,), np.concatenate)
        port_dense(acc, keys["proj"], attn.proj)
        port_layer_norm(acc, keys["norm2"], block.norm2)
        mlp = block.mlp
        port_dense(acc, keys["fc1"], mlp.fc1)
        port_dense(acc, keys["fc2"], mlp.fc2)
        if mlp.num_experts:
            experts = [f"{keys['experts']}.{e}" for e in range(mlp.num_experts)]
            port_stacked(acc, [e + ".weight" for e in experts], mlp.experts_kernel, (mlp.part_features, mlp.mlp_dim),
                         lambda ks: np.stack([k.T for k in ks]))
            port_stacked(acc, [e + ".bias" for e in experts], mlp.experts_bias, (mlp.part_features,), np.stack)
    port_layer_norm(acc, names.final_norm, backbone.final_layernorm)


def _port_head(acc, names, prefix, head, num_deconv):
    for role, module in names.head_modules(prefix, num_deconv):
        if role.startswith("deconv_"):
            port_conv(acc, module, head.deconvs[int(role[7:])])
        elif role.startswith("bn_"):
            port_batch_norm(acc, module, head.norms[int(role[3:])])
        else:
            port_conv(acc, module, head.final_conv)


def _spec_count(spec):
    from keras_pose.keypoints import get_keypoint_spec

    return get_keypoint_spec(spec).num_keypoints


def _plus_datasets(info, config, overrides, dataset, source):
    """Dataset names of a ViTPose++ file's heads, and their keypoint specs (checked)."""
    from keras_pose.models.vitpose.vitpose_plus_pose_estimator import VITPOSE_PLUS_DATASETS

    heads, head_ks = info["head_prefixes"], info["num_keypoints"]
    datasets = overrides.get("datasets") or config.get("datasets")
    if datasets is None:
        if len(heads) == 1 and dataset and info["layout"] == "hf_safetensors":
            datasets = [dataset]
        else:
            datasets = VITPOSE_PLUS_DATASETS[: len(heads)]
    datasets = list(datasets)
    if len(datasets) != len(heads):
        raise CheckpointError(
            f"The preset config lists {len(datasets)} datasets {datasets} but the checkpoint {source} has "
            f"{len(heads)} heads ({', '.join(p.rstrip('.') for p in heads)})."
        )
    if len(datasets) > info["num_experts"]:
        raise CheckpointError(f"{source} has {len(datasets)} heads but only {info['num_experts']} experts per block.")
    specs = list(config.get("keypoint_specs") or datasets)
    for name, spec, k in zip(datasets, specs, head_ks):
        expected = _spec_count(spec)
        if expected != k:
            raise CheckpointError(
                f"Dataset {name!r}: its keypoint spec has {expected} keypoints but the checkpoint {source} "
                f"head for it has num_keypoints={k}."
            )
    return datasets, specs


def _single_head(info, config, overrides, dataset, source):
    """(head prefix, K, keypoint spec, other heads) of a plain ViTPose file (multi-task: one head kept)."""
    from keras_pose.models.vitpose.vitpose_plus_pose_estimator import VITPOSE_PLUS_DATASETS

    heads, head_ks = info["head_prefixes"], info["num_keypoints"]
    spec = overrides.get("keypoint_spec") or config.get("keypoint_spec")
    index = 0
    if len(heads) > 1:
        # The original multi-task ViTPose (e.g. COCO+AIC+MPII): one plain ViT
        # shared by several heads, no experts. The model keeps the head of one
        # dataset (`dataset`, else the preset's keypoint spec, else the first);
        # the other heads are set aside by name.
        datasets = list(overrides.get("datasets") or config.get("datasets")
                        or VITPOSE_PLUS_DATASETS[: len(heads)])
        if len(datasets) != len(heads):
            raise CheckpointError(
                f"{source} has {len(heads)} heads ({', '.join(p.rstrip('.') for p in heads)}) "
                f"but the preset config names {len(datasets)} datasets {datasets}."
            )
        chosen = dataset or (spec if spec in datasets else datasets[0])
        if chosen not in datasets:
            raise CheckpointError(f"Unknown dataset {chosen!r}: the multi-task checkpoint {source} has heads for {datasets}.")
        index = datasets.index(chosen)
        if dataset and not overrides.get("keypoint_spec"):
            spec = dataset
    k = head_ks[index]
    spec = spec or default_keypoint_spec(k, dataset, DEFAULT_SPEC_BY_K, source)
    if _spec_count(spec) != k:
        raise CheckpointError(
            f"The keypoint spec {spec if isinstance(spec, str) else 'given'} has {_spec_count(spec)} keypoints but "
            f"the checkpoint {source} head has num_keypoints={k}."
        )
    return heads[index], k, spec, [p for i, p in enumerate(heads) if i != index]


def convert(checkpoint, entry=None, dataset=None, **overrides):
    """Convert a ViTPose / ViTPose++ checkpoint into a Keras task model.

    Args:
        checkpoint: path of a `.pth` file (original ViTPose / ViTPose++ or
            mmpose 1.x), a `model.safetensors` file, an HF model directory
            (`model.safetensors` + `config.json`), a state dict or a
            `Checkpoint`.
        entry: a `PresetEntry` (or a dict with the same fields); its flat
            `config` is checked against the file and supplies what the file
            cannot tell (heads, input aspect, keypoint spec, datasets);
            `preprocessing` / `decoding` go to the task. None: infer
            everything the file determines; ImageNet normalisation, UDP
            decoding, COCO-style spec by keypoint count, 4:3 input aspect.
        dataset: ViTPose++: the active dataset (default: the entry's
            `dataset`, else the first). With an entry whose task_class is
            "ViTPose" the dataset's expert is fused into a plain ViTPose.
            Plain ViTPose: the keypoint spec name.
        **overrides: `num_heads`, `image_size` (H, W), `layer_norm_epsilon`,
            `dtype`, `keypoint_spec`, `preprocessing`, `decoding`, `datasets`
            (ViTPose++ dataset names), `dataset_decodings` and checks of
            file-determined values (`hidden_dim`, `num_layers`, `mlp_dim`,
            `decoder`, ...).

    Returns:
        A `keras_pose.models.ViTPose` or `ViTPosePP` with the weights loaded.

    Raises:
        CheckpointError: wrong family, config disagreement, or missing /
            unexpected / misshapen tensors (all listed).
    """
    from keras_pose.models.vitpose.vitpose_plus_pose_estimator import ViTPosePP
    from keras_pose.models.vitpose.vitpose_pose_estimator import ViTPose

    check_overrides(overrides, OVERRIDES, "ViTPose")
    ckpt = read_checkpoint(checkpoint)
    source = ckpt.path
    info = inspect_checkpoint(ckpt)
    names = Names(info["layout"])
    arch, has_cls_slot, grid = resolve_config(info, entry, overrides, source)
    config = entry_config(entry)
    dataset = dataset or entry_field(entry, "dataset")
    task_class = entry_field(entry, "task_class")
    settings = task_settings(entry, overrides)
    if not overrides.get("decoding"):
        settings["decoding"] = sized_decoding(settings["decoding"], arch["image_size"], (4 * grid[0], 4 * grid[1]))
    for prefix, k in zip(info["head_prefixes"], info["num_keypoints"]):
        if k is None:
            acc = KeyAccountant(ckpt.tensors, source, "vitpose")
            acc.mark_missing(names.final_conv_weight(prefix))
            raise CheckpointError(acc.report("ViTPose model"))
    acc = KeyAccountant(ckpt.tensors, source, "vitpose", ignore=IGNORED, family_aliases=VITPOSE_FAMILIES)

    if info["num_experts"]:
        if task_class == "ViTPose" and not dataset:
            raise CheckpointError(
                f"{source} is a ViTPose++ checkpoint; a plain ViTPose preset needs the dataset whose expert "
                "to fuse (entry.dataset or dataset=...)."
            )
        datasets, specs = _plus_datasets(info, config, overrides, dataset, source)
        active = dataset if (dataset and task_class != "ViTPose") else datasets[0]
        for name in (active, dataset if task_class == "ViTPose" else active):
            if name not in datasets:
                raise CheckpointError(f"Unknown dataset {name!r}; the checkpoint has heads for {datasets}.")
        model = ViTPosePP.from_checkpoint_config(
            **arch,
            datasets=datasets,
            dataset=active,
            num_keypoints=info["num_keypoints"],
            keypoint_specs=specs,
            dataset_decodings=overrides.get("dataset_decodings") or config.get("dataset_decodings"),
            **settings,
        )
        _port_backbone(acc, names, model.backbone, has_cls_slot)
        for prefix, head in zip(info["head_prefixes"], model.heads.heads):
            _port_head(acc, names, prefix, head, info["num_deconv"])
        acc.finish("ViTPose++ model")
        return model.fuse_experts(dataset) if task_class == "ViTPose" else model

    prefix, k, spec, unused_heads = _single_head(info, config, overrides, dataset, source)
    model = ViTPose.from_checkpoint_config(**arch, num_keypoints=k, keypoint_spec=spec, **settings)
    _port_backbone(acc, names, model.backbone, has_cls_slot)
    _port_head(acc, names, prefix, model.head, info["num_deconv"])
    for other in unused_heads:
        acc.ignore(other + "*")
    acc.finish("ViTPose model")
    return model
