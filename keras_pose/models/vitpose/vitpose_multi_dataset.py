"""ViTPose++ trained on several datasets at once (per-sample expert and head routing).

`ViTPosePPMultiDataset` wraps a `ViTPosePP` and shares all its layers and
variables. It takes a batch whose samples come from different datasets:

    inputs  {"images": (B, H, W, 3) normalised float,
             "dataset_index": (B,) int, the index into `datasets`}
    output  heatmaps (B, H/4, W/4, K_max) float32, K_max = max(num_keypoints).

Sample b of dataset d goes through expert d of every block's partially shared
FFN (the shared fc2 part is computed for every sample; the expert part uses
the sample's own expert kernel and bias, gathered per sample) and through
head d; channels [0, K_d) of its output row are head d's heatmaps, channels
[K_d, K_max) are zero. Every head runs on the whole batch and its output is
multiplied by the one-hot mask of its samples, so an expert or head gets an
exactly zero gradient from a batch without its samples.

Targets (`multi_dataset_targets`): {"heatmaps": (B, h, w, K_max),
"keypoint_weights": (B, K_max), "dataset_index": (B,)}, each dataset's
targets zero-padded to K_max. `MultiDatasetKeypointMSELoss` gives each sample
the mean over its own dataset's K_d keypoints and pixels of
((pred - target) * w)^2 (mmpose's KeypointMSELoss of that dataset's head), so
each head's loss covers only its own samples.

BatchNormalization in the classic heads: in training mode each head's batch
statistics are computed over its own samples only (a masked mean and
variance over samples, rows and columns), and its moving statistics are
updated only when the batch holds some of its samples, so a head's output
for its samples does not depend on the other datasets' samples, and no
gradient flows from one dataset's loss into another dataset's expert.
Inference mode uses the moving statistics, as the single-dataset model.
"""

import keras
import numpy as np
from keras import ops

from keras_pose.layers.backend_kernels import exact_gelu
from keras_pose.losses.heatmap_losses import weighted_squared_error
from keras_pose.utils.compile_config import compile_from_loss_config, loss_compile_config


def masked_batch_norm(norm, x, mask, training=None):
    """`keras.layers.BatchNormalization` over the samples where `mask` is 1 only.

    Args:
        norm: a built `BatchNormalization` (last-axis features).
        x: (B, h, w, C) features.
        mask: (B,) float, 1 for the samples this layer normalises.
        training: batch statistics (masked) and a moving-statistics update
            when the mask is not all zero; otherwise the moving statistics.

    Returns:
        (B, h, w, C); rows of masked-out samples are normalised with the
        masked statistics too (the caller discards them).
    """
    if not training:
        return norm(x, training=False)
    dtype = x.dtype
    x = ops.cast(x, "float32")
    w = ops.cast(mask, "float32")[:, None, None, None]
    count = ops.sum(w) * ops.cast(ops.shape(x)[1] * ops.shape(x)[2], "float32")
    safe = ops.maximum(count, 1.0)
    mean = ops.sum(x * w, axis=(0, 1, 2)) / safe
    var = ops.sum(w * ops.square(x - mean), axis=(0, 1, 2)) / safe
    y = (x - mean) * ops.rsqrt(var + norm.epsilon)
    y = y * ops.cast(norm.gamma, "float32") + ops.cast(norm.beta, "float32")
    present = count > 0
    m = float(norm.momentum)
    for stat, value in ((norm.moving_mean, mean), (norm.moving_variance, var)):
        old = ops.cast(stat, "float32")
        value = ops.stop_gradient(value)
        stat.assign(ops.cast(ops.where(present, old * m + value * (1.0 - m), old), stat.dtype))
    return ops.cast(y, dtype)


def run_head(head, features, mask, training=None):
    """A dataset head on the whole batch, its batch norms (classic head) restricted to `mask`'s samples."""
    from keras_pose.layers.transposed_conv import apply_transposed_conv
    from keras_pose.models.vitpose.vitpose_layers import ViTPoseClassicHead

    if not training or not isinstance(head, ViTPoseClassicHead):
        return head(features, training=training)
    x = features
    for deconv, norm in zip(head.deconvs, head.norms):
        x = ops.relu(masked_batch_norm(norm, apply_transposed_conv(deconv, x), mask, training=True))
    return head.final_conv(x)


def routed_mlp(mlp, x, dataset_index):
    """A `ViTPoseMLP` with experts, each sample through its own expert.

    Args:
        mlp: a `ViTPoseMLP` with `num_experts > 0`.
        x: (B, N, C) tokens.
        dataset_index: (B,) int expert index per sample.

    Returns:
        (B, N, C): concat([fc2(h), h @ experts_kernel[d_b] + experts_bias[d_b]]).
    """
    h = exact_gelu(mlp.fc1(x))
    shared = mlp.fc2(h)
    kernel = ops.cast(ops.take(mlp.experts_kernel, dataset_index, axis=0), h.dtype)  # (B, mlp_dim, P)
    bias = ops.cast(ops.take(mlp.experts_bias, dataset_index, axis=0), h.dtype)  # (B, P)
    expert = ops.matmul(h, kernel) + bias[:, None, :]
    return ops.concatenate([shared, expert], axis=-1)


