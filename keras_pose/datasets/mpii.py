"""Reader for the MPII Human Pose json conversion.

The widely used conversion of the MPII MATLAB annotations is a json list
with one record per person::

    {"image": "005808361.jpg", "center": [966.0, 340.0], "scale": 4.718488,
     "joints": [[x, y], ... 16], "joints_vis": [0/1, ... 16]}

`scale` is the person box height divided by 200 px; coordinates are
MATLAB 1-based; unlabelled joints are `[-1, -1]` with `joints_vis` 0.
Joint order (MPII)::

    0 right_ankle  1 right_knee  2 right_hip  3 left_hip  4 left_knee
    5 left_ankle   6 pelvis      7 thorax     8 upper_neck 9 head_top
    10 right_wrist 11 right_elbow 12 right_shoulder 13 left_shoulder
    14 left_elbow  15 left_wrist
"""

import os
import warnings

import numpy as np

from keras_pose.datasets.coco_format import read_json_file
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

MPII_NUM_KEYPOINTS = 16
PIXEL_STD = 200.0  # MPII `scale` unit: box height / 200 px
SC_BIAS = 0.6  # official MPII eval: head size = 0.6 * head-box diagonal
UPPER_NECK, HEAD_TOP = 8, 9


def _load_headboxes(path, count):
    """Load head boxes `(N, 2, 2)` ([[x1, y1], [x2, y2]] per record)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AnnotationFileNotFoundError(f"headbox_file {path!r} does not exist.")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        boxes = np.load(path, allow_pickle=False)
    elif ext == ".json":
        boxes = read_json_file(path, what="headbox_file")
    elif ext == ".mat":
        try:
            from scipy.io import loadmat
        except ImportError as e:  # pragma: no cover
            raise ImportError(
                "reading a .mat headbox_file needs scipy; convert it to .npy of shape (N, 2, 2)."
            ) from e
        mat = loadmat(path)
        if "headboxes_src" not in mat:
            raise AnnotationError(f"headbox_file {path!r} has no 'headboxes_src' array.")
        boxes = np.transpose(mat["headboxes_src"], (2, 0, 1))  # (2, 2, N) -> (N, 2, 2)
    else:
        raise AnnotationError(
            f"headbox_file {path!r} must be .npy, .json or .mat (headboxes_src); got {ext!r}."
        )
    try:
        boxes = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise AnnotationError(f"headbox_file {path!r} does not hold numbers ({e}).") from e
    if boxes.shape != (count, 2, 2):
        raise AnnotationError(
            f"headbox_file {path!r} has shape {boxes.shape}; expected ({count}, 2, 2), one "
            "[[x1, y1], [x2, y2]] box per record of the annotation file, in the same order."
        )
    return boxes


def _far_outside(instance, height, width):
    """A labelled joint more than the image's width/height outside it."""
    labelled = instance.keypoints_visible > 0
    x, y = instance.keypoints[labelled, 0], instance.keypoints[labelled, 1]
    return bool(((x < -width) | (x > 2 * width) | (y < -height) | (y > 2 * height)).any())


def _image_id(image_name, fallback_ids):
    stem = os.path.splitext(os.path.basename(image_name))[0]
    if stem.isdigit():
        return int(stem)
    return fallback_ids.setdefault(image_name, -(len(fallback_ids) + 1))


