"""`KeypointSpec`: one validated description of a keypoint set.

A keypoint spec names the K keypoints of a dataset (in the order the model
predicts them) and carries everything that depends on that order:

- the skeleton (limbs, drawn by the visualiser),
- the left/right flip pairs (flip augmentation and flip test),
- the per-keypoint OKS sigmas (COCO-style AP),
- the upper/lower body split (half-body augmentation),
- the per-keypoint loss weights,
- the drawing colours.

Everything is given by keypoint *name*, never by index, so a spec cannot
silently disagree with itself; the index views (`flip_indices`,
`skeleton_indices`, ...) are derived once at construction.

Example:

```python
spec = KeypointSpec(
    "my_hand",
    keypoint_names=["wrist", "left_tip", "right_tip"],
    skeleton=[("wrist", "left_tip"), ("wrist", "right_tip")],
    flip_pairs=[("left_tip", "right_tip")],
    sigmas=[0.03, 0.02, 0.02],
)
spec.flip_indices   # [0, 2, 1]
```
"""

import colorsys
import json
import math
import numbers
import os
import re

import numpy as np

from keras_pose.errors import KeypointSpecError
from keras_pose.utils.file_utils import atomic_write

_CONFIG_KEYS = (
    "name",
    "keypoint_names",
    "skeleton",
    "flip_pairs",
    "sigmas",
    "keypoint_colors",
    "limb_colors",
    "upper_body_names",
    "lower_body_names",
    "joint_weights",
    "description",
)

_MAX_LISTED = 8  # how many offending entries an error message lists


def _listing(items):
    """Render offending entries for an error message (at most _MAX_LISTED)."""
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f", ... ({len(items) - _MAX_LISTED} more)"
    return shown


def _is_sequence(value):
    return isinstance(value, (list, tuple, np.ndarray)) and not isinstance(value, (str, bytes))


# ----------------------------------------------------------------------------
# Flip-pair inference from names.
# ----------------------------------------------------------------------------

# A name is split into alternating (word, separator) parts. Words are split at
# non-alphanumeric characters and at lower->upper camel-case boundaries, so
# "L_F_Paw" -> L, F, Paw; "Right Shoulder" -> Right, Shoulder;
# "leftEye" -> left, Eye.
_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[A-Za-z]")
_SIDE_WORDS = {"left": "right", "right": "left", "l": "r", "r": "l"}


def _match_case(word, template):
    if template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _mirror_name(name):
    """The name with every left/right side token swapped, or None if it has none.

    Side tokens are whole words "left"/"right" or single letters "l"/"r" (any
    case), e.g. "left_eye" <-> "right_eye", "L_F_Paw" <-> "R_F_Paw",
    "Left Shoulder" <-> "Right Shoulder", "leftHand" <-> "rightHand".
    """
    pieces = []
    pos = 0
    swapped = False
    for match in _WORD_RE.finditer(name):
        word = match.group(0)
        pieces.append(name[pos : match.start()])
        other = _SIDE_WORDS.get(word.lower())
        if other is not None:
            pieces.append(_match_case(other, word))
            swapped = True
        else:
            pieces.append(word)
        pos = match.end()
    pieces.append(name[pos:])
    return "".join(pieces) if swapped else None


def infer_flip_pairs(keypoint_names):
    """Infer left/right flip pairs from keypoint names.

    Two keypoints are a pair when their names differ only in a side token:
    "left"/"right" or "l"/"r" as a whole word (separated by `_`, `-`, space,
    `.` or a camel-case boundary), in any letter case. Examples:
    "left_eye"/"right_eye", "L_F_Paw"/"R_F_Paw", "Left Shoulder"/"Right
    Shoulder". A name without a partner is left unpaired.

    Args:
        keypoint_names: the K keypoint names.

    Returns:
        list of `(name, mirror_name)` tuples in order of the first member's
        position in `keypoint_names`.
    """
    names = list(keypoint_names)
    present = set(names)
    pairs = []
    used = set()
    for name in names:
        if name in used:
            continue
        mirror = _mirror_name(name)
        if mirror is None or mirror == name or mirror not in present or mirror in used:
            continue
        pairs.append((name, mirror))
        used.update((name, mirror))
    return pairs


