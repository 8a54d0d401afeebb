"""RTMO's dynamic coordinate classifier (DCC, mmpose `rtmo_head.DCC`), the keypoint decoder.

For each kept instance (after box decoding and NMS), from its pose vector
(C,), its box as centre and padded size `bbox_cs` = (cx, cy, 1.25 w, 1.25 h)
and its prior (the grid point that predicted it, `grids` = (px, py)), all in
input pixels:

1. keypoint features: `pose_to_kpts` (Linear C -> K * F, BatchNorm1d),
   reshaped (K, F), through a gated attention unit (GAU: ScaleNorm, `uv`
   Linear + SiLU split [u (2F), v (2F), base (s)], q / k = base * gamma +
   beta + `pos_enc`, kernel relu(q k^T / sqrt(s))^2, `o`(u * kernel v),
   plus `res_scale` * input);
2. bins: `num_bins` = (Nx, Ny) positions linspace(-0.5, 0.5, N) * size +
   (centre - prior) per axis, sine-encoded (1-D, `spe_channels`,
   temperature 300) and projected by `x_fc` / `y_fc` (Linear);
3. 1-D heatmaps: features . bin encodings (K, Nx) and (K, Ny), clamped to
   +-5e4, softmax (exp(x - max) / (sum + 1e-8));
4. keypoint = expectation over the absolute bins linspace(-0.5, 0.5, N) *
   size + centre (not prior-relative), in input pixels.

The training-only `sigma_fc` branch lives in the task's training branches
(`rtmo_training.RTMOTrainingBranches`); `keypoints_and_heatmaps` gives the
heatmaps its loss needs.
"""

import math

import keras
from keras import ops

from keras_pose.models.rtmo.rtmo_layers import sine_frequencies

SOFTMAX_EPSILON = 1e-8
LOGIT_CLAMP = 5e4


def linspace_bins(num):
    """`torch.linspace(-0.5, 0.5, num)` in float32 (the reference's bin buffers)."""
    import numpy as np

    return np.linspace(-0.5, 0.5, num, dtype=np.float64).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_pose")
