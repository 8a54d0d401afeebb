"""The shared base of top-down pose estimators (ViTPose, CPM, Hourglass, CPN).

A top-down model sees one person per input crop. Around the network this
class provides what every top-down family shares:

- the pre-processing a preset prescribes (`preprocessing`: mean / std in
  0..255 units and the channel order the network expects),
- the crop convention and decoding (`decoding`: codec config, padding, flip
  test, heatmap shift), so a preset reproduces its published accuracy,
- `predict_keypoints(images, boxes)`: whole images and person boxes in,
  keypoints in image pixels out,
- `compute_loss` for `fit` on targets `{"heatmaps", "keypoint_weights"}`,
- `from_preset` for registered names, preset directories and checkpoint URLs.

Calling the model on a batch of normalised crops (B, H, W, 3) returns its raw
outputs: heatmaps (B, h, w, K) float32, or for models with intermediate
supervision a list or dict of them (see `heatmaps_from_outputs`).
"""

import json

import keras
import keras_hub
import numpy as np

from keras_pose.errors import BoxError
from keras_pose.losses import KeypointMSELoss, get_loss

IMAGENET_PREPROCESSING = {
    "mean": [123.675, 116.28, 103.53],
    "std": [58.395, 57.12, 57.375],
    "channel_order": "rgb",
}


def resolve_num_keypoints(keypoint_spec, num_keypoints=None, what="head"):
    """The keypoint count of a spec, checked against an explicit count.

    Args:
        keypoint_spec: anything `get_keypoint_spec` accepts.
        num_keypoints: the count the network predicts, or None.
        what: the part that predicts them, for the error message.

    Returns:
        int K.

    Raises:
        ValueError: the two counts differ.
    """
    from keras_pose.keypoints import get_keypoint_spec

    spec_k = get_keypoint_spec(keypoint_spec).num_keypoints
    if num_keypoints is not None and int(num_keypoints) != spec_k:
        raise ValueError(
            f"The {what} predicts num_keypoints={num_keypoints} but the keypoint spec has {spec_k} "
            "keypoints; pass the keypoint spec of the dataset the model predicts."
        )
    return spec_k


def _default_decoding(image_size, heatmap_size):
    return {
        "codec": {
            "type": "UDPHeatmap",
            "input_size": list(image_size),
            "heatmap_size": list(heatmap_size),
            "sigma": 2.0,
        },
        "flip_test": False,
        "shift_heatmap": False,
        "padding": 1.25,
    }


