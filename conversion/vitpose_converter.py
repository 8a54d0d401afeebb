"""Convert ViTPose / ViTPose++ reference checkpoints to Keras models.

Layouts (detected from the keys):

- "vitpose_original": ViTAE-Transformer/ViTPose `.pth` (mmpose 0.x):
  `backbone.patch_embed.proj`, `backbone.pos_embed` (1, 1+N, C; row 0 added
  to every patch), `backbone.blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
  mlp.fc2[,mlp.experts.E]}`, `backbone.last_norm`, `keypoint_head.*` and for
  the ViTPose++ multi-dataset files `associate_keypoint_heads.{0..4}.*`. The
  per-dataset files that ViTPose++'s `tools/model_split.py` writes are plain
  ViTPose files (fc2 already fused, one head).
- "mmpose": mmpose 1.x releases (mmcls/mmpretrain ViT):
  `backbone.patch_embed.projection`, `backbone.pos_embed` (1, 1+N, C with
  row 0 *dropped*, or 1, N, C), `backbone.layers.N.{ln1,attn.qkv,attn.proj,ln2,
  ffn.layers.0.0,ffn.layers.1}`, `backbone.ln1`, `head.*`.
- "hf_safetensors": Hugging Face `VitPoseForPoseEstimation`
  (`model.safetensors` + `config.json`): `backbone.embeddings.*`,
  `backbone.encoder.layer.N.*` (separate q/k/v), `backbone.layernorm`,
  `head.{deconv1,batchnorm1,deconv2,batchnorm2,conv}` or `head.conv`
  (simple decoder). An HF ViTPose++ file holds the experts but one head.

What the file determines (width, depth, MLP width, experts, expert width,
decoder, keypoint counts, position-table length) is inferred; what it cannot
(attention heads, the input aspect) comes from the preset entry, the HF
config.json, or the standard variant for that width / 4:3. Every tensor is
accounted for (`KeyAccountant`); `backbone.cls_token`, `num_batches_tracked`
and container entries (meta, optimizer) are ignored.
"""

import re

import numpy as np

from keras_pose.conversion.checkpoint_io import KeyAccountant, guess_family, out_channels, read_checkpoint
from keras_pose.errors import CheckpointError

LAYOUTS = ("vitpose_original", "mmpose", "hf_safetensors")
VITPOSE_FAMILIES = ("vitpose", "vitpose_plus", "vitpose_mmpose", "vitpose_hf")
# Keypoint spec by head size for files that carry nothing else.
DEFAULT_SPEC_BY_K = {17: "coco", 14: "aic", 16: "mpii", 133: "coco_wholebody"}
DEFAULT_ASPECT = (4, 3)  # H : W of 256x192
IGNORED = ("*.num_batches_tracked", "backbone.cls_token", "data_preprocessor.*")

# Keyword options of `convert` (what the file determines is only checked).
OVERRIDES = (
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
    "hidden_dim",
    "num_layers",
    "mlp_dim",
    "patch_size",
    "num_experts",
    "part_features",
    "decoder",
)


# ------------------------------------------------------------------- layout
def detect_layout(keys):
    """"vitpose_original", "mmpose" or "hf_safetensors" from the key names (None if none)."""
    keys = list(keys)
    if any(re.match(r"backbone\.blocks\.\d+\.", k) for k in keys):
        return "vitpose_original"
    if any(re.match(r"backbone\.layers\.\d+\.(ln1|ln2|attn|ffn)\.", k) for k in keys):
        return "mmpose"
    if any(re.match(r"backbone\.encoder\.layer\.\d+\.", k) for k in keys):
        return "hf_safetensors"
    return None


