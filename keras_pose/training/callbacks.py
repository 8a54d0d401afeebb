"""Keras callbacks for pose training: periodic COCO AP / PCK(h) evaluation.

```python
from keras_pose.training import PoseEvaluationCallback

val = load_coco_keypoints("person_keypoints_val2017.json", "val2017/", "coco", mode="eval")
model.fit(train_ds, epochs=210, callbacks=[PoseEvaluationCallback(val, every_n_epochs=10)])
# history.history["val_coco_AP"], ...
```

The evaluation runs the model as a user would: ``model.predict_keypoints``
on whole images and the dataset's boxes (ground-truth or detected, with
their scores), the preset's crop, codec and flip-test settings, keypoints
mapped back to image pixels.

`TerminateOnNonFiniteLoss` stops a diverging ``fit`` at the first NaN / Inf
loss and puts back the last finite weights (Keras' ``TerminateOnNaN`` stops
but keeps the NaN weights)::

    guard = TerminateOnNonFiniteLoss()
    model.fit(train_ds, epochs=210, callbacks=[guard, PoseEvaluationCallback(val)])
    guard.diverged  # None, or {"epoch": 3, "step": 17, "loss": nan, "restored": "end of epoch 2", ...}
"""

import math
import os

import numpy as np

import keras

from keras_pose.errors import KerasPoseError


class NonFiniteModelError(KerasPoseError, FloatingPointError):
    """A model's weights or outputs hold NaN or Inf; the message says where."""


class TrainingDivergedError(NonFiniteModelError):
    """Training stopped at a non-finite loss; the message gives the epoch, the step and what to try."""


def non_finite_weights(model):
    """Names of the model's weights that hold NaN or Inf (empty: all finite)."""
    return [getattr(variable, "path", None) or variable.name for variable in model.weights
            if not _all_finite([keras.ops.convert_to_numpy(variable)])]


def _all_finite(arrays):
    """Whether every floating-point array (float16/32/64, bfloat16) is finite."""
    for array in arrays:
        array = np.asarray(array)
        if (array.dtype.kind in "fc" or "float" in array.dtype.name) and not np.isfinite(
            array.astype(np.float32) if array.dtype.kind not in "fc" else array
        ).all():
            return False
    return True


