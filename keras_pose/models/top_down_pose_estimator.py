"""The shared base of top-down pose estimators (ViTPose, CPM, Hourglass, CPN).

A top-down model sees one person per input crop. On top of `PoseEstimator`
this class adds what is top-down:

- the `TopDownPreprocessor` (image converter + `TopDownCropper`: padding,
  border, standard / UDP warp) and a heatmap codec, with per-family defaults
  (`default_codec`, `default_test_cfg`, `default_crop`,
  `default_preprocessing`) and the translation of the old ``preprocessing``
  / ``decoding`` dicts (`keras_pose.preprocessing.resolve_top_down_settings`);
- ``predict_keypoints(images, boxes)``: crops per box, batched forward pass,
  flip test, codec decoding in the crop frame, keypoints mapped back to
  image pixels;
- ``serving_outputs`` / ``export_decoding`` for export.

Calling the model on a batch of normalised crops (B, H, W, 3) returns its raw
outputs: heatmaps (B, h, w, K) float32, or for models with intermediate
supervision a list or dict of them (see `heatmaps_from_outputs`).
"""

import keras
import numpy as np

from keras_pose.errors import BoxError
from keras_pose.models.pose_estimator import PoseEstimator
from keras_pose.preprocessing import BOX_FORMATS
from keras_pose.preprocessing import IMAGENET_PREPROCESSING
from keras_pose.preprocessing import check_box_scores
from keras_pose.preprocessing import check_boxes
from keras_pose.preprocessing import legacy_decoding
from keras_pose.preprocessing import resolve_top_down_settings


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


def _spatial_size(tensor):
    return (int(tensor.shape[1]), int(tensor.shape[2]))


def detect_people(detector, images, boxes, box_scores, box_format):
    """Boxes of the images that have none, from a detector; ``(boxes, box_scores, box_format)``.

    Args:
        detector: a pose model with `predict_keypoints` returning `PoseResult`s
            with boxes (a one-stage model such as `RTMO`; run on those images
            in one batch), or a callable ``image -> PoseResult | boxes |
            (boxes, scores)`` (boxes in `box_format`).
        images: the (H, W, 3) uint8 RGB images.
        boxes, box_scores: per image the given boxes / scores (None: detect).
        box_format: the format of the given boxes and a callable's boxes.

    Returns:
        boxes and scores per image, every box as xyxy (the detected ones
        converted), and "xyxy".
    """
    from keras_pose.results import PoseResult

    def as_xyxy(value):
        value = np.asarray(value, np.float32).reshape(-1, 4)
        return value if box_format == "xyxy" else np.concatenate([value[:, :2], value[:, :2] + value[:, 2:]], -1)

    def from_result(result):  # PoseResult boxes are xywh
        b = np.asarray(result.boxes, np.float32).reshape(-1, 4)
        scores = result.box_scores if result.box_scores is not None else np.ones(len(b), np.float32)
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], -1), np.asarray(scores, np.float32)

    todo = [i for i, b in enumerate(boxes) if b is None]
    found = {}
    if todo and hasattr(detector, "predict_keypoints") and not isinstance(detector, TopDownPoseEstimator):
        for i, result in zip(todo, detector.predict_keypoints([images[i] for i in todo])):
            found[i] = from_result(result)
    elif todo:
        if not callable(detector):
            raise TypeError(f"detector must be a one-stage pose model or a callable, got {type(detector).__name__}.")
        for i in todo:
            out = detector(images[i])
            if isinstance(out, PoseResult):
                found[i] = from_result(out)
            elif isinstance(out, tuple) and len(out) == 2:
                found[i] = (as_xyxy(out[0]), np.asarray(out[1], np.float32).reshape(-1))
            else:
                found[i] = (as_xyxy(out), None)
    new_boxes, new_scores = [], []
    for i, (b, s) in enumerate(zip(boxes, box_scores)):
        if i in found:
            b, s = found[i]
            keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]) & np.isfinite(b).all(axis=1)  # no empty boxes
            b, s = b[keep], (None if s is None else s[keep])
        elif b is not None:
            b = as_xyxy(b)
        new_boxes.append(b)
        new_scores.append(s)
    return new_boxes, new_scores, "xyxy"


