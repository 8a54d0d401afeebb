"""Reference parity of the RTMO network and converter (tests/golden/rtmo, mmpose 1.3.2).

The case's synthetic checkpoint is rebuilt from keys.json + seed with the
golden `make_state_dict` (plus meta.json's `state_dict_overrides`: the sine
frequencies and DCC bins), saved as the released mmpose files are saved
(`{'meta', 'state_dict'}`, legacy non-zip `torch.save`), converted the user
way (`keras-pose convert --checkpoint FILE --output DIR`, family detected
from the names) and loaded with `keras_pose.from_preset(DIR)`. Compared with
the stored reference within meta.json's tolerances: the letterboxed input
made from the COCO sample image (exact), the backbone, neck and head outputs
(max|out - exp| <= 1e-4 * max|exp| per tensor), the DCC keypoints, the
in-graph decoder fed the stored head outputs (instances, scores, boxes,
keypoints), and `predict_keypoints` on the image itself. Run with `-s` to
see the max abs diff per output.
"""

import json

import numpy as np
import pytest
from pose_testing.paths import DATA_DIR
from pose_testing.rtmo_golden import CASE_DIR, meta as _meta, write_checkpoint

RELATIVE_TOLERANCE = 1e-4  # of max|expected|, per tensor (meta.json "raw_outputs")


def _nhwc(array):
    return np.transpose(array, (0, 2, 3, 1))


def _np(x):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """checkpoint file -> `keras-pose convert` -> preset folder -> `keras_pose.from_preset`."""
    import keras_pose
    from keras_pose.cli import main

    root = tmp_path_factory.mktemp("rtmo_checkpoint")
    path = write_checkpoint(root)
    assert main(["convert", "--checkpoint", str(path), "--output", str(root / "preset")]) == 0
    return keras_pose.from_preset(str(root / "preset"))


@pytest.fixture(scope="module")
def converted(task):
    return task.backbone


def test_converter_infers_rtmo_s(task, converted):
    from keras_pose.models.rtmo import RTMO, RTMONetwork

    meta = _meta()["model"]
    assert isinstance(task, RTMO) and isinstance(converted, RTMONetwork)
    assert task.name == "rtmo_s" and task.keypoint_spec.name == "coco"
    test_cfg = meta["test_cfg"]
    assert (task.test_cfg["score_threshold"], task.test_cfg["nms_threshold"]) == (test_cfg["score_thr"],
                                                                                   test_cfg["nms_thr"])
    assert (converted.deepen_factor, converted.widen_factor) == (
        meta["backbone"]["deepen_factor"],
        meta["backbone"]["widen_factor"],
    )
    assert converted.image_size == tuple(meta["test_cfg"]["input_size"])
    assert converted.num_keypoints == meta["head"]["num_keypoints"]
    assert converted.featmap_strides == tuple(meta["head"]["featmap_strides"])
    assert list(converted.backbone.out_channels) == meta["neck"]["in_channels"]
    assert converted.pe_temperature == 10000.0 and converted.dcc.spe_temperature == 300.0
    assert list(converted.dcc.num_bins) == meta["head"]["dcc_cfg"]["num_bins"]
    assert converted.widths["pose_vec_channels"] == meta["head"]["head_module_cfg"]["pose_vec_channels"]


def test_golden_rtmo_s_raw_outputs(converted):
    """Backbone (3 levels), neck (2) and head (cls, bbox, kpt_vis, pose_vec per level) match mmpose."""
    meta = _meta()
    assert "1e-4 * max|exp|" in meta["tolerance"]["raw_outputs (backbone_*, neck_*, head_*)"]
    x = _nhwc(np.load(CASE_DIR / "input.npy")).astype(np.float32)
    features = converted.backbone(x)
    neck = converted.neck(features)
    head = converted.head(neck)
    actual = {f"backbone_{i}": _np(f) for i, f in enumerate(features)}
    actual.update({f"neck_s{s}": _np(f) for s, f in zip(converted.featmap_strides, neck)})
    actual.update({f"head_{name}": _np(value) for name, value in head.items()})
    end_to_end = converted(x)  # the chained network gives the same head outputs

    failures, compared = [], 0
    raw = {n: s for n, s in meta["outputs"].items() if n.split("_")[0] in ("backbone", "neck", "head")}
    for name, spec in raw.items():
        expected = _nhwc(np.load(CASE_DIR / spec["file"]))
        got = actual[name]
        assert got.shape == expected.shape, (name, got.shape, expected.shape)
        diff = float(np.abs(got - expected).max())
        bound = RELATIVE_TOLERANCE * float(np.abs(expected).max())
        ok = diff <= bound
        print(f"[golden rtmo] {spec['file']}: max|diff| = {diff:.3e} (bound {bound:.3e}) {'ok' if ok else 'FAIL'}")
        compared += 1
        if not ok:
            failures.append(f"{name}: max|diff| {diff:.3e} > {bound:.3e}")
        if name.startswith("head_"):
            np.testing.assert_allclose(_np(end_to_end[name[len("head_"):]]), got, rtol=0, atol=1e-3)
    assert compared == 13
    assert not failures, "; ".join(failures)


