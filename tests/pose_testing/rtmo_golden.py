"""The RTMO golden case (tests/golden/rtmo/rtmo_s_coco): its meta.json and its synthetic checkpoint file."""

import importlib.util
import json

import numpy as np

from pose_testing.paths import GOLDEN_DIR

CASE_DIR = GOLDEN_DIR / "rtmo" / "rtmo_s_coco"


def meta():
    with open(CASE_DIR / "meta.json") as f:
        return json.load(f)


def _make_state_dict(meta):
    spec = importlib.util.spec_from_file_location("golden_make_state_dict", GOLDEN_DIR / "make_state_dict.py")
    msd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(msd)
    sd = msd.make_state_dict(msd.load_keys(CASE_DIR / "keys.json"), meta["seed"])
    for name, override in (meta.get("state_dict_overrides") or {}).items():
        sd[name] = np.asarray(override["values"], dtype=sd[name].dtype).reshape(sd[name].shape)
    for name, factor in (meta.get("state_dict_scales") or {}).items():
        sd[name] = (sd[name] * factor).astype(sd[name].dtype)
    return sd


def write_checkpoint(directory):
    """Save the case's synthetic checkpoint like the released file; returns its path."""
    import torch

    info = meta()
    layout = info["checkpoint_layout"]
    assert layout["state_dict_key"] == "state_dict" and "'meta'" in layout["container"]
    assert "_use_new_zipfile_serialization=False" in layout["container"]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _make_state_dict(info).items()}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / info["released_checkpoint"]["file"]
    torch.save({"meta": {"mmpose_version": "1.3.2"}, "state_dict": tensors}, path,
               _use_new_zipfile_serialization=False)
    return path
