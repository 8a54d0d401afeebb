"""The old ``preprocessing`` / ``decoding`` dicts <-> preprocessor, codec and test settings.

Presets and ``.keras`` files saved before the preprocessor existed keep their
settings in two dicts of the task config (and preset entries still declare
them that way):

- ``preprocessing``: ``{"mean", "std", "channel_order"}``;
- ``decoding``: ``{"codec": <codec config>, "flip_test", "shift_heatmap",
  "padding", optional "padding_xy", "border", "warp"}`` plus informational
  keys (``"reference"``, ``"cpn_test"``) no code reads.

This module is the one place that translates them: `resolve_top_down_settings`
turns them (or the new objects, or a family's defaults) into a
`TopDownPreprocessor`, a codec and the test-time settings, and
`legacy_decoding` gives the dict view back (recorded by export metadata and
``model.decoding``). Before this change the crop warp was implied by the
codec (UDP codecs were cropped with the UDP warp); `default_warp` keeps that
rule for dicts that do not say.
"""

from keras_pose.codecs import get_codec
from keras_pose.codecs import serialize_codec
from keras_pose.errors import PreprocessingError
from keras_pose.preprocessing.image_converter import PoseImageConverter
from keras_pose.preprocessing.preprocessors import TopDownPreprocessor
from keras_pose.preprocessing.top_down_cropper import TopDownCropper
from keras_pose.reference_constants import IMAGENET_PREPROCESSING


CROP_KEYS = ("padding", "padding_xy", "border", "warp")
TEST_KEYS = ("flip_test", "shift_heatmap")
PREPROCESSING_KEYS = ("mean", "std", "channel_order")
# Keys of preset decoding dicts that document the reference; no code reads them.
INFORMATIONAL_KEYS = ("reference", "cpn_test", "notes")


def default_warp(codec):
    """The crop warp a codec was trained with when a config does not say: ``"udp"`` for ``UDPHeatmap``."""
    name = codec.get("type") if isinstance(codec, dict) else type(codec).registered_name
    return "udp" if name == "UDPHeatmap" else "standard"


def _checked_keys(value, known, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PreprocessingError(f"`{what}` must be a dict, got {type(value).__name__}.")
    unknown = sorted(set(value) - set(known) - set(INFORMATIONAL_KEYS))
    if unknown:
        raise PreprocessingError(f"`{what}` has unknown key(s) {unknown}; known keys: {sorted(known)}.")
    return {k: v for k, v in value.items() if k in known}


def split_decoding(decoding):
    """An old ``decoding`` dict -> ``(codec config or None, cropper kwargs, test settings)``."""
    decoding = _checked_keys(decoding, ("codec", *CROP_KEYS, *TEST_KEYS), "decoding")
    crop = {k: decoding[k] for k in CROP_KEYS if decoding.get(k) is not None}
    test = {k: bool(decoding[k]) for k in TEST_KEYS if k in decoding}
    return decoding.get("codec"), crop, test


def _conflict(new, old):
    raise PreprocessingError(
        f"Got both `{new}` and the old-style `{old}` settings it replaces; pass one of them "
        f"(`{new}` is what get_config saves)."
    )


def resolve_top_down_settings(
    image_size,
    heatmap_size,
    *,
    preprocessor=None,
    codec=None,
    test_cfg=None,
    preprocessing=None,
    decoding=None,
    defaults=None,
):
    """The preprocessor, codec and test settings of a top-down task.

    Each part comes from the new argument if given, else from the old dicts,
    else from the family's ``defaults``.

    Args:
        image_size: model input ``(height, width)``.
        heatmap_size: model output ``(height, width)`` (fills the default
            codec's sizes).
        preprocessor: a `TopDownPreprocessor` or None.
        codec: a codec or codec config, or None.
        test_cfg: ``{"flip_test", "shift_heatmap"}`` (partial) or None.
        preprocessing, decoding: the old dicts (see the module docstring).
        defaults: ``{"codec": config without sizes, "test_cfg": dict,
            "crop": cropper kwargs, "preprocessing": dict}``.

    Returns:
        ``(preprocessor, codec, test_cfg)``.

    Raises:
        PreprocessingError: a part given both ways, unknown keys, bad values.
    """
    defaults = defaults or {}
    legacy_codec, crop, legacy_test = split_decoding(decoding)
    if codec is not None and legacy_codec is not None:
        _conflict("codec", 'decoding["codec"]')
    if codec is None:
        codec = legacy_codec
    if codec is None:
        codec = {**defaults.get("codec", {"type": "UDPHeatmap"}), "input_size": list(image_size)}
        codec["heatmap_size"] = list(heatmap_size)
    codec = get_codec(codec)
    codec_input = tuple(getattr(codec, "input_size", image_size))
    if codec_input != tuple(image_size):
        raise PreprocessingError(
            f"The codec encodes for input_size={codec_input} but the model input is {tuple(image_size)} "
            "(h, w); build the codec for the model's input size."
        )

    if preprocessor is not None:
        if preprocessing is not None or crop:
            _conflict("preprocessor", "preprocessing / decoding crop")
        if not isinstance(preprocessor, TopDownPreprocessor):
            raise PreprocessingError(
                f"A top-down task needs a TopDownPreprocessor, got {type(preprocessor).__name__}."
            )
        if tuple(preprocessor.image_size) != tuple(image_size):
            raise PreprocessingError(
                f"The preprocessor crops {tuple(preprocessor.image_size)} (h, w) but the model input is "
                f"{tuple(image_size)}; build the cropper with the model's input size."
            )
    else:
        converter = _checked_keys(preprocessing or defaults.get("preprocessing") or IMAGENET_PREPROCESSING,
                                  PREPROCESSING_KEYS, "preprocessing")
        crop = {**defaults.get("crop", {}), **crop}
        crop.setdefault("warp", default_warp(codec))
        preprocessor = TopDownPreprocessor(
            cropper=TopDownCropper(image_size, **crop), image_converter=PoseImageConverter(**converter)
        )

    if test_cfg is not None and legacy_test:
        _conflict("test_cfg", "decoding flip_test / shift_heatmap")
    test = dict(defaults.get("test_cfg", {"flip_test": False, "shift_heatmap": False}))
    test.update(_checked_keys(test_cfg, TEST_KEYS, "test_cfg") if test_cfg is not None else legacy_test)
    return preprocessor, codec, {k: bool(v) for k, v in test.items()}


def legacy_decoding(preprocessor, codec, test_cfg):
    """The old-style ``decoding`` dict of a top-down task (export metadata, ``model.decoding``).

    Returns:
        ``{"codec": <codec config>, "flip_test", "shift_heatmap", "padding",
        "warp"}`` plus ``"padding_xy"`` and ``"border"`` when set.
    """
    cropper = preprocessor.cropper
    out = {"codec": serialize_codec(codec), **{k: bool(test_cfg.get(k, False)) for k in TEST_KEYS}}
    out["padding"] = cropper.padding
    if cropper.padding_xy is not None:
        out["padding_xy"] = list(cropper.padding_xy)
    if cropper.border != "zeros":
        out["border"] = cropper.border
    out["warp"] = cropper.warp
    return out