def test_golden_rtmo_s_dcc_keypoints(converted):
    """The DCC fed the stored pose vectors of the kept instances, their boxes and priors gives mmpose's keypoints."""
    meta = _meta()
    prior_index = np.load(CASE_DIR / "expected_pred_prior_index.npy")
    flat_width = converted.widths["pose_vec_channels"]
    flat = np.concatenate(
        [_nhwc(np.load(CASE_DIR / f"expected_head_pose_vec_s{s}.npy")).reshape(-1, flat_width)
         for s in converted.featmap_strides]
    )
    pose_vecs = flat[prior_index][None]
    bbox_cs = np.load(CASE_DIR / "expected_pred_dcc_bbox_cs.npy")[None]
    grids = np.load(CASE_DIR / "expected_pred_dcc_grids.npy")[None]
    keypoints = _np(converted.dcc([pose_vecs, bbox_cs, grids]))[0]
    expected = np.load(CASE_DIR / "expected_pred_keypoints_input.npy")
    reliable = np.load(CASE_DIR / "mask_pred_keypoints_reliable.npy")
    assert "atol 0.05 px" in meta["tolerance"]["pred_keypoints, pred_keypoints_input"]
    diff = np.abs(keypoints - expected)[reliable]
    print(f"[golden rtmo] expected_pred_keypoints_input.npy ({reliable.sum()} reliable rows): "
          f"max|diff| = {diff.max():.3e} px")
    assert reliable.sum() > 0 and diff.max() <= 0.05


def test_golden_rtmo_s_decoding(converted):
    """The in-graph decoder fed the stored head outputs gives mmpose's instances (meta.json's tolerances)."""
    import keras

    from keras_pose.models.rtmo.rtmo_decoding import decode_rtmo

    meta = _meta()
    tolerance = meta["tolerance"]
    assert tolerance["pred_prior_index"].startswith("exact")
    assert "atol 1e-4" in tolerance["pred_scores, pred_keypoint_scores"]
    assert "atol 0.05 px, rtol 1e-4" in tolerance["pred_bboxes, pred_dcc_bbox_cs, pred_dcc_grids"]
    outputs = {
        f"{kind}_s{s}": _nhwc(np.load(CASE_DIR / f"expected_head_{kind}_s{s}.npy"))
        for kind in ("cls", "bbox", "kpt_vis", "pose_vec")
        for s in converted.featmap_strides
    }
    test_cfg = meta["model"]["test_cfg"]
    got = decode_rtmo(outputs, converted.dcc, converted.image_size, converted.featmap_strides,
                      score_threshold=test_cfg["score_thr"], nms_threshold=test_cfg["nms_thr"], max_instances=100)
    got = {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in got.items()}
    expected_index = np.load(CASE_DIR / "expected_pred_prior_index.npy")
    n = len(expected_index)
    assert got["valid"][0].sum() == n and got["valid"][0][:n].all()
    np.testing.assert_array_equal(got["prior_index"][0][:n], expected_index)
    # mmpose maps boxes and keypoints back to the image: p * scale / input_size + center - scale / 2.
    info = meta["input"]["pipeline_metainfo"]
    scale, center = np.array(info["input_scale"]), np.array(info["input_center"])
    to_image = lambda p: p / np.array(info["input_size"]) * scale + center - 0.5 * scale  # noqa: E731
    reliable = np.load(CASE_DIR / "mask_pred_keypoints_reliable.npy")
    checks = {
        "expected_pred_scores.npy": (got["scores"][0][:n], 1e-4, 0.0, None),
        "expected_pred_keypoint_scores.npy": (got["keypoint_scores"][0][:n], 1e-4, 0.0, None),
        "expected_pred_dcc_grids.npy": (got["priors"][0][:n], 0.05, 1e-4, None),
        "expected_pred_dcc_bbox_cs.npy": (got["bbox_cs"][0][:n], 0.05, 1e-4, None),
        "expected_pred_bboxes.npy": (to_image(got["boxes"][0][:n].reshape(n, 2, 2)).reshape(n, 4), 0.05, 1e-4,
                                     None),
        "expected_pred_keypoints_input.npy": (got["keypoints"][0][:n], 0.05, 0.0, reliable),
        "expected_pred_keypoints.npy": (to_image(got["keypoints"][0][:n]), 0.05, 0.0, reliable),
    }
    _assert_golden(checks)


