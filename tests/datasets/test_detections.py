"""`keras_pose.datasets.load_detections` (the one detections reader) and `load_pose_annotations`."""

import json
import warnings

import numpy as np
import pytest
from pose_testing.paths import DATA_DIR

from keras_pose.datasets import (
    AnnotationFileNotFoundError,
    detect_annotation_format,
    load_coco_detections,
    load_detections,
    load_pose_annotations,
)
from keras_pose.errors import AnnotationError

COCO_DETS = DATA_DIR / "coco" / "test_coco_det_AP_H_56.json"
COCO_JSON = DATA_DIR / "coco" / "test_coco.json"
MPII_JSON = DATA_DIR / "mpii" / "test_mpii.json"


def _write(path, data):
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_both_layouts_give_the_same_boxes(tmp_path):
    coco = load_detections(COCO_DETS)
    boxes, scores = coco[785]
    by_name = {"000000000785.jpg": [[*map(float, b), float(s)] for b, s in zip(boxes, scores)]}
    named = load_detections(_write(tmp_path / "named.json", by_name))
    np.testing.assert_array_equal(named["000000000785.jpg"][0], boxes)
    np.testing.assert_array_equal(named["000000000785.jpg"][1], scores)
    assert boxes.dtype == np.float32 and boxes.shape == (22, 4)
    # load_coco_detections is the same reader (score required, person category).
    for key, (b, s) in load_coco_detections(COCO_DETS).items():
        np.testing.assert_array_equal(b, coco[key][0])
        np.testing.assert_array_equal(s, coco[key][1])


def test_scores_categories_and_ids(tmp_path):
    records = [
        {"image_id": 1, "bbox": [0, 0, 10, 20], "score": 0.9, "category_id": 1},
        {"image_id": 1.0, "bbox": [5, 5, 10, 20], "score": 0.2, "category_id": 1},  # an integral float id
        {"image_id": 2, "bbox": [1, 1, 4, 4], "score": 0.8, "category_id": 3},
        {"image_id": "a.jpg", "bbox": [1, 1, 4, 4]},  # no score
    ]
    path = _write(tmp_path / "dets.json", records)
    with pytest.raises(AnnotationError, match=r"detection #3 .*\['score'\]"):
        load_detections(path)
    loaded = load_detections(path, default_score=1.0)
    assert sorted(loaded, key=str) == [1, 2, "a.jpg"] and len(loaded[1][0]) == 2
    assert loaded["a.jpg"][1].tolist() == [1.0]
    assert sorted(load_detections(path, default_score=1.0, category_id=1), key=str) == [1, "a.jpg"]
    high = load_detections(path, default_score=1.0, min_score=0.5)
    assert high[1][1].tolist() == [pytest.approx(0.9)]
    # Boxes below the score are dropped in the named layout too; four values score 1.0.
    named = load_detections({"x.jpg": [[1, 2, 3, 4], [1, 2, 3, 4, 0.1]]}, min_score=0.5)
    assert named["x.jpg"][1].tolist() == [1.0]


BAD = {
    "w_zero": ([{"image_id": 1, "bbox": [1, 2, 0, 4], "score": 1}], "width or height <= 0"),
    "nan": ('[{"image_id": 1, "bbox": [NaN, 2, 3, 4], "score": 1}]', "4 finite numbers"),
    "bool_id": ([{"image_id": True, "bbox": [1, 2, 3, 4], "score": 1}], "integer id"),
    "list_id": ([{"image_id": [1], "bbox": [1, 2, 3, 4], "score": 1}], "integer id"),
    "half_id": ([{"image_id": 1.5, "bbox": [1, 2, 3, 4], "score": 1}], "integer id"),
    "score_text": ([{"image_id": 1, "bbox": [1, 2, 3, 4], "score": "high"}], "finite number"),
    "named_not_list": ({"a.jpg": 5}, "not a list of boxes"),
    "named_six": ({"a.jpg": [[1, 2, 3, 4, 0.5, 7]]}, "4 or 5 finite numbers"),
    "number": ("3", "JSON int"),
    "deep": ("[" * 100000 + "]" * 100000, "too deeply"),
    "not_json": ("{oops", "not valid JSON"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_files_name_the_file_and_the_record(name, tmp_path):
    data, words = BAD[name]
    path = _write(tmp_path / f"{name}.json", data)
    with pytest.raises(AnnotationError, match=words) as info:
        load_detections(path)
    assert str(path) in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AnnotationFileNotFoundError, match="does not exist"):
        load_detections(tmp_path / "none.json")
    with pytest.raises(AnnotationFileNotFoundError, match="is a folder"):
        load_detections(tmp_path)


def test_annotation_format_sniffing(tmp_path):
    assert detect_annotation_format(COCO_JSON) == "coco"
    assert detect_annotation_format(MPII_JSON) == "mpii"
    assert detect_annotation_format(_write(tmp_path / "bom.json", "\ufeff  \n[]")) == "mpii"
    with pytest.raises(AnnotationFileNotFoundError, match="does not exist"):
        detect_annotation_format(tmp_path / "none.json")


def test_load_pose_annotations_with_and_without_detections():
    dataset, fmt = load_pose_annotations(COCO_JSON, keypoint_spec="coco")
    assert fmt == "coco" and len(dataset) == 12 and dataset.mode == "eval"
    detected, _ = load_pose_annotations(COCO_JSON, keypoint_spec="coco", detections=COCO_DETS,
                                        min_detection_score=0.3)
    kept = sum(1 for d in json.loads(COCO_DETS.read_text()) if d["score"] >= 0.3)
    assert len(detected) == kept and all(inst.num_keypoints == 0 for inst in detected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # approximated head boxes
        mpii, fmt = load_pose_annotations(MPII_JSON, keypoint_spec="mpii")
    assert fmt == "mpii" and len(mpii) > 0
    with pytest.raises(AnnotationError, match="COCO-format"):
        load_pose_annotations(MPII_JSON, keypoint_spec="mpii", detections=COCO_DETS)
    with pytest.raises(AnnotationFileNotFoundError, match="Image folder"):
        load_pose_annotations(COCO_JSON, "/nonexistent/images")
    with pytest.raises(AnnotationError, match="format 'yaml'"):
        load_pose_annotations(COCO_JSON, format="yaml")
