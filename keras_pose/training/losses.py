"""Extra heatmap losses: online hard keypoint mining and per-output losses.

Same calling convention as ``keras_pose.losses.KeypointMSELoss``:
``loss(y_true, y_pred)`` with ``y_true = {"heatmaps": (B, h, w, K),
"keypoint_weights": (B, K)}`` and ``y_pred`` heatmaps ``(B, h, w, K)`` or a
list / dict of them (multi-stage models). Pass an instance as
``model.compile(loss=...)`` of a ``TopDownPoseEstimator``.
"""

import keras
from keras import ops

from keras_pose.losses import _as_list


def _target_for(y_true, index, key, num_outputs):
    """The target of output ``index``: shared, or per output (list / dict)."""
    value = y_true.get(key)
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value)]
    if isinstance(value, (list, tuple)):
        if len(value) != num_outputs:
            raise ValueError(
                f"y_true[{key!r}] has {len(value)} per-output targets but the model has "
                f"{num_outputs} outputs; give one per output or a single shared target."
            )
        return value[index]
    return value


@keras.saving.register_keras_serializable(package="keras_pose")
class KeypointOHKMMSELoss:
    """MSE with online hard keypoint mining (mmpose ``KeypointOHKMMSELoss``).

    Per sample, the per-keypoint loss is the mean over heatmap pixels of
    ``((pred - target) * w_k)^2``; only the ``topk`` largest per-keypoint
    losses of each sample count: ``loss = mean_b(sum(top-k) / topk)``, times
    ``loss_weight``. With several outputs the per-output losses are summed.

    Args:
        use_target_weight: multiply by the per-keypoint weights.
        topk: number of hardest keypoints kept per sample (8 in CPN / MSPN);
            must not exceed K.
        loss_weight: scalar multiplier.
    """

    def __init__(self, use_target_weight=True, topk=8, loss_weight=1.0):
        if int(topk) < 1:
            raise ValueError(f"topk must be a positive number of keypoints, got {topk!r}.")
        self.use_target_weight = bool(use_target_weight)
        self.topk = int(topk)
        self.loss_weight = float(loss_weight)

    def per_keypoint(self, target, weights, pred):
        """``(B, K)`` per-sample, per-keypoint losses."""
        pred = ops.cast(pred, "float32")
        target = ops.cast(target, "float32")
        diff = pred - target
        if self.use_target_weight and weights is not None:
            diff = diff * ops.cast(weights, "float32")[:, None, None, :]
        return ops.mean(ops.square(diff), axis=(1, 2))

    def single(self, target, weights, pred):
        losses = self.per_keypoint(target, weights, pred)
        num_keypoints = losses.shape[-1]
        if num_keypoints is not None and num_keypoints < self.topk:
            raise ValueError(
                f"OHKM topk={self.topk} exceeds the number of keypoints ({num_keypoints}); "
                "use a smaller topk."
            )
        hardest, _ = ops.top_k(losses, k=self.topk, sorted=False)
        return ops.mean(hardest)

    def __call__(self, y_true, y_pred):
        preds = _as_list(y_pred)
        total = 0.0
        for i, pred in enumerate(preds):
            target = _target_for(y_true, i, "heatmaps", len(preds))
            weights = _target_for(y_true, i, "keypoint_weights", len(preds))
            total = total + self.single(target, weights, pred)
        return self.loss_weight * total

    def get_config(self):
        return {"use_target_weight": self.use_target_weight, "topk": self.topk, "loss_weight": self.loss_weight}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_pose")
class MultiOutputHeatmapLoss:
    """Gives each output of a multi-output model its own loss; sums them.

    Outputs are taken in order (a list / tuple, or a dict sorted by key, as
    ``keras_pose.losses`` does). Targets are shared by all outputs, or given
    per output: ``y_true["heatmaps"]`` (and optionally
    ``y_true["keypoint_weights"]``) as a list / dict with one entry per
    output (e.g. CPN's GlobalNet levels trained with different sigmas).

    Example (mmpose-style CPN: L2 on each of 4 GlobalNet levels, OHKM on
    RefineNet; ``keras_pose.models.cpn.CPNLoss`` is the pytorch-cpn recipe):

    ```python
    loss = MultiOutputHeatmapLoss([KeypointMSELoss()] * 4 + [KeypointOHKMMSELoss(topk=8)])
    model.compile(loss=loss)
    ```

    Args:
        losses: list of loss objects (one per output, any object with a
            ``single(target, weights, pred)`` method or called as
            ``loss(y_true, pred)``), or a dict keyed like the output dict.
        output_weights: optional per-output multipliers (default 1 each).
    """

    def __init__(self, losses, output_weights=None):
        from keras_pose.losses import get_loss

        if isinstance(losses, dict):
            self.keys = sorted(losses)
            self.losses = [get_loss(losses[k]) for k in self.keys]
        else:
            self.keys = None
            self.losses = [get_loss(loss) for loss in losses]
        if not self.losses:
            raise ValueError("MultiOutputHeatmapLoss needs at least one loss.")
        self.output_weights = (
            [1.0] * len(self.losses) if output_weights is None else [float(w) for w in output_weights]
        )
        if len(self.output_weights) != len(self.losses):
            raise ValueError(
                f"{len(self.output_weights)} output_weights for {len(self.losses)} losses; give one per output."
            )

    def __call__(self, y_true, y_pred):
        if isinstance(y_pred, dict) and self.keys is not None:
            missing = set(self.keys) - set(y_pred)
            if missing:
                raise ValueError(f"the model outputs {sorted(y_pred)} lack {sorted(missing)} named in the losses.")
            preds = [y_pred[k] for k in self.keys]
        else:
            preds = _as_list(y_pred)
        if len(preds) != len(self.losses):
            raise ValueError(
                f"the model has {len(preds)} outputs but MultiOutputHeatmapLoss has {len(self.losses)} "
                "losses; give one loss per output."
            )
        total = 0.0
        for i, (loss, weight, pred) in enumerate(zip(self.losses, self.output_weights, preds)):
            target = _target_for(y_true, i, "heatmaps", len(preds))
            weights = _target_for(y_true, i, "keypoint_weights", len(preds))
            if hasattr(loss, "single"):
                value = getattr(loss, "loss_weight", 1.0) * loss.single(target, weights, pred)
            else:
                value = loss({"heatmaps": target, "keypoint_weights": weights}, pred)
            total = total + weight * value
        return total

    def get_config(self):
        serialized = [keras.saving.serialize_keras_object(loss) for loss in self.losses]
        return {
            "losses": dict(zip(self.keys, serialized)) if self.keys is not None else serialized,
            "output_weights": self.output_weights,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
