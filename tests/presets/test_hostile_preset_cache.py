"""Issue 8 (hostile-input review): the preset cache, downloads and leftovers.

Items 3 (the conversion cache follows the file's content and the converter
version), 4 (incomplete downloads and failed conversions are never cached),
17 (offline hub handles, byte counts of failed downloads), 18 (no leftovers:
key folders, temporaries of killed writers), 19 (a minimum download speed)
and 21 (preset names in any case, digests recorded and checked). Tiny ViTPose
checkpoints (hidden 32, 2 layers, 64x48 input; see test_preset_loading.py)
are served over HTTP on 127.0.0.1 and damaged on purpose. KERAS_POSE_HOME
points into tmp_path, so the user cache is never touched. The numbers in the
section titles are the issue's items.
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

from pose_testing.tiny_checkpoints import files_under
from pose_testing.tiny_checkpoints import make_tiny_state_dict
from pose_testing.tiny_checkpoints import save_original_checkpoint
from pose_testing.tiny_checkpoints import tiny_entry

torch = pytest.importorskip("torch")


def _heatmaps(model):
    x = np.random.default_rng(7).normal(size=(1, *model.image_size, 3)).astype("float32")
    return np.asarray(model.predict_on_batch(x), dtype=np.float32)



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


def test_url_without_sha256_follows_the_downloaded_content(server, home):
    from keras_pose.utils.download import cached_path_for

    def head_kernel(model):  # the converted final conv, in the checkpoint's (K, C, 1, 1) layout
        return np.asarray(model.head.final_conv.kernel).transpose(3, 2, 0, 1)

    sd_a = make_tiny_state_dict(384, 1, grid=(16, 12))  # a standard width: no registered entry needed
    sd_b = make_tiny_state_dict(384, 1, grid=(16, 12), seed=4)
    url = f"{server.url}/vit_s.pth"  # no registered entry: no digest is published
    save_original_checkpoint(server.root / "vit_s.pth", sd_a)
    np.testing.assert_array_equal(head_kernel(load_preset(url)), sd_a["keypoint_head.final_layer.weight"])
    cached = pathlib.Path(cached_path_for(url, file_name="vit_s.pth"))
    assert cached.read_bytes() == (server.root / "vit_s.pth").read_bytes()
    np.testing.assert_array_equal(head_kernel(load_preset(url)), sd_a["keypoint_head.final_layer.weight"])  # reused
    assert server.requests == ["/vit_s.pth"]
    # The server now has another file and the cached copy rots: old code converted nothing and
    # returned model A from the conversion keyed by the URL.
    save_original_checkpoint(server.root / "vit_s.pth", sd_b)
    cached.write_bytes(cached.read_bytes()[:-10] + bytes(10))
    np.testing.assert_array_equal(head_kernel(load_preset(url)), sd_b["keypoint_head.final_layer.weight"])
    assert server.requests == ["/vit_s.pth", "/vit_s.pth"]
    assert cached.read_bytes() == (server.root / "vit_s.pth").read_bytes()


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
    with pytest.raises(DownloadError, match="did not arrive as a complete checkpoint .*no length or digest"):
        resolve_preset(url)
    assert files_under(home) == [] or files_under(home / "checkpoints") == []
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
    assert files_under(home / "checkpoints") == []  # neither the file nor its key folder
    save_original_checkpoint(path, make_tiny_state_dict())  # fixed upstream
    assert type(load_preset(entry.name)).__name__ == "ViTPose"
    assert server.requests == ["/nan.pth", "/nan.pth"]


# --------------------------------------------------------------------------
# 17. offline hub handles and failed downloads say what happened
# --------------------------------------------------------------------------
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
    # Every unchecked preset says why and what is checked instead; the hub's own digest where it sends one.
    for e in entries:
        if e.sha256_check == "none":
            assert "digest" in e.notes or "sha256" in e.notes, e.name
            if e.source_url.startswith("https://huggingface.co/") and "re-host" not in e.notes:
                assert "X-Linked-Etag" in e.notes, e.name


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


def _hub_redirect(target, etag):
    """The Hugging Face Hub's answer to /resolve/: a redirect to the CDN carrying the LFS sha256."""
    def handler(h):
        h.send_response(302)
        h.send_header("Location", target)
        h.send_header("X-Linked-Etag", etag)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handler


def test_digest_published_by_the_hub_is_checked(server, home, register):
    path = save_original_checkpoint(server.root / "cdn.pth", make_tiny_state_dict())
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    resolve = "/someone/vitpose/resolve/main/model.pth"
    entry = register(tiny_entry(f"{server.url}{resolve}", None, name="test_hostile_hub", file_name="model.pth"))
    assert entry.sha256_check == "none"  # nothing published in the registry
    # The CDN serves another file than the one the hub lists: refused, nothing kept.
    server.routes[resolve] = _hub_redirect("/cdn.pth", f'"{hashlib.sha256(b"other").hexdigest()}"')
    with pytest.raises(DownloadError) as info:
        fetch_checkpoint(entry, progress=False)
    assert f"got {digest}" in str(info.value) and "X-Linked-Etag" in str(info.value)
    assert not (home / "checkpoints").exists()
    # The listed file: downloaded, and its digest recorded for later reads.
    server.routes[resolve] = _hub_redirect("/cdn.pth", f'W/"{digest.upper()}"')
    cached = pathlib.Path(fetch_checkpoint(entry, progress=False))
    assert cached.read_bytes() == data and pathlib.Path(f"{cached}.sha256").read_text().split()[0] == digest
    # A prefix in the registry and the hub's full digest agree: the full one is checked.
    cached.unlink()
    short = register(tiny_entry(f"{server.url}{resolve}", digest[:8], name="test_hostile_hub_prefix",
                                file_name="model.pth"))
    server.routes["/cdn.pth"] = lambda h: (h.send_response(200), h.send_header("Content-Length", str(len(data))),
                                           h.end_headers(), h.wfile.write(data[:-1] + bytes([data[-1] ^ 1])))
    with pytest.raises(DownloadError, match=f"expected {digest} \\(published by the server"):
        fetch_checkpoint(short, progress=False)
    # The hub's digest matches but the file is no checkpoint: the URL is blamed, not the connection.
    page = b"<p>not a checkpoint</p>" * 10
    (server.root / "page.pth").write_bytes(page)
    server.routes[resolve] = _hub_redirect("/page.pth", f'"{hashlib.sha256(page).hexdigest()}"')
    with pytest.raises(DownloadError, match="their length and digest as the server sent.*does not serve a checkpoint"):
        fetch_checkpoint(entry, progress=False)
    # A header that is no sha256 (a git blob id, say) is ignored.
    server.routes[resolve] = _hub_redirect("/plain.pth", '"0123abcd"')
    (server.root / "plain.pth").write_bytes(data)
    assert pathlib.Path(fetch_checkpoint(entry, progress=False)).read_bytes() == data
