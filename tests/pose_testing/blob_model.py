"""A tiny real Keras top-down model (`BlobPoseModel`) that turns coloured blobs into heatmaps, and images of such blobs."""

import keras
import numpy as np

from keras_pose.keypoints import KeypointSpec
from keras_pose.models.top_down_pose_estimator import TopDownPoseEstimator


SPEC = KeypointSpec(
    name="blobs",
    keypoint_names=["red", "green", "blue"],
    skeleton=[("red", "green"), ("green", "blue")],
)


def _sampling_matrix(out_size, in_size, udp):
    """(out, in) bilinear weights sampling the input where the codec expects.

    UDP heatmap pixel j sits at input pixel j * (in - 1) / (out - 1); the
    standard (MSRA) convention puts it at j * in / out.
    """
    ratio = (in_size - 1) / (out_size - 1) if udp else in_size / out_size
    matrix = np.zeros((out_size, in_size), np.float32)
    for j in range(out_size):
        pos = min(j * ratio, in_size - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, in_size - 1)
        frac = pos - lo
        matrix[j, lo] += 1.0 - frac
        matrix[j, hi] += frac
    return matrix


class _Resample(keras.layers.Layer):
    """Samples (B, H, W, C) at the heatmap grid's positions in the input."""

    def __init__(self, rows, cols, **kwargs):
        super().__init__(**kwargs)
        self.rows = keras.ops.convert_to_tensor(rows)
        self.cols = keras.ops.convert_to_tensor(cols)

    def call(self, x):
        return keras.ops.einsum("hH,bHWc,wW->bhwc", self.rows, x, self.cols) / 255.0

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.rows.shape[0], self.cols.shape[0], input_shape[3])


class BlobPoseModel(TopDownPoseEstimator):
    """Heatmap k = colour channel k of the crop, sampled on the heatmap grid."""

    def __init__(self, image_size=(128, 96), udp=True, **kwargs):
        heatmap_size = (image_size[0] // 4, image_size[1] // 4)
        inputs = keras.Input((*image_size, 3), name="images")
        resample = _Resample(
            _sampling_matrix(heatmap_size[0], image_size[0], udp),
            _sampling_matrix(heatmap_size[1], image_size[1], udp),
            dtype="float32",
            name="heatmaps",
        )
        outputs = resample(inputs)
        codec = {
            "type": "UDPHeatmap" if udp else "MSRAHeatmap",
            "input_size": list(image_size),
            "heatmap_size": list(heatmap_size),
            "sigma": 2.0,
        }
        if not udp:
            codec["unbiased"] = True
        kwargs.setdefault("keypoint_spec", SPEC)
        kwargs.setdefault("preprocessing", {"mean": [0, 0, 0], "std": [1, 1, 1], "channel_order": "rgb"})
        kwargs.setdefault("decoding", {"codec": codec, "padding": 1.25, "flip_test": False, "shift_heatmap": False})
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)


def _blob_image(people, size=(420, 640), sigma=20.0):
    """An image with one Gaussian blob per keypoint, colour = keypoint index."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.zeros((h, w, 3), np.float32)
    for person in people:
        for k, (x, y) in enumerate(person):
            blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
            image[..., k] = np.maximum(image[..., k], 255.0 * blob)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


PEOPLE = np.array(
    [
        [[120.0, 80.0], [150.0, 160.0], [110.0, 250.0]],
        [[430.0, 120.0], [470.0, 200.0], [520.0, 330.0]],
    ],
    np.float32,
)


BOXES = np.array([[80.0, 50.0, 110.0, 240.0], [400.0, 90.0, 150.0, 270.0]], np.float32)
