"""Reader for COCO-format keypoint annotation files.

Covers every dataset that ships COCO-style keypoint json: COCO, AP-10K, AI
Challenger, CrowdPose, OCHuman, Animal-Pose and custom files. Parsing and
filtering follow mmpose 1.x `BaseCocoStyleDataset` (`_load_annotations`,
`parse_data_info`, `_is_valid_instance`); the differences are listed in the
docstring of `load_coco_keypoints`.
"""

import json
import math
import os
import warnings

import numpy as np

from keras_pose.datasets.pose_record import (
    AnnotationFileNotFoundError,
    ImageInfo,
    PoseDataset,
    PoseInstance,
    _Problems,
    _spec_label,
    check_image_file,
    normalize_check_images,
    normalize_mode,
    resolve_keypoint_spec,
)
from keras_pose.errors import AnnotationError, ImageReadError

# Area assumed for an annotation without "area" (AIC, CrowdPose): the box
# area times 0.53, as xtcocotools does for OKS when `use_area=False`.
BOX_AREA_FACTOR = 0.53


def read_json_file(path, what="annotation file"):
    """Load a json file, turning every failure into a named error."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AnnotationFileNotFoundError(f"{what} {path!r} does not exist.")
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except json.JSONDecodeError as e:
        raise AnnotationError(
            f"{what} {path!r} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}. "
            "The file is truncated or malformed; re-download or regenerate it."
        ) from e
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{what} {path!r} is not UTF-8 text ({e}).") from e
    except RecursionError:
        raise AnnotationError(f"{what} {path!r} nests its JSON too deeply to read; it is not an annotation "
                              "file.") from None


def _is_int_id(value):
    """An integer annotation id (an integral float such as 5.0 counts)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()


def renumber_annotation_ids(annotations, where, positive=False, stacklevel=3):
    """New ids for annotations whose id repeats an earlier one (or is unusable).

    pycocotools keys annotations by id: a repeated id silently replaces the
    earlier person, which then never counts (ground-truth predictions score
    AP 0.835 instead of 1). The first annotation with an id keeps it; every
    later one gets a fresh id above the largest id of the file, in file
    order, and one warning lists what was renumbered.

    Args:
        annotations: the `annotations` list of a COCO file (dicts; other
            entries are ignored).
        where: text naming the file, for the warning.
        positive: also renumber ids that are missing, not integers, or not
            positive (pycocotools' matching treats id 0 as "unmatched").
        stacklevel: of the warning.

    Returns:
        dict `position in annotations -> new id` (empty when nothing changes).
    """
    ids = [ann.get("id") if isinstance(ann, dict) else None for ann in annotations]
    usable = [_is_int_id(i) and (not positive or i > 0) for i in ids]
    next_id = max([int(i) for i, ok in zip(ids, usable) if ok] + [0]) + 1
    seen, changes, repeated, unusable = set(), {}, [], 0
    for index, (ann_id, ok) in enumerate(zip(ids, usable)):
        if not isinstance(annotations[index], dict) or (not positive and not _is_int_id(ann_id)):
            continue
        if ok and int(ann_id) not in seen:
            seen.add(int(ann_id))
            continue
        if ok:
            repeated.append(int(ann_id))
        else:
            unusable += 1
        changes[index] = next_id
        next_id += 1
    if changes:
        parts = []
        if repeated:
            shown = sorted(set(repeated))
            parts.append(
                f"{len(repeated)} annotation(s) repeat an earlier id (ids {shown[:10]}"
                + (", ..." if len(shown) > 10 else "") + ")"
            )
        if unusable:
            parts.append(f"{unusable} annotation(s) have no positive integer id")
        new = sorted(changes.values())
        warnings.warn(
            f"{' and '.join(parts)} {where}; gave them the new ids {new[0]}..{new[-1]} so every "
            "person counts (pycocotools keys annotations by id). Give each annotation a unique "
            "id to silence this.",
            stacklevel=stacklevel,
        )
    return changes


