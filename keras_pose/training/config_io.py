"""Reading a training config: YAML/JSON files, ``--set`` overrides, path rules.

``load_train_config(path_or_dict, overrides)`` returns a validated
`TrainConfig` (see `config_schema` for the schema). Relative paths in a file
are relative to the file's folder; paths given as overrides (``--set``,
``--output-dir``) are relative to the working directory. Numbers are read as
YAML 1.2 and Python write them (``1e-3`` is 0.001; PyYAML's YAML 1.1 reads it
as a string).
"""

import copy
import json
import math
import os
import re

from keras_pose.errors import TrainConfigError
from keras_pose.training.config_schema import TrainConfig
from keras_pose.training.config_values import DIGITS, FLOAT_TEXT, looks_like_path

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
    int_text = re.compile(rf"^(?:[-+]?{DIGITS}|[-+]?0x[0-9a-fA-F](?:_?[0-9a-fA-F])*|[-+]?0o[0-7](?:_?[0-7])*"
                          r"|[-+]?0b[01](?:_?[01])*)$")
    float_text = re.compile(rf"{FLOAT_TEXT.pattern}|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")
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
    "train.distribution": ("kind", {}),
    "data.train": ("annotation_file", {}),
    "data.val": ("annotation_file", {}),
}


def _override_path(key, value, cwd):
    """An override's path value made absolute against ``cwd`` (names kept)."""
    if key not in PATH_KEYS or not isinstance(value, str):
        return value
    candidate = os.path.abspath(os.path.join(cwd, os.path.expanduser(value)))
    if key in ("keypoints", "keypoints.spec") and not looks_like_path(value):
        return value  # a built-in spec name
    if key == "model.preset" and not (os.path.exists(candidate) or looks_like_path(value)):
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
            if isinstance(child, list):  # data.train as a list of datasets: resolved per entry (schema)
                node = None
                break
            if child is not None and not isinstance(child, dict) and dotted in _SHORTHANDS:
                first, extra = _SHORTHANDS[dotted]
                child = node[part] = {first: child, **extra}
            node = child
        if isinstance(node, dict) and isinstance(node.get(parts[-1]), str):
            node[parts[-1]] = _override_path(key, node[parts[-1]], base_dir)
    return raw



__all__ = [
    "PATH_KEYS",
    "apply_overrides",
    "load_train_config",
    "load_yaml_text",
    "parse_override",
    "read_config_file",
]