def _finite_number(value):
    """``float(value)`` or None when it is not a finite number."""
    try:
        value = float(np.asarray(keras.ops.convert_to_numpy(value)))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class TerminateOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop training at the first NaN / Inf loss and restore the last finite weights.

    Checks ``logs[monitor]`` after every batch (Keras logs the epoch's running
    mean, so one non-finite batch is caught at once) and the weights at the
    end of every epoch. On a non-finite value it puts back the weights of the
    end of the last epoch that ended with a finite loss and finite weights
    (or the weights training started with), sets ``model.stop_training``
    and records :attr:`diverged`. Put it first in the callback list, so that
    the callbacks after it (evaluation, checkpoints) see the restored
    weights.

    Args:
        monitor: the log key to check ("loss").
        snapshot_path: None keeps the last finite weights in memory (one
            host copy of the weights); a ``.weights.h5`` path saves them
            there atomically at the end of every finite epoch instead (the
            last finite checkpoint; ``<name>.json`` beside it records the
            epoch).
        raise_error: False stops like ``keras.callbacks.TerminateOnNaN``
            (``fit`` returns; other callbacks' ``on_epoch_end`` still run, on
            the restored weights); True raises `TrainingDivergedError` from
            ``fit`` after restoring (nothing else runs).
        verbose: 1 prints a line when training is stopped.

    The optimizer's state (e.g. Adam moments) is not restored: compile the
    model again before training it further.

    Attributes:
        diverged: None, or ``{"epoch": 1-based epoch, "step": 1-based step in
            the epoch (None: found at the epoch's end), "loss": the value,
            "reason": "loss" | "weights" (finite loss, but the last update
            made the weights NaN / Inf), "restored": "end of epoch N" |
            "initial weights"}``.
        last_finite_epoch: the 1-based epoch of the kept weights (0: the
            initial weights).
    """

    def __init__(self, monitor="loss", snapshot_path=None, raise_error=False, verbose=1):
        super().__init__()
        if snapshot_path is not None and not str(snapshot_path).endswith(".weights.h5"):
            raise ValueError(f"snapshot_path must end with .weights.h5, got {snapshot_path!r}.")
        self.monitor = monitor
        self.snapshot_path = None if snapshot_path is None else os.fspath(snapshot_path)
        self.raise_error = raise_error
        self.verbose = verbose
        self.diverged = None
        self.last_finite_epoch = 0
        self._weights = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.diverged = None
        self.last_finite_epoch = 0
        # The starting point, in memory until a finite epoch replaces it.
        self._weights = self.model.get_weights()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged is not None:
            return
        value = (logs or {}).get(self.monitor)
        if value is not None and _finite_number(value) is None:
            self._diverge(epoch, None, value, "loss")
            return
        weights = self.model.get_weights()
        if not _all_finite(weights):
            # The epoch's last update made the weights NaN / Inf (its loss,
            # computed before the update, was still finite).
            self._diverge(epoch, None, value, "weights")
            return
        self.last_finite_epoch = epoch + 1
        if self.snapshot_path is None:
            self._weights = weights
            return
        from keras_pose.training.train_config import save_weights_atomic

        save_weights_atomic(self.model, self.snapshot_path, info={"epoch": epoch + 1})
        self._weights = None  # the file holds them now

    def on_train_batch_end(self, batch, logs=None):
        if self.diverged is not None:
            return
        value = (logs or {}).get(self.monitor)
        if value is not None and _finite_number(value) is None:
            self._diverge(self._epoch, int(batch) + 1, value, "loss")

    def _restore(self):
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX: bring the training state back into the variables first
            sync()
        if self._weights is not None:
            self.model.set_weights(self._weights)
        else:
            self.model.load_weights(self.snapshot_path)

    def _diverge(self, epoch, step, value, reason):
        self._restore()
        restored = f"end of epoch {self.last_finite_epoch}" if self.last_finite_epoch else "initial weights"
        loss = None if value is None else float(np.asarray(keras.ops.convert_to_numpy(value)))
        self.diverged = {"epoch": epoch + 1, "step": step, "loss": loss, "reason": reason, "restored": restored}
        self.model.stop_training = True
        message = (
            f"Training diverged: {self.describe()}; stopped and restored the last finite weights ({restored}). "
            "Try a lower learning rate, gradient clipping (optimizer clipnorm) or a learning-rate warm-up."
        )
        if self.raise_error:
            raise TrainingDivergedError(message)
        if self.verbose:
            print(message)

    def describe(self):
        """Where training diverged, as text ("loss became nan at epoch 3, step 17")."""
        d = self.diverged
        if d is None:
            return "training did not diverge"
        where = f"epoch {d['epoch']}, step {d['step']}" if d["step"] else f"the end of epoch {d['epoch']}"
        if d["reason"] == "weights":
            return f"the weights became NaN or Inf at {where} (the loss was still {d['loss']})"
        return f"{self.monitor} became {d['loss']} at {where}"


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
        flip_test: override the model's ``decoding["flip_test"]``.
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


def _auto_metric(dataset):
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
    """Evaluate a top-down model on a dataset.

    Args:
        model: a ``TopDownPoseEstimator``.
        dataset: ``PoseDataset``; boxes and box scores come from it.
        metric: "coco" (AP/AR via ``keras_pose.metrics.CocoKeypointEvaluator``
            against ``dataset.annotation_file``, mmpose rescoring + OKS-NMS),
            "pck" (PCK at ``pck_threshold`` of ``max(box w, h)``, visible
            keypoints), "pckh" (MPII PCKh@0.5, needs ``head_size``) or
            "auto" (pckh for MPII, coco for COCO-format files, else pck).
        batch_size, flip_test, verbose: see :func:`predict_dataset`.
        pck_threshold: PCK threshold (fraction of the box size).
        coco_evaluator: a prepared ``CocoKeypointEvaluator`` to reuse.

    Returns:
        dict of floats: ``coco_AP``, ``coco_AP50``, ... for "coco"; ``pck``
        (and ``epe`` in pixels) for "pck"; ``pckh``, ``pckh@0.1`` for "pckh".
    """
    from keras_pose import metrics as pose_metrics

    if metric == "auto":
        metric = _auto_metric(dataset)
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
    from keras_pose.geometry import box_xywh_to_center_scale

    evaluator = coco_evaluator or pose_metrics.CocoKeypointEvaluator(dataset, keypoint_spec=model.keypoint_spec)
    boxes = np.stack([inst.bbox for inst in instances])
    _, crop_scales = box_xywh_to_center_scale(
        boxes, model.image_size, padding=float(model.decoding.get("padding", 1.25))
    )
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


class PoseEvaluationCallback(keras.callbacks.Callback):
    """Evaluate COCO AP / PCK / PCKh every ``every_n_epochs`` epochs.

    The values are printed and added to the epoch ``logs`` (so ``History``,
    ``ModelCheckpoint(monitor="val_coco_AP", mode="max")`` and
    ``EarlyStopping`` see them; put this callback before those).

    Args:
        dataset: evaluation ``PoseDataset`` (``mode="eval"`` for COCO;
            ground-truth boxes, or detections via
            ``keras_pose.datasets.dataset_from_detections``).
        metric: "auto", "coco", "pck" or "pckh" (see
            :func:`evaluate_pose_model`).
        every_n_epochs: evaluation period; the last epoch of ``fit`` is
            always evaluated when ``evaluate_last=True``.
        batch_size: crops per forward pass.
        flip_test: override the model's flip-test setting.
        pck_threshold: PCK threshold.
        prefix: prefix of the log keys (``"val_coco_AP"``, ``"val_pck"``).
        verbose: 1 prints a progress bar and the results.
        evaluate_last: also evaluate after the final epoch.
    """

    def __init__(
        self,
        dataset,
        metric="auto",
        every_n_epochs=1,
        batch_size=32,
        flip_test=None,
        pck_threshold=0.05,
        prefix="val_",
        verbose=1,
        evaluate_last=True,
    ):
        super().__init__()
        if int(every_n_epochs) < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs!r}.")
        self.dataset = dataset
        self.metric = _auto_metric(dataset) if metric == "auto" else metric
        if self.metric not in ("coco", "pck", "pckh"):
            raise ValueError(f"metric must be 'auto', 'coco', 'pck' or 'pckh', got {metric!r}.")
        self.every_n_epochs = int(every_n_epochs)
        self.batch_size = int(batch_size)
        self.flip_test = flip_test
        self.pck_threshold = float(pck_threshold)
        self.prefix = prefix
        self.verbose = verbose
        self.evaluate_last = evaluate_last
        self._evaluator = None
        self.history = []

    def on_train_begin(self, logs=None):
        self._epochs = (self.params or {}).get("epochs")

    def _due(self, epoch):
        if (epoch + 1) % self.every_n_epochs == 0:
            return True
        return bool(self.evaluate_last and self._epochs is not None and epoch + 1 == self._epochs)

    def evaluate(self):
        """Run the evaluation now; returns the metric dict (unprefixed)."""
        if self.metric == "coco" and self._evaluator is None:
            from keras_pose.metrics import CocoKeypointEvaluator

            self._evaluator = CocoKeypointEvaluator(self.dataset, keypoint_spec=self.model.keypoint_spec)
        return evaluate_pose_model(
            self.model,
            self.dataset,
            metric=self.metric,
            batch_size=self.batch_size,
            flip_test=self.flip_test,
            pck_threshold=self.pck_threshold,
            verbose=self.verbose,
            coco_evaluator=self._evaluator,
        )

    def on_epoch_end(self, epoch, logs=None):
        if not self._due(epoch):
            return
        values = self.evaluate()
        self.history.append((epoch, values))
        if logs is not None:
            for name, value in values.items():
                logs[self.prefix + name] = value
        if self.verbose:
            text = " - ".join(f"{self.prefix}{k}: {v:.4f}" for k, v in values.items())
            print(f"Epoch {epoch + 1} pose evaluation: {text}")


# The name for the COCO flavour; same class.
CocoEvaluationCallback = PoseEvaluationCallback
