"""Validation of `KeypointSpec` arguments; every message names the entries and the fix."""

import math
import numbers

import numpy as np

from keras_pose.errors import KeypointSpecError

_MAX_LISTED = 8  # how many offending entries an error message lists


def listing(items):
    """Render offending entries for an error message (at most _MAX_LISTED)."""
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f", ... ({len(items) - _MAX_LISTED} more)"
    return shown


def is_sequence(value):
    return isinstance(value, (list, tuple, np.ndarray)) and not isinstance(value, (str, bytes))


def check_repeats(spec_name, items, key, describe, what, fix):
    """Raise a KeypointSpecError listing the items whose ``key`` repeats an earlier item's.

    ``describe(item, i, (j, earlier))`` words one repeat (``i`` its position,
    ``j`` / ``earlier`` the first item with that key).
    """
    seen, repeats = {}, []
    for i, item in enumerate(items):
        k = key(item)
        if k in seen:
            repeats.append(describe(item, i, seen[k]))
        else:
            seen[k] = (i, item)
    if repeats:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {what}: " + "; ".join(repeats[:_MAX_LISTED]) + f". {fix}"
        )


def check_names(spec_name, keypoint_names):
    """The K keypoint names as a tuple: non-empty, unique strings."""
    if not is_sequence(keypoint_names):
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': keypoint_names must be a list of "
            f"strings, got {type(keypoint_names).__name__}."
        )
    names = list(keypoint_names)
    if not names:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': keypoint_names is empty. Give the "
            "names of the K keypoints in model output order."
        )
    bad = [
        (i, n) for i, n in enumerate(names) if not isinstance(n, str) or not n.strip()
    ]
    if bad:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': keypoint names must be non-empty "
            f"strings; entries (index, value) {listing(bad)} are not. "
            "Give every keypoint a unique name."
        )
    check_repeats(
        spec_name, names, key=lambda n: n, describe=lambda n, i, first: f"{n!r} at indices {first[0]} and {i}",
        what="duplicate keypoint names", fix="Keypoint names must be unique; rename the repeated entries.",
    )
    return tuple(names)

def unknown_names(names, index):
    """The entries of ``names`` that are not keypoint names of ``index`` (name -> position)."""
    return [n for n in names if not isinstance(n, str) or n not in index]

def check_pairs(spec_name, index, pairs, arg):
    """``(name_a, name_b)`` pairs of known keypoint names."""
    if pairs is None:
        pairs = ()
    if not is_sequence(pairs):
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} must be a list of "
            f"(name_a, name_b) pairs, got {type(pairs).__name__}."
        )
    out = []
    malformed = []
    for entry in pairs:
        if not is_sequence(entry) or len(entry) != 2:
            malformed.append(entry)
        else:
            out.append((entry[0], entry[1]))
    if malformed:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} entries must be pairs of two "
            f"keypoint names; got {listing(malformed)}."
        )
    non_str = [p for p in out if not all(isinstance(x, str) for x in p)]
    if non_str:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} entries {listing(non_str)} are "
            "not keypoint names. Pairs are given by name; convert 0-based "
            "indices with [(names[i], names[j]) for i, j in pairs]."
        )
    unknown = sorted({n for p in out for n in unknown_names(p, index)})
    if unknown:
        bad = [p for p in out if unknown_names(p, index)]
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} refers to unknown keypoint "
            f"names {listing(unknown)} (in {listing(bad)}). Every name must "
            f"be one of keypoint_names: {listing(index)}."
        )
    return out

def check_skeleton(spec_name, index, skeleton):
    """Limbs by name: known names, no loops, no repeats."""
    limbs = check_pairs(spec_name, index, skeleton, "skeleton")
    loops = [p for p in limbs if p[0] == p[1]]
    if loops:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': skeleton limbs {listing(loops)} "
            "connect a keypoint to itself. Remove them."
        )
    check_repeats(
        spec_name, limbs, key=frozenset, describe=lambda p, i, first: f"{p!r} (limb {i}) repeats limb {first[0]}",
        what="duplicate skeleton limbs", fix="Give each limb once.",
    )
    return tuple(limbs)