class _Names:
    """Key names of one layout."""

    def __init__(self, layout):
        self.layout = layout
        if layout == "vitpose_original":
            self.pos = "backbone.pos_embed"
            self.patch = "backbone.patch_embed.proj."
            self.final_norm = "backbone.last_norm."
            self.block_re = r"backbone\.blocks\.(\d+)\."
        elif layout == "mmpose":
            self.pos = "backbone.pos_embed"
            self.patch = "backbone.patch_embed.projection."
            self.final_norm = "backbone.ln1."
            self.block_re = r"backbone\.layers\.(\d+)\."
        else:
            self.pos = "backbone.embeddings.position_embeddings"
            self.patch = "backbone.embeddings.patch_embeddings.projection."
            self.final_norm = "backbone.layernorm."
            self.block_re = r"backbone\.encoder\.layer\.(\d+)\."

    def block(self, i):
        if self.layout == "vitpose_original":
            p = f"backbone.blocks.{i}."
            return {"norm1": p + "norm1.", "qkv": p + "attn.qkv.", "proj": p + "attn.proj.",
                    "norm2": p + "norm2.", "fc1": p + "mlp.fc1.", "fc2": p + "mlp.fc2.",
                    "experts": p + "mlp.experts."}
        if self.layout == "mmpose":
            p = f"backbone.layers.{i}."
            return {"norm1": p + "ln1.", "qkv": p + "attn.qkv.", "proj": p + "attn.proj.",
                    "norm2": p + "ln2.", "fc1": p + "ffn.layers.0.0.", "fc2": p + "ffn.layers.1.",
                    "experts": p + "ffn.experts."}
        p = f"backbone.encoder.layer.{i}."
        return {"norm1": p + "layernorm_before.", "q": p + "attention.attention.query.",
                "k": p + "attention.attention.key.", "v": p + "attention.attention.value.",
                "proj": p + "attention.output.dense.", "norm2": p + "layernorm_after.",
                "fc1": p + "mlp.fc1.", "fc2": p + "mlp.fc2.", "experts": p + "mlp.experts."}

    def head_prefixes(self, keys):
        """Head prefixes in dataset-index order."""
        if self.layout == "vitpose_original":
            heads = ["keypoint_head."]
            assoc = sorted({int(m.group(1)) for k in keys for m in [re.match(r"associate_keypoint_heads\.(\d+)\.", k)] if m})
            return heads + [f"associate_keypoint_heads.{j}." for j in assoc]
        return ["head."]

    def head_keys(self, prefix, num_deconv):
        """[(role, key prefix / key)] of one head; roles deconv_i, bn_i, final_conv."""
        out = []
        if self.layout == "hf_safetensors":
            for i in range(num_deconv):
                out += [(f"deconv_{i}", f"{prefix}deconv{i + 1}.weight"), (f"bn_{i}", f"{prefix}batchnorm{i + 1}.")]
            out.append(("final_conv", prefix + "conv."))
        else:
            for i in range(num_deconv):
                out += [(f"deconv_{i}", f"{prefix}deconv_layers.{3 * i}.weight"), (f"bn_{i}", f"{prefix}deconv_layers.{3 * i + 1}.")]
            out.append(("final_conv", prefix + "final_layer."))
        return out

    def num_deconv(self, keys, prefix):
        if self.layout == "hf_safetensors":
            return len({m.group(1) for k in keys for m in [re.match(re.escape(prefix) + r"deconv(\d+)\.weight$", k)] if m})
        return len({m.group(1) for k in keys for m in [re.match(re.escape(prefix) + r"deconv_layers\.(\d+)\.weight$", k)] if m and int(m.group(1)) % 3 == 0})

    def final_conv_weight(self, prefix):
        return prefix + ("conv.weight" if self.layout == "hf_safetensors" else "final_layer.weight")


# ---------------------------------------------------------------- inspection
def _entry_get(entry, name, default=None):
    if entry is None:
        return default
    if isinstance(entry, dict):
        return entry.get(name, default)
    return getattr(entry, name, default)


def _wrong_family(ckpt):
    family, description = guess_family(ckpt.tensors.keys())
    what = f"it looks like {description} (family {family!r})" if family else (
        "its keys match no supported family; first keys: " + ", ".join(list(ckpt.tensors)[:5])
    )
    return CheckpointError(
        f"{ckpt.path} is not a ViTPose / ViTPose++ checkpoint: {what}. Convert it with that family's "
        "converter or preset (`keras-pose presets` lists them)."
    )