class DynamicCoordinateClassifier(keras.layers.Layer):
    """RTMO's DCC keypoint decoder.

    Call `dcc([pose_vecs, bbox_cs, grids])` with pose_vecs (B, M, C),
    bbox_cs (B, M, 4) = (cx, cy, sx, sy) (the 1.25x padded box) and grids
    (B, M, 2) = the priors (x, y), in input pixels; returns keypoints
    (B, M, K, 2) (x, y) in input pixels.

    Args:
        in_channels: C, the pose-vector width.
        num_keypoints: K.
        feat_channels: F, width of each keypoint feature (128).
        num_bins: (Nx, Ny) bins along x and y (192, 256).
        spe_channels: width of the bins' sine encoding (128).
        spe_temperature: its temperature (300).
        gau_s: GAU attention width s (128).
        gau_expansion: GAU expansion (u, v width = expansion * F).
        norm_epsilon: BatchNorm1d epsilon (torch 1e-5); the GAU ScaleNorm
            clamps at 1e-5 too.

    Weights: `pose_to_kpts` (Dense), `pose_to_kpts_bn`, `gau_uv` (Dense, no
    bias), `gau_o` (Dense, no bias), `gau_gamma` / `gau_beta` (2, s),
    `gau_ln_g` (1,), `gau_res_scale` (F,), `pos_enc` (K, s), `x_fc`,
    `y_fc`; non-trainable buffers `x_bins` (Nx,), `y_bins` (Ny,),
    `spe_dim_t` (spe_channels / 2,).
    """

    def __init__(self, in_channels=256, num_keypoints=17, feat_channels=128, num_bins=(192, 256),
                 spe_channels=128, spe_temperature=300.0, gau_s=128, gau_expansion=2, norm_epsilon=1e-5,
                 **kwargs):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.num_keypoints = int(num_keypoints)
        self.feat_channels = int(feat_channels)
        self.num_bins = tuple(int(n) for n in num_bins)
        self.spe_channels = int(spe_channels)
        self.spe_temperature = float(spe_temperature)
        self.gau_s = int(gau_s)
        self.gau_expansion = int(gau_expansion)
        self.norm_epsilon = float(norm_epsilon)
        if self.spe_channels % 2 or len(self.num_bins) != 2 or min(self.num_bins) < 2:
            raise ValueError(
                f"spe_channels ({self.spe_channels}) must be even and num_bins ({self.num_bins}) two counts >= 2."
            )
        self.gau_e = self.feat_channels * self.gau_expansion
        dense = lambda units, name, bias=True: keras.layers.Dense(  # noqa: E731
            units, use_bias=bias, dtype=self.dtype_policy, name=name
        )
        self.pose_to_kpts = dense(self.num_keypoints * self.feat_channels, "pose_to_kpts")
        self.pose_to_kpts_bn = keras.layers.BatchNormalization(
            epsilon=self.norm_epsilon, momentum=0.9, dtype=self.dtype_policy, name="pose_to_kpts_bn"
        )
        self.gau_uv = dense(2 * self.gau_e + self.gau_s, "gau_uv", bias=False)
        self.gau_o = dense(self.feat_channels, "gau_o", bias=False)
        self.x_fc = dense(self.feat_channels, "x_fc")
        self.y_fc = dense(self.feat_channels, "y_fc")

    def build(self, input_shape=None):
        k, f, s = self.num_keypoints, self.feat_channels, self.gau_s
        self.pose_to_kpts.build((None, self.in_channels))
        self.pose_to_kpts_bn.build((None, k * f))
        self.gau_uv.build((None, k, f))
        self.gau_o.build((None, k, self.gau_e))
        self.x_fc.build((None, None, self.spe_channels))
        self.y_fc.build((None, None, self.spe_channels))

        def weight(name, shape, value=None, trainable=True):
            init = keras.initializers.Constant(value) if value is not None else "random_normal"
            if trainable:
                return self.add_weight(name=name, shape=shape, initializer=init)
            # Bin positions and frequencies stay float32 under mixed precision (pixel positions need
            # more than bfloat16's 3 digits).
            return self.add_weight(name=name, shape=shape, initializer=init, trainable=False, dtype="float32",
                                   autocast=False)

        self.gau_gamma = weight("gau_gamma", (2, s))
        self.gau_beta = weight("gau_beta", (2, s), 0.0)
        self.gau_ln_g = weight("gau_ln_g", (1,), 1.0)
        self.gau_res_scale = weight("gau_res_scale", (f,), 1.0)
        self.pos_enc = weight("pos_enc", (k, s))
        self.x_bins = weight("x_bins", (self.num_bins[0],), linspace_bins(self.num_bins[0]), trainable=False)
        self.y_bins = weight("y_bins", (self.num_bins[1],), linspace_bins(self.num_bins[1]), trainable=False)
        half = self.spe_channels // 2
        self.spe_dim_t = weight("spe_dim_t", (half,), sine_frequencies(half, self.spe_temperature),
                                trainable=False)
        self.built = True

    # ------------------------------------------------------------------ parts
    def _gau(self, x):
        """GAU on keypoint features (N, K, F) -> (N, K, F)."""
        dtype = x.dtype
        norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)) * (self.feat_channels ** -0.5)
        normed = x / ops.maximum(norm, 1e-5) * ops.cast(self.gau_ln_g, dtype)
        uv = ops.silu(self.gau_uv(normed))
        e, s = self.gau_e, self.gau_s
        u, v, base = uv[..., :e], uv[..., e : 2 * e], uv[..., 2 * e :]
        gamma, beta = ops.cast(self.gau_gamma, dtype), ops.cast(self.gau_beta, dtype)
        pos = ops.cast(self.pos_enc, dtype)
        q = base * gamma[0] + beta[0] + pos
        k = base * gamma[1] + beta[1] + pos
        kernel = ops.square(ops.relu(ops.matmul(q, ops.transpose(k, (0, 2, 1))) * (1.0 / math.sqrt(s))))
        out = self.gau_o(u * ops.matmul(kernel, v))
        return x * ops.cast(self.gau_res_scale, dtype) + out

    def _encode_bins(self, positions, fc, dtype):
        """Sine encoding (cos | sin, float32) of bin positions (N, n) -> fc in `dtype` -> (N, n, F)."""
        freq = ops.expand_dims(positions, -1) / self.spe_dim_t
        return fc(ops.cast(ops.concatenate([ops.cos(freq), ops.sin(freq)], axis=-1), dtype))

    @staticmethod
    def _softmax(logits):
        logits = ops.clip(logits, -LOGIT_CLAMP, LOGIT_CLAMP)
        exp = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True))
        return exp / (ops.sum(exp, axis=-1, keepdims=True) + SOFTMAX_EPSILON)

    def keypoints_and_heatmaps(self, pose_vecs, bbox_cs, grids, training=None, mask=None):
        """Flat instances: pose_vecs (N, C), bbox_cs (N, 4), grids (N, 2) in pixels.

        `mask` (N,) bool, optional: the rows that are real instances. While
        training, ``pose_to_kpts_bn``'s batch statistics (and so its moving
        statistics) come from these rows only, as mmpose's BatchNorm1d sees
        only the positive priors; padding rows are normalised with them but do
        not shift them. If no row is real, every row is used.

        Returns (keypoints (N, K, 2) pixels, x_probs (N, K, Nx), y_probs
        (N, K, Ny)): the normalised 1-D heatmaps (float32) the MLE loss of
        training compares with its targets (mmpose ``DCC.forward_train``
        without the sigmas, which the task's training branches predict).
        """
        bbox_cs = ops.cast(bbox_cs, "float32")
        grids = ops.cast(grids, "float32")
        if mask is not None:
            mask = ops.convert_to_tensor(mask, "bool")
            mask = ops.logical_or(mask, ops.logical_not(ops.any(mask)))  # no real row: all rows
        feats = self.pose_to_kpts_bn(self.pose_to_kpts(pose_vecs), training=training, mask=mask)
        feats = self._gau(ops.reshape(feats, (-1, self.num_keypoints, self.feat_channels)))

        center, size = bbox_cs[:, :2], bbox_cs[:, 2:]
        coords, probs = [], []
        for axis, (bins, fc) in enumerate(((self.x_bins, self.x_fc), (self.y_bins, self.y_fc))):
            spread = ops.expand_dims(bins, 0) * size[:, axis : axis + 1]  # (N, n)
            relative = spread + (center[:, axis : axis + 1] - grids[:, axis : axis + 1])
            encoding = self._encode_bins(relative, fc, feats.dtype)  # (N, n, F)
            logits = ops.cast(ops.matmul(feats, ops.transpose(encoding, (0, 2, 1))), "float32")  # (N, K, n)
            prob = self._softmax(logits)
            absolute = ops.expand_dims(spread + center[:, axis : axis + 1], 1)  # (N, 1, n)
            coords.append(ops.sum(prob * absolute, axis=-1))
            probs.append(prob)
        return ops.stack(coords, axis=-1), probs[0], probs[1]

    def call(self, inputs, training=None):
        pose_vecs, bbox_cs, grids = inputs
        num_instances = ops.shape(pose_vecs)[1]
        keypoints, _, _ = self.keypoints_and_heatmaps(
            ops.reshape(pose_vecs, (-1, self.in_channels)), ops.reshape(bbox_cs, (-1, 4)), ops.reshape(grids, (-1, 2)),
            training=training,
        )
        return ops.reshape(keypoints, (-1, num_instances, self.num_keypoints, 2))

    def compute_output_shape(self, input_shape):
        pose_shape = tuple(input_shape[0])
        return (*pose_shape[:-1], self.num_keypoints, 2)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "in_channels": self.in_channels,
                "num_keypoints": self.num_keypoints,
                "feat_channels": self.feat_channels,
                "num_bins": list(self.num_bins),
                "spe_channels": self.spe_channels,
                "spe_temperature": self.spe_temperature,
                "gau_s": self.gau_s,
                "gau_expansion": self.gau_expansion,
                "norm_epsilon": self.norm_epsilon,
            }
        )
        return config


__all__ = ["DynamicCoordinateClassifier", "linspace_bins"]