def test_golden_rtmo_s_letterbox_input(task):
    """The preprocessor turns the COCO sample image into the reference's network input exactly."""
    from keras_pose.utils.image_io import read_image

    meta = _meta()["input"]
    assert meta["image"].endswith("000000000785.jpg")
    image = read_image(str(DATA_DIR / "coco" / "000000000785.jpg"))
    assert image.shape[:2] == tuple(meta["pipeline_metainfo"]["ori_shape"])
    x, matrix = task.preprocessor.resize_image(image)
    expected = _nhwc(np.load(CASE_DIR / "input.npy"))[0]
    diff = float(np.abs(x - expected).max())
    print(f"[golden rtmo] input.npy (letterbox, BGR 0..255): max|diff| = {diff:.3e}")
    assert diff == 0.0
    info = meta["pipeline_metainfo"]
    center, scale = np.array(info["input_center"]), np.array(info["input_scale"])
    corners = np.array([[0.0, 0.0], [640.0, 640.0]], np.float32)  # input corners -> image, as mmpose maps back
    np.testing.assert_allclose(task.preprocessor.resizer.to_image(corners, matrix),
                               corners / np.array(info["input_size"]) * scale + center - 0.5 * scale, atol=1e-4)


@pytest.mark.slow
def test_golden_rtmo_s_predict_keypoints(task):
    """`predict_keypoints` on the sample image (letterbox, forward, in-graph decoding, back to image pixels)."""
    meta = _meta()
    expected_index = np.load(CASE_DIR / "expected_pred_prior_index.npy")
    n = len(expected_index)
    result = task.predict_keypoints(str(DATA_DIR / "coco" / "000000000785.jpg"))
    decoded = task.end_to_end_model().predict_on_batch(
        task.preprocessor.resize_image(np.asarray(_image()))[0][None])
    index = np.asarray(decoded["prior_index"])[0]
    assert len(result) == n and (index[:n] == expected_index).all()
    reliable = np.load(CASE_DIR / "mask_pred_keypoints_reliable.npy")
    boxes_xyxy = np.concatenate([result.boxes[:, :2], result.boxes[:, :2] + result.boxes[:, 2:]], -1)
    checks = {
        "expected_pred_scores.npy": (result.box_scores, 1e-4, 0.0, None),
        "expected_pred_keypoint_scores.npy": (result.scores, 1e-4, 0.0, None),
        "expected_pred_bboxes.npy": (boxes_xyxy, 0.05, 1e-4, None),
        "expected_pred_keypoints.npy": (result.keypoints, 0.05, 0.0, reliable),
    }
    assert meta["tolerance"]["pred_prior_index"].startswith("exact")
    _assert_golden(checks, "predict_keypoints vs ")


def _assert_golden(checks, label=""):
    """Each ``name: (actual, atol, rtol, rows)`` against CASE_DIR/name (rows: a mask, or None for all)."""
    failures = []
    for name, (actual, atol, rtol, rows) in checks.items():
        expected = np.load(CASE_DIR / name)
        if rows is not None:
            actual, expected = actual[rows], expected[rows]
        diff = np.abs(actual - expected)
        ok = bool(np.all(diff <= atol + rtol * np.abs(expected)))
        print(f"[golden rtmo] {label}{name}: max|diff| = {diff.max():.3e} {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(f"{name}: max|diff| {diff.max():.3e}")
    assert not failures, "; ".join(failures)


def _image():
    from keras_pose.utils.image_io import read_image

    return read_image(str(DATA_DIR / "coco" / "000000000785.jpg"))


@pytest.mark.slow
def test_golden_file_converts_with_its_registered_preset(tmp_path):
    """`keras-pose convert --preset rtmo_s_coco_640x640`: the preset's settings and record; the synthetic file is
    not the release (its sha256 prefix differs), so it is recorded as such, without the published AP."""
    import warnings

    import keras_pose
    from keras_pose.conversion import PRESET_METADATA_FILE, convert_checkpoint

    path = write_checkpoint(tmp_path / "checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = convert_checkpoint(path, preset="rtmo_s_coco_640x640", output_dir=tmp_path / "preset")
    assert any("not the file released" in str(w.message) for w in caught)
    record = json.loads((tmp_path / "preset" / PRESET_METADATA_FILE).read_text())
    assert record["release_file"] is False and record["family"] == "rtmo"
    loaded = keras_pose.from_preset(str(tmp_path / "preset"))
    assert loaded.name == model.name == "rtmo_s_coco_640x640" and loaded.test_cfg == model.test_cfg
    assert loaded.preprocessor.resizer.pad_value == 114
