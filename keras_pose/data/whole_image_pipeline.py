"""``tf.data`` pipeline of whole images for bottom-up (OpenPose) and one-stage (RTMO) training.

One element per IMAGE: the image is decoded in the graph (EXIF-upright, as
the top-down pipeline does), its ignore mask (crowd regions and people
without keypoints, from their segmentations via pycocotools, at image
resolution) decoded alongside, and, in training, the augmentations of
`keras_pose.data.whole_image_augmentations` are composed into one affine per
source image: letterbox (or a 4-image mosaic), random affine (scale,
rotation, shift, shear), horizontal flip with the spec's flip pairs, then
optional mixup with a second image and HSV jitter. Evaluation letterboxes
only. Instances are mapped with the same matrices and filtered (keypoints
leaving the input get visibility 0; instances whose clipped box is too small
or that keep too few visible keypoints are dropped) and packed into
``max_instances`` static rows.

```python
from keras_pose.data.whole_image_pipeline import build_whole_image_dataset
from keras_pose.datasets import load_coco_keypoints

train = load_coco_keypoints("person_keypoints_train2017.json", "train2017/", "coco")
ds = build_whole_image_dataset(train, image_size=(640, 640), preprocessor=model.preprocessor,
                               batch_size=32, seed=0, repeat=True, augment={"mosaic": True, "mixup": True})
```

Elements are ``(image, targets)``: ``image`` ``(B, H, W, 3)`` float32 (the
preprocessor's normalisation; raw RGB 0..255 without one) and, without a
``target_encoder``, ``targets`` the padded-instance dict (all float32):

- ``"boxes"`` ``(B, M, 4)`` xyxy input pixels;
- ``"keypoints"`` ``(B, M, K, 2)`` input pixels;
- ``"keypoint_visible"`` ``(B, M, K)`` 0 / 1;
- ``"instance_valid"`` ``(B, M)`` 1 for a real instance, 0 for padding
  (valid rows first, in annotation order);
- ``"ignore_mask"`` ``(B, H, W)`` 1 on pixels the loss should ignore.

A ``target_encoder`` (a callable on one element's dict, TensorFlow ops)
turns that dict into the model's targets inside the graph (e.g.
``OpenPoseMaps.encode_tf``); `model_dataset` wires the model's own.
"""

import numpy as np
import tensorflow as tf

from keras_pose.data import whole_image_augmentations as wia
from keras_pose.data.record_streams import finish_stream, stateless_stream
from keras_pose.data.top_down_pipeline import _ImageSource, _instances_of, _resolve_spec
from keras_pose.errors import PipelineError

AUTOTUNE = tf.data.AUTOTUNE
INSTANCE_KEYS = ("boxes", "keypoints", "keypoint_visible", "instance_valid", "ignore_mask")


class MixingSwitch:
    """Turns a running pipeline's mosaic and mixup off (RTMO's last-stage switch), without rebuilding it.

    ```python
    switch = MixingSwitch()
    data = model_dataset(rtmo, train, augment={"mosaic": True, "mixup": True}, mixing_switch=switch, ...)
    model.fit(data, callbacks=[RTMOModeSwitch(280, 579, on_last_stage=switch.turn_off)], ...)
    ```

    The pipeline reads the switch (a boolean ``tf.Variable``) each time it
    makes an element: while it is off, the mosaic and mixup draws are
    made (the stream's random numbers stay the same) but not applied, so an
    element is exactly the one a pipeline built without those stages gives.
    Elements already prefetched when it flips keep their mosaic (up to the
    pipeline's ``prefetch`` batches). A switch may serve several pipelines.
    """

    def __init__(self, on=True):
        self.variable = tf.Variable(bool(on), trainable=False, dtype=tf.bool, name="mixing_switch")

    @property
    def on(self):
        return bool(self.variable.numpy())

    def turn_off(self):
        self.variable.assign(False)

    def turn_on(self):
        self.variable.assign(True)


