"""Tests of the annotation readers on the real sample data in tests/data."""

import copy
import dataclasses
import json
import shutil
import warnings

import numpy as np
import pytest
from pose_testing.paths import DATA_DIR

from keras_pose.datasets import (
    AnnotationFileNotFoundError,
    PoseDataset,
    PoseInstance,
    dataset_from_detections,
    load_coco_detections,
    load_coco_keypoints,
    load_mpii,
)
from keras_pose.errors import AnnotationError, ImageReadError

COCO_FILE = DATA_DIR / "coco" / "test_coco.json"
MPII_FILE = DATA_DIR / "mpii" / "test_mpii.json"

# (folder, file, K, images, train instances, eval instances, eval ignored ids)
# Counted by hand from the json files: COCO has 14 people, two of them
# (1202706, 508900) with num_keypoints == 0; CrowdPose has 5, one (131039)
# with num_keypoints == 0; no file has crowd regions or boxes that vanish
# when clipped to the image.
COCO_STYLE = [
    ("coco", "test_coco.json", 17, 4, 12, 12, {1202706, 508900}),
    ("aic", "test_aic.json", 14, 3, 9, 9, set()),
    ("crowdpose", "test_crowdpose.json", 14, 2, 4, 4, {131039}),
    ("ochuman", "test_ochuman.json", 17, 3, 5, 5, set()),
    ("ap10k", "test_ap10k.json", 17, 2, 2, 2, set()),
    ("animalpose", "test_animalpose.json", 20, 2, 2, 2, set()),
]


