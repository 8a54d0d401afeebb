"""`keras-pose export` of whole-image models: OpenPose at --image-size with int8 calibrated on whole images
(--calibration-images), and the argument checks of the whole-image calibration options."""

import json

import keras
import numpy as np
import pytest
from pose_testing import openpose_models
from pose_testing.paths import DATA_DIR

from keras_pose.cli import main

COCO_DIR = DATA_DIR / "coco"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def openpose_dir(tmp_path_factory):
    """A tiny OpenPose COCO-18 saved as a preset folder (no licence record: the user's own weights)."""
    from keras_pose.models.openpose import OpenPose

    keras.utils.set_random_seed(0)
    model = OpenPose.from_checkpoint_config(variant="coco18", image_size=[32, 32], num_stages=2,
                                            **openpose_models.TINY)
    folder = tmp_path_factory.mktemp("openpose_preset")
    model.save_to_preset(str(folder))
    return folder


def test_calibration_source_errors_come_before_the_model_loads(tmp_path, capsys):
    missing = tmp_path / "preset_that_is_never_loaded"
    code, _, err = _run(capsys, "export", "--preset", missing, "--output", tmp_path / "m.onnx", "--quantization",
                        "int8", "--calibration-images", tmp_path / "nope.jpg")
    assert code == 1 and "nope.jpg" in err and "do not exist" in err
    code, _, err = _run(capsys, "export", "--preset", missing, "--output", tmp_path / "m.onnx", "--quantization",
                        "int8", "--calibration-images", COCO_DIR, "--calibration-annotations",
                        COCO_DIR / "test_coco.json")
    assert code == 1 and "one calibration source" in err
    code, _, err = _run(capsys, "export", "--preset", missing, "--output", tmp_path / "m.onnx", "--quantization",
                        "int8")
    assert code == 1 and "--calibration-images" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_openpose_int8_onnx_at_an_image_size_calibrated_on_whole_images(openpose_dir, tmp_path, capsys):
    """~25 s on two shared cores (tf2onnx, onnxruntime calibration)."""
    pytest.importorskip("tf2onnx")
    from keras_pose.export import load_exported

    path = tmp_path / "openpose_int8.onnx"
    code, out, err = _run(capsys, "export", "--preset", openpose_dir, "--output", path, "--image-size", 48, 64,
                          "--quantization", "int8", "--calibration-images", COCO_DIR, "--num-calibration", 4)
    assert code == 0, err
    meta = json.loads((tmp_path / "openpose_int8.onnx.json").read_text())
    assert meta["image_size"] == [48, 64] and meta["heatmap_size"] == [6, 8] and meta["quantization"] == "int8"
    assert [o["name"] for o in meta["outputs"]] == ["heatmaps", "pafs"]
    assert "check: max |difference| vs Keras on a random image: heatmaps" in out
    outputs = load_exported(str(path))(np.zeros((1, 48, 64, 3), np.float32))
    assert outputs["heatmaps"].shape == (1, 6, 8, 18) and outputs["pafs"].shape == (1, 6, 8, 38)
    code, _, err = _run(capsys, "export", "--preset", openpose_dir, "--output", tmp_path / "bad.onnx",
                        "--image-size", 50, 64)
    assert code == 1 and "multiples of its stride 8" in err
