"""`keras-pose predict` on images, folders and videos, with a small preset."""

import json

import cv2
import numpy as np
import pytest

import keras_pose
from keras_pose.cli import main

from pose_testing.paths import DATA_DIR

BOX = [280.79, 44.73, 218.7, 346.68]


def test_predict_one_image_with_box(tiny_preset_dir, tmp_path, capsys):
    image = str(DATA_DIR / "coco" / "000000000785.jpg")
    out_png = tmp_path / "out.png"
    out_json = tmp_path / "out.json"
    code = main(["predict", "--preset", tiny_preset_dir, image, "--box", ",".join(map(str, BOX)),
                 "--output", str(out_png), "--json", str(out_json), "--threshold", "0"])
    assert code == 0
    records = json.loads(out_json.read_text())
    assert len(records) == 1 and records[0]["image_id"] == 785 and records[0]["category_id"] == 1
    keypoints = np.asarray(records[0]["keypoints"]).reshape(17, 3)
    assert records[0]["bbox"] == pytest.approx(BOX, abs=0.01)
    drawn = cv2.imread(str(out_png))
    original = cv2.imread(image)
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).sum() > 0
    # The same keypoints as the Python API.
    model = keras_pose.from_preset(tiny_preset_dir)
    result = model.predict_keypoints(image, [BOX])
    np.testing.assert_allclose(keypoints[:, :2], result.keypoints[0], atol=2e-3)


def test_predict_folder_with_detections(tiny_preset_dir, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("000000000785.jpg", "000000040083.jpg"):
        (folder / name).write_bytes((DATA_DIR / "coco" / name).read_bytes())
    out_dir = tmp_path / "drawn"
    out_json = tmp_path / "res.json"
    dets = DATA_DIR / "coco" / "test_coco_det_AP_H_56.json"
    code = main(["predict", "--preset", tiny_preset_dir, str(folder), "--detections", str(dets),
                 "--min-box-score", "0.5", "--output", str(out_dir), "--json", str(out_json)])
    assert code == 0
    records = json.loads(out_json.read_text())
    expected = sum(
        1 for d in json.loads(dets.read_text()) if d["image_id"] in (785, 40083) and d["score"] >= 0.5
    )
    assert len(records) == expected > 2
    assert sorted(p.name for p in out_dir.iterdir()) == ["000000000785.jpg", "000000040083.jpg"]


def test_predict_video(tiny_preset_dir, tmp_path):
    video = tmp_path / "clip.mp4"
    frame = cv2.imread(str(DATA_DIR / "coco" / "000000000785.jpg"))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (frame.shape[1], frame.shape[0]))
    for shift in range(3):
        writer.write(np.roll(frame, shift * 5, axis=1))
    writer.release()
    out = tmp_path / "drawn.mp4"
    out_json = tmp_path / "video.json"
    assert main(["predict", "--preset", tiny_preset_dir, str(video), "--output", str(out), "--json", str(out_json)]) == 0
    records = json.loads(out_json.read_text())
    assert [r["image_id"] for r in records] == [0, 1, 2]
    capture = cv2.VideoCapture(str(out))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 3


def test_predict_bad_input_is_one_line_error(tiny_preset_dir, tmp_path, capsys):
    assert main(["predict", "--preset", tiny_preset_dir, str(tmp_path / "missing.jpg")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    corrupt = tmp_path / "bad.jpg"
    corrupt.write_bytes(b"not an image")
    assert main(["predict", "--preset", tiny_preset_dir, str(corrupt)]) == 1
    assert "Could not decode" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--preset", tiny_preset_dir, str(corrupt), "--box", "1,2,0,4"])
    assert exit_info.value.code == 2