@keras.saving.register_keras_serializable(package="keras_pose")
class MultiDatasetKeypointMSELoss(keras.losses.Loss):
    """Keypoint MSE over padded multi-dataset heatmaps, per sample over its own keypoints.

    `y_true`: {"heatmaps": (B, h, w, K_max), "keypoint_weights": (B, K_max)
    (optional), "dataset_index": (B,) int}; `y_pred`: (B, h, w, K_max).
    Per sample b of dataset d: sum over pixels and channels of
    ((pred - target) * w)^2 divided by h * w * K_d, times `loss_weight`
    (equal to `KeypointMSELoss` on head d's unpadded output).

    Args:
        num_keypoints: keypoints per dataset, in dataset-index order.
        use_target_weight: weigh keypoints by `keypoint_weights`.
        loss_weight: scalar multiplier.
    """

    def __init__(self, num_keypoints, use_target_weight=True, loss_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.num_keypoints = [int(k) for k in num_keypoints]
        self.use_target_weight = bool(use_target_weight)
        self.loss_weight = float(loss_weight)

    def per_sample(self, y_true, y_pred):
        """(B,) loss of each sample over its own dataset's keypoints."""
        if not isinstance(y_true, dict) or "dataset_index" not in y_true:
            raise ValueError(
                "MultiDatasetKeypointMSELoss needs y_true as a dict with 'heatmaps' and 'dataset_index' "
                "(and optionally 'keypoint_weights'); build targets with multi_dataset_targets."
            )
        weights = y_true.get("keypoint_weights") if self.use_target_weight else None
        err = weighted_squared_error(y_true["heatmaps"], weights, y_pred)
        index = ops.cast(ops.reshape(y_true["dataset_index"], (-1,)), "int32")
        counts = ops.take(ops.convert_to_tensor(np.asarray(self.num_keypoints, "float32")), index, axis=0)
        pixels = ops.cast(ops.shape(err)[1] * ops.shape(err)[2], "float32")
        return self.loss_weight * ops.sum(err, axis=(1, 2, 3)) / (counts * pixels)

    def call(self, y_true, y_pred):
        return self.per_sample(y_true, y_pred)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_keypoints": list(self.num_keypoints),
                "use_target_weight": self.use_target_weight,
                "loss_weight": self.loss_weight,
            }
        )
        return config


