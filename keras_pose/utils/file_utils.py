"""Atomic file and directory writes, and cleaning what killed writers left.

Nothing keras-pose writes is ever half-written: content goes to a temporary
sibling first and is moved into place with `os.replace`, which is atomic on
POSIX and Windows when source and target share a file system.

A process killed mid-write (SIGKILL, power loss) leaves its hidden temporary
sibling behind. The temporaries are named
`.<name>.kp<pid>-<host>.<random>.<kind>` (kind `tmp`: a file being written,
`new`: a folder being built, `old`: a folder being replaced), so the next
write into the same folder can tell whose they are: those of a process that
no longer runs on this machine, and those untouched for an hour (another
machine's, on a shared file system), are removed (`clean_stale_temporaries`).
"""

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time

# Seconds after which a temporary of another machine (or of unknown writer)
# counts as abandoned.
STALE_AFTER = 3600.0

_TEMP_NAME = re.compile(
    r"^\.(?P<base>.+)\.kp(?P<pid>\d+)-(?P<host>[0-9a-f]{6})\.[a-z0-9_]{8}\.(?P<kind>tmp|new|old)$"
)
# Names used before the writer was recorded: `.<name>.<random>.tmp` files and
# `.<name>.<random>` / `.<name>.old.<random>` folders. Only cleaned where the
# caller knows the folder is keras-pose's own (the cache).
_LEGACY_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_LEGACY_DIR = re.compile(r"^\.(?P<base>.+?)(\.old)?\.[a-z0-9_]{8}$")

_cleaned = set()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host_tag():
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def _temp_prefix(path):
    """`.<name>.kp<pid>-<host>.`: the start of a temporary sibling's name."""
    return f".{os.path.basename(path)}.kp{os.getpid()}-{_host_tag()}."


def _pid_running(pid):
    if os.name == "nt":  # os.kill would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _newest_mtime(path):
    """Latest modification time (s) of `path` and, for a folder, anything in it."""
    try:
        newest = os.lstat(path).st_mtime
    except OSError:
        return None
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)


def clean_stale_temporaries(directory, max_age=STALE_AFTER, legacy=False):
    """Remove the temporaries that killed writers left in `directory`.

    A temporary (see the module docstring) is stale when its writer process
    no longer runs on this machine, or, for another machine's (or, with
    `legacy`, an old-style name without a writer), when nothing in it changed
    for `max_age` seconds. A stale `.old` folder whose target is missing (the
    writer died between the two renames of `atomic_directory`) is moved back
    to its target instead of being deleted.

    Args:
        directory: the folder to clean (not recursive).
        max_age: seconds without modification after which a temporary of
            unknown liveness counts as abandoned.
        legacy: also clean old-style names (only for folders keras-pose
            owns, such as its cache).

    Returns:
        The list of removed (or restored) paths.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    host, now, done = _host_tag(), time.time(), []
    for name in names:
        if not name.startswith("."):
            continue
        path = os.path.join(directory, name)
        match = _TEMP_NAME.match(name)
        if match:
            kind, base = match.group("kind"), match.group("base")
            if match.group("host") == host:
                stale = not _pid_running(int(match.group("pid")))
            else:
                mtime = _newest_mtime(path)
                stale = mtime is not None and now - mtime > max_age
        elif legacy:
            is_dir = os.path.isdir(path)
            legacy_dir = _LEGACY_DIR.match(name) if is_dir else None
            if not is_dir and _LEGACY_FILE.match(name):
                kind, base = "tmp", None
            elif legacy_dir:
                kind, base = ("old" if legacy_dir.group(2) else "new"), legacy_dir.group("base")
            else:
                continue
            mtime = _newest_mtime(path)
            stale = mtime is not None and now - mtime > max_age
        else:
            continue
        if not stale:
            continue
        target = os.path.join(directory, base) if base else None
        if kind == "old" and target and not os.path.exists(target):
            with contextlib.suppress(OSError):
                os.replace(path, target)
                done.append(path)
                continue
        _remove(path)
        done.append(path)
    return done


def _clean_once(directory):
    directory = os.path.abspath(directory)
    if directory not in _cleaned:
        _cleaned.add(directory)
        clean_stale_temporaries(directory)


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file that replaces `path` when the block succeeds.

    The first write into a folder in a process also removes the stale
    temporaries killed writers left there (`clean_stale_temporaries`).

    Args:
        path: destination file path.
        mode: "wb" or "w".

    Yields:
        The open temporary file object (its `name` is the temporary path).
        On an exception the temporary file is removed and `path` is left
        untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _clean_once(directory)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        with open(tmp, mode) as f:  # opened by name, so `f.name` is the temporary path
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the permissions open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path):
    """Build a directory in a temporary sibling, then move it to `path`.

    If `path` already exists it is replaced only after the new content is
    complete. The first write into a parent folder in a process also removes
    the stale temporaries killed writers left there. Yields the temporary
    directory path to write into.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    _clean_once(parent)
    tmp = tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".new", dir=parent)
    # mkdtemp creates 0700; give the folder the permissions mkdir() would.
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=parent)
            os.rmdir(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
