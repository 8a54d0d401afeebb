"""Issue 8 (items 16, 18, 19, 20): hostile input to `predict`, `export` and `main()`.

Bad detections files, dangerous `--output` paths, a closed stdout, a bad
image in a folder, export destinations that cannot be written and the
export's temporary SavedModel folders. Most checks run before the model is
loaded, so they use a preset path that does not exist: the error must be
about the bad argument, not the preset.
"""

import errno
import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR, REPO_ROOT

import keras_pose
from keras_pose.cli import main
from keras_pose.cli import presets as presets_verb

ROOT = str(REPO_ROOT)
IMAGE = DATA_DIR / "coco" / "000000000785.jpg"
NO_PRESET = "/nonexistent/keras-pose-preset"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *words):
    assert code == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras-pose: error:"), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# ------------------------------------------------------------ --detections
BAD_DETECTIONS = {
    "malformed": b"{not json",
    "empty": b"",
    "binary": bytes(range(256)),
    "number": b"3",
    "record_without_bbox": json.dumps([{"image_id": 785, "score": 0.9}]).encode(),
    "record_not_object": json.dumps([[1, 2, 3, 4]]).encode(),
    "bbox_three_values": json.dumps([{"image_id": 785, "bbox": [1, 2, 3]}]).encode(),
    "bbox_five_values": json.dumps([{"image_id": 785, "bbox": [1, 2, 3, 4, 5]}]).encode(),
    "bbox_text": json.dumps([{"image_id": 785, "bbox": ["a", 2, 3, 4]}]).encode(),
    "bbox_nan": b'[{"image_id": 785, "bbox": [NaN, 2, 3, 4]}]',
    "bbox_infinite": b'[{"image_id": 785, "bbox": [1, 2, Infinity, 4]}]',
    "bbox_zero_width": json.dumps([{"image_id": 785, "bbox": [1, 2, 0, 4]}]).encode(),
    "bbox_not_list": json.dumps([{"image_id": 785, "bbox": "1,2,3,4"}]).encode(),
    "bool_image_id": json.dumps([{"image_id": True, "bbox": [1, 2, 3, 4]}]).encode(),
    "score_text": json.dumps([{"image_id": 785, "bbox": [1, 2, 3, 4], "score": "high"}]).encode(),
    "dict_not_list": json.dumps({"000000000785.jpg": 5}).encode(),
    "dict_box_three_values": json.dumps({"000000000785.jpg": [[1, 2, 3]]}).encode(),
    "dict_box_six_values": json.dumps({"000000000785.jpg": [[1, 2, 3, 4, 0.9, 7]]}).encode(),
    "dict_box_nan_score": b'{"000000000785.jpg": [[1, 2, 3, 4, NaN]]}',
}


@pytest.mark.parametrize("name", list(BAD_DETECTIONS))
def test_bad_detections_are_one_line_errors(name, tmp_path, capsys):
    path = tmp_path / f"{name}.json"
    path.write_bytes(BAD_DETECTIONS[name])
    code, out, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, "--detections", path)
    _one_line_error(code, err, str(path))
    assert out == ""


def test_missing_detections_file_and_folder(tmp_path, capsys):
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, "--detections", tmp_path / "no.json")
    _one_line_error(code, err, "does not exist")
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, "--detections", tmp_path)
    _one_line_error(code, err, "folder")


@pytest.mark.parametrize("box", ["nan,1,2,3", "1,2,inf,4", "1,2,3", "1,2,3,4,5"])
def test_bad_box_argument_is_an_argument_error(box, capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", "--preset", NO_PRESET, str(IMAGE), "--box", box])
    assert info.value.code == 2
    assert "X,Y,W,H" in capsys.readouterr().err


# ---------------------------------------------------------------- --output
def test_output_with_an_unknown_extension_fails_before_the_model_loads(tmp_path, capsys):
    for output in ("drawn.xyz", "drawn"):
        code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, "--output", tmp_path / output)
        _one_line_error(code, err, output, ".png")
    assert not os.listdir(tmp_path)