def per_dataset_losses(loss, y_true, y_pred, num_datasets):
    """Mean loss of each dataset's samples in a batch (numpy floats; NaN where a dataset has none).

    Args:
        loss: a `MultiDatasetKeypointMSELoss`.
        y_true, y_pred: as the loss takes them.
        num_datasets: number of datasets.
    """
    values = keras.ops.convert_to_numpy(loss.per_sample(y_true, y_pred))
    index = keras.ops.convert_to_numpy(y_true["dataset_index"]).reshape(-1)
    return [float(values[index == d].mean()) if np.any(index == d) else float("nan") for d in range(num_datasets)]


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPosePPMultiDataset(keras.Model):
    """Training view of a `ViTPosePP` over several datasets (see the module docstring).

    Args:
        pose_model: the `ViTPosePP` whose layers and variables are used (not
            copied: training this model trains `pose_model`, and
            `pose_model.with_dataset(name)` predicts with the result).
        **kwargs: `keras.Model` arguments (`name`).

    Call: `model({"images": (B, H, W, 3), "dataset_index": (B,) int})` ->
    (B, H/4, W/4, K_max) float32 heatmaps (zero beyond each sample's K_d).
    `compile()` defaults to Adam(5e-4) and `MultiDatasetKeypointMSELoss`;
    with that loss `fit` / `evaluate` also report `loss_<dataset>`, each
    dataset's mean per-sample loss (0 when it had no sample).
    """

    def __init__(self, pose_model, **kwargs):
        super().__init__(**kwargs)
        from keras_pose.models.vitpose.vitpose_plus_pose_estimator import ViTPosePP

        if not isinstance(pose_model, ViTPosePP):
            raise ValueError(f"pose_model must be a ViTPosePP, got {type(pose_model).__name__}.")
        self.pose_model = pose_model
        # `fit` / `evaluate` report each dataset's mean per-sample loss as `loss_<dataset>`.
        self.dataset_loss_trackers = [keras.metrics.Mean(name=f"loss_{name}") for name in pose_model.datasets]
        self.built = True  # every variable is pose_model's (a built functional model)

    # Properties (not attributes) so that the layers are tracked once, under `pose_model`.
    @property
    def datasets(self):
        return list(self.pose_model.datasets)

    @property
    def num_keypoints(self):
        return list(self.pose_model.num_keypoints)

    @property
    def max_keypoints(self):
        return max(self.num_keypoints)

    def dataset_index_of(self, dataset):
        """The index of dataset name `dataset` (an int is returned as is after a range check)."""
        return self.pose_model._dataset_index_of(dataset)

    def features(self, images, dataset_index, training=None):
        """Backbone features (B, Hp, Wp, C), every sample through its own experts."""
        backbone = self.pose_model.backbone
        x = backbone.patch_embedding(images)
        if backbone.knowledge_token is not None:
            x = backbone.knowledge_token(x)
        for block in backbone.transformer_layers:
            x = x + block.residual(block.attention(block.norm1(x)), training)
            x = x + block.residual(routed_mlp(block.mlp, block.norm2(x), dataset_index), training)
        x = backbone.final_layernorm(x)
        if backbone.knowledge_token is not None:
            x = x[:, 1:]
        return ops.reshape(x, (-1, *backbone.grid_size, backbone.hidden_dim))

    def heads_output(self, features, dataset_index, training=None):
        """Per-sample head outputs (B, h, w, K_max) float32, zero-padded beyond K_d."""
        k_max = self.max_keypoints
        onehot = ops.one_hot(dataset_index, len(self.datasets), dtype="float32")
        out = None
        for d, head in enumerate(self.pose_model.heads.heads):
            y = ops.cast(run_head(head, features, onehot[:, d], training=training), "float32")
            if self.num_keypoints[d] < k_max:
                y = ops.pad(y, [[0, 0], [0, 0], [0, 0], [0, k_max - self.num_keypoints[d]]])
            y = y * onehot[:, d][:, None, None, None]
            out = y if out is None else out + y
        return out

    def call(self, inputs, training=None):
        if not isinstance(inputs, dict) or "images" not in inputs or "dataset_index" not in inputs:
            raise ValueError(
                "ViTPosePPMultiDataset takes {'images': (B, H, W, 3), 'dataset_index': (B,) int}; "
                "use multi_dataset_inputs(images, index) or the pipeline of build_multi_dataset_pipeline."
            )
        index = ops.cast(ops.reshape(inputs["dataset_index"], (-1,)), "int32")
        return self.heads_output(self.features(inputs["images"], index, training=training), index, training=training)

    def compute_output_shape(self, input_shape):
        h, w = self.pose_model.output_shape[1:3]
        return (input_shape["images"][0], h, w, self.max_keypoints)

    # --------------------------------------------------------------- training
    def compile(self, optimizer="auto", loss="auto", **kwargs):
        """Adam(5e-4) and `MultiDatasetKeypointMSELoss(num_keypoints)` unless given."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(learning_rate=5e-4)
        if loss == "auto":
            loss = MultiDatasetKeypointMSELoss(self.num_keypoints)
        self.multi_loss = loss
        super().compile(optimizer=optimizer, loss=None, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        loss = self.multi_loss(y, y_pred, sample_weight=sample_weight)
        if isinstance(self.multi_loss, MultiDatasetKeypointMSELoss) and isinstance(y, dict) and "dataset_index" in y:
            per_sample = self.multi_loss.per_sample(y, y_pred)
            index = ops.cast(ops.reshape(y["dataset_index"], (-1,)), "int32")
            for d, tracker in enumerate(self.dataset_loss_trackers):
                tracker.update_state(per_sample, sample_weight=ops.cast(ops.equal(index, d), "float32"))
        if self.losses:
            loss = loss + ops.sum(ops.stack([ops.cast(l, "float32") for l in self.losses]))
        return loss

    def get_compile_config(self):
        return loss_compile_config(self, "multi_loss")

    def compile_from_config(self, config):
        compile_from_loss_config(self, config)

    def get_config(self):
        config = super().get_config()
        config["pose_model"] = keras.saving.serialize_keras_object(self.pose_model)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["pose_model"] = keras.saving.deserialize_keras_object(config["pose_model"])
        return cls(**config)


def multi_dataset_inputs(images, dataset_index):
    """The model's input dict; `dataset_index` an int (whole batch) or (B,) ints."""
    images = ops.convert_to_tensor(images)
    index = np.asarray(dataset_index, dtype="int32")
    if index.ndim == 0:
        index = np.full((int(ops.shape(images)[0]),), int(index), dtype="int32")
    return {"images": images, "dataset_index": ops.convert_to_tensor(index)}


def multi_dataset_targets(heatmaps, keypoint_weights, dataset_index, max_keypoints):
    """Targets of one dataset zero-padded to `max_keypoints` (numpy / tensors; any backend).

    Args:
        heatmaps: (B, h, w, K_d). keypoint_weights: (B, K_d).
        dataset_index: int or (B,) ints. max_keypoints: K_max.
    """
    k = int(ops.shape(heatmaps)[-1])
    if k > max_keypoints:
        raise ValueError(f"heatmaps have {k} keypoints, more than max_keypoints={max_keypoints}.")
    pad = max_keypoints - k
    heatmaps = ops.pad(ops.convert_to_tensor(heatmaps, "float32"), [[0, 0], [0, 0], [0, 0], [0, pad]])
    weights = ops.pad(ops.convert_to_tensor(keypoint_weights, "float32"), [[0, 0], [0, pad]])
    index = np.asarray(dataset_index, dtype="int32")
    if index.ndim == 0:
        index = np.full((int(ops.shape(heatmaps)[0]),), int(index), dtype="int32")
    return {"heatmaps": heatmaps, "keypoint_weights": weights, "dataset_index": ops.convert_to_tensor(index)}
