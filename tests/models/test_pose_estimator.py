"""The paradigm-neutral `PoseEstimator`: the subclass contract, training plumbing, presets.

Two test-only paradigms prove that a bottom-up and a one-stage task fit the
base without changing it: a one-stage toy (whole letterboxed image in, boxes +
keypoints out) and a bottom-up toy (whole image in, keypoint maps out, people
grouped afterwards), both run through `predict_keypoints`. The top-down tasks
are checked for the training plumbing (dict targets, `train_on_batch`, no
double preprocessing), preset round trips with `preprocessor.json`, and
presets saved before the preprocessor existed.
"""

import json
import os

import keras
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR
from keras import ops

import keras_pose
from keras_pose.keypoints import KeypointSpec
from keras_pose.losses import CPNLoss, KeypointMSELoss, KeypointOHKMMSELoss
from keras_pose.models import PoseEstimator
from keras_pose.models.vitpose import ViTPose, ViTPoseBackbone
from keras_pose.preprocessing import (
    PoseImageConverter,
    TopDownPreprocessor,
    WholeImagePreprocessor,
    WholeImageResizer,
)
from keras_pose.results import PoseResult

SPEC = KeypointSpec(
    name="blobs",
    keypoint_names=["red", "green", "blue"],
    skeleton=[("red", "green"), ("green", "blue")],
)
INPUT = (32, 32)
PEOPLE = np.array([[[8.0, 6.0], [12.0, 20.0], [9.0, 34.0]], [[44.0, 8.0], [50.0, 22.0], [47.0, 33.0]]])


