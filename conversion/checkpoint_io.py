"""Reading reference checkpoints and accounting for every tensor in them.

- `read_checkpoint(path)`: a PyTorch `.pth` / `.pt` / `.bin` file (the zip
  format and the legacy non-zip `torch.save(..., _use_new_zipfile_serialization
  =False)` format, always with `torch.load(weights_only=True)`), a
  `.safetensors` file (with the `config.json` beside it, if any) or a
  directory holding `model.safetensors` (+ `config.json`). The training
  container is unwrapped (`{'state_dict'}`, `{'meta', 'state_dict'}`,
  `{'epoch', 'state_dict', 'optimizer'}`, `{'model'}`, ...), a DataParallel
  `module.` prefix is removed, and every tensor becomes a NumPy array
  (bfloat16 / float16 -> float32).
- `KeyAccountant`: converters pop the tensors they consume (checking shapes
  and that every value is finite); `finish()` raises one `CheckpointError`
  listing every missing, unexpected, misshapen and non-finite (NaN / Inf)
  tensor, with shapes in the checkpoint's own layout, plus a hint naming the
  model family the keys look like when they look like another family's.
- `sniff_format(path)` / `check_complete(path)`: what a file is (and whether
  it is complete) before anything unpickles it; an empty, text, truncated or
  hostile file gets a one-line `CheckpointError` that says so.
- `guess_family(keys)`: which released model family a key set looks like.
"""

import dataclasses
import fnmatch
import json
import os
import re
from typing import Any, Optional

import numpy as np

from keras_pose.errors import CheckpointError