def load_mpii(
    annotation_file,
    image_root=None,
    mode="train",
    keypoint_spec=None,
    headbox_file=None,
    skip_invalid=False,
    check_images=True,
    padding=1.0,
):
    """Read an MPII json annotation file (one record per person).

    Conversion (mmpose `MpiiDataset`):
        - `scale_px = scale * 200`; when the centre is known
          (`center[0] != -1`) the centre moves down by `15 * scale` px
          (= 15/200 of the box height) so feet are not cropped;
        - MATLAB 1-based coordinates become 0-based: 1 is subtracted from the
          centre and from every labelled joint;
        - `bbox` is the square of side `scale_px * padding` around that
          centre, in xywh. mmpose multiplies the scale by 1.25; in mmpose 1.x
          that happens in the top-down pipeline (`GetBBoxCenterScale`,
          padding=1.25), so keep `padding=1.0` here when the pipeline pads
          boxes by 1.25 (the keras-pose default) and use 1.25 only for a
          pipeline that does not pad.

    Visibility: `joints_vis` 1 (labelled) is stored as 2 and 0 as 0 (the json
    does not say whether a labelled joint is occluded). Unlabelled joints
    are stored at `(0, 0)`.

    Head size (PCKh normaliser, `PoseInstance.head_size`, pixels):
        1. a record's `headbox` field `[[x1, y1], [x2, y2]]`:
           `0.6 * ||p2 - p1||` (SC_BIAS of the official evaluation);
        2. else `headbox_file` (`.npy`/`.json` of shape `(N, 2, 2)` in record
           order, or the official `.mat` with `headboxes_src` `(2, 2, N)`);
        3. else an approximation: the head-segment length
           `||head_top - upper_neck||` (joints 9 and 8). The official
           normaliser, 0.6 x head-box diagonal, is defined as a proxy for
           that length, so the approximation is close but not identical:
           PCKh numbers computed with it are not the official ones. A
           warning is emitted once per call when it is used. When either
           joint is unlabelled the head size is `None` and PCKh skips the
           person.

    Args:
        annotation_file: path of the json list.
        image_root: image folder; defaults to the annotation file's folder.
        mode: "train" drops people without labelled joints; "eval" keeps
            them in `dataset.ignored_instances`.
        keypoint_spec: KeypointSpec, name or int; defaults to 16 keypoints.
        headbox_file: optional head boxes (see above).
        skip_invalid: skip invalid records with one warning naming each
            reason instead of raising. Invalid: missing keys, non-numeric or
            non-finite values, a wrong joint count, `joints_vis` other than
            0/1, `scale <= 0` (no box), a missing image, and with
            `check_images="decode"` a labelled joint more than the image's
            width/height outside the image.
        check_images: True/"exists", "decode" (also fills the image table's
            width/height, of the EXIF-upright image) or False. The json
            records no image size, so `images[...].width/height` are `None`
            unless decoded.
        padding: factor applied to the box side (see above).

    Returns:
        `PoseDataset`; `instance_id` is the record index, `image_id` the
        image file stem as an integer (as mmpose; negative running ids for
        non-numeric names).
    """
    mode = normalize_mode(mode)
    check = normalize_check_images(check_images)
    annotation_file = os.fspath(annotation_file)
    spec, k = resolve_keypoint_spec(keypoint_spec)
    if k is None:
        k = MPII_NUM_KEYPOINTS
    k_source = _spec_label(spec, k)
    if image_root is None:
        image_root = os.path.dirname(os.path.abspath(annotation_file))
    image_root = os.fspath(image_root)
    padding = float(padding)
    if not padding > 0:
        raise ValueError(f"padding must be positive; got {padding}.")

    head_idx, neck_idx = HEAD_TOP, UPPER_NECK
    names = list(getattr(spec, "keypoint_names", None) or [])
    if names:
        if "head_top" in names and "upper_neck" in names:
            head_idx, neck_idx = names.index("head_top"), names.index("upper_neck")
        else:
            head_idx = neck_idx = None

    records = read_json_file(annotation_file)
    where = f"in {annotation_file!r}"
    if not isinstance(records, list):
        raise AnnotationError(
            f"MPII annotation file {annotation_file!r} must hold a JSON list of person records "
            f"(image, center, scale, joints, joints_vis); got a {type(records).__name__}"
            + (" (a COCO-format file? use load_coco_keypoints)." if isinstance(records, dict) else ".")
        )
    headboxes = _load_headboxes(headbox_file, len(records)) if headbox_file is not None else None

    problems = _Problems(annotation_file, skip_invalid, what="record")
    images, fallback_ids = {}, {}
    entries = []  # (instance, keep)
    approximated = 0
    for index, rec in enumerate(records):
        context = f"record {index} {where}"
        if not isinstance(rec, dict):
            problems.report("non-object record", index, f"{context} is not an object.")
            continue
        missing = [key for key in ("image", "center", "scale", "joints", "joints_vis") if key not in rec]
        if missing:
            problems.report(
                "missing keys", index,
                f"{context} has no {missing} (keys: {sorted(rec)}); an MPII record needs image, "
                "center, scale, joints and joints_vis.",
            )
            continue
        context = f"record {index} (image {rec['image']!r}) {where}"
        try:
            center = np.asarray(rec["center"], dtype=np.float64).reshape(-1)
            scale = np.asarray(rec["scale"], dtype=np.float64).reshape(-1)
            joints = np.asarray(rec["joints"], dtype=np.float64)
            joints_vis = np.asarray(rec["joints_vis"], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as e:
            problems.report("non-numeric values", index, f"{context} has non-numeric values ({e}).")
            continue
        if center.shape != (2,) or scale.size not in (1, 2):
            problems.report(
                "invalid center/scale", index,
                f"{context} has center {rec['center']!r} and scale {rec['scale']!r}; expected "
                "[x, y] and one number.",
            )
            continue
        if joints.ndim != 2 or joints.shape[1] != 2 or joints.shape[0] != k or joints_vis.shape != (k,):
            problems.report(
                "wrong keypoint array length", index,
                f"{context} has joints of shape {joints.shape} and joints_vis of shape "
                f"{joints_vis.shape}; {k_source} needs ({k}, 2) and ({k},). Pass the "
                "keypoint_spec that matches this file.",
            )
            continue
        if not (np.all(np.isfinite(center)) and np.all(np.isfinite(scale)) and np.all(np.isfinite(joints))):
            problems.report("non-finite values", index, f"{context} has NaN/inf values.")
            continue
        if not np.isin(joints_vis, (0.0, 1.0)).all():
            problems.report(
                "invalid joints_vis", index,
                f"{context} has joints_vis values other than 0 or 1: "
                f"{sorted(set(joints_vis.tolist()) - {0.0, 1.0})} (0 unlabelled, 1 labelled). Fix them.",
            )
            continue
        if not scale[0] > 0:
            problems.report(
                "non-positive scale", index,
                f"{context} has scale {rec['scale']!r}; the scale is the person box height / 200 px "
                "and must be positive (a record without a box cannot be cropped). Fix or remove it.",
            )
            continue

        scale_px = float(scale[0]) * PIXEL_STD
        center = center.copy()
        if center[0] != -1:
            center[1] += 15.0 / PIXEL_STD * scale_px
        center -= 1.0
        side = scale_px * padding
        bbox = [center[0] - 0.5 * side, center[1] - 0.5 * side, side, side]

        labelled = joints_vis > 0
        keypoints = np.where(labelled[:, None], joints - 1.0, 0.0)
        visible = np.where(labelled, 2.0, 0.0)
        num_keypoints = int(np.count_nonzero(labelled))

        head_size = None
        if "headbox" in rec:
            try:
                box = np.asarray(rec["headbox"], dtype=np.float64).reshape(2, 2)
            except (TypeError, ValueError):
                problems.report(
                    "invalid headbox", index,
                    f"{context} has headbox {rec['headbox']!r}; expected [[x1, y1], [x2, y2]].",
                )
                continue
            head_size = SC_BIAS * float(np.linalg.norm(box[1] - box[0]))
        elif headboxes is not None:
            head_size = SC_BIAS * float(np.linalg.norm(headboxes[index, 1] - headboxes[index, 0]))
        elif head_idx is not None and labelled[head_idx] and labelled[neck_idx]:
            head_size = float(np.linalg.norm(joints[head_idx] - joints[neck_idx]))
            approximated += 1
        if head_size is not None and not head_size > 0:
            head_size = None

        image_name = str(rec["image"])
        image_id = _image_id(image_name, fallback_ids)
        if image_id not in images:
            images[image_id] = ImageInfo(image_name, None, None, os.path.join(image_root, image_name))
        instance = PoseInstance(
            image_path=images[image_id].path,
            image_id=image_id,
            instance_id=index,
            bbox=bbox,
            keypoints=keypoints,
            keypoints_visible=visible,
            area=side * side if side > 0 else 0.0,
            iscrowd=0,
            category_id=1,
            num_keypoints=num_keypoints,
            head_size=head_size,
        )
        keep = mode == "eval" or num_keypoints > 0
        entries.append((instance, keep))

    if check:
        by_image = {}
        for instance, keep in entries:
            by_image.setdefault(instance.image_id, []).append((instance, keep))
        for image_id, image in list(images.items()):
            group = by_image.get(image_id, [])
            if mode == "train" and not any(keep for _, keep in group):
                continue
            try:
                size = check_image_file(image.path, check, context=f"(used by {where}) ")
            except ImageReadError as e:
                if not skip_invalid:
                    raise
                reason = "missing image file" if not os.path.isfile(image.path) else "unreadable image file"
                for instance, _ in group:
                    problems.report(reason, instance.instance_id, str(e), ImageReadError)
                dropped = {id(inst) for inst, _ in group}
                entries = [(inst, kp) for inst, kp in entries if id(inst) not in dropped]
                continue
            if size is not None:
                images[image_id] = image._replace(height=size[0], width=size[1])
                far_ids = {id(inst) for inst, _ in group if _far_outside(inst, *size)}
                for instance, _ in group:
                    if id(instance) in far_ids:
                        problems.report(
                            "keypoint far outside the image", instance.instance_id,
                            f"record {instance.instance_id} {where} has a labelled joint more than the "
                            f"image size outside its {size[1]}x{size[0]} (WxH) image "
                            f"{image.file_name!r}; the coordinates or the image are wrong.",
                        )
                entries = [(inst, kp) for inst, kp in entries if id(inst) not in far_ids]

    if records and not entries and problems.count:
        raise AnnotationError(
            f"every record {where} is invalid: {problems.summary()}. The first problem is the "
            "one to fix (often the wrong keypoint_spec or image_root)."
        )
    if problems.count:
        warnings.warn(
            f"load_mpii skipped {problems.count} invalid record(s) {where}: {problems.summary()}.",
            stacklevel=2,
        )
    if approximated:
        warnings.warn(
            f"load_mpii: {approximated} record(s) {where} have no head box (no 'headbox' field "
            "and no headbox_file); their PCKh head size is approximated by the "
            "head_top-upper_neck distance, so PCKh is close to but not the official value. "
            "Pass headbox_file= (e.g. the official gt_valid.mat headboxes) for official numbers.",
            stacklevel=2,
        )

    instances = [inst for inst, keep in entries if keep]
    ignored = [inst for inst, keep in entries if not keep] if mode == "eval" else []
    return PoseDataset(
        instances,
        keypoint_spec=spec if spec is not None else k,
        image_root=image_root,
        annotation_file=annotation_file,
        images=images,
        num_keypoints=k,
        ignored_instances=ignored,
        mode=mode,
        categories=[],  # not a COCO file: no categories table
    )
