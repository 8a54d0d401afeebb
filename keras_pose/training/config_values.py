"""Checks of single training-config values, and the messages they raise.

Every check names the dotted key (``'train.learning_rate.base'``), what it
expects and what it got; an unknown key gets a did-you-mean suggestion and
the list of valid keys. Numbers are read as YAML 1.2 and Python write them
(``"1e-3"`` -> 0.001, ``"1_000"`` -> 1000), in files and overrides alike.

Used by `config_schema` (the sections), `config_io` (the YAML loader and
overrides) and `model_builder` (constructor arguments).
"""

import copy
import difflib
import math
import numbers
import os
import re

from keras_pose.errors import TrainConfigError
from keras_pose.utils.paths import looks_like_path as _looks_like_path

# A key without default: `merge_defaults` keeps it, `require` refuses it.
REQUIRED = object()


def fail(key, message):
    """Raise `TrainConfigError` "train config: 'KEY' MESSAGE"."""
    raise TrainConfigError(f"train config: {key!r} {message}")


def suggest(name, choices):
    """`` (did you mean 'x'?)`` for the closest of ``choices`` (case first), or ``""``."""
    choices = [str(c) for c in choices]
    same = [c for c in choices if c.lower() == str(name).lower()]
    close = same or difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key, allowed, where, takes=None):
    """The error for a key of ``where`` that is not in ``allowed``."""
    full = f"{where}.{key}" if where else str(key)
    hint = suggest(key, allowed)
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


def check_keys(section, allowed, where):
    """Refuse a ``section`` that is not a mapping, or holds a key not in ``allowed``."""
    if not isinstance(section, dict):
        fail(where, f"must be a mapping of {sorted(allowed)}, got {type(section).__name__} {section!r}.")
    for key in section:
        if key not in allowed:
            raise unknown_key(key, allowed, where)


# Numbers as YAML 1.2 and Python write them: 1e-3, 1E-4, 5.e-4, .5, 1_000,
# +2 (YAML 1.1, which PyYAML follows, reads 1e-3 as a string and 010 as 8).
DIGITS = r"[0-9](?:_?[0-9])*"
_INT_TEXT = re.compile(rf"^[-+]?{DIGITS}$")
FLOAT_TEXT = re.compile(rf"^[-+]?(?:{DIGITS}(?:\.(?:{DIGITS})?)?|\.{DIGITS})(?:[eE][-+]?{DIGITS})?$")


def number_from_text(value):
    """``"1e-3"`` -> 0.001, ``"1_000"`` -> 1000; anything else is returned as is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _INT_TEXT.match(text):
        return int(text.replace("_", ""), 10)
    if FLOAT_TEXT.match(text):
        return float(text.replace("_", ""))
    return value


def as_int(value, key, minimum=1, allow_none=False):
    if value is None and allow_none:
        return None
    value = number_from_text(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            fail(key, f"must be an integer >= {minimum}{' or null' if allow_none else ''}, got {value!r}.")
    if value < minimum:
        fail(key, f"must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def as_float(value, key, minimum=None, maximum=None, allow_none=False, strict_min=False):
    if value is None and allow_none:
        return None
    value = number_from_text(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        fail(key, f"must be a number{' or null' if allow_none else ''}, got {value!r}.")
    value = float(value)
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        fail(key, f"must be {'>' if strict_min else '>='} {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        fail(key, f"must be <= {maximum}, got {value!r}.")
    return value


def as_bool(value, key, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        fail(key, f"must be true or false{' or null' if allow_none else ''}, got {value!r}.")
    return value


def as_choice(value, key, choices):
    text = value.lower() if isinstance(value, str) else value
    lowered = {c.lower() if isinstance(c, str) else c: c for c in choices}
    if text not in lowered:
        fail(key, f"must be one of {', '.join(str(c) for c in choices)}, got {value!r}{suggest(value, choices)}.")
    return lowered[text]


def as_str(value, key, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        fail(key, f"must be a non-empty string{' or null' if allow_none else ''}, got {value!r}.")
    return value


# Value kinds of `typed_value`: "int" (>= 0), "int+" (>= 1), "float", "bool",
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


def typed_value(value, default, key, kind=None):
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
        fail(key, f"must be {expected}, got null (an empty value; in YAML write `key: value` with a space "
              "after the colon).")
    if kind in ("int", "int+"):
        value = number_from_text(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
            fail(key, f"must be {expected}, got {value!r}.")
        return as_int(value, key, minimum=1 if kind == "int+" else 0)
    if kind == "float":
        return as_float(value, key)
    if kind == "bool":
        return as_bool(value, key)
    if kind == "str":
        if not isinstance(value, str):
            fail(key, f"must be {expected}, got {value!r}.")
        return value
    if kind in ("ints", "floats"):
        if not isinstance(value, (list, tuple)):
            fail(key, f"must be {expected}, got {value!r}.")
        item = "int" if kind == "ints" else "float"
        return [typed_value(v, None, f"{key}[{i}]", item) for i, v in enumerate(value)]
    if kind == "mapping":
        if not isinstance(value, dict):
            fail(key, f"must be {expected}, got {value!r}.")
        return value
    if kind == "dtype":
        if not isinstance(value, (str, dict)):
            fail(key, f"must be {expected}, got {value!r}.")
        return value
    raise AssertionError(kind)


def looks_like_path(value):
    """Whether a string names a config/spec file rather than a registered name."""
    return _looks_like_path(value, suffixes=(".json", ".yaml", ".yml"))


def resolve_path(value, base_dir, must_exist, key, kind="file"):
    """Absolute path of ``value`` relative to ``base_dir``; checks existence."""
    if value is None:
        return None
    value = as_str(value, key)
    path = os.path.abspath(os.path.join(base_dir, os.path.expanduser(value)))
    if must_exist:
        exists = os.path.isdir(path) if kind == "folder" else os.path.isfile(path)
        if not exists:
            fail(key, f"names a {kind} that does not exist: {path!r}.")
    return path


def merge_defaults(defaults, given):
    """``given`` with the missing keys of ``defaults`` filled in (copies; `REQUIRED` kept as a marker)."""
    out = {}
    for key, default in defaults.items():
        if key in given:
            out[key] = given[key]
        elif default is REQUIRED:
            out[key] = REQUIRED
        else:
            out[key] = copy.deepcopy(default)
    return out


def optional_section(raw, keys, where, shorthand, expected):
    """An optional mapping section: None -> None; a string -> ``{shorthand: raw}``; checked, defaults filled.

    ``expected`` describes the accepted forms in the message for anything else.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {shorthand: raw}
    if not isinstance(raw, dict):
        fail(where, f"must be {expected}; got {raw!r}.")
    check_keys(raw, keys, where)
    section = merge_defaults(keys, raw)
    require(section, where)
    return section


def require(section, where):
    """Refuse a section whose required key was not given."""
    for key, value in section.items():
        if value is REQUIRED:
            fail(f"{where}.{key}", "is required.")

