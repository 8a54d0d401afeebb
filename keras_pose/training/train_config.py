"""Training from one config file: `train_from_config` and its schema.

A training run is described by a YAML (or JSON) file; `keras-pose train
CONFIG` and :func:`train_from_config` read it, check every key (an unknown
or malformed key is an error that names it), build the model, the
``tf.data`` pipeline, the optimizer with its learning-rate schedule and the
callbacks, train, and write the results::

    from keras_pose.training.train_config import load_train_config, train_from_config

    config = load_train_config("examples/train_config.yaml", overrides=["train.epochs=2"])
    result = train_from_config(config)
    result.preset_dir        # keras_pose.from_preset(result.preset_dir)
    result.history["loss"]   # per epoch

Schema (defaults in brackets; ``examples/train_config.yaml`` documents a
complete file). Relative paths in a file are relative to the file's folder;
paths given as overrides (``--set``, ``--output-dir``) are relative to the
working directory::

    model:
      preset:       preset name or preset directory to start from (its
                    weights are loaded) [null]
      architecture: task class to build when preset is null: ViTPose,
                    Hourglass, CPM, CPN [ViTPose]
      backbone:     backbone constructor arguments (architecture only),
                    e.g. {hidden_dim: 64, num_layers: 2, num_heads: 4,
                    mlp_dim: 128} [{}]; every key is checked against the
                    real arguments of keras_pose.<architecture>Backbone and
                    every value against the argument's type
      head:         task constructor arguments (architecture only), e.g.
                    {decoder: simple} [{}], checked likewise
      dataset:      ViTPose++ presets only: the dataset whose expert and head
                    are kept (fused into a plain ViTPose) [null]
      input_size:   [height, width] of the crops; required with
                    architecture, must match a preset's (null: the preset's)
    keypoints:      the keypoint spec: a built-in name (coco, mpii, ap10k,
                    ...), a spec file (.json/.yaml), or a COCO annotation file
                    whose category lists the keypoints; or a mapping
                    {spec: <one of those>, sigmas: [K values] | one value}
                    adding OKS sigmas (COCO AP needs them). null: the
                    preset's spec, else the training annotation file's
                    category (COCO format) [null]
    data:
      format:       coco (any COCO-format keypoint json) | mpii [coco]
      train:        {annotation_file (required), image_root (default: the
                    annotation file's folder)}
      val:          null, or {annotation_file, image_root, detections (COCO
                    results json of person boxes; default: ground-truth
                    boxes), min_detection_score [0.0]} [null]
      cache_images: false | encoded | decoded (keep the images in memory)
                    [false]
    train:
      batch_size:   crops per step [32]
      epochs:       [10]
      steps_per_epoch: null = one pass over the training set [null]
      augmentation: true (mmpose 1.x flip, half-body, scale/rotate, colour
                    jitter) | false | {stage: overrides or null} [true]
      optimizer:    {type: adam | adamw | sgd [adamw], weight_decay [0.1 for
                    adamw, else 0], momentum [0.9, sgd], clipnorm [null]}
      learning_rate:
                    a number, or {base [5e-4], schedule: constant | step |
                    cosine [cosine], warmup_steps [0] or warmup_epochs,
                    warmup_start_factor [0.001], milestones (epochs, step
                    schedule) [[]], gamma [0.1], min_factor (cosine end
                    fraction) [0.0]}
      seed:         int or null [0]
    evaluation:     (used when data.val is set)
      metric:       auto | coco | pck | pckh [auto: pckh for MPII, coco for
                    COCO-format files]
      every_n_epochs: [1] (the last epoch is always evaluated)
      flip_test:    null (the model's setting) | true | false [null]
      batch_size:   crops per forward pass [32]
      monitor:      the log key that picks the best checkpoint [val_coco_AP,
                    val_pck or val_pckh; "loss" without validation]
    output:
      dir:          output folder (required)
      overwrite:    when dir holds an earlier run (finished or not): start
                    over and move the earlier run to
                    dir/previous_runs/<its start time>/ (nothing is
                    deleted) [false]
      discard_previous_run:
                    when dir holds an earlier run: delete it, its
                    checkpoints and preset included [false]
      save:         best | last: the weights written to the preset [best]
      plot:         write training_curves.png [true]

Numbers are read as YAML 1.2 and Python write them, in files and ``--set``
values alike: ``1e-3``, ``1E-4``, ``5.e-4``, ``.5``, ``1_000`` (PyYAML's
YAML 1.1 reads ``1e-3`` as a string); a quoted number ("1e-3", e.g. from
JSON) is accepted for a numeric key too.

The output folder receives ``config.yaml`` (the resolved config),
``history.csv`` and ``history.json`` (per-epoch loss, learning rate and
validation metrics), ``checkpoints/best.weights.h5`` (best by ``monitor``;
``best.json`` says which epoch and value) and
``checkpoints/last.weights.h5`` (the last epoch's weights, rewritten after
every epoch; ``last.json``), ``preset/`` (load it with
``keras_pose.from_preset``), ``metrics.json`` (best and last evaluation)
and ``training_curves.png``. Every file is written atomically.

Nothing is lost: a folder that holds an earlier run (finished, killed or
diverged) is refused with a message that lists its checkpoints and preset,
unless ``output.overwrite`` (moves it aside) or
``output.discard_previous_run`` (deletes it) says what to do with it.
Training stops at the first NaN / Inf loss (`TrainingDivergedError`: the
epoch and step, and what to try): the weights of the last finite epoch stay
in ``last.weights.h5``, the best checkpoint is kept, and no preset or
``metrics.json`` is written.
"""

import copy
import csv
import dataclasses
import difflib
import io
import json
import math
import numbers
import os
import re
import shutil
import time

import keras

from keras_pose.errors import KerasPoseError
from keras_pose.utils.file_utils import atomic_directory, atomic_write


class TrainConfigError(KerasPoseError, ValueError):
    """A training config is malformed; the message names the key and the fix."""


ARCHITECTURES = ("ViTPose", "Hourglass", "CPM", "CPN")
FORMATS = ("coco", "mpii")
METRICS = ("auto", "coco", "pck", "pckh")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine")
CACHE_MODES = (False, "encoded", "decoded")

# Keys (dotted) whose values are file system paths: resolved against the
# config file's folder (file values) or the working directory (overrides).
PATH_KEYS = (
    "model.preset",
    "keypoints",
    "keypoints.spec",
    "data.train.annotation_file",
    "data.train.image_root",
    "data.val.annotation_file",
    "data.val.image_root",
    "data.val.detections",
    "output.dir",
)

# The schema: section -> {key: default}. `_REQUIRED` marks required keys.
_REQUIRED = object()
SCHEMA = {
    "model": {
        "preset": None,
        "architecture": "ViTPose",
        "backbone": {},
        "head": {},
        "dataset": None,
        "input_size": None,
    },
    "keypoints": None,
    "data": {
        "format": "coco",
        "train": {"annotation_file": _REQUIRED, "image_root": None},
        "val": None,
        "cache_images": False,
    },
    "train": {
        "batch_size": 32,
        "epochs": 10,
        "steps_per_epoch": None,
        "augmentation": True,
        "optimizer": {"type": "adamw", "weight_decay": None, "momentum": 0.9, "clipnorm": None},
        "learning_rate": {
            "base": 5e-4,
            "schedule": "cosine",
            "warmup_steps": 0,
            "warmup_epochs": None,
            "warmup_start_factor": 0.001,
            "milestones": [],
            "gamma": 0.1,
            "min_factor": 0.0,
        },
        "seed": 0,
    },
    "evaluation": {
        "metric": "auto",
        "every_n_epochs": 1,
        "flip_test": None,
        "batch_size": 32,
        "monitor": None,
    },
    "output": {"dir": _REQUIRED, "overwrite": False, "discard_previous_run": False, "save": "best", "plot": True},
}
_VAL_KEYS = {"annotation_file": _REQUIRED, "image_root": None, "detections": None, "min_detection_score": 0.0}
_KEYPOINT_KEYS = {"spec": _REQUIRED, "sigmas": None}


# ----------------------------------------------------------------- helpers
def _fail(key, message):
    raise TrainConfigError(f"train config: {key!r} {message}")


def _suggest(name, choices):
    choices = [str(c) for c in choices]
    same = [c for c in choices if c.lower() == str(name).lower()]
    close = same or difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_key(key, allowed, where, takes=None):
    """The error for a key of ``where`` that is not in ``allowed``."""
    full = f"{where}.{key}" if where else str(key)
    hint = _suggest(key, allowed)
    if isinstance(key, str) and ":" in key:
        # YAML reads `{hidden_dim:64}` (no space after the colon) as the key
        # "hidden_dim:64" with a null value.
        name, _, value = key.partition(":")
        hint = (f" (YAML reads {key!r} as one key: write a space after the colon, "
                f"{{{name.strip()}: {value.strip()}}})")
    return TrainConfigError(
        f"train config: unknown key {full!r}{hint}; {where or 'the top level'} takes "
        f"{takes or ', '.join(sorted(str(a) for a in allowed))}."
    )


def _check_keys(section, allowed, where):
    if not isinstance(section, dict):
        _fail(where, f"must be a mapping of {sorted(allowed)}, got {type(section).__name__} {section!r}.")
    for key in section:
        if key not in allowed:
            raise _unknown_key(key, allowed, where)