def _quiet_mpii(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_mpii(*args, **kwargs)


def _write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def _coco_copy(tmp_path, mutate=None, copy_images=True):
    """A copy of the COCO sample in tmp_path, optionally mutated."""
    data = json.loads(COCO_FILE.read_text())
    if mutate is not None:
        mutate(data)
    if copy_images:
        for img in data["images"]:
            src = DATA_DIR / "coco" / img["file_name"]
            if src.exists():
                shutil.copy(src, tmp_path / img["file_name"])
    return _write_json(tmp_path / "ann.json", data)


# ---------------------------------------------------------------------------
# Every sample dataset loads.


@pytest.mark.parametrize("folder,name,k,n_images,n_train,n_eval,ignored", COCO_STYLE)
def test_coco_style_samples_load(folder, name, k, n_images, n_train, n_eval, ignored):
    path = DATA_DIR / folder / name
    train = load_coco_keypoints(path, mode="train", check_images="decode")
    evals = load_coco_keypoints(path, mode="eval")
    assert len(train.images) == n_images and len(evals.images) == n_images
    assert len(train) == n_train
    assert len(evals) == n_eval
    assert train.num_keypoints == k and evals.num_keypoints == k
    assert train.ignored_instances == ()
    assert {inst.instance_id for inst in evals.ignored_instances} == ignored
    for inst in train:
        assert inst.keypoints.shape == (k, 2) and inst.keypoints.dtype == np.float32
        assert inst.keypoints_visible.shape == (k,)
        assert inst.bbox.shape == (4,) and inst.bbox[2] > 0 and inst.bbox[3] > 0
        assert inst.num_keypoints > 0 and inst.iscrowd == 0
        assert set(np.unique(inst.keypoints_visible)) <= {0.0, 1.0, 2.0}
        image = train.images[inst.image_id]
        assert inst.image_path == image.path
        # boxes are clipped to the image (x2 <= W - 1, y2 <= H - 1)
        x1, y1, x2, y2 = inst.bbox_xyxy
        assert x1 >= 0 and y1 >= 0 and x2 <= image.width - 1 + 1e-3 and y2 <= image.height - 1 + 1e-3


def test_coco_sample_values():
    ds = load_coco_keypoints(COCO_FILE)
    ids = [inst.instance_id for inst in ds]
    # images in file order, annotations in file order within an image
    assert ids == [442619, 198196, 230195, 460541, 488308, 1717641, 1724673,
                   437295, 467657, 531914, 533949, 543117]
    first = ds[0]
    assert first.image_id == 785
    np.testing.assert_allclose(first.bbox, [280.79, 44.73, 218.7, 346.68], rtol=1e-6)
    np.testing.assert_allclose(first.keypoints[:3], [[367, 81], [374, 73], [360, 75]])
    np.testing.assert_array_equal(first.keypoints_visible[:3], [2, 2, 2])
    assert first.area == pytest.approx(27789.11055)
    # 533949 reaches x = 639.21 in a 640 px wide image: clipped to 639
    inst = ds[ids.index(533949)]
    np.testing.assert_allclose(inst.bbox, [372.58, 170.84, 639 - 372.58, 217.19], rtol=1e-5)
    # occluded (v=1) flags are kept, unlabelled points are (0, 0)
    visible = np.concatenate([i.keypoints_visible for i in ds])
    assert (visible == 1).any() and (visible == 0).any()
    for i in ds:
        assert np.all(i.keypoints[i.keypoints_visible == 0] == 0)
        assert i.num_keypoints == int((i.keypoints_visible > 0).sum())


def test_aic_and_crowdpose_missing_fields_are_filled():
    aic = load_coco_keypoints(DATA_DIR / "aic" / "test_aic.json")
    # AIC has neither 'area' nor 'iscrowd': area = 0.53 * w * h of the raw box
    raw = {a["id"]: a for a in json.loads((DATA_DIR / "aic" / "test_aic.json").read_text())["annotations"]}
    for inst in aic:
        _, _, w, h = raw[inst.instance_id]["bbox"]
        assert inst.area == pytest.approx(0.53 * w * h)
        assert inst.iscrowd == 0


def test_ap10k_keeps_category_ids():
    ds = load_coco_keypoints(DATA_DIR / "ap10k" / "test_ap10k.json")
    assert sorted(i.category_id for i in ds) == [1, 26]
    assert len(ds.categories) == 54


def test_keypoint_spec_objects_are_accepted():
    from keras_pose import keypoints

    spec = keypoints.get_keypoint_spec("coco")
    ds = load_coco_keypoints(COCO_FILE, keypoint_spec=spec)
    assert ds.keypoint_spec is spec and ds.num_keypoints == 17
    assert ds.sigmas.shape == (17,)


def test_to_arrays_and_sequence_protocol():
    ds = load_coco_keypoints(COCO_FILE)
    arrays = ds.to_arrays()
    assert arrays["keypoints"].shape == (12, 17, 2)
    assert arrays["keypoints_visible"].shape == (12, 17)
    assert arrays["bbox"].shape == (12, 4) and arrays["bbox"].dtype == np.float32
    assert np.isnan(arrays["head_size"]).all()
    assert isinstance(ds[1:3], PoseDataset) and len(ds[1:3]) == 2
    assert len(ds.filter(lambda i: i.image_id == 197388)) == 5
    grouped = ds.instances_by_image()
    assert [len(v) for v in grouped.values()] == [1, 2, 4, 5]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds[0].image_id = 3
    with pytest.raises(ValueError):
        ds[0].keypoints[0, 0] = 1.0  # read-only arrays


# ---------------------------------------------------------------------------
# MPII.


def test_mpii_sample_loads():
    with pytest.warns(UserWarning, match="approximated by the head_top-upper_neck"):
        train = load_mpii(MPII_FILE, mode="train")
    evals = _quiet_mpii(MPII_FILE, mode="eval", check_images="decode")
    assert len(train) == 5 and len(evals) == 5
    assert len(train.images) == 5 and train.num_keypoints == 16
    assert train.images[5808361].width is None
    assert (evals.images[5808361].height, evals.images[5808361].width) == (720, 1280)
    assert (evals.images[52475643].height, evals.images[52475643].width) == (480, 854)
    # two people have 2 unlabelled joints each
    assert sorted(i.num_keypoints for i in train) == [14, 14, 16, 16, 16]


def test_mpii_center_scale_conversion():
    raw = json.loads(MPII_FILE.read_text())[0]
    inst = _quiet_mpii(MPII_FILE)[0]
    assert inst.image_id == 5808361 and inst.instance_id == 0
    scale_px = 4.718488 * 200
    cx, cy = 966.0 - 1, 340.0 + 15 * 4.718488 - 1
    np.testing.assert_allclose(
        inst.bbox, [cx - scale_px / 2, cy - scale_px / 2, scale_px, scale_px], rtol=1e-5
    )
    np.testing.assert_allclose(inst.bbox_center, [cx, cy], rtol=1e-6)
    np.testing.assert_allclose(inst.keypoints, np.array(raw["joints"]) - 1, rtol=1e-6)
    np.testing.assert_array_equal(inst.keypoints_visible, np.full(16, 2.0))
    head = np.linalg.norm(np.subtract(raw["joints"][9], raw["joints"][8]))
    assert inst.head_size == pytest.approx(head)
    padded = _quiet_mpii(MPII_FILE, padding=1.25)[0]
    assert padded.bbox[2] == pytest.approx(1.25 * scale_px)
    np.testing.assert_allclose(padded.bbox_center, inst.bbox_center, rtol=1e-6)


def test_mpii_unlabelled_joints():
    ds = _quiet_mpii(MPII_FILE)
    inst = [i for i in ds if i.image_id == 51423444][0]
    assert inst.keypoints_visible[0] == 0 and inst.keypoints_visible[5] == 0
    np.testing.assert_array_equal(inst.keypoints[[0, 5]], 0.0)


def test_mpii_headbox_field_and_file(tmp_path):
    records = json.loads(MPII_FILE.read_text())
    records[0]["headbox"] = [[10.0, 20.0], [40.0, 60.0]]  # diagonal 50
    path = _write_json(tmp_path / "mpii.json", records)
    boxes = np.zeros((5, 2, 2))
    boxes[:, 1] = [30.0, 40.0]  # diagonal 50 for every record
    np.save(tmp_path / "headboxes.npy", boxes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no approximation warning
        ds = load_mpii(path, image_root=DATA_DIR / "mpii", headbox_file=tmp_path / "headboxes.npy")
    assert [i.head_size for i in ds] == pytest.approx([30.0] * 5)
    with pytest.warns(UserWarning, match="4 record"):
        ds = load_mpii(path, image_root=DATA_DIR / "mpii")
    assert ds[0].head_size == pytest.approx(0.6 * 50.0)
    with pytest.raises(AnnotationError, match=r"expected \(5, 2, 2\)"):
        np.save(tmp_path / "bad.npy", boxes[:3])
        load_mpii(path, image_root=DATA_DIR / "mpii", headbox_file=tmp_path / "bad.npy")


def test_mpii_errors(tmp_path):
    with pytest.raises(AnnotationError, match=r"record 0 \(image '005808361.jpg'\).*needs \(17, 2\)"):
        _quiet_mpii(MPII_FILE, keypoint_spec=17)
    records = json.loads(MPII_FILE.read_text())
    del records[2]["scale"]
    path = _write_json(tmp_path / "mpii.json", records)
    with pytest.raises(AnnotationError, match=r"record 2 .*\['scale'\]"):
        _quiet_mpii(path, image_root=DATA_DIR / "mpii")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_mpii(path, image_root=DATA_DIR / "mpii", skip_invalid=True)
    assert len(ds) == 4
    assert any("skipped 1 invalid record" in str(w.message) for w in caught)
    with pytest.raises(AnnotationError, match="JSON list"):
        load_mpii(COCO_FILE)


# ---------------------------------------------------------------------------
# Error cases.


def test_missing_annotation_file(tmp_path):
    with pytest.raises(AnnotationFileNotFoundError, match="does not exist"):
        load_coco_keypoints(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError):
        load_coco_keypoints(tmp_path / "nope.json")


def test_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(COCO_FILE.read_text()[:500])
    with pytest.raises(AnnotationError, match=r"broken\.json.*not valid JSON.*line"):
        load_coco_keypoints(path)


def test_missing_annotations_key(tmp_path):
    path = _coco_copy(tmp_path, lambda d: d.pop("annotations"))
    with pytest.raises(AnnotationError, match=r"ann\.json.*no 'annotations'"):
        load_coco_keypoints(path)
    with pytest.raises(AnnotationError, match="COCO results file"):
        load_coco_keypoints(DATA_DIR / "coco" / "test_coco_det_AP_H_56.json")


def test_wrong_keypoint_count_names_file_and_annotation():
    # the COCO sample read with the 16-keypoint MPII layout
    with pytest.raises(AnnotationError) as info:
        load_coco_keypoints(COCO_FILE, keypoint_spec=16)
    message = str(info.value)
    assert "test_coco.json" in message and "annotation id 442619" in message
    assert "51 keypoint values" in message and "48" in message
    # skip_invalid cannot hide a file in which nothing is valid
    with pytest.raises(AnnotationError, match="every annotation"):
        load_coco_keypoints(COCO_FILE, keypoint_spec=16, skip_invalid=True)


def test_wrong_keypoint_count_with_mpii_spec():
    from keras_pose import keypoints

    spec = keypoints.get_keypoint_spec("mpii")
    with pytest.raises(AnnotationError, match=r"annotation id 442619 in .*test_coco\.json"):
        load_coco_keypoints(COCO_FILE, keypoint_spec=spec)


def test_missing_image(tmp_path):
    path = _coco_copy(tmp_path, copy_images=False)
    with pytest.raises(ImageReadError, match=r"000000000785\.jpg.*image id 785.*does not exist"):
        load_coco_keypoints(path)
    ds = load_coco_keypoints(path, check_images=False)
    assert len(ds) == 12


def test_corrupt_image_with_decode_check(tmp_path):
    path = _coco_copy(tmp_path)
    (tmp_path / "000000040083.jpg").write_bytes(b"\xff\xd8 not really a jpeg" * 10)
    assert len(load_coco_keypoints(path)) == 12  # existence check passes
    with pytest.raises(ImageReadError, match=r"000000040083\.jpg.*does not decode"):
        load_coco_keypoints(path, check_images="decode")
    expected = r"skipped 3 invalid.*3 with unreadable image file \(annotation id 198196, 230195, 1202706\)"
    with pytest.warns(UserWarning, match=expected):
        ds = load_coco_keypoints(path, check_images="decode", skip_invalid=True)
    assert len(ds) == 10 and 40083 not in {i.image_id for i in ds}


def test_image_size_mismatch_with_decode_check(tmp_path):
    def mutate(data):
        data["images"][0]["width"] = 641

    path = _coco_copy(tmp_path, mutate)
    with pytest.raises(ImageReadError, match="425x640"):
        load_coco_keypoints(path, check_images="decode")


def test_skip_invalid_counts_and_reasons(tmp_path):
    def mutate(data):
        anns = data["annotations"]
        anns[0]["keypoints"] = anns[0]["keypoints"][:-3]  # 48 values
        del anns[1]["bbox"]
        anns[4]["image_id"] = 123456789
        anns[5]["keypoints"][2] = float("nan")

    path = _coco_copy(tmp_path, mutate)
    with pytest.raises(AnnotationError, match=r"annotation id 442619 .*48 keypoint values"):
        load_coco_keypoints(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_coco_keypoints(path, skip_invalid=True)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    message = messages[0]
    assert "skipped 4 invalid record(s)" in message
    assert "1 with wrong keypoint array length (annotation id 442619)" in message
    assert "1 with missing keys (annotation id 198196)" in message
    assert "unknown image_id" in message and "invalid keypoint values" in message
    # 14 - 4 invalid, and of the rest 2 have no keypoints; 460541 (index 4) was invalid
    assert len(ds) == 8


def test_missing_keys_and_unknown_category_count(tmp_path):
    def mutate(data):
        del data["annotations"][3]["keypoints"]

    path = _coco_copy(tmp_path, mutate)
    with pytest.raises(AnnotationError, match=r"annotation id 1202706 .*\['keypoints'\]"):
        load_coco_keypoints(path)

    def no_names(data):
        data["categories"][0].pop("keypoints")

    path = _coco_copy(tmp_path, no_names)
    with pytest.raises(AnnotationError, match="keypoint count is unknown"):
        load_coco_keypoints(path)
    assert len(load_coco_keypoints(path, keypoint_spec=17)) == 12


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        load_coco_keypoints(COCO_FILE, mode="test")
    with pytest.raises(ValueError, match="check_images"):
        load_coco_keypoints(COCO_FILE, check_images="maybe")


def test_train_mode_filters_crowd_and_empty_boxes(tmp_path):
    def mutate(data):
        anns = data["annotations"]
        anns[0]["iscrowd"] = 1
        # starts in the last column of a 500 px wide image: no area once clipped
        # to x <= W - 1 (mmpose's filter). A box entirely outside the image is
        # an error instead (tests/datasets/test_hostile_data.py).
        anns[1]["bbox"] = [499.5, 10.0, 20.0, 20.0]

    path = _coco_copy(tmp_path, mutate)
    train = load_coco_keypoints(path)
    evals = load_coco_keypoints(path, mode="eval")
    assert len(train) == 10 and len(evals) == 10
    assert {i.instance_id for i in evals.ignored_instances} == {442619, 198196, 1202706, 508900}
    crowd = [i for i in evals.ignored_instances if i.instance_id == 442619][0]
    assert crowd.iscrowd == 1


def test_pose_instance_validation():
    with pytest.raises(ValueError, match="keypoints_visible"):
        PoseInstance("a.jpg", 1, 1, [0, 0, 1, 1], np.zeros((3, 2)), np.zeros(2), 1.0, 0, 1, 0)
    with pytest.raises(ValueError, match="bbox"):
        PoseInstance("a.jpg", 1, 1, [0, 0, 1], np.zeros((3, 2)), np.zeros(3), 1.0, 0, 1, 0)


# ---------------------------------------------------------------------------
# Detections.


def test_load_coco_detections():
    dets = load_coco_detections(DATA_DIR / "coco" / "test_coco_det_AP_H_56.json")
    assert {k: len(v[1]) for k, v in dets.items()} == {785: 22, 197388: 37, 40083: 26, 196141: 33}
    boxes, scores = dets[785]
    assert boxes.shape == (22, 4) and boxes.dtype == np.float32
    np.testing.assert_allclose(boxes[0], [277.1183158543966, 45.699667786163765,
                                          225.09126579259754, 333.5602652943344], rtol=1e-6)
    assert scores[0] == pytest.approx(0.9999731779098511)
    high = load_coco_detections(DATA_DIR / "coco" / "test_coco_det_AP_H_56.json", min_score=0.5)
    assert all((v[1] >= 0.5).all() for v in high.values())
    assert sum(len(v[1]) for v in high.values()) < 118
    crowd = load_coco_detections(DATA_DIR / "crowdpose" / "test_crowdpose_det_AP_40.json")
    assert sum(len(v[1]) for v in crowd.values()) == 6
    assert load_coco_detections(DATA_DIR / "coco" / "test_coco_det_AP_H_56.json", category_id=2) == {}


def test_load_coco_detections_errors(tmp_path):
    dets = json.loads((DATA_DIR / "coco" / "test_coco_det_AP_H_56.json").read_text())
    bad = copy.deepcopy(dets)
    bad[3]["bbox"] = [1, 2, 3]
    path = _write_json(tmp_path / "dets.json", bad)
    with pytest.raises(AnnotationError, match=r"detection #3 in .*dets\.json.*4 finite"):
        load_coco_detections(path)
    bad = copy.deepcopy(dets)
    del bad[5]["score"]
    with pytest.raises(AnnotationError, match=r"detection #5 .*\['score'\]"):
        load_coco_detections(_write_json(tmp_path / "dets2.json", bad))


def test_dataset_from_detections():
    reference = load_coco_keypoints(COCO_FILE, mode="eval")
    dets = load_coco_detections(DATA_DIR / "coco" / "test_coco_det_AP_H_56.json")
    ds = dataset_from_detections(dets, reference)
    assert len(ds) == 118 and ds.num_keypoints == 17 and ds.mode == "eval"
    assert ds[0].image_id == 785 and ds[0].bbox_score == pytest.approx(0.9999731779098511)
    assert ds[0].num_keypoints == 0 and not ds[0].keypoints_visible.any()
    with pytest.raises(AnnotationError, match="not in the image table"):
        dataset_from_detections({1: dets[785]}, reference)
