"""`KeypointSpec` files and COCO categories: JSON / YAML I/O and `categories` conversion.

Functions taking ``cls`` build specs of that class (`KeypointSpec` calls them
from its classmethods), so this module does not import the class.
"""

import json
import numbers
import os

from keras_pose.errors import KeypointSpecError
from keras_pose.keypoints.spec_defaults import infer_flip_pairs
from keras_pose.keypoints.spec_validation import is_sequence
from keras_pose.keypoints.spec_validation import listing
from keras_pose.utils.file_utils import atomic_write


def write_json(spec, path):
    """Write a spec's config to a JSON file, atomically."""
    with atomic_write(path, "w") as f:
        json.dump(spec.get_config(), f, indent=2)
        f.write("\n")

def write_yaml(spec, path):
    """Write a spec's config to a YAML file, atomically."""
    import yaml

    with atomic_write(path, "w") as f:
        yaml.safe_dump(spec.get_config(), f, sort_keys=False, default_flow_style=None)

def save(spec, path):
    """Write a spec to `path`: YAML for .yaml/.yml, JSON otherwise."""
    if os.fspath(path).lower().endswith((".yaml", ".yml")):
        write_yaml(spec, path)
    else:
        write_json(spec, path)

def read_file(cls, path):
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
        return from_coco_file_categories(cls, data["categories"], path)
    try:
        return cls.from_config(data)
    except KeypointSpecError as e:
        raise KeypointSpecError(f"In keypoint spec file {path!r}: {e}") from e

def from_coco_file_categories(cls, categories, path):
    """A spec from the `categories` of a COCO file (all keypoint categories must agree)."""
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
            f"COCO file {path!r}: categories {listing(different)} use different "
            f"keypoints from category {first.get('name')!r}; build a spec per "
            "category with KeypointSpec.from_coco_category."
        )
    return from_coco_category(cls, first)

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
            is_sequence(entry)
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
        flat = [v for e in raw if is_sequence(e) for v in e if isinstance(v, numbers.Integral)]
        if flat and min(flat) == 0 and max(flat) <= k - 1:
            hint = " The skeleton looks 0-based; COCO skeletons are 1-based (add 1)."
        raise KeypointSpecError(
            f"COCO category {spec_name!r}: skeleton entries {listing(bad)} are not "
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

def to_coco_category(spec, category_id=1, supercategory=None):
    """A spec as a COCO `categories[i]` entry (1-based skeleton)."""
    return {
        "id": category_id,
        "name": spec.name,
        "supercategory": supercategory if supercategory is not None else spec.name,
        "keypoints": spec.keypoint_names,
        "skeleton": [[i + 1, j + 1] for i, j in spec.skeleton_indices],
    }
