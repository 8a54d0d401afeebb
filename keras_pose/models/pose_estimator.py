"""`PoseEstimator`: the paradigm-neutral base of every keras-pose task.

A pose task is a keras-hub `Task` (a functional Keras model: model-ready
inputs -> raw outputs) plus what turns images into those inputs and the
outputs into people:

- ``keypoint_spec``: the `KeypointSpec` of the predicted keypoints;
- ``preprocessor``: a `keras_pose.preprocessing.PosePreprocessor` (image
  converter + cropper or resizer), saved in presets as ``preprocessor.json``;
- ``codec``: a `keras_pose.codecs.PoseCodec` (training targets <-> outputs),
  saved in the task config;
- ``test_cfg``: test-time settings of the paradigm (top-down:
  ``flip_test``, ``shift_heatmap``);
- the training loss (`compile(loss=...)`, a `keras.losses.Loss` applied to
  the codec's target dict by `compute_loss`).

Contract for a paradigm subclass (`TopDownPoseEstimator` today;
``BottomUpPoseEstimator`` and ``OneStagePoseEstimator`` are added the same
way, without changing this class):

1. set the class attribute ``paradigm`` (``"top_down"``, ``"bottom_up"``,
   ``"one_stage"``) and ``per_image_arguments``: the names of
   `predict_keypoints` arguments given once per image (top-down:
   ``("boxes", "box_scores")``; whole-image paradigms: ``()``);
2. build its preprocessor / codec / test settings (defaults included) and
   call ``super().__init__(inputs=..., outputs=..., keypoint_spec=...,
   preprocessor=..., codec=..., test_cfg=..., loss=..., **kwargs)``;
3. implement ``_predict_image_batch(images, batch_size, names, **kwargs)``:
   the decoded RGB images (a list of ``(H, W, 3)`` uint8 arrays), labels for
   messages and the per-image arguments as lists -> one
   `keras_pose.results.PoseResult` per
   image (keypoints, scores, boxes where the paradigm has them, instance
   scores). The base reads the images, handles one image vs a list, checks
   the per-image argument counts and sets ``image_id``;
4. implement ``serving_outputs(raw_outputs)`` (the dict of tensors an
   exported graph returns) and ``export_decoding()`` (how a runtime decodes
   them: codec config, test-time flags, geometry; recorded in the export
   metadata).

Calling the model, ``fit``, ``evaluate``, ``predict`` and ``train_on_batch``
take model-ready inputs (e.g. from `keras_pose.data.model_dataset`): the
preprocessor is *not* applied inside them, so nothing is normalised twice.
Targets are dicts (the codec's keys); ``train_on_batch(x, {"heatmaps": ...,
"keypoint_weights": ...})`` works on every backend.
"""

import importlib

import keras
import numpy as np
from keras import ops
from keras import tree

from keras_pose.codecs import get_codec
from keras_pose.codecs import serialize_codec
from keras_pose.errors import PresetError
from keras_pose.losses import get_loss
from keras_pose.utils.backend_imports import import_keras_hub
from keras_pose.utils.compile_config import compile_from_loss_config, loss_compile_config
from keras_pose.utils.fast_init import fast_init_constructor

keras_hub = import_keras_hub()  # without TensorFlow on JAX / PyTorch (utils.backend_imports)

PARADIGMS = ("top_down", "bottom_up", "one_stage")


def is_single_image(images):
    """True for one image (a path or an ``(H, W, C)`` array), False for a list / batch of them."""
    return isinstance(images, (str, bytes)) or hasattr(images, "__fspath__") or (
        isinstance(images, np.ndarray) and images.ndim == 3
    )


def _tensors(value):
    return None if value is None else tree.map_structure(ops.convert_to_tensor, value)