def check_flip_pairs(spec_name, index, flip_pairs):
    """Mirror pairs by name: known names, each keypoint in at most one pair."""
    pairs = check_pairs(spec_name, index, flip_pairs, "flip_pairs")
    self_flips = [p for p in pairs if p[0] == p[1]]
    if self_flips:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': flip pairs {listing(self_flips)} flip "
            "a keypoint with itself. Leave centre keypoints (e.g. the nose) out "
            "of flip_pairs; unpaired keypoints map to themselves."
        )
    check_repeats(
        spec_name, pairs, key=frozenset, describe=lambda p, i, first: f"{p!r} repeats {first[1]!r}",
        what="duplicate flip pairs", fix="List each (left, right) pair once; (a, b) and (b, a) are the same pair.",
    )
    check_repeats(
        spec_name, [(n, p) for p in pairs for n in p], key=lambda entry: entry[0],
        describe=lambda entry, i, first: f"{entry[0]!r} is in both {first[1][1]!r} and {entry[1]!r}",
        what="inconsistent flip pairs",
        fix="Each keypoint has at most one mirror, so it may appear in at most one flip pair; keep the correct "
        "pair and remove the other.",
    )
    return tuple(pairs)

def check_per_keypoint(spec_name, keypoint_names, values, arg, positive, what):
    """K finite numbers (positive or non-negative) as a tuple, or None."""
    if values is None:
        return None
    if not is_sequence(values):
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} must be a list of "
            f"{len(keypoint_names)} numbers or None, got "
            f"{type(values).__name__}."
        )
    values = list(np.asarray(values).reshape(-1).tolist()) if isinstance(
        values, np.ndarray
    ) else list(values)
    k = len(keypoint_names)
    if len(values) != k:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} has {len(values)} entries but "
            f"there are {k} keypoints. Give one {what} per keypoint, in "
            "keypoint_names order."
        )
    bad = []
    out = []
    for i, v in enumerate(values):
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
        fv = float(v) if ok else float("nan")
        if not ok or not math.isfinite(fv) or (fv <= 0 if positive else fv < 0):
            bad.append(f"{keypoint_names[i]!r}={v!r}")
        out.append(fv)
    if bad:
        rule = "positive" if positive else "non-negative"
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': every {what} must be a finite, "
            f"{rule} number; {arg} has {listing(bad)}."
        )
    return tuple(out)

def check_colors(spec_name, colors, count, arg, what):
    """``count`` RGB colours (three ints in 0..255) as a tuple, or None."""
    if colors is None:
        return None
    if isinstance(colors, np.ndarray):
        colors = colors.tolist()
    if not is_sequence(colors):
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} must be a list of (r, g, b) "
            f"colours or None, got {type(colors).__name__}."
        )
    colors = list(colors)
    if len(colors) != count:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} has {len(colors)} colours but "
            f"there are {count} {what}s. Give one (r, g, b) colour per {what}, "
            "or None for the default palette."
        )
    out = []
    bad = []
    for i, c in enumerate(colors):
        if isinstance(c, np.ndarray):
            c = c.tolist()
        ok = is_sequence(c) and len(c) == 3
        if ok:
            for v in c:
                if isinstance(v, bool) or not isinstance(v, numbers.Real):
                    ok = False
                elif not (float(v).is_integer() and 0 <= v <= 255):
                    ok = False
        if not ok:
            bad.append(f"#{i}={c!r}")
        else:
            out.append(tuple(int(v) for v in c))
    if bad:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} entries {listing(bad)} are not "
            "RGB colours; each colour must be three integers in 0..255."
        )
    return tuple(out)

def check_name_subset(spec_name, index, keypoint_names, names, arg):
    """A subset of the keypoint names, each once, as a tuple, or None."""
    if names is None:
        return None
    if not is_sequence(names):
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} must be a list of keypoint "
            f"names or None, got {type(names).__name__}."
        )
    names = list(names)
    unknown = unknown_names(names, index)
    if unknown:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} contains unknown keypoint names "
            f"{listing(unknown)}. Every name must be one of keypoint_names: "
            f"{listing(keypoint_names)}."
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise KeypointSpecError(
            f"KeypointSpec '{spec_name}': {arg} lists {listing(duplicates)} more "
            "than once. List each keypoint once."
        )
    return tuple(names)
