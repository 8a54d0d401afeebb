"""`keras-pose train / evaluate / export`, the training config and the curve plots."""

import csv
import json
import math

import cv2
import numpy as np
import pytest
import yaml

import keras_pose
from keras_pose.cli import build_parser, main
from keras_pose.training import TrainConfigError, load_train_config
from keras_pose.training.optimizers import WarmupSchedule
from keras_pose.visualization_plots import PlotError, load_history, plot_training_curves

from pose_testing.paths import DATA_DIR, REPO_ROOT

SAMPLE_CONFIG = REPO_ROOT / "examples" / "train_config.yaml"
COCO_JSON = DATA_DIR / "coco" / "test_coco.json"
COCO_DETS = DATA_DIR / "coco" / "test_coco_det_AP_H_56.json"
# A fast variant of the sample config: 64x48 crops, a one-layer ViT.
TINY = ["--set", "model.input_size=[64, 48]", "--set", "model.backbone={hidden_dim: 32, num_layers: 1, "
        "num_heads: 2, mlp_dim: 64}", "--set", "evaluation.every_n_epochs=1", "--quiet"]


def _tiny_preset(directory, keypoint_spec="coco"):
    backbone = keras_pose.ViTPoseBackbone(image_size=(64, 48), hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64)
    model = keras_pose.ViTPose(backbone, decoder="simple", keypoint_spec=keypoint_spec)
    model.save_to_preset(str(directory))
    return str(directory)


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    return _tiny_preset(tmp_path_factory.mktemp("preset") / "tiny_coco")


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("keras-pose: error:") and "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------- train
def test_train_sample_config_end_to_end(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = _run(capsys, "train", SAMPLE_CONFIG, "--output-dir", out_dir, "--epochs", 2,
                          "--steps-per-epoch", 3, "--batch-size", 6, "--set", "train.learning_rate.warmup_steps=0",
                          *TINY)
    assert code == 0, err
    assert "Trained 2 epochs x 3 steps" in out and str(out_dir / "preset") in out
    for name in ("config.yaml", "history.csv", "history.json", "metrics.json", "training_curves.png",
                 "checkpoints/best.weights.h5", "checkpoints/last.weights.h5", "preset/config.json"):
        assert (out_dir / name).is_file(), name
    assert not list(out_dir.glob("**/.*tmp*")), "temporary files left behind"

    with open(out_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for row in rows:
        assert 0 < float(row["loss"]) < 1 and 0.0 <= float(row["val_coco_AP"]) <= 1.0
    # Cosine from 1e-3 to 5e-5 over 6 steps; the rate of each epoch's last step (steps 2 and 5).
    for row, step in zip(rows, (2, 5)):
        expected = 1e-3 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / 6)))
        assert float(row["learning_rate"]) == pytest.approx(expected, rel=1e-5)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["monitor"] == "val_coco_AP" and metrics["best_epoch"] in (1, 2)
    assert metrics["initialisation"] == "random" and metrics["train_instances"] == 12
    resolved = yaml.safe_load((out_dir / "config.yaml").read_text())
    assert resolved["model"]["input_size"] == [64, 48] and resolved["train"]["epochs"] == 2
    assert resolved["data"]["train"]["annotation_file"] == str(COCO_JSON.resolve())

    curves = cv2.imread(str(out_dir / "training_curves.png"))
    assert curves is not None and curves.shape[0] > 200 and curves.shape[1] > 400
    model = keras_pose.from_preset(str(out_dir / "preset"))
    assert model.image_size == (64, 48) and model.keypoint_spec.name == "coco"
    result = model.predict_keypoints(str(DATA_DIR / "coco" / "000000000785.jpg"), [[280.8, 44.7, 218.7, 346.7]])
    assert result.keypoints.shape == (1, 17, 2) and np.isfinite(result.keypoints).all()

    # A second run into the same folder refuses to overwrite, naming the key.
    code, _, err = _run(capsys, "train", SAMPLE_CONFIG, "--output-dir", out_dir, "--epochs", 1, *TINY)
    assert code == 1
    line = _one_line_error(err)
    assert "output.dir" in line and "--overwrite" in line


