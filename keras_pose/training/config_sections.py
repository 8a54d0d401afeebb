"""Checks of the optional training-config sections: distillation, the papers' recipes, distribution.

`config_schema` (the schema and its documentation) calls these; each fills
in defaults and names the first bad key, like the rest of the schema.
"""

import os

from keras_pose.training.config_values import (
    REQUIRED,
    as_bool,
    as_choice,
    as_float,
    as_int,
    as_str,
    check_keys,
    fail,
    looks_like_path,
    merge_defaults,
    optional_section,
    require,
)

_DISTILLATION_KEYS = {"teacher": REQUIRED, "type": "output", "weight": 1.0, "token_epochs": 1}


def validate_distillation(raw, base_dir):
    """The ``distillation`` section (keras_pose.training.distillation)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        fail("distillation", f"must be a mapping {{teacher, type, weight}} or null, got {raw!r}.")
    check_keys(raw, _DISTILLATION_KEYS, "distillation")
    d = merge_defaults(_DISTILLATION_KEYS, raw)
    require(d, "distillation")
    teacher = as_str(d["teacher"], "distillation.teacher")
    candidate = os.path.abspath(os.path.join(base_dir, os.path.expanduser(teacher)))
    if os.path.isdir(candidate):
        teacher = candidate
    elif looks_like_path(teacher):
        fail("distillation.teacher", f"names a folder that does not exist: {candidate!r} (give a preset "
              "directory or a registered preset name).")
    from keras_pose.training.distillation import DISTILLATION_TYPES

    kind = as_choice(d["type"], "distillation.type", DISTILLATION_TYPES)
    return {"teacher": teacher, "type": kind, "weight": as_float(d["weight"], "distillation.weight", minimum=0),
            "token_epochs": as_int(d["token_epochs"], "distillation.token_epochs", minimum=1)}


def patterns(value, key):
    """A list of variable-path regular expressions, each checked."""
    import re

    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) and p for p in value):
        fail(key, f"must be a list of variable-path patterns (regular expressions), got {value!r}.")
    for p in value:
        try:
            re.compile(p)
        except re.error as error:
            fail(key, f"pattern {p!r} is not a regular expression ({error}).")
    return list(value)


def validate_recipes(t, opt):
    """train.optimizer.layer_decay / no_weight_decay, train.ema, train.freeze."""
    decay = opt["layer_decay"]
    if decay != "auto":
        opt["layer_decay"] = as_float(decay, "train.optimizer.layer_decay", 0.0, 1.0, allow_none=True, strict_min=True)
    opt["no_weight_decay"] = patterns(opt["no_weight_decay"] or [], "train.optimizer.no_weight_decay")
    ema = t["ema"]
    if ema is True:
        ema = {}
    if ema is not None and ema is not False:
        check_keys(ema, {"momentum": 0.0002, "gamma": 2000}, "train.ema")
        ema = merge_defaults({"momentum": 0.0002, "gamma": 2000}, ema)
        ema["momentum"] = as_float(ema["momentum"], "train.ema.momentum", 0.0, 1.0, strict_min=True)
        if ema["momentum"] >= 1.0:
            fail("train.ema.momentum", "must be below 1 (the weight of the new weights; mmpose RTMO: 0.0002).")
        ema["gamma"] = as_float(ema["gamma"], "train.ema.gamma", 0.0, strict_min=True)
    t["ema"] = ema or None
    t["freeze"] = patterns(t["freeze"] or [], "train.freeze")


_DISTRIBUTION_KEYS = {"kind": REQUIRED, "mesh": None, "coordinator": None, "num_processes": None, "process_id": None,
                      "sync_batch_norm": True}


def validate_distribution(raw):
    """``train.distribution`` (keras_pose.training.distribution)."""
    d = optional_section(raw, _DISTRIBUTION_KEYS, "train.distribution", "kind", "null, data, model or a mapping")
    if d is None:
        return None
    d["kind"] = as_choice(d["kind"], "train.distribution.kind", ("data", "model"))
    if d["mesh"] is not None:
        d["mesh"] = str(d["mesh"])
    if d["coordinator"] is not None:
        d["coordinator"] = as_str(d["coordinator"], "train.distribution.coordinator")
        if ":" not in d["coordinator"]:
            fail("train.distribution.coordinator", f"must be HOST:PORT, got {d['coordinator']!r}.")
    d["sync_batch_norm"] = as_bool(d["sync_batch_norm"], "train.distribution.sync_batch_norm")
    d["num_processes"] = as_int(d["num_processes"], "train.distribution.num_processes", allow_none=True)
    d["process_id"] = as_int(d["process_id"], "train.distribution.process_id", minimum=0, allow_none=True)
    if d["process_id"] is not None and d["num_processes"] is not None and d["process_id"] >= d["num_processes"]:
        fail("train.distribution.process_id", f"must be below num_processes ({d['num_processes']}), got "
              f"{d['process_id']}.")
    return d


__all__ = ["patterns", "validate_distillation", "validate_distribution", "validate_recipes"]
