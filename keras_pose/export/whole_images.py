"""Whole-image inputs of exported bottom-up and one-stage models: calibration, inference, grouping.

Bottom-up (OpenPose) and one-stage (RTMO) exports take whole images at a
fixed size, prepared the way the model's own inference prepares them:

- bottom-up (`bottom_up_input`): BGR, scaled (``cv2.INTER_CUBIC``, aspect
  kept) so it fits the export size ``(H, W)`` -- height ``H`` as the
  reference resizes to the net height, unless the image is too wide, then
  width ``W`` -- padded right / bottom with ``pad_value`` (128), then the
  model's normalisation (pixel / 256 - 0.5);
- one-stage (`one_stage_input`): the preprocessor's letterbox (long side to
  the input size, centred, padded with 114), BGR 0..255.

`representative_images` makes int8 calibration data from real images (a
COCO-format file's images or a list of paths); `group_exported_maps` turns
an exported bottom-up model's maps into people outside the graph, as
`predict_keypoints` does with the Keras maps.

```python
from keras_pose.export import export_model, load_exported, representative_images
from keras_pose.export.whole_images import bottom_up_input, group_exported_maps

calib = representative_images(model, "person_keypoints_val2017.json", 100, image_size=(368, 496))
export_model(model, "openpose_int8.tflite", quantization="int8", representative_dataset=calib,
             image_size=(368, 496))
x, resized_hw = bottom_up_input(model, image, (368, 496))
maps = load_exported("openpose_int8.tflite")(x[None])       # {"heatmaps", "pafs"}
result = group_exported_maps(model, maps, resized_hw, image.shape[:2])   # a PoseResult
```
"""

import json
import os

import numpy as np

from keras_pose.export.options import ExportError


def bottom_up_input(model, image, image_size):
    """One image as a bottom-up export's input.

    Args:
        model: a `BottomUpPoseEstimator` (its ``normalize`` and ``test_cfg``
            ``stride`` / ``pad_value``).
        image: RGB uint8 ``(h, w, 3)`` (or a path).
        image_size: the export input ``(H, W)``, pixels.

    Returns:
        ``(x, resized_hw)``: float32 ``(H, W, 3)`` network input and the
        ``(h', w')`` of the scaled image inside it (the rest is padding).
    """
    from keras_pose.models.bottom_up_pose_estimator import resize_image
    from keras_pose.utils.image_io import read_image

    image = read_image(image)
    height, width = (int(v) for v in image_size)
    pad_value = model.test_cfg.get("pad_value", 128)
    bgr = np.ascontiguousarray(image[..., ::-1])
    factor = min(height / image.shape[0], width / image.shape[1])
    resized = resize_image(bgr, factor)[:height, :width]
    padded = np.full((height, width, 3), pad_value, dtype=resized.dtype)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    return model.normalize(padded).astype(np.float32), tuple(int(v) for v in resized.shape[:2])


def one_stage_input(model, image):
    """``(x, matrix)``: the preprocessor's letterboxed image (float32 ``(H, W, 3)``) and its 2x3 matrix."""
    from keras_pose.utils.image_io import read_image

    x, matrix = model.preprocessor.resize_image(read_image(image))
    return np.asarray(x, np.float32), matrix


def export_input(model, image, image_size=None):
    """The exported graph's input ``(H, W, 3)`` float32 for one whole image (bottom-up or one-stage)."""
    paradigm = getattr(model, "paradigm", None)
    if paradigm == "bottom_up":
        return bottom_up_input(model, image, image_size or model.image_size)[0]
    if paradigm == "one_stage":
        if image_size is not None and tuple(int(v) for v in image_size) != tuple(model.image_size):
            raise ExportError(
                f"image_size={list(image_size)}: {type(model).__name__} exports at its input size "
                f"{list(model.image_size)}; build the model at another size to export another one."
            )
        return one_stage_input(model, image)[0]
    raise ExportError(
        f"Whole-image inputs are for bottom-up and one-stage models; {type(model).__name__} is {paradigm!r}: "
        "make person crops with keras_pose.export.representative_crops(model, annotation_file, image_root)."
    )