def _image_records(dataset, instances, num_keypoints, include_empty_images):
    """Per-image arrays, instances padded to the largest per-image count ``N`` (static)."""
    by_path = {}
    for inst in instances:
        if inst.keypoints.shape != (num_keypoints, 2):
            raise PipelineError(f"instance {inst.instance_id} of image {inst.image_id} has keypoints of shape "
                                f"{inst.keypoints.shape}; expected ({num_keypoints}, 2).")
        by_path.setdefault(inst.image_path, (inst.image_id, []))[1].append(inst)
    table = getattr(dataset, "images", None) or {}
    if include_empty_images:
        for image_id, info in table.items():
            by_path.setdefault(info.path, (image_id, []))
    paths = list(by_path)
    n = max([1] + [len(v[1]) for v in by_path.values()])
    count = len(paths)
    kps = np.zeros((count, n, num_keypoints, 2), np.float32)
    vis = np.zeros((count, n, num_keypoints), np.float32)
    boxes = np.zeros((count, n, 4), np.float32)
    valid = np.zeros((count, n), bool)
    for i, path in enumerate(paths):
        for j, inst in enumerate(by_path[path][1]):
            kps[i, j], vis[i, j], boxes[i, j] = inst.keypoints, inst.keypoints_visible, inst.bbox
            valid[i, j] = np.isfinite(inst.bbox).all() and (np.asarray(inst.bbox)[2:] > 0).all()
    records = {"image_index": np.arange(count, dtype=np.int32),
               "image_id": np.array([by_path[p][0] for p in paths], np.int64),
               "keypoints": kps, "keypoints_visible": vis, "bbox": boxes, "valid": valid}
    return records, paths


def _segmentation_rle(ann, height, width):
    from pycocotools import mask as mask_utils

    seg = ann.get("segmentation")
    if not seg:
        x, y, w, h = (float(v) for v in ann.get("bbox", (0, 0, 0, 0)))
        if w <= 0 or h <= 0:
            return None
        seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    if isinstance(seg, list):
        return mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    if isinstance(seg.get("counts"), list):
        return mask_utils.frPyObjects(seg, height, width)
    return seg


def ignore_region_rles(annotation_file, images, image_ids):
    """Merged compressed RLE (bytes, b"" for none) of each image's ignore regions.

    Ignore regions: crowd annotations (``iscrowd``) and people without
    labelled keypoints (``num_keypoints == 0``, or all visibility flags 0),
    from their segmentations (polygons, RLE or compressed RLE), or their box
    when they have none, at the ``width x height`` of the image table.

    Args:
        annotation_file: the COCO-format json (or None: no regions).
        images: ``image_id -> ImageInfo`` (width, height).
        image_ids: the images to return, in order.
    """
    if annotation_file is None:
        return [b""] * len(image_ids)
    from pycocotools import mask as mask_utils

    from keras_pose.datasets.coco_format import read_json_file

    wanted = set(image_ids)
    regions = {}
    for ann in read_json_file(annotation_file).get("annotations", []):
        if not isinstance(ann, dict) or ann.get("image_id") not in wanted:
            continue
        kps = ann.get("keypoints") or []
        labelled = ann.get("num_keypoints", sum(1 for v in kps[2::3] if v and v > 0))
        if ann.get("iscrowd") or not labelled:
            regions.setdefault(ann["image_id"], []).append(ann)
    out = []
    for image_id in image_ids:
        anns = regions.get(image_id)
        if not anns:
            out.append(b"")
            continue
        info = images.get(image_id)
        if info is None or not info.width or not info.height:
            raise PipelineError(f"image {image_id} has ignore regions but no width / height in the image table of "
                                f"{annotation_file!r}; add them (the masks are drawn at that size).")
        rles = [r for r in (_segmentation_rle(a, int(info.height), int(info.width)) for a in anns) if r is not None]
        out.append(mask_utils.merge(rles)["counts"] if rles else b"")
    return [r if isinstance(r, bytes) else r.encode("ascii") for r in out]


