"""`PoseImageConverter`: uint8 RGB pixels -> the network's normalised input.

One set of parameters (``mean``, ``std`` in 0..255 units, in the network's
channel order, and ``channel_order``) with two implementations side by side:
`normalize` (NumPy, host inference) and `normalize_tf` (TensorFlow ops, the
``tf.data`` pipeline and keras-hub's TF workflow). They compute the same
float32 expression, ``(pixel[..., order] - mean) / std``.
"""

import keras
import numpy as np

from keras_pose.errors import PreprocessingError
from keras_pose.reference_constants import IMAGENET_MEAN, IMAGENET_STD
from keras_pose.utils.backend_imports import import_keras_hub

keras_hub = import_keras_hub()  # without TensorFlow on JAX / PyTorch (utils.backend_imports)


CHANNEL_ORDERS = ("rgb", "bgr")

# keras-hub ImageConverter settings this converter does not use (it never resizes).
_UNUSED_IMAGE_CONVERTER_KEYS = (
    "image_size",
    "scale",
    "offset",
    "interpolation",
    "antialias",
    "crop_to_aspect_ratio",
    "pad_to_aspect_ratio",
    "bounding_box_format",
)


def _three_floats(values, name, positive=False):
    try:
        out = tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(np.isfinite(out)) or (positive and min(out) <= 0):
        what = "positive finite numbers" if positive else "finite numbers"
        raise PreprocessingError(
            f"`{name}` must be 3 {what} (one per channel, 0..255 units, in the network's channel "
            f"order), got {values!r}; e.g. ImageNet {name}={list(IMAGENET_MEAN if name == 'mean' else IMAGENET_STD)}."
        )
    return out


@keras.saving.register_keras_serializable(package="keras_pose")
class PoseImageConverter(keras_hub.layers.ImageConverter):
    """Normalise RGB images for a pose network: ``(pixel[..., order] - mean) / std``.

    A keras-hub `ImageConverter` that never resizes (top-down crops and
    letterboxed images are made by the cropper / resizer).

    Args:
        mean: 3 per-channel means, 0..255 units, in the network's channel
            order (default ImageNet RGB).
        std: 3 per-channel standard deviations, same units and order.
        channel_order: ``"rgb"`` or ``"bgr"``: the order the network expects;
            inputs are always RGB and are reversed for ``"bgr"``.
        **kwargs: `keras.layers.Layer` arguments (``name``, ``dtype``).

    Calling the layer on ``(..., H, W, 3)`` images (any real dtype) returns
    float32 normalised images.
    """

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, channel_order="rgb", **kwargs):
        for key in _UNUSED_IMAGE_CONVERTER_KEYS:
            kwargs.pop(key, None)
        super().__init__(image_size=None, scale=None, offset=None, **kwargs)
        if channel_order not in CHANNEL_ORDERS:
            raise PreprocessingError(
                f"`channel_order` must be 'rgb' or 'bgr' (the order the network expects), got {channel_order!r}."
            )
        self.mean = _three_floats(mean, "mean")
        self.std = _three_floats(std, "std", positive=True)
        self.channel_order = channel_order
        # keras-hub's unused `Resizing` sublayer holds no weights: mark it built, or
        # Keras' JAX / PyTorch trainers see an unbuilt layer and run the whole model
        # eagerly (JAX `predict_on_batch`) or trace it symbolically (`train_on_batch`)
        # before every call.
        self.resizing.built = True

    def fill_value(self):
        """The per-channel mean in the *input* (RGB) order: the pixel that normalises to 0."""
        return self.mean[::-1] if self.channel_order == "bgr" else self.mean

    def normalize(self, images):
        """NumPy: ``(..., H, W, 3)`` RGB pixels (0..255) -> float32 network input."""
        x = np.asarray(images, dtype=np.float32)
        if self.channel_order == "bgr":
            x = x[..., ::-1]
        return (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)

    def normalize_tf(self, images):
        """TensorFlow twin of `normalize` (graph compatible, for tf.data)."""
        import tensorflow as tf

        x = tf.cast(images, tf.float32)
        if self.channel_order == "bgr":
            x = x[..., ::-1]
        return (x - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)

    def call(self, inputs):
        if self._use_tf_workflow():
            return self.normalize_tf(inputs)
        return keras.ops.convert_to_tensor(self.normalize(keras.ops.convert_to_numpy(inputs)))

    def get_config(self):
        config = super().get_config()
        for key in _UNUSED_IMAGE_CONVERTER_KEYS:
            config.pop(key, None)
        config.update({"mean": list(self.mean), "std": list(self.std), "channel_order": self.channel_order})
        return config

    def legacy_config(self):
        """The ``preprocessing`` dict of presets saved before the preprocessor existed."""
        return {"mean": list(self.mean), "std": list(self.std), "channel_order": self.channel_order}