def test_output_never_replaces_folders_inputs_or_other_files(tmp_path, capsys):
    notes = tmp_path / "notes.png"
    notes.write_text("my notes, not an image")
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, "--output", notes)
    _one_line_error(code, err, str(notes), "not an image")
    assert notes.read_text() == "my notes, not an image"
    # The drawing would replace the input image itself.
    copy = tmp_path / "photo.jpg"
    copy.write_bytes(IMAGE.read_bytes())
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, copy, "--output", copy)
    _one_line_error(code, err, "input")
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, copy, "--output", tmp_path)
    _one_line_error(code, err, "input")
    assert copy.read_bytes() == IMAGE.read_bytes()
    # Several inputs need a folder.
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, copy, "--output", notes)
    _one_line_error(code, err, "folder")
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, copy, "--output", tmp_path / "new.png")
    _one_line_error(code, err, "folder")
    # A folder where the drawing of an input would go.
    out = tmp_path / "out"
    (out / "photo.jpg").mkdir(parents=True)
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, copy, "--output", out)
    _one_line_error(code, err, "folder")
    # Two inputs with the same name would draw to one file.
    other = tmp_path / "other"
    other.mkdir()
    (other / "photo.jpg").write_bytes(IMAGE.read_bytes())
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, copy, other / "photo.jpg", "--output", tmp_path / "o2")
    _one_line_error(code, err, "both")
    # A parent that is a file; --json on a folder.
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, "--output", notes / "x.png")
    _one_line_error(code, err, "is a file")
    code, _, err = _run(capsys, "predict", "--preset", NO_PRESET, IMAGE, "--json", tmp_path)
    _one_line_error(code, err, "--json", "folder")


def test_output_replaces_an_existing_image_and_says_so(tiny_preset_dir, tmp_path, capsys):
    out = tmp_path / "drawn.png"
    cv2.imwrite(str(out), np.zeros((4, 4, 3), np.uint8))
    code, _, err = _run(capsys, "predict", "--preset", tiny_preset_dir, IMAGE, "--output", out, "--json",
                        tmp_path / "r.json")
    assert code == 0, err
    assert "replaces the existing file" in err and str(out) in err
    assert cv2.imread(str(out)).shape == cv2.imread(str(IMAGE)).shape
    # An existing folder for a single input receives the drawing by the input's name.
    folder = tmp_path / "folder"
    folder.mkdir()
    code, _, err = _run(capsys, "predict", "--preset", tiny_preset_dir, IMAGE, "--output", folder, "--json",
                        tmp_path / "r.json")
    assert code == 0, err
    assert os.listdir(folder) == [IMAGE.name]


# --------------------------------------------------- folders with bad images
@pytest.fixture()
def mixed_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("000000000785.jpg", "000000040083.jpg"):
        (folder / name).write_bytes((DATA_DIR / "coco" / name).read_bytes())
    (folder / "000000001000.jpg").write_bytes(b"not an image")  # sorts between the two
    return folder


def test_folder_with_a_bad_image_skips_it_and_writes_the_rest(tiny_preset_dir, mixed_folder, tmp_path, capsys):
    out_json = tmp_path / "res.json"
    drawn = tmp_path / "drawn"
    code, _, err = _run(capsys, "predict", "--preset", tiny_preset_dir, mixed_folder, "--json", out_json,
                        "--output", drawn)
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("keras-pose: skipped ") and "000000001000.jpg" in lines[0]
    assert "Could not decode" in lines[0]
    assert "1 of 3 inputs failed" in lines[-1] and str(out_json) in lines[-1]
    records = json.loads(out_json.read_text())
    assert sorted({r["image_id"] for r in records}) == [785, 40083]
    assert sorted(os.listdir(drawn)) == ["000000000785.jpg", "000000040083.jpg"]
    # Without --json the results go to stdout all the same.
    code, out, err = _run(capsys, "predict", "--preset", tiny_preset_dir, mixed_folder)
    assert code == 1 and sorted({r["image_id"] for r in json.loads(out)}) == [785, 40083]