# Container keys holding the weights, in the order they are tried.
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "module", "net", "params", "weights")
# Top-level container entries that are never weights.
NON_WEIGHT_KEYS = (
    "meta",
    "optimizer",
    "optimizer_state_dict",
    "epoch",
    "iter",
    "best_acc",
    "best_prec1",
    "perf",
    "scheduler",
    "lr_scheduler",
    "message_hub",
    "param_schedulers",
    "amp",
    "arch",
    "config",
)
SAFETENSORS_NAMES = ("model.safetensors",)


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint's tensors and what came with them.

    Attributes:
        tensors: {name: np.ndarray} in the file's own key names (container
            unwrapped, `module.` prefix removed), in file order.
        path: the file read.
        format: "torch" or "safetensors".
        config: the JSON config beside a safetensors file (HF config.json),
            or None.
        container_keys: top-level keys of a torch container (e.g.
            ["meta", "state_dict"]); [] for a bare state dict.
        meta: the container's "meta" entry, if any.
        stripped_prefix: the prefix removed from every key ("module." for a
            DataParallel save), or "".
    """

    tensors: dict
    path: str
    format: str
    config: Optional[dict] = None
    container_keys: list = dataclasses.field(default_factory=list)
    meta: Any = None
    stripped_prefix: str = ""


# ----------------------------------------------------------------- tensors
def to_numpy(value):
    """A torch tensor / NumPy array / scalar as a NumPy array.

    bfloat16 and float16 become float32; integer and bool dtypes are kept.
    """
    if hasattr(value, "detach"):  # torch.Tensor
        import torch

        tensor = value.detach().cpu()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        return tensor.numpy()
    array = np.asarray(value)
    if array.dtype == np.float16 or array.dtype.name.startswith(("bfloat16", "float8")):
        array = array.astype(np.float32)  # ml_dtypes bfloat16 (when TF/JAX registered it) too
    return array


def _is_tensor(value):
    if isinstance(value, np.ndarray):
        return True
    return type(value).__module__.startswith("torch") and hasattr(value, "shape") and hasattr(value, "dtype")


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


def _torch_load(path):
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
    fmt = sniff_format(path)
    if fmt == "safetensors":
        _safetensors_extent(path)
    elif fmt != "torch_zip":
        _torch_load(path)


def _safetensors_extent(path):
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


def unwrap_state_dict(obj, path="checkpoint"):
    """The flat {name: tensor} dict inside a training container.

    Accepts a bare state dict or a dict holding one under `STATE_DICT_KEYS`
    (nested containers such as {'model': {'state_dict': ...}} too); other
    top-level entries (meta, optimizer, epoch, ...) are ignored.

    Returns:
        (state_dict, container_keys, meta)
    """
    if not isinstance(obj, dict):
        if hasattr(obj, "state_dict") and callable(obj.state_dict):
            raise CheckpointError(
                f"{path} holds a pickled model object, not a state dict; save model.state_dict() instead."
            )
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a dict of tensors.")
    container_keys, meta = [], None
    current = obj
    for _ in range(3):
        tensors = [k for k, v in current.items() if _is_tensor(v)]
        if tensors and len(tensors) >= len(current) - sum(1 for k in current if k in NON_WEIGHT_KEYS):
            break
        inner = next((k for k in STATE_DICT_KEYS if isinstance(current.get(k), dict)), None)
        if inner is None:
            break
        if not container_keys:
            container_keys = list(current.keys())
            meta = current.get("meta")
        current = current[inner]
    state_dict = {k: v for k, v in current.items() if _is_tensor(v)}
    if not state_dict:
        raise CheckpointError(
            f"{path} holds no tensors; expected a state dict, optionally inside a container with one of "
            f"the keys {list(STATE_DICT_KEYS)}. Top-level keys: {sorted(map(str, obj.keys()))[:20]}."
        )
    return state_dict, container_keys, meta


def strip_prefix(state_dict, prefix="module."):
    """Remove `prefix` from the keys when every key has it (DataParallel)."""
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}, prefix
    return dict(state_dict), ""


def _read_safetensors(path):
    from safetensors import safe_open

    tensors = {}
    try:
        with safe_open(path, framework="np") as f:
            for key in f.keys():
                tensors[key] = to_numpy(f.get_tensor(key))
        return tensors
    except (TypeError, ValueError):  # e.g. bfloat16, which NumPy cannot hold
        pass
    with safe_open(path, framework="pt") as f:
        for key in f.keys():
            tensors[key] = to_numpy(f.get_tensor(key))
    return tensors


def _read_json_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); the config.json "
            "beside the checkpoint is corrupt. Download it again."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"Could not read {path}: {error}.") from None


def read_checkpoint(path):
    """Read a reference checkpoint into NumPy arrays.

    Args:
        path: a `.pth`/`.pt`/`.bin`/`.ckpt` torch file, a `.safetensors`
            file, or a directory holding `model.safetensors` (an HF model
            folder; `config.json` beside it is read too).

    Returns:
        A `Checkpoint`.

    Raises:
        FileNotFoundError: no such file / no weights in the directory.
        CheckpointError: the file cannot be read as a checkpoint.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        candidates = [n for n in SAFETENSORS_NAMES if os.path.exists(os.path.join(path, n))]
        if not candidates:
            candidates = sorted(n for n in os.listdir(path) if n.endswith(".safetensors"))
        if not candidates:
            torch_files = sorted(n for n in os.listdir(path) if n.endswith((".pth", ".pt", ".bin")))
            if len(torch_files) == 1:
                return read_checkpoint(os.path.join(path, torch_files[0]))
            raise FileNotFoundError(
                f"No model.safetensors (or single .pth/.bin file) in directory {path}."
            )
        if len(candidates) > 1:
            raise CheckpointError(
                f"{path} holds several safetensors files {candidates} (a sharded checkpoint?); "
                "pass the file to convert."
            )
        path = os.path.join(path, candidates[0])
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    if path.endswith(".safetensors") or sniff_format(path) == "safetensors":
        _safetensors_extent(path)  # names an empty / truncated / non-safetensors file
        try:
            tensors = _read_safetensors(path)
        except Exception as error:  # safetensors raises its own error types
            raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from None
        tensors, prefix = strip_prefix(tensors)
        config = None
        config_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
        if os.path.exists(config_path):
            config = _read_json_config(config_path)
        return Checkpoint(tensors=tensors, path=path, format="safetensors", config=config, stripped_prefix=prefix)
    obj = _torch_load(path)
    state_dict, container_keys, meta = unwrap_state_dict(obj, path)
    state_dict, prefix = strip_prefix(state_dict)
    tensors = {k: to_numpy(v) for k, v in state_dict.items()}
    return Checkpoint(
        tensors=tensors,
        path=path,
        format="torch",
        container_keys=container_keys,
        meta=meta,
        stripped_prefix=prefix,
    )


