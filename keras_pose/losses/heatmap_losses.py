"""Heatmap losses: weighted MSE, online hard keypoint mining, per-output losses.

Every loss is a `keras.losses.Loss` called as ``loss(y_true, y_pred,
sample_weight=None)``:

- ``y_true`` is the dict of targets the codec encodes: ``{"heatmaps": (B, h,
  w, K), "keypoint_weights": (B, K)}`` (``"keypoint_weights"`` optional);
- ``y_pred`` is the model's heatmaps ``(B, h, w, K)``, or a list / dict of
  them for models with intermediate supervision (every stage is compared
  with the same target; a dict is taken in sorted key order).

`call` returns per-sample losses ``(B,)``; the default reduction
(``"sum_over_batch_size"``) averages them, so a loss equals the mean over the
batch of the per-sample values, and Keras ``sample_weight`` weighs samples.
"""

import keras
from keras import ops


def as_output_list(outputs):
    """A model's outputs as a list: a dict in sorted key order, a single tensor as [tensor]."""
    if isinstance(outputs, dict):
        return [outputs[k] for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return list(outputs)
    return [outputs]


def target_for(y_true, index, key, num_outputs):
    """The target of output ``index``: shared, or one per output (list / dict)."""
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


def weighted_squared_error(target, weights, pred, mask_target_only=False):
    """``(B, h, w, K)`` squared errors, each keypoint's map weighted by ``weights`` ``(B, K)``.

    ``mask_target_only``: weigh the target alone (``(pred - target * w)^2``,
    pytorch-cpn's GlobalNet loss) instead of the difference (``((pred -
    target) * w)^2``, mmpose).
    """
    pred = ops.cast(pred, "float32")
    target = ops.cast(target, "float32")
    if weights is not None:
        w = ops.cast(weights, "float32")[:, None, None, :]
        if mask_target_only:
            return ops.square(pred - target * w)
        return ops.square((pred - target) * w)
    return ops.square(pred - target)


class HeatmapLoss(keras.losses.Loss):
    """Base of the heatmap losses: a per-output, per-sample term summed over outputs.

    Subclasses implement `per_sample(target, weights, pred) -> (B,)`.

    Args:
        use_target_weight: weigh keypoints by ``y_true["keypoint_weights"]``.
        loss_weight: scalar multiplier.
        **kwargs: `keras.losses.Loss` arguments (``name``, ``reduction``,
            ``dtype``).
    """

    def __init__(self, use_target_weight=True, loss_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.use_target_weight = bool(use_target_weight)
        self.loss_weight = float(loss_weight)

    def per_sample(self, target, weights, pred):
        raise NotImplementedError

    def output_weights_for(self, num_outputs):
        return [1.0] * num_outputs

    def call(self, y_true, y_pred):
        if not isinstance(y_true, dict):
            y_true = {"heatmaps": y_true}
        preds = as_output_list(y_pred)
        total = 0.0
        for i, (scale, pred) in enumerate(zip(self.output_weights_for(len(preds)), preds)):
            target = target_for(y_true, i, "heatmaps", len(preds))
            weights = target_for(y_true, i, "keypoint_weights", len(preds)) if self.use_target_weight else None
            total = total + scale * self.per_sample(target, weights, pred)
        return self.loss_weight * total

    def get_config(self):
        config = super().get_config()
        config.update({"use_target_weight": self.use_target_weight, "loss_weight": self.loss_weight})
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class KeypointMSELoss(HeatmapLoss):
    """Mean squared error between heatmaps, weighted per keypoint.

    mmpose 1.x ``KeypointMSELoss(use_target_weight=True)``: per sample the mean
    over pixels and keypoints of ``((pred - target) * w_k)^2``, times
    ``loss_weight``; the batch mean is mmpose's value. With several outputs
    (stages, stacks) the per-output losses are summed, as CPM and Stacked
    Hourglass are trained.

    Args:
        use_target_weight: multiply by the per-keypoint weights (0 for
            unlabelled keypoints).
        loss_weight: scalar multiplier.
        output_weights: optional per-output multipliers for multi-output
            models (defaults to 1 each).
        **kwargs: `keras.losses.Loss` arguments.
    """

    def __init__(self, use_target_weight=True, loss_weight=1.0, output_weights=None, **kwargs):
        super().__init__(use_target_weight=use_target_weight, loss_weight=loss_weight, **kwargs)
        self.output_weights = None if output_weights is None else [float(w) for w in output_weights]

    def per_sample(self, target, weights, pred):
        """``(B,)`` mean over pixels and keypoints of the weighted squared error."""
        return ops.mean(weighted_squared_error(target, weights, pred), axis=(1, 2, 3))

    def output_weights_for(self, num_outputs):
        weights = self.output_weights or [1.0] * num_outputs
        if len(weights) != num_outputs:
            raise ValueError(
                f"output_weights has {len(weights)} entries but the model has "
                f"{num_outputs} outputs; give one weight per output."
            )
        return weights

    def get_config(self):
        config = super().get_config()
        config["output_weights"] = self.output_weights
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class KeypointOHKMMSELoss(HeatmapLoss):
    """MSE with online hard keypoint mining (mmpose ``KeypointOHKMMSELoss``).

    Per sample, the per-keypoint loss is the mean over heatmap pixels of
    ``((pred - target) * w_k)^2``; only the ``topk`` largest per-keypoint
    losses count: ``sum(top-k) / topk`` per sample (batch mean = mmpose's
    value), times ``loss_weight``. With several outputs the per-output losses
    are summed; per-output targets (a list / dict under ``"heatmaps"``) are
    accepted.

    Args:
        use_target_weight: multiply by the per-keypoint weights.
        topk: number of hardest keypoints kept per sample (8 in CPN / MSPN);
            must not exceed K.
        loss_weight: scalar multiplier.
        **kwargs: `keras.losses.Loss` arguments.
    """

    def __init__(self, use_target_weight=True, topk=8, loss_weight=1.0, **kwargs):
        if int(topk) < 1:
            raise ValueError(f"topk must be a positive number of keypoints, got {topk!r}.")
        super().__init__(use_target_weight=use_target_weight, loss_weight=loss_weight, **kwargs)
        self.topk = int(topk)

    def per_keypoint(self, target, weights, pred):
        """``(B, K)`` per-sample, per-keypoint losses."""
        return ops.mean(weighted_squared_error(target, weights, pred), axis=(1, 2))

    def per_sample(self, target, weights, pred):
        losses = self.per_keypoint(target, weights, pred)
        num_keypoints = losses.shape[-1]
        if num_keypoints is not None and num_keypoints < self.topk:
            raise ValueError(
                f"OHKM topk={self.topk} exceeds the number of keypoints ({num_keypoints}); "
                "use a smaller topk."
            )
        hardest, _ = ops.top_k(losses, k=self.topk, sorted=False)
        return ops.mean(hardest, axis=-1)

    def get_config(self):
        config = super().get_config()
        config["topk"] = self.topk
        return config


HEATMAP_LOSSES = {"keypoint_mse": KeypointMSELoss, "keypoint_ohkm_mse": KeypointOHKMMSELoss}


def _heatmap_loss(loss):
    """A `HeatmapLoss` from an instance, its serialized config or a `HEATMAP_LOSSES` name."""
    if isinstance(loss, dict):
        loss = keras.saving.deserialize_keras_object(loss)
    elif isinstance(loss, str) and loss in HEATMAP_LOSSES:
        loss = HEATMAP_LOSSES[loss]()
    return loss


@keras.saving.register_keras_serializable(package="keras_pose")
class MultiOutputHeatmapLoss(keras.losses.Loss):
    """Gives each output of a multi-output model its own loss; sums them.

    Outputs are taken in order (a list / tuple, or a dict sorted by key).
    Targets are shared by all outputs, or given per output:
    ``y_true["heatmaps"]`` (and optionally ``y_true["keypoint_weights"]``) as
    a list / dict with one entry per output (e.g. CPN's GlobalNet levels
    trained with different sigmas).

    Example (mmpose-style CPN: L2 on each of 4 GlobalNet levels, OHKM on
    RefineNet; `keras_pose.losses.CPNLoss` is the pytorch-cpn recipe):

    ```python
    loss = MultiOutputHeatmapLoss([KeypointMSELoss()] * 4 + [KeypointOHKMMSELoss(topk=8)])
    model.compile(loss=loss)
    ```

    Args:
        losses: list of `HeatmapLoss` objects (or their configs, or the
            names "keypoint_mse" / "keypoint_ohkm_mse"), one per output, or a
            dict keyed like the output dict.
        output_weights: optional per-output multipliers (default 1 each).
        **kwargs: `keras.losses.Loss` arguments.
    """

    def __init__(self, losses, output_weights=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(losses, dict):
            self.keys = sorted(losses)
            self.losses = [_heatmap_loss(losses[k]) for k in self.keys]
        else:
            self.keys = None
            self.losses = [_heatmap_loss(loss) for loss in losses]
        if not self.losses:
            raise ValueError("MultiOutputHeatmapLoss needs at least one loss.")
        bad = [type(loss).__name__ for loss in self.losses if not isinstance(loss, HeatmapLoss)]
        if bad:
            raise ValueError(
                f"MultiOutputHeatmapLoss combines heatmap losses (KeypointMSELoss, KeypointOHKMMSELoss); got {bad}."
            )
        self.output_weights = (
            [1.0] * len(self.losses) if output_weights is None else [float(w) for w in output_weights]
        )
        if len(self.output_weights) != len(self.losses):
            raise ValueError(
                f"{len(self.output_weights)} output_weights for {len(self.losses)} losses; give one per output."
            )

    def call(self, y_true, y_pred):
        if isinstance(y_pred, dict) and self.keys is not None:
            missing = set(self.keys) - set(y_pred)
            if missing:
                raise ValueError(f"the model outputs {sorted(y_pred)} lack {sorted(missing)} named in the losses.")
            preds = [y_pred[k] for k in self.keys]
        else:
            preds = as_output_list(y_pred)
        if len(preds) != len(self.losses):
            raise ValueError(
                f"the model has {len(preds)} outputs but MultiOutputHeatmapLoss has {len(self.losses)} "
                "losses; give one loss per output."
            )
        total = 0.0
        for i, (loss, weight, pred) in enumerate(zip(self.losses, self.output_weights, preds)):
            target = target_for(y_true, i, "heatmaps", len(preds))
            weights = target_for(y_true, i, "keypoint_weights", len(preds)) if loss.use_target_weight else None
            total = total + weight * loss.loss_weight * loss.per_sample(target, weights, pred)
        return total

    def get_config(self):
        config = super().get_config()
        serialized = [keras.saving.serialize_keras_object(loss) for loss in self.losses]
        config.update(
            {
                "losses": dict(zip(self.keys, serialized)) if self.keys is not None else serialized,
                "output_weights": self.output_weights,
            }
        )
        return config