# Numbers as YAML 1.2 and Python write them: 1e-3, 1E-4, 5.e-4, .5, 1_000,
# +2 (YAML 1.1, which PyYAML follows, reads 1e-3 as a string and 010 as 8).
_DIGITS = r"[0-9](?:_?[0-9])*"
_INT_TEXT = re.compile(rf"^[-+]?{_DIGITS}$")
_FLOAT_TEXT = re.compile(rf"^[-+]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][-+]?{_DIGITS})?$")


def _number_from_text(value):
    """``"1e-3"`` -> 0.001, ``"1_000"`` -> 1000; anything else is returned as is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _INT_TEXT.match(text):
        return int(text.replace("_", ""), 10)
    if _FLOAT_TEXT.match(text):
        return float(text.replace("_", ""))
    return value


def _config_loader():
    """A ``yaml.SafeLoader`` that reads numbers as YAML 1.2 / Python do.

    Ints: ``[-+]?digits`` with ``_`` separators (``010`` is 10, not octal 8;
    no sexagesimal ``1:30``), ``0x``/``0o``/``0b`` forms. Floats: ``1e-3``,
    ``1E-4``, ``5.e-4``, ``.5``, ``1.0e+3``, ``.inf``, ``.nan``. Everything
    else (booleans, null, strings) as ``yaml.safe_load``.
    """
    import yaml

    global _CONFIG_LOADER
    if _CONFIG_LOADER is not None:
        return _CONFIG_LOADER

    class ConfigLoader(yaml.SafeLoader):
        pass

    number_tags = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ConfigLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in number_tags]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    int_text = re.compile(rf"^(?:[-+]?{_DIGITS}|[-+]?0x[0-9a-fA-F](?:_?[0-9a-fA-F])*|[-+]?0o[0-7](?:_?[0-7])*"
                          r"|[-+]?0b[01](?:_?[01])*)$")
    float_text = re.compile(rf"{_FLOAT_TEXT.pattern}|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")
    ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:int", int_text, list("-+0123456789"))
    ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", float_text, list("-+0123456789."))

    def construct_int(loader, node):
        text = loader.construct_scalar(node).replace("_", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        base = {"0x": 16, "0o": 8, "0b": 2}.get(text[:2].lower(), 10)
        return sign * int(text[2:] if base != 10 else text, base)

    def construct_float(loader, node):
        text = loader.construct_scalar(node).replace("_", "")
        special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
        return special[text.lower()] if text.lower() in special else float(text)

    ConfigLoader.add_constructor("tag:yaml.org,2002:int", construct_int)
    ConfigLoader.add_constructor("tag:yaml.org,2002:float", construct_float)
    _CONFIG_LOADER = ConfigLoader
    return ConfigLoader


_CONFIG_LOADER = None


def load_yaml_text(text):
    """Parse YAML text as the training config does (numbers as YAML 1.2 / Python).

    ``train.learning_rate.base: 1e-3`` is the number 0.001 (PyYAML's YAML
    1.1 reads it as a string), ``1_000`` is 1000, ``010`` is 10.
    """
    import yaml

    return yaml.load(text, Loader=_config_loader())  # noqa: S506 - a SafeLoader subclass


def _int(value, key, minimum=1, allow_none=False):
    if value is None and allow_none:
        return None
    value = _number_from_text(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            _fail(key, f"must be an integer >= {minimum}{' or null' if allow_none else ''}, got {value!r}.")
    if value < minimum:
        _fail(key, f"must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _float(value, key, minimum=None, maximum=None, allow_none=False, strict_min=False):
    if value is None and allow_none:
        return None
    value = _number_from_text(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        _fail(key, f"must be a number{' or null' if allow_none else ''}, got {value!r}.")
    value = float(value)
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        _fail(key, f"must be {'>' if strict_min else '>='} {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        _fail(key, f"must be <= {maximum}, got {value!r}.")
    return value


def _bool(value, key, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        _fail(key, f"must be true or false{' or null' if allow_none else ''}, got {value!r}.")
    return value


def _choice(value, key, choices):
    text = value.lower() if isinstance(value, str) else value
    lowered = {c.lower() if isinstance(c, str) else c: c for c in choices}
    if text not in lowered:
        _fail(key, f"must be one of {', '.join(str(c) for c in choices)}, got {value!r}{_suggest(value, choices)}.")
    return lowered[text]


def _str(value, key, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        _fail(key, f"must be a non-empty string{' or null' if allow_none else ''}, got {value!r}.")
    return value


# Value kinds of `_typed_value`: "int" (>= 0), "int+" (>= 1), "float", "bool",
# "str", "ints" / "floats" (lists), "mapping", "dtype" (a policy name or
# config); a trailing "?" allows null.
_KIND_TEXT = {
    "int": "an integer >= 0",
    "int+": "an integer >= 1",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "ints": "a list of integers",
    "floats": "a list of numbers",
    "mapping": "a mapping",
    "dtype": "a dtype policy name (e.g. float32, mixed_bfloat16)",
}


def _kind_of(default):
    """The value kind a default stands for (None: not known)."""
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, numbers.Integral):
        return "int"
    if isinstance(default, numbers.Real):
        return "float"
    if isinstance(default, str):
        return "str"
    if isinstance(default, (list, tuple)) and default:
        if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in default):
            return "ints"
        if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in default):
            return "floats"
    if isinstance(default, dict):
        return "mapping"
    return None


def _typed_value(value, default, key, kind=None):
    """``value`` checked (and numbers read from text) for the kind of ``default``.

    Args:
        value: the given value.
        default: the argument's default; its type sets the expected kind
            unless ``kind`` is given.
        key: the dotted key, for messages.
        kind: an explicit kind (see ``_KIND_TEXT``; "?" suffix: nullable).

    Returns:
        The value, numbers converted (``"1e-3"`` -> 0.001, ints for "int",
        floats for "float") and tuples as lists.
    """
    kind = kind or _kind_of(default)
    if kind is None:
        return value
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    expected = _KIND_TEXT[kind] + (" or null" if nullable else "")
    if value is None:
        if nullable:
            return None
        _fail(key, f"must be {expected}, got null (an empty value; in YAML write `key: value` with a space "
              "after the colon).")
    if kind in ("int", "int+"):
        value = _number_from_text(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
            _fail(key, f"must be {expected}, got {value!r}.")
        return _int(value, key, minimum=1 if kind == "int+" else 0)
    if kind == "float":
        return _float(value, key)
    if kind == "bool":
        return _bool(value, key)
    if kind == "str":
        if not isinstance(value, str):
            _fail(key, f"must be {expected}, got {value!r}.")
        return value
    if kind in ("ints", "floats"):
        if not isinstance(value, (list, tuple)):
            _fail(key, f"must be {expected}, got {value!r}.")
        item = "int" if kind == "ints" else "float"
        return [_typed_value(v, None, f"{key}[{i}]", item) for i, v in enumerate(value)]
    if kind == "mapping":
        if not isinstance(value, dict):
            _fail(key, f"must be {expected}, got {value!r}.")
        return value
    if kind == "dtype":
        if not isinstance(value, (str, dict)):
            _fail(key, f"must be {expected}, got {value!r}.")
        return value
    raise AssertionError(kind)


def _looks_like_path(value):
    return isinstance(value, str) and (
        "/" in value or os.sep in value or value.lower().endswith((".json", ".yaml", ".yml")) or value.startswith(".")
    )


def _resolve_path(value, base_dir, must_exist, key, kind="file"):
    """Absolute path of ``value`` relative to ``base_dir``; checks existence."""
    if value is None:
        return None
    value = _str(value, key)
    path = os.path.abspath(os.path.join(base_dir, os.path.expanduser(value)))
    if must_exist:
        exists = os.path.isdir(path) if kind == "folder" else os.path.isfile(path)
        if not exists:
            _fail(key, f"names a {kind} that does not exist: {path!r}.")
    return path


def _merge_defaults(defaults, given):
    out = {}
    for key, default in defaults.items():
        if key in given:
            out[key] = given[key]
        elif default is _REQUIRED:
            out[key] = _REQUIRED
        else:
            out[key] = copy.deepcopy(default)
    return out


def _require(section, where):
    for key, value in section.items():
        if value is _REQUIRED:
            _fail(f"{where}.{key}", "is required.")


# ----------------------------------------------------------- the config
@dataclasses.dataclass
class TrainConfig:
    """A validated training config: plain nested dicts, paths absolute.

    Build it with :func:`load_train_config` (file) or
    :meth:`TrainConfig.from_dict`; every value is checked and every default
    filled in. ``config.data["model"]["input_size"]`` and so on hold the
    validated values; ``to_dict()`` returns a copy (JSON/YAML-plain).
    """

    data: dict
    source: str = None
    raw: dict = dataclasses.field(default=None, repr=False)  # as given, for re-validation with overrides
    base_dir: str = None

    def __getitem__(self, key):
        return self.data[key]

    def get(self, dotted, default=None):
        """A value by dotted key (``config.get("train.epochs")``)."""
        node = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def to_dict(self):
        return copy.deepcopy(self.data)

    def to_yaml(self):
        """The config as YAML text (paths absolute)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_dict(cls, raw, base_dir=None, source=None):
        """Validate a raw config dict.

        Args:
            raw: the parsed YAML/JSON mapping.
            base_dir: folder relative paths are resolved against (default:
                the working directory).
            source: a label for messages (the file name).

        Raises:
            TrainConfigError: naming the first bad key.
        """
        base_dir = os.path.abspath(base_dir or os.getcwd())
        if not isinstance(raw, dict):
            raise TrainConfigError(
                f"train config{f' {source!r}' if source else ''} must be a mapping with sections "
                f"{', '.join(SCHEMA)}; got {type(raw).__name__}."
            )
        _check_keys(raw, SCHEMA, "")
        cfg = {
            "model": _validate_model(raw.get("model") or {}, base_dir),
            "keypoints": _validate_keypoints(raw.get("keypoints"), base_dir),
            "data": _validate_data(raw.get("data"), base_dir),
            "train": _validate_train(raw.get("train") or {}),
            "evaluation": None,
            "output": _validate_output(raw.get("output"), base_dir),
        }
        cfg["evaluation"] = _validate_evaluation(raw.get("evaluation") or {}, cfg["data"])
        model = cfg["model"]
        if model["preset"] is None:
            if model["input_size"] is None:
                _fail("model.input_size", f"is required when building model.architecture {model['architecture']!r} "
                      "(no preset): give [height, width], e.g. [256, 192].")
        else:
            for key in ("backbone", "head"):
                if model[key]:
                    _fail(f"model.{key}", "applies only when building model.architecture; a preset brings its own "
                          "architecture. Remove it, or set model.preset: null.")
        if cfg["keypoints"] is None and model["preset"] is None and cfg["data"]["format"] == "mpii":
            cfg["keypoints"] = {"spec": "mpii", "sigmas": None}
        return cls(cfg, source=source, raw=copy.deepcopy(raw), base_dir=base_dir)


