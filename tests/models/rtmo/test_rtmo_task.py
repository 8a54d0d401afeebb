"""The RTMO task (`OneStagePoseEstimator`): letterbox, batched `predict_keypoints`, in-graph decoding,
settings and round trips, presets, `keras-pose predict`, and RTMO as the detector of a top-down model."""

import json

import keras
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR
from pose_testing.rtmo_models import TINY, export_state_dict, tame_outputs, tiny_rtmo

from keras_pose.models.rtmo import RTMO, RTMO_SIZES

IMAGES = [str(DATA_DIR / "coco" / "000000000785.jpg"), str(DATA_DIR / "coco" / "000000040083.jpg")]


def _tiny_task(image_size=(64, 96), seed=0, **test_cfg):
    network = tame_outputs(tiny_rtmo(image_size, seed=seed, num_keypoints=17), seed)
    return RTMO(backbone=network, keypoint_spec="coco", test_cfg=test_cfg or None)


@pytest.fixture(scope="module")
def task():
    model = _tiny_task()
    model.compile(run_eagerly=True)  # predict without tracing graphs (minutes on two cores); graphs: test_graph_*
    return model


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.slow
def test_predict_keypoints_batches_images_and_maps_back_to_pixels(task):
    """Two images in one forward pass give what each gives alone; boxes and keypoints are the decoded
    model-input values mapped through the inverse letterbox."""
    from keras_pose.utils.image_io import read_image

    together = task.predict_keypoints(IMAGES, batch_size=2)
    for path, result in zip(IMAGES, together):
        alone = task.predict_keypoints(path)
        assert len(result) == len(alone) > 0 and result.image_id == path
        np.testing.assert_allclose(result.keypoints, alone.keypoints, atol=1e-2)  # batch-size float noise
        np.testing.assert_allclose(result.boxes, alone.boxes, atol=1e-2)
        assert np.isfinite(result.keypoints).all() and np.isfinite(result.scores).all()
        np.testing.assert_array_equal(result.box_scores, result.person_scores)
        assert np.all(result.box_scores > task.test_cfg["score_threshold"])
        # the same people from the decoded model-input tensors, mapped by hand
        image = read_image(path)
        x, matrix = task.preprocessor.resize_image(image)
        decoded = {k: _np(v)[0] for k, v in task.decode_outputs(task(x[None])).items()}
        n = int(decoded["valid"].sum())
        assert n == len(result)
        s, (tx, ty) = matrix[0, 0], matrix[:, 2]
        keypoints = (decoded["keypoints"][:n] - np.array([tx, ty])) / s
        np.testing.assert_allclose(result.keypoints, keypoints, rtol=1e-4, atol=1e-2)
        x1y1 = (decoded["boxes"][:n, :2] - np.array([tx, ty])) / s
        np.testing.assert_allclose(result.boxes[:, :2], x1y1, rtol=1e-4, atol=1e-2)
        coco = result.to_coco()
        assert len(coco) == n and len(coco[0]["bbox"]) == 4


