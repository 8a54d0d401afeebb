"""Tiny ViTPose checkpoints in the original ViTAE-Transformer layout and their
preset entries (hidden 32, 2 layers, 2 heads, 64x48 input, simple decoder,
17 keypoints; key names as in tests/golden/vitpose/vitpose_small_simple/keys.json)."""

import collections
import importlib.util
import pathlib

import numpy as np
import pytest

from keras_pose.preset_registry import PresetEntry

HAS_CONVERTER = importlib.util.find_spec("keras_pose.conversion.vitpose_converter") is not None
needs_converter = pytest.mark.skipif(
    not HAS_CONVERTER, reason="keras_pose.conversion.vitpose_converter is not written yet"
)

TINY_NAME = "test_tiny_vitpose_simple_64x48"
TINY_BACKBONE = {
    "hidden_dim": 32,
    "num_layers": 2,
    "num_heads": 2,
    "mlp_dim": 128,
    "patch_size": 16,
    "patch_padding": 2,
    "layer_norm_epsilon": 1e-6,
    "qkv_bias": True,
}


def make_tiny_state_dict(hidden=32, layers=2, keypoints=17, grid=(4, 3), seed=0):
    """{name: float32 array} of a ViTPose (simple decoder) in the original layout.

    64x48 inputs with 16x16 patches and padding 2 give a 4x3 patch grid; the
    position table has one extra (cls) row.
    """
    rng = np.random.default_rng(seed)
    sd = {}

    def add(name, *shape, scale=0.05):
        sd[name] = rng.normal(0.0, scale, shape).astype(np.float32)

    add("backbone.pos_embed", 1, 1 + grid[0] * grid[1], hidden)
    add("backbone.patch_embed.proj.weight", hidden, 3, 16, 16)
    add("backbone.patch_embed.proj.bias", hidden)
    for i in range(layers):
        b = f"backbone.blocks.{i}."
        add(b + "norm1.weight", hidden)
        add(b + "norm1.bias", hidden)
        add(b + "attn.qkv.weight", 3 * hidden, hidden)
        add(b + "attn.qkv.bias", 3 * hidden)
        add(b + "attn.proj.weight", hidden, hidden)
        add(b + "attn.proj.bias", hidden)
        add(b + "norm2.weight", hidden)
        add(b + "norm2.bias", hidden)
        add(b + "mlp.fc1.weight", 4 * hidden, hidden)
        add(b + "mlp.fc1.bias", 4 * hidden)
        add(b + "mlp.fc2.weight", hidden, 4 * hidden)
        add(b + "mlp.fc2.bias", hidden)
    for name in ("weight", "bias"):
        add(f"backbone.last_norm.{name}", hidden)
    sd["backbone.last_norm.weight"] += 1.0
    add("keypoint_head.final_layer.weight", keypoints, hidden, 3, 3)
    add("keypoint_head.final_layer.bias", keypoints)
    return sd


def save_original_checkpoint(path, state_dict):
    """torch.save({'meta': {}, 'state_dict': ...}) like the ViTPose releases."""
    import torch

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"meta": {}, "state_dict": {k: torch.from_numpy(v) for k, v in state_dict.items()}}, path)
    return path


def tiny_entry(url, sha256, name=TINY_NAME, file_name="tiny_vitpose.pth"):
    from keras_pose.presets.common import imagenet_preprocessing

    return PresetEntry(
        name=name,
        family="vitpose",
        task_class="ViTPose",
        description="tiny test ViTPose",
        config={**TINY_BACKBONE, "image_size": [64, 48], "decoder": "simple", "keypoint_spec": "coco"},
        preprocessing=imagenet_preprocessing(),
        decoding={
            "codec": {"type": "UDPHeatmap", "input_size": [64, 48], "heatmap_size": [16, 12], "sigma": 2.0,
                      "blur_kernel_size": 11},
            "flip_test": True,
            "shift_heatmap": False,
            "padding": 1.25,
        },
        source_url=url,
        file_name=file_name,
        sha256=sha256,
        checkpoint_format="vitpose_original",
        license="Apache-2.0",
        published_accuracy={},
        notes="test only",
    )


