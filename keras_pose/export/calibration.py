"""int8 calibration data: normalised person crops from arrays, datasets or a COCO file.

`calibration_samples` turns whatever the caller gives as
``representative_dataset`` (an array, a ``tf.data`` pipeline, an iterable,
a callable) into one float32 array of crops; `representative_crops` makes
real crops the way inference does from a COCO-format keypoint file.
"""

import numpy as np

from keras_pose.export.options import INPUT_NAME, ExportError


def _as_array(element):
    """The images array of one representative-dataset element."""
    if isinstance(element, dict):
        for key in (INPUT_NAME, "image", "inputs", "x"):
            if key in element:
                return _as_array(element[key])
        raise ExportError(
            f"A representative_dataset element is a dict with keys {sorted(element)}; "
            "it needs an 'images' entry (normalised crops)."
        )
    if isinstance(element, (tuple, list)) and len(element) and not np.isscalar(element[0]) and (
        hasattr(element[0], "shape") or isinstance(element[0], (tuple, list, dict))
    ):
        if not hasattr(element[0], "shape") or np.ndim(element[0]) >= 3:
            return _as_array(element[0])  # (images, targets[, meta]) from a tf.data pipeline
    if hasattr(element, "numpy"):
        element = element.numpy()
    return np.asarray(element, np.float32)


def calibration_samples(representative_dataset, image_size, num_samples):
    """Single normalised crops from a representative dataset.

    Args:
        representative_dataset: a NumPy array ``(N, H, W, 3)`` or ``(H, W,
            3)``; a ``tf.data.Dataset`` or any iterable whose elements are
            crops ``(B, H, W, 3)`` / ``(H, W, 3)``, ``(images, targets...)``
            tuples (the `keras_pose.data` pipelines) or dicts with
            ``"images"``; or a callable returning such an iterable.
        image_size: the model input ``(H, W)``.
        num_samples: the most crops to take.

    Returns:
        float32 ``(n, H, W, 3)``, ``1 <= n <= num_samples``.
    """
    h, w = image_size
    data = representative_dataset
    if callable(data) and not hasattr(data, "__iter__") and not isinstance(data, np.ndarray):
        data = data()
    if isinstance(data, np.ndarray) or hasattr(data, "numpy") and not hasattr(data, "element_spec"):
        array = _as_array(data)
        iterable = [array] if array.ndim == 4 else [array[None]] if array.ndim == 3 else [array]
    else:
        try:
            iterable = iter(data)
        except TypeError:
            raise ExportError(
                f"representative_dataset must be an array, an iterable or tf.data.Dataset of normalised "
                f"crops (B, {h}, {w}, 3), or a callable returning one; got {type(data).__name__}."
            ) from None
    samples, count = [], 0
    for element in iterable:
        array = _as_array(element)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or tuple(array.shape[1:]) != (h, w, 3):
            raise ExportError(
                f"representative_dataset gave an element of shape {tuple(array.shape)}; the model takes "
                f"normalised crops (B, {h}, {w}, 3). Make them with "
                "keras_pose.export.representative_crops(model, annotation_file, image_root) or "
                "model.crop_people(image, boxes)[0]."
            )
        if not np.all(np.isfinite(array)):
            raise ExportError("representative_dataset holds NaN or infinite values.")
        take = array[: num_samples - count]
        samples.append(take)
        count += len(take)
        if count >= num_samples:
            break
    if count == 0:
        raise ExportError("representative_dataset is empty; int8 calibration needs at least one crop.")
    return np.concatenate(samples, axis=0).astype(np.float32)


def representative_crops(
    model,
    annotation_file,
    image_root=None,
    num_samples=100,
    include_flipped=True,
    seed=0,
):
    """Real, normalised person crops for int8 calibration.

    Reads a COCO-format keypoint file (`keras_pose.datasets.load_coco_keypoints`,
    train-mode filter: labelled people only), crops every person box the way
    inference does (`model.crop_people`: the preset's padding, aspect and
    standard / UDP warp, normalisation), and adds the mirrored crops (what
    flip-test inference feeds the network) when ``include_flipped``.

    Args:
        model: a `TopDownPoseEstimator`.
        annotation_file: COCO-format keypoint json.
        image_root: folder of the images; default the json's folder.
        num_samples: the most crops returned. With more people than that,
            a random subset (``seed``) is used.
        include_flipped: add horizontally mirrored crops (after the
            originals, up to ``num_samples``).
        seed: subset selection seed.

    Returns:
        float32 ``(n, H, W, 3)`` normalised crops, ``n <= num_samples``.
    """
    from keras_pose.datasets import load_coco_keypoints
    from keras_pose.utils.image_io import read_image

    num_samples = int(num_samples)
    if num_samples < 1:
        raise ExportError(f"num_samples must be >= 1, got {num_samples}.")
    dataset = load_coco_keypoints(annotation_file, image_root, mode="train")
    instances = list(dataset)
    if not instances:
        raise ExportError(f"{annotation_file!r} has no labelled person to crop for calibration.")
    num_original = num_samples if not include_flipped else max(1, (num_samples + 1) // 2)
    if len(instances) > num_original:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(instances), num_original, replace=False))
        instances = [instances[i] for i in keep]
    by_image = {}
    for inst in instances:
        by_image.setdefault(inst.image_path, []).append(inst.bbox)
    crops = []
    for image_path, boxes in by_image.items():
        image = read_image(image_path)
        crops.append(model.crop_people(image, np.asarray(boxes, np.float32))[0])
    crops = np.concatenate(crops, axis=0).astype(np.float32)
    if include_flipped:
        crops = np.concatenate([crops, np.ascontiguousarray(crops[:, :, ::-1])], axis=0)
    return crops[:num_samples]

