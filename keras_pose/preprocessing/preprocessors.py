"""Pose preprocessors: what turns images into a pose network's input, saved in the preset.

A preprocessor is a keras-hub `Preprocessor` (saved as ``preprocessor.json``
and inside ``task.json``, restored by ``from_preset``) holding:

- an image converter (`PoseImageConverter`: mean / std / channel order);
- for top-down models a cropper (`TopDownPreprocessor.cropper`,
  `TopDownCropper`); for whole-image models a resizer
  (`WholeImagePreprocessor.resizer`, `WholeImageResizer`).

``predict_keypoints`` (host, NumPy + OpenCV), the ``tf.data`` pipeline
(`keras_pose.data`) and the export metadata use this one object.

Calling a preprocessor (``preprocessor(x)``, or with ``y`` /
``sample_weight``) normalises images that already have the model's input size
(crops, letterboxed images): it is the image converter. Pose tasks do *not*
apply it inside ``fit`` / ``predict`` / ``evaluate``: those take model-ready
inputs (e.g. from `keras_pose.data.model_dataset`), so nothing is normalised
twice.
"""

import keras

from keras_pose.errors import PreprocessingError
from keras_pose.preprocessing.image_converter import PoseImageConverter
from keras_pose.preprocessing.top_down_cropper import TopDownCropper
from keras_pose.preprocessing.whole_image_resizer import WholeImageResizer
from keras_pose.utils.backend_imports import import_keras_hub

keras_hub = import_keras_hub()  # without TensorFlow on JAX / PyTorch (utils.backend_imports)


