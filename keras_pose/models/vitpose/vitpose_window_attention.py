"""Window attention variants of the ViTPose backbone ("attention type flexibility").

The ViTPose paper (Xu et al. 2022, sec. 4.4) trains the plain ViT at a
higher feature resolution (patch stride 8, a 1/8 token map) with cheaper
attention in every block; the released checkpoints and the official code
only have global attention. This module adds, per transformer block:

- "window": non-overlapping `window_size` windows, each attending within
  itself, with a learned relative position bias (Swin, Liu et al. 2021):
  a `((2 wh - 1) * (2 ww - 1), heads)` table indexed by the pairwise
  (dy, dx) of the window's tokens, timm's `get_relative_position_index`
  layout.
- "shifted_window": the same after a cyclic shift of the token map by
  (-wh // 2, -ww // 2), with Swin's -100 mask between tokens that come from
  different regions of the un-shifted map; the output is shifted back.
- "pooling_window" / "shifted_pooling_window": the window tokens also attend
  to one average-pooled token per (un-shifted) window of the whole map, as
  extra keys and values (the same qkv projection; no relative bias on them).

A window larger than the map is clamped to it and its shift on that axis is
0 (timm's rule), so one window covering the map is global attention plus the
relative bias. Maps not divisible by the window are zero-padded at the
bottom / right and the padded keys are masked (-100, as Swin's shift mask).
The qkv / proj weights have the names and shapes of `ViTPoseAttention`'s,
so a global-attention checkpoint loads into a window model; only
`relative_position_bias_table` is new (zero-initialised: such a model starts
as global attention restricted to windows).

Cost per block: scores (B, windows, heads, Nw, Nw [+ windows]) instead of
(B, heads, N, N), N = Hp * Wp, Nw = wh * ww.

All static-shape `keras.ops` (slices + concatenation for the cyclic shift,
6-D reshapes / transposes for the partition), so it runs on TensorFlow,
JAX and PyTorch and exports to ONNX and TFLite.
"""

import numpy as np

import keras
from keras import ops

from keras_pose.layers.backend_kernels import FusedBiasDense
from keras_pose.models.vitpose.vitpose_layers import ViTPoseTransformerBlock

ATTENTION_TYPES = ("global", "window", "shifted_window", "pooling_window", "shifted_pooling_window")
MASK_VALUE = -100.0  # Swin's value for masked scores (exp(-100) underflows against O(1) scores)


def block_attention_types(attention, num_layers):
    """Per-block attention types from a backbone's `attention` setting.

    A string applies to every block, except that "shifted_window" and
    "shifted_pooling_window" alternate Swin-style: even blocks (0, 2, ...)
    un-shifted ("window" / "pooling_window"), odd blocks shifted. A list
    gives each block's type literally (its length must be `num_layers`).
    """
    if isinstance(attention, str):
        if attention not in ATTENTION_TYPES:
            raise ValueError(f"attention must be one of {ATTENTION_TYPES} (or a list of them), got {attention!r}.")
        if attention.startswith("shifted_"):
            return [attention if i % 2 else attention[len("shifted_"):] for i in range(num_layers)]
        return [attention] * num_layers
    types = [str(a) for a in attention]
    if len(types) != num_layers:
        raise ValueError(f"attention lists {len(types)} block types but the backbone has {num_layers} blocks.")
    for a in types:
        if a not in ATTENTION_TYPES:
            raise ValueError(f"Unknown block attention type {a!r}; choose from {ATTENTION_TYPES}.")
    return types