def _factor_grid(n, aspect):
    """(Hp, Wp) with Hp * Wp = n and Hp / Wp closest to aspect[0] / aspect[1]."""
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


def inspect_checkpoint(checkpoint):
    """What a ViTPose checkpoint file determines.

    Args:
        checkpoint: a path (file or HF directory) or a `Checkpoint`.

    Returns:
        dict: layout, hidden_dim, num_layers, mlp_dim, patch_size,
        qkv_bias, num_experts, part_features, decoder, num_deconv,
        head_prefixes, num_keypoints (per head), pos_rows, hf_config.
    """
    ckpt = checkpoint if hasattr(checkpoint, "tensors") else read_checkpoint(checkpoint)
    keys = list(ckpt.tensors)
    layout = detect_layout(keys)
    if layout is None:
        raise _wrong_family(ckpt)
    names = _Names(layout)
    t = ckpt.tensors

    def need(key):
        if key not in t:
            raise CheckpointError(
                f"{ckpt.path}: a {layout} ViTPose checkpoint must hold {key!r}; it does not "
                f"(first keys: {', '.join(keys[:5])})."
            )
        return t[key]

    # Widths come from the biases where present, so a transposed weight is
    # reported as misshapen (in the checkpoint's layout) instead of changing
    # the model the rest of the file describes.
    patch_w = need(names.patch + "weight")
    hidden_dim, patch_size = out_channels(t, names.patch + "weight"), patch_w.shape[2]
    depth = 1 + max(int(re.match(names.block_re, k).group(1)) for k in keys if re.match(names.block_re, k))
    block = names.block(0)
    need(block["fc1"] + "weight")
    mlp_dim = out_channels(t, block["fc1"] + "weight")
    qkv_bias = (block.get("qkv", block.get("q", "")) + "bias") in t
    experts = sorted({int(m.group(1)) for k in keys for m in [re.match(re.escape(block["experts"]) + r"(\d+)\.weight$", k)] if m})
    num_experts = len(experts)
    part_features = out_channels(t, block["experts"] + "0.weight") if num_experts else 0
    pos = need(names.pos)
    head_prefixes = names.head_prefixes(keys)
    num_deconv = names.num_deconv(keys, head_prefixes[0])
    final_w = need(names.final_conv_weight(head_prefixes[0]))
    decoder = "classic" if num_deconv else "simple"
    if not num_deconv and final_w.shape[-1] != 3:
        raise CheckpointError(
            f"{ckpt.path}: the head has no deconvolutions and a {final_w.shape[-1]}x{final_w.shape[-1]} final "
            "conv; only the classic (deconv) and simple (3x3 conv after x4 upsampling) ViTPose heads are supported."
        )
    deconv_filters = []
    for role, key in names.head_keys(head_prefixes[0], num_deconv):
        if role.startswith("deconv_"):
            deconv_filters.append(int(need(key).shape[1]))  # ConvTranspose2d (in, out, kh, kw)
    num_keypoints = []
    for prefix in head_prefixes:
        key = names.final_conv_weight(prefix)
        num_keypoints.append(None if key not in t else out_channels(t, key))
    return {
        "layout": layout,
        "hidden_dim": int(hidden_dim),
        "num_layers": int(depth),
        "mlp_dim": int(mlp_dim),
        "patch_size": int(patch_size),
        "qkv_bias": bool(qkv_bias),
        "num_experts": num_experts,
        "part_features": int(part_features),
        "decoder": decoder,
        "num_deconv": num_deconv,
        "deconv_filters": deconv_filters,
        "head_prefixes": head_prefixes,
        "num_keypoints": num_keypoints,
        "pos_rows": int(pos.shape[1]) if pos.ndim == 3 else None,
        "hf_config": ckpt.config,
    }


