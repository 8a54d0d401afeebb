"""Keras callbacks of pose training.

- `TerminateOnNonFiniteLoss`: stops a diverging ``fit`` at the first NaN /
  Inf loss and puts back the last finite weights (Keras' ``TerminateOnNaN``
  stops but keeps the NaN weights).
- `PoseEvaluationCallback`: COCO AP / PCK / PCKh every N epochs, added to
  the epoch logs (``val_coco_AP``, ...).
- `HistoryWriter`: ``history.csv`` / ``history.json`` rewritten atomically
  every epoch.
- `BestWeightsCheckpoint`: the best weights by a monitored value.
- `LearningRateLogger`: the learning rate of each epoch in the logs.
- `ThroughputLogger`: images/s and the whole run's ETA, one line per epoch.

```python
from keras_pose.training import PoseEvaluationCallback, TerminateOnNonFiniteLoss

val = load_coco_keypoints("person_keypoints_val2017.json", "val2017/", "coco", mode="eval")
guard = TerminateOnNonFiniteLoss()
model.fit(train_ds, epochs=210, callbacks=[guard, PoseEvaluationCallback(val, every_n_epochs=10)])
# history.history["val_coco_AP"], ...
guard.diverged  # None, or {"epoch": 3, "step": 17, "loss": nan, "restored": "end of epoch 2", ...}
```
"""

import csv
import io
import json
import math
import os

import numpy as np

import keras

