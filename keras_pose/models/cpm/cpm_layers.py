"""Layers of Convolutional Pose Machines (CPM).

The convolutions are `keras_pose.layers.ConvModule` (mmcv ConvModule:
conv -> BN -> ReLU with torch padding) and `TorchMaxPool2D`; this module adds
the optional centre map of the original CPM.
"""

import keras
from keras import ops

# mmpose's CPM backbone has 3 stride-2 max-pools before the belief maps.
CPM_STRIDE = 8


@keras.saving.register_keras_serializable(package="keras_pose")
class CPMCenterMap(keras.layers.Layer):
    """A fixed Gaussian centred on the crop, at the resolution of its input.

    The original CPM (Wei et al. 2016, MPII single-person crops) feeds a
    Gaussian "centre map" marking the person to be estimated into every
    stage after the first. mmpose's CPM (and every released mmpose CPM
    checkpoint) has none; `CPMBackbone(center_map_sigma=...)` turns it on
    for training such a model.

    Input any (B, h, w, C) feature map; output (B, h, w, 1) in the layer's
    compute dtype: `exp(-((x - cx)^2 + (y - cy)^2) / (2 sigma^2))` with
    (cx, cy) = ((w - 1) / 2, (h - 1) / 2), the crop centre in this map's pixel
    centres.

    Args:
        sigma: Gaussian sigma in pixels of the input feature map (the
            original uses 21 input pixels, i.e. 21 / 8 belief-map pixels).
    """

    def __init__(self, sigma, **kwargs):
        super().__init__(**kwargs)
        self.sigma = float(sigma)
        if self.sigma <= 0:
            raise ValueError(f"center map sigma must be positive, got {sigma}.")

    def call(self, features):
        shape = ops.shape(features)
        batch, h, w = shape[0], shape[1], shape[2]
        ys = ops.arange(h, dtype="float32")
        xs = ops.arange(w, dtype="float32")
        cy = (ops.cast(h, "float32") - 1.0) / 2.0
        cx = (ops.cast(w, "float32") - 1.0) / 2.0
        d2 = ops.square(ys - cy)[:, None] + ops.square(xs - cx)[None, :]
        g = ops.exp(-d2 / (2.0 * self.sigma * self.sigma))
        g = ops.broadcast_to(g[None, :, :, None], (batch, h, w, 1))
        return ops.cast(g, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[2], 1)

    def get_config(self):
        config = super().get_config()
        config["sigma"] = self.sigma
        return config


def cpm_output_size(image_size):
    """Belief-map (h, w) of a CPM for an input (H, W): three ceil-halvings."""
    out = []
    for s in image_size:
        s = int(s)
        for _ in range(3):
            s = (s + 2 - 3) // 2 + 1
        out.append(s)
    return tuple(out)
