"""`KeyAccountant`: every tensor of a checkpoint is consumed, ignored or reported.

Converters pop the tensors they consume (checking shapes and that every value is
finite); `finish()` raises one `CheckpointError` listing every missing,
unexpected, misshapen and non-finite (NaN / Inf) tensor, with shapes in the
checkpoint's own layout, plus a hint naming the model family the keys look like
when they look like another family's (`families.match_family`).
`out_channels` reads a layer's width from the file robustly.
"""

import fnmatch
import re

import numpy as np

from keras_pose.conversion.families import match_family
from keras_pose.errors import CheckpointError


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
        match = match_family(self._all_keys)
        if match is None:
            return (
                "The keys do not look like any supported model family; first keys: "
                + ", ".join(self._all_keys[:5])
                + "."
            )
        if match.family in self.family_aliases:
            return None
        return f"The keys look like {match.description} (family {match.family!r}), not a {self.family} checkpoint."

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



__all__ = ["KeyAccountant", "companion_keys", "out_channels"]
