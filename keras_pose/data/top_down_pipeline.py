"""``tf.data`` pipeline for top-down pose training and evaluation.

One element per annotated person: the image is decoded in the graph (and
turned upright per its EXIF orientation, read from the file headers when the
pipeline is built, so the pixels equal ``keras_pose.utils.image_io.read_image``
and annotations are in the upright frame, as COCO's are), the
person box becomes a crop (centre / size, the cropper's padding, aspect fixed
to the input), the mmpose 1.x augmentations perturb that crop (training), the
image is warped once (bilinear, the cropper's standard or UDP affine and
border fill, exactly the OpenCV crop of ``keras_pose.geometry``), the
keypoints are mapped with the same matrix and encoded by the codec's
``encode_tf``, and the crop is normalised by the image converter: the
parameters of the model's `keras_pose.preprocessing.TopDownPreprocessor`.

```python
from keras_pose.data import model_dataset
from keras_pose.datasets import load_coco_keypoints

train = load_coco_keypoints("person_keypoints_train2017.json", "train2017/", "coco")
ds = model_dataset(model, train, batch_size=64, seed=0, repeat=True)
model.fit(ds, steps_per_epoch=1000, epochs=210)
```

Elements are ``(images, targets)`` -- ``images`` ``(B, H, W, 3)`` float32
normalised, ``targets = {"heatmaps": (B, h, w, K), "keypoint_weights":
(B, K)}`` float32 -- or ``(images, targets, meta)`` in evaluation mode (see
:func:`build_top_down_dataset`), usable by ``model.fit`` on every Keras
backend. With ``heatmap_levels=True`` (codecs with a ``"heatmaps_levels"``
target, e.g. ``CPNHeatmap``) the targets also hold ``"heatmaps_levels"``, one
``(B, h, w, K)`` map per GlobalNet level (coarsest first), which
``keras_pose.losses.CPNLoss`` trains the GlobalNet levels on.
"""

import numpy as np
import tensorflow as tf

from keras_pose.data import affine_tf
from keras_pose.data import augmentations as aug
from keras_pose.data.record_streams import finish_stream, stateless_stream
from keras_pose.errors import ImageFileNotFoundError, PipelineError

AUTOTUNE = tf.data.AUTOTUNE

META_KEYS = (
    "center",
    "scale",
    "rotation",
    "flipped",
    "half_body",
    "image_id",
    "instance_id",
    "bbox",
    "bbox_score",
    "area",
    "image_size",
    "keypoints",
    "keypoints_visible",
)


def _instances_of(dataset):
    if hasattr(dataset, "instances"):
        return list(dataset.instances)
    if isinstance(dataset, (list, tuple)):
        return list(dataset)
    raise PipelineError(
        "`dataset` must be a keras_pose.datasets.PoseDataset (e.g. from "
        f"load_coco_keypoints) or a list of PoseInstance, got {type(dataset).__name__}."
    )


