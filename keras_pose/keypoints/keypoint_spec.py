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

import numpy as np

from keras_pose.errors import KeypointSpecError
from keras_pose.keypoints import spec_io
from keras_pose.keypoints.spec_defaults import default_palette
from keras_pose.keypoints.spec_validation import check_colors
from keras_pose.keypoints.spec_validation import check_flip_pairs
from keras_pose.keypoints.spec_validation import check_name_subset
from keras_pose.keypoints.spec_validation import check_names
from keras_pose.keypoints.spec_validation import check_per_keypoint
from keras_pose.keypoints.spec_validation import check_skeleton
from keras_pose.keypoints.spec_validation import listing

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
        self._keypoint_names = check_names(name, keypoint_names)
        self._index = {n: i for i, n in enumerate(self._keypoint_names)}
        self._skeleton = check_skeleton(name, self._index, skeleton)
        self._flip_pairs = check_flip_pairs(name, self._index, flip_pairs)
        names = self._keypoint_names
        self._sigmas = check_per_keypoint(name, names, sigmas, "sigmas", positive=True, what="OKS sigma")
        self._joint_weights = check_per_keypoint(
            name, names, joint_weights, "joint_weights", positive=False, what="loss weight"
        )
        k = len(self._keypoint_names)
        self._keypoint_colors = check_colors(name, keypoint_colors, k, "keypoint_colors", "keypoint")
        self._limb_colors = check_colors(name, limb_colors, len(self._skeleton), "limb_colors", "skeleton limb")
        self._upper_body_names = check_name_subset(name, self._index, names, upper_body_names, "upper_body_names")
        self._lower_body_names = check_name_subset(name, self._index, names, lower_body_names, "lower_body_names")
        if self._upper_body_names is not None and self._lower_body_names is not None:
            both = [n for n in self._upper_body_names if n in set(self._lower_body_names)]
            if both:
                raise KeypointSpecError(
                    f"KeypointSpec '{name}': keypoints {listing(both)} are in both "
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
            hint = f" Did you mean {listing(close)}?" if close else ""
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
                f"KeypointSpec config has unknown keys {listing(unknown)}; "
                f"allowed keys are {listing(_CONFIG_KEYS)}."
            )
        missing = [k for k in ("name", "keypoint_names") if k not in config]
        if missing:
            raise KeypointSpecError(
                f"KeypointSpec config is missing required keys {listing(missing)}."
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
        spec_io.write_json(self, path)

    def to_yaml(self, path):
        """Write the config to a YAML file, atomically."""
        spec_io.write_yaml(self, path)

    def save(self, path):
        """Write to `path`: YAML for .yaml/.yml, JSON otherwise."""
        spec_io.save(self, path)

    @classmethod
    def from_file(cls, path):
        """Load a spec from a .json / .yaml / .yml file: a spec config, or a COCO file's
        keypoint `categories` (see `keras_pose.keypoints.spec_io.read_file`).

        Raises:
            FileNotFoundError: the file does not exist.
            KeypointSpecError: unsupported extension or malformed content.
        """
        return spec_io.read_file(cls, path)

    @classmethod
    def from_coco_category(cls, category, flip_pairs=None, sigmas=None, name=None, **kwargs):
        """Build a spec from a COCO-format `categories[i]` entry (1-based `skeleton`;
        flip pairs inferred from left/right names unless given; see
        `keras_pose.keypoints.spec_io.from_coco_category`)."""
        return spec_io.from_coco_category(cls, category, flip_pairs=flip_pairs, sigmas=sigmas, name=name, **kwargs)

    def to_coco_category(self, category_id=1, supercategory=None):
        """The spec as a COCO `categories[i]` entry (1-based skeleton)."""
        return spec_io.to_coco_category(self, category_id, supercategory)

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
