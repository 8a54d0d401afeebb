"""Atomic writes: all or nothing, with ordinary permissions."""

import os
import stat

import pytest

from keras_pose.utils.file_utils import atomic_directory, atomic_write


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with atomic_write(target, "w") as f:
        f.write("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(target) == 0o666 & ~umask


def test_atomic_directory_replaces_only_on_success(tmp_path):
    target = tmp_path / "preset"
    with atomic_directory(target) as tmp:
        (open(os.path.join(tmp, "config.json"), "w")).write("{}")
    assert (target / "config.json").read_text() == "{}"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            open(os.path.join(tmp, "partial"), "w").write("x")
            raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["preset"]
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(target) == 0o777 & ~umask