def test_settings_per_call_and_static_maximum(task):
    result = task.predict_keypoints(IMAGES[0], score_threshold=0.0, max_instances=2)
    assert len(result) == 2
    model = task.end_to_end_model(max_instances=2, score_threshold=0.0)
    assert model is task.end_to_end_model(max_instances=2, score_threshold=0.0)  # cached per settings
    out = model.predict_on_batch(np.zeros((3, 64, 96, 3), np.float32))
    assert tuple(out["keypoints"].shape) == (3, 2, 17, 2) and tuple(out["valid"].shape) == (3, 2)
    assert _np(out["valid"]).all()
    with pytest.raises(TypeError, match="Unknown predict_keypoints arguments.*boxes"):
        task.predict_keypoints(IMAGES[0], boxes=[[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="batch_size"):
        task.predict_keypoints(IMAGES, batch_size=0)


def test_task_config_round_trip_and_errors(task):
    from keras_pose.preprocessing import WarpLetterboxResizer

    import copy

    config = task.get_config()
    clone = RTMO.from_config(copy.deepcopy(config))
    assert clone.get_config() == config and clone.test_cfg == task.test_cfg
    assert isinstance(clone.preprocessor.resizer, WarpLetterboxResizer)
    assert clone.preprocessor.resizer.pad_value == 114 and clone.preprocessor.image_converter.channel_order == "bgr"
    custom = RTMO(backbone=task.backbone, test_cfg={"score_threshold": 0.3, "max_instances": 4})
    assert custom.test_cfg == {"score_threshold": 0.3, "nms_threshold": 0.65, "max_instances": 4,
                               "max_candidates": None}
    with pytest.raises(ValueError, match="Unknown test_cfg keys.*nms_thr"):
        RTMO(backbone=task.backbone, test_cfg={"nms_thr": 0.5})
    with pytest.raises(ValueError, match="keypoint spec has 14"):
        RTMO(backbone=task.backbone, keypoint_spec="crowdpose")
    with pytest.raises(ValueError, match="preprocessor resizes images to"):
        RTMO(backbone=task.backbone, preprocessor=RTMO.default_preprocessor((640, 640)))
    with pytest.raises(ValueError, match="RTMO trains on target dicts"):
        task.compute_loss(x=None, y=None, y_pred=None)


def test_letterbox_inverse_on_tall_and_wide_images():
    from keras_pose.preprocessing import WarpLetterboxResizer

    resizer = WarpLetterboxResizer((64, 96))
    for shape in ((300, 100, 3), (50, 400, 3), (64, 96, 3)):
        image = np.random.default_rng(0).integers(0, 255, shape).astype(np.uint8)
        out, matrix = resizer.resize(image)
        assert out.shape == (64, 96, 3) and out.dtype == np.uint8
        s = min(64 / shape[0], 96 / shape[1])
        np.testing.assert_allclose(matrix[0, 0], s, rtol=1e-6)
        # the image centre maps to the input centre; corners map back
        np.testing.assert_allclose(matrix[:, :2] @ np.array([shape[1] / 2, shape[0] / 2]) + matrix[:, 2],
                                   [48, 32], atol=1e-4)
        points = np.array([[0.0, 0.0], [shape[1], shape[0]], [12.5, 7.25]], np.float32)
        mapped = points @ matrix[:, :2].T + matrix[:, 2]
        np.testing.assert_allclose(resizer.to_image(mapped, matrix), points, atol=1e-3)
        if shape[:2] == (64, 96):
            np.testing.assert_array_equal(out, image)  # no scaling, no offset: the image itself
    assert (out == image).all()


def test_presets_cover_every_release():
    from keras_pose.preset_registry import list_presets

    entries = {e.name: e for e in list_presets(family="rtmo")}
    assert sorted(entries) == sorted(
        [f"rtmo_{s}_body7_{'416x416' if s == 't' else '640x640'}" for s in "tsml"]
        + [f"rtmo_{s}_coco_640x640" for s in "sml"] + [f"rtmo_{s}_crowdpose_640x640" for s in "sml"]
        + ["rtmo_l_body7_crowdpose_640x640"])
    for name, entry in entries.items():
        size = name.split("_")[1]
        assert entry.task_class == "RTMO" and entry.license == "Apache-2.0" and entry.checkpoint_format == "mmpose"
        assert entry.source_url.startswith("https://download.openmmlab.com/mmpose/v1/projects/rtmo/")
        assert entry.source_url.endswith(entry.file_name) and f"-{entry.sha256}_" in entry.file_name
        assert entry.sha256_check == "prefix"
        assert (entry.config["deepen_factor"], entry.config["widen_factor"]) == (
            RTMO_SIZES[size]["deepen_factor"], RTMO_SIZES[size]["widen_factor"])
        assert tuple(entry.config["image_size"]) == RTMO_SIZES[size]["image_size"]
        assert (entry.decoding["score_threshold"], entry.decoding["nms_threshold"]) == (0.1, 0.65)
        crowd = "crowdpose" in name
        assert (entry.config["keypoint_spec"], entry.config["num_keypoints"]) == (
            ("crowdpose", 14) if crowd else ("coco", 17))
        accuracy = entry.published_accuracy
        assert accuracy["dataset"] == ("CrowdPose test" if crowd else "COCO val2017") and 0.5 < accuracy["AP"] < 0.9
    assert entries["rtmo_s_coco_640x640"].published_accuracy["AP"] == 0.677
    assert entries["rtmo_l_body7_640x640"].published_accuracy["AP"] == 0.748


def test_preset_config_builds_the_task():
    """A preset's flat config (made tiny) builds an RTMO with the preset's pre-processing and decoding."""
    from keras_pose.preset_registry import get_preset_entry

    entry = get_preset_entry("rtmo_s_crowdpose_640x640")
    tiny = {k: v for k, v in TINY.items() if k != "num_keypoints"}
    model = RTMO.from_checkpoint_config(**{**entry.config, **tiny, "image_size": [64, 64]},
                                        preprocessing=entry.preprocessing, decoding=entry.decoding)
    assert model.keypoint_spec.name == "crowdpose" and model.backbone.num_keypoints == 14
    assert model.test_cfg["nms_threshold"] == 0.65 and model.preprocessor.resizer.pad_value == 114


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    """A tiny 17-keypoint RTMO exported as an mmpose file and converted into a preset folder."""
    pytest.importorskip("torch")
    from keras_pose.conversion import convert_checkpoint

    network = tame_outputs(tiny_rtmo((64, 96), seed=2, num_keypoints=17), 2)
    directory = tmp_path_factory.mktemp("rtmo") / "preset"
    convert_checkpoint(export_state_dict(network), output_dir=directory, image_size=(64, 96))
    return directory


@pytest.mark.slow
def test_cli_predict_draws_boxes_and_skeletons(preset_dir, tmp_path, capsys):
    from keras_pose.cli import main
    from keras_pose.utils.image_io import read_image

    out_png, out_json = tmp_path / "out.png", tmp_path / "out.json"
    assert main(["predict", "--preset", str(preset_dir), IMAGES[0], "--output", str(out_png),
                 "--json", str(out_json)]) == 0
    records = json.loads(out_json.read_text())
    assert records and all(len(r["bbox"]) == 4 and len(r["keypoints"]) == 17 * 3 for r in records)
    drawn, original = read_image(str(out_png)), read_image(IMAGES[0])
    assert drawn.shape == original.shape and (drawn != original).any()
    capsys.readouterr()
    assert main(["predict", "--preset", str(preset_dir), IMAGES[0], "--box", "0,0,10,10"]) != 0
    assert "is a one-stage model" in capsys.readouterr().err


@pytest.mark.slow
def test_top_down_model_with_rtmo_or_a_callable_as_detector(task):
    from pose_testing import families

    top_down = families.tiny_model("cpm")
    detected = task.predict_keypoints(IMAGES[0])
    keep = (detected.boxes[:, 2] > 0) & (detected.boxes[:, 3] > 0)
    result = top_down.predict_keypoints(IMAGES[0], detector=task)
    np.testing.assert_allclose(result.boxes, detected.boxes[keep], atol=1e-3)
    np.testing.assert_allclose(result.box_scores, detected.box_scores[keep])
    assert result.keypoints.shape == (int(keep.sum()), 17, 2)

    calls = []

    def detector(image):
        calls.append(image.shape)
        return np.array([[10, 20, 110, 220], [5, 5, 6, 6]], np.float32), np.array([0.9, 0.4], np.float32)

    results = top_down.predict_keypoints(IMAGES, boxes=[None, [[1, 2, 30, 40]]], detector=detector,
                                         box_format="xyxy")
    assert calls == [(425, 640, 3)]  # only the image without boxes
    np.testing.assert_allclose(results[0].boxes, [[10, 20, 100, 200], [5, 5, 1, 1]])
    np.testing.assert_allclose(results[0].box_scores, [0.9, 0.4])
    np.testing.assert_allclose(results[1].boxes, [[1, 2, 29, 38]])


@pytest.mark.slow
def test_graph_end_to_end_model_equals_eager(task):
    """The end-to-end model traced as a graph (predict_on_batch, batch of 3) gives the eager decoding."""
    graph_task = _tiny_task()
    graph_task.backbone.set_weights(task.backbone.get_weights())  # the network (compile adds training branches)
    x = np.random.default_rng(3).uniform(0, 255, (3, 64, 96, 3)).astype(np.float32)
    graph = graph_task.end_to_end_model().predict_on_batch(x)
    eager = task.decode_outputs(task(x))
    for key in ("boxes", "scores", "keypoints", "keypoint_scores", "valid", "prior_index"):
        np.testing.assert_allclose(_np(graph[key]).astype(np.float64), _np(eager[key]).astype(np.float64),
                                   rtol=1e-5, atol=1e-3, err_msg=key)


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export runs on TensorFlow")
def test_cli_export_end_to_end(preset_dir, tmp_path, capsys):
    pytest.importorskip("tf2onnx")
    from keras_pose.cli import main

    output = tmp_path / "rtmo.onnx"
    assert main(["export", "--preset", str(preset_dir), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "same people as Keras on a random image: True" in printed
    metadata = json.loads((tmp_path / "rtmo.onnx.json").read_text())
    assert metadata["paradigm"] == "one_stage" and metadata["outputs"][0]["name"] == "boxes"
    # int8: the network QDQ int8 calibrated on the annotations' images, the decoding float32
    assert main(["export", "--preset", str(preset_dir), "--output", str(tmp_path / "x.onnx"),
                 "--quantization", "int8", "--calibration-annotations", str(DATA_DIR / "coco" / "test_coco.json")]) == 0
    assert (tmp_path / "x.onnx").is_file()


@pytest.mark.slow
def test_mixed_precision_task_predicts_finite_people(task):
    """bfloat16 compute (dtype policy of the network): float32 decoding, finite people on a real image."""
    mixed = RTMO.from_config({**task.get_config(), "backbone": {
        **keras.saving.serialize_keras_object(task.backbone),
        "config": {**task.backbone.get_config(), "dtype": "mixed_bfloat16"}}})
    mixed.backbone.set_weights(task.backbone.get_weights())
    mixed.compile(run_eagerly=True)
    assert keras.backend.standardize_dtype(mixed(np.zeros((1, 64, 96, 3), np.float32))["cls_s16"].dtype) == "bfloat16"
    result = mixed.predict_keypoints(IMAGES[0], max_instances=4, score_threshold=0.0)
    assert len(result) == 4 and result.keypoints.dtype == np.float32 and np.isfinite(result.keypoints).all()
    reference = task.predict_keypoints(IMAGES[0], max_instances=1, score_threshold=0.0)
    # bfloat16 keeps ~3 digits: the best person's box within a few input pixels of float32's
    scale = 640 / 96
    assert np.abs(result.boxes[0] - reference.boxes[0]).max() < 3 * scale
