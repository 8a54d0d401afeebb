"""ViTPose / ViTPose++ weights exported in the original ViTAE-Transformer layout.

The inverse of `keras_pose.conversion.vitpose_converter` for the
`vitpose_original` layout, written from the reference code's module names
(ViTPose/mmpose/models/backbones/vit.py, heads/topdown_heatmap_simple_head.py):

| Keras                                  | ViTAE-Transformer/ViTPose                     |
| -------------------------------------- | --------------------------------------------- |
| patch_embedding.projection             | backbone.patch_embed.proj                     |
| patch_embedding.position_embedding     | backbone.pos_embed (1, 1 + N, C), cls slot 0  |
| transformer_layers[i].norm1 / norm2    | backbone.blocks.i.norm1 / norm2               |
| .attention.qkv / .attention.proj       | backbone.blocks.i.attn.qkv / attn.proj        |
| .mlp.fc1 / .mlp.fc2                    | backbone.blocks.i.mlp.fc1 / mlp.fc2           |
| .mlp.experts_kernel[e] / experts_bias[e] | backbone.blocks.i.mlp.experts.e (ViTPose++) |
| final_layernorm                        | backbone.last_norm                            |
| head.deconvs[j] / head.norms[j]        | keypoint_head.deconv_layers.{3j} / {3j + 1}   |
| head.final_conv                        | keypoint_head.final_layer                     |
| heads.heads[d] (ViTPose++, d >= 1)     | associate_keypoint_heads.{d - 1}.*            |
"""

import keras
import numpy as np


def _np(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), np.float32)


def _conv(sd, prefix, conv):
    """Conv2D kernel (kh, kw, I, O) -> (O, I, kh, kw); Conv2DTranspose (kh, kw, O, I) -> (I, O, kh, kw)."""
    sd[f"{prefix}.weight"] = _np(conv.kernel).transpose(3, 2, 0, 1)
    if getattr(conv, "use_bias", False):
        sd[f"{prefix}.bias"] = _np(conv.bias)


def _dense(sd, prefix, dense):
    sd[f"{prefix}.weight"] = _np(dense.kernel).T
    if dense.use_bias:
        sd[f"{prefix}.bias"] = _np(dense.bias)


def _norm(sd, prefix, norm):
    sd[f"{prefix}.weight"] = _np(norm.gamma)
    sd[f"{prefix}.bias"] = _np(norm.beta)


def _batch_norm(sd, prefix, norm):
    _norm(sd, prefix, norm)
    sd[f"{prefix}.running_mean"] = _np(norm.moving_mean)
    sd[f"{prefix}.running_var"] = _np(norm.moving_variance)
    sd[f"{prefix}.num_batches_tracked"] = np.array(0, np.int64)


def _head(sd, prefix, head):
    for j, (deconv, norm) in enumerate(zip(getattr(head, "deconvs", ()), getattr(head, "norms", ()))):
        _conv(sd, f"{prefix}deconv_layers.{3 * j}", deconv)
        _batch_norm(sd, f"{prefix}deconv_layers.{3 * j + 1}", norm)
    _conv(sd, f"{prefix}final_layer", head.final_conv)


def export_original_state_dict(model):
    """{name: array} of a `ViTPose` or `ViTPosePP` in the ViTAE-Transformer layout."""
    backbone = model.backbone
    if backbone.patch_embedding.pos_embed_cls_slot != "add":
        raise ValueError("the original layout carries the cls slot of the position table (pos_embed_cls_slot='add')")
    sd = {"backbone.cls_token": np.zeros((1, 1, backbone.hidden_dim), np.float32)}  # unused by pose models
    sd["backbone.pos_embed"] = _np(backbone.patch_embedding.position_embedding)
    _conv(sd, "backbone.patch_embed.proj", backbone.patch_embedding.projection)
    for i, block in enumerate(backbone.transformer_layers):
        p = f"backbone.blocks.{i}."
        _norm(sd, p + "norm1", block.norm1)
        _dense(sd, p + "attn.qkv", block.attention.qkv)
        _dense(sd, p + "attn.proj", block.attention.proj)
        _norm(sd, p + "norm2", block.norm2)
        _dense(sd, p + "mlp.fc1", block.mlp.fc1)
        _dense(sd, p + "mlp.fc2", block.mlp.fc2)
        for e in range(block.mlp.num_experts):
            sd[p + f"mlp.experts.{e}.weight"] = _np(block.mlp.experts_kernel)[e].T
            sd[p + f"mlp.experts.{e}.bias"] = _np(block.mlp.experts_bias)[e]
    _norm(sd, "backbone.last_norm", backbone.final_layernorm)
    heads = model.heads.heads if hasattr(model, "heads") else [model.head]
    for d, head in enumerate(heads):
        _head(sd, "keypoint_head." if d == 0 else f"associate_keypoint_heads.{d - 1}.", head)
    return sd


def randomize_weights(model, seed=0):
    """Non-trivial values everywhere (BN statistics included), so comparisons mean something."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        if "moving_variance" in w.path:
            value = rng.uniform(0.5, 1.5, shape)
        elif "gamma" in w.path:
            value = 1 + 0.1 * rng.standard_normal(shape)
        else:
            value = 0.1 * rng.standard_normal(shape)
        w.assign(value.astype(np.float32))
    return model