def _image_paths(source, image_root):
    """Image paths of a COCO-format json (its ``images``), a folder, one path or a list of paths."""
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).lower().endswith(".json"):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Calibration annotation file {path!r} does not exist.")
        with open(path) as f:
            try:
                data = json.load(f)
            except ValueError as error:
                raise ExportError(f"{path!r} is not valid JSON ({error}); give a COCO-format file.") from None
        images = data.get("images") if isinstance(data, dict) else None
        if not isinstance(images, list) or not all(isinstance(i, dict) and "file_name" in i for i in images):
            raise ExportError(f"{path!r} has no COCO 'images' list with 'file_name's to calibrate on.")
        root = image_root if image_root is not None else os.path.dirname(os.path.abspath(path))
        return [os.path.join(root, i["file_name"]) for i in images]
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        folder = os.fspath(source)
        suffixes = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
        return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.lower().endswith(suffixes)]
    if isinstance(source, (str, os.PathLike)):
        return [os.fspath(source)]
    return list(source)


def representative_images(model, source, num_samples=100, image_size=None, image_root=None, include_flipped=True,
                          seed=0):
    """Real whole images prepared as the exported graph takes them, for int8 calibration.

    Args:
        model: a bottom-up (`OpenPose`) or one-stage (`RTMO`) model.
        source: a COCO-format json (its ``images``, relative to
            ``image_root``), a folder of images, one image path, or a list of
            paths / RGB uint8 arrays.
        num_samples: the most inputs returned; with more images than that,
            a random subset (``seed``).
        image_size: the export input ``(H, W)`` (bottom-up: the
            ``image_size`` given to `export_model`; default
            ``model.image_size``).
        image_root: folder of a json's images; default the json's folder.
        include_flipped: add the mirrored images (what flip-test inference
            feeds the network), after the originals, up to ``num_samples``.
        seed: subset selection seed.

    Returns:
        float32 ``(n, H, W, 3)``, ``1 <= n <= num_samples``.

    Raises:
        ExportError: a top-down model, no image, ``num_samples < 1``.
        FileNotFoundError: a missing annotation file or image.
    """
    from keras_pose.utils.image_io import read_image

    num_samples = int(num_samples)
    if num_samples < 1:
        raise ExportError(f"num_samples must be >= 1, got {num_samples}.")
    images = _image_paths(source, image_root)
    if not images:
        raise ExportError(f"No calibration image in {source!r}; give a COCO-format json, a folder or image paths.")
    num_original = num_samples if not include_flipped else max(1, (num_samples + 1) // 2)
    if len(images) > num_original:
        keep = np.sort(np.random.default_rng(seed).choice(len(images), num_original, replace=False))
        images = [images[i] for i in keep]
    inputs = []
    for item in images:
        if isinstance(item, (str, os.PathLike)) and not os.path.isfile(item):
            raise FileNotFoundError(f"Calibration image {os.fspath(item)!r} does not exist (check image_root).")
        image = read_image(item)
        inputs.append(export_input(model, image, image_size))
        if include_flipped:
            inputs.append(export_input(model, np.ascontiguousarray(image[:, ::-1]), image_size))
    originals, flipped = inputs[0::2 if include_flipped else 1], inputs[1::2] if include_flipped else []
    return np.stack(originals + flipped)[:num_samples].astype(np.float32)


def group_exported_maps(model, outputs, resized_hw, image_hw):
    """People from an exported bottom-up model's maps, grouped outside the graph.

    The same steps as `predict_keypoints` on the Keras maps (one scale, no
    flip): upsample x stride, crop the padding to ``resized_hw``, resize to
    the image, group (`model.group`).

    Args:
        model: the exported `OpenPose` (limbs, PAF channels, ``test_cfg``).
        outputs: the runner's dict with ``"heatmaps"`` ``(1, h, w, K)`` and
            ``"pafs"`` ``(1, h, w, 2L)`` (or ``(h, w, C)`` arrays).
        resized_hw: the scaled image's size inside the input (`bottom_up_input`).
        image_hw: the original image's ``(height, width)``.

    Returns:
        A `PoseResult` in image pixels.
    """
    from keras_pose.models.bottom_up_pose_estimator import upsample_maps

    missing = [k for k in ("heatmaps", "pafs") if k not in outputs]
    if missing:
        raise ExportError(f"group_exported_maps needs the 'heatmaps' and 'pafs' outputs; {missing} missing "
                          f"(got {sorted(outputs)}).")
    cfg = model.test_cfg
    stride, method = int(cfg.get("stride", 8)), cfg.get("upsample", "cubic")
    maps = []
    for name in ("heatmaps", "pafs"):
        value = np.asarray(outputs[name], np.float32)
        maps.append(upsample_maps(value[0] if value.ndim == 4 else value, stride, resized_hw, image_hw, method))
    groups = model.group(*maps, image_height=int(image_hw[0]))
    return model.result_from_groups(groups, image_hw)


__all__ = ["bottom_up_input", "export_input", "group_exported_maps", "one_stage_input", "representative_images"]