def _blob_image(people, size=(40, 64), sigma=1.5):
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.zeros((h, w, 3), np.float32)
    for person in people:
        for k, (x, y) in enumerate(person):
            image[..., k] = np.maximum(image[..., k], 255.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _whole_image_preprocessor():
    return WholeImagePreprocessor(
        resizer=WholeImageResizer(INPUT, pad_value=0, pad_position="center"),
        image_converter=PoseImageConverter(mean=[0, 0, 0], std=[1, 1, 1]),
    )


class _Peaks(keras.layers.Layer):
    """Per channel the (x, y) of its maximum and max / 255: one person's keypoints, and their box."""

    def call(self, x):
        h, w, k = x.shape[1], x.shape[2], x.shape[3]
        flat = ops.reshape(ops.transpose(x, (0, 3, 1, 2)), (-1, k, h * w))
        index = ops.argmax(flat, axis=-1)
        keypoints = ops.stack([ops.cast(index % w, "float32"), ops.cast(index // w, "float32")], axis=-1)
        boxes = ops.concatenate([ops.min(keypoints, axis=1), ops.max(keypoints, axis=1)], axis=-1)
        return {"keypoints": keypoints[:, None], "scores": ops.max(flat, axis=-1)[:, None] / 255.0,
                "boxes": boxes[:, None]}


class ToyOneStage(PoseEstimator):
    """One-stage toy: letterboxed image -> boxes + keypoints of one person (no NMS needed)."""

    paradigm = "one_stage"

    def __init__(self, keypoint_spec=SPEC, preprocessor=None, **kwargs):
        inputs = keras.Input((*INPUT, 3), name="images")
        outputs = _Peaks(name="peaks")(inputs)
        super().__init__(
            inputs=inputs, outputs=outputs, keypoint_spec=keypoint_spec,
            preprocessor=preprocessor or _whole_image_preprocessor(), **kwargs,
        )

    def _predict_image_batch(self, images, batch_size=32, names=None, score_threshold=0.5):
        inputs, matrices = zip(*(self.preprocessor.resize_image(image) for image in images))
        outputs = self.predict_on_batch(np.stack(inputs))
        results = []
        for i, (image, matrix) in enumerate(zip(images, matrices)):
            resizer = self.preprocessor.resizer
            keypoints = resizer.to_image(np.asarray(outputs["keypoints"][i]), matrix)
            corners = resizer.to_image(np.asarray(outputs["boxes"][i]).reshape(-1, 2, 2), matrix).reshape(-1, 4)
            scores = np.asarray(outputs["scores"][i])
            keep = scores.mean(-1) > score_threshold
            results.append(PoseResult(
                keypoints=keypoints[keep], scores=scores[keep],
                boxes=np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], -1)[keep],
                box_scores=None, keypoint_spec=self.keypoint_spec, image_size=image.shape[:2],
                person_scores=scores.mean(-1)[keep],
            ))
        return results

    def serving_outputs(self, raw_outputs):
        return dict(raw_outputs)

    def export_decoding(self):
        return {"resizer": self.preprocessor.resizer.get_config(), "boxes": "xyxy input px"}


class ToyBottomUp(PoseEstimator):
    """Bottom-up toy: whole image -> keypoint maps; people grouped by the order of the peaks along x."""

    paradigm = "bottom_up"

    def __init__(self, keypoint_spec=SPEC, preprocessor=None, **kwargs):
        inputs = keras.Input((*INPUT, 3), name="images")
        outputs = keras.layers.Activation("linear", name="maps")(inputs)
        super().__init__(
            inputs=inputs, outputs=outputs, keypoint_spec=keypoint_spec,
            preprocessor=preprocessor or _whole_image_preprocessor(), **kwargs,
        )

    def _predict_image_batch(self, images, batch_size=32, names=None, max_people=2):
        inputs, matrices = zip(*(self.preprocessor.resize_image(image) for image in images))
        maps = np.asarray(self.predict_on_batch(np.stack(inputs)))
        results = []
        for image, matrix, image_maps in zip(images, matrices, maps):
            per_keypoint = []
            for k in range(image_maps.shape[-1]):
                m = image_maps[..., k].copy()
                peaks = []
                for _ in range(max_people):
                    y, x = np.unravel_index(np.argmax(m), m.shape)
                    peaks.append((x, y, m[y, x] / 255.0))
                    m[max(0, y - 3):y + 4, max(0, x - 3):x + 4] = -1.0
                per_keypoint.append(sorted(peaks))  # grouping: the i-th from the left is person i
            grouped = np.array(per_keypoint, np.float32).transpose(1, 0, 2)  # (people, K, 3)
            results.append(PoseResult(
                keypoints=self.preprocessor.resizer.to_image(grouped[..., :2], matrix), scores=grouped[..., 2],
                boxes=None, box_scores=None, keypoint_spec=self.keypoint_spec, image_size=image.shape[:2],
                person_scores=grouped[..., 2].mean(-1),
            ))
        return results

    def serving_outputs(self, raw_outputs):
        return {"maps": raw_outputs}

    def export_decoding(self):
        return {"grouping": "peaks sorted along x"}


@pytest.mark.parametrize("cls", [ToyOneStage, ToyBottomUp])
def test_other_paradigms_plug_into_predict_keypoints(cls, tmp_path):
    model = cls()
    assert model.paradigm in ("one_stage", "bottom_up") and model.per_image_arguments == ()
    image = _blob_image(PEOPLE if cls is ToyBottomUp else PEOPLE[:1])
    result = model.predict_keypoints(image)
    assert isinstance(result, PoseResult) and result.image_size == (40, 64)
    expected = PEOPLE if cls is ToyBottomUp else PEOPLE[:1]
    # Letterboxed 2x smaller: peaks on the input grid are within one input pixel (2 image px).
    assert result.keypoints.shape == expected.shape
    assert np.abs(result.keypoints - expected).max() <= 2.0 + 1e-4
    np.testing.assert_allclose(result.instance_scores, result.scores.mean(-1), rtol=1e-6)
    path = tmp_path / "image.png"
    import cv2

    cv2.imwrite(str(path), image[..., ::-1])
    results = model.predict_keypoints([image, str(path)])
    assert len(results) == 2 and results[1].image_id == str(path)
    np.testing.assert_allclose(results[1].keypoints, results[0].keypoints)
    records = json.loads(result.to_json(image_id=7))
    assert len(records) == len(expected) and ("bbox" in records[0]) == (cls is ToyOneStage)
    # Export hooks and config round trip without changing the base.
    assert isinstance(model.export_decoding(), dict) and isinstance(model.serving_outputs(model.output), dict)
    clone = cls.from_config(model.get_config())
    assert clone.preprocessor.resizer == model.preprocessor.resizer and clone.keypoint_spec == SPEC
    with pytest.raises(TypeError):
        model.predict_keypoints(image, boxes=[[0, 0, 4, 4]])  # no per-image boxes in these paradigms


def test_base_hooks_are_abstract():
    inputs = keras.Input((8, 8, 3))
    model = PoseEstimator(inputs=inputs, outputs=keras.layers.Activation("linear")(inputs), keypoint_spec=SPEC)
    with pytest.raises(NotImplementedError, match="_predict_image_batch"):
        model.predict_keypoints(np.zeros((8, 8, 3), np.uint8))
    for hook in (lambda: model.serving_outputs(None), model.export_decoding):
        with pytest.raises(NotImplementedError):
            hook()


# -------------------------------------------------------------------- top-down
def _tiny_vitpose(**kwargs):
    keras.utils.set_random_seed(0)
    backbone = ViTPoseBackbone(image_size=(64, 48), hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)
    return ViTPose(backbone, deconv_filters=(8, 8), **kwargs)


def _targets(batch=2):
    rng = np.random.default_rng(0)
    return {
        "heatmaps": rng.uniform(size=(batch, 16, 12, 17)).astype("float32"),
        "keypoint_weights": np.ones((batch, 17), "float32"),
    }


def test_train_on_batch_with_dict_targets_and_no_double_preprocessing():
    model = _tiny_vitpose()
    assert isinstance(model.preprocessor, TopDownPreprocessor)
    x = np.random.default_rng(1).normal(size=(2, 64, 48, 3)).astype("float32")
    y = _targets()
    model.compile(optimizer=keras.optimizers.SGD(1e-2))
    before = float(np.asarray(model.test_on_batch(x, y)))
    expected = float(np.asarray(KeypointMSELoss()(y, model.predict_on_batch(x))))
    assert before == pytest.approx(expected, rel=1e-5)
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    # fit / predict take model-ready inputs: the preprocessor is not applied again.
    assert model.preprocess_samples(x, y)[0] is x
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(model(x)), atol=1e-5)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_fit_evaluate_predict_on_arrays_need_neither_grain_nor_tensorflow_in_keras_hub(monkeypatch):
    """On JAX / PyTorch keras-hub is imported without TensorFlow (and grain is optional): its
    PipelineModel.fit would re-batch arrays through grain or tf.data and fail (keras-hub 0.32)."""
    import types

    import keras_hub.src.utils.pipeline_model as pipeline_model

    from keras_pose.utils import backend_imports

    monkeypatch.setattr(pipeline_model, "tf", None)
    monkeypatch.setattr(pipeline_model, "grain", None)
    # keras-pose sees no TensorFlow loaded (as on JAX / PyTorch), so it cannot hand it to keras-hub.
    monkeypatch.setattr(backend_imports, "sys", types.SimpleNamespace(modules={}))
    model = _tiny_vitpose()
    x = np.random.default_rng(1).normal(size=(4, 64, 48, 3)).astype("float32")
    y = _targets(4)
    model.compile(optimizer=keras.optimizers.SGD(1e-2), jit_compile=False)
    history = model.fit(x, y, batch_size=2, epochs=2, verbose=0, validation_split=0.5)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["val_loss"]).all()
    expected = float(np.asarray(KeypointMSELoss()(y, model.predict_on_batch(x))))
    assert float(np.asarray(model.evaluate(x, y, batch_size=4, verbose=0))) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(model.predict(x, batch_size=2, verbose=0), np.asarray(model(x)), atol=1e-5)