@keras.saving.register_keras_serializable(package="keras_pose")
class TopDownPoseEstimator(keras_hub.models.Task):
    """Base class of top-down pose estimators.

    Subclasses build a functional graph `inputs -> outputs` and call
    `super().__init__(inputs=..., outputs=..., keypoint_spec=...,
    preprocessing=..., decoding=..., **kwargs)`.

    Args:
        keypoint_spec: a `KeypointSpec`, built-in name, dict or file path.
        preprocessing: dict with "mean" and "std" (per channel, 0..255 units,
            in the network's channel order) and "channel_order" ("rgb" or
            "bgr"). Defaults to ImageNet RGB.
        decoding: dict with "codec" (a codec config, see
            `keras_pose.codecs.get_codec`), "padding" (box padding factor,
            1.25), "flip_test" (bool) and "shift_heatmap" (bool, mmpose 0.x
            flip-test shift); optional "padding_xy" ((x, y) per-axis box
            padding used by `crop_people` instead of "padding") and
            "border" ("mean": fill outside the image with
            `preprocessing["mean"]`; default zeros). Defaults to UDP
            heatmaps without flip test.
        loss: default training loss (a loss object or its config);
            `KeypointMSELoss()` if None.
        **kwargs: passed to `keras_hub.models.Task` (`inputs`, `outputs`,
            `name`, `dtype`).
    """

    backbone_cls = None
    preprocessor_cls = None

    def __init__(self, *, keypoint_spec="coco", preprocessing=None, decoding=None, loss=None, **kwargs):
        from keras_pose.keypoints import get_keypoint_spec

        self._default_loss = get_loss(loss)
        super().__init__(**kwargs)
        self.keypoint_spec = get_keypoint_spec(keypoint_spec)
        preprocessing = _plain(preprocessing or IMAGENET_PREPROCESSING)
        preprocessing.setdefault("channel_order", "rgb")
        if preprocessing["channel_order"] not in ("rgb", "bgr"):
            raise ValueError(
                f"preprocessing['channel_order'] must be 'rgb' or 'bgr', got "
                f"{preprocessing['channel_order']!r}."
            )
        self.preprocessing = preprocessing
        self.decoding = _plain(decoding or _default_decoding(self.image_size, self._heatmap_size()))
        self._codec = None

    # Plain dicts, kept out of Keras' attribute tracking (a tracked dict
    # carries the model's layer tracker, which makes copies expensive).
    @property
    def preprocessing(self):
        """dict: "mean" / "std" (0..255 units) and "channel_order"."""
        return self.__dict__.get("_pose_preprocessing")

    @preprocessing.setter
    def preprocessing(self, value):
        object.__setattr__(self, "_pose_preprocessing", _plain(value))

    @property
    def decoding(self):
        """dict: "codec", "padding", "flip_test", "shift_heatmap"."""
        return self.__dict__.get("_pose_decoding")

    @decoding.setter
    def decoding(self, value):
        object.__setattr__(self, "_pose_decoding", _plain(value))
        object.__setattr__(self, "_codec", None)

    # ------------------------------------------------------------------ shapes
    @property
    def image_size(self):
        """(height, width) of the network input."""
        shape = self.inputs[0].shape if isinstance(self.inputs, (list, tuple)) else self.input.shape
        return (int(shape[1]), int(shape[2]))

    def _heatmap_size(self):
        out = self.heatmaps_from_outputs(self.outputs if len(self.outputs) > 1 else self.outputs[0])
        return (int(out.shape[1]), int(out.shape[2]))

    def heatmaps_from_outputs(self, outputs):
        """The final heatmaps from the raw outputs (the last stage / stack)."""
        if isinstance(outputs, dict):
            return outputs["heatmaps"]
        if isinstance(outputs, (list, tuple)):
            return outputs[-1]
        return outputs

    @property
    def codec(self):
        """The decoding codec built from `decoding["codec"]`."""
        if self._codec is None:
            from keras_pose.codecs import get_codec

            self._codec = get_codec(self.decoding["codec"])
        return self._codec

    # ---------------------------------------------------------------- training
    def compile(self, optimizer="auto", loss="auto", metrics=None, **kwargs):
        """Compile for `fit` on `{"heatmaps", "keypoint_weights"}` targets.

        Args:
            optimizer: "auto" = Adam(learning_rate=5e-4), mmpose's default
                for heatmap models; or any Keras optimizer.
            loss: "auto" = the model's default loss (`KeypointMSELoss`, or
                the family's intermediate-supervision / OHKM loss), or a loss
                object called as `loss(y_true_dict, y_pred)`.
            metrics: passed to Keras.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(learning_rate=5e-4)
        self.pose_loss = getattr(self, "_default_loss", None) or KeypointMSELoss() if loss == "auto" else get_loss(loss)
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {
            "optimizer": keras.saving.serialize_keras_object(self.optimizer),
            "loss": keras.saving.serialize_keras_object(self.pose_loss),
        }

    def compile_from_config(self, config):
        if not config:
            return
        self.compile(
            optimizer=keras.saving.deserialize_keras_object(config["optimizer"]),
            loss=keras.saving.deserialize_keras_object(config["loss"]),
        )
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        if not isinstance(y, dict):
            y = {"heatmaps": y, "keypoint_weights": None}
        loss = self.pose_loss(y, y_pred)
        if self.losses:
            loss = loss + keras.ops.sum(keras.ops.stack([keras.ops.cast(l, "float32") for l in self.losses]))
        return loss

    # --------------------------------------------------------------- inference
    def normalize_images(self, images):
        """uint8 RGB (B, H, W, 3) -> float32 network input per `preprocessing`."""
        x = np.asarray(images, dtype=np.float32)
        if self.preprocessing["channel_order"] == "bgr":
            x = x[..., ::-1]
        mean = np.asarray(self.preprocessing["mean"], np.float32)
        std = np.asarray(self.preprocessing["std"], np.float32)
        return (x - mean) / std

    def crop_people(self, image, boxes):
        """Crops of the people in one image, ready for the network.

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: (M, 4) xywh boxes in image pixels.

        Returns:
            crops (M, h, w, 3) float32 normalised, centers (M, 2), scales
            (M, 2) (crop box size in pixels, aspect fixed to the input).
        """
        from keras_pose.geometry import box_xywh_to_center_scale, get_warp_matrix, warp_image

        padding = self.decoding.get("padding_xy") or float(self.decoding.get("padding", 1.25))
        centers, scales = box_xywh_to_center_scale(boxes, self.image_size, padding=padding)
        border = 0
        if self.decoding.get("border") == "mean":  # fill outside the image with the pixel means
            border = self.preprocessing["mean"][:: -1 if self.preprocessing["channel_order"] == "bgr" else 1]
        crops = np.empty((len(boxes), *self.image_size, 3), np.uint8)
        for i in range(len(boxes)):
            matrix = get_warp_matrix(centers[i], scales[i], self.image_size, udp=self.codec.udp)
            crops[i] = warp_image(image, matrix, self.image_size, border_value=border)
        return self.normalize_images(crops), centers, scales

    def _forward(self, batch):
        return self.predict_on_batch(batch)

    def predict_heatmaps(self, crops, batch_size=32, flip_test=None):
        """Final heatmaps (N, h, w, K) float32 for normalised crops.

        With flip test (default from `decoding["flip_test"]`) the mirrored
        crops are run too, their heatmaps flipped back with the keypoint
        spec's flip pairs (and shifted one pixel if `shift_heatmap`), and the
        two averaged.
        """
        from keras_pose.codecs import flip_test_average

        flip_test = self.decoding.get("flip_test", False) if flip_test is None else flip_test
        outputs = []
        for start in range(0, len(crops), batch_size):
            batch = np.asarray(crops[start : start + batch_size], np.float32)
            heatmaps = np.asarray(self.heatmaps_from_outputs(self._forward(batch)), np.float32)
            if flip_test:
                flipped = np.asarray(
                    self.heatmaps_from_outputs(self._forward(np.ascontiguousarray(batch[:, :, ::-1]))),
                    np.float32,
                )
                heatmaps = flip_test_average(
                    heatmaps,
                    flipped,
                    self.keypoint_spec.flip_indices,
                    shift_heatmap=bool(self.decoding.get("shift_heatmap", False)),
                )
            outputs.append(heatmaps)
        if not outputs:
            h, w = self._heatmap_size()
            return np.zeros((0, h, w, self.keypoint_spec.num_keypoints), np.float32)
        return np.concatenate(outputs, axis=0)

    def predict_keypoints(self, images, boxes=None, box_scores=None, box_format="xywh", batch_size=32, flip_test=None):
        """Keypoints of the people in whole images.

        Every box is cropped with the preset's convention (padding, aspect
        fixed to the input, standard or UDP affine), all crops run through the
        network in batches, and the heatmaps are decoded with the preset's
        codec and mapped back to image pixels.

        Args:
            images: one image or a list: file paths (read upright per their
                EXIF orientation) or (H, W, 3) RGB arrays; see
                `keras_pose.utils.image_io.read_image` for the accepted
                dtypes.
            boxes: per image an (M, 4) array of person boxes in image pixels
                (`box_format` "xywh" or "xyxy"); None (or None for an image)
                uses the whole image as one box. For a single image, a bare
                (M, 4) array or one box of 4 numbers is accepted. Boxes must
                be finite with positive width and height; a box entirely
                outside its image gives a warning.
            box_scores: optional per image (M,) finite detector scores
                (default 1).
            batch_size: crops per forward pass.
            flip_test: override `decoding["flip_test"]`.

        Returns:
            A `PoseResult` (single image input) or a list of them: keypoints
            (M, K, 2) in image pixels and scores (M, K).

        Raises:
            ImageReadError: an image is missing, empty or undecodable, or an
                array has the wrong shape or dtype.
            BoxError: boxes without 4 values each, with NaN / Inf or without
                area, or box scores that do not match the boxes.
        """
        from keras_pose.geometry import crop_to_image
        from keras_pose.results import PoseResult
        from keras_pose.utils.image_io import read_image

        single = isinstance(images, (str, bytes)) or hasattr(images, "__fspath__") or (
            isinstance(images, np.ndarray) and images.ndim == 3
        )
        image_list = [images] if single else list(images)
        if single:
            boxes = [boxes]
            box_scores = [box_scores]
        else:
            boxes = [None] * len(image_list) if boxes is None else list(boxes)
            box_scores = [None] * len(image_list) if box_scores is None else list(box_scores)
        if len(boxes) != len(image_list) or len(box_scores) != len(image_list):
            raise ValueError(
                f"Got {len(image_list)} images but {len(boxes)} box lists and "
                f"{len(box_scores)} box-score lists; give one per image (None "
                "for the whole image)."
            )
        if box_format not in ("xywh", "xyxy"):
            raise ValueError(f"box_format must be 'xywh' or 'xyxy', got {box_format!r}.")

        decoded_images, all_crops, metas = [], [], []
        for index, (image, image_boxes, image_scores) in enumerate(zip(image_list, boxes, box_scores)):
            array = read_image(image)
            decoded_images.append(array)
            h, w = array.shape[:2]
            what = f"image {index}" + (f" ({image!r})" if isinstance(image, str) else "")
            if image_boxes is None:
                image_boxes = np.array([[0.0, 0.0, w, h]], np.float32)
            image_boxes = _check_boxes(image_boxes, box_format, (h, w), what)
            scores = np.ones(len(image_boxes), np.float32) if image_scores is None else _check_box_scores(image_scores, what)
            if len(scores) != len(image_boxes):
                raise BoxError(f"{len(image_boxes)} boxes but {len(scores)} box scores for {what}.")
            crops, centers, scales = self.crop_people(array, image_boxes)
            all_crops.append(crops)
            metas.append((image_boxes, scores, centers, scales, (h, w)))

        crops = np.concatenate(all_crops, axis=0) if all_crops else np.zeros((0, *self.image_size, 3), np.float32)
        heatmaps = self.predict_heatmaps(crops, batch_size=batch_size, flip_test=flip_test)
        keypoints, scores = self.codec.decode(heatmaps) if len(heatmaps) else (
            np.zeros((0, self.keypoint_spec.num_keypoints, 2), np.float32),
            np.zeros((0, self.keypoint_spec.num_keypoints), np.float32),
        )
        results, start = [], 0
        for (image_boxes, image_scores, centers, scales, size), image in zip(metas, image_list):
            n = len(image_boxes)
            kps = crop_to_image(keypoints[start : start + n], centers, scales, self.image_size)
            results.append(
                PoseResult(
                    keypoints=np.asarray(kps, np.float32),
                    scores=np.asarray(scores[start : start + n], np.float32),
                    boxes=image_boxes,
                    box_scores=image_scores,
                    keypoint_spec=self.keypoint_spec,
                    image_size=size,
                    image_id=image if isinstance(image, str) else None,
                )
            )
            start += n
        return results[0] if single else results

    # ----------------------------------------------------------------- presets
    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build a model from a preset.

        Args:
            preset: a registered preset name (`keras-pose presets` lists
                them; the reference checkpoint is downloaded, checked,
                converted and cached on first use), a local preset directory
                (from `save_to_preset` or `keras-pose convert`), an
                `https://` / `file://` URL of a reference checkpoint, or a
                `kaggle://` / `hf://` Keras preset handle.
            load_weights: load the weights (True) or keep a fresh
                initialisation (False).
            **kwargs: constructor overrides (e.g. `dtype="mixed_bfloat16"`,
                `dataset="ap10k"` for ViTPose++).

        Raises:
            PresetError: unknown preset, a damaged preset folder (invalid
                JSON, no class named), or a missing or unreadable weights
                file (named, with how to repair it).
        """
        import importlib

        # The loader is a higher layer (it reaches the converters): by name, as keras resolves classes.
        loader = importlib.import_module("keras_pose.preset_loading")
        return loader.load_preset(preset, cls=cls, load_weights=load_weights, **kwargs)

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "keypoint_spec": self.keypoint_spec.get_config(),
                "preprocessing": _plain(self.preprocessing),
                "decoding": _plain(self.decoding),
                "loss": keras.saving.serialize_keras_object(self._default_loss),
            }
        )
        return config