# ------------------------------------------------------------------ resolution
def _check(name, from_entry, from_file, source):
    if from_entry is not None and from_file is not None and from_entry != from_file:
        raise CheckpointError(
            f"The preset config says {name}={from_entry!r} but the checkpoint {source} has {name}={from_file!r}. "
            "Use the preset that matches this file (or drop the preset and let the converter infer it)."
        )


def _resolve_grid(info, layout, image_size, aspect, source):
    """(grid (Hp, Wp), cls slot present in the file (bool))."""
    rows = info["pos_rows"]
    if rows is None:
        raise CheckpointError(f"{source}: the position table is not (1, N, C).")
    candidates = [rows - 1] if layout != "mmpose" else [rows, rows - 1]
    if image_size is not None:
        from keras_pose.models.vitpose.vitpose_layers import patch_grid_size

        grid = patch_grid_size(image_size, info["patch_size"], 2)
        n = grid[0] * grid[1]
        if n not in candidates:
            hp, wp = _factor_grid(max(candidates[-1], 1), aspect)[1]
            size = info["patch_size"]
            raise CheckpointError(
                f"The preset/config image_size {tuple(image_size)} gives a {grid[0]}x{grid[1]} patch grid "
                f"({n} tokens) but the checkpoint {source} has a position table of {rows} rows "
                f"(the file's input size is probably ({hp * size}, {wp * size}))."
            )
        return grid, n == rows - 1
    best = None
    for n in candidates:
        if n < 1:
            continue
        err, grid = _factor_grid(n, aspect)
        if best is None or err < best[0] - 1e-9:
            best = (err, grid, n)
    return best[1], best[2] == rows - 1


def _hf_backbone_config(config):
    if not config:
        return {}
    return config.get("backbone_config", config)


def resolve_config(info, entry=None, dataset=None, overrides=None, source="checkpoint"):
    """Model constructor arguments for a checkpoint (see `convert`)."""
    overrides = dict(overrides or {})
    entry_config = dict(_entry_get(entry, "config", {}) or {})
    entry_backbone = dict(entry_config.get("backbone", {}) or {})
    for key in ("num_experts", "part_features"):
        if key in entry_config and key not in entry_backbone:
            entry_backbone[key] = entry_config[key]
    hf = _hf_backbone_config(info["hf_config"])
    hf_top = info["hf_config"] or {}

    # What the file determines, checked against the entry and the overrides.
    for name in ("hidden_dim", "num_layers", "mlp_dim", "patch_size", "num_experts", "part_features"):
        _check(name, entry_backbone.get(name), info[name], source)
        _check(name, overrides.get(name), info[name], source)
    if entry_backbone.get("qkv_bias") is not None:
        _check("qkv_bias", bool(entry_backbone["qkv_bias"]), info["qkv_bias"], source)
    _check("decoder", entry_config.get("decoder"), info["decoder"], source)
    _check("decoder", overrides.get("decoder"), info["decoder"], source)
    if hf and "use_simple_decoder" in hf_top:
        _check("decoder (config.json use_simple_decoder)", "simple" if hf_top["use_simple_decoder"] else "classic",
               info["decoder"], source)
    if hf.get("hidden_size") is not None:
        _check("hidden_size (config.json)", int(hf["hidden_size"]), info["hidden_dim"], source)
    if hf.get("num_hidden_layers") is not None:
        _check("num_hidden_layers (config.json)", int(hf["num_hidden_layers"]), info["num_layers"], source)

    from keras_pose.models.vitpose.vitpose_backbone import standard_num_heads

    num_heads = overrides.get("num_heads") or entry_backbone.get("num_heads") or hf.get("num_attention_heads")
    num_heads = num_heads or standard_num_heads(info["hidden_dim"])
    if not num_heads:
        raise CheckpointError(
            f"{source}: width {info['hidden_dim']} is not a standard ViTPose variant, and a checkpoint does not "
            "record the number of attention heads; pass num_heads=... ."
        )
    if "layer_norm_epsilon" in overrides:
        eps = overrides["layer_norm_epsilon"]
    elif "layer_norm_epsilon" in entry_backbone:
        eps = entry_backbone["layer_norm_epsilon"]
    elif hf.get("layer_norm_eps") is not None:
        eps = hf["layer_norm_eps"]
    else:
        eps = 1e-6
    patch_padding = int(overrides.get("patch_padding", entry_backbone.get("patch_padding", 2)))
    if patch_padding != 2:
        raise CheckpointError(f"ViTPose checkpoints use patch_padding=2, got {patch_padding}.")

    image_size = overrides.get("image_size") or entry_config.get("image_size") or entry_backbone.get("image_size")
    if image_size is None and hf.get("image_size") is not None:
        size = hf["image_size"]
        image_size = [size, size] if isinstance(size, int) else list(size)
    aspect = tuple(image_size) if image_size is not None else DEFAULT_ASPECT
    grid, has_cls_slot = _resolve_grid(info, info["layout"], image_size, aspect, source)
    if image_size is None:
        image_size = (grid[0] * info["patch_size"], grid[1] * info["patch_size"])

    backbone = {
        "image_size": list(int(s) for s in image_size),
        "patch_size": info["patch_size"],
        "patch_padding": patch_padding,
        "hidden_dim": info["hidden_dim"],
        "num_layers": info["num_layers"],
        "num_heads": int(num_heads),
        "mlp_dim": info["mlp_dim"],
        "layer_norm_epsilon": float(eps),
        "qkv_bias": info["qkv_bias"],
        "pos_embed_cls_slot": "add" if info["layout"] != "mmpose" else "none",
        "num_experts": info["num_experts"],
        "part_features": info["part_features"],
    }
    if overrides.get("dtype") is not None:
        backbone["dtype"] = overrides["dtype"]
    return backbone, has_cls_slot, grid