@pytest.mark.slow  # a second CLI training run; the end-to-end one stays in the fast suite
def test_train_finetunes_a_preset_on_custom_keypoints(tmp_path, capsys, preset_dir):
    """A COCO preset fine-tuned on AP-10K keypoints read from the file: new head, same backbone."""
    ap10k = DATA_DIR / "ap10k" / "test_ap10k.json"
    out_dir = tmp_path / "ft"
    code, out, err = _run(
        capsys, "train", SAMPLE_CONFIG, "--output-dir", out_dir, "--preset", preset_dir, "--epochs", 1,
        "--steps-per-epoch", 2, "--batch-size", 2, "--quiet",
        "--set", f"keypoints={{spec: {ap10k}, sigmas: 0.05}}",
        "--set", f"data.train.annotation_file={ap10k}", "--set", "data.train.image_root=null",
        "--set", f"data.val={{annotation_file: {ap10k}}}", "--set", "train.augmentation=true",
    )
    assert code == 0, err
    original = keras_pose.from_preset(preset_dir)
    tuned = keras_pose.from_preset(str(out_dir / "preset"))
    assert tuned.keypoint_spec.name == "antelope" and tuned.keypoint_spec.num_keypoints == 17
    assert list(tuned.keypoint_spec.keypoint_names) != list(original.keypoint_spec.keypoint_names)
    np.testing.assert_allclose(tuned.keypoint_spec.sigmas, 0.05)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["initialisation"] == "preset" and 0.0 <= metrics["last"]["val_coco_AP"] <= 1.0
    # The backbone was trained from the preset's weights, not re-initialised.
    before = original.backbone.get_weights()
    after = tuned.backbone.get_weights()
    assert len(before) == len(after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert max(float(np.abs(a - b).max()) for a, b in zip(before, after)) < 0.1


def test_train_dry_run_prints_the_resolved_config(tmp_path, capsys):
    code, out, err = _run(capsys, "train", SAMPLE_CONFIG, "--dry-run", "--output-dir", "relative/run",
                          "--set", "train.learning_rate.schedule=step", "--set", "train.learning_rate.milestones=[2]")
    assert code == 0, err
    resolved = yaml.safe_load(out)
    assert resolved["output"]["dir"].endswith("relative/run") and resolved["output"]["dir"].startswith("/")
    assert resolved["train"]["learning_rate"]["milestones"] == [2]
    assert resolved["evaluation"]["monitor"] == "val_coco_AP"
    assert resolved["train"]["optimizer"]["weight_decay"] == 0.1
    assert not (tmp_path / "relative").exists()


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.epoch=3", "'train.epoch'"),  # misspelt
        ("train.epochs=0", "'train.epochs'"),
        ("train.batch_size=two", "'train.batch_size'"),
        ("model.architecture=ResNet", "'model.architecture'"),
        ("data.train.annotation_file=/nonexistent/file.json", "'data.train.annotation_file'"),
        ("train.learning_rate.schedule=step", "'train.learning_rate.milestones'"),
        ("evaluation.metric=pckh", "'evaluation.metric'"),
        ("output.save=sometimes", "'output.save'"),
        ("model.input_size=[64]", "'model.input_size'"),
        ("train.augmentation={flipp: null}", "'train.augmentation.flipp'"),
        ("keypoints.sigmas=[-1]", "'keypoints.sigmas[0]'"),
        ("evaluation.monitor=val_coco_ap", "did you mean 'val_coco_AP'"),
    ],
)
def test_train_bad_config_values_name_the_key(capsys, tmp_path, override, expected):
    code, out, err = _run(capsys, "train", SAMPLE_CONFIG, "--dry-run", "--output-dir", tmp_path, "--set", override)
    assert code == 1 and out == ""
    line = _one_line_error(err)
    assert expected in line, line


