"""Layers of ViTPose and ViTPose++.

The math follows the reference implementations (ViTAE-Transformer/ViTPose,
mmpose 1.x with mmpretrain's VisionTransformer, and Hugging Face
`VitPoseForPoseEstimation`) operation by operation, in float32, so converted
checkpoints reproduce the reference outputs to float32 round-off:

- patch embedding: Conv2d(k=16, s=16, padding=2) written as an explicit
  `ZeroPadding2D(2)` and a "valid" `Conv2D`, then the absolute position table.
  With `pos_embed_cls_slot="add"` (ViTAE / HF) the table has 1 + N rows and
  the patches get `patch + pos[1:] + pos[0]`; with "none" (mmpose 1.x) it has
  N rows and the patches get `patch + pos`.
- pre-norm transformer blocks: `x + attn(LN(x))`, `x + mlp(LN(x))`, attention
  scale `head_dim ** -0.5`, exact (erf) GELU written out as
  `0.5 * x * (1 + erf(x / sqrt(2)))` (so it also exports to ONNX as `Erf`).
  On the PyTorch backend the GELU, the dense bias adds and the attention use
  torch's fused kernels (`keras_pose.layers.backend_kernels`): same math.
- ViTPose++ partially shared FFN: `fc2` gives the first C - P channels (shared
  by every dataset), expert e gives the last P channels; the expert is chosen
  by a Python int at graph-construction time (`expert_index`).
- heads: "classic" (2 x [ConvTranspose(256, 4, s2, p1, no bias), BN(eps 1e-5),
  ReLU], 1x1 conv to K) and "simple" (ReLU, bilinear x4 with half-pixel
  centres = torch `align_corners=False`, 3x3 conv to K).

All tensors are NHWC / (B, N, C); every layer uses `keras.ops` only.
"""

import math

import keras
from keras import ops

from keras_pose.layers.backend_kernels import FusedBiasDense
from keras_pose.layers.backend_kernels import exact_gelu
from keras_pose.layers.backend_kernels import multi_head_attention
from keras_pose.layers.drop_path import DropPath
from keras_pose.layers.transposed_conv import apply_transposed_conv

# mmpose / ViTPose head initialisation: convolutions and deconvolutions
# ~ N(0, 0.001), zero biases (BatchNorm keeps gamma 1, beta 0). Heads trained
# from scratch start near zero heatmaps instead of random ones.
def head_initializer():
    """N(0, 0.001) for head kernels, a new instance per layer.

    One module-level instance would draw its seed when the module is imported,
    before `keras.utils.set_random_seed`: every head would get the same
    values and a seeded run would differ from process to process.
    """
    return keras.initializers.RandomNormal(stddev=0.001)


@keras.saving.register_keras_serializable(package="keras_pose")
class ExactGELU(keras.layers.Layer):
    """Exact (erf) GELU activation layer (`torch.nn.GELU()` default).

    `keras_pose.layers.backend_kernels.exact_gelu`: torch's fused GELU on the
    PyTorch backend, the erf form written out elsewhere (`keras.activations.gelu`'s
    exact form exports to ONNX as `Erfc`, which onnxruntime rejects).
    """

    def call(self, x):
        return exact_gelu(x)

    def compute_output_shape(self, input_shape):
        return input_shape


