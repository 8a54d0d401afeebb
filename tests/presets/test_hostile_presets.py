"""Issue 8 (hostile-input review): presets, the cache, conversion and downloads.

Tiny ViTPose checkpoints (hidden 32, 2 layers, 64x48 input; see
test_preset_loading.py) are converted, served over HTTP on 127.0.0.1 and
damaged on purpose. KERAS_POSE_HOME points into tmp_path, so the user cache
is never touched. The numbers in the section titles are the issue's items.
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_pose import preset_registry
from keras_pose.conversion import CONVERTER_VERSION
from keras_pose.conversion import convert_checkpoint
from keras_pose.errors import CheckpointError
from keras_pose.errors import DownloadError
from keras_pose.errors import PresetError
from keras_pose.utils import file_utils
from keras_pose.utils.download import cached_download
from keras_pose.utils.download import download_file
from keras_pose.preset_cache import fetch_checkpoint
from keras_pose.preset_cache import resolve_preset
from keras_pose.preset_loading import load_preset

from pose_testing.tiny_checkpoints import make_tiny_state_dict
from pose_testing.tiny_checkpoints import save_original_checkpoint
from pose_testing.tiny_checkpoints import tiny_entry

torch = pytest.importorskip("torch")

def _heatmaps(model):
    x = np.random.default_rng(7).normal(size=(1, *model.image_size, 3)).astype("float32")
    return np.asarray(model.predict_on_batch(x), dtype=np.float32)


def _files(folder):
    folder = pathlib.Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def register():
    """register(entry): the entry is in the registry for one test."""
    preset_registry.list_presets()
    added = []

    def add(entry):
        preset_registry.register_presets([entry])
        added.append(entry.name)
        return entry

    yield add
    for name in added:
        preset_registry._REGISTRY.pop(name, None)


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
# 3. the conversion cache follows the file's content and the converter version
# --------------------------------------------------------------------------
def test_replaced_local_checkpoint_is_converted_again(tmp_path, home):
    path = save_original_checkpoint(tmp_path / "ckpts" / "vit_s.pth", make_tiny_state_dict(384, 1, grid=(16, 12)))
    first = _heatmaps(load_preset(str(path)))
    save_original_checkpoint(path, make_tiny_state_dict(384, 1, grid=(16, 12), seed=5))
    expected = _heatmaps(convert_checkpoint(str(path)))
    assert not np.allclose(first, expected)
    np.testing.assert_allclose(_heatmaps(load_preset(str(path))), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(_heatmaps(load_preset(path.as_uri())), expected, rtol=0, atol=1e-6)
    # Read in place: no copy of the checkpoint in the cache (18).
    assert not (home / "checkpoints").exists()


def test_same_size_and_time_but_other_content_is_converted_again(tmp_path, home):
    path = save_original_checkpoint(tmp_path / "vit_s.pth", make_tiny_state_dict(384, 1, grid=(16, 12)))
    first = _heatmaps(load_preset(str(path)))
    stat = path.stat()
    other = save_original_checkpoint(tmp_path / "other.pth", make_tiny_state_dict(384, 1, grid=(16, 12), seed=9))
    assert other.stat().st_size == stat.st_size
    shutil.copyfile(other, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # like `cp -p` / `touch -r`
    second = _heatmaps(load_preset(str(path)))
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, _heatmaps(convert_checkpoint(str(other))), rtol=0, atol=1e-6)


def test_repaired_local_checkpoint_loads(tmp_path, home):
    path = tmp_path / "vit_s.pth"
    good = save_original_checkpoint(tmp_path / "good.pth", make_tiny_state_dict(384, 1, grid=(16, 12)))
    path.write_bytes(good.read_bytes()[:5000])  # a cut copy
    with pytest.raises(CheckpointError, match="truncated or corrupt zip"):
        load_preset(str(path))
    shutil.copyfile(good, path)
    assert type(load_preset(str(path))).__name__ == "ViTPose"
    assert not (home / "checkpoints").exists()


def test_cache_of_an_older_converter_version_is_converted_again(server, home, register):
    path = save_original_checkpoint(server.root / "tiny.pth", make_tiny_state_dict())
    entry = register(tiny_entry(f"{server.url}/tiny.pth", hashlib.sha256(path.read_bytes()).hexdigest()))
    directory = pathlib.Path(resolve_preset(entry.name))
    meta_path = directory / "keras_pose_preset.json"
    meta = json.loads(meta_path.read_text())
    assert meta["converter_version"] == CONVERTER_VERSION
    assert meta["converted_from"]["size"] == path.stat().st_size
    assert resolve_preset(entry.name) == str(directory)
    stamp = meta_path.stat().st_mtime_ns
    meta["converter_version"] = CONVERTER_VERSION - 1  # written by an older keras-pose
    meta_path.write_text(json.dumps(meta))
    assert resolve_preset(entry.name) == str(directory)
    meta = json.loads(meta_path.read_text())
    assert meta["converter_version"] == CONVERTER_VERSION and meta_path.stat().st_mtime_ns != stamp
    assert server.requests == ["/tiny.pth"]  # the verified download is reused


# --------------------------------------------------------------------------
# 4. incomplete downloads and failed conversions are never cached
# --------------------------------------------------------------------------
def _serve_without_length(data):
    def handler(h):
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    return handler


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_download_cut_without_length_is_not_cached(server, home, zipfile, tmp_path):
    good = tmp_path / "full.pth"
    sd = make_tiny_state_dict(hidden=384, layers=1, grid=(16, 12))  # a standard width: no preset needed
    torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in sd.items()}}, good,
               _use_new_zipfile_serialization=zipfile)
    data = good.read_bytes()
    server.routes["/cut.pth"] = _serve_without_length(data[: len(data) // 2])
    url = f"{server.url}/cut.pth"
    with pytest.raises(DownloadError, match="did not arrive as a complete checkpoint"):
        resolve_preset(url)
    assert _files(home) == [] or _files(home / "checkpoints") == []
    server.routes["/cut.pth"] = _serve_without_length(data)  # the server recovers
    directory = resolve_preset(url)
    assert (pathlib.Path(directory) / "task.weights.h5").is_file()


def test_failed_conversion_removes_the_cached_download(server, home, register):
    sd = make_tiny_state_dict()
    sd["backbone.blocks.1.attn.qkv.weight"][0, 0] = np.nan
    path = save_original_checkpoint(server.root / "nan.pth", sd)
    entry = register(tiny_entry(f"{server.url}/nan.pth", None, name="test_hostile_nan", file_name="nan.pth"))
    with pytest.raises(CheckpointError) as info:
        resolve_preset(entry.name)
    assert "removed from the cache" in str(info.value)
    assert _files(home / "checkpoints") == []  # neither the file nor its key folder
    save_original_checkpoint(path, make_tiny_state_dict())  # fixed upstream
    assert type(load_preset(entry.name)).__name__ == "ViTPose"
    assert server.requests == ["/nan.pth", "/nan.pth"]


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


def test_corrupt_weights_name_the_file_and_the_cache_entry(converted, home):
    entry_dir = home / "presets" / "url-0123"
    shutil.copytree(converted, entry_dir)
    weights = entry_dir / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:3000])
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
    assert not (home / "checkpoints").exists()  # nothing copied into the cache (18)
    assert _files(home / "presets") == []


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


def test_hub_handles_fail_at_once_offline(home, monkeypatch):
    from keras_pose.models.vitpose.vitpose_pose_estimator import ViTPose

    monkeypatch.setenv("KERAS_POSE_OFFLINE", "1")
    for call in (lambda: resolve_preset("hf://someone/vitpose"), lambda: ViTPose.from_preset("hf://someone/vitpose"),
                 lambda: load_preset("kaggle://keras/vitpose/keras/base")):
        start = time.monotonic()
        with pytest.raises(DownloadError) as info:
            call()
        assert "KERAS_POSE_OFFLINE" in str(info.value) and "backbone" not in str(info.value)
        assert time.monotonic() - start < 2


def test_failed_after_counts_the_bytes_that_arrived(server, tmp_path):
    def stall(h):
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        h.wfile.write(b"x" * 57_000)
        h.wfile.flush()
        time.sleep(2)

    server.routes["/stall.pth"] = stall
    dest = tmp_path / "dl" / "stall.pth"
    with pytest.raises(DownloadError) as info:
        download_file(f"{server.url}/stall.pth", dest, progress=False, timeout=0.5, min_speed=0)
    assert "failed after 57000 bytes (56 KiB): timed out" in str(info.value)
    assert not (tmp_path / "dl").exists()  # nor the folder it created (18)


# --------------------------------------------------------------------------
# 18. leftovers
# --------------------------------------------------------------------------
def test_failed_download_leaves_no_key_folder(server, home):
    (server.root / "w.pth").write_bytes(b"x" * 5000)
    with pytest.raises(DownloadError, match="404"):
        cached_download(f"{server.url}/missing.pth", progress=False)
    with pytest.raises(DownloadError, match="sha256 mismatch"):  # fails after the body arrived
        cached_download(f"{server.url}/w.pth", sha256="0" * 64, progress=False)
    with pytest.raises(DownloadError, match="incomplete"):
        cached_download(f"{server.url}/truncated", progress=False)
    assert not (home / "checkpoints").exists()


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporaries_are_cleaned_on_the_next_write(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    host = file_utils._host_tag()
    dead = _dead_pid()
    stale_file = folder / f".result.json.kp{dead}-{host}.abcd1234.tmp"
    stale_file.write_bytes(b"half")
    stale_dir = folder / f".preset.kp{dead}-{host}.abcd1234.new"
    stale_dir.mkdir()
    (stale_dir / "model.weights.h5").write_bytes(b"half")
    live = folder / f".other.kp{os.getpid()}-{host}.abcd1234.tmp"  # a running writer's: kept
    live.write_bytes(b"writing")
    remote_old = folder / ".x.kp1-ffffff.abcd1234.tmp"  # another machine's, untouched for 2 h
    remote_old.write_bytes(b"x")
    os.utime(remote_old, (time.time() - 7200, time.time() - 7200))
    remote_new = folder / ".y.kp1-ffffff.abcd1234.tmp"  # another machine's, recent: kept
    remote_new.write_bytes(b"y")
    # Killed between the two renames of atomic_directory: the old preset is restored.
    old = folder / f".kept.kp{dead}-{host}.abcd1234.old"
    old.mkdir()
    (old / "config.json").write_text("{}")
    user = folder / ".hidden_user_file.tmp"
    user.write_text("mine")
    with file_utils.atomic_write(folder / "new.json", "w") as f:
        f.write("{}")
    assert sorted(os.listdir(folder)) == sorted(
        [live.name, remote_new.name, "kept", "new.json", user.name]
    )
    assert (folder / "kept" / "config.json").read_text() == "{}"


def test_killed_writer_leaves_nothing_after_the_next_run(tmp_path):
    folder = tmp_path / "out"
    script = (
        "import importlib.util, os, signal, sys\n"
        f"spec = importlib.util.spec_from_file_location('fu', {file_utils.__file__!r})\n"
        "fu = importlib.util.module_from_spec(spec); spec.loader.exec_module(fu)\n"
        f"cm = fu.atomic_directory({str(folder / 'preset')!r})\n"
        "tmp = cm.__enter__()\n"
        "open(os.path.join(tmp, 'model.weights.h5'), 'wb').write(b'x' * 1000)\n"
        f"w = fu.atomic_write({str(folder / 'a.json')!r}, 'w'); w.__enter__().write('half')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    if os.name == "nt":  # pragma: no cover
        pytest.skip("SIGKILL")
    subprocess.run([sys.executable, "-c", script], check=False)
    assert len(os.listdir(folder)) == 2  # the hidden partial folder and .tmp file
    with file_utils.atomic_directory(folder / "preset") as tmp:
        pathlib.Path(tmp, "config.json").write_text("{}")
    assert os.listdir(folder) == ["preset"]


# --------------------------------------------------------------------------
# 19. an overall minimum speed for downloads
# --------------------------------------------------------------------------
def test_dripping_server_is_cut_off(server, tmp_path):
    def drip(h):
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        for _ in range(100):  # a byte every 0.1 s: each read succeeds, the timeout never fires
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.1)

    server.routes["/drip.pth"] = drip
    dest = tmp_path / "dl" / "drip.pth"
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download_file(f"{server.url}/drip.pth", dest, progress=False, timeout=1)
    assert time.monotonic() - start < 4
    assert "too slow" in str(info.value) and "less than 1024 bytes/s" in str(info.value)
    assert not (tmp_path / "dl").exists()


# --------------------------------------------------------------------------
# 21. preset names in any case; digests recorded and checked
# --------------------------------------------------------------------------
def test_preset_names_ignore_case(home):
    entry = preset_registry.get_preset_entry("ViTPose_Base_COCO_256x192")
    assert entry.name == "vitpose_base_coco_256x192"
    assert preset_registry.is_registered("VITPOSE_BASE_COCO_256X192")
    with pytest.raises(PresetError, match="Did you mean: vitpose_base_coco_256x192"):
        preset_registry.get_preset_entry("ViTPose_Base_COCO_256x19")


def test_prefix_only_and_unchecked_presets_are_documented():
    entries = preset_registry.list_presets()
    openmmlab = [e for e in entries if "download.openmmlab.com" in e.source_url]
    assert len(openmmlab) >= 20 and all(e.sha256_check == "prefix" for e in openmmlab)
    prefix = [e for e in entries if e.sha256_check == "prefix"]
    for e in prefix:
        assert "prefix" in e.notes, e.name
    assert preset_registry.get_preset_entry("cpm_coco_256x192").sha256_check == "prefix"
    assert preset_registry.get_preset_entry("cpn50_coco_256x192").sha256_check == "none"


def test_first_download_records_the_full_digest(server, home, register):
    path = save_original_checkpoint(server.root / "tiny.pth", make_tiny_state_dict())
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    entry = register(tiny_entry(f"{server.url}/tiny.pth", digest[:8], name="test_hostile_prefix"))
    cached = pathlib.Path(fetch_checkpoint(entry, progress=False))
    assert pathlib.Path(str(cached) + ".sha256").read_text().split()[0] == digest
    meta = json.loads((pathlib.Path(resolve_preset(entry.name)) / "keras_pose_preset.json").read_text())
    assert meta["converted_from"]["sha256"] == digest and meta["sha256_check"] == "prefix"
    # A later read of a damaged cached copy is checked against the full digest.
    cached.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    fetch_checkpoint(entry, progress=False)
    assert cached.read_bytes() == data
    assert server.requests == ["/tiny.pth", "/tiny.pth"]


def test_unchecked_download_is_checked_against_its_recorded_digest(server, home, register):
    path = save_original_checkpoint(server.root / "tiny.pth", make_tiny_state_dict())
    entry = register(tiny_entry(f"{server.url}/tiny.pth", None, name="test_hostile_nodigest"))
    cached = pathlib.Path(fetch_checkpoint(entry, progress=False))
    cached.write_bytes(b"bit rot")
    fetch_checkpoint(entry, progress=False)
    assert cached.read_bytes() == path.read_bytes()
    assert server.requests == ["/tiny.pth", "/tiny.pth"]
