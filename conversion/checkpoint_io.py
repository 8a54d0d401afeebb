"""Reading reference checkpoints: the one tensor reader of keras-pose.

`read_checkpoint(checkpoint)` takes a PyTorch `.pth` / `.pt` / `.bin` file (the
zip format and the legacy non-zip `torch.save(...,
_use_new_zipfile_serialization=False)` format, always with
`torch.load(weights_only=True)`, see `file_formats.torch_load`), a
`.safetensors` file (with the `config.json` beside it, if any), a directory
holding one checkpoint (an HF model folder: `model.safetensors` + `config.json`),
or an in-memory state dict (a mapping of torch tensors / NumPy arrays). The
training container is unwrapped (`{'state_dict'}`, `{'meta', 'state_dict'}`,
`{'epoch', 'state_dict', 'optimizer'}`, `{'model'}`, ...), a DataParallel
`module.` prefix is removed, and every tensor becomes a NumPy array (bfloat16 /
float16 -> float32). Converters read through it, then account for every tensor
with `key_accountant.KeyAccountant`.
"""

import dataclasses
import os
from typing import Any, Optional

import numpy as np

from keras_pose.conversion.caffe_io import CAFFE_SUFFIX, read_caffemodel
from keras_pose.conversion.file_formats import safetensors_names, sniff_format, torch_load
from keras_pose.errors import CheckpointError
from keras_pose.utils.json_files import read_json

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
# In a folder, these are the checkpoint; otherwise the one file with a checkpoint suffix.
MAIN_FILE_NAMES = ("model.safetensors", "pytorch_model.bin")
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".tar", ".caffemodel")


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint's tensors and what came with them.

    Attributes:
        tensors: {name: np.ndarray} in the file's own key names (container
            unwrapped, `module.` prefix removed), in file order.
        path: the file read ("state dict" for a mapping).
        format: "torch", "safetensors", "caffe" (a binary `.caffemodel`,
            `caffe_io.read_caffemodel`: tensors `<layer>.weight|bias`) or
            "mapping".
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


def checkpoint_file(path):
    """The checkpoint file `path` names: the file itself, or the one checkpoint in a folder.

    In a folder (HF layout) `model.safetensors` / `pytorch_model.bin`, else the
    only file with a checkpoint suffix (`CHECKPOINT_SUFFIXES`).

    Raises:
        FileNotFoundError: no such file, or no checkpoint in the folder.
        CheckpointError: several checkpoint files in the folder.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        return path
    for name in MAIN_FILE_NAMES:
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, name)
    found = sorted(f for f in os.listdir(path) if f.endswith(CHECKPOINT_SUFFIXES) and not f.startswith("."))
    if len(found) == 1:
        return os.path.join(path, found[0])
    if not found:
        raise FileNotFoundError(f"No model.safetensors (or single .pth / .bin checkpoint file) in directory {path}.")
    raise CheckpointError(
        f"Folder {path!r} holds {len(found)} checkpoint files ({found}; a sharded checkpoint?); pass the "
        "checkpoint file itself."
    )


def is_mapping(checkpoint):
    """True for an in-memory state dict (a mapping), False for a path."""
    return hasattr(checkpoint, "keys") and not isinstance(checkpoint, (str, bytes, os.PathLike))


def _is_safetensors(path):
    return path.endswith(".safetensors") or sniff_format(path) == "safetensors"


def read_checkpoint(checkpoint):
    """Read a reference checkpoint into NumPy arrays.

    Args:
        checkpoint: a `.pth`/`.pt`/`.bin`/`.ckpt` torch file, a
            `.safetensors` file, a directory holding one (an HF model folder;
            `config.json` beside the file is read too), a state dict mapping,
            or a `Checkpoint` (returned as is).

    Returns:
        A `Checkpoint`.

    Raises:
        FileNotFoundError: no such file / no weights in the directory.
        CheckpointError: the file cannot be read as a checkpoint.
    """
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if is_mapping(checkpoint):
        state_dict, container_keys, meta = unwrap_state_dict(dict(checkpoint), "state dict")
        state_dict, prefix = strip_prefix(state_dict)
        tensors = {k: to_numpy(v) for k, v in state_dict.items()}
        return Checkpoint(tensors, "state dict", "mapping", container_keys=container_keys, meta=meta,
                          stripped_prefix=prefix)
    path = checkpoint_file(checkpoint)
    if path.endswith(CAFFE_SUFFIX):
        tensors, layer_types = read_caffemodel(path)
        return Checkpoint(tensors=tensors, path=path, format="caffe", meta={"caffe_layer_types": layer_types})
    if _is_safetensors(path):
        safetensors_names(path)  # names an empty / truncated / non-safetensors file
        try:
            tensors = _read_safetensors(path)
        except Exception as error:  # safetensors raises its own error types
            raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from None
        tensors, prefix = strip_prefix(tensors)
        config = None
        config_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
        if os.path.exists(config_path):
            config = read_json(config_path, CheckpointError,
                               "the config.json beside the checkpoint is corrupt. Download it again.")
        return Checkpoint(tensors=tensors, path=path, format="safetensors", config=config, stripped_prefix=prefix)
    state_dict, container_keys, meta = unwrap_state_dict(torch_load(path), path)
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


def list_keys(checkpoint):
    """Tensor names of a checkpoint (container unwrapped, `module.` removed).

    Reads only the header of a safetensors file; a torch file is loaded
    (memory-mapped where the format allows) but no tensor is converted.
    """
    if is_mapping(checkpoint) or isinstance(checkpoint, Checkpoint):
        return list(read_checkpoint(checkpoint).tensors)
    path = checkpoint_file(checkpoint)
    if path.endswith(CAFFE_SUFFIX):
        return list(read_caffemodel(path)[0])
    if _is_safetensors(path):
        return list(strip_prefix(dict.fromkeys(safetensors_names(path)))[0])
    state_dict, _, _ = unwrap_state_dict(torch_load(path), path)
    return list(strip_prefix(state_dict)[0])


def load_state_dict(path):
    """{name: np.ndarray} of a checkpoint file (see `read_checkpoint`)."""
    return read_checkpoint(path).tensors


__all__ = [
    "Checkpoint",
    "checkpoint_file",
    "is_mapping",
    "list_keys",
    "load_state_dict",
    "read_checkpoint",
    "strip_prefix",
    "to_numpy",
    "unwrap_state_dict",
]
