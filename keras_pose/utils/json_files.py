"""Reading a JSON file with an error that names the file, line and column."""

import json


def read_json(path, error=ValueError, fix=""):
    """The parsed JSON file `path`.

    Args:
        path: the file.
        error: the exception class to raise (a `keras_pose.errors` class).
        fix: a sentence saying what the user should do, appended to the message.

    Raises:
        error: "<path> is not valid JSON (line L, column C: reason); <fix>" or
            "Could not read <path>: <reason>. <fix>".
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise error(f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); {fix}".rstrip()) from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"Could not read {path}: {e}. {fix}".rstrip()) from None


def read_json_dict(path):
    """The JSON object in ``path``, or None when the file is missing, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


__all__ = ["read_json", "read_json_dict"]
