"""What a checkpoint file is, before anything unpickles it, and loading torch files safely.

- `sniff_format(path)`: the container format from the first bytes ("torch_zip",
  "torch_legacy", "torch_tar", "pickle", "safetensors"); an empty, text, JSON,
  HTML, HDF5, truncated or unknown file gets a one-line `CheckpointError` that
  says so.
- `torch_load(path)`: `torch.load(weights_only=True)` (plain NumPy arrays in
  metadata allowed); a pickle naming a global `weights_only` refuses (code a
  hostile file would run) is refused with that global named.
- `check_complete(path)`: a complete, parseable checkpoint (for downloads whose
  length and digest are unknown).
- `safetensors_names(path)`: the tensor names of a safetensors header, checked
  against the file size.
"""

import json
import os
import re

import numpy as np

from keras_pose.errors import CheckpointError


def _numpy_safe_globals():
    """NumPy globals that plain arrays / scalars in checkpoint metadata need."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    names = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    for dtype in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
                  np.uint8, np.uint16, np.uint32, np.uint64, np.bool_, np.str_, np.bytes_, np.object_):
        names.append(type(np.dtype(dtype)))
    return names


# ------------------------------------------------------------------ sniffing
# torch.save's legacy (non-zip) format starts with the pickled magic number
# 0x1950a86a20f9469cfc6c (a LONG1 opcode, 10 little-endian bytes).
_TORCH_LEGACY_MAGIC = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
# Modules whose globals a weights_only torch file may name (tensors, storages,
# OrderedDict, bytes, the NumPy arrays allowed in metadata).
_SAFE_GLOBAL_MODULES = ("torch", "collections", "_codecs", "numpy")
_MODULE_ALIASES = {"posix": "os", "nt": "os", "__builtin__": "builtins"}


def _not_a_checkpoint(path, what):
    return CheckpointError(
        f"{path} is not a checkpoint keras-pose can read: it {what}. The file is corrupt, incomplete or not a "
        "model checkpoint; download it again or pass the reference checkpoint (.pth / .safetensors) itself."
    )


def _describe_bytes(head):
    """What the first bytes of a file that is not a checkpoint look like."""
    stripped = head.lstrip()
    if head.startswith(b"\x89HDF"):
        return "is an HDF5 file (a Keras .h5 / .weights.h5 file?), not a PyTorch or safetensors checkpoint"
    if stripped[:1] in (b"{", b"["):
        return "is a JSON text file"
    if stripped[:1] == b"<":
        return "is an HTML / XML text file (a download that returned a web page?)"
    if head.startswith(b"\x1f\x8b"):
        return "is a gzip archive; unpack it first"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head[:-3].decode("utf-8", "replace") if len(head) > 3 else None
    if text is not None and "\ufffd" not in text:
        printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
        if printable >= 0.95 * max(len(text), 1):
            return "is a text file"
    return f"does not start like a PyTorch or safetensors file (first bytes: {head[:8].hex(' ')})"


def _safetensors_header_size(head, size):
    if len(head) < 9:
        return None
    n = int.from_bytes(head[:8], "little")
    if 2 <= n <= size - 8 and head[8:9] == b"{":
        return n
    return None


def sniff_format(path):
    """The container format of a checkpoint file, from its first bytes.

    Returns:
        "torch_zip" (torch.save's default zip format), "torch_legacy"
        (`_use_new_zipfile_serialization=False`), "torch_tar" (torch < 0.4),
        "pickle" (a plain Python pickle, not torch.save output) or
        "safetensors".

    Raises:
        CheckpointError: the file is empty, text, JSON, HTML, HDF5, a zip
            archive that is truncated or holds no `data.pkl`, or unknown
            bytes; the message says which.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0:
        raise _not_a_checkpoint(path, "is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(4096)
        if size > 262:
            f.seek(257)
            tar_magic = f.read(5)
        else:
            tar_magic = b""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise _not_a_checkpoint(path, f"is a truncated or corrupt zip archive (PyTorch's format): {error}") from None
        if not any(i.filename == "data.pkl" or i.filename.endswith("/data.pkl") for i in infos):
            raise _not_a_checkpoint(path, "is a zip archive without the data.pkl of a PyTorch checkpoint")
        end = max((i.header_offset + 30 + len(i.filename) + i.compress_size for i in infos), default=0)
        if end > size:
            raise _not_a_checkpoint(path, f"is a truncated zip archive (its entries need {end} bytes, it has {size})")
        return "torch_zip"
    if head[:1] == b"\x80":
        return "torch_legacy" if _TORCH_LEGACY_MAGIC in head[:32] else "pickle"
    if tar_magic == b"ustar":
        return "torch_tar"
    if _safetensors_header_size(head, size) is not None:
        return "safetensors"
    raise _not_a_checkpoint(path, _describe_bytes(head))


def _pickle_globals(stream):
    """Qualified names of the globals a pickle stream references (never executes it)."""
    import pickletools

    found, memo, strings = [], {}, []
    for op, arg, _ in pickletools.genops(stream):
        name = op.name
        if name in ("GLOBAL", "INST") and isinstance(arg, str):
            found.append(arg.replace(" ", "."))
        elif name == "STACK_GLOBAL" and len(strings) >= 2:
            found.append(f"{strings[-2]}.{strings[-1]}")
        if isinstance(arg, str) and "UNICODE" in name or name in ("SHORT_BINSTRING", "BINSTRING", "STRING"):
            strings.append(arg if isinstance(arg, str) else str(arg))
        elif name == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif name in ("PUT", "BINPUT", "LONG_BINPUT") and strings:
            memo[arg] = strings[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET") and arg in memo:
            strings.append(memo[arg])
    return found


def blocked_globals(path):
    """The globals a torch file's pickle names that `weights_only=True` refuses.

    Scans the pickle opcodes (nothing is executed): `data.pkl` of a zip
    checkpoint, or the pickles at the start of a legacy / plain pickle file.
    Returns qualified names such as "builtins.eval" or "os.system" (posix
    module names are given as `os`).
    """
    import io

    names = []
    try:
        if sniff_format(path) == "torch_zip":
            import zipfile

            with zipfile.ZipFile(path) as zf:
                member = next(i for i in zf.infolist() if i.filename.endswith("data.pkl"))
                names = _pickle_globals(io.BytesIO(zf.read(member)))
        else:
            with open(path, "rb") as f:
                for _ in range(5):  # magic, protocol, sys info, object, storage keys
                    try:
                        names += _pickle_globals(f)
                    except Exception:  # noqa: BLE001 - raw storage bytes follow the pickles
                        break
    except Exception:  # noqa: BLE001 - best effort: only used to name what was refused
        pass
    blocked = []
    for name in names:
        module, _, attr = name.rpartition(".")
        if module.split(".")[0] in _SAFE_GLOBAL_MODULES:
            continue
        name = f"{_MODULE_ALIASES.get(module, module)}.{attr}"
        if name not in blocked:
            blocked.append(name)
    return blocked


def _torch_reason(message):
    """The useful part of a torch.load error message (one line)."""
    match = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(Check the documentation|$)", message, re.S)
    text = match.group(1) if match else message
    text = " ".join(text.split())
    return text[:300]


def torch_load(path):
    """`torch.load(weights_only=True)`, allowing plain NumPy arrays in metadata.

    The file's format is checked first (`sniff_format`), so an empty, text,
    truncated or random file is named as such; a pickle that names a global
    `weights_only` refuses (code a hostile file would run) is refused with
    that global named.

    Raises:
        CheckpointError: for every way the file fails to load.
    """
    try:
        import torch
    except ImportError as error:  # pragma: no cover - torch is a convert dependency
        raise CheckpointError(
            f"Reading {path} needs PyTorch: pip install 'keras-pose[convert]' (or the CPU torch wheel)."
        ) from error
    import pickle

    path = os.fspath(path)
    if path.endswith(".caffemodel"):  # a binary Caffe NetParameter (OpenPose): parse it whole
        from keras_pose.conversion.caffe_io import read_caffemodel

        read_caffemodel(path)
        return
    fmt = sniff_format(path)
    if fmt == "safetensors":
        raise CheckpointError(f"{path} is a safetensors file; name it *.safetensors (or pass its folder).")
    if fmt == "pickle":
        blocked = blocked_globals(path)
        refs = f"; it references {', '.join(blocked)}, which keras-pose never loads" if blocked else ""
        raise _not_a_checkpoint(path, f"is a plain Python pickle, not a torch.save file{refs}")

    def load():
        # The zip format is memory-mapped: tensors are read when converted.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=fmt == "torch_zip")

    def refused(error):
        blocked = blocked_globals(path)
        if not blocked:
            match = re.search(r"GLOBAL (\S+?)(?: was not| whose|\s|$)", str(error))
            blocked = [match.group(1)] if match else []
        if not blocked:
            return CheckpointError(
                f"{path} is corrupt: torch.load could not unpickle it ({_torch_reason(str(error))}). Download it "
                "again, or pass the reference checkpoint itself."
            )
        return CheckpointError(_unsafe_global_message(path, blocked))

    def corrupt(error):
        kind = type(error).__name__
        if type(error).__module__ not in ("builtins", "exceptions"):
            kind = f"{type(error).__module__}.{kind}"
        reason = str(error).strip() or ("the file ends too early" if isinstance(error, EOFError) else "no details")
        return CheckpointError(
            f"{path} is truncated or corrupt: torch.load failed with {kind} ({_torch_reason(reason)}). "
            "Download it again, or pass the reference checkpoint itself."
        )

    try:
        return load()
    except pickle.UnpicklingError as error:
        if "numpy" not in str(error):
            raise refused(error) from None
    except Exception as error:  # noqa: BLE001 - EOFError, KeyError, OSError, RuntimeError, ...
        raise corrupt(error) from None
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return load()
    except pickle.UnpicklingError as error:
        raise refused(error) from None
    except Exception as error:  # noqa: BLE001
        raise corrupt(error) from None


def _unsafe_global_message(path, blocked):
    return (
        f"{path} holds Python objects that torch.load(weights_only=True) refuses to unpickle: "
        f"{', '.join(blocked)} (code a pickle can run when it is loaded). keras-pose never unpickles arbitrary "
        "objects. If you trust the file, re-save only its weights: torch.save({'state_dict': "
        "torch.load(path, weights_only=False)['state_dict']}, 'weights_only.pth') and convert that."
    )


def check_complete(path):
    """Raise `CheckpointError` unless `path` is a complete, parseable checkpoint.

    For a download whose length and digest are unknown: a zip checkpoint
    must have its central directory and every entry inside the file, a
    safetensors file exactly the bytes its header describes, and a legacy
    torch file must load (`weights_only=True`).
    """
    path = os.fspath(path)
    if path.endswith(".caffemodel"):  # a binary Caffe NetParameter (OpenPose): parse it whole
        from keras_pose.conversion.caffe_io import read_caffemodel

        read_caffemodel(path)
        return
    fmt = sniff_format(path)
    if fmt == "safetensors":
        safetensors_names(path)
    elif fmt != "torch_zip":
        torch_load(path)


def safetensors_names(path):
    """Check a safetensors header against the file size; returns the tensor names."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else 0
        if len(head) != 8 or not 2 <= n <= size - 8:
            raise _not_a_checkpoint(path, "is not a safetensors file (no valid header)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise _not_a_checkpoint(path, f"has a corrupt safetensors header ({error})") from None
    if not isinstance(header, dict):
        raise _not_a_checkpoint(path, "has a corrupt safetensors header (not a JSON object)")
    ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)
            and "data_offsets" in v]
    need = 8 + n + max(ends, default=0)
    if need > size:
        raise _not_a_checkpoint(path, f"is a truncated safetensors file ({size} bytes; its header needs {need})")
    return [k for k in header if k != "__metadata__"]




__all__ = ["blocked_globals", "check_complete", "safetensors_names", "sniff_format", "torch_load"]