def patch_grid_size(image_size, patch_size=16, patch_padding=2, patch_stride=None):
    """Token grid (Hp, Wp) of a Conv2d(k=patch, s=stride (default patch), padding) embedding.

    `(H + 2 * padding - patch) // stride + 1` per side; (256, 192) -> (16, 12);
    stride 8, padding 4: (32, 24).
    """
    stride = int(patch_stride or patch_size)
    return tuple((int(s) + 2 * int(patch_padding) - int(patch_size)) // stride + 1 for s in image_size)


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPosePatchEmbedding(keras.layers.Layer):
    """Patch embedding plus absolute position embedding.

    Input images (B, H, W, 3); output tokens (B, Hp * Wp, C) in row-major
    (y, x) order, Hp, Wp = `grid_size`.

    Args:
        hidden_dim: C, the embedding width.
        grid_size: (Hp, Wp) token grid the position table is sized for.
        patch_size: convolution kernel (and default stride), pixels.
        patch_padding: zero padding on every side before the convolution.
        patch_stride: convolution stride (None: `patch_size`; smaller: overlapping patches).
        pos_embed_cls_slot: "add": the table has 1 + Hp*Wp rows and row 0 is
            added to every patch (ViTAE-Transformer / HF ViTPose); "none":
            Hp*Wp rows (mmpose 1.x / mmpretrain with `with_cls_token=False`).
    """

    def __init__(
        self,
        hidden_dim,
        grid_size,
        patch_size=16,
        patch_padding=2,
        pos_embed_cls_slot="add",
        patch_stride=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.patch_stride = int(patch_stride or patch_size)
        if pos_embed_cls_slot not in ("add", "none"):
            raise ValueError(
                f"pos_embed_cls_slot must be 'add' (ViTAE/HF) or 'none' (mmpose 1.x), got {pos_embed_cls_slot!r}."
            )
        self.hidden_dim = int(hidden_dim)
        self.grid_size = tuple(int(g) for g in grid_size)
        self.patch_size = int(patch_size)
        self.patch_padding = int(patch_padding)
        self.pos_embed_cls_slot = pos_embed_cls_slot
        self.padding = (
            keras.layers.ZeroPadding2D(self.patch_padding, dtype=self.dtype_policy, name="padding")
            if self.patch_padding
            else None
        )
        self.projection = keras.layers.Conv2D(
            self.hidden_dim,
            self.patch_size,
            strides=self.patch_stride,
            padding="valid",
            dtype=self.dtype_policy,
            name="projection",
        )

    @property
    def num_patches(self):
        return self.grid_size[0] * self.grid_size[1]

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.padding is not None:
            self.padding.build(shape)
            shape = tuple(self.padding.compute_output_shape(shape))
        self.projection.build(shape)
        rows = self.num_patches + (1 if self.pos_embed_cls_slot == "add" else 0)
        self.position_embedding = self.add_weight(
            shape=(1, rows, self.hidden_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="position_embedding",
        )

    def call(self, images):
        x = images
        if self.padding is not None:
            x = self.padding(x)
        if keras.backend.backend() == "jax" and self.patch_stride == self.patch_size:
            x = self._patches_as_matmul(x)
        else:
            x = self.projection(x)
        hp, wp = x.shape[1], x.shape[2]
        if (hp, wp) != self.grid_size:
            raise ValueError(
                f"The patch grid of this input is {(hp, wp)} but the position table was built for "
                f"{self.grid_size}; build the backbone with the input's image_size."
            )
        x = ops.reshape(x, (-1, hp * wp, self.hidden_dim))
        pos = ops.cast(self.position_embedding, x.dtype)
        if self.pos_embed_cls_slot == "add":
            # Same order of float additions as the reference: (x + pos[1:]) + pos[0].
            x = x + pos[:, 1:] + pos[:, :1]
        else:
            x = x + pos
        return x

    def _patches_as_matmul(self, x):
        """`self.projection(x)` (non-overlapping patches) as space-to-depth and one matmul.

        Same products as the "valid" stride-p convolution; XLA:CPU (JAX)
        differentiates the matmul much faster than the convolution's kernel
        gradient. Input (B, H, W, 3) padded; output (B, Hp, Wp, C).
        """
        p = self.patch_size
        hp, wp, channels = x.shape[1] // p, x.shape[2] // p, x.shape[3]
        x = x[:, : hp * p, : wp * p]
        x = ops.reshape(x, (-1, hp, p, wp, p, channels))
        x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, hp, wp, p * p * channels))
        conv = self.projection
        kernel = ops.reshape(ops.cast(conv.kernel, conv.compute_dtype), (p * p * channels, conv.filters))
        x = ops.matmul(ops.cast(x, conv.compute_dtype), kernel)
        if conv.use_bias:
            x = x + ops.cast(conv.bias, conv.compute_dtype)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_patches, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "grid_size": list(self.grid_size),
                "patch_size": self.patch_size,
                "patch_padding": self.patch_padding,
                "pos_embed_cls_slot": self.pos_embed_cls_slot,
                "patch_stride": self.patch_stride,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseAttention(keras.layers.Layer):
    """Multi-head self-attention with a fused qkv projection.

    Input / output (B, N, C). `qkv` kernel (C, 3C) holds [q | k | v] along
    its outputs; heads split as reshape(B, N, 3, heads, C / heads); scores are
    `(q @ k^T) * head_dim ** -0.5`, softmax in float32.
    """

    def __init__(self, hidden_dim, num_heads, qkv_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.qkv_bias = bool(qkv_bias)
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}."
            )
        self.head_dim = self.hidden_dim // self.num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = FusedBiasDense(
            3 * self.hidden_dim, use_bias=self.qkv_bias, dtype=self.dtype_policy, name="qkv"
        )
        self.proj = FusedBiasDense(self.hidden_dim, dtype=self.dtype_policy, name="proj")

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.proj.build(tuple(input_shape[:-1]) + (self.hidden_dim,))

    def call(self, x):
        n = x.shape[1]
        qkv = self.qkv(x)
        qkv = ops.reshape(qkv, (-1, n, 3, self.num_heads, self.head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (B, N, heads, hd)
        out = multi_head_attention(q, k, v, self.scale)  # (B, N, heads, hd)
        return self.proj(ops.reshape(out, (-1, n, self.hidden_dim)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"hidden_dim": self.hidden_dim, "num_heads": self.num_heads, "qkv_bias": self.qkv_bias}
        )
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseMLP(keras.layers.Layer):
    """Transformer MLP, optionally with ViTPose++ partially shared experts.

    `h = GELU(fc1(x))`; without experts `out = fc2(h)` (C outputs). With
    `num_experts = E > 0` and `part_features = P`, `fc2` has C - P outputs
    and `out = concat([fc2(h), h @ experts_kernel[e] + experts_bias[e]])`,
    e = `expert_index` (a Python int, fixed when the graph is built).

    Weights: `fc1` (C, mlp_dim), `fc2` (mlp_dim, C - P), `experts_kernel`
    (E, mlp_dim, P), `experts_bias` (E, P).
    """

    def __init__(self, hidden_dim, mlp_dim, num_experts=0, part_features=0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.mlp_dim = int(mlp_dim)
        self.num_experts = int(num_experts or 0)
        self.part_features = int(part_features or 0) if self.num_experts else 0
        if self.num_experts and not 0 < self.part_features < self.hidden_dim:
            raise ValueError(
                f"part_features must be in (0, hidden_dim={self.hidden_dim}) when num_experts > 0, "
                f"got {part_features}."
            )
        self.fc1 = FusedBiasDense(self.mlp_dim, dtype=self.dtype_policy, name="fc1")
        self.fc2 = FusedBiasDense(
            self.hidden_dim - self.part_features, dtype=self.dtype_policy, name="fc2"
        )

    def build(self, input_shape):
        self.fc1.build(input_shape)
        hidden_shape = tuple(input_shape[:-1]) + (self.mlp_dim,)
        self.fc2.build(hidden_shape)
        if self.num_experts:
            limit = 1.0 / math.sqrt(self.mlp_dim)
            self.experts_kernel = self.add_weight(
                shape=(self.num_experts, self.mlp_dim, self.part_features),
                initializer=keras.initializers.RandomUniform(-limit, limit),
                name="experts_kernel",
            )
            self.experts_bias = self.add_weight(
                shape=(self.num_experts, self.part_features), initializer="zeros", name="experts_bias"
            )

    def call(self, x, expert_index=0):
        h = exact_gelu(self.fc1(x))
        out = self.fc2(h)
        if self.num_experts:
            index = int(expert_index)
            if not 0 <= index < self.num_experts:
                raise ValueError(f"expert_index {index} out of range [0, {self.num_experts}).")
            kernel = ops.cast(self.experts_kernel[index], h.dtype)
            bias = ops.cast(self.experts_bias[index], h.dtype)
            out = ops.concatenate([out, ops.matmul(h, kernel) + bias], axis=-1)
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "mlp_dim": self.mlp_dim,
                "num_experts": self.num_experts,
                "part_features": self.part_features,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseTransformerBlock(keras.layers.Layer):
    """Pre-norm ViT block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`.

    Input / output (B, N, C). `expert_index` selects the ViTPose++ expert.
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        mlp_dim,
        layer_norm_epsilon=1e-6,
        qkv_bias=True,
        num_experts=0,
        part_features=0,
        drop_path_rate=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.drop_path_rate = float(drop_path_rate or 0.0)
        # Stochastic depth on both residual branches while training (None: off).
        self.drop_path = DropPath(self.drop_path_rate, dtype=self.dtype_policy, name="drop_path") if (
            self.drop_path_rate) else None
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.qkv_bias = bool(qkv_bias)
        self.num_experts = int(num_experts or 0)
        self.part_features = int(part_features or 0) if self.num_experts else 0
        self.norm1 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm1"
        )
        self.attention = self._make_attention()
        self.norm2 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm2"
        )
        self.mlp = ViTPoseMLP(
            self.hidden_dim,
            self.mlp_dim,
            num_experts=self.num_experts,
            part_features=self.part_features,
            dtype=self.dtype_policy,
            name="mlp",
        )

    def _make_attention(self):  # overridden by the window blocks (vitpose_window_attention.py)
        return ViTPoseAttention(self.hidden_dim, self.num_heads, qkv_bias=self.qkv_bias, dtype=self.dtype_policy,
                                name="attention")

    def build(self, input_shape):
        for layer in (self.norm1, self.attention, self.norm2, self.mlp):
            layer.build(input_shape)

    def call(self, x, expert_index=0, training=None):
        x = x + self.residual(self.attention(self.norm1(x)), training)
        return x + self.residual(self.mlp(self.norm2(x), expert_index=expert_index), training)

    def residual(self, branch, training=None):
        """A residual branch's output after stochastic depth (unchanged at inference or rate 0)."""
        return branch if self.drop_path is None else self.drop_path(branch, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "qkv_bias": self.qkv_bias,
                "num_experts": self.num_experts,
                "part_features": self.part_features,
                "drop_path_rate": self.drop_path_rate,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseClassicHead(keras.layers.Layer):
    """Classic decoder: [ConvTranspose(k4, s2, p1, no bias), BN, ReLU] x n, 1x1 conv.

    Input features (B, Hp, Wp, C); output heatmaps (B, Hp * 2^n, Wp * 2^n, K).
    Sub-layers `deconv_{i}`, `bn_{i}` and `final_conv`. A torch
    ConvTranspose2d(k=4, s=2, p=1) equals Keras Conv2DTranspose(4, 2,
    padding="same") with kernel = weight.transpose(2, 3, 1, 0). The deconvolutions
    are computed by `apply_transposed_conv`: four 2x2 convolutions on
    TensorFlow and JAX (faster there, and XLA differentiates them well), the
    layer's own transposed convolution on PyTorch; same weights either way
    (`keras_pose.layers.transposed_conv`).
    """

    def __init__(
        self,
        num_keypoints,
        deconv_filters=(256, 256),
        deconv_kernel_size=4,
        final_kernel_size=1,
        batch_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_keypoints = int(num_keypoints)
        self.deconv_filters = [int(f) for f in deconv_filters]
        self.deconv_kernel_size = int(deconv_kernel_size)
        self.final_kernel_size = int(final_kernel_size)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        if self.deconv_kernel_size != 4:
            raise ValueError("Only 4x4 stride-2 deconvolutions (padding 1) are supported.")
        self.deconvs, self.norms = [], []
        for i, filters in enumerate(self.deconv_filters):
            self.deconvs.append(
                keras.layers.Conv2DTranspose(
                    filters,
                    self.deconv_kernel_size,
                    strides=2,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=head_initializer(),
                    dtype=self.dtype_policy,
                    name=f"deconv_{i}",
                )
            )
            self.norms.append(
                keras.layers.BatchNormalization(
                    epsilon=self.batch_norm_epsilon, momentum=0.9, dtype=self.dtype_policy, name=f"bn_{i}"
                )
            )
        self.final_conv = keras.layers.Conv2D(
            self.num_keypoints,
            self.final_kernel_size,
            padding="same",
            kernel_initializer=head_initializer(),
            dtype=self.dtype_policy,
            name="final_conv",
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for deconv, norm in zip(self.deconvs, self.norms):
            deconv.build(shape)
            shape = tuple(deconv.compute_output_shape(shape))
            norm.build(shape)
        self.final_conv.build(shape)

    def call(self, x, training=None):
        for deconv, norm in zip(self.deconvs, self.norms):
            x = ops.relu(norm(apply_transposed_conv(deconv, x), training=training))
        return self.final_conv(x)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for deconv in self.deconvs:
            shape = tuple(deconv.compute_output_shape(shape))
        return shape[:-1] + (self.num_keypoints,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_keypoints": self.num_keypoints,
                "deconv_filters": list(self.deconv_filters),
                "deconv_kernel_size": self.deconv_kernel_size,
                "final_kernel_size": self.final_kernel_size,
                "batch_norm_epsilon": self.batch_norm_epsilon,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseSimpleHead(keras.layers.Layer):
    """Simple decoder: ReLU, bilinear x`upsample` (half-pixel centres), conv to K.

    Input features (B, Hp, Wp, C); output heatmaps (B, Hp * s, Wp * s, K).
    Matches torch `F.interpolate(relu(x), scale_factor=s, mode="bilinear",
    align_corners=False)` then Conv2d(C, K, 3, padding=1). Sub-layer
    `final_conv`.
    """

    def __init__(self, num_keypoints, upsample=4, final_kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.num_keypoints = int(num_keypoints)
        self.upsample = int(upsample)
        self.final_kernel_size = int(final_kernel_size)
        self.final_conv = keras.layers.Conv2D(
            self.num_keypoints,
            self.final_kernel_size,
            padding="same",
            kernel_initializer=head_initializer(),
            dtype=self.dtype_policy,
            name="final_conv",
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        up = (shape[0], _mul(shape[1], self.upsample), _mul(shape[2], self.upsample), shape[3])
        self.final_conv.build(up)

    def call(self, x, training=None):
        if self.upsample != 1:
            # ReLU and resize in float32: TF's bilinear resize (and its XLA
            # gradient) is float32-only, and mixing it with a bfloat16 ReLU
            # gradient fails to compile under mixed precision + jit_compile.
            dtype = x.dtype
            x = ops.relu(ops.cast(x, "float32"))
            size = (x.shape[1] * self.upsample, x.shape[2] * self.upsample)
            x = ops.image.resize(x, size, interpolation="bilinear", antialias=False)
            x = ops.cast(x, dtype)
        else:
            x = ops.relu(x)
        return self.final_conv(x)

    def compute_output_shape(self, input_shape):
        s = self.upsample
        return (input_shape[0], _mul(input_shape[1], s), _mul(input_shape[2], s), self.num_keypoints)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_keypoints": self.num_keypoints,
                "upsample": self.upsample,
                "final_kernel_size": self.final_kernel_size,
            }
        )
        return config


def _mul(dim, factor):
    return None if dim is None else dim * factor


DECODERS = ("classic", "simple", "minimal")


def make_head(decoder, num_keypoints, deconv_filters=(256, 256), dtype=None, name="head", upsample=4):
    """A "classic" (with `deconv_filters`), "simple" or "minimal" (x`upsample`) ViTPose heatmap head."""
    if decoder == "classic":
        return ViTPoseClassicHead(num_keypoints, deconv_filters=deconv_filters, dtype=dtype, name=name)
    if decoder == "simple":
        return ViTPoseSimpleHead(num_keypoints, upsample=upsample, dtype=dtype, name=name)
    if decoder == "minimal":
        from keras_pose.models.vitpose.vitpose_minimal_head import ViTPoseMinimalHead

        return ViTPoseMinimalHead(num_keypoints, upsample=upsample, dtype=dtype, name=name)
    raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
