"""RTMO-s (the golden case's synthetic weights, 640x640) exported end to end (decoding and NMS in the graph)
and run by onnxruntime and LiteRT on the real COCO image of the golden case: the same instances as Keras,
boxes and keypoints within 0.5 px in image pixels. Minutes per format on two cores: marked large."""

import keras
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR
from pose_testing.rtmo_golden import write_checkpoint

pytestmark = [pytest.mark.large,
              pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export runs on TensorFlow")]
IMAGE = str(DATA_DIR / "coco" / "000000000785.jpg")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pytest.importorskip("torch")
    from keras_pose.conversion import convert_checkpoint

    return convert_checkpoint(write_checkpoint(tmp_path_factory.mktemp("rtmo_golden")))


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_rtmo_s_end_to_end_export_on_a_real_image(model, fmt, tmp_path):
    pytest.importorskip("tf2onnx" if fmt == "onnx" else "ai_edge_litert")
    from keras_pose.export import load_exported
    from keras_pose.export.one_stage_export import export_one_stage
    from keras_pose.utils.image_io import read_image

    path = export_one_stage(model, tmp_path / f"rtmo_s.{fmt}")
    x, matrix = model.preprocessor.resize_image(read_image(IMAGE))
    exported = load_exported(path)(x[None])
    reference = model.end_to_end_model().predict_on_batch(x[None])
    reference = {k: keras.ops.convert_to_numpy(v) for k, v in reference.items()}
    valid = reference["valid"][0].astype(bool)
    np.testing.assert_array_equal(exported["valid"][0], valid.astype(np.float32))
    to_image = model.preprocessor.resizer.to_image
    for name in ("boxes", "keypoints"):
        diff = np.abs(to_image(exported[name][0][valid].reshape(-1, 2), matrix)
                      - to_image(reference[name][0][valid].reshape(-1, 2), matrix)).max()
        print(f"[rtmo export] {fmt} {name} ({valid.sum()} people): max|diff| = {diff:.3e} px")
        assert diff <= 0.5
    for name in ("scores", "keypoint_scores"):
        diff = np.abs(exported[name][0][valid] - reference[name][0][valid]).max()
        print(f"[rtmo export] {fmt} {name}: max|diff| = {diff:.3e}")
        assert diff <= 1e-3