# ------------------------------------------------------------------ loading
def _assign(variable, value):
    if tuple(variable.shape) != tuple(value.shape):
        raise CheckpointError(
            f"Internal shape mismatch assigning {variable.path}: {tuple(value.shape)} vs {tuple(variable.shape)}."
        )
    variable.assign(np.asarray(value, dtype=np.float32))


def _load_dense(acc, prefix, dense):
    kernel = dense.kernel
    w = acc.pop(prefix + "weight", (kernel.shape[1], kernel.shape[0]))
    if w is not None:
        _assign(kernel, w.T)
    if dense.use_bias:
        b = acc.pop(prefix + "bias", (kernel.shape[1],))
        if b is not None:
            _assign(dense.bias, b)


def _load_layer_norm(acc, prefix, norm):
    for leaf, var in (("weight", norm.gamma), ("bias", norm.beta)):
        value = acc.pop(prefix + leaf, tuple(var.shape))
        if value is not None:
            _assign(var, value)


def _load_batch_norm(acc, prefix, norm):
    for leaf, var in (
        ("weight", norm.gamma),
        ("bias", norm.beta),
        ("running_mean", norm.moving_mean),
        ("running_var", norm.moving_variance),
    ):
        value = acc.pop(prefix + leaf, tuple(var.shape))
        if value is not None:
            _assign(var, value)


def _load_conv(acc, prefix, conv, transpose=False):
    kernel = conv.kernel  # Conv2D (kh, kw, in, out); Conv2DTranspose (kh, kw, out, in)
    kh, kw, a, b = kernel.shape
    # torch Conv2d (out, in, kh, kw); ConvTranspose2d (in, out, kh, kw): both transpose(2, 3, 1, 0).
    key = prefix if prefix.endswith("weight") else prefix + "weight"
    w = acc.pop(key, (b, a, kh, kw))
    if w is not None:
        _assign(kernel, w.transpose(2, 3, 1, 0))
    if getattr(conv, "use_bias", False):
        bias = acc.pop(prefix + "bias", (b,))
        if bias is not None:
            _assign(conv.bias, bias)


