"""Top-down inference on whole images: cropping, batching, decoding, mapping back.

A tiny real Keras model (`BlobPoseModel`) turns coloured blobs into heatmaps
(channel k of the 4x average-pooled image is keypoint k), so the keypoints it
must find are known exactly: the blob centres drawn into the image. Any error
in the box convention, the crop warp, batching order, flip test, decoding or
the mapping back to image pixels moves the predicted keypoints off the blobs.
"""

import json

import cv2
import numpy as np
import pytest

from keras_pose.errors import ImageReadError
from pose_testing.blob_model import BlobPoseModel, _blob_image, PEOPLE, BOXES


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
