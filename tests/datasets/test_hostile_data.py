"""Hostile or careless inputs: images, annotations, boxes and results (issue 8).

Covers: EXIF orientation (read_image and the tf.data pipeline), image dtypes
(uint16, bool, NaN, int64, float), duplicate annotation ids (loader and COCO
evaluator), NaN / Inf / misshapen / outside boxes and strict JSON results, and
annotation quirks (visibility 1.5, joints_vis 5, keypoints far outside the
image, scale <= 0, negative boxes, wrong image sizes).
"""

import copy
import json
import shutil
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR
from pose_testing.blob_model import BOXES, PEOPLE, BlobPoseModel, _blob_image
from pose_testing.coco_results import ground_truth_results

from keras_pose.datasets import dataset_from_detections, load_coco_detections, load_coco_keypoints, load_mpii
from keras_pose.errors import AnnotationError, BoxError, ImageReadError, ResultError
from keras_pose.metrics import CocoKeypointEvaluator
from keras_pose.utils.image_io import apply_orientation, exif_orientation, read_image

COCO_FILE = DATA_DIR / "coco" / "test_coco.json"
MPII_FILE = DATA_DIR / "mpii" / "test_mpii.json"
JPEG_785 = DATA_DIR / "coco" / "000000000785.jpg"  # 640x425 (WxH), no EXIF


# ------------------------------------------------------------------ helpers


def _tiff_orientation(orientation, big_endian=False):
    """A minimal TIFF structure whose IFD0 holds only the Orientation tag."""
    e = ">" if big_endian else "<"
    return (
        (b"MM\x00\x2a" if big_endian else b"II\x2a\x00")
        + struct.pack(e + "I", 8)
        + struct.pack(e + "H", 1)
        + struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)
        + struct.pack(e + "I", 0)
    )


def jpeg_with_exif(jpeg, orientation, big_endian=False):
    """The JPEG bytes with an Exif APP1 segment (Orientation tag) after SOI."""
    payload = b"Exif\x00\x00" + _tiff_orientation(orientation, big_endian)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def png_with_exif(png, orientation):
    """The PNG bytes with an eXIf chunk (Orientation tag) before the first IDAT."""
    body = b"eXIf" + _tiff_orientation(orientation)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    at = png.index(b"IDAT") - 4
    return png[:at] + chunk + png[at:]


def encode_png(rgb):
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)
    assert ok
    return data.tobytes()


def cv2_imread_rgb(path):
    """What every other tool shows: cv2.imread(IMREAD_COLOR) applies EXIF."""
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _coco_data():
    return json.loads(COCO_FILE.read_text())


def _coco_copy(tmp_path, mutate=None):
    data = _coco_data()
    if mutate is not None:
        mutate(data)
    for img in data["images"]:
        shutil.copy(DATA_DIR / "coco" / img["file_name"], tmp_path / img["file_name"])
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


