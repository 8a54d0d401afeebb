"""The CPN training loss: L2 on every GlobalNet level + OHKM on RefineNet.

As pytorch-cpn's `train.py` trains CPN:

- GlobalNet, per level ``l``: ``mean((pred_l - target_l * w)^2) / 2`` over
  batch, pixels and keypoints, where ``w`` is the per-keypoint weight
  (pytorch-cpn masks the *target* only, so the prediction of an unlabelled
  keypoint is still pulled to zero). The levels are summed.
- RefineNet: per sample and keypoint ``l_bk = mean_hw((pred - target)^2) * w_bk``;
  online hard keypoint mining keeps the ``top_k`` largest ``l_bk`` of each
  sample (8 of 17 for COCO): ``mean_b(sum(top_k(l_b)) / top_k)``.

pytorch-cpn trains the GlobalNet levels against targets blurred with
different Gaussian kernels (15, 11, 9, 7 px at 256x192, coarsest level
first) and RefineNet against the smallest; pass them as
``y_true["heatmaps_levels"]`` (a list, coarsest level first), otherwise every
level uses ``y_true["heatmaps"]``.

`call` returns per-sample losses ``(B,)`` (see `keras_pose.losses`); the
default reduction averages them over the batch.
"""

import keras
from keras import ops

from keras_pose.losses.heatmap_losses import weighted_squared_error


def _split_outputs(y_pred):
    """(global level heatmaps, coarsest first; refine heatmaps)."""
    if isinstance(y_pred, dict):
        if "refine" not in y_pred:
            raise ValueError(
                f"CPNLoss expects a dict with 'global_0'.. and 'refine' keys, got {sorted(y_pred)}."
            )
        global_keys = sorted(
            (k for k in y_pred if k.startswith("global_") and k[len("global_"):].isdigit()),
            key=lambda k: int(k[len("global_"):]),
        )
        return [y_pred[k] for k in global_keys], y_pred["refine"]
    if isinstance(y_pred, (list, tuple)):
        if len(y_pred) < 2:
            raise ValueError("CPNLoss expects at least one GlobalNet output and the RefineNet output (last).")
        return list(y_pred[:-1]), y_pred[-1]
    raise ValueError(
        "CPNLoss needs the CPN model's raw outputs (a dict with 'global_k' and 'refine', "
        f"or a list with the refine output last), got {type(y_pred).__name__}."
    )


@keras.saving.register_keras_serializable(package="keras_pose")
class CPNLoss(keras.losses.Loss):
    """GlobalNet L2 (summed over levels) + RefineNet OHKM L2.

    Called as ``loss(y_true, y_pred)`` with ``y_true = {"heatmaps": (B, h, w,
    K), "keypoint_weights": (B, K), optional "heatmaps_levels": [L x (B, h,
    w, K)]}`` and the CPN outputs (dict ``global_0``..``global_{L-1}``,
    ``refine``, or a list with refine last).

    Args:
        top_k: keypoints kept per sample by OHKM (8 in CPN).
        global_weight: factor on each GlobalNet level's mean squared error
            (0.5: pytorch-cpn divides it by 2).
        refine_weight: factor on the RefineNet OHKM term.
        use_target_weight: apply `keypoint_weights` (targets of GlobalNet,
            per-keypoint losses of RefineNet).
        mask_global_prediction: also multiply the GlobalNet predictions by
            the weights (mmpose style); False = pytorch-cpn (target only).
        **kwargs: `keras.losses.Loss` arguments.

    Returns a float32 scalar (the batch mean of the per-sample losses).
    """

    def __init__(
        self,
        top_k=8,
        global_weight=0.5,
        refine_weight=1.0,
        use_target_weight=True,
        mask_global_prediction=False,
        **kwargs,
    ):
        if int(top_k) != top_k or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
        super().__init__(**kwargs)
        self.top_k = int(top_k)
        self.global_weight = float(global_weight)
        self.refine_weight = float(refine_weight)
        self.use_target_weight = bool(use_target_weight)
        self.mask_global_prediction = bool(mask_global_prediction)

    def global_loss(self, preds, targets, weights):
        """``(B,)``: sum over levels of ``global_weight * mean_hwk((pred - target * w)^2)``."""
        total = 0.0
        for pred, target in zip(preds, targets):
            error = weighted_squared_error(target, weights, pred, mask_target_only=not self.mask_global_prediction)
            total = total + self.global_weight * ops.mean(error, axis=(1, 2, 3))
        return total

    def ohkm_loss(self, pred, target, weights):
        """``(B,)``: ``refine_weight * sum(top_k_k(l_bk)) / top_k``, ``l_bk = mean_hw((pred - target)^2) * w_bk``."""
        per_keypoint = ops.mean(weighted_squared_error(target, None, pred), axis=(1, 2))  # (B, K)
        if weights is not None:
            per_keypoint = per_keypoint * ops.cast(weights, "float32")
        num_keypoints = per_keypoint.shape[-1]
        k = self.top_k if num_keypoints is None else min(self.top_k, int(num_keypoints))
        top, _ = ops.top_k(per_keypoint, k, sorted=False)
        return self.refine_weight * ops.sum(top, axis=-1) / k

    def call(self, y_true, y_pred):
        if not isinstance(y_true, dict):
            y_true = {"heatmaps": y_true}
        global_preds, refine_pred = _split_outputs(y_pred)
        target = y_true["heatmaps"]
        levels = y_true.get("heatmaps_levels")
        if levels is None:
            levels = [target] * len(global_preds)
        else:
            levels = list(levels)
            if len(levels) != len(global_preds):
                raise ValueError(
                    f"y_true['heatmaps_levels'] has {len(levels)} targets but the model has "
                    f"{len(global_preds)} GlobalNet levels; give one per level, coarsest first."
                )
        weights = y_true.get("keypoint_weights") if self.use_target_weight else None
        return self.global_loss(global_preds, levels, weights) + self.ohkm_loss(refine_pred, target, weights)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "top_k": self.top_k,
                "global_weight": self.global_weight,
                "refine_weight": self.refine_weight,
                "use_target_weight": self.use_target_weight,
                "mask_global_prediction": self.mask_global_prediction,
            }
        )
        return config