def test_strict_stops_at_the_first_bad_image_and_keeps_what_was_done(tiny_preset_dir, mixed_folder, tmp_path, capsys):
    out_json = tmp_path / "res.json"
    code, _, err = _run(capsys, "predict", "--preset", tiny_preset_dir, mixed_folder, "--json", out_json, "--strict")
    assert code == 1 and "Traceback" not in err
    assert "stopped" in err and "keras-pose: error: Could not decode" in err and "000000001000.jpg" in err
    assert {r["image_id"] for r in json.loads(out_json.read_text())} == {785}


def test_dict_detections_respect_min_box_score(tiny_preset_dir, tmp_path, capsys):
    detections = tmp_path / "dets.json"
    detections.write_text(json.dumps({IMAGE.name: [[280.79, 44.73, 218.7, 346.68, 0.9], [10, 10, 50, 80, 0.1]]}))
    code, out, err = _run(capsys, "predict", "--preset", tiny_preset_dir, IMAGE, "--detections", detections,
                          "--min-box-score", "0.5")
    assert code == 0, err
    records = json.loads(out)
    assert len(records) == 1
    assert records[0]["bbox"] == pytest.approx([280.79, 44.73, 218.7, 346.68], abs=0.01)


def test_evaluate_json_never_holds_nan(tmp_path):
    import argparse

    from keras_pose.cli import evaluate

    args = argparse.Namespace(preset="p", annotations="a.json", detections=None, json=str(tmp_path / "m.json"))
    evaluate._write_json(args, [1, 2], {"pckh": 0.75, "head": float("nan"), "epe": float("inf")})  # old: NaN tokens

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    record = json.loads((tmp_path / "m.json").read_text(), parse_constant=refuse)
    assert record["metrics"] == {"pckh": 0.75, "head": None, "epe": None} and record["instances"] == 2


# ------------------------------------------------------------------ main()
def test_main_one_line_for_user_errors_traceback_for_bugs(monkeypatch, capsys):
    def disk_full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out.json")

    monkeypatch.setattr(presets_verb, "run", disk_full)
    code, _, err = _run(capsys, "presets")
    _one_line_error(code, err, "No space left on device", "/data/out.json")

    def bug(args):
        raise TypeError("a real bug")

    monkeypatch.setattr(presets_verb, "run", bug)
    with pytest.raises(TypeError, match="a real bug"):
        main(["presets"])


def test_presets_into_a_closed_pipe_exits_quietly(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "keras_pose.cli", "presets", "--json"], cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # like `| head` that has exited before the table is written
    _, err = proc.communicate(timeout=300)
    err = err.decode(errors="replace")
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141


# ------------------------------------------------------------------ export
needs_export = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="export runs on the TensorFlow backend"
)