def tiny_vitpose_state_dict(
    hidden=32, depth=2, mlp=64, grid=(4, 3), num_keypoints=17, decoder="classic", experts=0, part=8,
    extra_heads=(), seed=0, cls_token=True,
):
    """A small original-layout (ViTAE) ViTPose / ViTPose++ state dict (numpy)."""
    rng = np.random.default_rng(seed)

    def n(*shape, s=0.1):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    sd = collections.OrderedDict()
    if cls_token:
        sd["backbone.cls_token"] = n(1, 1, hidden)
    sd["backbone.pos_embed"] = n(1, 1 + grid[0] * grid[1], hidden, s=0.02)
    sd["backbone.patch_embed.proj.weight"] = n(hidden, 3, 16, 16, s=0.02)
    sd["backbone.patch_embed.proj.bias"] = n(hidden)
    for i in range(depth):
        p = f"backbone.blocks.{i}."
        sd[p + "norm1.weight"] = 1 + n(hidden)
        sd[p + "norm1.bias"] = n(hidden)
        sd[p + "attn.qkv.weight"] = n(3 * hidden, hidden, s=hidden**-0.5)
        sd[p + "attn.qkv.bias"] = n(3 * hidden)
        sd[p + "attn.proj.weight"] = n(hidden, hidden, s=hidden**-0.5)
        sd[p + "attn.proj.bias"] = n(hidden)
        sd[p + "norm2.weight"] = 1 + n(hidden)
        sd[p + "norm2.bias"] = n(hidden)
        sd[p + "mlp.fc1.weight"] = n(mlp, hidden, s=hidden**-0.5)
        sd[p + "mlp.fc1.bias"] = n(mlp)
        sd[p + "mlp.fc2.weight"] = n(hidden - (part if experts else 0), mlp, s=mlp**-0.5)
        sd[p + "mlp.fc2.bias"] = n(hidden - (part if experts else 0))
        for e in range(experts):
            sd[p + f"mlp.experts.{e}.weight"] = n(part, mlp, s=mlp**-0.5)
            sd[p + f"mlp.experts.{e}.bias"] = n(part)
    sd["backbone.last_norm.weight"] = 1 + n(hidden)
    sd["backbone.last_norm.bias"] = n(hidden)

    def head(prefix, k):
        if decoder == "classic":
            sd[prefix + "deconv_layers.0.weight"] = n(hidden, 16, 4, 4, s=0.1)
            for j in (1, 4):
                sd[prefix + f"deconv_layers.{j}.weight"] = 1 + n(16)
                sd[prefix + f"deconv_layers.{j}.bias"] = n(16)
                sd[prefix + f"deconv_layers.{j}.running_mean"] = n(16)
                sd[prefix + f"deconv_layers.{j}.running_var"] = (1 + np.abs(n(16))).astype(np.float32)
                sd[prefix + f"deconv_layers.{j}.num_batches_tracked"] = np.array(100, np.int64)
            sd[prefix + "deconv_layers.3.weight"] = n(16, 16, 4, 4, s=0.1)
            sd[prefix + "final_layer.weight"] = n(k, 16, 1, 1, s=0.25)
        else:
            sd[prefix + "final_layer.weight"] = n(k, hidden, 3, 3, s=0.05)
        sd[prefix + "final_layer.bias"] = n(k)

    head("keypoint_head.", num_keypoints)
    for j, k in enumerate(extra_heads):
        head(f"associate_keypoint_heads.{j}.", k)
    return sd


def save_pth(sd, path, **container):
    import torch

    torch.save({**container, "state_dict": {k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()}}, path)
    return path


def files_under(folder):
    """Sorted relative paths of everything under `folder` ([] if it does not exist): what a test left behind."""
    folder = pathlib.Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []
