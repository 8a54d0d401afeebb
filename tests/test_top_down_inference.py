"""Top-down inference on whole images: cropping, batching, decoding, mapping back.

A tiny real Keras model (`BlobPoseModel`) turns coloured blobs into heatmaps
(channel k of the 4x average-pooled image is keypoint k), so the keypoints it
must find are known exactly: the blob centres drawn into the image. Any error
in the box convention, the crop warp, batching order, flip test, decoding or
the mapping back to image pixels moves the predicted keypoints off the blobs.
"""

import json

import cv2
import keras
import numpy as np
import pytest

from keras_pose.errors import ImageReadError
from keras_pose.keypoints import KeypointSpec
from keras_pose.models.top_down_pose_estimator import TopDownPoseEstimator

SPEC = KeypointSpec(
    name="blobs",
    keypoint_names=["red", "green", "blue"],
    skeleton=[("red", "green"), ("green", "blue")],
)


def _sampling_matrix(out_size, in_size, udp):
    """(out, in) bilinear weights sampling the input where the codec expects.

    UDP heatmap pixel j sits at input pixel j * (in - 1) / (out - 1); the
    standard (MSRA) convention puts it at j * in / out.
    """
    ratio = (in_size - 1) / (out_size - 1) if udp else in_size / out_size
    matrix = np.zeros((out_size, in_size), np.float32)
    for j in range(out_size):
        pos = min(j * ratio, in_size - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, in_size - 1)
        frac = pos - lo
        matrix[j, lo] += 1.0 - frac
        matrix[j, hi] += frac
    return matrix


class _Resample(keras.layers.Layer):
    """Samples (B, H, W, C) at the heatmap grid's positions in the input."""

    def __init__(self, rows, cols, **kwargs):
        super().__init__(**kwargs)
        self.rows = keras.ops.convert_to_tensor(rows)
        self.cols = keras.ops.convert_to_tensor(cols)

    def call(self, x):
        return keras.ops.einsum("hH,bHWc,wW->bhwc", self.rows, x, self.cols) / 255.0

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.rows.shape[0], self.cols.shape[0], input_shape[3])


class BlobPoseModel(TopDownPoseEstimator):
    """Heatmap k = colour channel k of the crop, sampled on the heatmap grid."""

    def __init__(self, image_size=(128, 96), udp=True, **kwargs):
        heatmap_size = (image_size[0] // 4, image_size[1] // 4)
        inputs = keras.Input((*image_size, 3), name="images")
        resample = _Resample(
            _sampling_matrix(heatmap_size[0], image_size[0], udp),
            _sampling_matrix(heatmap_size[1], image_size[1], udp),
            dtype="float32",
            name="heatmaps",
        )
        outputs = resample(inputs)
        codec = {
            "type": "UDPHeatmap" if udp else "MSRAHeatmap",
            "input_size": list(image_size),
            "heatmap_size": list(heatmap_size),
            "sigma": 2.0,
        }
        if not udp:
            codec["unbiased"] = True
        kwargs.setdefault("keypoint_spec", SPEC)
        kwargs.setdefault("preprocessing", {"mean": [0, 0, 0], "std": [1, 1, 1], "channel_order": "rgb"})
        kwargs.setdefault("decoding", {"codec": codec, "padding": 1.25, "flip_test": False, "shift_heatmap": False})
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)


