"""Evaluating a top-down model on a dataset: COCO AP, PCK, PCKh.

```python
from keras_pose.training import evaluate_pose_model

evaluate_pose_model(model, val, metric="coco")   # {"coco_AP": ..., "coco_AP50": ..., ...}
```

The evaluation runs the model as a user would: ``model.predict_keypoints``
on whole images and the dataset's boxes (ground-truth or detected, with
their scores), the preset's crop, codec and flip-test settings, keypoints
mapped back to image pixels. `PoseEvaluationCallback` (callbacks.py) runs
it during ``fit``.
"""

import numpy as np

import keras

from keras_pose.errors import NonFiniteModelError


def _group_by_image(instances):
    order, groups = [], {}
    for index, inst in enumerate(instances):
        if inst.image_path not in groups:
            groups[inst.image_path] = []
            order.append(inst.image_path)
        groups[inst.image_path].append(index)
    return [(path, groups[path]) for path in order]


def predict_dataset(model, dataset, batch_size=32, flip_test=None, verbose=1):
    """Run ``model.predict_keypoints`` over every instance of a dataset.

    Args:
        model: a ``TopDownPoseEstimator``.
        dataset: a ``PoseDataset`` (or list of ``PoseInstance``); each
            instance's ``bbox`` (xywh) and ``bbox_score`` are the input boxes.
        batch_size: crops per forward pass (images are grouped so that a
            call holds about this many crops).
        flip_test: override the model's ``test_cfg["flip_test"]``.
        verbose: 1 shows a ``keras.utils.Progbar`` over images.

    Returns:
        ``(keypoints (N, K, 2) float32 image px, scores (N, K) float32)`` in
        the dataset's instance order.
    """
    instances = list(getattr(dataset, "instances", dataset))
    k = model.keypoint_spec.num_keypoints
    keypoints = np.zeros((len(instances), k, 2), np.float32)
    scores = np.zeros((len(instances), k), np.float32)
    groups = _group_by_image(instances)
    progbar = keras.utils.Progbar(len(groups), unit_name="image") if verbose else None
    done, start = 0, 0
    while start < len(groups):
        chunk, crops = [], 0
        while start < len(groups) and (not chunk or crops + len(groups[start][1]) <= batch_size):
            chunk.append(groups[start])
            crops += len(groups[start][1])
            start += 1
        results = model.predict_keypoints(
            [path for path, _ in chunk],
            boxes=[np.stack([instances[i].bbox for i in idx]) for _, idx in chunk],
            box_scores=[np.array([instances[i].bbox_score for i in idx], np.float32) for _, idx in chunk],
            batch_size=batch_size,
            flip_test=flip_test,
        )
        for (_, idx), result in zip(chunk, results):
            keypoints[idx] = result.keypoints
            scores[idx] = result.scores
        done += len(chunk)
        if progbar is not None:
            progbar.update(done)
    return keypoints, scores


def auto_metric(dataset):
    instances = list(getattr(dataset, "instances", dataset))
    if instances and all(inst.head_size is not None for inst in instances) and instances[0].keypoints.shape[0] == 16:
        return "pckh"
    if getattr(dataset, "annotation_file", None) and getattr(dataset, "categories", None):
        return "coco"
    return "pck"


