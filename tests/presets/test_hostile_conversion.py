"""Issue 8 (hostile-input review): `convert --output`, preset folders and checkpoint files.

Items 1 (convert --output never deletes what it did not write), 5 (missing
or unreadable weight files are errors naming the file), 11 (NaN / Inf
weights refused), 16 and 17 (one-line errors that say what is wrong: bad,
hostile and transposed checkpoints, damaged preset JSON) and 18 (rejected
local checkpoints are never copied into the cache). Tiny ViTPose
checkpoints (hidden 32, 2 layers, 64x48 input; see test_preset_loading.py)
are converted and damaged on purpose. KERAS_POSE_HOME points into tmp_path,
so the user cache is never touched. The numbers in the section titles are
the issue's items.
"""

import json
import os
import shutil

import numpy as np
import pytest

from keras_pose import preset_registry
from keras_pose.conversion import CONVERTER_VERSION
from keras_pose.conversion import convert_checkpoint
from keras_pose.errors import CheckpointError
from keras_pose.errors import PresetError
from keras_pose.preset_loading import load_preset

from pose_testing.tiny_checkpoints import files_under
from pose_testing.tiny_checkpoints import make_tiny_state_dict
from pose_testing.tiny_checkpoints import save_original_checkpoint
from pose_testing.tiny_checkpoints import tiny_entry

torch = pytest.importorskip("torch")


def _cli(*argv):
    from keras_pose.cli import main

    return main(list(argv))