def _load_head(acc, names, prefix, head, num_deconv):
    for role, key in names.head_keys(prefix, num_deconv):
        if role.startswith("deconv_"):
            _load_conv(acc, key, head.deconvs[int(role[7:])], transpose=True)
        elif role.startswith("bn_"):
            _load_batch_norm(acc, key, head.norms[int(role[3:])])
        else:
            _load_conv(acc, key, head.final_conv)


def _load_backbone(acc, names, backbone, info, has_cls_slot):
    layout = names.layout
    emb = backbone.patch_embedding
    _load_conv(acc, names.patch, emb.projection)
    table = emb.position_embedding
    c = backbone.hidden_dim
    pos = acc.pop(names.pos, (1, None, c))
    if pos is not None:
        if layout == "mmpose" and has_cls_slot:
            pos = pos[:, 1:]  # mmcls / mmpretrain never add slot 0 to the patches
        if pos.shape[1] != table.shape[1]:
            acc.misshapen.append((names.pos, tuple(pos.shape), tuple(table.shape)))
        else:
            _assign(table, pos)
    for i, block in enumerate(backbone.transformer_layers):
        keys = names.block(i)
        _load_layer_norm(acc, keys["norm1"], block.norm1)
        attn = block.attention
        if "qkv" in keys:
            _load_dense(acc, keys["qkv"], attn.qkv)
        else:
            ws, bs = [], []
            for part in ("q", "k", "v"):
                ws.append(acc.pop(keys[part] + "weight", (c, c)))
                if attn.qkv_bias:
                    bs.append(acc.pop(keys[part] + "bias", (c,)))
            if all(w is not None for w in ws):
                _assign(attn.qkv.kernel, np.concatenate(ws, axis=0).T)
            if attn.qkv_bias and all(b is not None for b in bs):
                _assign(attn.qkv.bias, np.concatenate(bs, axis=0))
        _load_dense(acc, keys["proj"], attn.proj)
        _load_layer_norm(acc, keys["norm2"], block.norm2)
        mlp = block.mlp
        _load_dense(acc, keys["fc1"], mlp.fc1)
        _load_dense(acc, keys["fc2"], mlp.fc2)
        if mlp.num_experts:
            kernels, biases = [], []
            for e in range(mlp.num_experts):
                kernels.append(acc.pop(f"{keys['experts']}{e}.weight", (mlp.part_features, mlp.mlp_dim)))
                biases.append(acc.pop(f"{keys['experts']}{e}.bias", (mlp.part_features,)))
            if all(k is not None for k in kernels):
                _assign(mlp.experts_kernel, np.stack([k.T for k in kernels]))
            if all(b is not None for b in biases):
                _assign(mlp.experts_bias, np.stack(biases))
    _load_layer_norm(acc, names.final_norm, backbone.final_layernorm)


def _spec_count(spec):
    from keras_pose.keypoints import get_keypoint_spec

    return get_keypoint_spec(spec).num_keypoints