def evaluate_pose_model(
    model,
    dataset,
    metric="auto",
    batch_size=32,
    flip_test=None,
    pck_threshold=0.05,
    verbose=1,
    coco_evaluator=None,
):
    """Evaluate a model on a dataset (a bottom-up / one-stage model: COCO AP of its own people,
    `keras_pose.training.whole_image_evaluation`).

    Args:
        model: a ``TopDownPoseEstimator``.
        dataset: ``PoseDataset``; boxes and box scores come from it.
        metric: "coco" (AP/AR via ``keras_pose.metrics.CocoKeypointEvaluator``
            against ``dataset.annotation_file``, mmpose rescoring + OKS-NMS;
            CrowdPose's figures for a CrowdPose file: ``crowd_index``),
            "pck" (PCK at ``pck_threshold`` of ``max(box w, h)``, visible
            keypoints), "pckh" (MPII PCKh@0.5, needs ``head_size``) or
            "auto" (pckh for MPII, coco for COCO-format files, else pck).
        batch_size, flip_test, verbose: see :func:`predict_dataset`.
        pck_threshold: PCK threshold (fraction of the box size).
        coco_evaluator: a prepared ``CocoKeypointEvaluator`` to reuse.

    Returns:
        dict of floats: ``coco_AP``, ``coco_AP50``, ... for "coco" (a CrowdPose
        file: ``coco_AP``, ..., ``coco_AR75``, ``coco_AP(E)``, ``coco_AP(M)``,
        ``coco_AP(H)``); ``pck``
        (and ``epe`` in pixels) for "pck"; ``pckh``, ``pckh@0.1`` for "pckh".
    """
    from keras_pose import metrics as pose_metrics

    if getattr(model, "paradigm", "top_down") in ("bottom_up", "one_stage"):
        if metric not in ("auto", "coco"):
            raise ValueError(f"A {model.paradigm} model is evaluated with COCO AP on its own people (metric='coco'); "
                             f"{metric!r} needs ground-truth boxes (top-down models).")
        from keras_pose.training.whole_image_evaluation import evaluate_whole_image_model

        return evaluate_whole_image_model(model, dataset, verbose=verbose, coco_evaluator=coco_evaluator,
                                          flip_test=flip_test)
    if metric == "auto":
        metric = auto_metric(dataset)
    if metric not in ("coco", "pck", "pckh"):
        raise ValueError(f"metric must be 'auto', 'coco', 'pck' or 'pckh', got {metric!r}.")
    instances = list(getattr(dataset, "instances", dataset))
    if not instances:
        raise ValueError("the evaluation dataset has no instances.")
    keypoints, scores = predict_dataset(model, instances, batch_size=batch_size, flip_test=flip_test, verbose=verbose)
    finite = np.isfinite(keypoints).all(axis=(1, 2)) & np.isfinite(scores).all(axis=1)
    if not finite.all():
        raise NonFiniteModelError(
            f"The model predicts NaN or Inf keypoints for {int((~finite).sum())} of {len(instances)} instances: its "
            "weights or outputs are not finite (a training run that diverged?). Evaluate a checkpoint saved before "
            "the loss became NaN, or retrain with a lower learning rate."
        )
    gt = np.stack([inst.keypoints for inst in instances])
    visible = np.stack([inst.keypoints_visible for inst in instances]) > 0
    if metric == "pck":
        boxes = np.stack([inst.bbox for inst in instances])
        norm = np.repeat(boxes[:, 2:].max(axis=1, keepdims=True), 2, axis=1)
        return {
            "pck": pose_metrics.pck(keypoints, gt, visible, norm, pck_threshold),
            "epe": pose_metrics.epe(keypoints, gt, visible),
        }
    if metric == "pckh":
        heads = np.array([np.nan if inst.head_size is None else inst.head_size for inst in instances])
        table = pose_metrics.pckh(keypoints, gt, visible, heads, threshold=0.5)
        return {"pckh": table["PCKh"], "pckh@0.1": table["PCKh@0.1"]}
    evaluator = coco_evaluator or pose_metrics.CocoKeypointEvaluator(dataset, keypoint_spec=model.keypoint_spec)
    boxes = np.stack([inst.bbox for inst in instances])
    _, crop_scales = model.preprocessor.cropper.centers_and_scales(boxes)  # the crops the model saw
    results = pose_metrics.make_topdown_results(
        [inst.image_id for inst in instances],
        keypoints,
        scores,
        bbox_scores=[inst.bbox_score for inst in instances],
        areas=np.prod(crop_scales, axis=1),
        category_ids=[inst.category_id for inst in instances],
        keypoint_spec=model.keypoint_spec,
    )
    stats = evaluator.evaluate(results)
    return {f"coco_{name}": value for name, value in stats.items()}


__all__ = ["auto_metric", "evaluate_pose_model", "predict_dataset"]