def _records(instances, num_keypoints):
    """Stack the instances into arrays for ``from_tensor_slices``."""
    paths = [inst.image_path for inst in instances]
    unique = list(dict.fromkeys(paths))
    index = {p: i for i, p in enumerate(unique)}
    for inst in instances:
        if inst.keypoints.shape != (num_keypoints, 2):
            raise PipelineError(
                f"instance {inst.instance_id} of image {inst.image_id} has keypoints of shape "
                f"{inst.keypoints.shape}; the codec / keypoint spec expects ({num_keypoints}, 2)."
            )
    records = {
        "image_index": np.array([index[p] for p in paths], np.int32),
        "image_id": np.array([inst.image_id for inst in instances], np.int64),
        "instance_id": np.array([inst.instance_id for inst in instances], np.int64),
        "bbox": np.array([inst.bbox for inst in instances], np.float32).reshape(-1, 4),
        "keypoints": np.array([inst.keypoints for inst in instances], np.float32).reshape(-1, num_keypoints, 2),
        "keypoints_visible": np.array([inst.keypoints_visible for inst in instances], np.float32).reshape(
            -1, num_keypoints
        ),
        "bbox_score": np.array([inst.bbox_score for inst in instances], np.float32),
        "area": np.array([inst.area for inst in instances], np.float32),
    }
    bad = ~(np.isfinite(records["bbox"]).all(axis=1) & (records["bbox"][:, 2:] > 0).all(axis=1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PipelineError(
            f"{int(bad.sum())} instance(s) have a box with no area or non-finite values (first: "
            f"instance {instances[i].instance_id} of image {instances[i].image_id}, bbox "
            f"{records['bbox'][i].tolist()}); filter them out, e.g. dataset.filter(lambda r: "
            "r.bbox[2] > 0 and r.bbox[3] > 0)."
        )
    return records, unique


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _decode(contents):
    """Encoded image -> ``(H, W, 3)`` uint8 RGB, pixel-identical to OpenCV.

    JPEGs are decoded with the accurate integer IDCT, the one OpenCV's
    libjpeg uses, so crops equal those of ``keras_pose.utils.image_io``
    (``tf.io.decode_image``'s default IDCT differs by up to ~10 levels).
    16-bit PNGs are scaled by ``round(v / 257)`` as ``read_image`` does.
    Other formats (8-bit PNG, BMP, GIF first frame, WebP) go through
    ``decode_image``. The pixels are as stored: the EXIF orientation is
    applied by :func:`_orient`.
    """

    def png16():
        wide = tf.io.decode_png(contents, channels=3, dtype=tf.uint16)
        return tf.cast((tf.cast(wide, tf.int32) + 128) // 257, tf.uint8)

    def other():
        # The IHDR bit depth is byte 24 of a PNG (padded: short files decode-fail later).
        header = tf.strings.join([tf.strings.substr(contents, 0, 25), b"\x00" * 25])
        is_png16 = tf.logical_and(
            tf.equal(tf.strings.substr(header, 0, 8), _PNG_SIGNATURE),
            tf.equal(tf.strings.substr(header, 24, 1), b"\x10"),
        )
        return tf.cond(
            is_png16,
            png16,
            lambda: tf.io.decode_image(contents, channels=3, expand_animations=False, dtype=tf.uint8),
        )

    image = tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        other,
    )
    image.set_shape([None, None, 3])
    return image


def _orient(image, orientation):
    """Turn decoded pixels upright per their EXIF orientation (int32 1..8).

    The graph twin of ``keras_pose.utils.image_io.apply_orientation`` (the
    operations of OpenCV's ``imread``): 2 mirror, 3 rotate 180, 4 flip,
    5 transpose, 6 rotate 90 cw, 7 transverse, 8 rotate 90 ccw.
    """

    def transposed():
        return tf.transpose(image, [1, 0, 2])

    branches = [
        lambda: image,  # 0: unknown, as stored
        lambda: image,
        lambda: tf.reverse(image, [1]),
        lambda: tf.reverse(image, [0, 1]),
        lambda: tf.reverse(image, [0]),
        transposed,
        lambda: tf.reverse(transposed(), [1]),
        lambda: tf.reverse(transposed(), [0, 1]),
        lambda: tf.reverse(transposed(), [0]),
    ]
    oriented = tf.switch_case(tf.clip_by_value(orientation, 0, 8), branches)
    oriented.set_shape([None, None, 3])
    return oriented


def _orientations(paths, blobs=None):
    """EXIF orientation of every image, read on the host (headers only)."""
    from concurrent.futures import ThreadPoolExecutor

    from keras_pose.utils.image_io import exif_orientation

    sources = blobs if blobs is not None else paths
    if len(sources) < 64:
        return np.array([exif_orientation(s) for s in sources], np.int32)
    with ThreadPoolExecutor(max_workers=16) as pool:
        return np.array(list(pool.map(exif_orientation, sources)), np.int32)


class _ImageSource:
    """Graph-side image lookup by index: from files, encoded bytes or pixels."""

    def __init__(self, paths, cache_images):
        import os

        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise ImageFileNotFoundError(
                f"{len(missing)} image file(s) of the dataset do not exist (first: {missing[0]!r}); "
                "check the dataset's image_root."
            )
        if cache_images not in (False, None, True, "encoded", "decoded"):
            raise PipelineError(
                f"cache_images must be False, True/'decoded' or 'encoded', got {cache_images!r}."
            )
        self.mode = {None: "files", False: "files", True: "decoded"}.get(cache_images, cache_images)
        # Annotations are in the upright frame (as cv2.imread / read_image show
        # the image): each image's EXIF orientation is applied in the graph.
        if self.mode == "files":
            self.paths = tf.constant(paths)
            orientations = _orientations(paths)
        elif self.mode == "encoded":
            blobs = [open(p, "rb").read() for p in paths]
            self.blobs = tf.constant(blobs)
            orientations = _orientations(paths, blobs)
        else:
            from keras_pose.utils.image_io import apply_orientation

            orientations = _orientations(paths)
            arrays = [
                apply_orientation(_decode(tf.io.read_file(p)).numpy(), o) for p, o in zip(paths, orientations)
            ]
            sizes = np.array([a.size for a in arrays], np.int64)
            self.offsets = tf.constant(np.concatenate([[0], np.cumsum(sizes)[:-1]]), tf.int64)
            self.shapes = tf.constant(np.array([a.shape for a in arrays], np.int64))
            self.pixels = tf.constant(np.concatenate([a.reshape(-1) for a in arrays]))
        self.oriented = bool((orientations > 1).any())
        self.orientations = tf.constant(orientations, tf.int32)

    def _upright(self, image, index):
        if not self.oriented:
            return image
        return _orient(image, tf.gather(self.orientations, index))

    def __call__(self, index):
        if self.mode == "files":
            return self._upright(_decode(tf.io.read_file(tf.gather(self.paths, index))), index)
        if self.mode == "encoded":
            return self._upright(_decode(tf.gather(self.blobs, index)), index)
        shape = tf.gather(self.shapes, index)
        start = tf.gather(self.offsets, index)
        flat = tf.slice(self.pixels, tf.reshape(start, [1]), tf.reshape(tf.reduce_prod(shape), [1]))
        image = tf.reshape(flat, shape)
        image.set_shape([None, None, 3])
        return image


def _resolve_spec(dataset, keypoint_spec, num_keypoints):
    if keypoint_spec is None:
        keypoint_spec = getattr(dataset, "keypoint_spec", None)
    if keypoint_spec is None:
        return None
    from keras_pose.keypoints import get_keypoint_spec

    spec = get_keypoint_spec(keypoint_spec)
    if spec.num_keypoints != num_keypoints:
        raise PipelineError(
            f"the keypoint spec {spec.name!r} has {spec.num_keypoints} keypoints but the data have "
            f"{num_keypoints}; pass the spec of the dataset (keypoint_spec=...)."
        )
    return spec


def _resolve_preprocessor(preprocessor, codec, image_size, preprocessing, padding, use_udp):
    """The `TopDownPreprocessor` whose parameters the pipeline applies (and whether it normalises).

    Without a preprocessor, one is built from the old-style arguments
    (``preprocessing`` dict, ``padding`` factor, ``use_udp``; the warp
    defaults to the codec's, see `keras_pose.preprocessing.default_warp`).
    """
    from keras_pose.preprocessing import PoseImageConverter, TopDownCropper, TopDownPreprocessor, default_warp

    if preprocessor is not None:
        given = [n for n, v in (("preprocessing", preprocessing), ("padding", padding), ("use_udp", use_udp)) if v is not None]
        if given:
            raise PipelineError(
                f"Pass either `preprocessor` or the old-style {given} (the preprocessor holds them); "
                "e.g. model_dataset(model, data) uses model.preprocessor."
            )
        if not isinstance(preprocessor, TopDownPreprocessor):
            raise PipelineError(f"`preprocessor` must be a TopDownPreprocessor, got {type(preprocessor).__name__}.")
        if tuple(preprocessor.image_size) != tuple(image_size):
            raise PipelineError(
                f"The preprocessor crops {tuple(preprocessor.image_size)} (h, w) but the codec encodes for "
                f"input_size={tuple(image_size)}; build both for the model input size."
            )
        return preprocessor, True
    warp = default_warp(codec) if use_udp is None else ("udp" if use_udp else "standard")
    cropper = TopDownCropper(image_size, padding=1.25 if padding is None else padding, warp=warp)
    try:
        converter = PoseImageConverter(**(preprocessing or {}))
    except (TypeError, ValueError) as error:
        raise PipelineError(f"Bad `preprocessing` {preprocessing!r}: {error}") from None
    return TopDownPreprocessor(cropper=cropper, image_converter=converter), preprocessing is not None


def build_top_down_dataset(
    dataset,
    codec,
    image_size=None,
    preprocessor=None,
    preprocessing=None,
    batch_size=32,
    training=True,
    augment=True,
    seed=None,
    shuffle=True,
    repeat=False,
    num_parallel_calls=AUTOTUNE,
    use_udp=None,
    padding=None,
    cache_images=False,
    drop_remainder=False,
    keypoint_spec=None,
    return_meta=None,
    use_joint_weights=False,
    prefetch=AUTOTUNE,
    heatmap_levels=False,
    skip_elements=0,
):
    """A batched ``tf.data.Dataset`` of top-down crops and heatmap targets.

    Args:
        dataset: a ``PoseDataset`` (``keras_pose.datasets``) or a list of
            ``PoseInstance``; one element per instance.
        codec: a heatmap codec (``MSRAHeatmap``, ``UDPHeatmap``,
            ``CPNHeatmap``) or its config dict; its ``encode_tf`` makes the
            targets.
        image_size: crop ``(height, width)``; defaults to
            ``codec.input_size`` (and must equal it).
        preprocessor: a `TopDownPreprocessor`: its cropper (padding or
            per-axis padding, border fill, warp) makes the crops and its
            image converter normalises them (`model_dataset` passes the
            model's). Without one, the old-style ``preprocessing``,
            ``padding`` and ``use_udp`` describe them.
        preprocessing: ``{"mean", "std", "channel_order"}`` (mean/std in
            0..255, per channel in the network's order); ``None`` (and no
            ``preprocessor``) leaves the crop RGB float32 in 0..255.
        batch_size: elements per batch; ``None`` for unbatched elements.
        training: True: augment (per ``augment``), shuffle, return
            ``(images, targets)``. False: no augmentation, no shuffle, and
            ``(images, targets, meta)`` unless ``return_meta=False``.
        augment: True (mmpose 1.x defaults, see
            ``keras_pose.data.augmentations.DEFAULT_AUGMENT``), False, or a
            dict of per-stage overrides (``{"half_body": None,
            "bbox_transform": {"rotate_factor": 40}}``).
        seed: int; the same seed gives identical batches (order and
            augmentation), different epochs still differ. With ``repeat``,
            the stream is computed from the seed with stateless ops alone
            (the same in every process, whatever TensorFlow's global seed).
            ``None``: non-deterministic.
        shuffle: shuffle the instances each epoch (training only).
        repeat: repeat forever (use ``steps_per_epoch`` in ``fit``).
        num_parallel_calls: parallelism of the per-instance map.
        use_udp: warp convention without a preprocessor; defaults to the
            codec's (UDP for ``UDPHeatmap``, which its targets assume).
        padding: box enlargement factor without a preprocessor (mmpose
            ``GetBBoxCenterScale``; default 1.25).
        cache_images: False (read files every time), "encoded" (keep the
            file bytes in memory) or True / "decoded" (keep the decoded
            pixels in memory; small datasets only, < 2 GB).
        drop_remainder: drop the last incomplete batch.
        keypoint_spec: spec for flip pairs and upper/lower body; defaults
            to ``dataset.keypoint_spec``. Needed for flip and half-body.
        return_meta: add a third element ``meta``, a dict of
            ``center`` ``(B, 2)`` and ``scale`` ``(B, 2)`` (the crop box in
            image px, aspect fixed: ``crop_to_image(decoded, center, scale,
            image_size)`` maps decoded keypoints back), ``rotation`` (deg),
            ``flipped``, ``half_body`` (0 none, 1 upper, 2 lower),
            ``image_id``, ``instance_id``, ``bbox`` (xywh), ``bbox_score``,
            ``area``, ``image_size`` ``(h, w)`` of the source image,
            ``keypoints`` ``(B, K, 2)`` in crop pixels and
            ``keypoints_visible`` ``(B, K)`` (after flip re-ordering).
            Default: ``not training``. Keras ``fit``/``evaluate`` read a
            third element as sample weights, so keep it off for them.
        use_joint_weights: multiply ``keypoint_weights`` by the keypoint
            spec's ``joint_weights`` (mmpose ``use_dataset_keypoint_weights``).
        prefetch: prefetch buffer (batches); ``None``/0 for none.
        heatmap_levels: also add ``targets["heatmaps_levels"]``, a tuple
            of float32 ``(B, h, w, K)`` targets the codec encodes
            (``CPNHeatmap``: one per GlobalNet level, coarsest kernel first;
            ``CPNLoss`` reads them). Needs a codec with that target.
            ``targets["heatmaps"]`` is unchanged.
        skip_elements: start this many instances into the (shuffled,
            repeated) stream: with a ``seed``, the elements that follow are
            exactly those an unskipped dataset gives after that many (how a
            resumed run continues where a killed one stopped:
            ``global_step * batch_size``).

    Returns:
        ``tf.data.Dataset`` of ``(images, targets)`` or
        ``(images, targets, meta)``.
    """
    from keras_pose.codecs import get_codec

    codec = get_codec(codec)
    if image_size is None:
        image_size = codec.input_size
    image_size = tuple(int(v) for v in image_size)
    if image_size != tuple(codec.input_size):
        raise PipelineError(
            f"image_size={image_size} (h, w) but the codec encodes for input_size="
            f"{tuple(codec.input_size)}; build the codec for the model input size."
        )
    preprocessor, normalize = _resolve_preprocessor(preprocessor, codec, image_size, preprocessing, padding, use_udp)
    cropper = preprocessor.cropper
    converter = preprocessor.image_converter
    fill_value = preprocessor.crop_fill_value()
    if return_meta is None:
        return_meta = not training
    instances = _instances_of(dataset)
    if not instances:
        raise PipelineError("`dataset` has no instances; nothing to build a pipeline from.")
    num_keypoints = int(instances[0].keypoints.shape[0])
    spec = _resolve_spec(dataset, keypoint_spec, num_keypoints)
    stages = aug.resolve_augment(augment) if training else {}
    if spec is None:
        needs = [s for s in ("flip", "half_body") if s in stages]
        if needs:
            raise PipelineError(
                f"augmentation stage(s) {needs} need the keypoint spec (flip pairs, upper/lower "
                "body); the dataset has none. Pass keypoint_spec='coco' (or your spec), or "
                f"disable them: augment={{{', '.join(repr(s) + ': None' for s in needs)}}}."
            )
    heatmap_levels = bool(heatmap_levels)
    if heatmap_levels and "heatmaps_levels" not in codec.target_keys:
        raise PipelineError(
            f"heatmap_levels=True needs a codec with per-level targets (\"heatmaps_levels\", e.g. "
            f"CPNHeatmap); {type(codec).__name__} has one target. Use heatmap_levels=False or a "
            "CPNHeatmap codec."
        )
    if use_joint_weights and (spec is None or spec.joint_weights is None):
        raise PipelineError("use_joint_weights=True needs a keypoint spec with joint_weights.")
    joint_weights = (
        tf.constant(np.asarray(spec.joint_weights, np.float32)) if use_joint_weights else None
    )

    records, paths = _records(instances, num_keypoints)
    source = _ImageSource(paths, cache_images)
    h_in, w_in = image_size
    aspect = w_in / h_in
    padding = tf.constant(cropper.crop_padding, tf.float64)

    def make_element(record, rand):
        image = source(record["image_index"])
        img_shape = tf.shape(image)
        img_h, img_w = img_shape[0], img_shape[1]
        bbox = tf.cast(record["bbox"], tf.float64)
        keypoints = tf.cast(record["keypoints"], tf.float64)
        visible = record["keypoints_visible"]
        # mmpose GetBBoxCenterScale(padding) (or per axis): the aspect ratio is fixed at the warp.
        center = bbox[:2] + 0.5 * bbox[2:]
        scale = bbox[2:] * padding
        rot = tf.constant(0.0, tf.float64)
        flipped = tf.constant(False)
        half = tf.constant(0, tf.int32)
        if stages:
            seeds = aug.split_seed(tf.stack([rand, tf.constant(0x5EED, tf.int64)]), 4)
            if "flip" in stages:
                flipped, center, keypoints, visible = aug.random_flip(
                    seeds[0], img_w, center, keypoints, visible, spec.flip_indices, **stages["flip"]
                )
            if "half_body" in stages:
                half, center, scale = aug.random_half_body(
                    seeds[1],
                    center,
                    scale,
                    keypoints,
                    visible,
                    spec.upper_body_indices,
                    spec.lower_body_indices,
                    **stages["half_body"],
                )
            if "bbox_transform" in stages:
                center, scale, rot = aug.random_bbox_transform(seeds[2], center, scale, **stages["bbox_transform"])
        scale = affine_tf.fix_aspect_ratio_tf(scale, aspect)
        matrix = affine_tf.get_warp_matrix_tf(center, scale, image_size, rot=rot, udp=cropper.udp)
        image_matrix = matrix
        if "flip" in stages:
            image_matrix = tf.cond(
                flipped,
                lambda: tf.cast(
                    affine_tf.compose_affine_tf(
                        tf.cast(matrix, tf.float64), affine_tf.horizontal_flip_matrix_tf(img_w)
                    ),
                    tf.float32,
                ),
                lambda: matrix,
            )
        crop = affine_tf.warp_image_tf(image, image_matrix, image_size, fill_value=fill_value)
        crop_kps = affine_tf.transform_points_tf(keypoints, matrix, dtype=tf.float64)
        if "color_jitter" in stages:
            crop = aug.color_jitter(seeds[3], crop, **stages["color_jitter"])
        encoded = codec.encode_tf(crop_kps, tf.minimum(visible, 1.0))
        heatmaps, weights = encoded["heatmaps"], encoded["keypoint_weights"]
        if joint_weights is not None:
            weights = weights * joint_weights
        heatmaps = tf.ensure_shape(heatmaps, [*codec.heatmap_size, num_keypoints])
        weights = tf.ensure_shape(weights, [num_keypoints])
        if normalize:
            crop = converter.normalize_tf(crop)
        crop = tf.ensure_shape(crop, [h_in, w_in, 3])
        targets = {"heatmaps": heatmaps, "keypoint_weights": weights}
        if heatmap_levels:
            # A tuple: tf.data would stack a list into one tensor.
            targets["heatmaps_levels"] = tuple(
                tf.ensure_shape(level, [*codec.heatmap_size, num_keypoints]) for level in encoded["heatmaps_levels"]
            )
        if not return_meta:
            return crop, targets
        meta = {
            "center": tf.cast(center, tf.float32),
            "scale": tf.cast(scale, tf.float32),
            "rotation": tf.cast(rot, tf.float32),
            "flipped": flipped,
            "half_body": half,
            "image_id": record["image_id"],
            "instance_id": record["instance_id"],
            "bbox": record["bbox"],
            "bbox_score": record["bbox_score"],
            "area": record["area"],
            "image_size": tf.stack([img_h, img_w]),
            "keypoints": tf.cast(crop_kps, tf.float32),
            "keypoints_visible": tf.cast(visible, tf.float32),
        }
        return crop, targets, meta

    if repeat and seed is not None:
        # One endless, seeded stream computed from (seed, epoch) / (seed,
        # element) with stateless ops: independent of TensorFlow's global
        # seed, so every process of a distributed run and a resumed run see
        # the very same elements.
        ds = stateless_stream(records, len(instances), seed, training and shuffle)
        rand = tf.data.Dataset.counter().map(
            lambda i: tf.random.stateless_uniform([], tf.stack([tf.constant(seed, tf.int64), i]), minval=None,
                                                  maxval=None, dtype=tf.int64))
    else:
        # A new order and new random numbers for each pass (each iterator).
        ds = tf.data.Dataset.from_tensor_slices(records)
        if training and shuffle:
            ds = ds.shuffle(len(instances), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        rand = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    if not stages:
        rand = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat()
    return finish_stream(ds, rand, make_element, skip_elements=skip_elements, num_parallel_calls=num_parallel_calls,
                         batch_size=batch_size, drop_remainder=drop_remainder, prefetch=prefetch)


def model_dataset(model, dataset, **kwargs):
    """:func:`build_top_down_dataset` configured from a ``TopDownPoseEstimator``.

    Takes the model's codec (``model.codec``), preprocessor (crop padding,
    border, warp, normalisation) and keypoint spec (flip pairs, upper/lower
    body); ``kwargs`` override or add any argument (``batch_size``,
    ``training``, ``augment``, ``seed``, ``repeat``, ...). For any paradigm
    use `keras_pose.data.model_dataset` (`keras_pose.data.model_datasets`),
    which sends bottom-up and one-stage models to the whole-image pipeline.
    """
    if getattr(model, "paradigm", "top_down") in ("bottom_up", "one_stage"):
        raise PipelineError(
            f"{type(model).__name__} is a {model.paradigm.replace('_', '-')} model: it trains on whole images. "
            "Use keras_pose.data.model_dataset (or keras_pose.data.whole_image_pipeline.model_dataset)."
        )
    params = {
        "codec": model.codec,
        "image_size": tuple(model.image_size),
        "preprocessor": model.preprocessor,
        "keypoint_spec": getattr(model, "keypoint_spec", None),
    }
    params.update(kwargs)
    heatmap_size = tuple(model.heatmap_size) if hasattr(model, "heatmap_size") else None
    codec_hm = tuple(params["codec"].heatmap_size) if hasattr(params["codec"], "heatmap_size") else None
    if heatmap_size and codec_hm and heatmap_size != codec_hm:
        raise PipelineError(
            f"the model outputs {heatmap_size} heatmaps but its codec encodes {codec_hm}; build the model "
            "with a codec for its heatmap size (codec=..., or decoding['codec']['heatmap_size'])."
        )
    return build_top_down_dataset(dataset, **params)
