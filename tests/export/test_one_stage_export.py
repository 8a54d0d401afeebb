"""End-to-end export of a one-stage model (RTMO): decoding and NMS in the ONNX / TFLite graph, fixed-size
outputs, parity with Keras on a real COCO image (boxes and keypoints within 0.5 px in image pixels)."""

import json

import keras
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR
from pose_testing.rtmo_models import tame_outputs, tiny_rtmo

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export runs on TensorFlow")
IMAGE = str(DATA_DIR / "coco" / "000000000785.jpg")


@pytest.fixture(scope="module")
def model():
    from keras_pose.models.rtmo import RTMO

    return RTMO(backbone=tame_outputs(tiny_rtmo((64, 96), seed=4, num_keypoints=17), 4),
                test_cfg={"max_instances": 12})


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_end_to_end_export_matches_keras_on_a_real_image(model, fmt, tmp_path):
    """~45 s per format on two cores (the converters)."""
    pytest.importorskip("tf2onnx" if fmt == "onnx" else "ai_edge_litert")
    from keras_pose.export import load_exported
    from keras_pose.export.one_stage_export import OUTPUTS, export_one_stage
    from keras_pose.utils.image_io import read_image

    path = export_one_stage(model, tmp_path / f"rtmo.{fmt}")
    metadata = json.loads((tmp_path / f"rtmo.{fmt}.json").read_text())
    assert metadata["paradigm"] == "one_stage" and metadata["decoding"]["test_cfg"]["max_instances"] == 12
    assert [o["name"] for o in metadata["outputs"]] == list(OUTPUTS)
    assert metadata["keypoints"]["names"] == list(model.keypoint_spec.keypoint_names)

    image = read_image(IMAGE)
    x, matrix = model.preprocessor.resize_image(image)
    exported = load_exported(path)(x[None])
    assert exported["keypoints"].shape == (1, 12, 17, 2) and exported["boxes"].shape == (1, 12, 4)
    reference = {k: keras.ops.convert_to_numpy(v) for k, v in model.decode_outputs(model(x[None])).items()}
    valid = reference["valid"][0].astype(bool)
    assert valid.sum() > 0
    np.testing.assert_array_equal(exported["valid"][0], valid.astype(np.float32))
    np.testing.assert_allclose(exported["scores"][0], reference["scores"][0], atol=1e-5)
    # Keypoint scores are sigmoids of logits that pass through a few more float32 ops in the exported
    # graph: 1.4e-5 seen on a 0.088 score (rtol 1.5e-4), so 1e-4 of the [0, 1] range.
    np.testing.assert_allclose(exported["keypoint_scores"][0], reference["keypoint_scores"][0], atol=1e-4)
    to_image = model.preprocessor.resizer.to_image
    for name in ("boxes", "keypoints"):
        got = to_image(exported[name][0][valid].reshape(-1, 2), matrix)
        want = to_image(reference[name][0][valid].reshape(-1, 2), matrix)
        assert np.abs(got - want).max() <= 0.5, (fmt, name, np.abs(got - want).max())
    result = model.predict_keypoints(IMAGE)  # the Keras user path gives the same people
    np.testing.assert_allclose(to_image(exported["keypoints"][0][valid], matrix), result.keypoints, atol=0.5)


def test_export_refuses_top_down_models_and_int8(model, tmp_path):
    from keras_pose.export.one_stage_export import export_one_stage
    from keras_pose.export.options import ExportError
    from pose_testing import families

    with pytest.raises(ExportError, match="one-stage"):
        export_one_stage(families.tiny_model("cpm"), tmp_path / "cpm.onnx")
    with pytest.raises(ExportError, match="ONNX int8"):
        export_one_stage(model, tmp_path / "rtmo.tflite", quantization="int8")  # the TFLite calibrator crashes
    with pytest.raises(ExportError, match="calibration images"):
        export_one_stage(model, tmp_path / "rtmo.onnx", quantization="int8")
    with pytest.raises(ExportError, match="dynamic_int8"):
        export_one_stage(model, tmp_path / "rtmo.onnx", quantization="dynamic_int8")
    assert not list(tmp_path.iterdir())


def test_representative_images_are_the_letterboxed_model_input(model):
    from keras_pose.export import ExportError, export_input, representative_images
    from keras_pose.utils.image_io import read_image

    samples = representative_images(model, [IMAGE], num_samples=2)
    image = read_image(IMAGE)
    x, _ = model.preprocessor.resize_image(image)
    mirrored, _ = model.preprocessor.resize_image(np.ascontiguousarray(image[:, ::-1]))
    assert samples.shape == (2, 64, 96, 3) and samples.max() > 1.0  # BGR 0..255, no normalisation
    np.testing.assert_array_equal(samples[0], x)
    np.testing.assert_array_equal(samples[1], mirrored)
    with pytest.raises(ExportError, match="input size"):
        export_input(model, image, (32, 32))
