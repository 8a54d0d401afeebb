"""The `keras-pose` command line (`keras_pose.cli.main`)."""

import json
import pathlib

import numpy as np
import pytest

from keras_pose import preset_registry
from keras_pose.cli import main

from pose_testing.tiny_checkpoints import make_tiny_state_dict
from pose_testing.tiny_checkpoints import needs_converter
from pose_testing.tiny_checkpoints import save_original_checkpoint
from pose_testing.tiny_checkpoints import tiny_entry


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_presets_table_lists_the_vitpose_presets(capsys):
    code, out, err = _run(capsys, "presets")
    assert code == 0 and err == ""
    header = out.splitlines()[0].split()
    assert header[:3] == ["name", "task", "class"]
    for name in (
        "vitpose_small_coco_256x192",
        "vitpose_base_coco_256x192",
        "vitpose_large_coco_256x192",
        "vitpose_huge_coco_256x192",
        "vitpose_plus_small",
        "vitpose_plus_base",
        "vitpose_plus_large",
        "vitpose_plus_huge",
        "vitpose_plus_base_ap10k_256x192",
        "vitpose_plus_huge_coco_wholebody_256x192",
    ):
        assert name in out, name
    row = next(line for line in out.splitlines() if line.startswith("vitpose_base_coco_256x192 "))
    assert "ViTPose" in row and "256x192" in row and "coco (17)" in row and "AP 75.8" in row
    assert "Apache-2.0" in row
    row = next(line for line in out.splitlines() if line.startswith("vitpose_plus_base_mpii_256x192 "))
    assert "mpii (16)" in row and "PCKh 92.8" in row and "ViTPosePP" in row


def test_presets_family_filter_and_json(capsys):
    code, out, _ = _run(capsys, "presets", "--family", "vitpose_plus", "--json")
    assert code == 0
    data = json.loads(out)
    assert data and all(d["family"] == "vitpose_plus" for d in data)
    names = {d["name"] for d in data}
    assert "vitpose_plus_small_apt36k_256x192" in names and "vitpose_base_coco_256x192" not in names
    entry = next(d for d in data if d["name"] == "vitpose_plus_base")
    assert entry["source_url"].startswith("https://") and entry["license"] == "Apache-2.0"


def test_presets_unknown_family_is_a_user_error(capsys):
    code, out, err = _run(capsys, "presets", "--family", "nonexistent")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("keras-pose: error:")
    assert "vitpose" in err and "Traceback" not in err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "presets" in out and "convert" in out
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    out = capsys.readouterr().out
    for option in ("--checkpoint", "--output", "--preset", "--dataset"):
        assert option in out
    with pytest.raises(SystemExit):
        main(["presets", "--help"])
    out = capsys.readouterr().out
    for option in ("--family", "--json"):
        assert option in out


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["convert", "--output", "x"])  # --checkpoint missing
    assert info.value.code == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_convert_missing_checkpoint(capsys, tmp_path):
    code, _, err = _run(capsys, "convert", "--checkpoint", str(tmp_path / "nope.pth"), "--output", str(tmp_path / "o"))
    assert code == 1
    assert "does not exist" in err and err.count("\n") == 1 and "Traceback" not in err


def test_convert_unknown_preset_suggests(capsys, tmp_path):
    ckpt = tmp_path / "x.pth"
    ckpt.write_bytes(b"")
    code, _, err = _run(capsys, "convert", "--preset", "vitpose_bse_coco_256x192", "--checkpoint", str(ckpt),
                        "--output", str(tmp_path / "o"))
    assert code == 1
    assert "vitpose_base_coco_256x192" in err and err.count("\n") == 1


@needs_converter
def test_convert_writes_a_loadable_preset(capsys, tmp_path, monkeypatch):
    from keras_pose.preset_loading import load_preset

    monkeypatch.setenv("KERAS_POSE_HOME", str(tmp_path / "home"))
    preset_registry.list_presets()
    ckpt = save_original_checkpoint(tmp_path / "tiny.pth", make_tiny_state_dict())
    entry = tiny_entry("https://example.invalid/tiny.pth", None, name="test_cli_tiny_vitpose")
    preset_registry.register_presets([entry])
    try:
        out_dir = tmp_path / "converted"
        code, out, err = _run(capsys, "convert", "--preset", entry.name, "--checkpoint", str(ckpt),
                              "--output", str(out_dir))
        assert code == 0, err
        assert str(out_dir) in out
        meta = json.loads((out_dir / "keras_pose_preset.json").read_text())
        assert meta["preset"] == entry.name and meta["converted_from"]["file_name"] == "tiny.pth"
        model = load_preset(str(out_dir))
        x = np.zeros((1, 64, 48, 3), np.float32)
        assert np.asarray(model.predict_on_batch(x)).shape == (1, 16, 12, 17)
        # Converting again over an earlier preset replaces it.
        assert main(["convert", "--preset", entry.name, "--checkpoint", str(ckpt), "--output", str(out_dir)]) == 0
    finally:
        preset_registry._REGISTRY.pop(entry.name, None)


@needs_converter
def test_convert_infers_the_family_without_preset(capsys, tmp_path):
    ckpt = save_original_checkpoint(tmp_path / "vit_s.pth", make_tiny_state_dict(hidden=384, layers=1, grid=(16, 12)))
    out_dir = tmp_path / "inferred"
    code, out, err = _run(capsys, "convert", "--checkpoint", str(ckpt), "--output", str(out_dir))
    assert code == 0, err
    meta = json.loads((out_dir / "keras_pose_preset.json").read_text())
    assert meta["preset"] is None and meta["family"] == "vitpose" and meta["task_class"] == "ViTPose"
    assert (out_dir / "config.json").is_file()


def test_convert_refuses_to_replace_a_foreign_folder(capsys, tmp_path):
    ckpt = tmp_path / "vit_s.pth"
    ckpt.write_bytes(b"")
    out_dir = tmp_path / "mine"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("keep me")
    code, _, err = _run(capsys, "convert", "--preset", "vitpose_small_coco_256x192", "--checkpoint", str(ckpt),
                        "--output", str(out_dir))
    assert code == 1 and err.startswith("keras-pose: error:")
    assert "not empty" in err
    assert (out_dir / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in pathlib.Path(tmp_path).iterdir()) == ["mine", "vit_s.pth"]
