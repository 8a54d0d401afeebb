"""The shared base of one-stage pose estimators (RTMO; YOLO-Pose style models).

A one-stage model sees the whole image and returns every person at once:
boxes, instance scores, keypoints and keypoint scores. On top of
`PoseEstimator` this class adds what is one-stage:

- a `WholeImagePreprocessor` (image converter + whole-image resizer, e.g.
  the reference letterbox `WarpLetterboxResizer`);
- ``test_cfg``: the decoding settings (``score_threshold``,
  ``nms_threshold``, ``max_instances``: the static number of people per
  image, ``max_candidates``: candidates entering NMS, None for all);
- `decoder()`: a Keras layer turning the raw outputs into fixed-size
  instance tensors in the graph (a subclass builds it), and
  `end_to_end_model()`: images -> those tensors in one graph (`predict_keypoints`
  runs it; export uses it);
- ``predict_keypoints(images)``: resize every image, batched forward pass +
  in-graph decoding, boxes and keypoints mapped back to image pixels.

The decoded tensors (model-input pixels, rows sorted by score, ``M`` =
``max_instances``):

| key | shape | meaning |
| --- | --- | --- |
| ``boxes`` | (B, M, 4) | x1, y1, x2, y2 |
| ``scores`` | (B, M) | instance scores |
| ``keypoints`` | (B, M, K, 2) | x, y |
| ``keypoint_scores`` | (B, M, K) | per keypoint |
| ``valid`` | (B, M) | bool: the row holds a person (padded rows are zero) |

Calling the model on a batch of model-ready inputs returns its raw outputs
(the family's dict); ``fit`` / ``predict`` take model-ready inputs as every
`PoseEstimator`.
"""

import keras
import numpy as np

from keras_pose.models.pose_estimator import PoseEstimator

DECODED_KEYS = ("boxes", "scores", "keypoints", "keypoint_scores", "valid")


def xyxy_to_xywh(boxes):
    """(..., 4) x1, y1, x2, y2 -> x, y, w, h."""
    boxes = np.asarray(boxes, np.float32)
    return np.concatenate([boxes[..., :2], boxes[..., 2:] - boxes[..., :2]], axis=-1)