# ----------------------------------------------------------------------------
# Default colours.
# ----------------------------------------------------------------------------


def default_palette(n, offset=0.0):
    """`n` distinct RGB colours, evenly spaced in hue (deterministic).

    Args:
        n: number of colours.
        offset: hue offset in turns (0..1).

    Returns:
        list of n `(r, g, b)` int tuples in 0..255.
    """
    colours = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((offset + i / max(n, 1)) % 1.0, 0.85, 1.0)
        colours.append((int(round(r * 255)), int(round(g * 255)), int(round(b * 255))))
    return colours


# ----------------------------------------------------------------------------
# KeypointSpec.
# ----------------------------------------------------------------------------


class KeypointSpec:
    """A validated description of a keypoint set.

    Args:
        name: short identifier of the spec, e.g. "coco".
        keypoint_names: the K keypoint names, in model output order. Unique,
            non-empty strings.
        skeleton: limbs as `(name_a, name_b)` pairs of keypoint names (L of
            them). Used for drawing.
        flip_pairs: mirror pairs as `(left_name, right_name)` of keypoint names.
            Each keypoint is in at most one pair; unpaired keypoints are their
            own mirror.
        sigmas: per-keypoint OKS sigmas (K positive floats, in units of the
            object scale as in COCO's `computeOks`), or None when the dataset
            has none.
        keypoint_colors: K RGB colours `(r, g, b)` with ints in 0..255, or
            None for a deterministic default palette.
        limb_colors: L RGB colours, one per skeleton limb, or None for a
            deterministic default palette.
        upper_body_names: names of the upper-body keypoints (half-body
            augmentation), or None when the spec has no body split.
        lower_body_names: names of the lower-body keypoints, or None for "all
            keypoints not in `upper_body_names`". Give it explicitly when some
            keypoints belong to neither half (e.g. face and hands in
            COCO-WholeBody). Must not overlap `upper_body_names`.
        joint_weights: per-keypoint loss weights (K non-negative floats), or
            None for all 1.0.
        description: free text; built-ins record where their facts come from.

    Raises:
        KeypointSpecError: when any of the above is inconsistent. The message
            names the offending entries and how to fix them.
    """

    def __init__(
        self,
        name,
        keypoint_names,
        skeleton=(),
        flip_pairs=(),
        sigmas=None,
        keypoint_colors=None,
        limb_colors=None,
        upper_body_names=None,
        joint_weights=None,
        description=None,
        lower_body_names=None,
    ):
        if not isinstance(name, str) or not name.strip():
            raise KeypointSpecError(
                f"KeypointSpec name must be a non-empty string, got {name!r}. "
                "Pass a short identifier such as 'my_dataset'."
            )
        self._name = name
        self._keypoint_names = self._check_names(name, keypoint_names)
        self._index = {n: i for i, n in enumerate(self._keypoint_names)}
        self._skeleton = self._check_skeleton(skeleton)
        self._flip_pairs = self._check_flip_pairs(flip_pairs)
        self._sigmas = self._check_per_keypoint(
            sigmas, "sigmas", positive=True, what="OKS sigma"
        )
        self._joint_weights = self._check_per_keypoint(
            joint_weights, "joint_weights", positive=False, what="loss weight"
        )
        k = len(self._keypoint_names)
        self._keypoint_colors = self._check_colors(
            keypoint_colors, k, "keypoint_colors", "keypoint"
        )
        self._limb_colors = self._check_colors(
            limb_colors, len(self._skeleton), "limb_colors", "skeleton limb"
        )
        self._upper_body_names = self._check_name_subset(upper_body_names, "upper_body_names")
        self._lower_body_names = self._check_name_subset(lower_body_names, "lower_body_names")
        if self._upper_body_names is not None and self._lower_body_names is not None:
            both = [n for n in self._upper_body_names if n in set(self._lower_body_names)]
            if both:
                raise KeypointSpecError(
                    f"KeypointSpec '{name}': keypoints {_listing(both)} are in both "
                    "upper_body_names and lower_body_names. Put each keypoint in at "
                    "most one half."
                )
        if self._lower_body_names is not None and self._upper_body_names is None:
            raise KeypointSpecError(
                f"KeypointSpec '{name}': lower_body_names is given but "
                "upper_body_names is None. Give upper_body_names too (the body "
                "split needs both halves)."
            )
        if description is not None and not isinstance(description, str):
            raise KeypointSpecError(
                f"KeypointSpec '{name}': description must be a string or None, "
                f"got {type(description).__name__}."
            )
        self._description = description
        self._derive()

    # -- validation helpers --------------------------------------------------

    @staticmethod
    def _check_names(spec_name, keypoint_names):
        if not _is_sequence(keypoint_names):
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
                f"strings; entries (index, value) {_listing(bad)} are not. "
                "Give every keypoint a unique name."
            )
        seen = {}
        duplicates = []
        for i, n in enumerate(names):
            if n in seen:
                duplicates.append(f"{n!r} at indices {seen[n]} and {i}")
            else:
                seen[n] = i
        if duplicates:
            raise KeypointSpecError(
                f"KeypointSpec '{spec_name}': duplicate keypoint names: "
                + "; ".join(duplicates[:_MAX_LISTED])
                + ". Keypoint names must be unique; rename the repeated entries."
            )
        return tuple(names)

    def _unknown(self, names):
        return [n for n in names if not isinstance(n, str) or n not in self._index]

    def _check_pairs(self, pairs, arg):
        if pairs is None:
            pairs = ()
        if not _is_sequence(pairs):
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} must be a list of "
                f"(name_a, name_b) pairs, got {type(pairs).__name__}."
            )
        out = []
        malformed = []
        for entry in pairs:
            if not _is_sequence(entry) or len(entry) != 2:
                malformed.append(entry)
            else:
                out.append((entry[0], entry[1]))
        if malformed:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} entries must be pairs of two "
                f"keypoint names; got {_listing(malformed)}."
            )
        non_str = [p for p in out if not all(isinstance(x, str) for x in p)]
        if non_str:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} entries {_listing(non_str)} are "
                "not keypoint names. Pairs are given by name; convert 0-based "
                "indices with [(names[i], names[j]) for i, j in pairs]."
            )
        unknown = sorted({n for p in out for n in self._unknown(p)})
        if unknown:
            bad = [p for p in out if self._unknown(p)]
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} refers to unknown keypoint "
                f"names {_listing(unknown)} (in {_listing(bad)}). Every name must "
                f"be one of keypoint_names: {_listing(self._keypoint_names)}."
            )
        return out

    def _check_skeleton(self, skeleton):
        limbs = self._check_pairs(skeleton, "skeleton")
        loops = [p for p in limbs if p[0] == p[1]]
        if loops:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': skeleton limbs {_listing(loops)} "
                "connect a keypoint to itself. Remove them."
            )
        seen = {}
        duplicates = []
        for i, (a, b) in enumerate(limbs):
            key = frozenset((a, b))
            if key in seen:
                duplicates.append(f"{(a, b)!r} (limb {i}) repeats limb {seen[key]}")
            else:
                seen[key] = i
        if duplicates:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': duplicate skeleton limbs: "
                + "; ".join(duplicates[:_MAX_LISTED])
                + ". Give each limb once."
            )
        return tuple(limbs)

    def _check_flip_pairs(self, flip_pairs):
        pairs = self._check_pairs(flip_pairs, "flip_pairs")
        self_flips = [p for p in pairs if p[0] == p[1]]
        if self_flips:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': flip pairs {_listing(self_flips)} flip "
                "a keypoint with itself. Leave centre keypoints (e.g. the nose) out "
                "of flip_pairs; unpaired keypoints map to themselves."
            )
        seen_pairs = {}
        duplicates = []
        for p in pairs:
            key = frozenset(p)
            if key in seen_pairs:
                duplicates.append(f"{p!r} repeats {seen_pairs[key]!r}")
            else:
                seen_pairs[key] = p
        if duplicates:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': duplicate flip pairs: "
                + "; ".join(duplicates[:_MAX_LISTED])
                + ". List each (left, right) pair once; (a, b) and (b, a) are the "
                "same pair."
            )
        owner = {}
        conflicts = []
        for p in pairs:
            for n in p:
                if n in owner:
                    conflicts.append(
                        f"{n!r} is in both {owner[n]!r} and {p!r}"
                    )
                else:
                    owner[n] = p
        if conflicts:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': inconsistent flip pairs: "
                + "; ".join(conflicts[:_MAX_LISTED])
                + ". Each keypoint has at most one mirror, so it may appear in at "
                "most one flip pair; keep the correct pair and remove the other."
            )
        return tuple(pairs)

    def _check_per_keypoint(self, values, arg, positive, what):
        if values is None:
            return None
        if not _is_sequence(values):
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} must be a list of "
                f"{len(self._keypoint_names)} numbers or None, got "
                f"{type(values).__name__}."
            )
        values = list(np.asarray(values).reshape(-1).tolist()) if isinstance(
            values, np.ndarray
        ) else list(values)
        k = len(self._keypoint_names)
        if len(values) != k:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} has {len(values)} entries but "
                f"there are {k} keypoints. Give one {what} per keypoint, in "
                "keypoint_names order."
            )
        bad = []
        out = []
        for i, v in enumerate(values):
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
            fv = float(v) if ok else float("nan")
            if not ok or not math.isfinite(fv) or (fv <= 0 if positive else fv < 0):
                bad.append(f"{self._keypoint_names[i]!r}={v!r}")
            out.append(fv)
        if bad:
            rule = "positive" if positive else "non-negative"
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': every {what} must be a finite, "
                f"{rule} number; {arg} has {_listing(bad)}."
            )
        return tuple(out)

    def _check_colors(self, colors, count, arg, what):
        if colors is None:
            return None
        if isinstance(colors, np.ndarray):
            colors = colors.tolist()
        if not _is_sequence(colors):
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} must be a list of (r, g, b) "
                f"colours or None, got {type(colors).__name__}."
            )
        colors = list(colors)
        if len(colors) != count:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} has {len(colors)} colours but "
                f"there are {count} {what}s. Give one (r, g, b) colour per {what}, "
                "or None for the default palette."
            )
        out = []
        bad = []
        for i, c in enumerate(colors):
            if isinstance(c, np.ndarray):
                c = c.tolist()
            ok = _is_sequence(c) and len(c) == 3
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
                f"KeypointSpec '{self._name}': {arg} entries {_listing(bad)} are not "
                "RGB colours; each colour must be three integers in 0..255."
            )
        return tuple(out)

    def _check_name_subset(self, names, arg):
        if names is None:
            return None
        if not _is_sequence(names):
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} must be a list of keypoint "
                f"names or None, got {type(names).__name__}."
            )
        names = list(names)
        unknown = self._unknown(names)
        if unknown:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} contains unknown keypoint names "
                f"{_listing(unknown)}. Every name must be one of keypoint_names: "
                f"{_listing(self._keypoint_names)}."
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}': {arg} lists {_listing(duplicates)} more "
                "than once. List each keypoint once."
            )
        return tuple(names)

    def _derive(self):
        k = len(self._keypoint_names)
        flip = list(range(k))
        for a, b in self._flip_pairs:
            ia, ib = self._index[a], self._index[b]
            flip[ia], flip[ib] = ib, ia
        self._flip_indices = tuple(flip)
        self._skeleton_indices = tuple((self._index[a], self._index[b]) for a, b in self._skeleton)
        if self._upper_body_names is None:
            self._upper_idx = ()
            self._lower_idx = ()
        else:
            upper = {self._index[n] for n in self._upper_body_names}
            self._upper_idx = tuple(sorted(upper))
            if self._lower_body_names is None:
                self._lower_idx = tuple(i for i in range(k) if i not in upper)
            else:
                self._lower_idx = tuple(sorted(self._index[n] for n in self._lower_body_names))

        def frozen(array):
            array.setflags(write=False)
            return array

        self._sigmas_array = (
            None if self._sigmas is None else frozen(np.asarray(self._sigmas, np.float32))
        )
        self._weights_array = frozen(
            np.ones((k,), np.float32)
            if self._joint_weights is None
            else np.asarray(self._joint_weights, np.float32)
        )
        kc = self._keypoint_colors if self._keypoint_colors is not None else default_palette(k)
        lc = (
            self._limb_colors
            if self._limb_colors is not None
            else default_palette(len(self._skeleton), offset=0.5 / max(len(self._skeleton), 1))
        )
        self._kc_array = frozen(np.asarray(kc, np.uint8).reshape(k, 3))
        self._lc_array = frozen(np.asarray(lc, np.uint8).reshape(len(self._skeleton), 3))

    # -- properties ------------------------------------------------------------

    @property
    def name(self):
        """str: identifier of the spec."""
        return self._name

    @property
    def description(self):
        """str or None: free text (built-ins: source of the facts)."""
        return self._description

    @property
    def keypoint_names(self):
        """list[str]: the K keypoint names in model output order."""
        return list(self._keypoint_names)

    @property
    def num_keypoints(self):
        """int: K."""
        return len(self._keypoint_names)

    @property
    def num_limbs(self):
        """int: L, the number of skeleton limbs."""
        return len(self._skeleton)

    @property
    def skeleton(self):
        """list[tuple[str, str]]: limbs by name."""
        return list(self._skeleton)

    @property
    def skeleton_indices(self):
        """list[tuple[int, int]]: limbs as 0-based keypoint indices."""
        return list(self._skeleton_indices)

    @property
    def flip_pairs(self):
        """list[tuple[str, str]]: mirror pairs by name."""
        return list(self._flip_pairs)

    @property
    def flip_pair_indices(self):
        """list[tuple[int, int]]: mirror pairs as 0-based keypoint indices."""
        return [(self._index[a], self._index[b]) for a, b in self._flip_pairs]

    @property
    def flip_indices(self):
        """list[int]: for each keypoint, the index of its mirror (itself if unpaired).

        Flipping a (K, ...) array of per-keypoint values horizontally is
        `values[flip_indices]` plus the coordinate mirror. An involution:
        `flip[flip[i]] == i`.
        """
        return list(self._flip_indices)

    @property
    def sigmas(self):
        """np.ndarray (K,) float32 OKS sigmas, or None. Read-only."""
        return self._sigmas_array

    @property
    def joint_weights(self):
        """np.ndarray (K,) float32 per-keypoint loss weights (default 1.0). Read-only."""
        return self._weights_array

    @property
    def keypoint_colors(self):
        """np.ndarray (K, 3) uint8 RGB colours. Read-only."""
        return self._kc_array

    @property
    def limb_colors(self):
        """np.ndarray (L, 3) uint8 RGB colours, one per skeleton limb. Read-only."""
        return self._lc_array

    @property
    def upper_body_names(self):
        """list[str] or None: upper-body keypoint names as given."""
        return None if self._upper_body_names is None else list(self._upper_body_names)

    @property
    def lower_body_names(self):
        """list[str] or None: lower-body names (the rest of the keypoints unless given)."""
        if self._upper_body_names is None:
            return None
        return [self._keypoint_names[i] for i in self._lower_idx]

    @property
    def upper_body_indices(self):
        """list[int]: sorted indices of upper-body keypoints (empty without a body split)."""
        return list(self._upper_idx)

    @property
    def lower_body_indices(self):
        """list[int]: sorted indices of lower-body keypoints (empty without a body split)."""
        return list(self._lower_idx)

    def index(self, name):
        """0-based index of keypoint `name`.

        Raises:
            KeypointSpecError: if `name` is not a keypoint of this spec.
        """
        try:
            return self._index[name]
        except (KeyError, TypeError):
            import difflib

            close = difflib.get_close_matches(str(name), self._keypoint_names, n=3)
            hint = f" Did you mean {_listing(close)}?" if close else ""
            raise KeypointSpecError(
                f"KeypointSpec '{self._name}' has no keypoint {name!r}.{hint}"
            ) from None

    # -- serialisation ---------------------------------------------------------

    def get_config(self):
        """A JSON-serialisable dict; `from_config(get_config())` round-trips exactly.

        Optional fields that were not given (colours, weights, body split,
        sigmas) are stored as None and regenerated identically.
        """

        def pairs(ps):
            return [[a, b] for a, b in ps]

        def opt(values, conv=list):
            return None if values is None else conv(values)

        return {
            "name": self._name,
            "keypoint_names": list(self._keypoint_names),
            "skeleton": pairs(self._skeleton),
            "flip_pairs": pairs(self._flip_pairs),
            "sigmas": opt(self._sigmas),
            "keypoint_colors": opt(self._keypoint_colors, lambda cs: [list(c) for c in cs]),
            "limb_colors": opt(self._limb_colors, lambda cs: [list(c) for c in cs]),
            "upper_body_names": opt(self._upper_body_names),
            "lower_body_names": opt(self._lower_body_names),
            "joint_weights": opt(self._joint_weights),
            "description": self._description,
        }

    @classmethod
    def from_config(cls, config):
        """Build a spec from `get_config()` output (unknown keys are an error)."""
        if not isinstance(config, dict):
            raise KeypointSpecError(
                f"KeypointSpec config must be a dict, got {type(config).__name__}."
            )
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            raise KeypointSpecError(
                f"KeypointSpec config has unknown keys {_listing(unknown)}; "
                f"allowed keys are {_listing(_CONFIG_KEYS)}."
            )
        missing = [k for k in ("name", "keypoint_names") if k not in config]
        if missing:
            raise KeypointSpecError(
                f"KeypointSpec config is missing required keys {_listing(missing)}."
            )
        return cls(**config)

    def to_dict(self):
        """Same as `get_config()`."""
        return self.get_config()

    @classmethod
    def from_dict(cls, data):
        """Same as `from_config()`."""
        return cls.from_config(data)

    def to_json(self, path):
        """Write the config to a JSON file, atomically."""
        with atomic_write(path, "w") as f:
            json.dump(self.get_config(), f, indent=2)
            f.write("\n")

    def to_yaml(self, path):
        """Write the config to a YAML file, atomically."""
        import yaml

        with atomic_write(path, "w") as f:
            yaml.safe_dump(self.get_config(), f, sort_keys=False, default_flow_style=None)

    def save(self, path):
        """Write to `path`: YAML for .yaml/.yml, JSON otherwise."""
        if os.fspath(path).lower().endswith((".yaml", ".yml")):
            self.to_yaml(path)
        else:
            self.to_json(path)

    @classmethod
    def from_file(cls, path):
        """Load a spec from a .json / .yaml / .yml file.

        The file holds either a spec config (as written by `to_json`) or a
        COCO-format annotation file whose `categories` carry `keypoints` (and
        a 1-based `skeleton`); then the spec is built with
        `from_coco_category` (flip pairs inferred from left/right names).

        Raises:
            FileNotFoundError: the file does not exist.
            KeypointSpecError: unsupported extension or malformed content.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Keypoint spec file not found: {path!r}. Check the path, or pass a "
                "built-in name (see keras_pose.keypoints.list_keypoint_specs())."
            )
        lower = path.lower()
        if not lower.endswith((".json", ".yaml", ".yml")):
            raise KeypointSpecError(
                f"Keypoint spec file {path!r} has an unsupported extension; use "
                ".json, .yaml or .yml."
            )
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if lower.endswith(".json"):
            try:
                data = json.loads(text)
            except ValueError as e:
                raise KeypointSpecError(
                    f"Keypoint spec file {path!r} is not valid JSON: {e}"
                ) from e
        else:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise KeypointSpecError(
                    f"Keypoint spec file {path!r} is not valid YAML: {e}"
                ) from e
        if isinstance(data, dict) and "categories" in data and "keypoint_names" not in data:
            return cls._from_coco_file_categories(data["categories"], path)
        try:
            return cls.from_config(data)
        except KeypointSpecError as e:
            raise KeypointSpecError(f"In keypoint spec file {path!r}: {e}") from e

    @classmethod
    def _from_coco_file_categories(cls, categories, path):
        with_kpts = [
            c for c in (categories or []) if isinstance(c, dict) and c.get("keypoints")
        ]
        if not with_kpts:
            raise KeypointSpecError(
                f"COCO file {path!r} has no category with 'keypoints'; it cannot "
                "define a keypoint spec."
            )
        first = with_kpts[0]
        different = [
            c.get("name", c.get("id"))
            for c in with_kpts[1:]
            if list(c["keypoints"]) != list(first["keypoints"])
        ]
        if different:
            raise KeypointSpecError(
                f"COCO file {path!r}: categories {_listing(different)} use different "
                f"keypoints from category {first.get('name')!r}; build a spec per "
                "category with KeypointSpec.from_coco_category."
            )
        return cls.from_coco_category(first)

    @classmethod
    def from_coco_category(cls, category, flip_pairs=None, sigmas=None, name=None, **kwargs):
        """Build a spec from a COCO-format `categories[i]` entry.

        Args:
            category: dict with `keypoints` (K names) and optionally `skeleton`
                (list of 1-based `[i, j]` keypoint index pairs, COCO convention)
                and `name`.
            flip_pairs: `(left, right)` name pairs, or None to infer them from
                the names (see `infer_flip_pairs`).
            sigmas: K OKS sigmas or None.
            name: spec name; default the category's `name` (or "custom").
            **kwargs: other `KeypointSpec` arguments (colours, body split,
                joint weights, description).

        Raises:
            KeypointSpecError: missing keypoints or a skeleton index outside
                1..K.
        """
        if not isinstance(category, dict) or "keypoints" not in category:
            raise KeypointSpecError(
                "A COCO category must be a dict with a 'keypoints' list of names "
                f"(and a 1-based 'skeleton'); got {str(category)[:200]!r}."
            )
        names = list(category["keypoints"])
        k = len(names)
        raw = category.get("skeleton") or []
        skeleton = []
        bad = []
        for entry in raw:
            if (
                _is_sequence(entry)
                and len(entry) == 2
                and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in entry)
                and all(1 <= v <= k for v in entry)
            ):
                skeleton.append((names[entry[0] - 1], names[entry[1] - 1]))
            else:
                bad.append(entry)
        spec_name = name or category.get("name") or "custom"
        if bad:
            hint = ""
            flat = [v for e in raw if _is_sequence(e) for v in e if isinstance(v, numbers.Integral)]
            if flat and min(flat) == 0 and max(flat) <= k - 1:
                hint = " The skeleton looks 0-based; COCO skeletons are 1-based (add 1)."
            raise KeypointSpecError(
                f"COCO category {spec_name!r}: skeleton entries {_listing(bad)} are not "
                f"pairs of 1-based keypoint indices in 1..{k} (the category has {k} "
                f"keypoints).{hint} Fix or drop those entries."
            )
        if flip_pairs is None:
            flip_pairs = infer_flip_pairs(names)
        return cls(
            spec_name,
            names,
            skeleton=skeleton,
            flip_pairs=flip_pairs,
            sigmas=sigmas,
            **kwargs,
        )

    def to_coco_category(self, category_id=1, supercategory=None):
        """The spec as a COCO `categories[i]` entry (1-based skeleton)."""
        return {
            "id": category_id,
            "name": self._name,
            "supercategory": supercategory if supercategory is not None else self._name,
            "keypoints": list(self._keypoint_names),
            "skeleton": [[i + 1, j + 1] for i, j in self._skeleton_indices],
        }

    # -- comparison ------------------------------------------------------------

    def _canonical(self):
        sig = None if self._sigmas is None else tuple(self._sigmas_array.tolist())
        return (
            self._name,
            self._keypoint_names,
            self._skeleton,
            self._flip_pairs,
            sig,
            tuple(self._weights_array.tolist()),
            self._kc_array.tobytes(),
            self._lc_array.tobytes(),
            self._upper_idx,
            self._lower_idx,
            self._description,
        )

    def __eq__(self, other):
        if not isinstance(other, KeypointSpec):
            return NotImplemented
        return self._canonical() == other._canonical()

    def __hash__(self):
        return hash((self._name, self._keypoint_names, self._skeleton, self._flip_pairs))

    def __repr__(self):
        return (
            f"KeypointSpec(name={self._name!r}, num_keypoints={self.num_keypoints}, "
            f"num_limbs={self.num_limbs}, num_flip_pairs={len(self._flip_pairs)}, "
            f"sigmas={'yes' if self._sigmas is not None else 'none'})"
        )