class PosePreprocessor(keras_hub.models.Preprocessor):
    """Base of the pose preprocessors: an image converter plus the geometry of a paradigm.

    Args:
        image_converter: a `PoseImageConverter` (default ImageNet RGB).
        **kwargs: `keras_hub.models.Preprocessor` arguments (``name``,
            ``config_file``).
    """

    image_converter_cls = PoseImageConverter
    # The paradigm's geometry: the constructor argument / attribute name, its class, an example.
    geometry_name = None
    geometry_cls = None
    geometry_example = ""

    def __init__(self, image_converter=None, **kwargs):
        super().__init__(**kwargs)
        if image_converter is None:
            image_converter = PoseImageConverter()
        if not isinstance(image_converter, PoseImageConverter):
            raise PreprocessingError(
                f"`image_converter` must be a keras_pose PoseImageConverter, got {type(image_converter).__name__}."
            )
        self.image_converter = image_converter
        self.built = True  # no weights (see PoseImageConverter: an unbuilt layer slows Keras' JAX / PyTorch steps)

    def normalize(self, images):
        """NumPy: RGB pixels ``(..., H, W, 3)`` -> float32 network input."""
        return self.image_converter.normalize(images)

    def fill_value(self):
        """The RGB pixel value that normalises to zero (the converter's mean)."""
        return self.image_converter.fill_value()

    def call(self, x, y=None, sample_weight=None):
        x = self.image_converter(x)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def _set_geometry(self, value):
        if not isinstance(value, self.geometry_cls):
            raise PreprocessingError(
                f"`{self.geometry_name}` must be a {self.geometry_cls.__name__}, got {type(value).__name__}; "
                f"e.g. {self.geometry_example}."
            )
        object.__setattr__(self, self.geometry_name, value)

    @property
    def image_size(self):
        """``(height, width)`` of the model input (the cropper's / resizer's)."""
        return getattr(self, self.geometry_name).image_size

    def _geometry_config(self):
        return {self.geometry_name: getattr(self, self.geometry_name)} if self.geometry_name else {}

    @classmethod
    def from_preset(cls, preset, config_file="preprocessor.json", **kwargs):
        """The preprocessor saved in a preset (its ``preprocessor.json``).

        Args:
            preset: a preset directory or keras-hub handle.
            config_file: the file name (default ``preprocessor.json``).
            **kwargs: config overrides.

        Raises:
            PresetError: the preset has no such file (presets saved before
                the preprocessor existed: load the task, e.g.
                ``keras_pose.from_preset(path).preprocessor``), or it holds
                another class.
        """
        import os

        from keras_hub.src.utils.preset_utils import check_file_exists, load_json

        from keras_pose.errors import PresetError
        from keras_pose.utils.json_files import read_json

        if not check_file_exists(preset, config_file):
            raise PresetError(
                f"Preset {preset!r} has no {config_file}: it was saved before presets carried their "
                "preprocessor. Load the task (keras_pose.from_preset(preset).preprocessor), or save it again "
                "with save_to_preset to add the file."
            )
        where = os.path.join(preset, config_file) if os.path.isdir(str(preset)) else f"{config_file} of {preset!r}"
        fix = "the preset is damaged; save it again with save_to_preset (or convert the checkpoint again)."
        if os.path.isdir(str(preset)):
            config = read_json(where, PresetError, fix)
        else:
            config = load_json(preset, config_file)
        class_name = config.get("class_name") if isinstance(config, dict) else None
        if not isinstance(class_name, str) or not class_name or not isinstance(config.get("config", {}), dict):
            raise PresetError(
                f"{where} names no preprocessor class (a JSON object with a \"class_name\" and a \"config\" "
                f"object is expected); {fix}"
            )
        config["config"] = {**config.get("config", {}), **kwargs}
        try:
            preprocessor = keras.saving.deserialize_keras_object(config)
        except (TypeError, ValueError) as e:
            raise PresetError(f"{where} could not be read as a preprocessor ({e}); {fix}") from None
        if not isinstance(preprocessor, cls):
            raise PresetError(
                f"{config_file} of preset {preset!r} holds a {type(preprocessor).__name__}, not a {cls.__name__}."
            )
        return preprocessor

    def get_config(self):
        config = super().get_config()
        for key, value in self._geometry_config().items():
            config[key] = keras.saving.serialize_keras_object(value)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("cropper", "resizer"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return super().from_config(config)


@keras.saving.register_keras_serializable(package="keras_pose")
class TopDownPreprocessor(PosePreprocessor):
    """Whole images and person boxes -> normalised crops (top-down models).

    Args:
        cropper: a `TopDownCropper` (padding, border, warp, input size).
        image_converter: a `PoseImageConverter`.
        **kwargs: `keras_hub.models.Preprocessor` arguments.

    ```python
    crops, centers, scales = model.preprocessor.crop_people(image, boxes)
    keypoints = model.preprocessor.cropper.to_image(decoded, centers, scales)
    ```
    """

    geometry_name = "cropper"
    geometry_cls = TopDownCropper
    geometry_example = "TopDownCropper(image_size=(256, 192), padding=1.25, warp='udp')"

    def __init__(self, cropper, image_converter=None, **kwargs):
        super().__init__(image_converter=image_converter, **kwargs)
        self._set_geometry(cropper)

    def crop_fill_value(self):
        """What fills a crop outside the image: 0, or the converter's mean for ``border="mean"``."""
        return self.fill_value() if self.cropper.border == "mean" else 0

    def crop_people(self, image, boxes):
        """Crops of the people in one image, ready for the network.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            boxes: ``(M, 4)`` xywh boxes in image pixels.

        Returns:
            ``(crops (M, h, w, 3) float32 normalised, centers (M, 2), scales
            (M, 2))`` (crop box size in pixels, aspect fixed to the input).
        """
        crops, centers, scales = self.cropper.crop(image, boxes, fill_value=self.crop_fill_value())
        return self.normalize(crops), centers, scales


@keras.saving.register_keras_serializable(package="keras_pose")
class WholeImagePreprocessor(PosePreprocessor):
    """Whole images -> resized, padded, normalised inputs (bottom-up / one-stage models).

    Args:
        resizer: a `WholeImageResizer`.
        image_converter: a `PoseImageConverter`.
        **kwargs: `keras_hub.models.Preprocessor` arguments.
    """

    geometry_name = "resizer"
    geometry_cls = WholeImageResizer
    geometry_example = "WholeImageResizer(image_size=(640, 640), pad_value=114, pad_position='bottom_right')"

    def __init__(self, resizer, image_converter=None, **kwargs):
        super().__init__(image_converter=image_converter, **kwargs)
        self._set_geometry(resizer)

    def resize_image(self, image):
        """One RGB image -> ``(normalised float32 (H', W', 3) input, (2, 3) image -> input matrix)``."""
        array, matrix = self.resizer.resize(image)
        return self.normalize(array), matrix