@keras.saving.register_keras_serializable(package="keras_pose")
class OneStagePoseEstimator(PoseEstimator):
    """Base class of one-stage pose estimators (whole image -> people with boxes).

    Subclasses build a functional graph ``images -> raw outputs``, call
    ``super().__init__(inputs=..., outputs=..., keypoint_spec=...,
    preprocessor=..., test_cfg=..., **kwargs)`` and implement `decoder()`.
    Defaults: `default_test_cfg` (merged under the given ``test_cfg``) and
    `default_preprocessor(image_size)`.

    Args:
        keypoint_spec: a `KeypointSpec`, built-in name, dict or file path.
        preprocessor: a `WholeImagePreprocessor`; default
            `default_preprocessor` at the input size.
        test_cfg: decoding settings (see the module docstring), merged over
            `default_test_cfg`.
        **kwargs: passed to `PoseEstimator` (`inputs`, `outputs`, `codec`,
            `loss`, `name`, `dtype`).
    """

    paradigm = "one_stage"
    per_image_arguments = ()
    default_test_cfg = {"score_threshold": 0.1, "nms_threshold": 0.65, "max_instances": 100, "max_candidates": None}

    def __init__(self, *, keypoint_spec="coco", preprocessor=None, test_cfg=None, **kwargs):
        inputs = kwargs["inputs"]
        image = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        image_size = (int(image.shape[1]), int(image.shape[2]))
        if preprocessor is None:
            preprocessor = self.default_preprocessor(image_size)
        if tuple(preprocessor.image_size) != image_size:
            raise ValueError(
                f"The preprocessor resizes images to {tuple(preprocessor.image_size)} but the network input is "
                f"{image_size}; give a preprocessor of the network's input size."
            )
        settings = dict(self.default_test_cfg)
        unknown = sorted(set(test_cfg or {}) - set(settings))
        if unknown:
            raise ValueError(f"Unknown test_cfg keys {unknown}; {type(self).__name__} knows {sorted(settings)}.")
        settings.update(test_cfg or {})
        super().__init__(keypoint_spec=keypoint_spec, preprocessor=preprocessor, test_cfg=settings, **kwargs)
        object.__setattr__(self, "_end_to_end", {})

    @classmethod
    def default_preprocessor(cls, image_size):
        """The family's `WholeImagePreprocessor` for an input of `image_size` (H, W)."""
        raise NotImplementedError(f"{cls.__name__} does not implement default_preprocessor.")

    # ------------------------------------------------------------------ shapes
    @property
    def image_size(self):
        """(height, width) of the network input."""
        return (int(self.inputs[0].shape[1]), int(self.inputs[0].shape[2]))

    # ---------------------------------------------------------------- decoding
    def decoder(self, **settings):
        """A Keras layer: raw outputs -> the decoded dict (`DECODED_KEYS`), `test_cfg` overridden by `settings`."""
        raise NotImplementedError(f"{type(self).__name__} does not implement decoder.")

    def decode_outputs(self, raw_outputs, **settings):
        """Raw outputs -> the decoded dict of tensors (in the graph when traced; every backend)."""
        return self.decoder(**settings)(raw_outputs)

    def end_to_end_model(self, **settings):
        """A functional model: model-ready images (B, H, W, 3) -> the decoded dict (cached per settings).

        It runs eagerly when the task was compiled with ``run_eagerly=True``
        (no graph tracing), else as a graph (`predict_on_batch`).
        """
        eager = bool(self.compiled and self.run_eagerly)
        key = (eager, *sorted((k, v) for k, v in settings.items() if v is not None))
        cache = self.__dict__["_end_to_end"]
        if key not in cache:
            images = keras.Input(shape=(*self.image_size, 3), name="images")
            decoded = self.decoder(**dict(key[1:]))(self(images))
            model = keras.Model(images, decoded, name=f"{self.name}_end_to_end")
            if eager:
                model.compile(run_eagerly=True)
            cache[key] = model
        return cache[key]

    # --------------------------------------------------------------- inference
    def predict_keypoints(self, images, batch_size=8, **settings):
        """People in whole images: boxes, instance scores, keypoints and keypoint scores.

        Every image is resized as the reference does (the preprocessor's
        resizer), the batch runs through the network and the in-graph
        decoding (score threshold, NMS, keypoints), and boxes and keypoints
        are mapped back to image pixels.

        Args:
            images: one image or a list: file paths (read upright per their
                EXIF orientation) or (H, W, 3) RGB arrays of any size.
            batch_size: images per forward pass.
            **settings: `test_cfg` overrides for this call
                (``score_threshold``, ``nms_threshold``, ``max_instances``,
                ``max_candidates``).

        Returns:
            A `PoseResult` (single image input) or a list of them: keypoints
            (N, K, 2) and boxes (N, 4) xywh in image pixels, keypoint scores
            (N, K), box scores = person scores (N,), highest first.
        """
        return super().predict_keypoints(images, batch_size=batch_size, **settings)

    def _predict_image_batch(self, images, batch_size=8, names=None, **settings):
        from keras_pose.results import PoseResult

        unknown = sorted(set(settings) - set(self.default_test_cfg))
        if unknown:
            raise TypeError(f"Unknown predict_keypoints arguments {unknown}; test_cfg keys: {sorted(self.test_cfg)}.")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        model = self.end_to_end_model(**settings)
        results = []
        for start in range(0, len(images), int(batch_size)):
            chunk = images[start : start + int(batch_size)]
            inputs, matrices = zip(*(self.preprocessor.resize_image(image) for image in chunk))
            decoded = model.predict_on_batch(np.stack(inputs).astype(np.float32))
            decoded = {k: np.asarray(keras.ops.convert_to_numpy(decoded[k])) for k in DECODED_KEYS}
            for i, (image, matrix) in enumerate(zip(chunk, matrices)):
                rows = decoded["valid"][i].astype(bool)
                to_image = self.preprocessor.resizer.to_image
                boxes = to_image(decoded["boxes"][i][rows].reshape(-1, 2, 2), matrix).reshape(-1, 4)
                keypoints = to_image(decoded["keypoints"][i][rows], matrix)
                scores = decoded["scores"][i][rows].astype(np.float32)
                results.append(
                    PoseResult(
                        keypoints=np.asarray(keypoints, np.float32).reshape(-1, self.keypoint_spec.num_keypoints, 2),
                        scores=decoded["keypoint_scores"][i][rows].astype(np.float32),
                        boxes=xyxy_to_xywh(boxes),
                        box_scores=scores,
                        keypoint_spec=self.keypoint_spec,
                        image_size=tuple(image.shape[:2]),
                        person_scores=scores,
                    )
                )
        return results

    # ------------------------------------------------------------------ export
    def serving_outputs(self, raw_outputs):
        """The decoded dict (float32; ``valid`` as 0 / 1): fixed-size tensors an exported graph returns."""
        decoded = self.decode_outputs(raw_outputs)
        return {k: keras.ops.cast(decoded[k], "float32") for k in DECODED_KEYS}

    def export_decoding(self):
        """``{"paradigm", "outputs", "coordinates", "resizer", "test_cfg"}`` (JSON-plain).

        The exported graph takes the resized, model-ready image and returns
        the decoded tensors in model-input pixels; a runtime maps boxes and
        keypoints back with the inverse of the resizer's matrix.
        """
        return {
            "paradigm": self.paradigm,
            "outputs": list(DECODED_KEYS),
            "coordinates": "model-input pixels; image pixels = inverse of the resizer's image -> input matrix",
            "resizer": self.preprocessor.resizer.get_config(),
            "resizer_class": type(self.preprocessor.resizer).__name__,
            "test_cfg": self.test_cfg,
        }


__all__ = ["DECODED_KEYS", "OneStagePoseEstimator", "xyxy_to_xywh"]
