"""The minimal ViTPose decoder: a per-token linear projection and pixel shuffle.

The ViTPose++ paper (Xu et al. 2023) also reports a decoder lighter than the
"simple" one: each token is projected linearly to `K * r * r` values, which
a depth-to-space (pixel shuffle) rearranges into an r x r block of the
heatmaps, r = heatmap resolution / token resolution (4 for 1/16 tokens and
1/4 heatmaps, 2 for 1/8 tokens). No convolution, no activation.
"""

import keras
from keras import ops

# Same start as the other ViTPose heads (vitpose_layers.HEAD_INITIALIZER): near-zero heatmaps.
_INITIALIZER = keras.initializers.RandomNormal(stddev=0.001)


def pixel_shuffle(x, factor, channels):
    """Depth-to-space in torch `PixelShuffle` channel order.

    (B, H, W, K * r * r) with channel index `k * r * r + i * r + j` ->
    (B, H * r, W * r, K), output pixel (y * r + i, x * r + j). Static H, W.
    """
    h, w, r = x.shape[1], x.shape[2], int(factor)
    x = ops.reshape(x, (-1, h, w, channels, r, r))
    x = ops.transpose(x, (0, 1, 4, 2, 5, 3))  # (B, H, r_i, W, r_j, K)
    return ops.reshape(x, (-1, h * r, w * r, channels))


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseMinimalHead(keras.layers.Layer):
    """Minimal decoder: Dense(K * r^2) per token, then pixel shuffle by r.

    Input features (B, Hp, Wp, C); output heatmaps (B, Hp * r, Wp * r, K),
    r = `upsample`. Sub-layer `projection` (kernel (C, K r^2), bias (K r^2,)).

    Args:
        num_keypoints: K.
        upsample: r, heatmap pixels per token side (4 for patch stride 16
            and 1/4 heatmaps).
    """

    def __init__(self, num_keypoints, upsample=4, **kwargs):
        super().__init__(**kwargs)
        self.num_keypoints = int(num_keypoints)
        self.upsample = int(upsample)
        if self.upsample < 1:
            raise ValueError(f"upsample must be a positive int (heatmap pixels per token), got {upsample}.")
        self.projection = keras.layers.Dense(
            self.num_keypoints * self.upsample**2,
            kernel_initializer=_INITIALIZER,
            dtype=self.dtype_policy,
            name="projection",
        )

    def build(self, input_shape):
        self.projection.build(tuple(input_shape))

    def call(self, x, training=None):
        return pixel_shuffle(self.projection(x), self.upsample, self.num_keypoints)

    def compute_output_shape(self, input_shape):
        r = self.upsample
        scale = (lambda d: None if d is None else d * r)  # noqa: E731
        return (input_shape[0], scale(input_shape[1]), scale(input_shape[2]), self.num_keypoints)

    def get_config(self):
        config = super().get_config()
        config.update({"num_keypoints": self.num_keypoints, "upsample": self.upsample})
        return config