def test_compile_takes_keras_losses_and_names():
    model = _tiny_vitpose()
    x, y = np.zeros((2, 64, 48, 3), "float32"), _targets()
    model.compile(loss="keypoint_ohkm_mse")
    assert isinstance(model.pose_loss, KeypointOHKMMSELoss) and isinstance(model.pose_loss, keras.losses.Loss)
    expected = float(np.asarray(KeypointOHKMMSELoss()(y, model.predict_on_batch(x))))
    assert float(np.asarray(model.test_on_batch(x, y))) == pytest.approx(expected, rel=1e-5)
    model.compile(loss=KeypointMSELoss(loss_weight=2.0))
    assert model.get_compile_config()["loss"]["config"]["loss_weight"] == 2.0
    # Sample weights weigh samples (Keras semantics).
    weighted = float(np.asarray(model.test_on_batch(x, y, sample_weight=np.array([1.0, 0.0]))))
    single = float(np.asarray(KeypointMSELoss(loss_weight=2.0)({k: v[:1] for k, v in y.items()},
                                                               model.predict_on_batch(x[:1]))))
    assert weighted == pytest.approx(single / 2, rel=1e-5)
    for bad in ("l2", lambda y_true, y_pred: 0.0):
        with pytest.raises(ValueError, match="loss"):
            model.compile(loss=bad)
    assert isinstance(keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(CPNLoss())), CPNLoss)