def test_train_config_errors_on_files(tmp_path, capsys):
    # Misspelt key in a file: suggestion; not a mapping; YAML syntax; missing file.
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {architecture: ViTPose, input_size: [64, 48]}\ndata:\n  train: "
                   f"{{annotation_file: {COCO_JSON}}}\ntrain: {{epochs: 1, bach_size: 2}}\noutput: {{dir: out}}\n")
    code, _, err = _run(capsys, "train", bad, "--dry-run")
    line = _one_line_error(err)
    assert code == 1 and "'train.bach_size'" in line and "did you mean 'batch_size'" in line
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    code, _, err = _run(capsys, "train", listing, "--dry-run")
    assert code == 1 and "mapping" in _one_line_error(err)
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: {architecture: [unclosed\n")
    code, _, err = _run(capsys, "train", broken, "--dry-run")
    assert code == 1 and "does not parse" in _one_line_error(err)
    code, _, err = _run(capsys, "train", tmp_path / "missing.yaml", "--dry-run")
    assert code == 1 and "does not exist" in _one_line_error(err)
    code, _, err = _run(capsys, "train", SAMPLE_CONFIG, "--dry-run", "--set", "no_equals_sign")
    assert code == 1 and "KEY=VALUE" in _one_line_error(err)
    # Relative paths in a file are relative to the file; output.dir is required.
    (tmp_path / "sub").mkdir()
    rel = tmp_path / "sub" / "rel.yaml"
    rel.write_text(yaml.safe_dump({"model": {"input_size": [64, 48]},
                                   "data": {"train": str(COCO_JSON)}, "output": "runs/a"}))
    config = load_train_config(rel)
    assert config.get("output.dir") == str(tmp_path / "sub" / "runs" / "a")
    assert config.get("data.train.image_root") == str(COCO_JSON.parent)
    with pytest.raises(TrainConfigError, match="'output'"):
        load_train_config({"model": {"input_size": [64, 48]}, "data": {"train": str(COCO_JSON)}})
    with pytest.raises(TrainConfigError, match="'model.input_size' is required"):
        load_train_config({"data": {"train": str(COCO_JSON)}, "output": str(tmp_path)})


def test_custom_spec_without_sigmas_needs_them_for_coco_ap(tmp_path):
    from keras_pose.training import train_from_config

    ap10k = str(DATA_DIR / "ap10k" / "test_ap10k.json")
    config = {
        "model": {"input_size": [64, 48], "backbone": {"hidden_dim": 32, "num_layers": 1, "num_heads": 2,
                                                       "mlp_dim": 64}},
        "keypoints": ap10k,  # the file's category: names and skeleton, no sigmas
        "data": {"train": ap10k, "val": ap10k},
        "output": str(tmp_path / "x"),
    }
    with pytest.raises(TrainConfigError, match="keypoints.sigmas"):
        train_from_config(config, verbose=0)


def test_warmup_schedule_shapes():
    import keras

    def lr(schedule, step):
        return float(keras.ops.convert_to_numpy(schedule(step)))

    cosine = WarmupSchedule(1e-3, total_steps=100, schedule="cosine", warmup_steps=10, warmup_start_factor=0.001,
                            min_factor=0.1)
    assert math.isclose(lr(cosine, 0), 1e-6, rel_tol=1e-4)
    assert lr(cosine, 5) < lr(cosine, 10)
    assert math.isclose(lr(cosine, 10), 1e-3, rel_tol=1e-5)
    assert math.isclose(lr(cosine, 100), 1e-4, rel_tol=1e-4)
    step = WarmupSchedule(1e-3, total_steps=100, schedule="step", milestones=[50, 80], gamma=0.1)
    assert [round(lr(step, s) / 1e-3, 6) for s in (0, 49, 50, 79, 80, 99)] == [1, 1, 0.1, 0.1, 0.01, 0.01]
    restored = WarmupSchedule.from_config(cosine.get_config())
    assert math.isclose(lr(restored, 42), lr(cosine, 42))


# ---------------------------------------------------------------- evaluate
def test_evaluate_with_ground_truth_boxes_and_detections(preset_dir, tmp_path, capsys):
    out_json = tmp_path / "gt.json"
    code, out, err = _run(capsys, "evaluate", "--preset", preset_dir, "--annotations", COCO_JSON, "--json", out_json)
    assert code == 0, err
    values = dict(line.split() for line in out.strip().splitlines())
    assert set(values) >= {"coco_AP", "coco_AP50", "coco_AR"}
    assert all(-1.0 <= float(v) <= 1.0 for v in values.values())
    assert "12 instances in 4 images (ground-truth boxes)" in err
    record = json.loads(out_json.read_text())
    assert record["boxes"] == "ground_truth" and record["instances"] == 12
    assert record["metrics"]["coco_AP"] == pytest.approx(float(values["coco_AP"]), abs=1e-4)

    code, out, err = _run(capsys, "evaluate", "--preset", preset_dir, "--annotations", COCO_JSON,
                          "--detections", COCO_DETS, "--min-box-score", "0.3", "--metric", "coco")
    assert code == 0, err
    kept = sum(1 for d in json.loads(COCO_DETS.read_text()) if d["score"] >= 0.3)
    assert f"{kept} instances in 4 images (detected boxes)" in err
    assert 0.0 <= float(dict(line.split() for line in out.strip().splitlines())["coco_AP"]) <= 1.0

    code, out, err = _run(capsys, "evaluate", "--preset", preset_dir, "--annotations", COCO_JSON, "--metric", "pck",
                          "--no-flip-test")
    assert code == 0, err
    assert out.startswith("pck ") and "epe" in out and " px" in out


def test_evaluate_crowdpose_file_prints_crowdpose_figures(tmp_path, capsys):
    # A CrowdPose file (crowdIndex on its images) gets AP..AR75 and AP(E)/AP(M)/AP(H), in that order.
    preset = _tiny_preset(tmp_path / "tiny_crowdpose", keypoint_spec="crowdpose")
    out_json = tmp_path / "crowdpose.json"
    code, out, err = _run(capsys, "evaluate", "--preset", preset, "--annotations",
                          DATA_DIR / "crowdpose" / "test_crowdpose.json", "--json", out_json, "--no-flip-test")
    assert code == 0, err
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert names == ["coco_AP", "coco_AP50", "coco_AP75", "coco_AR", "coco_AR50", "coco_AR75", "coco_AP(E)",
                     "coco_AP(M)", "coco_AP(H)"]
    metrics = json.loads(out_json.read_text())["metrics"]
    assert metrics["coco_AP(E)"] == metrics["coco_AP(H)"] == -1.0  # the sample's crowd indices are 0.33 and 0.39
    assert 0.0 <= metrics["coco_AP(M)"] <= 1.0
    assert metrics["coco_AP(M)"] == pytest.approx(metrics["coco_AP"], abs=5e-5)  # every image is medium


def test_evaluate_mpii_pckh(tmp_path, capsys):
    preset = _tiny_preset(tmp_path / "tiny_mpii", keypoint_spec="mpii")
    code, out, err = _run(capsys, "evaluate", "--preset", preset, "--annotations", DATA_DIR / "mpii" / "test_mpii.json")
    assert code == 0, err
    values = dict(line.split()[:2] for line in out.strip().splitlines())
    assert set(values) == {"pckh", "pckh@0.1"} and all(0.0 <= float(v) <= 1.0 for v in values.values())


def test_evaluate_user_errors(preset_dir, tmp_path, capsys):
    code, _, err = _run(capsys, "evaluate", "--preset", preset_dir, "--annotations", tmp_path / "none.json")
    assert code == 1 and "does not exist" in _one_line_error(err)
    code, _, err = _run(capsys, "evaluate", "--preset", preset_dir, "--annotations", COCO_JSON, "--metric", "pckh")
    assert code == 1 and "pckh" in _one_line_error(err)
    code, _, err = _run(capsys, "evaluate", "--preset", preset_dir, "--annotations", COCO_JSON, "--detections",
                        tmp_path / "dets.json")
    assert code == 1 and "dets.json" in _one_line_error(err)
    code, _, err = _run(capsys, "evaluate", "--preset", preset_dir, "--annotations",
                        DATA_DIR / "mpii" / "test_mpii.json")  # 16 MPII joints, a 17-keypoint model
    assert code == 1 and "keypoint" in _one_line_error(err)
    code, _, err = _run(capsys, "evaluate", "--preset", tmp_path / "no_such_preset", "--annotations", COCO_JSON)
    assert code == 1 and "does not exist" in _one_line_error(err)
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--preset", preset_dir, "--annotations", str(COCO_JSON), "--batch-size", "0"])
    assert info.value.code == 2


# ------------------------------------------------------------------ export
@pytest.mark.parametrize("suffix", ["tflite", "onnx"])
def test_export_writes_model_and_metadata(preset_dir, tmp_path, capsys, suffix):
    from keras_pose.export import load_exported

    path = tmp_path / f"pose.{suffix}"
    code, out, err = _run(capsys, "export", "--preset", preset_dir, "--output", path, "--include-decode")
    assert code == 0, err
    assert path.is_file() and (tmp_path / f"pose.{suffix}.json").is_file()
    meta = json.loads((tmp_path / f"pose.{suffix}.json").read_text())
    assert meta["format"] == suffix and meta["input"]["shape"] == [1, 64, 48, 3]
    assert meta["keypoints"]["num_keypoints"] == 17 and meta["keypoints"]["names"][0] == "nose"
    assert {o["name"] for o in meta["outputs"]} == {"heatmaps", "keypoints", "scores"}
    assert f"Wrote {path}" in out
    diff = float(out.split("max |heatmap difference| vs Keras on 2 random crops: ")[1].split()[0])
    assert diff < 1e-4
    runner = load_exported(str(path))
    assert runner(np.zeros((1, 64, 48, 3), np.float32))["heatmaps"].shape == (1, 16, 12, 17)


def test_export_int8_with_calibration(preset_dir, tmp_path, capsys):
    path = tmp_path / "pose_int8.tflite"
    code, out, err = _run(capsys, "export", "--preset", preset_dir, "--output", path, "--quantization", "int8",
                          "--calibration-annotations", COCO_JSON, "--num-calibration", 8, "--no-verify")
    assert code == 0, err
    meta = json.loads((tmp_path / "pose_int8.tflite.json").read_text())
    assert meta["quantization"] == "int8" and "check:" not in out


def test_export_dynamic_int8_needs_no_calibration(preset_dir, tmp_path, capsys):
    path = tmp_path / "pose_dyn.tflite"
    code, out, err = _run(capsys, "export", "--preset", preset_dir, "--output", path, "--quantization",
                          "dynamic_int8")
    assert code == 0, err
    meta = json.loads((tmp_path / "pose_dyn.tflite.json").read_text())
    assert meta["quantization"] == "dynamic_int8" and meta["dynamic_int8"]["weights"] == "int8 per channel"
    code, _, err = _run(capsys, "export", "--preset", preset_dir, "--output", tmp_path / "p.onnx",
                        "--quantization", "dynamic_int8")
    assert code == 1 and "TFLite" in _one_line_error(err)


def test_export_user_errors(preset_dir, tmp_path, capsys):
    code, _, err = _run(capsys, "export", "--preset", preset_dir, "--output", tmp_path / "pose.pb")
    assert code == 1 and ".tflite or .onnx" in _one_line_error(err)
    code, _, err = _run(capsys, "export", "--preset", preset_dir, "--output", tmp_path / "p.tflite",
                        "--quantization", "int8")
    assert code == 1 and "--calibration-annotations" in _one_line_error(err)
    code, _, err = _run(capsys, "export", "--preset", preset_dir, "--output", tmp_path / "p.onnx", "--opset", 99)
    assert code == 1 and "opset" in _one_line_error(err)
    code, _, err = _run(capsys, "export", "--preset", preset_dir, "--output", tmp_path / "p.onnx",
                        "--format", "tflite")
    assert code == 1 and "format" in _one_line_error(err)
    assert not list(tmp_path.iterdir())


# -------------------------------------------------------------------- help
def test_help_of_every_verb_mentions_every_option(capsys):
    parser = build_parser()
    verbs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"presets", "convert", "predict", "evaluate", "train", "export"} <= set(verbs.choices)
    for name, sub in verbs.choices.items():
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        text = capsys.readouterr().out
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text, (name, option)
            if name in ("evaluate", "train", "export"):
                assert action.help, (name, action.option_strings or action.dest)


# ------------------------------------------------------------------- plots
def test_plot_training_curves_from_history_csv_and_json(tmp_path):
    history = {
        "epoch": [1, 2, 3, 4],
        "loss": [0.02, 0.015, 0.012, 0.01],
        "val_loss": [0.03, 0.02, 0.018, float("nan")],
        "learning_rate": [1e-3, 8e-4, 4e-4, 1e-4],
        "val_coco_AP": [None, 0.1, None, 0.3],
        "val_coco_APm": [None, -1.0, None, -1.0],  # pycocotools: no ground truth in that range
    }
    png = tmp_path / "curves.png"
    assert plot_training_curves(history, png, title="test") == str(png)
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] >= 3 * 400
    # Drawn: not a blank canvas; the series colours are there.
    assert (image < 250).mean() > 0.01
    assert np.any(np.all(image == (180, 119, 31), axis=-1))  # first series colour (BGR)
    loaded = load_history(history)
    assert loaded["val_coco_APm"] == [None, None, None, None] and loaded["val_loss"][3] is None

    csv_path = tmp_path / "h.csv"
    csv_path.write_text("epoch,loss,val_pck\n0,0.5,\n1,0.4,0.2\n")  # keras CSVLogger counts from 0
    assert load_history(str(csv_path))["val_pck"] == [None, 0.2]
    plot_training_curves(str(csv_path), tmp_path / "from_csv.png")
    json_path = tmp_path / "h.json"
    json_path.write_text(json.dumps({"loss": [1.0]}))
    plot_training_curves(str(json_path), tmp_path / "one_epoch.png")
    assert cv2.imread(str(tmp_path / "one_epoch.png")) is not None

    class FakeHistory:
        history = {"loss": [3.0, 2.0]}

    plot_training_curves(FakeHistory(), tmp_path / "history_object.png")
    with pytest.raises(PlotError, match="nothing|no per-epoch"):
        plot_training_curves({"loss": [None, None]}, tmp_path / "empty.png")
    with pytest.raises(PlotError, match="extension|OpenCV"):
        plot_training_curves(history, tmp_path / "curves.unknownext")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.png", "from_csv.png", "h.csv", "h.json", "history_object.png", "one_epoch.png"]