def relative_position_index(window_size):
    """(Nw, Nw) int32 index into the bias table for a (wh, ww) window (timm / Swin layout)."""
    wh, ww = window_size
    coords = np.stack(np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    return ((rel[..., 0] + wh - 1) * (2 * ww - 1) + rel[..., 1] + ww - 1).astype(np.int32)


def window_geometry(grid_size, window_size, shifted):
    """Clamped window (wh, ww), shift (sh, sw) and padded map (H', W') for a (Hp, Wp) grid."""
    window = tuple(min(int(w), int(g)) for w, g in zip(window_size, grid_size))
    shift = tuple(w // 2 if shifted and g > w else 0 for w, g in zip(window, grid_size))
    padded = tuple(-(-g // w) * w for g, w in zip(grid_size, window))
    return window, shift, padded


def attention_mask(grid_size, window, shift, padded):
    """(windows, Nw, Nw) float32 additive mask: Swin's shift regions and the padded keys, 0 or -100.

    Windows in row-major order over the shifted, padded map.
    """
    (hp, wp), (wh, ww), (sh, sw), (ph, pw) = grid_size, window, shift, padded
    region = np.zeros((ph, pw), np.int64)
    if sh or sw:
        count = 0
        for hs in ((0, ph - wh), (ph - wh, ph - sh), (ph - sh, ph)) if sh else ((0, ph),):
            for ws in ((0, pw - ww), (pw - ww, pw - sw), (pw - sw, pw)) if sw else ((0, pw),):
                region[hs[0]:hs[1], ws[0]:ws[1]] = count
                count += 1
    valid = np.zeros((ph, pw), bool)
    valid[:hp, :wp] = True
    # The padding sits at the bottom / right of the shifted map (shift first, then pad: timm's order).

    def windows(a):
        return a.reshape(ph // wh, wh, pw // ww, ww).transpose(0, 2, 1, 3).reshape(-1, wh * ww)

    region_w, valid_w = windows(region), windows(valid)
    masked = (region_w[:, :, None] != region_w[:, None, :]) | ~valid_w[:, None, :]
    return np.where(masked, MASK_VALUE, 0.0).astype(np.float32)


def _roll2d(x, shift):
    """Cyclic roll of (B, H, W, C) by (-sh, -sw) (sh, sw >= 0) with static slices (exportable)."""
    sh, sw = shift
    if sh:
        x = ops.concatenate([x[:, sh:], x[:, :sh]], axis=1)
    if sw:
        x = ops.concatenate([x[:, :, sw:], x[:, :, :sw]], axis=2)
    return x


def _unroll2d(x, shift):
    """Inverse of `_roll2d`."""
    sh, sw = shift
    if sh:
        x = ops.concatenate([x[:, -sh:], x[:, :-sh]], axis=1)
    if sw:
        x = ops.concatenate([x[:, :, -sw:], x[:, :, :-sw]], axis=2)
    return x


def _partition(x, window, padded):
    """(B, H', W', C) -> (B, windows, Nw, C), windows row-major."""
    (wh, ww), (ph, pw) = window, padded
    c = x.shape[-1]
    x = ops.reshape(x, (-1, ph // wh, wh, pw // ww, ww, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, (ph // wh) * (pw // ww), wh * ww, c))


def _merge(x, window, padded):
    """Inverse of `_partition`: (B, windows, Nw, C) -> (B, H', W', C)."""
    (wh, ww), (ph, pw) = window, padded
    c = x.shape[-1]
    x = ops.reshape(x, (-1, ph // wh, pw // ww, wh, ww, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, ph, pw, c))


def _pad(x, grid_size, padded):
    extra = (padded[0] - grid_size[0], padded[1] - grid_size[1])
    if extra == (0, 0):
        return x
    return ops.pad(x, ((0, 0), (0, extra[0]), (0, extra[1]), (0, 0)))


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseWindowAttention(keras.layers.Layer):
    """Window multi-head self-attention over a (Hp, Wp) token map.

    Input / output (B, Hp * Wp, C) row-major tokens. Weights `qkv` (C, 3C)
    and `proj` (C, C) as `ViTPoseAttention`; `relative_position_bias_table`
    ((2 wh - 1) * (2 ww - 1), heads), zeros at initialisation.

    Args:
        hidden_dim: C.
        num_heads: attention heads.
        grid_size: (Hp, Wp) token map.
        window_size: (wh, ww) tokens (an int: square), clamped to the map.
        shifted: Swin cyclic shift by half a window with the region mask.
        pooling: also attend to one average-pooled token per un-shifted
            window (extra keys and values).
        qkv_bias: bias on the qkv projection.
    """

    def __init__(self, hidden_dim, num_heads, grid_size, window_size=8, shifted=False, pooling=False,
                 qkv_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.grid_size = tuple(int(g) for g in grid_size)
        if isinstance(window_size, (int, np.integer)):
            window_size = (window_size, window_size)
        self.window_size = tuple(int(w) for w in window_size)
        if len(self.window_size) != 2 or min(self.window_size) < 1:
            raise ValueError(f"window_size must be a positive int or (height, width), got {window_size}.")
        self.shifted = bool(shifted)
        self.pooling = bool(pooling)
        self.qkv_bias = bool(qkv_bias)
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}.")
        self.head_dim = self.hidden_dim // self.num_heads
        self.scale = self.head_dim**-0.5
        self.window, self.shift, self.padded = window_geometry(self.grid_size, self.window_size, self.shifted)
        self.num_windows = (self.padded[0] // self.window[0]) * (self.padded[1] // self.window[1])
        self._index = relative_position_index(self.window).reshape(-1)
        mask = attention_mask(self.grid_size, self.window, self.shift, self.padded)
        self._mask = mask if mask.any() else None
        # Pooled tokens: mean over the valid tokens of each un-shifted window.
        _, _, unshifted_pad = window_geometry(self.grid_size, self.window_size, False)
        valid = np.zeros(unshifted_pad, np.float32)
        valid[: self.grid_size[0], : self.grid_size[1]] = 1.0
        wh, ww = self.window
        counts = valid.reshape(unshifted_pad[0] // wh, wh, unshifted_pad[1] // ww, ww).sum(axis=(1, 3))
        self._pool_scale = (1.0 / counts.reshape(1, -1, 1)).astype(np.float32)
        self.qkv = FusedBiasDense(3 * self.hidden_dim, use_bias=self.qkv_bias, dtype=self.dtype_policy, name="qkv")
        self.proj = FusedBiasDense(self.hidden_dim, dtype=self.dtype_policy, name="proj")

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.proj.build(tuple(input_shape[:-1]) + (self.hidden_dim,))
        wh, ww = self.window
        self.relative_position_bias_table = self.add_weight(
            shape=((2 * wh - 1) * (2 * ww - 1), self.num_heads), initializer="zeros",
            name="relative_position_bias_table",
        )

    def relative_position_bias(self):
        """(heads, Nw, Nw) float32 bias of the current table."""
        nw = self.window[0] * self.window[1]
        table = ops.cast(self.relative_position_bias_table, "float32")
        bias = ops.reshape(ops.take(table, self._index, axis=0), (nw, nw, self.num_heads))
        return ops.transpose(bias, (2, 0, 1))

    def _heads(self, t, n):
        """(B, W, n, C) -> (B, W, heads, n, hd)."""
        t = ops.reshape(t, (-1, t.shape[1], n, self.num_heads, self.head_dim))
        return ops.transpose(t, (0, 1, 3, 2, 4))

    def _pooled_kv(self, grid):
        """(B, Hp, Wp, C) -> pooled keys and values (B, 1, heads, windows, hd)."""
        _, _, unshifted_pad = window_geometry(self.grid_size, self.window_size, False)
        tokens = _partition(_pad(grid, self.grid_size, unshifted_pad), self.window, unshifted_pad)
        pooled = ops.sum(tokens, axis=2) * ops.cast(self._pool_scale, tokens.dtype)  # (B, windows, C)
        qkv = self.qkv(pooled)
        c = self.hidden_dim
        k, v = qkv[..., c:2 * c], qkv[..., 2 * c:]
        return self._heads(k[:, None], self.num_windows), self._heads(v[:, None], self.num_windows)

    def call(self, x):
        hp, wp = self.grid_size
        c, nw = self.hidden_dim, self.window[0] * self.window[1]
        grid = ops.reshape(x, (-1, hp, wp, c))
        windows = _partition(_pad(_roll2d(grid, self.shift), self.grid_size, self.padded), self.window, self.padded)
        qkv = self.qkv(windows)  # (B, W, Nw, 3C)
        q, k, v = (self._heads(qkv[..., i * c:(i + 1) * c], nw) for i in range(3))  # (B, W, heads, Nw, hd)
        q = q * ops.cast(self.scale, q.dtype)
        # Scores and softmax in float32 (also under mixed precision).
        scores = ops.cast(ops.matmul(q, ops.swapaxes(k, -1, -2)), "float32")  # (B, W, heads, Nw, Nw)
        scores = scores + self.relative_position_bias()[None, None]
        if self._mask is not None:
            scores = scores + ops.convert_to_tensor(self._mask[None, :, None])
        if self.pooling:
            pk, pv = self._pooled_kv(grid)  # (B, 1, heads, windows, hd): the same for every window
            pooled_scores = ops.cast(ops.matmul(q, ops.swapaxes(pk, -1, -2)), "float32")  # (B, W, heads, Nw, windows)
            probs = ops.cast(ops.softmax(ops.concatenate([scores, pooled_scores], axis=-1), axis=-1), v.dtype)
            out = ops.matmul(probs[..., :nw], v) + ops.matmul(probs[..., nw:], pv)
        else:
            probs = ops.cast(ops.softmax(scores, axis=-1), v.dtype)
            out = ops.matmul(probs, v)  # (B, W, heads, Nw, hd)
        out = ops.reshape(ops.transpose(out, (0, 1, 3, 2, 4)), (-1, self.num_windows, nw, c))
        out = _unroll2d(_merge(out, self.window, self.padded)[:, :hp, :wp], self.shift)
        return self.proj(ops.reshape(out, (-1, hp * wp, c)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "hidden_dim": self.hidden_dim, "num_heads": self.num_heads, "grid_size": list(self.grid_size),
            "window_size": list(self.window_size), "shifted": self.shifted, "pooling": self.pooling,
            "qkv_bias": self.qkv_bias,
        })
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseWindowTransformerBlock(ViTPoseTransformerBlock):
    """`ViTPoseTransformerBlock` whose attention is a `ViTPoseWindowAttention`.

    Input / output (B, Hp * Wp, C). Same sub-layer names (`norm1`,
    `attention`, `norm2`, `mlp`) and weights as the global block, plus the
    attention's relative position bias table.

    Args:
        grid_size, window_size: see `ViTPoseWindowAttention`.
        attention_type: "window", "shifted_window", "pooling_window" or
            "shifted_pooling_window" (this block's own type: no alternation).
        other arguments: `ViTPoseTransformerBlock`.
    """

    def __init__(self, hidden_dim, num_heads, mlp_dim, grid_size, window_size=8, attention_type="window", **kwargs):
        if attention_type not in ATTENTION_TYPES[1:]:
            raise ValueError(f"attention_type must be one of {ATTENTION_TYPES[1:]}, got {attention_type!r}.")
        self.grid_size = tuple(int(g) for g in grid_size)
        self.window_size = [int(w) for w in np.broadcast_to(np.asarray(window_size), (2,))]
        self.attention_type = attention_type
        super().__init__(hidden_dim, num_heads, mlp_dim, **kwargs)

    def _make_attention(self):
        return ViTPoseWindowAttention(
            self.hidden_dim, self.num_heads, self.grid_size, window_size=self.window_size,
            shifted="shifted" in self.attention_type, pooling="pooling" in self.attention_type,
            qkv_bias=self.qkv_bias, dtype=self.dtype_policy, name="attention",
        )

    def get_config(self):
        config = super().get_config()
        config.update({"grid_size": list(self.grid_size), "window_size": list(self.window_size),
                       "attention_type": self.attention_type})
        return config