def convert(checkpoint, entry=None, dataset=None, **overrides):
    """Convert a ViTPose / ViTPose++ checkpoint into a Keras task model.

    Args:
        checkpoint: path of a `.pth` file (original ViTPose / ViTPose++ or
            mmpose 1.x), a `model.safetensors` file, or an HF model directory
            (`model.safetensors` + `config.json`).
        entry: a `keras_pose.preset_registry.PresetEntry` (or a dict with the
            same fields); its `config` is checked against the file and
            supplies what the file cannot tell (heads, input size,
            keypoint spec, datasets); `preprocessing` / `decoding` go to the
            task. None: infer everything the file determines; ImageNet
            normalisation, UDP decoding, COCO-style spec by keypoint count,
            4:3 input aspect.
        dataset: ViTPose++: the active dataset (default: the entry's
            `dataset`, else the first). With an entry whose task_class is
            "ViTPose" the dataset's expert is fused into a plain ViTPose.
            Plain ViTPose: the keypoint spec name.
        **overrides: `num_heads`, `image_size` (H, W), `layer_norm_epsilon`,
            `dtype`, `keypoint_spec`, `preprocessing`, `decoding`, `datasets`
            (ViTPose++ dataset names) and checks of file-determined values
            (`hidden_dim`, `num_layers`, `mlp_dim`, `decoder`, ...).

    Returns:
        A `keras_pose.models.ViTPose` or `ViTPosePP` with the weights loaded.

    Raises:
        CheckpointError: wrong family, config disagreement, or missing /
            unexpected / misshapen tensors (all listed).
    """
    from keras_pose.models.vitpose.vitpose_backbone import ViTPoseBackbone
    from keras_pose.models.vitpose.vitpose_plus_pose_estimator import (
        DATASET_NUM_KEYPOINTS,
        VITPOSE_PLUS_DATASETS,
        ViTPosePP,
    )
    from keras_pose.models.vitpose.vitpose_pose_estimator import ViTPose

    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise TypeError(f"Unknown ViTPose conversion option(s) {unknown}; known: {sorted(OVERRIDES)}.")
    ckpt = checkpoint if hasattr(checkpoint, "tensors") else read_checkpoint(checkpoint)
    source = ckpt.path
    info = inspect_checkpoint(ckpt)
    names = _Names(info["layout"])
    backbone_config, has_cls_slot, _ = resolve_config(info, entry, dataset, overrides, source)
    entry_config = dict(_entry_get(entry, "config", {}) or {})
    dataset = dataset or _entry_get(entry, "dataset")
    task_class = _entry_get(entry, "task_class")
    task_kwargs = {}
    for key in ("preprocessing", "decoding"):
        value = overrides.get(key, _entry_get(entry, key))
        if value:
            task_kwargs[key] = value
    head_prefixes = info["head_prefixes"]
    head_ks = info["num_keypoints"]
    for prefix, k in zip(head_prefixes, head_ks):
        if k is None:
            acc = KeyAccountant(ckpt.tensors, source, "vitpose")
            acc.mark_missing(names.final_conv_weight(prefix))
            raise CheckpointError(acc.report("ViTPose model"))

    multi = info["num_experts"] > 0
    if multi and task_class == "ViTPose" and not dataset:
        raise CheckpointError(
            f"{source} is a ViTPose++ checkpoint; a plain ViTPose preset needs the dataset whose expert "
            "to fuse (entry.dataset or dataset=...)."
        )

    if multi:
        datasets = overrides.get("datasets") or entry_config.get("datasets")
        if datasets is None:
            if len(head_prefixes) == 1 and dataset and info["layout"] == "hf_safetensors":
                datasets = [dataset]
            else:
                datasets = VITPOSE_PLUS_DATASETS[: len(head_prefixes)]
        datasets = list(datasets)
        if len(datasets) != len(head_prefixes):
            raise CheckpointError(
                f"The preset config lists {len(datasets)} datasets {datasets} but the checkpoint {source} has "
                f"{len(head_prefixes)} heads ({', '.join(p.rstrip('.') for p in head_prefixes)})."
            )
        if len(datasets) > info["num_experts"]:
            raise CheckpointError(
                f"{source} has {len(datasets)} heads but only {info['num_experts']} experts per block."
            )
        specs = list(entry_config.get("keypoint_specs") or datasets)
        for name, spec, k in zip(datasets, specs, head_ks):
            expected = DATASET_NUM_KEYPOINTS.get(spec) if isinstance(spec, str) else None
            expected = expected or _spec_count(spec)
            if expected != k:
                raise CheckpointError(
                    f"Dataset {name!r}: its keypoint spec has {expected} keypoints but the checkpoint {source} "
                    f"head for it has num_keypoints={k}."
                )
        active = dataset if (dataset and task_class != "ViTPose") else datasets[0]
        if active not in datasets:
            raise CheckpointError(f"Unknown dataset {active!r}; the checkpoint has heads for {datasets}.")
        backbone_config["dataset_index"] = datasets.index(active)
        backbone = ViTPoseBackbone(**backbone_config)
        model = ViTPosePP(
            backbone,
            datasets=datasets,
            num_keypoints=head_ks,
            dataset=active,
            decoder=info["decoder"],
            deconv_filters=info["deconv_filters"] or (256, 256),
            keypoint_specs=specs,
            dataset_decodings=overrides.get("dataset_decodings") or entry_config.get("dataset_decodings"),
            **task_kwargs,
        )
        acc = KeyAccountant(ckpt.tensors, source, "vitpose", ignore=IGNORED, family_aliases=VITPOSE_FAMILIES)
        _load_backbone(acc, names, model.backbone, info, has_cls_slot)
        for prefix, head in zip(head_prefixes, model.heads.heads):
            _load_head(acc, names, prefix, head, info["num_deconv"])
        acc.finish("ViTPose++ model")
        if task_class == "ViTPose":
            if dataset not in datasets:
                raise CheckpointError(f"Unknown dataset {dataset!r}; the checkpoint has heads for {datasets}.")
            return model.fuse_experts(dataset)
        return model

    # The original multi-task ViTPose (e.g. COCO+AIC+MPII): one plain ViT
    # shared by several heads, no experts. The model keeps the head of one
    # dataset (`dataset`, else the preset's keypoint spec, else the first);
    # the other heads are set aside by name.
    unused_heads = []
    if len(head_prefixes) > 1:
        datasets = list(overrides.get("datasets") or entry_config.get("datasets")
                        or VITPOSE_PLUS_DATASETS[: len(head_prefixes)])
        if len(datasets) != len(head_prefixes):
            raise CheckpointError(
                f"{source} has {len(head_prefixes)} heads ({', '.join(p.rstrip('.') for p in head_prefixes)}) "
                f"but the preset config names {len(datasets)} datasets {datasets}."
            )
        preset_spec = entry_config.get("keypoint_spec")
        chosen = dataset or (preset_spec if preset_spec in datasets else datasets[0])
        if chosen not in datasets:
            raise CheckpointError(
                f"Unknown dataset {chosen!r}: the multi-task checkpoint {source} has heads for {datasets}."
            )
        index = datasets.index(chosen)
        unused_heads = [p for i, p in enumerate(head_prefixes) if i != index]
        head_prefixes, head_ks = [head_prefixes[index]], [head_ks[index]]
        if dataset and not overrides.get("keypoint_spec"):
            overrides = {**overrides, "keypoint_spec": dataset}
    k = head_ks[0]
    spec = overrides.get("keypoint_spec") or entry_config.get("keypoint_spec")
    if spec is None and dataset:
        spec = dataset
    if spec is None:
        spec = DEFAULT_SPEC_BY_K.get(k)
        if spec is None:
            raise CheckpointError(
                f"{source} predicts {k} keypoints, which matches no built-in keypoint spec by count; "
                "pass keypoint_spec=... (a name, dict or file)."
            )
    spec_k = _spec_count(spec)
    if spec_k != k:
        raise CheckpointError(
            f"The keypoint spec {spec if isinstance(spec, str) else 'given'} has {spec_k} keypoints but the "
            f"checkpoint {source} head has num_keypoints={k}."
        )
    backbone = ViTPoseBackbone(**backbone_config)
    model = ViTPose(
        backbone,
        num_keypoints=k,
        decoder=info["decoder"],
        deconv_filters=info["deconv_filters"] or (256, 256),
        keypoint_spec=spec,
        **task_kwargs,
    )
    acc = KeyAccountant(ckpt.tensors, source, "vitpose", ignore=IGNORED, family_aliases=VITPOSE_FAMILIES)
    _load_backbone(acc, names, model.backbone, info, has_cls_slot)
    _load_head(acc, names, head_prefixes[0], model.head, info["num_deconv"])
    for prefix in unused_heads:
        acc.ignore(prefix + "*")
    acc.finish("ViTPose model")
    return model
