"""The ViTPose / ViTPose++ backbone: a plain ViT over 16x16 patches."""

import keras

from keras_pose.models.vitpose.vitpose_layers import (
    ViTPosePatchEmbedding,
    ViTPoseTransformerBlock,
    patch_grid_size,
)
from keras_pose.models.vitpose.vitpose_knowledge_token import ViTPoseKnowledgeToken
from keras_pose.models.vitpose.vitpose_window_attention import ViTPoseWindowTransformerBlock, block_attention_types
from keras_pose.reference_constants import VIT_SIZES, VITPOSE_PLUS_PART_FEATURES  # noqa: F401 - re-exported
from keras_pose.utils.backend_imports import import_keras_hub
from keras_pose.utils.fast_init import fast_init_constructor

keras_hub = import_keras_hub()  # without TensorFlow on JAX / PyTorch (utils.backend_imports)

# The same table by variant name ("ViTPose-S", ...).
VITPOSE_VARIANTS = {f"ViTPose-{size[0].upper()}": dict(sizes) for size, sizes in VIT_SIZES.items()}


def vit_backbone(image_size, dtype=None, size=None, **kwargs):
    """A `ViTPoseBackbone` from flat settings (a preset's `config`).

    Args:
        image_size: (H, W) input, pixels.
        dtype: dtype policy.
        size: optional "small" / "base" / "large" / "huge": the `VIT_SIZES`
            widths, depth and heads (explicit keyword arguments win).
        **kwargs: other `ViTPoseBackbone` arguments.
    """
    if size is not None:
        if size not in VIT_SIZES:
            raise ValueError(f"size must be one of {sorted(VIT_SIZES)}, got {size!r}.")
        kwargs = {**VIT_SIZES[size], **kwargs}
    return ViTPoseBackbone(image_size=tuple(image_size), dtype=dtype, **kwargs)


