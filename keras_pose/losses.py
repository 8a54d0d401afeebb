"""Heatmap losses.

Targets are a dict `{"heatmaps": (B, h, w, K), "keypoint_weights": (B, K)}`
as produced by the top-down data pipeline; predictions are heatmaps
(B, h, w, K), or a list/dict of them for models with intermediate
supervision (every stage is compared with the same target).
"""

import keras
from keras import ops


def _as_list(outputs):
    if isinstance(outputs, dict):
        return [outputs[k] for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return list(outputs)
    return [outputs]


@keras.saving.register_keras_serializable(package="keras_pose")
class KeypointMSELoss:
    """Mean squared error between heatmaps, weighted per keypoint.

    mmpose 1.x `KeypointMSELoss(use_target_weight=True)`: the mean over
    batch, pixels and keypoints of `((pred - target) * w_k)^2`, times
    `loss_weight`. With several outputs (stages, stacks) the per-output losses
    are summed, as CPM and Stacked Hourglass are trained.

    Args:
        use_target_weight: multiply by the per-keypoint weights (0 for
            unlabelled keypoints).
        loss_weight: scalar multiplier.
        output_weights: optional per-output multipliers for multi-output
            models (defaults to 1 each).
    """

    def __init__(self, use_target_weight=True, loss_weight=1.0, output_weights=None):
        self.use_target_weight = use_target_weight
        self.loss_weight = float(loss_weight)
        self.output_weights = None if output_weights is None else [float(w) for w in output_weights]

    def single(self, target, weights, pred):
        pred = ops.cast(pred, "float32")
        target = ops.cast(target, "float32")
        diff = pred - target
        if self.use_target_weight and weights is not None:
            w = ops.cast(weights, "float32")[:, None, None, :]
            diff = diff * w
        return ops.mean(ops.square(diff))

    def __call__(self, y_true, y_pred):
        target = y_true["heatmaps"]
        weights = y_true.get("keypoint_weights")
        preds = _as_list(y_pred)
        out_w = self.output_weights or [1.0] * len(preds)
        if len(out_w) != len(preds):
            raise ValueError(
                f"output_weights has {len(out_w)} entries but the model has "
                f"{len(preds)} outputs; give one weight per output."
            )
        total = 0.0
        for w, pred in zip(out_w, preds):
            total = total + w * self.single(target, weights, pred)
        return self.loss_weight * total

    def get_config(self):
        return {
            "use_target_weight": self.use_target_weight,
            "loss_weight": self.loss_weight,
            "output_weights": self.output_weights,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def get_loss(loss):
    """A loss object from an instance, a config dict or None (default MSE)."""
    if loss is None:
        return KeypointMSELoss()
    if isinstance(loss, dict):
        return keras.saving.deserialize_keras_object(loss)
    return loss