def _finite_array(values, name, context):
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None, f"non-numeric {name} in {context}"
    if not np.isfinite(array).all():
        return None, f"non-finite {name} in {context}"
    return array, None


def load_coco_keypoints(
    annotation_file,
    image_root=None,
    keypoint_spec=None,
    mode="train",
    skip_invalid=False,
    check_images=True,
):
    """Read a COCO-format keypoint annotation file.

    Args:
        annotation_file: path of the json file (`images`, `annotations`,
            optionally `categories`).
        image_root: folder the image `file_name`s are relative to. Defaults
            to the folder of `annotation_file`.
        keypoint_spec: KeypointSpec, spec name, keypoint count (int), or
            `None` to take K from each annotation's category `keypoints`
            list. Every annotation must have exactly 3*K keypoint values.
        mode: "train" or "eval".
            - "train" keeps instances usable as training targets, as mmpose
              does: crowd regions (`iscrowd`), people with no labelled
              keypoint (`num_keypoints == 0` or all values zero) and boxes
              with no area after clipping to the image are dropped.
            - "eval" keeps the same instance list (mmpose applies that filter
              in test mode too, so top-down evaluation on ground-truth boxes
              matches mmpose), keeps the set-aside annotations in
              `dataset.ignored_instances` (crowd regions and unlabelled
              people are ignore regions for COCO evaluation and bottom-up
              masks) and checks every image of the table, not only those
              with instances.
        skip_invalid: when True, invalid records are skipped and reported in
            one `warnings.warn` naming how many were skipped and why; when
            False (default) the first one raises. Invalid: missing keys, a
            non-integer id, wrong keypoint array length, non-finite values,
            visibility flags other than 0/1/2, a negative box width/height,
            a box entirely outside the listed image size, a labelled
            keypoint more than the image's width/height outside the image,
            an unknown image, a missing image file, ... File-level problems
            (bad JSON, missing `images`/`annotations`) always raise; so does
            a file in which every annotation is invalid.
        check_images: True (or "exists") checks that each image file exists;
            "decode" also decodes it with OpenCV and compares its (EXIF
            upright) size with the listed width/height, for every image with
            annotations; False skips the check.

    Returns:
        A `PoseDataset` of `PoseInstance` in file order (images in the order
        of `images`, annotations in file order within an image). Boxes are
        clipped to the image as mmpose does (`x1 = clip(x, 0, W-1)`,
        `x2 = clip(x+w, 0, W-1)`, same for y) and stored as xywh.

    Notes (differences from mmpose 1.x):
        - `keypoints_visible` keeps the COCO flag 0/1/2 (mmpose clamps to 1).
        - An annotation without `bbox` or `keypoints` is an error (mmpose
          skips it silently).
        - `num_keypoints` missing from an annotation is counted as the number
          of keypoints with v > 0 (mmpose counts non-zero coordinates).
        - `area` missing (AIC, CrowdPose) is filled with 0.53 * w * h of the
          original box, the area xtcocotools uses for those datasets.
        - `iscrowd` missing counts as 0.
        - An annotation id used twice is given a fresh id (above the file's
          largest) with a warning, so both people are kept; pycocotools (and
          `CocoKeypointEvaluator`, which renumbers the same way) would
          otherwise drop one of them.

    Raises:
        AnnotationError: malformed file or record; the message names the file
            and the annotation id.
        ImageReadError: a missing or undecodable image (when checked).
    """
    mode = normalize_mode(mode)
    check = normalize_check_images(check_images)
    annotation_file = os.fspath(annotation_file)
    spec, spec_k = resolve_keypoint_spec(keypoint_spec)
    if image_root is None:
        image_root = os.path.dirname(os.path.abspath(annotation_file))
    image_root = os.fspath(image_root)

    data = read_json_file(annotation_file)
    where = f"in {annotation_file!r}"
    if not isinstance(data, dict):
        raise AnnotationError(
            f"annotation file {annotation_file!r} holds a {type(data).__name__}; a COCO keypoint "
            "file is a JSON object with 'images' and 'annotations' (a list is a COCO results "
            "file -- use load_coco_detections -- or an MPII file -- use load_mpii)."
        )
    for key in ("images", "annotations"):
        if key not in data:
            raise AnnotationError(
                f"annotation file {annotation_file!r} has no {key!r} list (keys: "
                f"{sorted(data)}); it is not a COCO keypoint annotation file."
            )
        if not isinstance(data[key], list):
            raise AnnotationError(
                f"{key!r} in annotation file {annotation_file!r} must be a list; got "
                f"{type(data[key]).__name__}."
            )
    categories = data.get("categories") or []
    if not isinstance(categories, list):
        raise AnnotationError(f"'categories' in {annotation_file!r} must be a list.")

    problems = _Problems(annotation_file, skip_invalid, what="annotation id")

    # Categories -> keypoint count.
    category_k = {}
    for cat in categories:
        if not isinstance(cat, dict) or "id" not in cat:
            raise AnnotationError(f"a category {where} has no 'id': {cat!r}.")
        names = cat.get("keypoints")
        category_k[cat["id"]] = len(names) if isinstance(names, list) and names else None
    single_category = categories[0]["id"] if len(categories) == 1 else None

    # Image table.
    images = {}
    image_errors = {}
    for index, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise AnnotationError(f"image entry #{index} {where} has no 'id': {img!r:.200}.")
        image_id = img["id"]
        if image_id in images or image_id in image_errors:
            raise AnnotationError(f"image id {image_id} is listed twice {where}.")
        missing = [k for k in ("file_name", "width", "height") if k not in img]
        if missing:
            image_errors[image_id] = (
                "image entry without " + "/".join(missing),
                f"image id {image_id} {where} has no {missing} (needed to locate the image and "
                "clip boxes); fix the 'images' entry.",
            )
            continue
        try:
            width, height = int(img["width"]), int(img["height"])
        except (TypeError, ValueError):
            width = height = -1
        if width <= 0 or height <= 0:
            image_errors[image_id] = (
                "invalid image size",
                f"image id {image_id} {where} has width={img['width']!r}, height={img['height']!r}; "
                "both must be positive integers.",
            )
            continue
        file_name = str(img["file_name"])
        images[image_id] = ImageInfo(file_name, width, height, os.path.join(image_root, file_name))

    # Annotations grouped by image, in file order.
    per_image = {image_id: [] for image_id in images}
    new_ids = renumber_annotation_ids(data["annotations"], where)
    valid_records = 0
    for index, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            problems.report(
                "non-object annotation", f"#{index}",
                f"annotation #{index} {where} is a {type(ann).__name__}, not an object.",
            )
            continue
        ann_id = ann.get("id", f"#{index}")
        context = f"annotation id {ann_id} {where}"
        missing = [k for k in ("id", "image_id", "bbox", "keypoints") if k not in ann]
        if missing:
            problems.report(
                "missing keys", ann_id,
                f"{context} has no {missing} (keys: {sorted(ann)}); a keypoint annotation needs "
                "'id', 'image_id', 'bbox' and 'keypoints'. Pass skip_invalid=True to skip it.",
            )
            continue
        if not _is_int_id(ann["id"]):
            problems.report(
                "non-integer id", ann_id,
                f"{context} has id {ann['id']!r}; annotation ids are integers. Fix the id.",
            )
            continue
        instance_id = new_ids.get(index, int(ann["id"]))
        image_id = ann["image_id"]
        if image_id in image_errors:
            reason, message = image_errors[image_id]
            problems.report(reason, ann_id, f"{context}: {message}")
            continue
        if image_id not in images:
            problems.report(
                "unknown image_id", ann_id,
                f"{context} refers to image_id {image_id!r}, which is not in 'images'.",
            )
            continue
        image = images[image_id]

        category_id = ann.get("category_id", single_category)
        if category_id is None:
            problems.report(
                "missing category_id", ann_id,
                f"{context} has no 'category_id' and the file has {len(categories)} categories.",
            )
            continue
        if spec_k is not None:
            k, k_source = spec_k, _spec_label(spec, spec_k)
        else:
            k = category_k.get(category_id)
            k_source = f"category {category_id}'s keypoint list ({k} names)"
            if k is None:
                problems.report(
                    "unknown keypoint count", ann_id,
                    f"{context}: category {category_id} lists no 'keypoints' names, so the "
                    "keypoint count is unknown; pass keypoint_spec=.",
                )
                continue

        bbox, err = _finite_array(ann["bbox"], "bbox", context)
        if err is None and bbox.shape != (4,):
            err = f"{context} has a bbox with {bbox.size} values; expected [x, y, w, h]"
        if err:
            problems.report("invalid bbox", ann_id, err + ".")
            continue
        kpts, err = _finite_array(ann["keypoints"], "keypoints", context)
        if err:
            problems.report("invalid keypoint values", ann_id, err + ".")
            continue
        if kpts.ndim != 1:
            problems.report(
                "wrong keypoint array length", ann_id,
                f"{context} has a nested keypoints array of shape {kpts.shape}; expected a flat "
                f"list of {3 * k} values (x, y, v per keypoint).",
            )
            continue
        if kpts.size != 3 * k:
            problems.report(
                "wrong keypoint array length", ann_id,
                f"{context} has {kpts.size} keypoint values ({kpts.size / 3:g} keypoints as "
                f"x, y, v triplets) but {k_source} needs {3 * k} ({k} keypoints). Pass the "
                "keypoint_spec that matches this file.",
            )
            continue

        kpts = kpts.reshape(k, 3)
        visible = kpts[:, 2]
        if not np.isin(visible, (0.0, 1.0, 2.0)).all():
            problems.report(
                "invalid visibility flag", ann_id,
                f"{context} has keypoint visibility flags other than 0, 1 or 2: "
                f"{sorted(set(visible.tolist()) - {0.0, 1.0, 2.0})} (COCO: 0 unlabelled, 1 occluded, "
                "2 visible). Fix the flags.",
            )
            continue

        iscrowd = int(bool(ann.get("iscrowd", 0)))
        if "num_keypoints" in ann:
            try:
                num_keypoints = int(ann["num_keypoints"])
            except (TypeError, ValueError):
                problems.report(
                    "invalid num_keypoints", ann_id,
                    f"{context} has num_keypoints={ann['num_keypoints']!r}; expected an integer.",
                )
                continue
        else:
            num_keypoints = int(np.count_nonzero(visible > 0))

        x, y, w, h = (float(v) for v in bbox)
        img_w, img_h = image.width, image.height
        if w < 0 or h < 0:
            problems.report(
                "negative box size", ann_id,
                f"{context} has bbox {ann['bbox']!r} with a negative width or height; COCO boxes "
                "are [x, y, width, height] (corners [x1, y1, x2, y2]? convert them).",
            )
            continue
        if w > 0 and h > 0 and (x >= img_w or y >= img_h or x + w <= 0 or y + h <= 0):
            problems.report(
                "box outside the image", ann_id,
                f"{context} has bbox {ann['bbox']!r}, entirely outside its {img_w}x{img_h} (WxH) "
                f"image (id {image_id}); the box or the image's width/height is wrong.",
            )
            continue
        labelled = visible > 0
        far = labelled & (
            (kpts[:, 0] < -img_w) | (kpts[:, 0] > 2 * img_w) | (kpts[:, 1] < -img_h) | (kpts[:, 1] > 2 * img_h)
        )
        if far.any():
            first = int(np.flatnonzero(far)[0])
            problems.report(
                "keypoint far outside the image", ann_id,
                f"{context} has {int(far.sum())} labelled keypoint(s) more than the image size "
                f"outside its {img_w}x{img_h} (WxH) image (first: keypoint {first} at "
                f"{kpts[first, :2].tolist()}); the coordinates or the image size are wrong.",
            )
            continue
        x1 = min(max(x, 0.0), img_w - 1.0)
        y1 = min(max(y, 0.0), img_h - 1.0)
        x2 = min(max(x + w, 0.0), img_w - 1.0)
        y2 = min(max(y + h, 0.0), img_h - 1.0)

        if "area" in ann:
            try:
                area = float(ann["area"])
            except (TypeError, ValueError):
                area = math.nan
            if not math.isfinite(area):
                problems.report(
                    "invalid area", ann_id, f"{context} has area={ann['area']!r}; expected a number."
                )
                continue
        else:
            area = BOX_AREA_FACTOR * max(w, 0.0) * max(h, 0.0)

        keypoints_xy = kpts[:, :2].copy()
        keypoints_xy[visible == 0] = 0.0  # unlabelled points are (0, 0) as in COCO
        instance = PoseInstance(
            image_path=image.path,
            image_id=image_id,
            instance_id=instance_id,
            bbox=[x1, y1, x2 - x1, y2 - y1],
            keypoints=keypoints_xy,
            keypoints_visible=visible,
            area=area,
            iscrowd=iscrowd,
            category_id=category_id,
            num_keypoints=num_keypoints,
        )
        keep = (
            not iscrowd
            and num_keypoints > 0
            and float(np.max(kpts)) > 0
            and (x2 - x1) > 0
            and (y2 - y1) > 0
        )
        per_image[image_id].append((instance, keep))
        valid_records += 1

    # Image files.
    if check:
        for image_id, image in list(images.items()):
            entries = per_image[image_id]
            # Decoding checks the listed size, which decides which boxes survive
            # clipping: check every image with annotations then, kept or not.
            needed = mode == "eval" or any(keep or check == "decode" for _, keep in entries)
            if not needed:
                continue
            try:
                check_image_file(
                    image.path, check, image.width, image.height,
                    context=f"(image id {image_id} {where}) ",
                )
            except ImageReadError as e:
                ids = [inst.instance_id for inst, _ in entries] or [f"image {image_id}"]
                reason = "missing image file" if not os.path.isfile(image.path) else "unreadable image file"
                if not skip_invalid:
                    raise
                for i in ids:
                    problems.report(reason, i, str(e), ImageReadError)
                valid_records -= len(entries)
                per_image[image_id] = []

    if data["annotations"] and valid_records <= 0 and problems.count:
        raise AnnotationError(
            f"every annotation {where} is invalid: {problems.summary()}. "
            "The first problem is the one to fix (often the wrong keypoint_spec or image_root)."
        )
    if problems.count:
        warnings.warn(
            f"load_coco_keypoints skipped {problems.count} invalid record(s) {where}: "
            f"{problems.summary()}.",
            stacklevel=2,
        )

    instances, ignored = [], []
    for image_id in images:
        for instance, keep in per_image[image_id]:
            if keep:
                instances.append(instance)
            elif mode == "eval":
                ignored.append(instance)

    num_keypoints = spec_k
    if num_keypoints is None:
        ks = {inst.keypoints.shape[0] for inst in instances + ignored}
        if len(ks) > 1:
            raise AnnotationError(
                f"categories {where} have different keypoint counts {sorted(ks)}; pass "
                "keypoint_spec= to read one of them."
            )
        num_keypoints = ks.pop() if ks else None
        if num_keypoints is None:
            known = {k for k in category_k.values() if k}
            num_keypoints = known.pop() if len(known) == 1 else None

    return PoseDataset(
        instances,
        keypoint_spec=spec if spec is not None else num_keypoints,
        image_root=image_root,
        annotation_file=annotation_file,
        images=images,
        num_keypoints=num_keypoints,
        ignored_instances=ignored,
        mode=mode,
        categories=categories,
    )