def standard_num_heads(hidden_dim):
    """Attention heads of the released variant with this width (None if none)."""
    for variant in VIT_SIZES.values():
        if variant["hidden_dim"] == int(hidden_dim):
            return variant["num_heads"]
    return None


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseBackbone(keras_hub.models.Backbone):
    """ViTPose backbone (ViT with padded patch embedding, no class token).

    Input images (B, H, W, 3) normalised float; output features
    (B, Hp, Wp, C) after the final LayerNorm, Hp, Wp = `grid_size`
    ((H + 2 * patch_padding - patch_size) // patch_size + 1, i.e. H/16 for
    the usual sizes).

    Args:
        image_size: (height, width) of the input; sizes the position table.
        patch_size: patch (convolution kernel and stride) in pixels.
        patch_padding: zero padding of the patch convolution (2 in ViTPose).
        hidden_dim: C, token width.
        num_layers: number of transformer blocks.
        num_heads: attention heads.
        mlp_dim: hidden width of the MLP (4C in the released models).
        layer_norm_epsilon: LayerNorm epsilon (1e-6 in ViTPose, 1e-12 in HF
            hub conversions).
        qkv_bias: bias on the qkv projection.
        pos_embed_cls_slot: "add" (ViTAE-Transformer / HF: the position
            table has 1 + Hp*Wp rows, row 0 is added to every patch) or
            "none" (mmpose 1.x: Hp*Wp rows).
        num_experts: ViTPose++ experts per block (0: plain ViT).
        part_features: ViTPose++ expert width P (the last P channels of every
            MLP output come from the selected expert).
        dataset_index: which expert this graph uses (ViTPose++ dataset
            index: 0 coco, 1 aic, 2 mpii, 3 ap10k, 4 apt36k,
            5 coco_wholebody).
        attention: "global" (default; the released models), "window",
            "shifted_window", "pooling_window", "shifted_pooling_window"
            (the shifted kinds alternate un-shifted / shifted blocks), or a
            list with each block's type (`vitpose_window_attention`).
        window_size: window (height, width) in tokens (an int: square)
            for the window kinds.
        patch_stride: patch convolution stride (None: `patch_size`); a
            smaller stride overlaps the patches, e.g. 8 with
            `patch_padding=4` gives a 1/8 token map (32 x 24 at 256 x 192).
        knowledge_token_dim: 0 (none), or the width of a knowledge token
            prepended to the patch tokens (`ViTPoseKnowledgeToken`; global
            attention only; != hidden_dim adds a projection).
        freeze_knowledge_token: the knowledge token is not trained.
        drop_path_rate: stochastic depth while training, rising linearly
            over the blocks from 0 to this rate (ViTPose: 0.1 S/B, 0.3 L,
            0.55 H; 0: off, as the released inference checkpoints need).
        dtype: dtype policy.

    `with_dataset_index(i)` returns a backbone sharing these weights whose
    graph uses expert i.
    """

    @fast_init_constructor
    def __init__(
        self,
        *,
        hidden_dim,
        num_layers,
        num_heads,
        mlp_dim,
        image_size=(256, 192),
        patch_size=16,
        patch_padding=2,
        layer_norm_epsilon=1e-6,
        qkv_bias=True,
        pos_embed_cls_slot="add",
        num_experts=0,
        part_features=0,
        dataset_index=0,
        attention="global",
        window_size=8,
        patch_stride=None,
        knowledge_token_dim=0,
        freeze_knowledge_token=False,
        drop_path_rate=0.0,
        dtype=None,
        **kwargs,
    ):
        shared = kwargs.pop("_shared_layers", None)
        image_size = tuple(int(s) for s in image_size)
        if len(image_size) != 2:
            raise ValueError(f"image_size must be (height, width), got {image_size}.")
        num_experts = int(num_experts or 0)
        part_features = int(part_features or 0) if num_experts else 0
        dataset_index = int(dataset_index or 0)
        if num_experts and not 0 <= dataset_index < num_experts:
            raise ValueError(
                f"dataset_index {dataset_index} is out of range for a backbone with {num_experts} experts."
            )
        if not num_experts and dataset_index:
            raise ValueError("dataset_index only applies to a ViTPose++ backbone (num_experts > 0).")
        patch_stride = int(patch_stride or patch_size)
        block_types = block_attention_types(attention, int(num_layers))
        window_size = [int(w) for w in ((window_size,) * 2 if isinstance(window_size, int) else window_size)]
        grid_size = patch_grid_size(image_size, patch_size, patch_padding, patch_stride)
        knowledge_token_dim = int(knowledge_token_dim or 0)
        if knowledge_token_dim and any(kind != "global" for kind in block_types):
            raise ValueError("A knowledge token needs global attention in every block (windows have no slot for it).")
        if min(grid_size) < 1:
            raise ValueError(f"image_size {image_size} is smaller than one patch ({patch_size} px).")

        # === Layers ===
        if shared is not None:
            self.patch_embedding = shared.patch_embedding
            self.knowledge_token = shared.knowledge_token
            self.transformer_layers = list(shared.transformer_layers)
            self.final_layernorm = shared.final_layernorm
        else:
            self.patch_embedding = ViTPosePatchEmbedding(
                hidden_dim,
                grid_size,
                patch_size=patch_size,
                patch_padding=patch_padding,
                pos_embed_cls_slot=pos_embed_cls_slot,
                dtype=dtype,
                name="patch_embedding",
                patch_stride=patch_stride,
            )
            self.knowledge_token = (
                ViTPoseKnowledgeToken(hidden_dim, knowledge_token_dim, freeze_token=freeze_knowledge_token,
                                      dtype=dtype, name="knowledge_token")
                if knowledge_token_dim
                else None
            )
            block_options = dict(
                layer_norm_epsilon=layer_norm_epsilon,
                qkv_bias=qkv_bias,
                num_experts=num_experts,
                part_features=part_features,
                dtype=dtype,
            )
            # mmpose / timm: the stochastic-depth rate of block i is drop_path_rate * i / (L - 1).
            rates = [float(drop_path_rate) * i / max(1, len(block_types) - 1) for i in range(len(block_types))]
            self.transformer_layers = [
                ViTPoseTransformerBlock(
                    hidden_dim, num_heads, mlp_dim, name=f"transformer_layer_{i}", drop_path_rate=rates[i],
                    **block_options
                )
                if kind == "global"
                else ViTPoseWindowTransformerBlock(
                    hidden_dim, num_heads, mlp_dim, grid_size=grid_size, window_size=window_size,
                    attention_type=kind, name=f"transformer_layer_{i}", drop_path_rate=rates[i], **block_options
                )
                for i, kind in enumerate(block_types)
            ]
            self.final_layernorm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="final_layernorm"
            )

        # === Functional model ===
        image_input = keras.Input(shape=(*image_size, 3), name="images")
        x = self.patch_embedding(image_input)
        if self.knowledge_token is not None:
            x = self.knowledge_token(x)
        for block in self.transformer_layers:
            x = block(x, expert_index=dataset_index)
        x = self.final_layernorm(x)
        if self.knowledge_token is not None:
            x = keras.layers.Cropping1D((1, 0), dtype=dtype, name="drop_knowledge_token")(x)
        outputs = keras.layers.Reshape((*grid_size, int(hidden_dim)), dtype=dtype, name="to_grid")(x)
        super().__init__(inputs=image_input, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.image_size = image_size
        self.patch_size = int(patch_size)
        self.patch_padding = int(patch_padding)
        self.hidden_dim = int(hidden_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.qkv_bias = bool(qkv_bias)
        self.pos_embed_cls_slot = pos_embed_cls_slot
        self.num_experts = num_experts
        self.part_features = part_features
        self.dataset_index = dataset_index
        self.grid_size = grid_size
        self.attention = attention if isinstance(attention, str) else list(block_types)
        self.window_size = window_size
        self.patch_stride = patch_stride
        self.knowledge_token_dim = knowledge_token_dim
        self.freeze_knowledge_token = bool(freeze_knowledge_token)
        self.drop_path_rate = float(drop_path_rate or 0.0)

    def with_dataset_index(self, dataset_index):
        """A backbone sharing these layers (and weights) that uses expert `dataset_index`."""
        if int(dataset_index) == self.dataset_index:
            return self
        config = self.get_config()
        config["dataset_index"] = int(dataset_index)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.get(config["dtype"])
        return type(self)(**config, _shared_layers=self)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": list(self.image_size),
                "patch_size": self.patch_size,
                "patch_padding": self.patch_padding,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "qkv_bias": self.qkv_bias,
                "pos_embed_cls_slot": self.pos_embed_cls_slot,
                "num_experts": self.num_experts,
                "part_features": self.part_features,
                "dataset_index": self.dataset_index,
                "attention": self.attention,
                "window_size": list(self.window_size),
                "patch_stride": self.patch_stride,
                "knowledge_token_dim": self.knowledge_token_dim,
                "freeze_knowledge_token": self.freeze_knowledge_token,
                "drop_path_rate": self.drop_path_rate,
            }
        )
        return config

    def with_attention(self, attention, window_size=None):
        """A backbone with other attention types and these weights (`vitpose_transfer.with_attention`)."""
        from keras_pose.models.vitpose.vitpose_transfer import with_attention

        return with_attention(self, attention, window_size=window_size)
