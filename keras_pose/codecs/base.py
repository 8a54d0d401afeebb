"""The public codec interface: training targets <-> model outputs.

A codec is the part of a pose model that knows what the network predicts:

- ``encode(keypoints, keypoints_visible)`` turns the ``N`` annotated people
  of one training sample, keypoints ``(N, K, 2)`` ``(x, y)`` in model-input
  pixels and visibility ``(N, K)``, into a dict of float32 targets keyed by
  `target_keys` (the ``y`` of ``model.fit``). A top-down codec (one person
  per crop) returns per-instance targets, e.g. ``{"heatmaps": (N, h, w, K),
  "keypoint_weights": (N, K)}``; a bottom-up codec would return one set of
  maps for the whole image. Unbatched ``(K, 2)`` input gives unbatched
  targets.
- ``encode_tf`` is the same in TensorFlow ops for ``tf.data`` (graph
  compatible, equal to ``encode`` to float rounding).
- ``decode(outputs)`` turns model outputs (a heatmap array, or the dict of a
  model's outputs) into ``(keypoints (N, K, 2), scores (N, K))`` float32.

The crop convention (standard or UDP warp) is not the codec's: it belongs to
the top-down cropper (`keras_pose.preprocessing.TopDownCropper`), which uses
`keras_pose.geometry`. A codec only maps model-input pixels to its target
grid and back.

Codecs are plain objects with ``get_config`` / ``from_config``; the registry
built by `register_codec` lets `get_codec` rebuild one from
``{"type": <registered name>, **config}`` (`serialize_codec`).
"""

import numpy as np

from keras_pose.errors import CodecError
from keras_pose.utils.config_object import ConfigObject

# Joints with a visibility below this get no target and weight 0 (COCO v = 1, 2 count).
VISIBLE_THRESHOLD = 0.5

CODECS = {}


def register_codec(name=None):
    """Class decorator adding a `PoseCodec` subclass to the registry `get_codec` reads.

    Args:
        name: the ``"type"`` of its configs (default: the class name).

    Example:

    ```python
    @register_codec("MyHeatmap")
    class MyHeatmap(PoseCodec):
        ...
    ```
    """

    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, PoseCodec)):
            raise CodecError(f"@register_codec decorates PoseCodec subclasses, got {cls!r}.")
        key = name or cls.__name__
        if key in CODECS and CODECS[key] is not cls and CODECS[key].__qualname__ != cls.__qualname__:
            raise CodecError(f"A codec named {key!r} is already registered ({CODECS[key].__qualname__}).")
        CODECS[key] = cls
        cls.registered_name = key
        return cls

    return decorate


class PoseCodec(ConfigObject):
    """Base class of codecs (see the module docstring for the contract).

    Subclasses set `target_keys`, implement `encode`, `encode_tf`, `decode`
    and `get_config` (the constructor's keyword arguments), and register
    themselves with `@register_codec()`.
    """

    registered_name = None
    target_keys = ()

    def encode(self, keypoints, keypoints_visible=None):
        """``(N, K, 2)`` keypoints + ``(N, K)`` visibility -> dict of float32 targets."""
        raise NotImplementedError

    def encode_tf(self, keypoints, keypoints_visible=None):
        """TensorFlow version of `encode` (for ``tf.data``)."""
        raise NotImplementedError

    def decode(self, outputs):
        """Model outputs -> ``(keypoints (N, K, 2), scores (N, K))`` float32."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        type_name = config.pop("type", cls.registered_name or cls.__name__)
        if type_name != (cls.registered_name or cls.__name__):
            raise CodecError(
                f"config is for codec type {type_name!r}, not {cls.__name__}; "
                "use keras_pose.codecs.get_codec(config)."
            )
        return cls(**config)


def check_keypoints(keypoints, keypoints_visible):
    """Keypoints and visibility of one sample as float64 ``(N, K, 2)`` / ``(N, K)`` arrays.

    Returns:
        ``(keypoints, visible, unbatched)``; ``unbatched`` when ``(K, 2)``
        was given (visibility ``(K,)``). Missing visibility means visible.

    Raises:
        CodecError: wrong shapes, naming the expected ones.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    unbatched = kp.ndim == 2
    if unbatched:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[-1] != 2:
        raise CodecError(
            f"`keypoints` must be (N, K, 2) (x, y) input pixels of N people, or (K, 2) for one person, "
            f"got shape {np.shape(keypoints)}."
        )
    if keypoints_visible is None:
        return kp, np.ones(kp.shape[:2], np.float64), unbatched
    vis = np.asarray(keypoints_visible, dtype=np.float64)
    if unbatched:
        vis = vis[None]
    if vis.shape == (*kp.shape[:2], 1):
        vis = vis[..., 0]
    if vis.shape != kp.shape[:2]:
        expected = kp.shape[1:2] if unbatched else kp.shape[:2]
        raise CodecError(
            f"`keypoints_visible` must be {tuple(expected)} to match keypoints {np.shape(keypoints)}, "
            f"got {np.shape(keypoints_visible)}."
        )
    return kp, vis, unbatched


def check_keypoints_tf(keypoints, keypoints_visible):
    """`check_keypoints` for tensors (static rank 2 or 3): float64 ``(N, K, 2)``, ``(N, K)``, unbatched."""
    import tensorflow as tf

    kp = tf.cast(tf.convert_to_tensor(keypoints), tf.float64)
    unbatched = kp.shape.rank == 2
    kp = tf.reshape(kp, [-1, tf.shape(kp)[-2], 2]) if not unbatched else kp[None]
    if keypoints_visible is None:
        vis = tf.ones(tf.shape(kp)[:2], dtype=tf.float64)
    else:
        vis = tf.reshape(tf.cast(tf.convert_to_tensor(keypoints_visible), tf.float64), tf.shape(kp)[:2])
    return kp, vis, unbatched


def unbatch_targets(targets, unbatched):
    """Drop the instance axis of every target (nested tuples too) when one person was encoded."""
    if not unbatched:
        return targets

    def first(value):
        if isinstance(value, tuple):
            return tuple(first(v) for v in value)
        return value[0]

    return {key: first(value) for key, value in targets.items()}


def serialize_codec(codec):
    """``{"type": <registered name>, **codec.get_config()}``, the form `get_codec` reads."""
    return {"type": type(codec).registered_name or type(codec).__name__, **codec.get_config()}


def get_codec(config_or_instance):
    """Build a codec.

    Args:
        config_or_instance: a `PoseCodec` (returned as is), or a dict
            ``{"type": <registered name>, **constructor kwargs}`` (the output
            of `serialize_codec`); registered names: `CODECS`.

    Returns:
        the codec.

    Raises:
        CodecError: not a codec or config, an unknown type, or bad arguments.
    """
    if isinstance(config_or_instance, PoseCodec):
        return config_or_instance
    if not isinstance(config_or_instance, dict):
        raise CodecError(
            "get_codec expects a codec instance or a dict like "
            "{'type': 'UDPHeatmap', 'input_size': (256, 192), 'heatmap_size': (64, 48)}, "
            f"got {type(config_or_instance).__name__}."
        )
    config = dict(config_or_instance)
    type_name = config.pop("type", None)
    if type_name not in CODECS:
        raise CodecError(
            f"unknown codec type {type_name!r}; the config needs 'type' set to one of "
            f"{sorted(CODECS)}."
        )
    try:
        return CODECS[type_name](**config)
    except TypeError as e:
        raise CodecError(f"bad arguments for {type_name}: {e}. Config: {config_or_instance!r}") from None