class PoseEstimator(keras_hub.models.Task):
    """Base class of pose tasks (see the module docstring for the subclass contract).

    Args:
        keypoint_spec: a `KeypointSpec`, built-in name, dict or file path.
        preprocessor: a `PosePreprocessor` (or None for a model that has
            none, e.g. a bare test model).
        codec: a `PoseCodec` or codec config (``{"type": ..., ...}``).
        loss: default training loss (a `keras.losses.Loss`, its config or a
            name, see `keras_pose.losses.get_loss`); `KeypointMSELoss()` if
            None.
        test_cfg: dict of test-time settings (paradigm specific).
        **kwargs: passed to `keras_hub.models.Task` (`inputs`, `outputs`,
            `name`, `dtype`).

    XLA: on TensorFlow, `compile(jit_compile="auto")` (the default) compiles
    the training / evaluation step with XLA where the family's
    `tf_train_jit_compile` says it helps (measured with
    benchmarks/bench_xla.py: on for ViTPose / ViTPose++, off for CPM,
    Hourglass and CPN, which XLA slows down); inference keeps the plain graph
    (a new batch size would compile again). JAX always runs XLA; PyTorch runs
    eagerly. An explicit `jit_compile=True / False` wins.
    """

    paradigm = None
    per_image_arguments = ()
    backbone_cls = None
    preprocessor_cls = None

    # XLA for the TensorFlow training step when compile(jit_compile="auto"):
    # set per family from benchmarks/bench_xla.py (time without / with XLA).
    tf_train_jit_compile = False

    def __init_subclass__(cls, **kwargs):
        # Every task constructor builds its layers under `fast_initialization` (JAX: initialisers
        # compiled at XLA optimisation level 0; see keras_pose.utils.fast_init).
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = fast_init_constructor(cls.__dict__["__init__"])

    def __init__(self, *, keypoint_spec, preprocessor=None, codec=None, loss=None, test_cfg=None, **kwargs):
        from keras_pose.keypoints import get_keypoint_spec

        self._default_loss = get_loss(loss)
        self.preprocessor = preprocessor
        super().__init__(**kwargs)
        self.keypoint_spec = get_keypoint_spec(keypoint_spec)
        # Plain values, kept out of Keras' attribute tracking (a tracked dict
        # carries the model's layer tracker, which makes copies expensive).
        object.__setattr__(self, "_pose_codec", None if codec is None else get_codec(codec))
        object.__setattr__(self, "_pose_test_cfg", {k: v for k, v in dict(test_cfg or {}).items()})

    @property
    def codec(self):
        """The `PoseCodec` (training targets <-> outputs), or None."""
        return self.__dict__.get("_pose_codec")

    @property
    def test_cfg(self):
        """dict: the test-time settings (a copy)."""
        return dict(self.__dict__.get("_pose_test_cfg") or {})

    # ---------------------------------------------------------------- training
    def preprocess_samples(self, x, y=None, sample_weight=None):
        """Identity: ``fit`` / ``evaluate`` / ``predict`` take model-ready inputs."""
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def compile(self, optimizer="auto", loss="auto", metrics=None, **kwargs):
        """Compile for `fit` on the codec's target dicts.

        Args:
            optimizer: "auto" = Adam(learning_rate=5e-4), mmpose's default
                for heatmap models; or any Keras optimizer.
            loss: "auto" = the model's default loss (`KeypointMSELoss`, or
                the family's intermediate-supervision / OHKM loss), or a
                `keras.losses.Loss` (or its config or name) called as
                ``loss(y_true_dict, y_pred, sample_weight)``.
            metrics: passed to Keras.
            distillation: optional `keras_pose.training.OutputDistillation`
                (a frozen teacher and a weight): its term is added to the
                loss in `fit`. Not saved with the model.
        """
        distillation = kwargs.pop("distillation", None)
        if distillation is not None:
            distillation.check_student(self)
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(learning_rate=5e-4)
        self.pose_loss = self._default_loss if loss == "auto" else get_loss(loss)
        jit_compile = kwargs.pop("jit_compile", "auto")
        # TensorFlow: "auto" means the family's measured default for training
        # (`tf_train_jit_compile`); inference (`predict_on_batch`, `predict_keypoints`)
        # stays without XLA unless jit_compile=True is given (each new batch size
        # would compile again). Keras' own "auto" is False on CPU-only machines.
        auto_tf = jit_compile == "auto" and keras.backend.backend() == "tensorflow"
        if auto_tf:
            jit_compile = bool(self.tf_train_jit_compile) and not kwargs.get("run_eagerly", False)
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, jit_compile=jit_compile, **kwargs)
        object.__setattr__(self, "_predict_without_xla", auto_tf)
        object.__setattr__(self, "_distillation", distillation)  # untracked: the teacher is no part of the model

    def make_predict_function(self, force=False):
        if not self.__dict__.get("_predict_without_xla") or keras.backend.backend() != "tensorflow":
            return super().make_predict_function(force=force)
        saved = self._jit_compile
        self._jit_compile = False
        try:
            return super().make_predict_function(force=force)
        finally:
            self._jit_compile = saved

    def get_compile_config(self):
        return loss_compile_config(self, "pose_loss")

    def compile_from_config(self, config):
        compile_from_loss_config(self, config)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        if not isinstance(y, dict):
            key = self.codec.target_keys[0] if self.codec is not None and self.codec.target_keys else "heatmaps"
            y = {key: y}
        y = {k: v for k, v in y.items() if v is not None}
        loss = self.pose_loss(y, y_pred, sample_weight=sample_weight)
        distillation = self.__dict__.get("_distillation")
        if distillation is not None and x is not None:
            loss = loss + distillation(x, self.heatmaps_from_outputs(y_pred))
        if self.losses:
            loss = loss + ops.sum(ops.stack([ops.cast(l, "float32") for l in self.losses]))
        return loss

    def train_on_batch(self, x, y=None, sample_weight=None, **kwargs):
        """One training step on model-ready inputs and a target dict (any backend)."""
        return keras.Model.train_on_batch(self, _tensors(x), _tensors(y), _tensors(sample_weight), **kwargs)

    def test_on_batch(self, x, y=None, sample_weight=None, **kwargs):
        """One evaluation step on model-ready inputs and a target dict (any backend)."""
        return keras.Model.test_on_batch(self, _tensors(x), _tensors(y), _tensors(sample_weight), **kwargs)

    # Keras' own fit / evaluate / predict, not keras-hub's PipelineModel ones: those
    # re-batch array inputs through grain or tf.data to map `preprocess_samples`,
    # which is the identity here (model-ready inputs), and fail on JAX / PyTorch
    # when neither grain nor TensorFlow is loaded (keras-hub >= 0.32).
    def fit(self, *args, **kwargs):
        return keras.Model.fit(self, *args, **kwargs)

    def evaluate(self, *args, **kwargs):
        return keras.Model.evaluate(self, *args, **kwargs)

    def predict(self, *args, **kwargs):
        return keras.Model.predict(self, *args, **kwargs)

    # --------------------------------------------------------------- inference
    def predict_keypoints(self, images, batch_size=32, **kwargs):
        """Keypoints of the people in whole images.

        Args:
            images: one image or a list: file paths (read upright per their
                EXIF orientation) or (H, W, 3) RGB arrays; see
                `keras_pose.utils.image_io.read_image` for the accepted dtypes.
            batch_size: network inputs per forward pass.
            **kwargs: the paradigm's arguments; those named in
                `per_image_arguments` are given once per image (a list for a
                list of images, a single value for a single image).

        Returns:
            A `PoseResult` (single image input) or a list of them.

        Raises:
            ImageReadError: an image is missing, empty or undecodable, or an
                array has the wrong shape or dtype.
            ValueError: per-image arguments that do not match the images.
        """
        from keras_pose.utils.image_io import read_image

        single = is_single_image(images)
        image_list = [images] if single else list(images)
        per_image = {}
        for name in self.per_image_arguments:
            value = kwargs.pop(name, None)
            if single:
                per_image[name] = [value]
            else:
                per_image[name] = [None] * len(image_list) if value is None else list(value)
        wrong = {name: len(values) for name, values in per_image.items() if len(values) != len(image_list)}
        if wrong:
            counts = " and ".join(f"{count} {name.replace('_', ' ')} lists" for name, count in wrong.items())
            raise ValueError(
                f"Got {len(image_list)} images but {counts}; give one per image (None for the paradigm's default)."
            )
        arrays = [read_image(image) for image in image_list]
        names = [f"image {i}" + (f" ({image!r})" if isinstance(image, str) else "") for i, image in enumerate(image_list)]
        results = self._predict_image_batch(arrays, batch_size=batch_size, names=names, **per_image, **kwargs)
        for result, image in zip(results, image_list):
            result.image_id = image if isinstance(image, str) else None
        return results[0] if single else results

    def _predict_image_batch(self, images, batch_size=32, names=None, **kwargs):
        """Paradigm-specific inference: decoded images -> one `PoseResult` per image.

        Args:
            images: list of ``(H, W, 3)`` uint8 RGB arrays.
            batch_size: network inputs per forward pass.
            names: per image a label for error messages ("image 0 ('a.jpg')").
            **kwargs: the paradigm's arguments, those of `per_image_arguments`
                as lists (one entry per image, None where not given).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement _predict_image_batch.")

    # ------------------------------------------------------------------ export
    def serving_outputs(self, raw_outputs):
        """The dict of float32 tensors an exported graph returns, from the model's raw outputs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement serving_outputs.")

    def export_decoding(self):
        """How a runtime decodes `serving_outputs` (a JSON-plain dict the export metadata records)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement export_decoding.")

    # ----------------------------------------------------------------- presets
    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build a model from a preset.

        Args:
            preset: a registered preset name (`keras-pose presets` lists
                them; the reference checkpoint is downloaded, checked,
                converted and cached on first use), a local preset directory
                (from `save_to_preset` or `keras-pose convert`), an
                `https://` / `file://` URL of a reference checkpoint, or a
                `kaggle://` / `hf://` Keras preset handle.
            load_weights: load the weights (True) or keep a fresh
                initialisation (False).
            **kwargs: constructor overrides (e.g. `dtype="mixed_bfloat16"`,
                `dataset="ap10k"` for ViTPose++).

        Raises:
            PresetError: unknown preset, a preset of another task class, a
                damaged preset folder, or a missing or unreadable weights file.
        """
        # The loader is a higher layer (it reaches the converters): by name, as keras resolves classes.
        loader = importlib.import_module("keras_pose.preset_loading")
        return loader.load_preset(preset, cls=cls, load_weights=load_weights, **kwargs)

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Save the task as a keras-hub preset directory.

        Writes ``config.json`` + ``model.weights.h5`` (backbone), ``task.json``
        (+ ``task.weights.h5``: the head), and ``preprocessor.json`` /
        ``image_converter.json`` (the preprocessor); `from_preset` reads them
        back.
        """
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "keypoint_spec": self.keypoint_spec.get_config(),
                "codec": None if self.codec is None else serialize_codec(self.codec),
                "test_cfg": self.test_cfg,
                "loss": keras.saving.serialize_keras_object(self._default_loss),
            }
        )
        return config
