"""Telling a path from a name in user input."""

import os

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")


def looks_like_path(value, suffixes=CHECKPOINT_SUFFIXES):
    """True if the string `value` is meant as a file path rather than a name.

    It is when it holds a path separator, starts with "." or "~", or ends with
    one of `suffixes` (case-insensitive): `looks_like_path("vitpose_base")` is
    False, `looks_like_path("./x")`, `looks_like_path("ckpt.pth")` are True.

    Args:
        value: the user's string (anything else: False).
        suffixes: file suffixes that mark a path (default: checkpoint files;
            a config reader passes (".json", ".yaml", ".yml")).
    """
    if not isinstance(value, str):
        return False
    return (
        os.sep in value
        or "/" in value
        or (os.altsep is not None and os.altsep in value)
        or value.startswith((".", "~"))
        or value.lower().endswith(tuple(suffixes))
    )


__all__ = ["CHECKPOINT_SUFFIXES", "looks_like_path"]
