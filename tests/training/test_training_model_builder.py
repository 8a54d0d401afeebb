"""The training model builder is driven by the registry of task classes.

Every task class a family registers with Keras is an architecture of the
training config, checked against its own constructors and built through its
`from_checkpoint_config`; a new family (here a one-conv `TinyPose` defined in
this file, registered like every keras-pose family) trains from a config and
is fine-tuned from its preset without any change to `training/model_builder.py`.
"""

import keras
import keras_hub
import numpy as np
import pytest

import keras_pose
from keras_pose.models import TopDownPoseEstimator
from keras_pose.models.top_down_pose_estimator import resolve_num_keypoints
from keras_pose.training import TrainConfigError, load_train_config, train_from_config
from keras_pose.training.model_builder import architectures, build_model_from_config, resolve_train_keypoint_spec

from pose_testing.paths import DATA_DIR

COCO_JSON = DATA_DIR / "coco" / "test_coco.json"


# --------------------------------------------------------- a new family
@keras.saving.register_keras_serializable(package="keras_pose_test")
class TinyBackbone(keras_hub.models.Backbone):
    """One stride-4 conv: (B, H, W, 3) -> (B, H/4, W/4, filters)."""

    def __init__(self, *, image_size=(64, 48), filters=8, dtype=None, **kwargs):
        inputs = keras.Input(shape=(*image_size, 3), name="images")
        features = keras.layers.Conv2D(filters, 3, strides=4, padding="same", dtype=dtype, name="conv")(inputs)
        super().__init__(inputs=inputs, outputs=features, dtype=dtype, **kwargs)
        self.image_size = tuple(int(s) for s in image_size)
        self.filters = int(filters)

    def get_config(self):
        return {**super().get_config(), "image_size": list(self.image_size), "filters": self.filters}


@keras.saving.register_keras_serializable(package="keras_pose_test")
class TinyPose(TopDownPoseEstimator):
    """A 1x1 conv head on `TinyBackbone`: heatmaps (B, H/4, W/4, K)."""

    backbone_cls = TinyBackbone

    def __init__(self, backbone, keypoint_spec="coco", head_bias=True, preprocessing=None, decoding=None,
                 preprocessor=None, **kwargs):
        num_keypoints = resolve_num_keypoints(keypoint_spec)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.head = keras.layers.Conv2D(num_keypoints, 1, use_bias=head_bias, name="head")
        inputs = keras.Input(shape=(*backbone.image_size, 3), name="images")
        outputs = keras.layers.Activation("linear", dtype="float32", name="heatmaps")(self.head(backbone(inputs)))
        super().__init__(inputs=inputs, outputs=outputs, keypoint_spec=keypoint_spec, preprocessing=preprocessing,
                         decoding=decoding, **kwargs)
        self.head_bias = bool(head_bias)

    @classmethod
    def from_checkpoint_config(cls, *, image_size, keypoint_spec, dtype=None, name=None, filters=8, **task):
        backbone = TinyBackbone(image_size=image_size, filters=filters, dtype=dtype)
        return cls(backbone, keypoint_spec=keypoint_spec, **({"name": name} if name else {}), **task)

    def get_config(self):
        return {**super().get_config(), "head_bias": self.head_bias}


@keras.saving.register_keras_serializable(package="keras_pose_test")
class TinyFixedPose(TinyPose):
    """A family whose keypoints cannot be re-headed (as CPM)."""

    supports_new_keypoints = False


def _config(out_dir, **model):
    return {
        "model": {"architecture": "TinyPose", "input_size": [64, 48], **model},
        "keypoints": "coco",
        "data": {"train": str(COCO_JSON), "cache_images": "decoded"},
        "train": {"batch_size": 4, "epochs": 1, "steps_per_epoch": 2, "augmentation": False, "learning_rate": 1e-3},
        "output": {"dir": str(out_dir), "plot": False},
    }