def test_export_output_under_a_file_fails_before_the_model_loads(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, err = _run(capsys, "export", "--preset", NO_PRESET, "--output", blocker / "m.tflite")
    _one_line_error(code, err, str(blocker / "m.tflite"), "is a file")
    (tmp_path / "m.onnx").mkdir()
    code, _, err = _run(capsys, "export", "--preset", NO_PRESET, "--output", tmp_path / "m.onnx")
    _one_line_error(code, err, str(tmp_path / "m.onnx"), "folder")


@pytest.fixture(scope="module")
def tiny_model():
    backbone = keras_pose.ViTPoseBackbone(image_size=(32, 24), hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)
    return keras_pose.ViTPose(backbone, decoder="simple")


@needs_export
def test_export_checks_the_destination_before_converting(tiny_model, tmp_path, monkeypatch):
    from keras_pose.export import ExportError, export_model
    from keras_pose.export import serving

    def no_conversion(*args, **kwargs):
        raise AssertionError("the conversion started before the destination was checked")

    monkeypatch.setattr(serving, "build_serving_function", no_conversion)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="is a file, not a folder") as info:
        export_model(tiny_model, blocker / "sub" / "m.tflite")
    assert str(blocker / "sub" / "m.tflite") in str(info.value)
    (tmp_path / "m.tflite").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        export_model(tiny_model, tmp_path / "m.tflite")
    (tmp_path / "n.onnx.json").mkdir()
    with pytest.raises(ExportError, match="metadata file .* is a folder"):
        export_model(tiny_model, tmp_path / "n.onnx")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ExportError, match="not writable") as info:
        export_model(tiny_model, tmp_path / "new" / "m.onnx")
    assert str(tmp_path / "new" / "m.onnx") in str(info.value)


@needs_export
def test_export_write_error_names_the_users_path(tiny_model, tmp_path, monkeypatch):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    from keras_pose.export import ExportError, export_model
    from keras_pose.export import files

    def full_disk(path, mode="wb"):
        hidden = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".abc123.tmp")
        raise OSError(errno.ENOSPC, "No space left on device", hidden)

    monkeypatch.setattr(files, "atomic_write", full_disk)
    target = tmp_path / "m.onnx"
    with pytest.raises(ExportError) as info:
        export_model(tiny_model, target)
    message = str(info.value)
    assert str(target) in message and "No space left on device" in message and ".tmp" not in message
    assert not os.listdir(tmp_path)


@needs_export
def test_export_temp_folders_are_removed_and_stale_ones_cleaned(tiny_model, tmp_path, monkeypatch):
    pytest.importorskip("ai_edge_litert")
    import tempfile

    from keras_pose.export import export_model, files, load_exported, tflite

    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    host = files._host()
    # A process that has exited: its folder is stale.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = temp_root / f"keras-pose-export-{dead_pid}@{host}-abc_12"
    (stale / "saved_model").mkdir(parents=True)
    (stale / "saved_model" / "variables.data").write_bytes(b"0" * 1000)
    # Kept: a live process's folder, another host's, and unrelated folders.
    live = temp_root / f"keras-pose-export-{os.getppid()}@{host}-def"
    other_host = temp_root / f"keras-pose-export-{dead_pid}@elsewhere-ghi"
    unrelated = temp_root / "keras-pose-exported-models"
    for folder in (live, other_host, unrelated):
        folder.mkdir()

    seen = []
    real_quantize = tflite.quantize

    def failing_quantize(converter, *args):
        seen.extend(p for p in temp_root.iterdir() if p.name.startswith(f"keras-pose-export-{os.getpid()}@"))
        assert len(seen) == 1 and (seen[0] / "saved_model.pb").is_file()
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(tflite, "quantize", failing_quantize)
    with pytest.raises(RuntimeError, match="conversion failed"):
        export_model(tiny_model, tmp_path / "m.tflite")
    assert not seen[0].exists()  # removed on the error path
    assert not stale.exists()  # the killed export's folder is gone
    assert live.exists() and other_host.exists() and unrelated.exists()
    assert not (tmp_path / "m.tflite").exists()
    # A successful export leaves nothing behind either.
    monkeypatch.setattr(tflite, "quantize", real_quantize)
    path = export_model(tiny_model, tmp_path / "m.tflite")
    zeros = np.zeros((1, 32, 24, 3), np.float32)
    expected = tiny_model.predict_heatmaps(zeros, flip_test=False)
    np.testing.assert_allclose(load_exported(path).heatmaps(zeros), expected, atol=1e-4)
    ours = sorted(p.name for p in temp_root.iterdir() if p.name.startswith("keras-pose-"))
    assert ours == sorted(p.name for p in (live, other_host, unrelated))  # (TF autograph leaves its own .py files)