@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A converted tiny preset folder (copied by the tests that damage it)."""
    root = tmp_path_factory.mktemp("converted")
    ckpt = save_original_checkpoint(root / "tiny.pth", make_tiny_state_dict(seed=3))
    preset_registry.list_presets()
    entry = tiny_entry("https://example.invalid/tiny.pth", None, name="test_hostile_converted")
    convert_checkpoint(str(ckpt), preset=entry, output_dir=root / "preset")
    return root / "preset"


def _copy_preset(converted, tmp_path, name="preset"):
    target = tmp_path / name
    shutil.copytree(converted, target)
    return target


# --------------------------------------------------------------------------
# 1. convert --output never deletes what it did not write
# --------------------------------------------------------------------------
def test_convert_output_with_a_config_json_and_other_files_is_kept(tmp_path, capsys):
    ckpt = save_original_checkpoint(tmp_path / "in" / "tiny.pth", make_tiny_state_dict())
    out = tmp_path / "project"
    out.mkdir()
    (out / "config.json").write_text('{"my": "settings"}')  # old code: "is a preset", replaced whole
    (out / "train.py").write_text("print('mine')")
    code = _cli("convert", "--preset", "vitpose_small_coco_256x192", "--checkpoint", str(ckpt), "--output", str(out))
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "keras_pose_preset.json" in err and "new or empty folder" in err
    assert (out / "train.py").read_text() == "print('mine')"
    assert (out / "config.json").read_text() == '{"my": "settings"}'


def test_convert_into_a_preset_folder_with_foreign_files_names_them(converted, tmp_path, capsys):
    out = _copy_preset(converted, tmp_path)
    (out / "notes.txt").write_text("keep me")
    (out / "runs").mkdir()
    ckpt = save_original_checkpoint(tmp_path / "tiny.pth", make_tiny_state_dict())
    code = _cli("convert", "--checkpoint", str(ckpt), "--output", str(out))
    err = capsys.readouterr().err
    assert code == 1
    assert "notes.txt" in err and "runs/" in err and "Move those out" in err
    assert (out / "notes.txt").read_text() == "keep me" and (out / "runs").is_dir()


def test_convert_refuses_an_output_holding_the_checkpoint(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    ckpt = save_original_checkpoint(work / "tiny.pth", make_tiny_state_dict(hidden=384, layers=1, grid=(16, 12)))
    monkeypatch.chdir(work)
    code = _cli("convert", "--checkpoint", "tiny.pth", "--output", ".")  # old code: the cwd was replaced
    err = capsys.readouterr().err
    assert code == 1 and "lies inside the output folder" in err
    assert ckpt.is_file() and sorted(os.listdir(work)) == ["tiny.pth"]
    # The API refuses too, before converting.
    with pytest.raises(PresetError, match="lies inside"):
        convert_checkpoint(str(ckpt), output_dir=str(work))


def test_convert_replaces_its_own_preset(converted, tmp_path):
    out = _copy_preset(converted, tmp_path)
    ckpt = save_original_checkpoint(tmp_path / "other.pth", make_tiny_state_dict(hidden=384, layers=1, grid=(16, 12)))
    assert _cli("convert", "--checkpoint", str(ckpt), "--output", str(out)) == 0
    meta = json.loads((out / "keras_pose_preset.json").read_text())
    assert meta["converted_from"]["file_name"] == "other.pth"
    assert meta["converter_version"] == CONVERTER_VERSION


# --------------------------------------------------------------------------
# 5. missing or unreadable weight files are errors naming the file
# --------------------------------------------------------------------------
def test_missing_task_weights_is_an_error(converted, tmp_path):
    preset = _copy_preset(converted, tmp_path)
    (preset / "task.weights.h5").unlink()  # old code: a random head, no warning
    with pytest.raises(PresetError) as info:
        load_preset(str(preset))
    assert "task.weights.h5" in str(info.value) and "randomly initialised head" in str(info.value)


def test_missing_model_weights_names_the_h5_file(converted, tmp_path):
    preset = _copy_preset(converted, tmp_path)
    (preset / "model.weights.h5").unlink()
    with pytest.raises(PresetError) as info:
        load_preset(str(preset))
    assert "model.weights.h5" in str(info.value) and "model.weights.json" not in str(info.value)


@pytest.mark.parametrize("file_name", ["model.weights.h5", "task.weights.h5"])
def test_corrupt_weights_name_the_file_and_the_cache_entry(converted, home, file_name):
    entry_dir = home / "presets" / "url-0123"
    shutil.copytree(converted, entry_dir)
    weights = entry_dir / file_name
    weights.write_bytes(weights.read_bytes()[:3000])  # old code: h5py's OSError, no path
    with pytest.raises(PresetError) as info:
        load_preset(str(entry_dir))
    message = str(info.value)
    assert str(weights) in message and f"rm -r '{entry_dir}'" in message
    # load_weights=False still builds the model (nothing to read).
    assert type(load_preset(str(entry_dir), load_weights=False)).__name__ == "ViTPose"


def test_intact_preset_loads_with_the_converted_weights(converted):
    model = load_preset(str(converted))
    fresh = load_preset(str(converted), load_weights=False)
    head = model.head.final_conv.kernel
    assert not np.allclose(np.asarray(head), np.asarray(fresh.head.final_conv.kernel))
    expected = make_tiny_state_dict(seed=3)["keypoint_head.final_layer.weight"].transpose(2, 3, 1, 0)
    np.testing.assert_allclose(np.asarray(head), expected, rtol=0, atol=1e-7)


# --------------------------------------------------------------------------
# 11. NaN / Inf weights are refused, naming the checkpoint's tensors
# --------------------------------------------------------------------------
def test_non_finite_weights_are_refused(tmp_path):
    sd = make_tiny_state_dict()
    sd["backbone.blocks.0.mlp.fc1.weight"][3, 4] = np.nan
    sd["keypoint_head.final_layer.bias"][2] = -np.inf
    path = save_original_checkpoint(tmp_path / "nan.pth", sd)
    preset_registry.list_presets()
    with pytest.raises(CheckpointError) as info:
        convert_checkpoint(str(path), preset=tiny_entry("https://example.invalid/x.pth", None))
    message = str(info.value)
    assert "backbone.blocks.0.mlp.fc1.weight (128, 32): 1 NaN, 0 Inf" in message
    assert "keypoint_head.final_layer.bias (17): 0 NaN, 1 Inf" in message
    assert "does not match" not in message


def test_non_finite_check_is_shared_by_every_converter():
    from pose_testing import cpm_models as test_cpm

    from keras_pose.conversion import cpm_converter
    from keras_pose.conversion.key_accountant import KeyAccountant

    sd = test_cpm.export_state_dict(test_cpm.tiny_cpm((64, 48), 2))
    key = next(k for k in sd if k.endswith("running_var"))
    sd[key] = np.array(sd[key], np.float32)
    sd[key][0] = np.inf
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.") + r" \(\d+\): 0 NaN, 1 Inf"):
        cpm_converter.convert(sd)
    acc = KeyAccountant({"w": np.array([1.0, np.nan]), "n": np.array([3])})
    acc.pop("w"), acc.pop("n")
    assert not acc.ok and acc.nonfinite == [("w", (2,), 1, 0)]


# --------------------------------------------------------------------------
# 16 / 17. one-line errors that say what is wrong
# --------------------------------------------------------------------------
class _Eval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


class _System:
    def __reduce__(self):
        return (os.system, ("echo hostile",))


def _bad_files(folder):
    folder.mkdir(exist_ok=True)
    good = save_original_checkpoint(folder / "good.pth", make_tiny_state_dict())
    legacy = folder / "legacy.pth"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, legacy, _use_new_zipfile_serialization=False)
    files = {
        "empty": (b"", "is empty"),
        "text": (b"hello, this is not a checkpoint\n" * 3, "is a text file"),
        "json": (b'{"state_dict": {}}', "is a JSON text file"),
        "random": (bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)), "does not start like"),
        "cut_zip": (good.read_bytes()[:20000], "truncated or corrupt zip"),
        "cut_legacy": (legacy.read_bytes()[:100], "ends too early"),
    }
    out = {}
    for name, (data, expected) in files.items():
        (folder / f"{name}.pth").write_bytes(data)
        out[name] = (folder / f"{name}.pth", expected)
    return out


def test_convert_cli_bad_files_give_one_line(tmp_path, capsys):
    for name, (path, expected) in _bad_files(tmp_path / "bad").items():
        code = _cli("convert", "--checkpoint", str(path), "--output", str(tmp_path / "out"))  # no --preset
        err = capsys.readouterr().err
        assert code == 1, name
        assert err.count("\n") == 1 and "Traceback" not in err, (name, err)
        assert expected in err, (name, err)
        assert "Python object" not in err and "weights_only=False" not in err, (name, err)
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_hostile_pickle_names_the_blocked_global(tmp_path, zipfile):
    for obj, name in ((_Eval(), "builtins.eval"), (_System(), "os.system")):
        path = tmp_path / "hostile.pth"
        torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": obj}, path, _use_new_zipfile_serialization=zipfile)
        with pytest.raises(CheckpointError) as info:
            convert_checkpoint(str(path))
        assert f"refuses to unpickle: {name}" in str(info.value)


def test_from_preset_on_bad_local_files(tmp_path, home):
    with pytest.raises(CheckpointError, match="is a text file"):
        load_preset("/etc/passwd")
    for name, (path, expected) in _bad_files(tmp_path / "bad").items():
        with pytest.raises(CheckpointError) as info:
            load_preset(str(path))
        assert expected in str(info.value), name
    hostile = tmp_path / "bad" / "hostile.pth"  # old code: copied into the cache and kept
    torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": _System()}, hostile)
    for preset in (str(hostile), hostile.as_uri()):
        with pytest.raises(CheckpointError, match="refuses to unpickle: os.system"):
            load_preset(preset)
    assert not (home / "checkpoints").exists()  # nothing copied into the cache (18)
    assert files_under(home / "presets") == []


def test_torch_load_errors_are_never_empty(tmp_path):
    from keras_pose.conversion.checkpoint_io import read_checkpoint

    path = tmp_path / "cut.pth"
    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.zeros(300)}, legacy, _use_new_zipfile_serialization=False)
    for cut in (30, 100, 700):
        path.write_bytes(legacy.read_bytes()[:cut])
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        assert "torch.load failed with " in str(info.value) and "()" not in str(info.value)
        assert not str(info.value).rstrip().endswith(":")


def test_invalid_json_in_a_preset_names_file_and_line(converted, tmp_path):
    for name in ("config.json", "task.json", "keras_pose_preset.json"):
        preset = _copy_preset(converted, tmp_path, name="p_" + name)
        text = (preset / name).read_text().splitlines()
        text[3] = text[3] + ' "oops'
        (preset / name).write_text("\n".join(text))
        with pytest.raises(PresetError) as info:
            load_preset(str(preset))
        assert f"{preset / name} is not valid JSON (line 4" in str(info.value), name


def test_damaged_preprocessor_json_is_named(converted, tmp_path):
    from keras_pose.preprocessing import TopDownPreprocessor

    preset = _copy_preset(converted, tmp_path)
    path = preset / "preprocessor.json"
    good = json.loads(path.read_text())
    path.write_text('{"class_name": "TopDownPreprocessor",\n oops}')  # old code: a bare JSONDecodeError
    with pytest.raises(PresetError, match=f"{path} is not valid JSON \\(line 2, column 2"):
        TopDownPreprocessor.from_preset(str(preset))
    for damaged in (dict(good, class_name=None), [good], dict(good, config=3)):  # old: "Could not locate class 'None'"
        path.write_text(json.dumps(damaged))
        with pytest.raises(PresetError) as info:
            TopDownPreprocessor.from_preset(str(preset))
        assert f"{path} names no preprocessor class" in str(info.value) and "'None'" not in str(info.value)
    path.write_text(json.dumps(dict(good, config=dict(good["config"], cropper={"class_name": "NoSuchCropper"}))))
    with pytest.raises(PresetError, match=f"{path} could not be read as a preprocessor"):
        TopDownPreprocessor.from_preset(str(preset))
    path.write_text(json.dumps(good))
    restored = TopDownPreprocessor.from_preset(str(preset))
    assert restored.image_size == load_preset(str(preset), load_weights=False).preprocessor.image_size


def test_config_without_class_is_named(converted, tmp_path):
    preset = _copy_preset(converted, tmp_path)
    config = json.loads((preset / "config.json").read_text())
    config["registered_name"] = None  # keras-hub: "Attempting to load class None"
    (preset / "config.json").write_text(json.dumps(config))
    with pytest.raises(PresetError) as info:
        load_preset(str(preset))
    assert "config.json names no model class" in str(info.value) and "class None" not in str(info.value)
    del config["registered_name"]
    (preset / "config.json").write_text(json.dumps(config))
    with pytest.raises(PresetError, match="registered_name.* is missing"):
        load_preset(str(preset))


def test_transposed_tensor_report_uses_the_checkpoint_layout():
    from pose_testing import cpm_models as test_cpm
    from pose_testing import hourglass_models as test_hourglass

    from keras_pose.conversion import cpm_converter, hourglass_converter

    for module, converter, key, expected in (
        (test_cpm, cpm_converter, "backbone.stem.0.conv.weight", "checkpoint (3, 8, 9, 9), model expects (8, 3, 9, 9)"),
        (test_hourglass, hourglass_converter, "backbone.stem.0.conv.weight",
         "checkpoint (3, 4, 7, 7), model expects (4, 3, 7, 7)"),
    ):
        model = module.tiny_cpm((64, 48), 2) if module is test_cpm else module.tiny_hourglass()
        sd = module.export_state_dict(model)
        sd[key] = np.asarray(sd[key]).transpose(1, 0, 2, 3)
        with pytest.raises(CheckpointError) as info:
            converter.convert(sd)
        message = str(info.value)
        assert f"{key}: {expected} (the same sizes in another order: transposed?)" in message
        assert "misshapen (1)" in message  # the rest of the model is built as the file says


def test_transposed_vitpose_tensor_report(tmp_path):
    sd = make_tiny_state_dict()
    sd["backbone.blocks.0.mlp.fc1.weight"] = sd["backbone.blocks.0.mlp.fc1.weight"].T.copy()
    path = save_original_checkpoint(tmp_path / "t.pth", sd)
    preset_registry.list_presets()
    with pytest.raises(CheckpointError) as info:
        convert_checkpoint(str(path), preset=tiny_entry("https://example.invalid/t.pth", None))
    assert "fc1.weight: checkpoint (32, 128), model expects (128, 32)" in str(info.value)