# ---------------------------------------------- model constructor arguments
# The classes `model.backbone` / `model.head` are passed to, per architecture.
_MODEL_CLASSES = {
    "ViTPose": ("ViTPoseBackbone", "ViTPose"),
    "Hourglass": ("HourglassBackbone", "Hourglass"),
    "CPM": ("CPMBackbone", "CPM"),
    "CPN": ("CPNBackbone", "CPN"),
}
# Arguments the trainer sets itself: why they may not be given.
_RESERVED_ARGS = {
    "backbone": {
        "image_size": "is set from model.input_size; remove it.",
        "image_shape": "is set from model.input_size; remove it.",
        "num_keypoints": "is set from the keypoint spec (keypoints:); remove it.",
    },
    "head": {
        "backbone": "is built from model.backbone; remove it.",
        "keypoint_spec": "is set by the trainer (keypoints: sets the spec); remove it.",
        "num_keypoints": "is set by the trainer (keypoints: sets the spec); remove it.",
        "preprocessor": "is unused by keras-pose tasks; remove it.",
    },
}
# Kinds of arguments whose default (None, or none at all) does not tell.
_ARG_KINDS = {
    "hidden_dim": "int+",
    "num_layers": "int+",
    "num_heads": "int+",
    "mlp_dim": "int+",
    "patch_size": "int+",
    "center_map_sigma": "float?",
    "stackwise_num_blocks": "ints?",
    "refine_num_blocks": "ints?",
    "heatmap_size": "ints?",
    "preprocessing": "mapping?",
    "decoding": "mapping?",
    "loss": "mapping?",
    "dtype": "dtype?",
    "name": "str",
}
_ARG_CHOICES = {
    ("ViTPose", "decoder"): ("classic", "simple"),
    ("ViTPoseBackbone", "pos_embed_cls_slot"): ("add", "none"),
}


def constructor_arguments(cls):
    """``{name: default}`` of the keyword arguments ``cls(...)`` really takes.

    Walks ``cls.__init__`` and those of its keras-pose base classes (whose
    ``**kwargs`` it receives); ``name`` (Keras) is added. A required
    argument's default is ``inspect.Parameter.empty``. Keras models swallow
    unknown ``**kwargs`` silently, so this is the list to check keys against.
    """
    import inspect

    args = {}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("keras_pose"):
            break
        if "__init__" not in vars(klass):
            continue
        for param in inspect.signature(klass.__init__).parameters.values():
            if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            args.setdefault(param.name, param.default)
    args.setdefault("name", None)
    return args


def _validate_constructor_args(args, architecture, part):
    """``model.backbone`` / ``model.head`` checked against the real constructor.

    Every key must be an argument of the class (did-you-mean and the list of
    valid names otherwise), and every value of the argument's type.
    """
    import inspect

    import keras_pose

    class_name = _MODEL_CLASSES[architecture][0 if part == "backbone" else 1]
    accepted = constructor_arguments(getattr(keras_pose, class_name))
    reserved = _RESERVED_ARGS[part]
    allowed = [a for a in accepted if a not in reserved and not a.startswith("_")]
    where = f"model.{part}"
    out = {}
    for key, value in args.items():
        if key in reserved:
            _fail(f"{where}.{key}", reserved[key])
        if key not in allowed:
            raise _unknown_key(key, allowed, where, takes=f"the arguments of keras_pose.{class_name}: "
                               f"{', '.join(sorted(allowed))}")
        default = accepted[key]
        default = None if default is inspect.Parameter.empty else default
        value = _typed_value(value, default, f"{where}.{key}", _ARG_KINDS.get(key))
        choices = _ARG_CHOICES.get((class_name, key))
        if choices:
            value = _choice(value, f"{where}.{key}", choices)
        out[key] = value
    return out


def _validate_model(raw, base_dir):
    _check_keys(raw, SCHEMA["model"], "model")
    m = _merge_defaults(SCHEMA["model"], raw)
    preset = m["preset"]
    if preset is not None:
        preset = _str(preset, "model.preset")
        candidate = os.path.abspath(os.path.join(base_dir, os.path.expanduser(preset)))
        if os.path.isdir(candidate):
            preset = candidate
        elif _looks_like_path(preset):
            _fail("model.preset", f"names a folder that does not exist: {candidate!r} (give a preset directory or "
                  "a registered preset name; `keras-pose presets` lists them).")
    m["preset"] = preset
    m["architecture"] = _choice(m["architecture"], "model.architecture", ARCHITECTURES)
    for key in ("backbone", "head"):
        if m[key] is None:
            m[key] = {}
        if not isinstance(m[key], dict):
            _fail(f"model.{key}", f"must be a mapping of constructor arguments, got {m[key]!r}.")
        bad = [k for k in m[key] if not isinstance(k, str)]
        if bad:
            _fail(f"model.{key}", f"has non-string argument names {bad}.")
    if preset is None:
        # With a preset, `from_dict` refuses any backbone/head arguments.
        for key in ("backbone", "head"):
            m[key] = _validate_constructor_args(m[key], m["architecture"], key)
    m["dataset"] = _str(m["dataset"], "model.dataset", allow_none=True)
    size = m["input_size"]
    if size is not None:
        if isinstance(size, (list, tuple)):
            size = [_number_from_text(v) for v in size]
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 16 for v in size)
        ):
            _fail("model.input_size", f"must be [height, width] in pixels (integers >= 16), got {size!r}.")
        m["input_size"] = [int(v) for v in size]
    return m


def _validate_keypoints(raw, base_dir):
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"spec": raw}
    if not isinstance(raw, dict):
        _fail("keypoints", f"must be a spec name, a spec/annotation file, or {{spec, sigmas}}; got {raw!r}.")
    _check_keys(raw, _KEYPOINT_KEYS, "keypoints")
    k = _merge_defaults(_KEYPOINT_KEYS, raw)
    _require(k, "keypoints")
    spec = k["spec"]
    if isinstance(spec, dict):
        pass  # an inline KeypointSpec config
    else:
        spec = _str(spec, "keypoints.spec")
        if _looks_like_path(spec):
            spec = _resolve_path(spec, base_dir, True, "keypoints.spec")
    sigmas = _number_from_text(k["sigmas"])
    if sigmas is not None:
        if isinstance(sigmas, numbers.Real) and not isinstance(sigmas, bool):
            sigmas = _float(sigmas, "keypoints.sigmas", minimum=0, strict_min=True)
        elif isinstance(sigmas, (list, tuple)) and sigmas:
            sigmas = [_float(s, f"keypoints.sigmas[{i}]", minimum=0, strict_min=True) for i, s in enumerate(sigmas)]
        else:
            _fail("keypoints.sigmas", f"must be a positive number or a list of K positive numbers, got {sigmas!r}.")
    return {"spec": spec, "sigmas": sigmas}


def _validate_split(raw, base_dir, where, allowed):
    if isinstance(raw, str):
        raw = {"annotation_file": raw}
    _check_keys(raw, allowed, where)
    s = _merge_defaults(allowed, raw)
    _require(s, where)
    s["annotation_file"] = _resolve_path(s["annotation_file"], base_dir, True, f"{where}.annotation_file")
    if s["image_root"] is None:
        s["image_root"] = os.path.dirname(s["annotation_file"])
    else:
        s["image_root"] = _resolve_path(s["image_root"], base_dir, True, f"{where}.image_root", kind="folder")
    return s