def _check_boxes(boxes, box_format, image_size, what):
    """Boxes of one image -> (M, 4) float32 xywh, checked.

    Args:
        boxes: (M, 4) array-like, one box of 4 numbers, or an empty list.
        box_format: "xywh" or "xyxy".
        image_size: (height, width) of the image, for the outside warning.
        what: names the image in messages.
    """
    import warnings

    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise BoxError(
            f"The boxes of {what} are not an (M, 4) array of numbers ({e}); give one "
            f"[x, y, w, h] (box_format={box_format!r}) per person."
        ) from None
    if array.ndim == 1 and array.size in (0, 4):
        array = array.reshape(-1, 4)
    if array.ndim >= 2 and array.shape[-1] == 4:
        array = array.reshape(-1, 4)
    else:
        count = array.shape[-1] if array.ndim else 1
        raise BoxError(
            f"The boxes of {what} have shape {array.shape}: a box has 4 values "
            f"({'x1, y1, x2, y2' if box_format == 'xyxy' else 'x, y, w, h'}), got {count}. Pass "
            "an (M, 4) array, one row per person."
        )
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise BoxError(
            f"{int(bad.sum())} box(es) of {what} hold NaN or Inf (first: {array[bad][0].tolist()}); "
            "boxes must be finite pixel coordinates. Drop or fix them (e.g. boxes[np.isfinite(boxes)"
            ".all(1)])."
        )
    if box_format == "xyxy":
        array = np.concatenate([array[:, :2], array[:, 2:] - array[:, :2]], axis=1)
    if len(array) and (array[:, 2:] <= 0).any():
        raise BoxError(
            f"Boxes must have positive width and height (xywh); got {array.tolist()} for {what}. "
            "Pass box_format='xyxy' if your boxes are corners."
        )
    h, w = image_size
    x, y, bw, bh = array.T
    outside = (x >= w) | (y >= h) | (x + bw <= 0) | (y + bh <= 0)
    if outside.any():
        warnings.warn(
            f"{int(outside.sum())} box(es) of {what} lie entirely outside the {w}x{h} (WxH) image "
            f"(first: {array[outside][0].tolist()} xywh); their keypoints are guesses. Check the "
            "box coordinates and box_format.",
            stacklevel=3,
        )
    return array.astype(np.float32)


def _check_box_scores(scores, what):
    try:
        array = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise BoxError(f"The box scores of {what} are not numbers ({e}).") from None
    if not np.isfinite(array).all():
        raise BoxError(f"The box scores of {what} hold NaN or Inf ({array.tolist()}); pass finite scores.")
    return array.astype(np.float32)


def _plain(value):
    """A JSON-plain deep copy (dicts, lists, numbers, strings)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict) or hasattr(value, "items"):
        return dict(value.items())
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__"):
        return list(value)
    raise TypeError(f"Not JSON-serialisable: {type(value).__name__}")