from keras_pose.errors import TrainingDivergedError
from keras_pose.training.checkpoints import all_finite, json_safe, non_finite_weights, save_weights_atomic
from keras_pose.training.evaluation import auto_metric, evaluate_pose_model
from keras_pose.utils.file_utils import atomic_write


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
        start_epoch: the epoch the weights ``fit`` starts from belong to (a
            resumed run's; 0 by default).
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
        self.start_epoch = 0
        self._weights = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.diverged = None
        self.last_finite_epoch = self.start_epoch
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
        if not all_finite(weights):
            # The epoch's last update made the weights NaN / Inf (its loss,
            # computed before the update, was still finite).
            self._diverge(epoch, None, value, "weights")
            return
        self.last_finite_epoch = epoch + 1
        if self.snapshot_path is None:
            self._weights = weights
            return
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
        model: the pose model to evaluate (default: the model ``fit``
            trains); e.g. one dataset's `ViTPosePP` view of a
            `ViTPosePPMultiDataset` being trained (it shares the weights).
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
        model=None,
    ):
        super().__init__()
        self.evaluated_model = model
        if int(every_n_epochs) < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs!r}.")
        self.dataset = dataset
        self.metric = auto_metric(dataset) if metric == "auto" else metric
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
        model = self.evaluated_model if self.evaluated_model is not None else self.model
        if self.metric == "coco" and self._evaluator is None:
            from keras_pose.metrics import CocoKeypointEvaluator

            self._evaluator = CocoKeypointEvaluator(self.dataset, keypoint_spec=model.keypoint_spec)
        return evaluate_pose_model(
            model,
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


class LearningRateLogger(keras.callbacks.Callback):
    """Adds ``learning_rate`` (the rate of the epoch's last step) to the logs."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        step = max(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) - 1, 0)
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.schedule(step)))


class HistoryWriter(keras.callbacks.Callback):
    """Rewrites ``history.csv`` / ``history.json`` atomically every epoch.

    Unlike ``keras.callbacks.CSVLogger``, metrics that appear only on some
    epochs (periodic evaluation) get their own column, empty elsewhere.
    """

    def __init__(self, csv_path, json_path=None):
        super().__init__()
        self.csv_path = csv_path
        self.json_path = json_path
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        for key, value in (logs or {}).items():
            try:
                row[key] = float(keras.ops.convert_to_numpy(value))
            except (TypeError, ValueError):
                continue
        self.rows.append(row)
        self.write()

    def history(self):
        """``{key: [value or None per epoch]}``."""
        keys = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        return {k: [row.get(k) for row in self.rows] for k in keys}

    def write(self):
        history = self.history()
        keys = list(history)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(keys)
        for row in self.rows:
            writer.writerow(["" if row.get(k) is None else repr(row[k]) if isinstance(row[k], float) else row[k]
                             for k in keys])
        with atomic_write(self.csv_path, "w") as f:
            f.write(buffer.getvalue())
        if self.json_path:
            with atomic_write(self.json_path, "w") as f:
                json.dump(json_safe(history), f, indent=1, allow_nan=False)
                f.write("\n")


class BestWeightsCheckpoint(keras.callbacks.Callback):
    """Saves the weights atomically when ``monitor`` improves.

    Epochs whose logs lack ``monitor`` (not evaluated) are skipped silently,
    as are non-finite values and weights that hold NaN / Inf; a tie goes to
    the later epoch (with AP still 0 early in a run, the more trained
    weights). ``best.json`` beside ``best.weights.h5`` records the monitor,
    its value and the epoch.
    """

    def __init__(self, path, monitor, mode="max", verbose=1):
        super().__init__()
        if not path.endswith(".weights.h5"):
            raise ValueError(f"path must end with .weights.h5, got {path!r}.")
        self.path = path
        self.monitor = monitor
        self.mode = mode
        self.verbose = verbose
        self.best = None
        self.best_epoch = None

    def _better(self, value):
        if self.best is None:
            return True
        return value >= self.best if self.mode == "max" else value <= self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(keras.ops.convert_to_numpy(value))
        if not math.isfinite(value) or not self._better(value):
            return
        if non_finite_weights(self.model):
            return  # never replace a good checkpoint with NaN weights
        self.best, self.best_epoch = value, epoch + 1
        save_weights_atomic(self.model, self.path, info={"monitor": self.monitor, "mode": self.mode,
                                                          "value": value, "epoch": epoch + 1})
        if self.verbose:
            print(f"Epoch {epoch + 1}: {self.monitor} {value:.4f} is the best so far; saved {self.path}")


class ThroughputLogger(keras.callbacks.Callback):
    """Throughput (images/s) and the whole run's ETA, printed at the end of each epoch.

    ``"Epoch 3/10: 152.4 images/s (0.0787 s/step, 12 crops per step); epoch 41.2 s; run ETA 0:04:48
    (7 epochs)"``: images/s counts the training steps only (first step of a
    ``fit`` to the last step of the epoch, so the first epoch's figure
    includes compilation); the ETA is the remaining epochs times the last
    epoch's wall time (evaluation included when this callback comes after
    the evaluation callback).

    Args:
        batch_size: crops per step.
        epochs: the run's total number of epochs (the ETA's end).
        print_fn: where the line goes [print].

    Attributes:
        records: ``[{"epoch", "images_per_second", "epoch_seconds", "eta_seconds"}]`` per epoch.
    """

    def __init__(self, batch_size, epochs, print_fn=print):
        super().__init__()
        self.batch_size = int(batch_size)
        self.epochs = int(epochs)
        self.print_fn = print_fn
        self.records = []
        self._start = self._last_batch = None
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self._start = time.perf_counter()
        self._last_batch = None
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        import time

        self._last_batch = time.perf_counter()
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        import datetime
        import time

        if self._start is None or not self._steps:
            return
        now = time.perf_counter()
        train_seconds = max(self._last_batch - self._start, 1e-9)
        rate = self._steps * self.batch_size / train_seconds
        epoch_seconds = now - self._start
        remaining = max(0, self.epochs - (epoch + 1))
        eta = remaining * epoch_seconds
        self.records.append({"epoch": epoch + 1, "images_per_second": rate, "epoch_seconds": epoch_seconds,
                             "eta_seconds": eta})
        eta_text = str(datetime.timedelta(seconds=round(eta)))
        self.print_fn(f"Epoch {epoch + 1}/{self.epochs}: {rate:.1f} images/s ({train_seconds / self._steps:.3g} "
                      f"s/step, {self.batch_size} crops per step); epoch {epoch_seconds:.1f} s; run ETA {eta_text} "
                      f"({remaining} epochs)")



__all__ = [
    "BestWeightsCheckpoint",
    "CocoEvaluationCallback",
    "HistoryWriter",
    "LearningRateLogger",
    "PoseEvaluationCallback",
    "TerminateOnNonFiniteLoss",
    "ThroughputLogger",
]