def _validate_data(raw, base_dir):
    if raw is None:
        _fail("data", "is required: give data.train.annotation_file (and data.val for evaluation).")
    _check_keys(raw, SCHEMA["data"], "data")
    d = _merge_defaults(SCHEMA["data"], raw)
    d["format"] = _choice(d["format"], "data.format", FORMATS)
    if d["train"] is _REQUIRED or d["train"] is None:
        _fail("data.train", "is required: {annotation_file: FILE, image_root: FOLDER}.")
    d["train"] = _validate_split(d["train"], base_dir, "data.train", SCHEMA["data"]["train"])
    if d["val"] is not None:
        d["val"] = _validate_split(d["val"], base_dir, "data.val", _VAL_KEYS)
        d["val"]["detections"] = _resolve_path(d["val"]["detections"], base_dir, True, "data.val.detections")
        d["val"]["min_detection_score"] = _float(d["val"]["min_detection_score"], "data.val.min_detection_score", 0.0)
        if d["val"]["detections"] and d["format"] != "coco":
            _fail("data.val.detections", "applies to COCO-format data only (data.format: coco).")
    cache = d["cache_images"]
    if cache is True:
        cache = "decoded"
    if cache not in CACHE_MODES:
        _fail("data.cache_images", f"must be false, encoded or decoded, got {cache!r}.")
    d["cache_images"] = cache
    return d


def _validate_train(raw):
    _check_keys(raw, SCHEMA["train"], "train")
    t = _merge_defaults(SCHEMA["train"], raw)
    t["batch_size"] = _int(t["batch_size"], "train.batch_size")
    t["epochs"] = _int(t["epochs"], "train.epochs")
    t["steps_per_epoch"] = _int(t["steps_per_epoch"], "train.steps_per_epoch", allow_none=True)
    aug = t["augmentation"]
    if not isinstance(aug, (bool, dict)) and aug is not None:
        _fail("train.augmentation", f"must be true, false or a mapping of stage overrides, got {aug!r}.")
    if isinstance(aug, dict):
        from keras_pose.data.augmentations import DEFAULT_AUGMENT

        _check_keys(aug, DEFAULT_AUGMENT, "train.augmentation")
        aug = dict(aug)
        for stage, value in list(aug.items()):
            if value is not None and not isinstance(value, (bool, dict)):
                _fail(f"train.augmentation.{stage}", f"must be true, false/null or a mapping, got {value!r}.")
            if isinstance(value, dict):
                _check_keys(value, DEFAULT_AUGMENT[stage], f"train.augmentation.{stage}")
                aug[stage] = {name: _typed_value(v, DEFAULT_AUGMENT[stage][name], f"train.augmentation.{stage}.{name}")
                              for name, v in value.items()}
    t["augmentation"] = bool(aug) if not isinstance(aug, dict) else aug

    opt = t["optimizer"]
    if isinstance(opt, str):
        opt = {"type": opt}
    opt_defaults = SCHEMA["train"]["optimizer"]
    _check_keys(opt, opt_defaults, "train.optimizer")
    opt = _merge_defaults(opt_defaults, opt)
    opt["type"] = _choice(opt["type"], "train.optimizer.type", OPTIMIZERS)
    if opt["weight_decay"] is None:
        opt["weight_decay"] = 0.1 if opt["type"] == "adamw" else 0.0
    opt["weight_decay"] = _float(opt["weight_decay"], "train.optimizer.weight_decay", 0.0)
    opt["momentum"] = _float(opt["momentum"], "train.optimizer.momentum", 0.0, 1.0)
    opt["clipnorm"] = _float(opt["clipnorm"], "train.optimizer.clipnorm", 0.0, allow_none=True, strict_min=True)
    t["optimizer"] = opt

    lr = _number_from_text(t["learning_rate"])
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        lr = {"base": lr, "schedule": "constant"}
    lr_defaults = SCHEMA["train"]["learning_rate"]
    _check_keys(lr, lr_defaults, "train.learning_rate")
    lr = _merge_defaults(lr_defaults, lr)
    lr["base"] = _float(lr["base"], "train.learning_rate.base", 0.0, strict_min=True)
    lr["schedule"] = _choice(lr["schedule"], "train.learning_rate.schedule", SCHEDULES)
    lr["warmup_steps"] = _int(lr["warmup_steps"], "train.learning_rate.warmup_steps", minimum=0)
    lr["warmup_epochs"] = _float(lr["warmup_epochs"], "train.learning_rate.warmup_epochs", 0.0, allow_none=True)
    if lr["warmup_epochs"] is not None and lr["warmup_steps"]:
        _fail("train.learning_rate.warmup_epochs", "and warmup_steps are both set; give one of them.")
    lr["warmup_start_factor"] = _float(lr["warmup_start_factor"], "train.learning_rate.warmup_start_factor", 0.0, 1.0)
    milestones = lr["milestones"] or []
    if not isinstance(milestones, (list, tuple)):
        _fail("train.learning_rate.milestones", f"must be a list of epochs, got {milestones!r}.")
    milestones = [_int(m, f"train.learning_rate.milestones[{i}]") for i, m in enumerate(milestones)]
    if milestones != sorted(set(milestones)):
        _fail("train.learning_rate.milestones", f"must be increasing epochs, got {milestones}.")
    if lr["schedule"] == "step" and not milestones:
        _fail("train.learning_rate.milestones", "is required with schedule: step (epochs where the rate is "
              "multiplied by gamma, e.g. [170, 200]).")
    lr["milestones"] = milestones
    lr["gamma"] = _float(lr["gamma"], "train.learning_rate.gamma", 0.0, 1.0, strict_min=True)
    lr["min_factor"] = _float(lr["min_factor"], "train.learning_rate.min_factor", 0.0, 1.0)
    t["learning_rate"] = lr
    t["seed"] = _int(t["seed"], "train.seed", minimum=0, allow_none=True)
    return t


def _validate_evaluation(raw, data):
    _check_keys(raw, SCHEMA["evaluation"], "evaluation")
    e = _merge_defaults(SCHEMA["evaluation"], raw)
    e["metric"] = _choice(e["metric"], "evaluation.metric", METRICS)
    if e["metric"] == "auto":
        e["metric"] = "pckh" if data["format"] == "mpii" else "coco"
    if e["metric"] == "coco" and data["format"] == "mpii":
        _fail("evaluation.metric", "coco needs a COCO-format annotation file; use pckh or pck for MPII data.")
    if e["metric"] == "pckh" and data["format"] != "mpii":
        _fail("evaluation.metric", "pckh needs MPII head sizes (data.format: mpii); use coco or pck.")
    e["every_n_epochs"] = _int(e["every_n_epochs"], "evaluation.every_n_epochs")
    e["flip_test"] = _bool(e["flip_test"], "evaluation.flip_test", allow_none=True)
    e["batch_size"] = _int(e["batch_size"], "evaluation.batch_size")
    monitor = _str(e["monitor"], "evaluation.monitor", allow_none=True)
    if monitor is None:
        if data["val"] is None:
            monitor = "loss"
        else:
            monitor = {"coco": "val_coco_AP", "pck": "val_pck", "pckh": "val_pckh"}[e["metric"]]
    else:
        from keras_pose.metrics import STAT_NAMES

        logged = ["loss"]
        if data["val"] is not None:
            logged += {"coco": [f"val_coco_{name}" for name in STAT_NAMES], "pck": ["val_pck", "val_epe"],
                       "pckh": ["val_pckh", "val_pckh@0.1"]}[e["metric"]]
        if monitor not in logged:
            why = "" if data["val"] is not None else " (there is no data.val to evaluate)"
            _fail("evaluation.monitor", f"is {monitor!r}, which is not logged{why}{_suggest(monitor, logged)}; "
                  f"choose one of {', '.join(logged)}.")
    e["monitor"] = monitor
    return e


def _validate_output(raw, base_dir):
    if raw is None:
        _fail("output", "is required: output: {dir: FOLDER}.")
    if isinstance(raw, str):
        raw = {"dir": raw}
    _check_keys(raw, SCHEMA["output"], "output")
    o = _merge_defaults(SCHEMA["output"], raw)
    _require(o, "output")
    o["dir"] = _resolve_path(o["dir"], base_dir, False, "output.dir")
    if os.path.isfile(o["dir"]):
        _fail("output.dir", f"is a file: {o['dir']!r}; give a folder.")
    o["overwrite"] = _bool(o["overwrite"], "output.overwrite")
    o["discard_previous_run"] = _bool(o["discard_previous_run"], "output.discard_previous_run")
    o["save"] = _choice(o["save"], "output.save", ("best", "last"))
    o["plot"] = _bool(o["plot"], "output.plot")
    return o


# --------------------------------------------------------------- loading
def parse_override(text):
    """``"train.epochs=2"`` -> ``("train.epochs", 2)`` (the value is YAML)."""
    import yaml

    if "=" not in text:
        raise TrainConfigError(f"override {text!r} must be KEY=VALUE with a dotted key, e.g. train.epochs=2.")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise TrainConfigError(f"override {text!r} has an empty key; write e.g. train.epochs=2.")
    try:
        parsed = load_yaml_text(value) if value.strip() else None
    except yaml.YAMLError as e:
        raise TrainConfigError(f"override {text!r}: the value is not valid YAML ({e}).") from e
    return key, parsed