def list_keys(path):
    """Tensor names of a checkpoint (container unwrapped, `module.` removed).

    Reads only the header of a safetensors file; a torch file is loaded
    (memory-mapped where the format allows) but no tensor is converted.
    """
    path = os.fspath(path)
    if os.path.isdir(path) or path.endswith(".safetensors"):
        if os.path.isdir(path):
            return list(read_checkpoint(path).tensors)
        if not os.path.exists(path):
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        return list(strip_prefix(dict.fromkeys(_safetensors_extent(path)))[0])
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    state_dict, _, _ = unwrap_state_dict(_torch_load(path), path)
    return list(strip_prefix(state_dict)[0])


def load_state_dict(path):
    """{name: np.ndarray} of a checkpoint file (see `read_checkpoint`)."""
    return read_checkpoint(path).tensors


# ------------------------------------------------------------------ families
# (family, description, predicate over the key set). First match wins, so
# the more specific patterns come first.
def _any(keys, pattern):
    regex = re.compile(pattern)
    return any(regex.search(k) for k in keys)


FAMILY_SIGNATURES = (
    ("vitpose_plus", "a ViTPose++ (ViTAE-Transformer multi-dataset, experts) checkpoint",
     lambda k: _any(k, r"^backbone\.blocks\.\d+\.mlp\.experts\.") or _any(k, r"^associate_keypoint_heads\.")),
    ("vitpose", "a ViTPose (ViTAE-Transformer / mmpose 0.x) checkpoint",
     lambda k: _any(k, r"^backbone\.blocks\.\d+\.attn\.qkv\.")),
    ("vitpose_mmpose", "an mmpose 1.x ViTPose checkpoint",
     lambda k: _any(k, r"^backbone\.layers\.\d+\.(ln1|attn\.qkv)\.")),
    ("vitpose_hf", "a Hugging Face VitPose checkpoint",
     lambda k: _any(k, r"^backbone\.encoder\.layer\.\d+\.attention\.") or _any(k, r"^backbone\.embeddings\.")),
    ("pytorch_cpn", "a CPN (pytorch-cpn, ResNet + GlobalNet + RefineNet) checkpoint",
     lambda k: _any(k, r"(^|\.)global_net\.") or _any(k, r"(^|\.)refine_net\.")),
    ("pytorch_openpose", "an OpenPose body model (pytorch-openpose body_pose_model.pth)",
     lambda k: _any(k, r"^model\d(_\d)?\.") or _any(k, r"conv\d_\d_CPM|Mconv\d_stage\d")),
    ("hourglass", "a Stacked Hourglass checkpoint",
     lambda k: _any(k, r"(^|\.)hg\.\d+\.") or _any(k, r"hourglass")),
    ("cpm", "a Convolutional Pose Machines checkpoint",
     lambda k: _any(k, r"^backbone\.cpm_stages\.\d+\.") or _any(k, r"conv\d_stage\d")),
    ("rtmo", "an RTMO / RTMPose (mmpose CSPNeXt) checkpoint",
     lambda k: _any(k, r"^backbone\.stem\.\d+\.conv\.") or _any(k, r"^head\.(dcc|yolo|gau)")),
    ("hrnet", "an HRNet checkpoint", lambda k: _any(k, r"(^|\.)transition\d\.") or _any(k, r"stage\d\.\d+\.branches")),
    ("resnet", "a ResNet (torchvision / SimpleBaseline) checkpoint",
     lambda k: _any(k, r"(^|\.)layer[1-4]\.\d+\.conv[12]\.weight$")),
)


def guess_family(keys):
    """(family id, description) of the model family `keys` look like, or (None, None)."""
    keys = list(keys)
    for family, description, predicate in FAMILY_SIGNATURES:
        if predicate(keys):
            return family, description
    return None, None