# ------------------------------------------------------------- the tests
def test_every_registered_task_class_is_an_architecture():
    names = architectures()
    for name in ("ViTPose", "Hourglass", "CPM", "CPN", "TinyPose", "TinyFixedPose"):
        assert name in names
    # A multi-dataset task is fine-tuned from its preset (model.dataset); a base class has no backbone.
    assert "ViTPosePP" not in names and "TopDownPoseEstimator" not in names
    for name, cls in names.items():
        assert issubclass(cls, TopDownPoseEstimator) and cls.backbone_cls is not None, name


@pytest.mark.parametrize("architecture", sorted(architectures()))
def test_every_architecture_checks_its_own_constructors(tmp_path, architecture):
    cls = architectures()[architecture]
    raw = _config(tmp_path / "out", architecture=architecture, backbone={"no_such_arg": 1})
    with pytest.raises(TrainConfigError, match=rf"'model.backbone.no_such_arg'.*\.{cls.backbone_cls.__name__}:"):
        load_train_config(raw)
    raw["model"]["backbone"] = {}
    raw["model"]["head"] = {"no_such_arg": 1}
    with pytest.raises(TrainConfigError, match=rf"'model.head.no_such_arg'.*\.{architecture}:"):
        load_train_config(raw)


def test_a_new_family_builds_from_a_config_without_editing_the_builder(tmp_path):
    raw = _config(tmp_path / "out", backbone={"filters": "4"}, head={"head_bias": False, "name": "tiny"})
    config = load_train_config(raw)
    assert config.get("model.backbone") == {"filters": 4}
    model = build_model_from_config(config, resolve_train_keypoint_spec(config))
    assert type(model) is TinyPose and model.name == "tiny"
    assert model.image_size == (64, 48) and model.backbone.filters == 4 and not model.head_bias
    assert model.keypoint_spec.num_keypoints == 17
    assert tuple(model.output.shape) == (None, 16, 12, 17)
    with pytest.raises(TrainConfigError, match=r"did you mean 'filters'.*test_training_model_builder.TinyBackbone"):
        load_train_config(_config(tmp_path / "out", backbone={"filter": 4}))
    # The backbone is named by its task (from_checkpoint_config takes one `name`).
    with pytest.raises(TrainConfigError, match="'model.backbone.name'.*model.head.name"):
        load_train_config(_config(tmp_path / "out", backbone={"name": "x"}))


def test_a_new_family_trains_and_is_fine_tuned_for_new_keypoints(tmp_path):
    result = train_from_config(_config(tmp_path / "run"), verbose=0)
    assert type(result.model) is TinyPose and len(result.history["loss"]) == 1
    assert np.isfinite(result.history["loss"][0])
    preset = keras_pose.from_preset(result.preset_dir)
    assert type(preset) is TinyPose

    # Fine-tuning the preset on other keypoints keeps its backbone, with a new head.
    raw = _config(tmp_path / "out")
    raw["model"] = {"preset": result.preset_dir}
    raw["keypoints"] = "mpii"
    config = load_train_config(raw)
    model = build_model_from_config(config, resolve_train_keypoint_spec(config))
    assert type(model) is TinyPose and model.keypoint_spec.num_keypoints == 16
    np.testing.assert_array_equal(model.backbone.get_layer("conv").kernel.numpy(),
                                  preset.backbone.get_layer("conv").kernel.numpy())


def test_a_family_that_cannot_be_reheaded_says_so(tmp_path):
    fixed = TinyFixedPose.from_checkpoint_config(image_size=(64, 48), keypoint_spec="coco")
    fixed.save_to_preset(str(tmp_path / "preset"))
    raw = _config(tmp_path / "out")
    raw["model"] = {"preset": str(tmp_path / "preset")}
    raw["keypoints"] = "mpii"
    config = load_train_config(raw)
    with pytest.raises(TrainConfigError, match="differ from the TinyFixedPose preset's 'coco'.*own keypoint spec"):
        build_model_from_config(config, resolve_train_keypoint_spec(config))
    # The same keypoints under another spec object are fine (the weights are kept).
    raw["keypoints"] = "coco"
    config = load_train_config(raw)
    assert type(build_model_from_config(config, resolve_train_keypoint_spec(config))) is TinyFixedPose