def _blob_image(people, size=(420, 640), sigma=20.0):
    """An image with one Gaussian blob per keypoint, colour = keypoint index."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.zeros((h, w, 3), np.float32)
    for person in people:
        for k, (x, y) in enumerate(person):
            blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
            image[..., k] = np.maximum(image[..., k], 255.0 * blob)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


PEOPLE = np.array(
    [
        [[120.0, 80.0], [150.0, 160.0], [110.0, 250.0]],
        [[430.0, 120.0], [470.0, 200.0], [520.0, 330.0]],
    ],
    np.float32,
)
BOXES = np.array([[80.0, 50.0, 110.0, 240.0], [400.0, 90.0, 150.0, 270.0]], np.float32)


@pytest.mark.parametrize("udp", [True, False])
def test_keypoints_land_on_the_blobs(udp):
    model = BlobPoseModel(udp=udp)
    image = _blob_image(PEOPLE)
    result = model.predict_keypoints(image, BOXES)
    assert result.keypoints.shape == (2, 3, 2)
    assert result.scores.shape == (2, 3)
    error = np.abs(result.keypoints - PEOPLE).max()
    # One heatmap pixel is 4 input pixels, about 9 image pixels here; the
    # refinements (DARK / DARK-UDP) recover the blob centre far better.
    assert error < 0.1, error
    assert (result.scores > 0.5).all()


def test_flip_test_keeps_unpaired_keypoints_in_place():
    model = BlobPoseModel(udp=True)
    image = _blob_image(PEOPLE)
    plain = model.predict_keypoints(image, BOXES, flip_test=False)
    flipped = model.predict_keypoints(image, BOXES, flip_test=True)
    assert np.abs(flipped.keypoints - plain.keypoints).max() < 0.05


def test_batches_images_and_keeps_order(tmp_path):
    model = BlobPoseModel()
    first = _blob_image(PEOPLE[:1])
    second = _blob_image(PEOPLE[1:])
    path = tmp_path / "second.png"
    cv2.imwrite(str(path), cv2.cvtColor(second, cv2.COLOR_RGB2BGR))
    results = model.predict_keypoints([first, str(path)], [BOXES[:1], BOXES[1:]], batch_size=1)
    assert len(results) == 2
    assert np.abs(results[0].keypoints[0] - PEOPLE[0]).max() < 0.1
    assert np.abs(results[1].keypoints[0] - PEOPLE[1]).max() < 0.1
    assert results[1].image_id == str(path)


def test_xyxy_boxes_and_whole_image_default():
    model = BlobPoseModel()
    image = _blob_image(PEOPLE[:1], size=(300, 220))
    xyxy = BOXES[:1].copy()
    xyxy[:, 2:] += xyxy[:, :2]
    by_xyxy = model.predict_keypoints(image, xyxy, box_format="xyxy")
    by_xywh = model.predict_keypoints(image, BOXES[:1])
    np.testing.assert_allclose(by_xyxy.keypoints, by_xywh.keypoints, atol=1e-4)
    whole = model.predict_keypoints(image)
    assert whole.boxes.tolist() == [[0.0, 0.0, 220.0, 300.0]]
    assert np.abs(whole.keypoints[0] - PEOPLE[0]).max() < 0.5


def test_results_to_coco_json_and_draw():
    model = BlobPoseModel()
    image = _blob_image(PEOPLE)
    result = model.predict_keypoints(image, BOXES, box_scores=[0.9, 0.5])
    records = json.loads(result.to_json(image_id=785))
    assert len(records) == 2 and records[0]["image_id"] == 785
    assert len(records[0]["keypoints"]) == 9
    np.testing.assert_allclose(records[1]["keypoints"][0:2], result.keypoints[1, 0], atol=1e-3)
    expected = 0.5 * result.scores[1][result.scores[1] > 0.2].mean()
    assert records[1]["score"] == pytest.approx(expected, rel=1e-5)
    drawn = result.draw(np.zeros_like(image), keypoint_threshold=0.1)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    # A limb was drawn between the red and green keypoints of person 0.
    mid = ((result.keypoints[0, 0] + result.keypoints[0, 1]) / 2).round().astype(int)
    assert drawn[mid[1] - 2 : mid[1] + 3, mid[0] - 2 : mid[0] + 3].max() > 0


def test_bad_inputs_have_clear_errors(tmp_path):
    model = BlobPoseModel()
    gray = np.zeros((50, 60), np.uint8)
    with pytest.raises(ImageReadError, match=r"\(H, W, 3\)"):
        model.predict_keypoints(gray)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(ImageReadError, match="Could not decode"):
        model.predict_keypoints(str(corrupt))
    with pytest.raises(ImageReadError, match="not found"):
        model.predict_keypoints(str(tmp_path / "missing.jpg"))
    image = _blob_image(PEOPLE)
    with pytest.raises(ValueError, match="positive width and height"):
        model.predict_keypoints(image, [[10, 10, 0, 5]])
    with pytest.raises(ValueError, match="one per image"):
        model.predict_keypoints([image, image], [BOXES])
    with pytest.raises(ValueError, match="box scores"):
        model.predict_keypoints(image, BOXES, box_scores=[1.0])