# Sections that may be written as a single value in a file (``keypoints:
# coco``, ``output: runs/x``, ``learning_rate: 1e-3``, ``optimizer: sgd``,
# ``train: FILE``): the key the value stands for.
_SHORTHANDS = {
    "keypoints": ("spec", {}),
    "output": ("dir", {}),
    "train.learning_rate": ("base", {"schedule": "constant"}),
    "train.optimizer": ("type", {}),
    "data.train": ("annotation_file", {}),
    "data.val": ("annotation_file", {}),
}


def _override_path(key, value, cwd):
    """An override's path value made absolute against ``cwd`` (names kept)."""
    if key not in PATH_KEYS or not isinstance(value, str):
        return value
    candidate = os.path.abspath(os.path.join(cwd, os.path.expanduser(value)))
    if key in ("keypoints", "keypoints.spec") and not _looks_like_path(value):
        return value  # a built-in spec name
    if key == "model.preset" and not (os.path.exists(candidate) or _looks_like_path(value)):
        return value  # a registered preset name
    return candidate


def apply_overrides(raw, overrides, cwd=None):
    """Set dotted keys in a raw config dict (a deep copy is returned).

    Args:
        raw: the parsed config mapping (or None).
        overrides: ``["section.key=value", ...]`` (values parsed as YAML) or
            ``[(dotted key, value), ...]``.
        cwd: folder that relative path values (keys in `PATH_KEYS`) are
            resolved against (default: the working directory), so that they
            mean what they meant on the command line, not relative to the
            config file.
    """
    raw = copy.deepcopy(raw) if raw is not None else {}
    cwd = cwd or os.getcwd()
    for item in overrides or ():
        key, value = parse_override(item) if isinstance(item, str) else item
        value = _override_path(key, value, cwd)
        node = raw
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            dotted = ".".join(parts[: depth + 1])
            child = node.get(part)
            if child is not None and not isinstance(child, dict) and dotted in _SHORTHANDS:
                first, extra = _SHORTHANDS[dotted]
                child = {first: child, **extra}
            if child is None:
                child = {}
            if not isinstance(child, dict):
                raise TrainConfigError(f"override {key!r}: {dotted!r} is {child!r}, not a section.")
            node[part] = child
            node = child
        node[parts[-1]] = value
    return raw


def read_config_file(path):
    """Parse a YAML or JSON config file into a dict (errors name the file)."""
    import yaml

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Training config {path!r} does not exist.")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        if path.lower().endswith(".json"):
            raw = json.loads(text)
        else:
            raw = load_yaml_text(text)
    except (ValueError, yaml.YAMLError) as e:
        detail = " ".join(str(e).split())
        raise TrainConfigError(f"training config {path!r} does not parse: {detail}") from e
    if raw is None:
        raise TrainConfigError(f"training config {path!r} is empty.")
    if not isinstance(raw, dict):
        raise TrainConfigError(f"training config {path!r} must hold a mapping of sections, not a {type(raw).__name__}.")
    return raw


def load_train_config(config, overrides=None, cwd=None):
    """A validated `TrainConfig` from a file path, a dict or a `TrainConfig`.

    Args:
        config: path of a .yaml/.yml/.json file, a raw dict (paths relative
            to ``cwd``), or a `TrainConfig` (returned with overrides applied).
        overrides: ``["section.key=value", ...]`` or ``[(key, value), ...]``
            applied before validation; path values are relative to ``cwd``.
        cwd: folder for relative override paths (default: working directory).

    Raises:
        TrainConfigError: malformed config (names the key).
        FileNotFoundError: the config file does not exist.
    """
    if isinstance(config, TrainConfig):
        if not overrides:
            return config
        # Re-validate what was given (not the filled-in values, so that e.g.
        # a new evaluation.metric also changes the default monitor).
        raw = config.raw if config.raw is not None else config.to_dict()
        return TrainConfig.from_dict(apply_overrides(raw, overrides, cwd), base_dir=config.base_dir,
                                     source=config.source)
    if isinstance(config, dict):
        return TrainConfig.from_dict(apply_overrides(config, overrides, cwd), base_dir=cwd)
    path = os.path.abspath(os.fspath(config))
    raw = read_config_file(path)
    # File paths are relative to the file: resolve them before the overrides
    # (which are relative to the working directory) are merged in.
    base_dir = os.path.dirname(path)
    raw = _absolutize_file_paths(raw, base_dir)
    return TrainConfig.from_dict(apply_overrides(raw, overrides, cwd), base_dir=base_dir, source=path)


def _absolutize_file_paths(raw, base_dir):
    """Path values of a config file made absolute against the file's folder."""
    raw = copy.deepcopy(raw)
    for key in PATH_KEYS:
        parts = key.split(".")
        node = raw
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(node, dict):
                break
            dotted = ".".join(parts[: depth + 1])
            child = node.get(part)
            if child is not None and not isinstance(child, dict) and dotted in _SHORTHANDS:
                first, extra = _SHORTHANDS[dotted]
                child = node[part] = {first: child, **extra}
            node = child
        if isinstance(node, dict) and isinstance(node.get(parts[-1]), str):
            node[parts[-1]] = _override_path(key, node[parts[-1]], base_dir)
    return raw


