"""Export destinations: the output path check, atomic writes, and the temporary folders.

`check_export_path` resolves the format and output file and fails fast on a
destination that cannot be written. The TFLite route writes a SavedModel of
the whole model (hundreds of MB) and ONNX int8 two copies of the graph into
a temporary folder (`export_temp_dir`); a folder left by a killed export is
removed by the next one (`clean_stale_temp_folders`).
"""

import atexit
import contextlib
import os
import re
import shutil
import socket
import tempfile

from keras_pose.export import export_metadata
from keras_pose.export.options import EXTENSIONS, FORMAT_ALIASES, ExportError
from keras_pose.utils.file_utils import atomic_write


def check_format(format, path):
    """``(format, path)`` from a format name or alias and the path's extension (added when missing)."""
    suffix = os.path.splitext(path)[1].lower()
    by_suffix = {v: k for k, v in EXTENSIONS.items()}
    if format is None:
        if suffix not in by_suffix:
            raise ExportError(
                f"Cannot tell the export format from {path!r}: pass format='tflite' or 'onnx', or a "
                "path ending in .tflite / .onnx."
            )
        return by_suffix[suffix], path
    key = str(format).lower()
    if key not in FORMAT_ALIASES:
        raise ExportError(
            f"Unknown export format {format!r}. Supported: 'tflite' (alias 'litert') for LiteRT / "
            "TensorFlow Lite, 'onnx' for ONNX Runtime and servers. (For a TF SavedModel use "
            "keras.Model.export(path, format='tf_saved_model').)"
        )
    fmt = FORMAT_ALIASES[key]
    if suffix in by_suffix and by_suffix[suffix] != fmt:
        raise ExportError(
            f"format={format!r} but the path {path!r} ends in {suffix!r}; use a "
            f"{EXTENSIONS[fmt]} path or format={by_suffix[suffix]!r}."
        )
    if not suffix:
        path = path + EXTENSIONS[fmt]
    return fmt, path


def _nearest_existing(path):
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    return parent


def check_export_path(path, format=None):
    """Resolve the format and output file, and check the file can be written.

    Called by `export_model` before anything is converted (and by the CLI
    before the model is loaded), so a bad destination fails in seconds.

    Args:
        path: the output file; its extension picks the format when
            ``format`` is None; without an extension, ``.tflite`` /
            ``.onnx`` is added.
        format: "tflite" (alias "litert"), "onnx" or None.

    Returns:
        ``(format, path)``: the format and the output file (str).

    Raises:
        ExportError: unknown format, or a destination that cannot be
            written: the file or its ``.json`` metadata is a folder, a parent
            is a file, or the nearest existing folder is not writable. The
            message names ``path``.
    """
    fmt, path = check_format(format, os.fspath(path))
    for target, what in ((path, "the output"), (export_metadata.metadata_path(path), "its metadata file")):
        if os.path.isdir(target):
            raise ExportError(
                f"Cannot export to {path!r}: {what} {target!r} is a folder. Give a file path such as "
                f"{os.path.join(target, 'model' + EXTENSIONS[fmt])!r}."
            )
    parent = _nearest_existing(path)
    if not os.path.isdir(parent):
        raise ExportError(
            f"Cannot export to {path!r}: {parent!r} is a file, not a folder. Choose an output path in a folder."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(
            f"Cannot export to {path!r}: the folder {parent!r} is not writable. Choose another output path or "
            "fix the folder's permissions."
        )
    return fmt, path




def write_or_explain(path, write):
    """Run ``write()``; an OSError becomes an ExportError naming ``path`` (not a hidden temp file)."""
    try:
        return write()
    except OSError as e:
        reason = e.strerror or " ".join(str(e).split()) or type(e).__name__
        raise ExportError(f"Could not write the export to {path!r}: {reason}. Check the free space and "
                          "permissions there, or choose another output path.") from e



def write_model_file(path, model_bytes):
    """Write ``model_bytes`` to ``path`` atomically; an OSError becomes an ExportError naming ``path``."""

    def write():
        with atomic_write(path, "wb") as f:
            f.write(model_bytes)

    write_or_explain(path, write)


# ------------------------------------------------------------ temp folders
# The TFLite route writes a SavedModel of the whole model (hundreds of MB)
# and ONNX int8 two copies of the graph into a temporary folder. Its name
# says who owns it: keras-pose-export-<pid>@<host>-<random>. It is removed
# when the export ends, however it ends (exceptions, Ctrl-C, interpreter
# exit); one left by a killed process (SIGKILL, SIGTERM, a crash) is removed
# by the next export on the same host once its process is gone.
TEMP_PREFIX = "keras-pose-export-"
_TEMP_NAME = re.compile(r"^keras-pose-export-(\d+)@(.*)-[A-Za-z0-9_]+$")
_LIVE_TEMP_DIRS = set()


def _host():
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname() or "localhost")[:64]


def _pid_alive(pid):
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows: assume alive.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def clean_stale_temp_folders(root=None):
    """Remove export temp folders whose process is gone (same host).

    Args:
        root: the folder to scan (default ``tempfile.gettempdir()``).

    Returns:
        The list of removed folders.
    """
    root = root or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    host = _host()
    for name in names:
        match = _TEMP_NAME.match(name)
        if not match or match.group(2) != host:
            continue
        folder = os.path.join(root, name)
        if folder in _LIVE_TEMP_DIRS or _pid_alive(int(match.group(1))) or not os.path.isdir(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.exists(folder):
            removed.append(folder)
    return removed


def _remove_live_temp_dirs():
    for folder in list(_LIVE_TEMP_DIRS):
        shutil.rmtree(folder, ignore_errors=True)
        _LIVE_TEMP_DIRS.discard(folder)


atexit.register(_remove_live_temp_dirs)


@contextlib.contextmanager
def export_temp_dir():
    """A temporary folder for one export step, removed on every exit path.

    Stale folders of killed exports are cleaned first
    (`clean_stale_temp_folders`).

    Yields:
        The folder path, ``<tempdir>/keras-pose-export-<pid>@<host>-<random>``.
    """
    clean_stale_temp_folders()
    folder = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}@{_host()}-")
    _LIVE_TEMP_DIRS.add(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _LIVE_TEMP_DIRS.discard(folder)

