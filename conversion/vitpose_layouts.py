"""The three ViTPose checkpoint layouts and what a file determines.

Layouts (`families.detect_family` tells them apart by key names):

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

`inspect_checkpoint` reads what a file determines: width, depth, MLP width,
patch size, qkv bias, experts and their width, decoder and its deconvolution
widths, the heads and their keypoint counts, and the position-table length
(which fixes the input size up to its aspect).
"""

import re

from keras_pose.conversion.checkpoint_io import read_checkpoint
from keras_pose.conversion.families import check_family
from keras_pose.conversion.key_accountant import out_channels
from keras_pose.errors import CheckpointError

VITPOSE_FAMILIES = ("vitpose", "vitpose_plus")


class Names:
    """Key names (module paths) of one layout."""

    def __init__(self, layout):
        self.layout = layout
        if layout == "vitpose_original":
            self.pos = "backbone.pos_embed"
            self.patch = "backbone.patch_embed.proj"
            self.final_norm = "backbone.last_norm"
            self.block_re = r"backbone\.blocks\.(\d+)\."
        elif layout == "mmpose":
            self.pos = "backbone.pos_embed"
            self.patch = "backbone.patch_embed.projection"
            self.final_norm = "backbone.ln1"
            self.block_re = r"backbone\.layers\.(\d+)\."
        else:
            self.pos = "backbone.embeddings.position_embeddings"
            self.patch = "backbone.embeddings.patch_embeddings.projection"
            self.final_norm = "backbone.layernorm"
            self.block_re = r"backbone\.encoder\.layer\.(\d+)\."

    def block(self, i):
        """{role: module path} of transformer block `i`."""
        if self.layout == "vitpose_original":
            p = f"backbone.blocks.{i}."
            return {"norm1": p + "norm1", "qkv": p + "attn.qkv", "proj": p + "attn.proj",
                    "norm2": p + "norm2", "fc1": p + "mlp.fc1", "fc2": p + "mlp.fc2",
                    "experts": p + "mlp.experts"}
        if self.layout == "mmpose":
            p = f"backbone.layers.{i}."
            return {"norm1": p + "ln1", "qkv": p + "attn.qkv", "proj": p + "attn.proj",
                    "norm2": p + "ln2", "fc1": p + "ffn.layers.0.0", "fc2": p + "ffn.layers.1",
                    "experts": p + "ffn.experts"}
        p = f"backbone.encoder.layer.{i}."
        return {"norm1": p + "layernorm_before", "q": p + "attention.attention.query",
                "k": p + "attention.attention.key", "v": p + "attention.attention.value",
                "proj": p + "attention.output.dense", "norm2": p + "layernorm_after",
                "fc1": p + "mlp.fc1", "fc2": p + "mlp.fc2", "experts": p + "mlp.experts"}

    def head_prefixes(self, keys):
        """Head module paths (with a trailing "."), in dataset-index order."""
        if self.layout == "vitpose_original":
            assoc = sorted({int(m.group(1)) for k in keys
                            for m in [re.match(r"associate_keypoint_heads\.(\d+)\.", k)] if m})
            return ["keypoint_head."] + [f"associate_keypoint_heads.{j}." for j in assoc]
        return ["head."]

    def head_modules(self, prefix, num_deconv):
        """[(role, module path)] of one head; roles deconv_i, bn_i, final_conv."""
        out = []
        for i in range(num_deconv):
            if self.layout == "hf_safetensors":
                out += [(f"deconv_{i}", f"{prefix}deconv{i + 1}"), (f"bn_{i}", f"{prefix}batchnorm{i + 1}")]
            else:
                out += [(f"deconv_{i}", f"{prefix}deconv_layers.{3 * i}"),
                        (f"bn_{i}", f"{prefix}deconv_layers.{3 * i + 1}")]
        out.append(("final_conv", prefix + ("conv" if self.layout == "hf_safetensors" else "final_layer")))
        return out

    def num_deconv(self, keys, prefix):
        if self.layout == "hf_safetensors":
            pattern = re.escape(prefix) + r"deconv(\d+)\.weight$"
            return len({m.group(1) for k in keys for m in [re.match(pattern, k)] if m})
        pattern = re.escape(prefix) + r"deconv_layers\.(\d+)\.weight$"
        return len({m.group(1) for k in keys for m in [re.match(pattern, k)] if m and int(m.group(1)) % 3 == 0})

    def final_conv_weight(self, prefix):
        return self.head_modules(prefix, 0)[-1][1] + ".weight"


def inspect_checkpoint(checkpoint):
    """What a ViTPose checkpoint file determines.

    Args:
        checkpoint: a path (file or HF directory), a state dict or a
            `Checkpoint`.

    Returns:
        dict: layout, hidden_dim, num_layers, mlp_dim, patch_size,
        qkv_bias, num_experts, part_features, decoder, num_deconv,
        deconv_filters, head_prefixes, num_keypoints (per head; None where a
        head has no final conv), pos_rows, hf_config.

    Raises:
        CheckpointError: not a ViTPose / ViTPose++ file (naming the family it
            looks like), or a tensor the architecture is read from is absent.
    """
    ckpt = read_checkpoint(checkpoint)
    layout = check_family(ckpt, ckpt.path, VITPOSE_FAMILIES, "a ViTPose / ViTPose++", required=True).layout
    keys, t = list(ckpt.tensors), ckpt.tensors
    names = Names(layout)

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
    patch_w = need(names.patch + ".weight")
    hidden_dim, patch_size = out_channels(t, names.patch + ".weight"), patch_w.shape[2]
    depth = 1 + max(int(re.match(names.block_re, k).group(1)) for k in keys if re.match(names.block_re, k))
    block = names.block(0)
    need(block["fc1"] + ".weight")
    mlp_dim = out_channels(t, block["fc1"] + ".weight")
    qkv_bias = (block.get("qkv", block.get("q", "")) + ".bias") in t
    expert_re = re.escape(block["experts"]) + r"\.(\d+)\.weight$"
    num_experts = len({int(m.group(1)) for k in keys for m in [re.match(expert_re, k)] if m})
    part_features = out_channels(t, block["experts"] + ".0.weight") if num_experts else 0
    pos = need(names.pos)
    head_prefixes = names.head_prefixes(keys)
    num_deconv = names.num_deconv(keys, head_prefixes[0])
    final_w = need(names.final_conv_weight(head_prefixes[0]))
    if not num_deconv and final_w.shape[-1] != 3:
        raise CheckpointError(
            f"{ckpt.path}: the head has no deconvolutions and a {final_w.shape[-1]}x{final_w.shape[-1]} final "
            "conv; only the classic (deconv) and simple (3x3 conv after x4 upsampling) ViTPose heads are supported."
        )
    deconv_filters = [
        int(need(module + ".weight").shape[1])  # ConvTranspose2d (in, out, kh, kw)
        for role, module in names.head_modules(head_prefixes[0], num_deconv)
        if role.startswith("deconv_")
    ]
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
        "decoder": "classic" if num_deconv else "simple",
        "num_deconv": num_deconv,
        "deconv_filters": deconv_filters,
        "head_prefixes": head_prefixes,
        "num_keypoints": num_keypoints,
        "pos_rows": int(pos.shape[1]) if pos.ndim == 3 else None,
        "hf_config": ckpt.config,
    }


__all__ = ["Names", "VITPOSE_FAMILIES", "inspect_checkpoint"]