# ------------------------------------------------------------------ accountant
def _shape_str(shape):
    return "(" + ", ".join("?" if s is None else str(int(s)) for s in shape) + ")"


def companion_keys(key):
    """1-D tensors that record the output channels of the weight `key`.

    `<m>.weight` -> `<m>.bias`; `<m>.conv.weight` -> `<m>.bn.weight`;
    `<m>.convN.weight` -> `<m>.bnN.weight`; `<m>.N.weight` (a Sequential's
    conv) -> `<m>.<N+1>.weight` (its BatchNorm).
    """
    if not key.endswith(".weight"):
        return []
    module = key[: -len(".weight")]
    out = [module + ".bias"]
    head, _, leaf = module.rpartition(".")
    prefix = head + "." if head else ""
    if leaf == "conv":
        out.append(prefix + "bn.weight")
    elif re.fullmatch(r"conv\d+", leaf):
        out.append(prefix + "bn" + leaf[4:] + ".weight")
    elif leaf.isdigit():
        out.append(f"{prefix}{int(leaf) + 1}.weight")
    return out


def out_channels(tensors, key):
    """Output channels of the weight `key` (PyTorch layout, axis 0).

    Read from a 1-D companion (its bias or the BatchNorm after it, see
    `companion_keys`) where the checkpoint has one, so a transposed or
    corrupt weight does not change the architecture inferred from the file:
    the model is built as the rest of the file says and the odd tensor is
    reported as misshapen, in the checkpoint's layout.
    """
    for other in companion_keys(key):
        value = tensors.get(other)
        if value is not None and len(getattr(value, "shape", ())) == 1:
            return int(value.shape[0])
    return int(tensors[key].shape[0])


def _shape_matches(actual, expected):
    if expected is None:
        return True
    if len(actual) != len(expected):
        return False
    return all(e is None or int(a) == int(e) for a, e in zip(actual, expected))