def test_preset_and_keras_round_trip_keep_the_preprocessor(tmp_path):
    model = _tiny_vitpose(
        preprocessing={"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0], "channel_order": "bgr"},
        decoding={"padding": 1.4, "border": "mean", "flip_test": True},
    )
    assert model.preprocessor.cropper.warp == "udp" and model.flip_test and not model.shift_heatmap
    preset = tmp_path / "preset"
    model.save_to_preset(str(preset))
    assert (preset / "preprocessor.json").is_file()
    saved = TopDownPreprocessor.from_preset(str(preset))
    assert saved.cropper == model.preprocessor.cropper
    loaded = keras_pose.from_preset(str(preset))
    assert type(loaded) is ViTPose and loaded.preprocessor.cropper == model.preprocessor.cropper
    assert loaded.preprocessor.image_converter.get_config() == model.preprocessor.image_converter.get_config()
    assert loaded.codec == model.codec and loaded.test_cfg == model.test_cfg and loaded.decoding == model.decoding
    x = np.random.default_rng(2).normal(size=(1, 64, 48, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.preprocessor.cropper == model.preprocessor.cropper and restored.test_cfg == model.test_cfg


def test_presets_saved_before_the_preprocessor_still_load(tmp_path):
    folder = DATA_DIR / "legacy_presets"
    expected = json.loads((folder / "expected.json").read_text())
    image = np.load(folder / "image.npy")
    for name, cls in (("vitpose_tiny", "ViTPose"), ("cpn_tiny", "CPN")):
        assert not (folder / name / "preprocessor.json").exists()
        with pytest.raises(keras_pose.PresetError, match="preprocessor.json"):
            TopDownPreprocessor.from_preset(str(folder / name))
        model = keras_pose.from_preset(str(folder / name))
        assert type(model).__name__ == cls
        result = model.predict_keypoints(image, [[10.0, 12.0, 40.0, 60.0]])
        # Float32 sums differ in the last bits between runs (thread count, oneDNN) and the ViTPose
        # head's deconvolutions run as four 2x2 convolutions on TF/JAX (keras_pose.layers.transposed_conv).
        np.testing.assert_allclose(result.keypoints, np.array(expected[name]["keypoints"], np.float32), rtol=0, atol=1e-3)
        # The tiny random models' scores are ~1e-7 heatmap maxima: last-bit differences in the
        # convolutions move them by up to ~1e-3 relative (seen on CI), so 5e-3 relative.
        np.testing.assert_allclose(result.scores, np.array(expected[name]["scores"], np.float32), rtol=5e-3, atol=0)
        assert model.preprocessing == expected[name]["preprocessing"]
        old = {k: v for k, v in expected[name]["decoding"].items() if k not in ("reference", "cpn_test")}
        assert {k: model.decoding[k] for k in old if k != "codec"} == {k: v for k, v in old.items() if k != "codec"}
        assert model.codec.get_config().items() >= {k: v for k, v in old["codec"].items() if k != "type"}.items()
        # Saved again, the preset carries its preprocessor.
        model.save_to_preset(str(tmp_path / name))
        assert os.path.isfile(tmp_path / name / "preprocessor.json")
        again = keras_pose.from_preset(str(tmp_path / name))
        assert again.preprocessor.cropper == model.preprocessor.cropper
        np.testing.assert_array_equal(again.predict_keypoints(image, [[10.0, 12.0, 40.0, 60.0]]).keypoints,
                                      result.keypoints)
    cpn = keras_pose.from_preset(str(folder / "cpn_tiny"), load_weights=False)
    assert cpn.preprocessor.cropper.padding_xy == [1.2, 1.3] and cpn.preprocessor.cropper.border == "mean"