def _decode_rle(counts, height, width):
    from pycocotools import mask as mask_utils

    if not counts:
        return np.zeros((int(height), int(width)), np.uint8)
    return mask_utils.decode({"size": [int(height), int(width)], "counts": counts})


def _preprocessor_settings(preprocessor, pad_value):
    """``(normalize_fn or None, pad_value, pad_position, centre_to_centre)`` of a `WholeImagePreprocessor`."""
    if preprocessor is None:
        return None, float(pad_value if pad_value is not None else 0.0), "center", False
    from keras_pose.preprocessing import WarpLetterboxResizer, WholeImagePreprocessor

    if not isinstance(preprocessor, WholeImagePreprocessor):
        raise PipelineError(f"`preprocessor` must be a WholeImagePreprocessor (bottom-up / one-stage models), got "
                            f"{type(preprocessor).__name__}; top-down models use build_top_down_dataset.")
    resizer = preprocessor.resizer
    value = resizer.pad_value if pad_value is None else float(pad_value)
    return (preprocessor.image_converter.normalize_tf, value, resizer.pad_position,
            isinstance(resizer, WarpLetterboxResizer))


def build_whole_image_dataset(
    dataset,
    image_size,
    preprocessor=None,
    target_encoder=None,
    batch_size=8,
    training=True,
    augment=True,
    seed=None,
    shuffle=True,
    repeat=False,
    max_instances=32,
    keypoint_spec=None,
    ignore_regions=True,
    include_empty_images=False,
    min_box_size=1.0,
    min_keypoints=1,
    pad_value=None,
    cache_images=False,
    return_meta=False,
    drop_remainder=False,
    num_parallel_calls=AUTOTUNE,
    prefetch=AUTOTUNE,
    skip_elements=0,
    mixing_switch=None,
):
    """A batched ``tf.data.Dataset`` of whole images and their padded instances (see the module docstring).

    Args:
        dataset: a ``PoseDataset`` (``keras_pose.datasets``, any keypoint
            spec) or a list of ``PoseInstance``; one element per image.
        image_size: ``(H, W)`` of the model input, pixels.
        preprocessor: a `WholeImagePreprocessor` (its image converter
            normalises, its resizer gives the letterbox convention and pad
            value); None: RGB float32 0..255, centred letterbox.
        target_encoder: optional callable ``dict -> targets`` (TensorFlow
            ops, one unbatched element's padded-instance dict).
        batch_size: images per batch; None for unbatched elements.
        training: augment (per ``augment``) and shuffle; False: letterbox only.
        augment: True (``DEFAULT_WHOLE_IMAGE_AUGMENT``), False, or
            ``{stage: None | True | {options}}`` for "affine", "flip",
            "hsv", "mosaic", "mixup".
        seed: int: the same seed gives the same batches (order and
            augmentation); with ``repeat`` the stream is stateless
            (identical in every process). None: non-deterministic.
        shuffle: shuffle the images each epoch (training only).
        repeat: repeat forever.
        max_instances: M, the static number of instance rows per image
            (extra valid instances beyond M are dropped, in annotation order).
        keypoint_spec: spec for the flip pairs; default ``dataset.keypoint_spec``.
        ignore_regions: True: ignore masks from ``dataset.annotation_file``
            (crowd regions and people without keypoints); False: all zero.
        include_empty_images: also yield images of the table without any
            instance (negatives).
        min_box_size: an instance is dropped when its box, clipped to the
            input, is narrower or lower than this (input pixels).
        min_keypoints: ... or keeps fewer visible keypoints in the input.
        pad_value: value of pixels outside the image (0..255 RGB, before
            normalisation); default the preprocessor's resizer's.
        cache_images: False, "encoded" or True / "decoded" (as the top-down pipeline).
        return_meta: add a third element ``{"image_id", "image_size" (h, w),
            "matrix" (2, 3) image -> input}`` (the letterbox in evaluation).
        drop_remainder, num_parallel_calls, prefetch: as ``tf.data``.
        skip_elements: start this many images into the (seeded, repeated)
            stream (a resumed run continues where it stopped).
        mixing_switch: a `MixingSwitch` that turns mosaic and mixup off
            while the pipeline runs (RTMO's last stage); None: always on.

    Returns:
        ``tf.data.Dataset`` of ``(images, targets)`` (or with ``meta``).
    """
    if mixing_switch is not None and not isinstance(mixing_switch, MixingSwitch):
        raise PipelineError(f"mixing_switch must be a keras_pose.data.MixingSwitch, got {type(mixing_switch).__name__}.")
    image_size = tuple(int(v) for v in image_size)
    if len(image_size) != 2 or min(image_size) < 1:
        raise PipelineError(f"image_size must be (height, width) in pixels, got {image_size}.")
    if int(max_instances) < 1:
        raise PipelineError(f"max_instances must be >= 1, got {max_instances}.")
    max_instances = int(max_instances)
    instances = _instances_of(dataset)
    if not instances:
        raise PipelineError("`dataset` has no instances; nothing to build a pipeline from.")
    num_keypoints = int(instances[0].keypoints.shape[0])
    spec = _resolve_spec(dataset, keypoint_spec, num_keypoints)
    stages = wia.resolve_whole_image_augment(augment) if training else {}
    if "flip" in stages and spec is None:
        raise PipelineError("augmentation stage 'flip' needs the keypoint spec's flip pairs; the dataset has none. "
                            "Pass keypoint_spec='coco' (or your spec), or augment={'flip': None}.")
    flip_indices = tuple(spec.flip_indices) if spec is not None else None
    normalize, pad_value, pad_position, centre_to_centre = _preprocessor_settings(preprocessor, pad_value)

    records, paths = _image_records(dataset, instances, num_keypoints, include_empty_images)
    source = _ImageSource(paths, cache_images)
    num_images = len(paths)
    table = {key: tf.constant(value) for key, value in records.items()}
    use_masks = bool(ignore_regions) and getattr(dataset, "annotation_file", None) is not None
    rles = ignore_region_rles(getattr(dataset, "annotation_file", None) if use_masks else None,
                              getattr(dataset, "images", {}), list(records["image_id"]))
    rle_table = tf.constant(rles, tf.string)
    table_hw = tf.constant(np.array([_table_hw(dataset, records, i) for i in range(num_images)], np.int64))
    h_out, w_out = image_size

    def mixing_on():
        return tf.constant(True) if mixing_switch is None else mixing_switch.variable.read_value()

    def load(index):
        image = source(index)
        shape = tf.shape(image)[:2]
        counts = tf.gather(rle_table, index)

        def decode():
            info_hw = tf.gather(table_hw, index)
            mask = tf.numpy_function(_decode_rle, [counts, info_hw[0], info_hw[1]], tf.uint8, stateful=False)
            mask = tf.reshape(mask, tf.cast(info_hw, tf.int32))[..., None]
            return tf.cast(tf.image.resize(mask, shape, method="nearest")[..., 0], tf.float32)

        mask = tf.cond(tf.strings.length(counts) > 0, decode, lambda: tf.zeros(shape, tf.float32))
        inst = {key: tf.gather(table[key], index) for key in ("keypoints", "keypoints_visible", "bbox", "valid")}
        return image, mask, shape, inst

    def place(sources, matrices):
        """Warp sources (image, mask, shape, inst) with their matrices; sum into one canvas."""
        rgb = tf.zeros([h_out, w_out, 3], tf.float32)
        ignore = tf.zeros([h_out, w_out], tf.float32)
        cover = tf.zeros([h_out, w_out], tf.float32)
        for (image, mask, _, _), matrix in zip(sources, matrices):
            r, m, c = wia.warp_with_mask(image, mask, matrix, image_size)
            rgb, ignore, cover = rgb + r, ignore + m, cover + c
        rgb = rgb + (1.0 - tf.minimum(cover, 1.0))[..., None] * pad_value
        return rgb, ignore

    def instances_of(sources, matrices, flipped):
        parts = [wia.transform_instances(s[3]["keypoints"], s[3]["keypoints_visible"], s[3]["bbox"], s[3]["valid"],
                                         m, image_size, flipped, flip_indices, min_box_size, min_keypoints)
                 for s, m in zip(sources, matrices)]
        return [tf.concat([p[i] for p in parts], axis=0) for i in range(4)]

    def view(seeds, index, allow_mosaic):
        """One augmented view: ``(image (h, w), (rgb, ignore, kps, vis, boxes, valid))``, fixed candidate count."""
        first = load(index)
        flipped = tf.constant(False)
        if "flip" in stages:
            flipped = tf.random.stateless_uniform([], seeds[0], dtype=tf.float64) < stages["flip"]["prob"]
        outer = tf.cond(flipped, lambda: wia.flip_matrix(w_out), lambda: wia.affine_matrix([[1, 0, 0], [0, 1, 0]]))

        def affine(frame):
            if "affine" in stages:
                return wia.compose(outer, wia.random_affine(seeds[1], frame, image_size, **stages["affine"]))
            return wia.compose(outer, wia.random_affine(seeds[1], frame, image_size, (1.0, 1.0), 0.0, 0.0, 0.0))

        def single():
            if "affine" in stages:
                base = wia.letterbox_matrix(first[2], image_size, "center", centre_to_centre)
                matrix = wia.compose(affine(image_size), base)
            else:
                base = wia.letterbox_matrix(first[2], image_size, pad_position, centre_to_centre)
                matrix = wia.compose(outer, base)
            rgb, ignore = place([first], [matrix])
            out = instances_of([first], [matrix], flipped)
            if allow_mosaic:  # same candidate count as the mosaic branch
                out = [tf.concat([x] + [tf.zeros_like(x)] * 3, 0) for x in out]
            return (rgb, ignore, *out)

        if not allow_mosaic:
            return first[2], single()

        def mosaic():
            others = tf.random.stateless_uniform([3], seeds[2], minval=0, maxval=num_images, dtype=tf.int32)
            sources = [first] + [load(others[i]) for i in range(3)]
            placement = wia.mosaic_matrices(seeds[3], tf.stack([s[2] for s in sources]), image_size,
                                            stages["mosaic"]["center_range"])
            frame = affine((2 * h_out, 2 * w_out))
            matrices = [wia.compose(frame, placement[i]) for i in range(4)]
            rgb, ignore = place(sources, matrices)
            return (rgb, ignore, *instances_of(sources, matrices, flipped))

        use = tf.random.stateless_uniform([], seeds[4], dtype=tf.float64) < stages["mosaic"]["prob"]
        return first[2], tf.cond(use & mixing_on(), mosaic, single)

    def make_element(record, rand):
        index = record["image_index"]
        seeds = tf.random.experimental.stateless_split(tf.stack([rand, tf.constant(0x3A5E, tf.int64)]), 13)
        shape, (rgb, ignore, kps, vis, boxes, valid) = view(seeds[:5], index, "mosaic" in stages)
        if "mixup" in stages:
            other = tf.random.stateless_uniform([], seeds[5], minval=0, maxval=num_images, dtype=tf.int32)
            _, (rgb2, ignore2, kps2, vis2, boxes2, valid2) = view(seeds[6:11], other, False)
            use = (tf.random.stateless_uniform([], seeds[11], dtype=tf.float64) < stages["mixup"]["prob"]) & mixing_on()
            ratio = float(stages["mixup"]["ratio"])
            rgb = tf.where(use, ratio * rgb + (1.0 - ratio) * rgb2, rgb)
            ignore = tf.where(use, tf.maximum(ignore, ignore2), ignore)
            kps, vis, boxes = (tf.concat([a, b], 0) for a, b in ((kps, kps2), (vis, vis2), (boxes, boxes2)))
            valid = tf.concat([valid, valid2 & use], 0)
        if "hsv" in stages:
            rgb = wia.random_hsv(seeds[12], rgb, **stages["hsv"])
        out = wia.pack_instances(kps, vis, boxes, valid, max_instances)
        out["ignore_mask"] = tf.ensure_shape(tf.cast(ignore >= 0.5, tf.float32), [h_out, w_out])
        image = tf.ensure_shape(normalize(rgb) if normalize is not None else rgb, [h_out, w_out, 3])
        targets = target_encoder(out) if target_encoder is not None else out
        if not return_meta:
            return image, targets
        image_hw = tf.cast(shape, tf.int32)
        meta = {"image_id": record["image_id"], "image_size": image_hw,
                "matrix": tf.cast(wia.letterbox_matrix(image_hw, image_size, pad_position, centre_to_centre),
                                  tf.float32)}
        return image, targets, meta

    shuffle = training and shuffle
    if repeat and seed is not None:
        ds = stateless_stream(records_for_stream(records), num_images, seed, shuffle)
        rand = tf.data.Dataset.counter().map(lambda i: tf.random.stateless_uniform(
            [], tf.stack([tf.constant(seed, tf.int64), i]), minval=None, maxval=None, dtype=tf.int64))
    else:
        ds = tf.data.Dataset.from_tensor_slices(records_for_stream(records))
        if shuffle:
            ds = ds.shuffle(num_images, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        rand = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return finish_stream(ds, rand, make_element, skip_elements=skip_elements, num_parallel_calls=num_parallel_calls,
                         batch_size=batch_size, drop_remainder=drop_remainder, prefetch=prefetch)


def records_for_stream(records):
    """The per-image scalars the stream carries (the instance arrays are gathered in the map)."""
    return {"image_index": records["image_index"], "image_id": records["image_id"]}


def _table_hw(dataset, records, index):
    """``(h, w)`` int64 of image ``index`` from the dataset's image table (0, 0 when unknown)."""
    info = (getattr(dataset, "images", None) or {}).get(int(records["image_id"][int(index)]))
    if info is None or not info.width or not info.height:
        return np.zeros(2, np.int64)
    return np.array([info.height, info.width], np.int64)


def model_dataset(model, dataset, image_size=None, **kwargs):
    """:func:`build_whole_image_dataset` configured from a bottom-up or one-stage model.

    Takes the model's input size (``model.image_size`` unless
    ``image_size`` is given), its training preprocessor
    (``model.whole_image_preprocessor(image_size)`` when it has one, else
    ``model.preprocessor``) and its in-graph target encoder
    (``model.target_encoder(image_size, data_spec)`` when it has one, else
    none: the padded-instance dict is the target, as RTMO's loss reads it);
    ``kwargs`` override or add any argument (``batch_size``, ``augment``,
    ``seed``, ``repeat``, ``max_instances``, ...).
    """
    image_size = tuple(int(v) for v in (image_size or model.image_size))
    params = {"image_size": image_size}
    if hasattr(model, "whole_image_preprocessor"):
        params["preprocessor"] = model.whole_image_preprocessor(image_size)
    else:
        params["preprocessor"] = getattr(model, "preprocessor", None)
    data_spec = kwargs.get("keypoint_spec") or getattr(dataset, "keypoint_spec", None)
    if hasattr(model, "target_encoder") and "target_encoder" not in kwargs:
        params["target_encoder"] = model.target_encoder(image_size, data_spec)
    params.update(kwargs)
    return build_whole_image_dataset(dataset, **params)