@keras.saving.register_keras_serializable(package="keras_pose")
class TopDownPoseEstimator(PoseEstimator):
    """Base class of top-down pose estimators.

    Subclasses build a functional graph `inputs -> outputs` and call
    `super().__init__(inputs=..., outputs=..., keypoint_spec=..., **kwargs)`
    with the settings below; families change the defaults through the class
    attributes `default_codec` (codec config without sizes),
    `default_test_cfg`, `default_crop` (`TopDownCropper` arguments without
    the size; the warp defaults to the codec's) and `default_preprocessing`.

    Args:
        keypoint_spec: a `KeypointSpec`, built-in name, dict or file path.
        preprocessor: a `TopDownPreprocessor` (converter + cropper); default
            from `preprocessing` / `decoding` or the family's defaults.
        codec: a heatmap codec or its config; default from
            ``decoding["codec"]`` or the family's default sized to the model.
        test_cfg: ``{"flip_test": bool, "shift_heatmap": bool}`` (mmpose
            flip test; the one-pixel flip shift of MSRA models).
        preprocessing: old-style dict ``{"mean", "std", "channel_order"}``
            (presets saved before the preprocessor; translated once).
        decoding: old-style dict ``{"codec", "padding", "padding_xy",
            "border", "warp", "flip_test", "shift_heatmap"}`` (translated
            once, see `keras_pose.preprocessing.legacy_settings`).
        loss: default training loss; `KeypointMSELoss()` if None.
        **kwargs: passed to `PoseEstimator` (`inputs`, `outputs`, `name`,
            `dtype`).
    """

    paradigm = "top_down"
    per_image_arguments = ("boxes", "box_scores")
    default_codec = {"type": "UDPHeatmap", "sigma": 2.0}
    default_test_cfg = {"flip_test": False, "shift_heatmap": False}
    default_crop = {"padding": 1.25}
    default_preprocessing = IMAGENET_PREPROCESSING

    def __init__(
        self,
        *,
        keypoint_spec="coco",
        preprocessor=None,
        codec=None,
        test_cfg=None,
        preprocessing=None,
        decoding=None,
        **kwargs,
    ):
        inputs = kwargs["inputs"]
        image_size = _spatial_size(inputs[0] if isinstance(inputs, (list, tuple)) else inputs)
        outputs = kwargs["outputs"]
        heatmap_size = _spatial_size(self.heatmaps_from_outputs(outputs))
        preprocessor, codec, test_cfg = resolve_top_down_settings(
            image_size,
            heatmap_size,
            preprocessor=preprocessor,
            codec=codec,
            test_cfg=test_cfg,
            preprocessing=preprocessing,
            decoding=decoding,
            defaults=self.settings_defaults(),
        )
        super().__init__(
            keypoint_spec=keypoint_spec, preprocessor=preprocessor, codec=codec, test_cfg=test_cfg, **kwargs
        )

    @classmethod
    def settings_defaults(cls):
        """The family's defaults for `resolve_top_down_settings`."""
        return {
            "codec": dict(cls.default_codec),
            "test_cfg": dict(cls.default_test_cfg),
            "crop": dict(cls.default_crop),
            "preprocessing": dict(cls.default_preprocessing),
        }

    @classmethod
    def default_decoding(cls, image_size, heatmap_size):
        """The family's default settings as an old-style ``decoding`` dict (preset entries)."""
        return legacy_decoding(*resolve_top_down_settings(image_size, heatmap_size, defaults=cls.settings_defaults()))

    # ---------------------------------------------------------------- settings
    @property
    def flip_test(self):
        """bool: average with the mirrored crop's heatmaps by default."""
        return bool(self.test_cfg.get("flip_test", False))

    @property
    def shift_heatmap(self):
        """bool: shift the flipped heatmaps one pixel (mmpose MSRA flip test)."""
        return bool(self.test_cfg.get("shift_heatmap", False))

    @property
    def decoding(self):
        """dict: the settings in the old ``decoding`` format (read-only view, see `export_decoding`)."""
        return self.export_decoding()

    @property
    def preprocessing(self):
        """dict: the image converter's ``{"mean", "std", "channel_order"}`` (read-only view)."""
        return self.preprocessor.image_converter.legacy_config()

    # ------------------------------------------------------------------ shapes
    @property
    def image_size(self):
        """(height, width) of the network input."""
        return _spatial_size(self.inputs[0])

    @property
    def heatmap_size(self):
        """(height, width) of the final heatmaps."""
        return _spatial_size(self.heatmaps_from_outputs(self.outputs if len(self.outputs) > 1 else self.outputs[0]))

    def heatmaps_from_outputs(self, outputs):
        """The final heatmaps from the raw outputs (the last stage / stack)."""
        if isinstance(outputs, dict):
            return outputs["heatmaps"]
        if isinstance(outputs, (list, tuple)):
            return outputs[-1]
        return outputs

    # --------------------------------------------------------------- inference
    def normalize_images(self, images):
        """uint8 RGB (B, H, W, 3) -> float32 network input (the image converter)."""
        return self.preprocessor.normalize(images)

    def crop_people(self, image, boxes):
        """Crops of the people in one image, ready for the network.

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: (M, 4) xywh boxes in image pixels.

        Returns:
            crops (M, h, w, 3) float32 normalised, centers (M, 2), scales
            (M, 2) (crop box size in pixels, aspect fixed to the input).
        """
        return self.preprocessor.crop_people(image, boxes)

    def _forward(self, batch):
        return self.predict_on_batch(batch)

    def predict_heatmaps(self, crops, batch_size=32, flip_test=None):
        """Final heatmaps (N, h, w, K) float32 for normalised crops.

        With flip test (default `flip_test`) the mirrored crops are run too,
        their heatmaps flipped back with the keypoint spec's flip pairs (and
        shifted one pixel if `shift_heatmap`), and the two averaged.
        """
        from keras_pose.codecs import flip_test_average

        flip_test = self.flip_test if flip_test is None else flip_test
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
                    heatmaps, flipped, self.keypoint_spec.flip_indices, shift_heatmap=self.shift_heatmap
                )
            outputs.append(heatmaps)
        if not outputs:
            return np.zeros((0, *self.heatmap_size, self.keypoint_spec.num_keypoints), np.float32)
        return np.concatenate(outputs, axis=0)

    def predict_keypoints(self, images, boxes=None, box_scores=None, box_format="xywh", batch_size=32, flip_test=None,
                          detector=None):
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
            flip_test: override the model's `flip_test`.
            detector: person detector for the images without boxes (instead
                of the whole image): a one-stage pose model (e.g. `RTMO`:
                its boxes and box scores are used) or a callable taking the
                (H, W, 3) uint8 RGB image and returning a `PoseResult`, an
                (M, 4) array of boxes in `box_format`, or a ``(boxes,
                scores)`` pair.

        Returns:
            A `PoseResult` (single image input) or a list of them: keypoints
            (M, K, 2) in image pixels and scores (M, K).

        Raises:
            ImageReadError: an image is missing, empty or undecodable, or an
                array has the wrong shape or dtype.
            BoxError: boxes without 4 values each, with NaN / Inf or without
                area, or box scores that do not match the boxes.
        """
        return super().predict_keypoints(
            images, boxes=boxes, box_scores=box_scores, box_format=box_format, batch_size=batch_size, flip_test=flip_test,
            detector=detector,
        )

    def _predict_image_batch(
        self, images, batch_size=32, names=None, boxes=None, box_scores=None, box_format="xywh", flip_test=None,
        detector=None,
    ):
        from keras_pose.results import PoseResult

        if box_format not in BOX_FORMATS:
            raise ValueError(f"box_format must be 'xywh' or 'xyxy', got {box_format!r}.")
        names = names or [f"image {i}" for i in range(len(images))]
        boxes = boxes or [None] * len(images)
        box_scores = box_scores or [None] * len(images)
        if detector is not None:
            boxes, box_scores, box_format = detect_people(detector, images, boxes, box_scores, box_format)
        all_crops, metas = [], []
        for array, image_boxes, image_scores, what in zip(images, boxes, box_scores, names):
            h, w = array.shape[:2]
            if image_boxes is None:
                image_boxes = np.array([[0.0, 0.0, w, h]], np.float32)
            image_boxes = check_boxes(image_boxes, box_format, (h, w), what)
            scores = np.ones(len(image_boxes), np.float32) if image_scores is None else check_box_scores(image_scores, what)
            if len(scores) != len(image_boxes):
                raise BoxError(f"{len(image_boxes)} boxes but {len(scores)} box scores for {what}.")
            crops, centers, scales = self.crop_people(array, image_boxes)
            all_crops.append(crops)
            metas.append((image_boxes, scores, centers, scales, (h, w)))

        crops = np.concatenate(all_crops, axis=0) if all_crops else np.zeros((0, *self.image_size, 3), np.float32)
        heatmaps = self.predict_heatmaps(crops, batch_size=batch_size, flip_test=flip_test)
        k = self.keypoint_spec.num_keypoints
        keypoints, scores = self.codec.decode(heatmaps) if len(heatmaps) else (
            np.zeros((0, k, 2), np.float32),
            np.zeros((0, k), np.float32),
        )
        results, start = [], 0
        for image_boxes, image_scores, centers, scales, size in metas:
            n = len(image_boxes)
            kps = self.preprocessor.cropper.to_image(keypoints[start : start + n], centers, scales)
            results.append(
                PoseResult(
                    keypoints=np.asarray(kps, np.float32),
                    scores=np.asarray(scores[start : start + n], np.float32),
                    boxes=image_boxes,
                    box_scores=image_scores,
                    keypoint_spec=self.keypoint_spec,
                    image_size=size,
                )
            )
            start += n
        return results

    # ------------------------------------------------------------------ export
    def serving_outputs(self, raw_outputs):
        """``{"heatmaps": (B, h, w, K) float32}``: the final heatmaps of the raw outputs."""
        return {"heatmaps": keras.ops.cast(self.heatmaps_from_outputs(raw_outputs), "float32")}

    def export_decoding(self):
        """``{"codec", "flip_test", "shift_heatmap", "padding", ["padding_xy", "border"], "warp"}``.

        A runtime crops each box with the cropper settings, runs the exported
        graph, decodes ``"heatmaps"`` with the codec
        (`keras_pose.codecs.get_codec`) and maps keypoints back with
        `keras_pose.geometry.crop_to_image`.
        """
        return legacy_decoding(self.preprocessor, self.codec, self.test_cfg)
