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
- `KeyAccountant`: converters pop the tensors they consume (checking shapes);
  `finish()` raises one `CheckpointError` listing every missing, unexpected
  and misshapen tensor, with shapes, plus a hint naming the model family the
  keys look like when they look like another family's.
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


def _torch_load(path):
    """`torch.load(weights_only=True)`, allowing plain NumPy arrays in metadata."""
    try:
        import torch
    except ImportError as error:  # pragma: no cover - torch is a convert dependency
        raise CheckpointError(
            f"Reading {path} needs PyTorch: pip install 'keras-pose[convert]' (or the CPU torch wheel)."
        ) from error
    import pickle

    def load():
        try:  # zip format: memory-mapped, tensors are read when converted
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error) and "zip" not in str(error):
                raise
        return torch.load(path, map_location="cpu", weights_only=True)  # legacy non-zip format

    try:
        return load()
    except pickle.UnpicklingError as error:
        message = str(error)
        if "numpy" not in message:
            raise CheckpointError(_unsafe_global_message(path, message)) from error
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return load()
    except pickle.UnpicklingError as error:
        raise CheckpointError(_unsafe_global_message(path, str(error))) from error


def _unsafe_global_message(path, message):
    match = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    what = f" ({match.group(1)})" if match else ""
    return (
        f"{path} holds a Python object{what} that torch.load(weights_only=True) refuses to unpickle. "
        "keras-pose never unpickles arbitrary objects. If you trust the file, re-save only its "
        "weights: torch.save({'state_dict': torch.load(path, weights_only=False)['state_dict']}, "
        "'weights_only.pth') and convert that."
    )


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
    if path.endswith(".safetensors"):
        try:
            tensors = _read_safetensors(path)
        except Exception as error:  # safetensors raises its own error types
            raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error
        tensors, prefix = strip_prefix(tensors)
        config = None
        config_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
        if os.path.exists(config_path):
            with open(config_path) as f:
                config = json.load(f)
        return Checkpoint(tensors=tensors, path=path, format="safetensors", config=config, stripped_prefix=prefix)
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"{") or head[:1] == b"\x89":  # JSON / HDF5 by mistake
        raise CheckpointError(f"{path} is not a PyTorch checkpoint.")
    try:
        obj = _torch_load(path)
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(f"{path} could not be read with torch.load: {error}") from error
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
        from safetensors import safe_open

        with safe_open(path, framework="np") as f:
            return list(strip_prefix(dict.fromkeys(f.keys()))[0])
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
        return value

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
        return not (self.missing or self.misshapen or self._remaining)

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
        """The error message (empty string if everything was accounted for)."""
        if self.ok:
            return ""
        target = what or (f"{self.family} model" if self.family else "model")
        lines = [f"Checkpoint {self.source} does not match the {target}:"]
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
            lines += [
                f"    {k}: checkpoint {_shape_str(a)}, model expects {_shape_str(e)}" for k, a, e in self.misshapen
            ]
        hint = self.family_hint()
        if hint:
            lines.append("  hint: " + hint)
        return "\n".join(lines)

    def finish(self, what=None):
        """Raise `CheckpointError` unless every tensor was accounted for."""
        if not self.ok:
            raise CheckpointError(self.report(what))
