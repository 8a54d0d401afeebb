"""COCO keypoint AP of a bottom-up or one-stage model: its own people, no detector boxes.

```python
from keras_pose.training import evaluate_pose_model

evaluate_pose_model(openpose, val)   # {"coco_AP": ..., ...}; dispatches here for whole-image models
```

Each image of the dataset's image table goes through
``model.predict_keypoints`` (the model's own test settings: net height,
scales, flip, grouping / NMS); the people are mapped to the data's keypoint
order (``model.to_data_keypoints`` when the model has one, e.g. OpenPose-18
-> COCO-17) and scored by pycocotools against ``dataset.annotation_file``
(`keras_pose.metrics.CocoKeypointEvaluator`, the data spec's OKS sigmas),
each person scored by its instance score (`PoseResult.instance_scores`).
"""

import keras
import numpy as np

from keras_pose.errors import NonFiniteModelError


def whole_image_coco_results(model, dataset, keypoint_spec=None, category_id=1, verbose=0, flip_test=None):
    """COCO results (list of dicts) of every image of ``dataset.images``.

    Args:
        model: a bottom-up / one-stage `PoseEstimator` (whole images in).
        dataset: a ``PoseDataset`` read from a COCO-format file (its
            ``images`` table gives the image paths and ids).
        keypoint_spec: the data's spec (default ``dataset.keypoint_spec``).
        category_id: the results' COCO category.
        verbose: 1 shows a progress bar over images.
        flip_test: override the model's ``test_cfg["flip_test"]`` (None: keep it).

    Returns:
        ``[{"image_id", "category_id", "keypoints": [x, y, score] * K, "score"}, ...]``.
    """
    spec = keypoint_spec or getattr(dataset, "keypoint_spec", None)
    images = getattr(dataset, "images", None)
    if not images:
        raise ValueError("the dataset has no image table; read it with load_coco_keypoints(..., mode='eval').")
    progbar = keras.utils.Progbar(len(images), unit_name="image") if verbose else None
    results = []
    for done, (image_id, info) in enumerate(images.items(), 1):
        options = {} if flip_test is None else {"flip_test": bool(flip_test)}
        result = model.predict_keypoints(info.path, **options)
        keypoints, scores = result.keypoints, result.scores
        if hasattr(model, "to_data_keypoints") and spec is not None:
            keypoints, scores = model.to_data_keypoints(keypoints, scores, spec)
        person = result.instance_scores if len(result) else np.zeros(0)
        if not (np.isfinite(keypoints).all() and np.isfinite(scores).all() and np.isfinite(person).all()):
            raise NonFiniteModelError(
                f"The model predicts NaN or Inf keypoints on image {image_id}: its weights or outputs are not finite "
                "(a diverged training run?). Evaluate a checkpoint saved before the loss became NaN.")
        for i in range(len(result)):
            flat = np.concatenate([keypoints[i], np.asarray(scores[i])[:, None]], axis=-1).reshape(-1)
            results.append({"image_id": image_id, "category_id": category_id, "keypoints": flat.tolist(),
                            "score": float(person[i])})
        if progbar is not None:
            progbar.update(done)
    return results


def evaluate_whole_image_model(model, dataset, verbose=0, coco_evaluator=None, keypoint_spec=None, flip_test=None):
    """COCO keypoint AP / AR of a whole-image model on a COCO-format dataset.

    Returns:
        dict ``coco_AP``, ``coco_AP50``, ... (floats; 0.0 when the model finds nobody); for a
        CrowdPose file CrowdPose's figures, ``coco_AP(E)``, ``coco_AP(M)``, ``coco_AP(H)`` included.
    """
    from keras_pose.metrics import CocoKeypointEvaluator

    spec = keypoint_spec or getattr(dataset, "keypoint_spec", None)
    if getattr(dataset, "annotation_file", None) is None and coco_evaluator is None:
        raise ValueError("COCO AP needs the dataset's annotation file (read it with load_coco_keypoints) or a "
                         "coco_evaluator.")
    evaluator = coco_evaluator or CocoKeypointEvaluator(dataset, keypoint_spec=spec)
    stats = evaluator.evaluate(whole_image_coco_results(model, dataset, spec, verbose=verbose, flip_test=flip_test))
    return {f"coco_{name}": value for name, value in stats.items()}


__all__ = ["evaluate_whole_image_model", "whole_image_coco_results"]