class KeyAccountant:
    """Pops a checkpoint's tensors as a converter consumes them.

    Every tensor must be consumed (`pop`) or explicitly ignored (`ignore`,
    or `ignore=` patterns at construction: fnmatch patterns such as
    "*.num_batches_tracked" or "backbone.cls_token"). `finish()` raises one
    `CheckpointError` listing all missing, unexpected and misshapen tensors.

    Args:
        tensors: {name: array} (e.g. `Checkpoint.tensors`).
        source: the checkpoint's path or name, for messages.
        family: the family the converter expects (e.g. "vitpose"); a hint
            names the family the keys look like when it differs.
        ignore: fnmatch patterns of tensors to drop silently.
        family_aliases: family ids that count as the expected one (e.g.
            vitpose converters accept "vitpose_plus", "vitpose_hf", ...).
    """

    def __init__(self, tensors, source="checkpoint", family=None, ignore=(), family_aliases=()):
        self.source = str(source)
        self.family = family
        self.family_aliases = set(family_aliases) | ({family} if family else set())
        self._all_keys = list(tensors.keys())
        self._remaining = dict(tensors)
        self.missing = []  # (key, expected shape or None)
        self.misshapen = []  # (key, actual shape, expected shape)
        self.nonfinite = []  # (key, shape, NaN count, Inf count)
        self.ignored = []
        self.consumed = []
        for pattern in ignore:
            self.ignore(pattern)

    # -- queries
    def __contains__(self, key):
        return key in self._remaining

    def __len__(self):
        return len(self._remaining)

    def keys(self, prefix=""):
        """Remaining keys starting with `prefix`, in file order."""
        return [k for k in self._remaining if k.startswith(prefix)]

    @property
    def all_keys(self):
        """Every key of the checkpoint (consumed or not)."""
        return list(self._all_keys)

    def peek(self, key):
        """The array for `key` without consuming it (None if absent)."""
        return self._remaining.get(key)

    def shape(self, key):
        value = self._remaining.get(key)
        return None if value is None else tuple(value.shape)

    # -- consumption
    def pop(self, key, shape=None, optional=False):
        """Consume `key`; returns its array, or None if missing / misshapen.

        Args:
            key: tensor name.
            shape: expected shape (None entries match any size), or None.
            optional: a missing key is not an error.
        """
        if key not in self._remaining:
            if not optional:
                self.missing.append((key, None if shape is None else tuple(shape)))
            return None
        value = self._remaining.pop(key)
        self.consumed.append(key)
        if not _shape_matches(value.shape, shape):
            self.misshapen.append((key, tuple(value.shape), tuple(shape)))
            return None
        self._check_finite(key, value)
        return value

    def _check_finite(self, key, value):
        array = np.asarray(value)
        if array.dtype.kind not in "fc" or np.isfinite(array).all():
            return
        nan = int(np.isnan(array).sum())
        self.nonfinite.append((key, tuple(array.shape), nan, int(array.size - nan - np.isfinite(array).sum())))

    def ignore(self, pattern):
        """Drop every remaining tensor whose name matches `pattern` (fnmatch)."""
        for key in [k for k in self._remaining if fnmatch.fnmatchcase(k, pattern)]:
            self._remaining.pop(key)
            self.ignored.append(key)

    def mark_missing(self, key, shape=None):
        """Record a tensor the model needs that the checkpoint lacks."""
        self.missing.append((key, None if shape is None else tuple(shape)))

    # -- reporting
    @property
    def unexpected(self):
        return [(k, tuple(v.shape)) for k, v in self._remaining.items()]

    @property
    def ok(self):
        return not (self.missing or self.misshapen or self._remaining or self.nonfinite)

    def family_hint(self):
        """A sentence naming the family the keys look like, if not the expected one."""
        family, description = guess_family(self._all_keys)
        if family is None:
            return (
                "The keys do not look like any supported model family; first keys: "
                + ", ".join(self._all_keys[:5])
                + "."
            )
        if family in self.family_aliases:
            return None
        return f"The keys look like {description} (family {family!r}), not a {self.family} checkpoint."

    def report(self, what=None):
        """The error message (empty string if everything was accounted for).

        Shapes are the checkpoint's (PyTorch layout: Linear (out, in), Conv2d
        (out, in, kh, kw)), for what the file holds and what the model needs.
        """
        if self.ok:
            return ""
        target = what or (f"{self.family} model" if self.family else "model")
        lines = []
        if self.missing or self._remaining or self.misshapen:
            lines.append(f"Checkpoint {self.source} does not match the {target}:")
        if self.missing:
            lines.append(f"  missing ({len(self.missing)}):")
            lines += [
                f"    {k}" + (f" expected {_shape_str(s)}" if s is not None else "") for k, s in self.missing
            ]
        if self._remaining:
            lines.append(f"  unexpected ({len(self._remaining)}):")
            lines += [f"    {k} {_shape_str(s)}" for k, s in self.unexpected]
        if self.misshapen:
            lines.append(f"  misshapen ({len(self.misshapen)}):")
            for k, a, e in self.misshapen:
                line = f"    {k}: checkpoint {_shape_str(a)}, model expects {_shape_str(e)}"
                if None not in e and sorted(a) == sorted(e):
                    line += " (the same sizes in another order: transposed?)"
                lines.append(line)
        if self.nonfinite:
            if not lines:
                lines.append(f"Checkpoint {self.source} holds NaN or Inf values, which would make every prediction "
                             "of the model meaningless:")
            lines.append(f"  non-finite ({len(self.nonfinite)}):")
            lines += [
                f"    {k} {_shape_str(s)}: {nan} NaN, {inf} Inf" for k, s, nan, inf in self.nonfinite
            ]
            lines.append("  fix: the file is corrupt, or it was saved after training diverged; download it again "
                         "or use another checkpoint.")
        if self.missing or self._remaining or self.misshapen:
            hint = self.family_hint()
            if hint:
                lines.append("  hint: " + hint)
        return "\n".join(lines)

    def finish(self, what=None):
        """Raise `CheckpointError` unless every tensor was accounted for."""
        if not self.ok:
            raise CheckpointError(self.report(what))
