"""Every example runs as documented (a subprocess, small settings) and writes what it says."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pose_testing.paths import DATA_DIR, REPO_ROOT, SHARED_DIR

EXAMPLES = REPO_ROOT / "examples"
SCRIPTS = ("predict_and_draw.py", "evaluate_coco.py", "export_tflite.py", "finetune_custom_dataset.py")


def _run_example(script, *args, timeout=600):
    env = dict(
        os.environ,
        KERAS_BACKEND="tensorflow",
        KERAS_POSE_SHARED_DIR=str(SHARED_DIR),
        KERAS_POSE_OFFLINE="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
    )
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *[str(a) for a in args]],
        cwd=str(REPO_ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _png(path):
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable image"
    return image


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_has_docstring_command_and_help(script):
    source = (EXAMPLES / script).read_text()
    assert source.startswith('"""') and f"python examples/{script}" in source
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], capture_output=True, text=True,
                          timeout=120, cwd=str(REPO_ROOT))
    assert proc.returncode == 0 and "--preset" in proc.stdout and "--output-dir" in proc.stdout
    assert "untrained demo model" in source


def test_readme_lists_every_example():
    readme = (EXAMPLES / "README.md").read_text()
    for script in SCRIPTS + ("train_config.yaml",):
        assert script in readme, script


def test_predict_and_draw(tmp_path):
    out = _run_example("predict_and_draw.py", "--output-dir", tmp_path)
    assert "untrained demo model" in out and "NOT meaningful" in out
    original = cv2.imread(str(DATA_DIR / "coco" / "000000000785.jpg"))
    drawn = _png(tmp_path / "poses.png")
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).sum() > 0
    heat = _png(tmp_path / "heatmaps.png")
    assert heat.shape[0] >= 256 and heat.shape[1] == 2 * heat.shape[0] * 96 // 128
    records = json.loads((tmp_path / "poses.json").read_text())
    assert len(records) == 1 and records[0]["image_id"] == 785 and len(records[0]["keypoints"]) == 17 * 3
    keypoints = np.asarray(records[0]["keypoints"]).reshape(17, 3)
    assert np.isfinite(keypoints).all() and (np.abs(keypoints[:, 2]) <= 1.5).all()  # heatmap maxima


@pytest.mark.slow  # a subprocess each; predict_and_draw stays in the fast suite
def test_evaluate_coco(tmp_path):
    out = _run_example("evaluate_coco.py", "--output-dir", tmp_path)
    assert "untrained demo model" in out and "ground-truth boxes" in out and "detected boxes" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["oracle_AP"] == pytest.approx(1.0)
    detections = json.loads((DATA_DIR / "coco" / "test_coco_det_AP_H_56.json").read_text())
    assert metrics["gt_boxes"]["instances"] == 12
    assert metrics["detections"]["instances"] == len(detections)
    assert 0 < metrics["detections"]["results_after_nms"] <= len(detections)
    for key in ("gt_boxes", "detections"):
        for stat in ("AP", "AP50", "AP75", "AR"):
            assert 0.0 <= metrics[key][stat] <= 1.0, (key, stat)
        results = json.loads((tmp_path / f"results_{key}.json").read_text())
        assert len(results) == metrics[key]["results_after_nms"]
        assert all(len(r["keypoints"]) == 51 and 0.0 <= r["score"] <= 1.0 for r in results)


@pytest.mark.slow
def test_export_tflite(tmp_path):
    out = _run_example("export_tflite.py", "--output-dir", tmp_path)
    assert "untrained demo model" in out and "LiteRT vs Keras" in out
    assert (tmp_path / "pose.tflite").is_file()
    meta = json.loads((tmp_path / "pose.tflite.json").read_text())
    assert meta["format"] == "tflite" and meta["input"]["shape"] == [1, 128, 96, 3]
    report = json.loads((tmp_path / "export_report.json").read_text())
    assert report["crops"] == 12
    assert report["max_heatmap_rel_diff"] < 1e-4
    assert report["interpreter_vs_runner_max_diff"] < 1e-6
    assert report["ms_per_crop_litert"] > 0 and report["ms_per_crop_keras"] > 0


@pytest.mark.slow
def test_finetune_custom_dataset(tmp_path):
    out = _run_example("finetune_custom_dataset.py", "--output-dir", tmp_path, "--epochs", 2,
                       "--steps-per-epoch", 2, "--input-size", "64x48")
    assert "untrained demo model" in out and "Reloaded preset" in out
    import keras_pose

    spec = keras_pose.get_keypoint_spec(str(tmp_path / "keypoints.yaml"))
    assert spec.name == "ap10k_custom" and spec.num_keypoints == 17 and spec.sigmas is not None
    assert len(spec.flip_pairs) == 7 and spec.upper_body_indices and spec.lower_body_indices
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs"] == 2 and len(summary["val_coco_AP_per_epoch"]) == 2
    assert np.isfinite([summary["loss_first"], summary["loss_last"]]).all()
    assert 0.0 <= summary["preset_coco_AP"] <= 1.0
    # The reloaded preset scores what the best epoch scored.
    best = summary["val_coco_AP_per_epoch"][summary["best_epoch"] - 1]
    assert summary["preset_coco_AP"] == pytest.approx(best, abs=1e-6)
    model = keras_pose.from_preset(summary["preset_dir"])
    assert model.keypoint_spec == spec and model.image_size == (64, 48)
    _png(tmp_path / "prediction.png")
    _png(tmp_path / "curves.png")
    assert (tmp_path / "run" / "history.csv").is_file()
    assert (tmp_path / "train_config.yaml").is_file()
