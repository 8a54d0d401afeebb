"""RTMO exported end to end in int8 (ONNX: the network QDQ int8, calibrated on real letterboxed COCO images; the
decoding, NMS and DCC float32) and float16, run by onnxruntime / LiteRT on a real COCO image against Keras.

`large`: RTMO-s with the golden case's weights at 640x640 (minutes on two cores); the errors are printed
(``-s``) and bounded with margin over the measured ones.

The golden weights are synthetic (seeded random): on the image Keras keeps 86 instances above the 0.1 score
threshold, densely overlapping, with scores close together. int8 moves every head output by a few quantisation
steps, which reorders that crowd and changes which boxes survive NMS (measured: 100 instances, 3 matched to
Keras' at IoU >= 0.5, boxes of the matched within 30 px, scores within 0.04). People parity of int8 needs
trained weights (none offline); here int8 is checked for running end to end, finding people, the decoding kept
float32, and the file being int8-sized. The float16 exports are held to the same people as Keras."""

import os

import keras
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR
from pose_testing.rtmo_golden import write_checkpoint

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export runs on TensorFlow")
IMAGE = str(DATA_DIR / "coco" / "000000000785.jpg")
ANNOTATIONS = str(DATA_DIR / "coco" / "test_coco.json")


def compare(model, path, image=IMAGE):
    """Errors of an end-to-end export against Keras on ``image``.

    Quantisation moves scores, so the instances' order (and near the score
    threshold, the set) can change: Keras' instances are matched to the
    exported ones by box distance (Hungarian on the largest corner
    difference, matched within 16 image px; not IoU: synthetic weights give
    boxes clipped to zero area at the image border); boxes and keypoints are
    compared in image pixels on the matched pairs.
    """
    from scipy.optimize import linear_sum_assignment

    from keras_pose.export import load_exported
    from keras_pose.utils.image_io import read_image

    x, matrix = model.preprocessor.resize_image(read_image(image))
    exported = load_exported(str(path))(x[None])
    reference = {k: keras.ops.convert_to_numpy(v) for k, v in model.end_to_end_model().predict_on_batch(x[None]).items()}
    want, got = reference["valid"][0].astype(bool), exported["valid"][0].astype(bool)
    to_image = model.preprocessor.resizer.to_image

    def rows(outputs, keep):
        return {"boxes": to_image(outputs["boxes"][0][keep].reshape(-1, 2), matrix).reshape(-1, 4),
                "keypoints": to_image(outputs["keypoints"][0][keep].reshape(-1, 2), matrix).reshape(
                    int(keep.sum()), -1, 2),
                "scores": outputs["scores"][0][keep], "keypoint_scores": outputs["keypoint_scores"][0][keep]}

    ref, exp = rows(reference, want), rows(exported, got)
    distance = np.abs(ref["boxes"][:, None, :] - exp["boxes"][None, :, :]).max(axis=-1)
    i, j = linear_sum_assignment(distance)
    good = distance[i, j] <= 16.0
    i, j = i[good], j[good]
    errors = {"people": int(want.sum()), "exported_people": int(got.sum()), "matched": int(len(i))}
    for name in ("boxes", "keypoints", "scores", "keypoint_scores"):
        errors[name] = float(np.abs(exp[name][j] - ref[name][i]).max()) if len(i) else 0.0
    errors["size_mb"] = round(os.path.getsize(path) / 1e6, 2)
    return errors


@pytest.fixture(scope="module")
def golden_model(tmp_path_factory):
    pytest.importorskip("torch")
    from keras_pose.conversion import convert_checkpoint

    return convert_checkpoint(write_checkpoint(tmp_path_factory.mktemp("rtmo_golden")))


# format, quantization, bounds: boxes / keypoints (image px), scores; measured on RTMO-s (golden weights), 640x640
CASES = {
    "onnx_int8": ("onnx", "int8", None, None),
    "onnx_float16": ("onnx", "float16", 3.0, 0.01),  # measured 1.10 px boxes, 0.24 px keypoints, 8e-4 scores
    "tflite_float16": ("tflite", "float16", 3.0, 0.01),  # measured 0.98 px, 0.11 px, 7.5e-4
}


@pytest.mark.large
@pytest.mark.parametrize("case", sorted(CASES))
def test_rtmo_s_quantized_end_to_end_export(golden_model, case, tmp_path):
    fmt, quantization, px_bound, score_bound = CASES[case]
    pytest.importorskip("tf2onnx" if fmt == "onnx" else "ai_edge_litert")
    from keras_pose.export import representative_images
    from keras_pose.export.one_stage_export import export_one_stage

    calibration = None
    if quantization == "int8":
        calibration = representative_images(golden_model, ANNOTATIONS, num_samples=8)
    path = export_one_stage(golden_model, tmp_path / f"rtmo_s_{case}.{fmt}", quantization=quantization,
                            representative_dataset=calibration)
    errors = compare(golden_model, path)
    print(f"[rtmo {case}] {errors}")
    if quantization == "int8":
        float32_mb = golden_model.count_params() * 4 / 1e6
        assert errors["size_mb"] < 0.45 * float32_mb, (errors["size_mb"], float32_mb)  # int8 weights
        metadata = __import__("json").loads((tmp_path / f"rtmo_s_{case}.{fmt}.json").read_text())
        assert metadata["int8"]["decode"] == "float32" and metadata["int8"]["float_nodes"] > 100
        assert errors["exported_people"] > 0 and errors["matched"] >= 1  # scores: 0.04 and 0.54 in two runs (synthetic crowd)
        return
    # float16 moves near-tied scores of the synthetic crowd across the threshold: measured 85 people vs 86
    assert errors["people"] > 0 and abs(errors["exported_people"] - errors["people"]) <= 3
    assert errors["matched"] >= errors["people"] // 2
    assert errors["boxes"] <= px_bound and errors["keypoints"] <= px_bound
    assert errors["scores"] <= score_bound