# ------------------------------------------------------------ schedules
@keras.saving.register_keras_serializable(package="keras_pose")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then a constant, step or cosine learning rate.

    ``lr(step)``: during the first ``warmup_steps`` steps it rises linearly
    from ``base * warmup_start_factor`` to ``base`` (mmpose ``LinearLR``);
    then "constant" keeps ``base``, "step" multiplies it by ``gamma`` at each
    of ``milestones`` (steps, mmpose ``MultiStepLR``), "cosine" decays it to
    ``base * min_factor`` at ``total_steps``.
    """

    def __init__(
        self,
        base_learning_rate,
        total_steps,
        schedule="cosine",
        warmup_steps=0,
        warmup_start_factor=0.001,
        milestones=(),
        gamma=0.1,
        min_factor=0.0,
    ):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
        self.base_learning_rate = float(base_learning_rate)
        self.total_steps = max(1, int(total_steps))
        self.schedule = schedule
        self.warmup_steps = max(0, int(warmup_steps))
        self.warmup_start_factor = float(warmup_start_factor)
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)
        self.min_factor = float(min_factor)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        base = self.base_learning_rate
        if self.schedule == "constant":
            lr = ops.ones_like(step) * base
        elif self.schedule == "step":
            passed = ops.zeros_like(step)
            for milestone in self.milestones:
                passed = passed + ops.cast(step >= milestone, "float32")
            lr = base * ops.power(ops.cast(self.gamma, "float32"), passed)
        else:
            span = float(max(1, self.total_steps - self.warmup_steps))
            progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
            lr = base * (self.min_factor + (1.0 - self.min_factor) * cosine)
        if self.warmup_steps:
            ramp = self.warmup_start_factor + (1.0 - self.warmup_start_factor) * ops.minimum(
                step / float(self.warmup_steps), 1.0
            )
            lr = lr * ramp
        return lr

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "total_steps": self.total_steps,
            "schedule": self.schedule,
            "warmup_steps": self.warmup_steps,
            "warmup_start_factor": self.warmup_start_factor,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
            "min_factor": self.min_factor,
        }


def make_schedule(lr_config, steps_per_epoch, epochs):
    """The `WarmupSchedule` of a validated ``train.learning_rate`` section."""
    warmup = lr_config["warmup_steps"]
    if lr_config.get("warmup_epochs") is not None:
        warmup = int(round(lr_config["warmup_epochs"] * steps_per_epoch))
    return WarmupSchedule(
        lr_config["base"],
        total_steps=steps_per_epoch * epochs,
        schedule=lr_config["schedule"],
        warmup_steps=warmup,
        warmup_start_factor=lr_config["warmup_start_factor"],
        milestones=[m * steps_per_epoch for m in lr_config["milestones"]],
        gamma=lr_config["gamma"],
        min_factor=lr_config["min_factor"],
    )


def make_optimizer(opt_config, schedule):
    """A Keras optimizer from a validated ``train.optimizer`` section."""
    kwargs = {"learning_rate": schedule}
    if opt_config["clipnorm"]:
        kwargs["clipnorm"] = opt_config["clipnorm"]
    kind = opt_config["type"]
    if kind == "adamw":
        return keras.optimizers.AdamW(weight_decay=opt_config["weight_decay"], **kwargs)
    if kind == "adam":
        if opt_config["weight_decay"]:
            kwargs["weight_decay"] = opt_config["weight_decay"]
        return keras.optimizers.Adam(**kwargs)
    if opt_config["weight_decay"]:
        kwargs["weight_decay"] = opt_config["weight_decay"]
    return keras.optimizers.SGD(momentum=opt_config["momentum"], **kwargs)


# ------------------------------------------------------ keypoints / model
def resolve_train_keypoint_spec(config):
    """The `KeypointSpec` a config trains on (or None: take the preset's)."""
    from keras_pose.keypoints import KeypointSpec, get_keypoint_spec

    entry = config["keypoints"]
    if entry is None:
        if config["model"]["preset"] is not None:
            return None
        if config["data"]["format"] == "mpii":
            return get_keypoint_spec("mpii")
        entry = {"spec": config["data"]["train"]["annotation_file"], "sigmas": None}
    spec = get_keypoint_spec(entry["spec"])
    sigmas = entry["sigmas"]
    if sigmas is not None:
        if not isinstance(sigmas, list):
            sigmas = [sigmas] * spec.num_keypoints
        if len(sigmas) != spec.num_keypoints:
            _fail("keypoints.sigmas", f"has {len(sigmas)} values but the spec {spec.name!r} has "
                  f"{spec.num_keypoints} keypoints.")
        spec = KeypointSpec.from_config(dict(spec.get_config(), sigmas=sigmas))
    return spec


def _check_sigmas(spec, config):
    if config["data"]["val"] is not None and config["evaluation"]["metric"] == "coco" and spec.sigmas is None:
        _fail("keypoints.sigmas", f"is needed: the keypoint spec {spec.name!r} has no OKS sigmas and COCO AP "
              f"(evaluation.metric: coco) needs them. Add keypoints: {{spec: ..., sigmas: [{spec.num_keypoints} "
              "values]}} (or one value for every keypoint, e.g. 0.05), or use evaluation.metric: pck.")


def build_model_from_config(config, spec):
    """Build (architecture) or load (preset) the model of a config.

    A preset whose keypoints differ from ``spec`` keeps its backbone and gets
    a new head for ``spec`` (not possible for CPM, whose stages predict the
    keypoints). Returns the `TopDownPoseEstimator`.
    """
    m = config["model"]
    if m["preset"] is None:
        return _build_architecture(m, spec)
    import keras_pose

    kwargs = {"dataset": m["dataset"]} if m["dataset"] else {}
    model = keras_pose.from_preset(m["preset"], **kwargs)
    if hasattr(model, "fuse_experts"):
        if not m["dataset"]:
            _fail("model.dataset", f"is required for the multi-dataset preset {m['preset']!r} (ViTPose++): name the "
                  f"dataset whose expert and head to fine-tune, one of {', '.join(model.datasets)}.")
        model = model.fuse_experts(m["dataset"])
    elif m["dataset"]:
        _fail("model.dataset", f"applies to ViTPose++ presets only; {m['preset']!r} is a {type(model).__name__}.")
    if m["input_size"] is not None and list(model.image_size) != list(m["input_size"]):
        _fail("model.input_size", f"is {m['input_size']} but the preset {m['preset']!r} takes "
              f"{list(model.image_size)} crops; remove model.input_size or set it to the preset's size.")
    if spec is not None and spec != model.keypoint_spec:
        model = _rehead(model, spec, same_keypoints=list(spec.keypoint_names) == list(
            model.keypoint_spec.keypoint_names))
    return model


def _build_architecture(m, spec):
    import keras_pose

    size = tuple(m["input_size"])
    name = m["architecture"]
    backbone_args = dict(m["backbone"])
    head_args = dict(m["head"])
    try:
        if name == "ViTPose":
            for key in ("hidden_dim", "num_layers", "num_heads", "mlp_dim"):
                backbone_args.setdefault(key, {"hidden_dim": 384, "num_layers": 12, "num_heads": 12,
                                               "mlp_dim": 1536}[key])
            backbone = keras_pose.ViTPoseBackbone(image_size=size, **backbone_args)
            return keras_pose.ViTPose(backbone, keypoint_spec=spec, **head_args)
        if name == "Hourglass":
            backbone = keras_pose.HourglassBackbone(image_size=size, **backbone_args)
            return keras_pose.Hourglass(backbone, keypoint_spec=spec, **head_args)
        if name == "CPM":
            backbone = keras_pose.CPMBackbone(num_keypoints=spec.num_keypoints, image_size=size, **backbone_args)
            return keras_pose.CPM(backbone, keypoint_spec=spec, **head_args)
        backbone = keras_pose.CPNBackbone(image_shape=(*size, 3), **backbone_args)
        return keras_pose.CPN(backbone, keypoint_spec=spec, **head_args)
    except TypeError as e:
        raise TrainConfigError(
            f"train config: 'model.backbone' / 'model.head' do not fit {name}: {e}. See the constructor "
            f"arguments of keras_pose.{name} and keras_pose.{name}Backbone."
        ) from e
    except KerasPoseError:
        raise
    except ValueError as e:
        raise TrainConfigError(f"train config: 'model' cannot build {name}: {e}") from e


def _rehead(model, spec, same_keypoints):
    """The same task class and backbone with a head for ``spec``."""
    cls = type(model)
    if cls.__name__ == "CPM" and not same_keypoints:
        _fail("keypoints", f"({spec.num_keypoints} keypoints {spec.name!r}) differ from the CPM preset's "
              f"{model.keypoint_spec.name!r}; CPM predicts keypoints in every stage of its backbone, so it is "
              "fine-tuned on its own keypoint spec only. Build model.architecture: CPM instead.")
    config = model.get_config()
    for key in ("backbone", "name", "num_keypoints", "preprocessor"):
        config.pop(key, None)
    config["keypoint_spec"] = spec.get_config()
    new = cls(backbone=model.backbone, **config)
    if same_keypoints:
        new.set_weights(model.get_weights())
    return new


# ------------------------------------------------------------ callbacks
class _LearningRateLogger(keras.callbacks.Callback):
    """Adds ``learning_rate`` (the rate of the epoch's last step) to the logs."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        step = max(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) - 1, 0)
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.schedule(step)))


class HistoryWriter(keras.callbacks.Callback):
    """Rewrites ``history.csv`` / ``history.json`` atomically every epoch.

    Unlike ``keras.callbacks.CSVLogger``, metrics that appear only on some
    epochs (periodic evaluation) get their own column, empty elsewhere.
    """

    def __init__(self, csv_path, json_path=None):
        super().__init__()
        self.csv_path = csv_path
        self.json_path = json_path
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        for key, value in (logs or {}).items():
            try:
                row[key] = float(keras.ops.convert_to_numpy(value))
            except (TypeError, ValueError):
                continue
        self.rows.append(row)
        self.write()

    def history(self):
        """``{key: [value or None per epoch]}``."""
        keys = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        return {k: [row.get(k) for row in self.rows] for k in keys}

    def write(self):
        history = self.history()
        keys = list(history)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(keys)
        for row in self.rows:
            writer.writerow(["" if row.get(k) is None else repr(row[k]) if isinstance(row[k], float) else row[k]
                             for k in keys])
        with atomic_write(self.csv_path, "w") as f:
            f.write(buffer.getvalue())
        if self.json_path:
            with atomic_write(self.json_path, "w") as f:
                json.dump(_json_safe(history), f, indent=1, allow_nan=False)
                f.write("\n")


class BestWeightsCheckpoint(keras.callbacks.Callback):
    """Saves the weights atomically when ``monitor`` improves.

    Epochs whose logs lack ``monitor`` (not evaluated) are skipped silently,
    as are non-finite values and weights that hold NaN / Inf; a tie goes to
    the later epoch (with AP still 0 early in a run, the more trained
    weights). ``best.json`` beside ``best.weights.h5`` records the monitor,
    its value and the epoch.
    """

    def __init__(self, path, monitor, mode="max", verbose=1):
        super().__init__()
        if not path.endswith(".weights.h5"):
            raise ValueError(f"path must end with .weights.h5, got {path!r}.")
        self.path = path
        self.monitor = monitor
        self.mode = mode
        self.verbose = verbose
        self.best = None
        self.best_epoch = None

    def _better(self, value):
        if self.best is None:
            return True
        return value >= self.best if self.mode == "max" else value <= self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(keras.ops.convert_to_numpy(value))
        if not math.isfinite(value) or not self._better(value):
            return
        from keras_pose.training.callbacks import non_finite_weights

        if non_finite_weights(self.model):
            return  # never replace a good checkpoint with NaN weights
        self.best, self.best_epoch = value, epoch + 1
        save_weights_atomic(self.model, self.path, info={"monitor": self.monitor, "mode": self.mode,
                                                          "value": value, "epoch": epoch + 1})
        if self.verbose:
            print(f"Epoch {epoch + 1}: {self.monitor} {value:.4f} is the best so far; saved {self.path}")


def save_weights_atomic(model, path, info=None):
    """``model.save_weights(path)`` through a temporary sibling + ``os.replace``.

    Args:
        model: the Keras model.
        path: a ``.weights.h5`` file.
        info: optional JSON-able dict written (atomically, after the
            weights) to the sidecar `checkpoint_info_path` (``best.json``
            for ``best.weights.h5``): what the checkpoint is (epoch, metric).

    Raises:
        NonFiniteModelError: the weights hold NaN or Inf (nothing written;
            a good checkpoint is never replaced by a broken one).
    """
    from keras_pose.training.callbacks import NonFiniteModelError, non_finite_weights

    bad = non_finite_weights(model)
    if bad:
        raise NonFiniteModelError(
            f"Not saving {path!r}: {len(bad)} weights hold NaN or Inf ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''})."
        )
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if info is not None:
        with atomic_write(checkpoint_info_path(path), "w") as f:
            json.dump(_json_safe(info), f, indent=1, allow_nan=False)
            f.write("\n")


def checkpoint_info_path(path):
    """The sidecar of a checkpoint: ``dir/best.weights.h5`` -> ``dir/best.json``."""
    path = os.fspath(path)
    stem = path[: -len(".weights.h5")] if path.endswith(".weights.h5") else os.path.splitext(path)[0]
    return stem + ".json"


def _json_safe(value):
    """``value`` with NaN / Inf floats replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------ training
@dataclasses.dataclass
class TrainResult:
    """What `train_from_config` produced.

    Attributes:
        model: the trained model (with the weights written to the preset).
        history: ``{key: [value or None per epoch]}``.
        output_dir: the run folder.
        preset_dir: ``output_dir/preset``.
        metrics: the ``metrics.json`` content (best / last evaluation).
        files: name -> path of every file written; ``"previous_run"``: the
            folder an earlier run in ``output_dir`` was moved to.
    """

    model: object
    history: dict
    output_dir: str
    preset_dir: str
    metrics: dict
    files: dict


# What a run writes into output.dir; `previous_runs/` holds earlier runs
# moved aside by output.overwrite.
_RUN_NAMES = ("config.yaml", "history.csv", "history.json", "metrics.json", "training_curves.png", "checkpoints",
              "preset")
PREVIOUS_RUNS_DIR = "previous_runs"
_CONFIG_HEADER = "# The resolved training config of this run (keras_pose.training.train_config)."


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def describe_previous_run(directory):
    """What an earlier `train_from_config` run left in ``directory``.

    Returns:
        None when the folder holds no run's files, else a dict: ``entries``
        (the run's files and folders there), ``finished`` (metrics.json and
        the preset were written), ``epochs`` (epochs logged in history.json,
        or None), ``best`` (None: no best checkpoint, else ``{monitor,
        value, epoch}`` as far as known), ``last`` (None, or ``{epoch}``),
        ``preset`` (bool), ``started`` (the run's start, seconds since the
        epoch) and ``summary`` / ``weights`` (text for messages).

    Raises:
        TrainConfigError: the folder holds a ``config.yaml`` that no run
            wrote (a run would replace it).
    """
    entries = [n for n in _RUN_NAMES if os.path.lexists(os.path.join(directory, n))]
    if not entries:
        return None
    config_path = os.path.join(directory, "config.yaml")
    if "config.yaml" in entries:
        try:
            with open(config_path, encoding="utf-8") as f:
                ours = f.readline().rstrip("\n") == _CONFIG_HEADER
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            _fail("output.dir", f"{directory!r} holds a config.yaml that no keras-pose run wrote (a run writes its "
                  "resolved config there and would replace it); choose another output folder.")
    ckpt = os.path.join(directory, "checkpoints")
    metrics = _read_json(os.path.join(directory, "metrics.json")) or {}
    history = _read_json(os.path.join(directory, "history.json")) or {}
    best = None
    if os.path.isfile(os.path.join(ckpt, "best.weights.h5")):
        best = _read_json(os.path.join(ckpt, "best.json")) or {}
        if not best and metrics.get("best_epoch"):
            monitor = metrics.get("monitor")
            best = {"monitor": monitor, "value": (metrics.get("best") or {}).get(monitor),
                    "epoch": metrics["best_epoch"]}
    last = None
    if os.path.isfile(os.path.join(ckpt, "last.weights.h5")):
        last = _read_json(os.path.join(ckpt, "last.json")) or {}
    preset = os.path.isdir(os.path.join(directory, "preset"))
    epochs = history.get("epoch")
    epochs = len(epochs) if isinstance(epochs, list) else None
    times = [os.path.getmtime(os.path.join(directory, n)) for n in entries]
    started = os.path.getmtime(config_path) if "config.yaml" in entries else min(times)
    info = {"entries": entries, "finished": bool(metrics) and preset, "epochs": epochs, "best": best, "last": last,
            "preset": preset, "started": started}

    weights = []
    if best is not None:
        known = isinstance(best.get("value"), numbers.Real) and best.get("monitor") and best.get("epoch")
        weights.append("the best checkpoint checkpoints/best.weights.h5" + (
            f" ({best['monitor']} {best['value']:.4f} at epoch {best['epoch']})" if known else ""))
    if last is not None:
        weights.append("the last checkpoint checkpoints/last.weights.h5" + (
            f" (end of epoch {last['epoch']})" if last.get("epoch") else ""))
    if preset:
        weights.append("its preset (preset/)")
    state = "a finished run" if info["finished"] else "an unfinished run (killed, diverged or still running)"
    logged = f", {epochs} epoch{'s' if epochs != 1 else ''} logged" if epochs is not None else ""
    info["weights"] = (", ".join(weights[:-1]) + " and " + weights[-1] if len(weights) > 1 else weights[0]) if (
        weights) else "no weights (the run saved none)"
    info["summary"] = f"{state}{logged}, started {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, " + (
        f"with {info['weights']}" if weights else "with no checkpoint or preset")
    return info


def _check_output(out):
    """Refuse to start in a folder that holds an earlier run, unless told what to do with it.

    Returns the `describe_previous_run` dict (None: the folder holds no run).
    """
    info = describe_previous_run(out["dir"])
    if info is not None and not (out["overwrite"] or out["discard_previous_run"]):
        _fail("output.dir", f"{out['dir']!r} holds {info['summary']}. Resuming a run is not supported yet, and a new "
              "run here would replace its files. Choose one: another output folder (--output-dir / output.dir); "
              "--overwrite (output.overwrite: true) to start over here and move the earlier run to "
              f"{_backup_dir(out['dir'], info)} (nothing is deleted); or "
              "--discard-previous-run (output.discard_previous_run: true) to delete the earlier run, losing "
              f"{info['weights']}.")
    return info


def _backup_dir(directory, info):
    """``directory/previous_runs/<start time of the run>`` (a free name)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(info["started"]))
    backup = os.path.join(directory, PREVIOUS_RUNS_DIR, stamp)
    suffix = 1
    while os.path.lexists(backup):
        suffix += 1
        backup = os.path.join(directory, PREVIOUS_RUNS_DIR, f"{stamp}-{suffix}")
    return backup


def _make_room(out, info, say):
    """Move the earlier run aside (overwrite) or delete it (discard_previous_run).

    Returns the folder the earlier run was moved to (None: deleted or none).
    """
    os.makedirs(out["dir"], exist_ok=True)
    if info is None:
        return None
    directory = out["dir"]
    if out["discard_previous_run"]:
        for name in info["entries"]:
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        say(f"Deleted the earlier run in {directory} (output.discard_previous_run), with {info['weights']}.")
        return None
    backup = _backup_dir(directory, info)
    os.makedirs(backup)
    for name in info["entries"]:
        os.replace(os.path.join(directory, name), os.path.join(backup, name))
    say(f"Moved the earlier run in {directory} to {backup} (output.overwrite; delete it when you no longer need "
        f"{info['weights']}).")
    return backup


def _load_datasets(config, spec, verbose):
    import warnings

    from keras_pose.datasets import dataset_from_detections, load_coco_detections, load_coco_keypoints, load_mpii

    data = config["data"]

    def load(split, mode):
        if data["format"] == "mpii":
            with warnings.catch_warnings():
                if not verbose:
                    warnings.simplefilter("ignore")
                return load_mpii(split["annotation_file"], split["image_root"], mode=mode, keypoint_spec=spec)
        return load_coco_keypoints(split["annotation_file"], split["image_root"], keypoint_spec=spec, mode=mode)

    train = load(data["train"], "train")
    if len(train) == 0:
        _fail("data.train.annotation_file", f"{data['train']['annotation_file']!r} has no usable (labelled) instance "
              "to train on.")
    val = None
    if data["val"] is not None:
        val = load(data["val"], "eval")
        if data["val"]["detections"]:
            detections = load_coco_detections(data["val"]["detections"], min_score=data["val"]["min_detection_score"])
            val = dataset_from_detections(detections, val)
        if len(val) == 0:
            _fail("data.val", "has no instance to evaluate (no labelled people, or no detection above "
                  "min_detection_score).")
    return train, val


def _augment_for(spec, augment, say):
    """Drop half-body when the spec has no upper/lower body split."""
    if not augment:
        return False
    from keras_pose.data.augmentations import resolve_augment

    stages = resolve_augment(augment)
    if "half_body" in stages and not (spec.upper_body_indices and spec.lower_body_indices):
        say(f"note: keypoint spec {spec.name!r} has no upper/lower body split; half-body augmentation is off.")
        stages.pop("half_body")
    if "flip" in stages and not spec.flip_pairs:
        say(f"note: keypoint spec {spec.name!r} has no left/right pairs; flipping keeps every keypoint's name.")
    return {name: (stages.get(name) or None) for name in resolve_augment(True)}


def train_from_config(config, overrides=None, verbose=1):
    """Train a model as a config says and write the run's results.

    Args:
        config: a `TrainConfig`, a config file path, or a raw dict (see the
            module docstring for the schema).
        overrides: ``["train.epochs=2", ...]`` applied before validation.
        verbose: 0 silent, 1 progress bars (Keras ``fit``) and messages,
            2 one line per epoch.

    Returns:
        `TrainResult`.

    Raises:
        TrainConfigError: a bad config value (names the key), or an output
            folder that holds an earlier run (see ``output.overwrite``),
            found before any training starts.
        TrainingDivergedError: the loss (or the weights) became NaN / Inf;
            the last finite weights are kept in ``checkpoints/``.
    """
    config = load_train_config(config, overrides)
    say = print if verbose else (lambda *a, **k: None)
    out = config["output"]
    previous = _check_output(out)
    if config["train"]["seed"] is not None:
        keras.utils.set_random_seed(config["train"]["seed"])

    spec = resolve_train_keypoint_spec(config)
    model = build_model_from_config(config, spec)
    spec = model.keypoint_spec
    _check_sigmas(spec, config)
    train_set, val_set = _load_datasets(config, spec, verbose)
    source = f"preset {config['model']['preset']!r}" if config["model"]["preset"] else (
        f"a new {config['model']['architecture']} (random initialisation)")
    say(f"Training {type(model).__name__} from {source}: {model.count_params():,} parameters, input "
        f"{model.image_size[0]}x{model.image_size[1]}, keypoints {spec.name!r} ({spec.num_keypoints}); "
        f"{len(train_set)} training instances" + (f", {len(val_set)} validation instances" if val_set else "") + ".")

    from keras_pose.data import model_dataset
    from keras_pose.training.callbacks import (
        NonFiniteModelError,
        PoseEvaluationCallback,
        TerminateOnNonFiniteLoss,
        TrainingDivergedError,
        non_finite_weights,
    )

    t = config["train"]
    steps = t["steps_per_epoch"] or max(1, math.ceil(len(train_set) / t["batch_size"]))
    augment = _augment_for(spec, t["augmentation"], say)
    ds = model_dataset(
        model,
        train_set,
        batch_size=t["batch_size"],
        training=True,
        augment=augment,
        seed=t["seed"],
        repeat=True,
        cache_images=config["data"]["cache_images"],
    )
    schedule = make_schedule(t["learning_rate"], steps, t["epochs"])
    model.compile(optimizer=make_optimizer(t["optimizer"], schedule))

    files = {}
    out_dir = out["dir"]
    # Everything that can fail on the config has run: only now is an earlier
    # run in the folder moved aside (or deleted when asked).
    backup = _make_room(out, previous, say)
    if backup:
        files["previous_run"] = backup
    ckpt_dir = os.path.join(out_dir, "checkpoints")
    files["config"] = os.path.join(out_dir, "config.yaml")
    with atomic_write(files["config"], "w") as f:
        f.write("# The resolved training config of this run (keras_pose.training.train_config).\n")
        f.write(config.to_yaml())

    e = config["evaluation"]
    files["last_weights"] = os.path.join(ckpt_dir, "last.weights.h5")
    # First, so that nothing after it sees NaN weights: it restores the last
    # finite weights (saved as last.weights.h5 after every finite epoch).
    guard = TerminateOnNonFiniteLoss(snapshot_path=files["last_weights"], raise_error=True, verbose=0)
    callbacks = [guard, _LearningRateLogger(schedule)]
    if val_set is not None:
        callbacks.append(
            PoseEvaluationCallback(
                val_set,
                metric=e["metric"],
                every_n_epochs=e["every_n_epochs"],
                batch_size=e["batch_size"],
                flip_test=e["flip_test"],
                # Progress bar and result line on a terminal; in logs the
                # epoch line of fit carries the values.
                verbose=1 if verbose and _isatty() else 0,
            )
        )
    files["history.csv"] = os.path.join(out_dir, "history.csv")
    files["history.json"] = os.path.join(out_dir, "history.json")
    history_writer = HistoryWriter(files["history.csv"], files["history.json"])
    mode = "min" if "loss" in e["monitor"] or "epe" in e["monitor"] else "max"
    best_path = os.path.join(ckpt_dir, "best.weights.h5")
    checkpoint = BestWeightsCheckpoint(best_path, e["monitor"], mode=mode, verbose=1 if verbose else 0)
    callbacks += [history_writer, checkpoint]

    # Keras progress bars on a terminal, one line per epoch in logs.
    fit_verbose = 0 if not verbose else 1 if verbose == 1 and _isatty() else 2
    try:
        model.fit(ds, steps_per_epoch=steps, epochs=t["epochs"], callbacks=callbacks, verbose=fit_verbose,
                  shuffle=False)
    except NonFiniteModelError as e:
        raise TrainingDivergedError(_diverged_message(guard, checkpoint, config, schedule, steps, e)) from e
    history = history_writer.history()
    if non_finite_weights(model):  # the guard checks every epoch; never write a preset with NaN weights
        raise TrainingDivergedError(_diverged_message(guard, checkpoint, config, schedule, steps, None))

    save_weights_atomic(model, files["last_weights"], info={"epoch": t["epochs"]})
    if checkpoint.best_epoch is not None:
        files["best_weights"] = best_path
    saved = "last"
    if out["save"] == "best" and checkpoint.best_epoch is not None:
        if checkpoint.best_epoch != t["epochs"]:
            model.load_weights(best_path)
        saved = "best"

    preset_dir = os.path.join(out_dir, "preset")
    with atomic_directory(preset_dir) as tmp:
        _uncompiled_copy(model).save_to_preset(tmp)
    files["preset"] = preset_dir

    def epoch_values(epoch):
        if epoch is None:
            return None
        return {k: v[epoch - 1] for k, v in history.items() if v[epoch - 1] is not None}

    metrics = {
        "monitor": e["monitor"],
        "mode": mode,
        "best_epoch": checkpoint.best_epoch,
        "best": epoch_values(checkpoint.best_epoch),
        "last": epoch_values(len(history["epoch"])),
        "preset_weights": saved,
        "epochs": t["epochs"],
        "steps_per_epoch": steps,
        "train_instances": len(train_set),
        "val_instances": len(val_set) if val_set is not None else 0,
        "initialisation": "preset" if config["model"]["preset"] else "random",
    }
    files["metrics.json"] = os.path.join(out_dir, "metrics.json")
    with atomic_write(files["metrics.json"], "w") as f:
        json.dump(_json_safe(metrics), f, indent=1, allow_nan=False)
        f.write("\n")
    if out["plot"]:
        from keras_pose.visualization_plots import plot_training_curves

        files["training_curves.png"] = plot_training_curves(history, os.path.join(out_dir, "training_curves.png"),
                                                            title=f"{type(model).__name__} - {spec.name}")
    best_text = (f"best {e['monitor']} {checkpoint.best:.4f} at epoch {checkpoint.best_epoch}"
                 if checkpoint.best_epoch is not None else f"{e['monitor']} never improved")
    say(f"Done: {best_text}; preset ({saved} weights) in {preset_dir}.")
    return TrainResult(model=model, history=history, output_dir=out_dir, preset_dir=preset_dir, metrics=metrics,
                       files=files)


def _diverged_message(guard, checkpoint, config, schedule, steps, error):
    """The one-paragraph report of a diverged run: where, what was kept, what to try."""
    d = guard.diverged
    if d is not None:
        global_step = (d["epoch"] - 1) * steps + (d["step"] or steps) - 1
        rate = float(keras.ops.convert_to_numpy(schedule(global_step)))
        where = f"{guard.describe()} (learning rate {rate:.3g})"
    elif error is not None:
        where = " ".join(str(error).split())
    else:
        where = "the weights hold NaN or Inf after the last epoch"
    kept = []
    if guard.last_finite_epoch:
        kept.append(f"the last finite weights (end of epoch {guard.last_finite_epoch}) in {guard.snapshot_path}")
    if checkpoint.best_epoch is not None:
        kept.append(f"the best checkpoint ({checkpoint.monitor} {checkpoint.best:.4f} at epoch "
                    f"{checkpoint.best_epoch}) in {checkpoint.path}")
    kept = "; kept " + " and ".join(kept) if kept else "; no epoch finished with finite weights, so no checkpoint"
    t = config["train"]
    lr, opt = t["learning_rate"], t["optimizer"]
    clip = f"train.optimizer.clipnorm, now {opt['clipnorm']:g}: lower it" if opt["clipnorm"] else (
        "train.optimizer.clipnorm: 1.0")
    warmup = lr["warmup_epochs"] if lr["warmup_epochs"] is not None else lr["warmup_steps"]
    warm = "train.learning_rate.warmup_epochs: 1" if not warmup else "a longer train.learning_rate warm-up"
    return (f"Training diverged: {where}; stopped{kept}; no preset or metrics.json was written. Try a lower "
            f"train.learning_rate.base (now {lr['base']:g}), gradient clipping ({clip}) or a warm-up ({warm}).")


def _uncompiled_copy(model):
    """The model without its optimizer: presets hold weights, not training state.

    (A compiled task saves its optimizer variables and schedule; loading such
    a preset warns about optimizer variables it cannot restore.)
    """
    copy_ = type(model).from_config(model.get_config())
    copy_.set_weights(model.get_weights())
    return copy_


def _isatty():
    import sys

    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = [
    "BestWeightsCheckpoint",
    "HistoryWriter",
    "PREVIOUS_RUNS_DIR",
    "TrainConfig",
    "TrainConfigError",
    "TrainResult",
    "WarmupSchedule",
    "apply_overrides",
    "build_model_from_config",
    "checkpoint_info_path",
    "constructor_arguments",
    "describe_previous_run",
    "load_train_config",
    "load_yaml_text",
    "make_optimizer",
    "make_schedule",
    "parse_override",
    "read_config_file",
    "resolve_train_keypoint_spec",
    "save_weights_atomic",
    "train_from_config",
]