# ------------------------------------------------- 6. EXIF orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_image_applies_exif_orientation_like_cv2_imread(tmp_path, orientation):
    stored = cv2.cvtColor(cv2.imread(str(JPEG_785), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(jpeg_with_exif(JPEG_785.read_bytes(), orientation))
    image = read_image(str(path))
    np.testing.assert_array_equal(image, cv2_imread_rgb(path))
    np.testing.assert_array_equal(image, apply_orientation(stored, orientation))
    assert image.shape == ((640, 425, 3) if orientation >= 5 else (425, 640, 3))
    if orientation == 6:  # rotated 90 deg clockwise
        np.testing.assert_array_equal(image, np.rot90(stored, k=-1))
    # big-endian ("MM") EXIF reads the same
    path.write_bytes(jpeg_with_exif(JPEG_785.read_bytes(), orientation, big_endian=True))
    np.testing.assert_array_equal(read_image(str(path)), image)


def test_exif_orientation_parser_reads_what_opencv_reads(tmp_path):
    jpeg = JPEG_785.read_bytes()
    assert exif_orientation(jpeg) == 1 and exif_orientation(JPEG_785) == 1
    assert exif_orientation(jpeg_with_exif(jpeg, 6)) == 6
    # two Exif segments: the first counts, as in OpenCV
    twice = jpeg_with_exif(jpeg_with_exif(jpeg, 3), 6)
    assert exif_orientation(twice) == 6
    path = tmp_path / "twice.jpg"
    path.write_bytes(twice)
    assert cv2_imread_rgb(path).shape == (640, 425, 3)
    # a PNG eXIf chunk
    small = read_image(str(JPEG_785))[:50, :60]
    png = png_with_exif(encode_png(small), 8)
    assert exif_orientation(png) == 8
    path = tmp_path / "o8.png"
    path.write_bytes(png)
    np.testing.assert_array_equal(read_image(str(path)), cv2_imread_rgb(path))
    np.testing.assert_array_equal(read_image(str(path)), np.rot90(small, k=1))
    # out-of-range values, garbage and truncated headers mean "as stored"
    for data in (jpeg_with_exif(jpeg, 9), jpeg_with_exif(jpeg, 0), b"", b"\xff\xd8\xff", b"not an image",
                 jpeg_with_exif(jpeg, 6)[:30], png[:40]):
        assert exif_orientation(data) == 1
    assert exif_orientation(tmp_path / "missing.jpg") == 1


def test_pipeline_images_equal_read_image_for_every_orientation(tmp_path):
    from keras_pose.data.top_down_pipeline import _ImageSource

    jpeg = JPEG_785.read_bytes()
    paths = []
    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.jpg"
        path.write_bytes(jpeg_with_exif(jpeg, orientation))
        paths.append(str(path))
    small = read_image(str(JPEG_785))[100:160, 200:290]
    path = tmp_path / "o6.png"
    path.write_bytes(png_with_exif(encode_png(small), 6))
    paths.append(str(path))
    # a 16-bit PNG, upright per EXIF too (scaled by 1/257 in both readers)
    wide = small.astype(np.uint16) * 257 + np.arange(small.size, dtype=np.uint16).reshape(small.shape) % 200
    path = tmp_path / "o5_16bit.png"
    path.write_bytes(png_with_exif(encode_png(wide), 5))
    paths.append(str(path))
    expected = [read_image(p) for p in paths]
    assert expected[5].shape == (640, 425, 3) and expected[-1].shape == (90, 60, 3)
    for mode in (False, "encoded", "decoded"):
        source = _ImageSource(paths, mode)
        for index, ref in enumerate(expected):
            np.testing.assert_array_equal(source(index).numpy(), ref, err_msg=f"{mode} {paths[index]}")


def _upright_coco_785(tmp_path, orientation_tag=6):
    """COCO image 785 stored as is but tagged Orientation=6, annotations upright.

    Orientation 6 turns the stored image 90 deg clockwise: a stored pixel
    (x, y) shows at (H - 1 - y, x) upright, H = 425 the stored height.
    """
    data = _coco_data()
    data["images"] = [dict(img, width=425, height=640) for img in data["images"] if img["id"] == 785]
    anns = [ann for ann in data["annotations"] if ann["image_id"] == 785]
    for ann in anns:
        x, y, w, h = ann["bbox"]
        ann["bbox"] = [425 - (y + h), x, h, w]
        kpts = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        labelled = kpts[:, 2] > 0
        kpts[labelled, :2] = np.stack([425 - 1 - kpts[labelled, 1], kpts[labelled, 0]], axis=1)
        ann["keypoints"] = kpts.reshape(-1).tolist()
    data["annotations"] = anns
    (tmp_path / JPEG_785.name).write_bytes(jpeg_with_exif(JPEG_785.read_bytes(), orientation_tag))
    path = tmp_path / "upright.json"
    path.write_text(json.dumps(data))
    return path


def test_sideways_photo_trains_in_the_upright_frame(tmp_path):
    from keras_pose.codecs import UDPHeatmap
    from keras_pose.data import build_top_down_dataset
    from keras_pose.geometry import box_xywh_to_center_scale, get_warp_matrix, transform_points, warp_image

    original = load_coco_keypoints(COCO_FILE).filter(lambda i: i.image_id == 785)[0]
    path = _upright_coco_785(tmp_path)
    # the size check compares the upright size (425x640 WxH) ...
    dataset = load_coco_keypoints(path, check_images="decode")
    inst = dataset[0]
    stored = read_image(str(JPEG_785))
    upright = read_image(inst.image_path)
    # ... and the upright annotation lands on the same pixels as the original one
    for (x, y), (xu, yu), v in zip(original.keypoints, inst.keypoints, original.keypoints_visible):
        if v > 0:
            np.testing.assert_array_equal(upright[int(yu), int(xu)], stored[int(y), int(x)])
    size = (128, 96)
    codec = UDPHeatmap(size, (32, 24))
    (x, _, meta), = [
        tuple(t.numpy() if hasattr(t, "numpy") else {k: v.numpy() for k, v in t.items()} for t in element)
        for element in build_top_down_dataset(dataset, codec, batch_size=None, training=False)
    ]
    assert tuple(meta["image_size"]) == (640, 425)
    c, s = box_xywh_to_center_scale(inst.bbox, size)
    m = get_warp_matrix(c, s, size, udp=True)
    diff = np.abs(x - warp_image(upright, m, size).astype(np.float32))
    assert diff.max() < 0.6 and diff.mean() < 0.3
    np.testing.assert_allclose(meta["keypoints"], transform_points(inst.keypoints, m), atol=1e-3)
    # the stored (sideways) size is now the wrong one
    data = json.loads(path.read_text())
    data["images"][0].update(width=640, height=425)
    path.write_text(json.dumps(data))
    with pytest.raises(ImageReadError, match="640x425"):
        load_coco_keypoints(path, check_images="decode")


def test_predict_keypoints_on_a_sideways_file(tmp_path):
    model = BlobPoseModel()
    upright = _blob_image(PEOPLE)  # 420x640 (HxW); PEOPLE are upright coordinates
    stored = np.ascontiguousarray(np.swapaxes(upright[:, ::-1], 0, 1))  # what a phone stores for Orientation=6
    np.testing.assert_array_equal(apply_orientation(stored, 6), upright)
    path = tmp_path / "sideways.png"
    path.write_bytes(png_with_exif(encode_png(stored), 6))
    result = model.predict_keypoints(str(path), BOXES)
    assert result.image_size == (420, 640)
    assert np.abs(result.keypoints - PEOPLE).max() < 0.1


# ---------------------------------------------------- 12. image dtypes


def _real_crop():
    return read_image(str(JPEG_785))[100:160, 200:280]


def test_uint16_arrays_and_files_scale_by_the_full_range(tmp_path):
    image = _real_crop()
    wide = image.astype(np.uint16) * 257
    np.testing.assert_array_equal(read_image(wide), image)
    # round(v / 257): 128 -> 0, 129 -> 1, 65535 -> 255
    np.testing.assert_array_equal(read_image(np.full((2, 2, 3), 129, np.uint16))[0, 0], [1, 1, 1])
    np.testing.assert_array_equal(read_image(np.full((2, 2, 3), 128, np.uint16))[0, 0], [0, 0, 0])
    # a dark 16-bit file stays dark: no per-image stretch to 0..255
    dark = (image.astype(np.uint16) // 5) * 257  # 0..51 in 8-bit units
    path = tmp_path / "dark16.png"
    cv2.imwrite(str(path), cv2.cvtColor(dark, cv2.COLOR_RGB2BGR))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    read = read_image(str(path))
    np.testing.assert_array_equal(read, image // 5)
    assert read.max() == image.max() // 5 < 60
    gray = tmp_path / "gray16.png"
    cv2.imwrite(str(gray), dark[..., 0])
    np.testing.assert_array_equal(read_image(str(gray)), np.repeat(image[..., :1] // 5, 3, axis=2))
    # predictions on a uint16 array equal those on the uint8 one
    model = BlobPoseModel()
    full = _blob_image(PEOPLE)
    np.testing.assert_allclose(
        model.predict_keypoints(full.astype(np.uint16) * 257, BOXES).keypoints,
        model.predict_keypoints(full, BOXES).keypoints,
        atol=1e-5,
    )


def test_other_dtypes_are_accepted_or_refused_by_rule():
    image = _real_crop()
    for dtype in (np.int64, np.int32, np.int16, np.uint32):
        np.testing.assert_array_equal(read_image(image.astype(dtype)), image)
    np.testing.assert_array_equal(read_image(image.astype(np.float32)), image)
    np.testing.assert_array_equal(read_image(image.astype(np.float64) + 0.4), image)  # rounded
    with pytest.raises(ImageReadError, match="boolean"):
        read_image(image > 0)
    nan = image.astype(np.float32)
    nan[3, 4, 1] = np.nan
    with pytest.raises(ImageReadError, match="NaN"):
        read_image(nan)
    inf = image.astype(np.float32)
    inf[0, 0, 0] = np.inf
    with pytest.raises(ImageReadError, match="NaN / Inf"):
        read_image(inf)
    with pytest.raises(ImageReadError, match="0..1"):
        read_image(image.astype(np.float32) / 255.0)
    with pytest.raises(ImageReadError, match="outside 0..255"):
        read_image((image.astype(np.float32) - 120.0) / 58.0)  # already normalised
    with pytest.raises(ImageReadError, match=r"int64 with values 0..300"):
        read_image(np.where(image > 100, 300, 0).astype(np.int64))
    with pytest.raises(ImageReadError, match=r"-1..255"):
        read_image(np.where(image > 100, 255, -1).astype(np.int32))
    with pytest.raises(ImageReadError, match="dtype"):
        read_image(image.astype(np.complex64))


def test_float_image_files_are_refused(tmp_path):
    path = tmp_path / "float.tiff"
    assert cv2.imwrite(str(path), np.full((8, 9, 3), 0.5, np.float32))
    with pytest.raises(ImageReadError, match="8-bit"):
        read_image(str(path))


# ------------------------------------------------ 9. duplicate annotation ids


def _duplicate_ids(data):
    anns = data["annotations"]
    anns[1]["id"] = anns[0]["id"]
    anns[5]["id"] = anns[3]["id"]


def test_evaluator_renumbers_duplicate_ids_so_ground_truth_scores_ap_1():
    data = _coco_data()
    _duplicate_ids(data)
    results = ground_truth_results(data, skip_crowd=True)
    with pytest.warns(UserWarning, match=r"2 annotation\(s\) repeat an earlier id .*new ids"):
        evaluator = CocoKeypointEvaluator(data)
    assert len(evaluator.coco.anns) == len(data["annotations"]) == 14
    stats = evaluator.evaluate(results)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    # the caller's dict is not modified
    assert data["annotations"][1]["id"] == data["annotations"][0]["id"]


def test_evaluator_renumbers_zero_and_missing_ids():
    data = _coco_data()
    data["annotations"][2]["id"] = 0  # pycocotools never matches a ground truth with id 0
    del data["annotations"][4]["id"]
    with pytest.warns(UserWarning, match=r"2 annotation\(s\) have no positive integer id"):
        evaluator = CocoKeypointEvaluator(data)
    assert evaluator.evaluate(ground_truth_results(data, skip_crowd=True))["AP"] == pytest.approx(1.0)


def test_loader_renumbers_duplicate_ids_and_keeps_both_people(tmp_path):
    path = _coco_copy(tmp_path, _duplicate_ids)
    with pytest.warns(UserWarning, match=r"repeat an earlier id \(ids \[442619, 1202706\]\)") as caught:
        dataset = load_coco_keypoints(path)
    assert len(caught) == 1
    plain = load_coco_keypoints(COCO_FILE)
    assert len(dataset) == len(plain) == 12
    ids = [inst.instance_id for inst in dataset]
    assert len(set(ids)) == len(ids)
    assert max(ids) > max(inst.instance_id for inst in plain)  # fresh ids above the file's largest
    np.testing.assert_array_equal(
        np.stack([i.keypoints for i in dataset]), np.stack([i.keypoints for i in plain])
    )
    # the evaluator on the loaded dataset renumbers the same way: AP 1
    results = [
        {"image_id": i.image_id, "category_id": 1,
         "keypoints": np.concatenate([i.keypoints, np.ones((17, 1))], 1).reshape(-1).tolist(), "score": 1.0}
        for i in dataset
    ]
    with pytest.warns(UserWarning, match="repeat an earlier id"):
        assert CocoKeypointEvaluator(dataset).evaluate(results)["AP"] == pytest.approx(1.0)


def test_loader_rejects_non_integer_ids(tmp_path):
    def mutate(data):
        data["annotations"][3]["id"] = "person-3"
        data["annotations"][4]["id"] = 7.5

    path = _coco_copy(tmp_path, mutate)
    with pytest.raises(AnnotationError, match="id 'person-3'.*integers"):
        load_coco_keypoints(path)
    with pytest.warns(UserWarning, match=r"2 with non-integer id"):
        load_coco_keypoints(path, skip_invalid=True)


# ------------------------------------------- 10. boxes and strict JSON results


def test_non_finite_and_misshapen_boxes_are_rejected():
    model = BlobPoseModel()
    image = _blob_image(PEOPLE)
    for bad in ([[10.0, 20.0, np.nan, 50.0]], [[10.0, 20.0, 30.0, np.inf]], [[-np.inf, 0, 10, 10]]):
        with pytest.raises(BoxError, match="NaN or Inf"):
            model.predict_keypoints(image, bad)
    with pytest.raises(BoxError, match="NaN or Inf"):
        model.predict_keypoints(image, [[10.0, 20.0, np.nan, 50.0]], box_format="xyxy")
    with pytest.raises(BoxError, match=r"a box has 4 values \(x, y, w, h\), got 3"):
        model.predict_keypoints(image, [10, 20, 30])
    with pytest.raises(BoxError, match="got 5"):
        model.predict_keypoints(image, [[10, 20, 30, 40, 0.9]])
    with pytest.raises(BoxError, match="got 3"):
        model.predict_keypoints([image, image], [BOXES, [[1, 2, 3]]])
    with pytest.raises(BoxError, match="not an"):
        model.predict_keypoints(image, [[1, 2, 3, 4], [1, 2, 3]])
    with pytest.raises(BoxError, match="box scores .*NaN"):
        model.predict_keypoints(image, BOXES, box_scores=[0.9, np.nan])
    with pytest.raises(ValueError, match="positive width and height"):  # BoxError is a ValueError
        model.predict_keypoints(image, [[10, 10, -5, 5]])
    # one bare box of 4 numbers is still accepted
    assert len(model.predict_keypoints(image, BOXES[0].tolist())) == 1


def test_boxes_outside_the_image_warn():
    model = BlobPoseModel()
    image = _blob_image(PEOPLE)  # 640x420 (WxH)
    with pytest.warns(UserWarning, match=r"1 box\(es\) of image 0 lie entirely outside the 640x420"):
        model.predict_keypoints(image, [BOXES[0], [700.0, 10.0, 50.0, 80.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict_keypoints(image, BOXES)


def test_an_empty_image_is_blamed_on_the_image():
    model = BlobPoseModel()
    for shape in ((0, 0, 3), (0, 10, 3), (12, 0, 3)):
        with pytest.raises(ImageReadError, match="empty"):
            model.predict_keypoints(np.zeros(shape, np.uint8))


def _strict_loads(text):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_results_never_write_nan_or_infinity():
    from keras_pose.keypoints import get_keypoint_spec
    from keras_pose.results import PoseResult

    model = BlobPoseModel()
    result = model.predict_keypoints(_blob_image(PEOPLE), BOXES)
    assert len(_strict_loads(result.to_json(image_id=1))) == 2
    for field, index in (("keypoints", (1, 2, 0)), ("scores", (0, 1)), ("boxes", (1, 3))):
        broken = copy.deepcopy(result)
        getattr(broken, field)[index] = -np.inf if field == "boxes" else np.nan
        with pytest.raises(ResultError, match=r"person\(s\) \[%d\] of image 1 are NaN or Inf" % index[0]):
            broken.to_json(image_id=1)
        with pytest.raises(ResultError):
            broken.to_coco(image_id=1)
    with pytest.raises(ResultError, match="image_id"):
        result.to_json(image_id=float("nan"))
    empty = PoseResult(np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros((0, 4)), np.zeros(0),
                       get_keypoint_spec("coco"), (10, 10))
    assert _strict_loads(empty.to_json()) == []


def test_detection_readers_reject_non_finite_boxes_and_warn_outside(tmp_path):
    dets = json.loads((DATA_DIR / "coco" / "test_coco_det_AP_H_56.json").read_text())
    bad = copy.deepcopy(dets)
    bad[2]["bbox"][2] = float("nan")
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(bad))  # Python writes the NaN token; the reader must refuse it
    with pytest.raises(AnnotationError, match=r"detection #2 .*4 finite"):
        load_coco_detections(path)
    reference = load_coco_keypoints(COCO_FILE, mode="eval")
    loaded = load_coco_detections(DATA_DIR / "coco" / "test_coco_det_AP_H_56.json")
    hand_made = dict(loaded)
    boxes, scores = hand_made[785]
    hand_made[785] = (np.concatenate([boxes[:1], [[np.inf, 0, 10, 10]]]), np.array([0.9, 0.8]))
    with pytest.raises(AnnotationError, match="image 785 .*NaN/Inf"):
        dataset_from_detections(hand_made, reference)
    hand_made[785] = (np.concatenate([boxes[:1], [[900.0, 10.0, 40.0, 40.0]]]), np.array([0.9, 0.8]))
    with pytest.warns(UserWarning, match=r"1 detected box\(es\) lie entirely outside .*image 785"):
        dataset_from_detections(hand_made, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(dataset_from_detections(loaded, reference)) == 118


# ---------------------------------------------------- 14. annotation quirks


def _coco_case(tmp_path, mutate):
    path = _coco_copy(tmp_path, mutate)
    return path


@pytest.mark.parametrize(
    "mutate,reason,match",
    [
        (lambda a: a["keypoints"].__setitem__(2, 1.5), "invalid visibility flag", r"other than 0, 1 or 2: \[1.5\]"),
        (lambda a: a["keypoints"].__setitem__(2, 3), "invalid visibility flag", r"other than 0, 1 or 2: \[3.0\]"),
        (lambda a: a["keypoints"].__setitem__(slice(0, 3), [6400.0, 50.0, 2]), "keypoint far outside the image",
         r"keypoint 0 at \[6400.0, 50.0\]"),
        (lambda a: a["keypoints"].__setitem__(slice(3, 6), [50.0, -900.0, 1]), "keypoint far outside the image",
         "more than the image size outside"),
        (lambda a: a["bbox"].__setitem__(2, -40.0), "negative box size", "negative width or height"),
        (lambda a: a.__setitem__("bbox", [700.0, 10.0, 20.0, 20.0]), "box outside the image",
         "entirely outside its 640x425"),
    ],
)
def test_coco_annotation_quirks_are_errors_or_counted_skips(tmp_path, mutate, reason, match):
    def apply(data):
        ann = [a for a in data["annotations"] if a["id"] == 442619][0]  # image 785, 640x425
        mutate(ann)

    path = _coco_case(tmp_path, apply)
    with pytest.raises(AnnotationError, match=match):
        load_coco_keypoints(path)
    with pytest.raises(AnnotationError, match=match):
        load_coco_keypoints(path, mode="eval")
    with pytest.warns(UserWarning, match=rf"skipped 1 invalid record.*1 with {reason} \(annotation id 442619\)"):
        dataset = load_coco_keypoints(path, skip_invalid=True)
    assert len(dataset) == 11 and 442619 not in {i.instance_id for i in dataset}


def test_keypoints_slightly_outside_the_image_are_kept(tmp_path):
    def apply(data):
        ann = [a for a in data["annotations"] if a["id"] == 442619][0]
        ann["keypoints"][0:3] = [645.0, -3.0, 2]  # a few pixels outside: annotators do that

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = load_coco_keypoints(_coco_case(tmp_path, apply))
    assert dataset[0].keypoints[0].tolist() == [645.0, -3.0]


def test_wrong_image_size_is_found_in_train_mode_with_decode(tmp_path):
    def apply(data):
        # image 40083 (500x333): every person a crowd region, so train mode keeps
        # none of them, and the listed size is wrong
        for ann in data["annotations"]:
            if ann["image_id"] == 40083:
                ann["iscrowd"] = 1
        [img for img in data["images"] if img["id"] == 40083][0]["width"] = 520

    path = _coco_case(tmp_path, apply)
    assert len(load_coco_keypoints(path)) == 10  # no decode: the size is not checked
    with pytest.raises(ImageReadError, match=r"000000040083\.jpg.*is 333x500 .*lists 333x520"):
        load_coco_keypoints(path, check_images="decode")
    with pytest.warns(UserWarning, match=r"3 with unreadable image file"):
        assert len(load_coco_keypoints(path, check_images="decode", skip_invalid=True)) == 10


def _mpii_case(tmp_path, mutate):
    records = json.loads(MPII_FILE.read_text())
    mutate(records)
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps(records))
    return path


def _load_mpii(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*approximated")
        return load_mpii(*args, image_root=DATA_DIR / "mpii", **kwargs)


@pytest.mark.parametrize(
    "mutate,reason,match",
    [
        (lambda r: r[1]["joints_vis"].__setitem__(3, 5), "invalid joints_vis", r"other than 0 or 1: \[5.0\]"),
        (lambda r: r[1]["joints_vis"].__setitem__(3, 0.5), "invalid joints_vis", r"other than 0 or 1: \[0.5\]"),
        (lambda r: r[1].__setitem__("scale", 0), "non-positive scale", "scale 0;.*must be positive"),
        (lambda r: r[1].__setitem__("scale", -1), "non-positive scale", "scale -1;"),
    ],
)
def test_mpii_quirks_are_errors_or_counted_skips(tmp_path, mutate, reason, match):
    path = _mpii_case(tmp_path, mutate)
    for mode in ("train", "eval"):
        with pytest.raises(AnnotationError, match=rf"record 1 .*{match}"):
            _load_mpii(path, mode=mode)
    with pytest.warns(UserWarning, match=rf"skipped 1 invalid record.*1 with {reason} \(record 1\)"):
        dataset = _load_mpii(path, skip_invalid=True)
    assert len(dataset) == 4 and 1 not in {i.instance_id for i in dataset}


def test_mpii_joints_far_outside_the_image_with_decode(tmp_path):
    path = _mpii_case(tmp_path, lambda r: r[0]["joints"].__setitem__(4, [12000.0, 300.0]))  # a 1280 px wide image
    assert len(_load_mpii(path)) == 5  # the size is unknown without decoding
    with pytest.raises(AnnotationError, match=r"record 0 .*more than the image size outside its 1280x720"):
        _load_mpii(path, check_images="decode")
    with pytest.warns(UserWarning, match=r"1 with keypoint far outside the image \(record 0\)"):
        dataset = _load_mpii(path, check_images="decode", skip_invalid=True)
    assert len(dataset) == 4
