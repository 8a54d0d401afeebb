"""`keras_pose.utils.download`: checked, atomic downloads from a local server."""

import contextlib
import hashlib
import os
import pathlib
import socket

import pytest

from keras_pose.errors import DownloadError
from keras_pose.utils import download
from keras_pose.utils.download import cache_dir
from keras_pose.utils.download import cached_download
from keras_pose.utils.download import download_file


@pytest.fixture
def payload(server):
    data = os.urandom(300_000) + b"keras-pose"
    (server.root / "weights.pth").write_bytes(data)
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _online(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_POSE_OFFLINE", raising=False)
    monkeypatch.setenv("KERAS_POSE_HOME", str(tmp_path / "home"))


def _leftovers(folder):
    return sorted(p.name for p in pathlib.Path(folder).iterdir()) if pathlib.Path(folder).exists() else []


def test_download_with_full_sha256(server, payload, tmp_path):
    data, digest = payload
    dest = tmp_path / "out" / "weights.pth"
    path = download_file(f"{server.url}/weights.pth", dest, sha256=digest, progress=False)
    assert path == str(dest)
    assert dest.read_bytes() == data
    assert _leftovers(dest.parent) == ["weights.pth"]  # no temporary file left


def test_download_with_sha256_prefix(server, payload, tmp_path):
    data, digest = payload
    dest = tmp_path / "weights.pth"
    download_file(f"{server.url}/weights.pth", dest, sha256=digest[:8].upper(), progress=False)
    assert dest.read_bytes() == data


def test_download_without_sha256(server, payload, tmp_path):
    data, _ = payload
    dest = tmp_path / "weights.pth"
    download_file(f"{server.url}/weights.pth", dest, progress=True)  # not a TTY: no bar, still works
    assert dest.read_bytes() == data


@pytest.mark.parametrize("bad", ["0" * 64, "deadbeef"])
def test_sha256_mismatch_removes_the_file(server, payload, tmp_path, bad):
    _, digest = payload
    dest = tmp_path / "dl" / "weights.pth"
    with pytest.raises(DownloadError) as info:
        download_file(f"{server.url}/weights.pth", dest, sha256=bad, progress=False)
    message = str(info.value)
    assert bad in message and digest in message
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_failed_download_keeps_the_previous_file(server, payload, tmp_path):
    dest = tmp_path / "weights.pth"
    dest.write_bytes(b"previous good file")
    with pytest.raises(DownloadError):
        download_file(f"{server.url}/weights.pth", dest, sha256="f" * 64, progress=False)
    assert dest.read_bytes() == b"previous good file"
    assert _leftovers(tmp_path) == ["srv", "weights.pth"]


def test_http_404(server, tmp_path):
    dest = tmp_path / "missing.pth"
    with pytest.raises(DownloadError) as info:
        download_file(f"{server.url}/missing.pth", dest, progress=False)
    message = str(info.value)
    assert "404" in message and "/missing.pth" in message
    assert "keras-pose convert" in message
    assert not dest.exists()


def test_truncated_download_leaves_nothing(server, tmp_path):
    dest = tmp_path / "part" / "weights.pth"
    with pytest.raises(DownloadError) as info:
        download_file(f"{server.url}/truncated", dest, progress=False, timeout=5)
    assert "truncated" in str(info.value)
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_html_page_is_not_a_checkpoint(server, tmp_path):
    dest = tmp_path / "weights.pth"
    with pytest.raises(DownloadError, match="web page"):
        download_file(f"{server.url}/page.html", dest, progress=False)
    assert not dest.exists()


def test_unreachable_host_names_url_reason_and_fix(tmp_path):
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/weights.pth"
    with pytest.raises(DownloadError) as info:
        download_file(url, tmp_path / "w.pth", progress=False, timeout=5, preset_name="vitpose_base_coco_256x192")
    message = str(info.value)
    assert url in message
    assert "keras-pose convert --preset vitpose_base_coco_256x192 --checkpoint FILE --output DIR" in message
    assert "KERAS_POSE_OFFLINE" in message
    assert not (tmp_path / "w.pth").exists()


def test_file_url(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"abc" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = tmp_path / "copy" / "source.bin"
    download_file(source.as_uri(), dest, sha256=digest, progress=False)
    assert dest.read_bytes() == source.read_bytes()
    with pytest.raises(DownloadError, match="Could not read"):
        download_file((tmp_path / "nope.bin").as_uri(), tmp_path / "nope.bin", progress=False)


def test_offline_mode_raises_without_network(server, payload, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_POSE_OFFLINE", "1")
    dest = tmp_path / "weights.pth"
    with pytest.raises(DownloadError, match="KERAS_POSE_OFFLINE"):
        download_file(f"{server.url}/weights.pth", dest, progress=False)
    assert server.requests == []
    assert not dest.exists()
    # Local files still work offline.
    download_file((server.root / "weights.pth").as_uri(), dest, sha256=payload[1], progress=False)
    assert dest.read_bytes() == payload[0]


def test_share_links_need_a_manual_download(tmp_path):
    url = "https://1drv.ms/u/s!AimBgYV7JjTlgShLMI-kkmvNfF_h?e=dEhGHe"
    assert download.needs_manual_download(url)
    assert not download.needs_manual_download("https://huggingface.co/x/y/resolve/main/a.pth")
    dest = tmp_path / "vitpose-h.pth"
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, progress=False, preset_name="vitpose_huge_coco_256x192")
    assert str(dest) in str(info.value)
    assert "keras-pose convert --preset vitpose_huge_coco_256x192" in str(info.value)


def test_rejects_bad_digest_and_url(tmp_path):
    with pytest.raises(ValueError, match="sha256"):
        download_file("file:///x", tmp_path / "x", sha256="xyz")
    with pytest.raises(ValueError, match="sha256"):
        download_file("file:///x", tmp_path / "x", sha256="abc")  # shorter than 8
    with pytest.raises(DownloadError, match="URL"):
        download_file("ftp://example.com/x", tmp_path / "x")


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_POSE_HOME", str(tmp_path / "kp"))
    assert cache_dir() == str(tmp_path / "kp")
    monkeypatch.delenv("KERAS_POSE_HOME")
    assert cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "keras_pose")


def test_cached_download_reuses_a_verified_file(server, payload, tmp_path):
    data, digest = payload
    url = f"{server.url}/weights.pth"
    first = cached_download(url, sha256=digest, progress=False)
    second = cached_download(url, sha256=digest, progress=False)
    assert first == second
    assert first.startswith(str(tmp_path / "home" / "checkpoints"))
    assert pathlib.Path(first).read_bytes() == data
    assert server.requests == ["/weights.pth"]
    # A corrupted cached copy is fetched again.
    pathlib.Path(first).write_bytes(b"corrupt")
    cached_download(url, sha256=digest, progress=False)
    assert pathlib.Path(first).read_bytes() == data
    assert len(server.requests) == 2


def test_sha256_matches():
    digest = hashlib.sha256(b"x").hexdigest()
    assert download.sha256_matches(digest, digest)
    assert download.sha256_matches(digest, digest[:8])
    assert download.sha256_matches(digest, None)
    assert not download.sha256_matches(digest, digest[1:9])
