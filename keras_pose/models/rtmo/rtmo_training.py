"""RTMO training: the training-only head branches, the loss (SimOTA inside), the two-stage schedule.

Targets (`fit`'s ``y``), per image a padded set of M instances, batched, in
model-input pixels:

| key | shape | meaning |
| --- | --- | --- |
| ``boxes`` | (B, M, 4) | x1, y1, x2, y2 |
| ``keypoints`` | (B, M, K, 2) | x, y |
| ``keypoint_visible`` | (B, M, K) | 1 labelled, 0 not |
| ``instance_valid`` | (B, M) | 1 a real instance, 0 padding |
| ``ignore_mask`` | (B, H, W) | 1 where unlabelled people are (crowd / no keypoints) |
| ``areas`` (optional) | (B, M) | instance areas (pixels^2) for OKS; default box w * h |

`RTMOLoss` (mmpose ``RTMOHead.loss`` with the RTMO-s/m/l COCO config):
proxy keypoints (``out_kpt_reg``, `RTMOTrainingBranches`) decoded as
offset * stride + prior; SimOTA (`rtmo_assigner.simota_assign`) on
sqrt(sigmoid(cls)), the decoded boxes and the proxy keypoints; then, with
N = max(number of positives in the batch, 1):

- ``bbox`` 5 * sum over positives (1 - IoU^2) / N;
- ``vis`` 1 * mean over positives and keypoints of BCE(kpt_vis, labelled);
- ``oks`` 30 * mean over positives (1 - OKS(proxy, target)) (stage 2: 10, and
  the target is the DCC keypoints where they are closer than the proxy);
- ``mle`` 1 * mean over positives and keypoints of the DCC's MLE loss with
  the predicted sigma (stage 2: 5);
- ``cls`` varifocal on every prior, target OKS^0.5 on positives (stage 2:
  OKS of the DCC keypoints), weighted by 1 - ignore mask (sampled at the mean
  predicted keypoint) when `use_ignore_mask`, summed / N;
- ``bbox_aux`` (last stage) L1 of the raw box regression against
  ((centre - prior) / stride, log(size / stride + 1e-8)), summed / N.

The recipe around it::

    model.compile()                                  # branches, RTMOLoss, rtmo_optimizer (AdamW groups, clip 0.1)
    ema = keras_pose.training.ema.ExpMomentumEMA(momentum=0.0002, gamma=2000)
    switch = keras_pose.data.MixingSwitch()            # model_dataset(..., mixing_switch=switch)
    model.fit(data, epochs=600, callbacks=[RTMOModeSwitch(280, 579, on_last_stage=switch.turn_off), ema])

Positives are gathered into a static number of rows per image
(`candidate_topk` * M at most), so every shape is static (XLA, JAX).
"""

import numpy as np

import keras
from keras import ops

from keras_pose.models.rtmo.rtmo_assigner import keypoint_oks, simota_assign
from keras_pose.models.rtmo.rtmo_decoding import BBOX_PADDING, decode_boxes, rtmo_priors
from keras_pose.models.rtmo.rtmo_head import head_output_name
from keras_pose.models.rtmo.rtmo_layers import rtmo_conv_initializer
from keras_pose.models.rtmo.rtmo_losses import (bce_with_logits, iou_loss, l1_loss, mle_cc_loss, oks_loss,
                                               target_heatmaps, varifocal_loss)

TARGET_KEYS = ("boxes", "keypoints", "keypoint_visible", "instance_valid", "ignore_mask")
LOSS_TERMS = ("cls", "bbox", "vis", "oks", "mle", "bbox_aux")
# mmpose configs/body_2d_keypoint/rtmo: loss weights per stage and the switch settings.
STAGE1 = {"cls": 1.0, "bbox": 5.0, "vis": 1.0, "oks": 30.0, "mle": 1.0, "bbox_aux": 1.0}
STAGE2_CHANGES = {"oks": 10.0, "mle": 5.0}


@keras.saving.register_keras_serializable(package="keras_pose")
class RTMOTrainingBranches(keras.layers.Layer):
    """The training-only parts of RTMO's head: keypoint proxy regression and the DCC's sigma.

    - ``out_kpt_reg.i``: per level a 1x1 conv on the pose-branch features
      (B, H, W, G * channels_per_group) -> (B, H, W, 2K) keypoint offsets in
      strides (keypoint = offset * stride + prior);
    - ``sigma_fc``: Dense(K) on the pose vector, sigmoid, times a learnable
      scale (init 0.1; it can turn negative, the loss clips sigma at 1e-3).

    Args:
        num_keypoints: K.
        featmap_strides: the head levels.
        pose_channels: width of the pose-branch features.
        pose_vec_channels: width of the pose vector.
    """

    def __init__(self, num_keypoints=17, featmap_strides=(16, 32), pose_channels=144, pose_vec_channels=256,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_keypoints = int(num_keypoints)
        self.featmap_strides = tuple(int(s) for s in featmap_strides)
        self.pose_channels = int(pose_channels)
        self.pose_vec_channels = int(pose_vec_channels)
        self.kpt_reg = [keras.layers.Conv2D(2 * self.num_keypoints, 1, kernel_initializer=rtmo_conv_initializer(),
                                            dtype=self.dtype_policy, name=f"out_kpt_reg_{i}")
                        for i in range(len(self.featmap_strides))]
        self.sigma_fc = keras.layers.Dense(self.num_keypoints, dtype=self.dtype_policy, name="sigma_fc")

    def build(self, input_shape=None):
        for conv in self.kpt_reg:
            conv.build((None, None, None, self.pose_channels))
        self.sigma_fc.build((None, self.pose_vec_channels))
        self.sigma_scale = self.add_weight(name="sigma_scale", shape=(), initializer=keras.initializers.Constant(0.1))
        self.built = True

    def keypoint_offsets(self, pose_features):
        """{"kpt_reg_s<stride>": (B, H, W, 2K)} from the per-level pose features (list)."""
        return {head_output_name("kpt_reg", s): conv(x) for s, conv, x in
                zip(self.featmap_strides, self.kpt_reg, pose_features)}

    def sigmas(self, pose_vecs):
        """Predicted sigmas (N, K) from pose vectors (N, C)."""
        return ops.cast(ops.sigmoid(self.sigma_fc(pose_vecs)), "float32") * ops.cast(self.sigma_scale, "float32")

    def get_config(self):
        config = super().get_config()
        config.update({"num_keypoints": self.num_keypoints, "featmap_strides": list(self.featmap_strides),
                       "pose_channels": self.pose_channels, "pose_vec_channels": self.pose_vec_channels})
        return config


def head_with_pose_features(head):
    """A functional model sharing `head`'s layers: its outputs plus ``pose_feat_s<stride>`` (the pose branch)."""
    outputs = dict(zip(head.output_names, head.outputs)) if isinstance(head.output, list) else dict(head.output)
    for i, stride in enumerate(head.featmap_strides):
        layer = head.get_layer(f"conv_pose_{i}_{2 * head.stacked_convs - 1}")
        outputs[head_output_name("pose_feat", stride)] = layer.output
    return keras.Model(head.inputs, outputs, name=f"{head.name}_with_pose_features")


def _flat(outputs, kind, strides):
    levels = []
    for s in strides:
        x = outputs[head_output_name(kind, s)]
        levels.append(ops.reshape(x, (ops.shape(x)[0], -1, x.shape[-1])))
    return ops.cast(ops.concatenate(levels, axis=1), "float32")


def _take(x, index, num):
    """x (B, num, ...) at index (B, Q) -> (B, Q, ...) (batch size may be unknown while tracing)."""
    image = ops.cumsum(ops.ones_like(index[:, :1]), axis=0) - 1  # (B, 1): 0, 1, ...
    flat_index = ops.reshape(index + image * num, (-1,))
    taken = ops.take(ops.reshape(x, (-1, *x.shape[2:])), flat_index, axis=0)
    return ops.reshape(taken, (-1, int(index.shape[1]), *x.shape[2:]))


def sample_mask_bilinear(mask, points):
    """Bilinear samples of masks (B, H, W) at points (B, P, 2) (x, y pixels); 0 outside (grid_sample zeros)."""
    height, width = int(mask.shape[1]), int(mask.shape[2])
    flat = ops.reshape(ops.cast(mask, "float32"), (-1, height * width))
    points = ops.convert_to_tensor(points, "float32")
    x, y = points[..., 0], points[..., 1]
    x0, y0 = ops.floor(x), ops.floor(y)
    total = 0.0
    for dx in (0.0, 1.0):
        for dy in (0.0, 1.0):
            xi, yi = x0 + dx, y0 + dy
            weight = (1.0 - ops.abs(x - xi)) * (1.0 - ops.abs(y - yi))
            inside = (xi >= 0) & (xi <= width - 1) & (yi >= 0) & (yi <= height - 1)
            index = ops.cast(ops.clip(yi, 0, height - 1) * width + ops.clip(xi, 0, width - 1), "int32")
            total = total + ops.where(inside, ops.take_along_axis(flat, index, axis=1) * weight, 0.0)
    return total


@keras.saving.register_keras_serializable(package="keras_pose")
class RTMOLoss:
    """RTMO's training loss (module docstring); `stage` settings change with `RTMOModeSwitch`.

    Args:
        sigmas: (K,) OKS sigmas of the keypoint spec.
        weights: loss weights by term (`LOSS_TERMS`), default `STAGE1`.
        overlaps_power: exponent of the OKS classification target (0.5).
        proxy_target_cc: stage 2: DCC keypoints as the OKS-loss target and
            their OKS as the classification target.
        use_aux_loss: the L1 box loss (last stage).
        use_ignore_mask: weight the classification loss by 1 - ignore mask.
        assigner: `simota_assign` settings (``center_radius``,
            ``candidate_topk``, ``iou_weight``, ``oks_weight``,
            ``cls_weight``).
    """

    def __init__(self, sigmas, weights=None, overlaps_power=0.5, proxy_target_cc=False, use_aux_loss=False,
                 use_ignore_mask=False, assigner=None):
        self.sigmas = [float(s) for s in np.asarray(sigmas, np.float64).ravel()]
        unknown = sorted(set(weights or {}) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(f"Unknown RTMO loss terms {unknown}; the terms are {list(LOSS_TERMS)}.")
        self.weights = {**STAGE1, **{k: float(v) for k, v in (weights or {}).items()}}
        self.overlaps_power = float(overlaps_power)
        self.proxy_target_cc = bool(proxy_target_cc)
        self.use_aux_loss = bool(use_aux_loss)
        self.use_ignore_mask = bool(use_ignore_mask)
        self.assigner = dict(assigner or {})

    def get_config(self):
        return {"sigmas": list(self.sigmas), "weights": dict(self.weights), "overlaps_power": self.overlaps_power,
                "proxy_target_cc": self.proxy_target_cc, "use_aux_loss": self.use_aux_loss,
                "use_ignore_mask": self.use_ignore_mask, "assigner": dict(self.assigner)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __call__(self, targets, outputs, network, branches, image_size):
        """Loss terms {term: scalar} (weighted) and "num_positives".

        Args:
            targets: the target dict (module docstring).
            outputs: raw head outputs plus ``kpt_reg_s<stride>``.
            network: the `RTMONetwork` (its DCC is used).
            branches: the `RTMOTrainingBranches`.
            image_size: the input (H, W).
        """
        missing = [k for k in TARGET_KEYS[:4] if k not in targets]
        if missing:
            raise KeyError(f"RTMO targets lack {missing}; give the dict {list(TARGET_KEYS)} (rtmo_training).")
        strides = network.featmap_strides
        sigmas = np.asarray(self.sigmas, np.float32)
        k = len(self.sigmas)
        priors_np, strides_np = rtmo_priors(image_size, strides)
        priors, prior_strides = ops.convert_to_tensor(priors_np), ops.convert_to_tensor(strides_np)
        num_priors = priors_np.shape[0]
        cls = _flat(outputs, "cls", strides)[..., 0]  # (B, P)
        bbox_raw = _flat(outputs, "bbox", strides)
        kpt_vis = _flat(outputs, "kpt_vis", strides)
        pose_vec = _flat(outputs, "pose_vec", strides)
        kpt_reg = _flat(outputs, "kpt_reg", strides)
        boxes = decode_boxes(bbox_raw, priors, prior_strides)
        proxy = ops.reshape(kpt_reg, (-1, num_priors, k, 2)) * prior_strides[None, :, None, None] \
            + priors[None, :, None, :]

        gt_boxes = ops.cast(targets["boxes"], "float32")
        gt_kpts = ops.cast(targets["keypoints"], "float32")
        gt_vis = ops.cast(targets["keypoint_visible"], "float32")
        gt_valid = ops.cast(targets["instance_valid"], "float32")
        if "areas" in targets and targets["areas"] is not None:
            gt_areas = ops.cast(targets["areas"], "float32")
        else:
            gt_areas = (gt_boxes[..., 2] - gt_boxes[..., 0]) * (gt_boxes[..., 3] - gt_boxes[..., 1])
        num_instances = int(gt_boxes.shape[1])

        scores = ops.sqrt(ops.sigmoid(ops.clip(cls, -1e4, 1e4)))
        assigned = simota_assign(priors_np, strides_np, boxes, scores, proxy, gt_boxes, gt_kpts, gt_vis, gt_valid,
                                 gt_areas, sigmas, **self.assigner)
        foreground = ops.cast(assigned["foreground"], "float32")
        num_pos = ops.maximum(assigned["num_foreground"], 1.0)

        # Positives into Q static rows per image (each instance takes at most candidate_topk priors).
        topk = int(self.assigner.get("candidate_topk", 10))
        q = min(num_priors, max(1, topk * num_instances))
        key = foreground * ops.cast(num_priors - ops.arange(num_priors), "float32")[None, :]
        key_values, rows = ops.top_k(key, q)
        valid = key_values > 0  # (B, Q)
        w = ops.cast(valid, "float32")
        gt_index = ops.take_along_axis(assigned["gt_index"], rows, axis=1)
        t_boxes, t_kpts, t_vis, t_areas = (_take(t, gt_index, num_instances)
                                           for t in (gt_boxes, gt_kpts, gt_vis, gt_areas))
        p_boxes, p_raw, p_proxy, p_vis, p_vec = (_take(t, rows, num_priors)
                                                 for t in (boxes, bbox_raw, proxy, kpt_vis, pose_vec))
        p_priors = ops.take(priors, rows, axis=0)
        p_strides = ops.take(prior_strides, rows, axis=0)
        # Padded rows: safe stand-ins (their terms are masked, but NaN * 0 would still be NaN).
        p_boxes = ops.where(valid[..., None], p_boxes, t_boxes)
        p_proxy = ops.where(valid[..., None, None], p_proxy, t_kpts)
        t_areas = ops.where(valid, t_areas, 1.0)

        terms = {}
        terms["bbox"] = ops.sum(iou_loss(p_boxes, t_boxes) * w) / num_pos
        terms["vis"] = ops.sum(bce_with_logits(p_vis, t_vis) * w[..., None]) / (num_pos * k)

        # DCC keypoints and the MLE loss.
        flat = lambda x, shape: ops.reshape(x, (-1, *shape))  # noqa: E731
        centers = (p_boxes[..., :2] + p_boxes[..., 2:]) * 0.5
        sizes = (p_boxes[..., 2:] - p_boxes[..., :2]) * BBOX_PADDING
        bbox_cs = flat(ops.concatenate([centers, sizes], axis=-1), (4,))
        vecs = flat(p_vec, (p_vec.shape[-1],))
        # The DCC's BatchNorm takes its statistics from the positives only (mmpose runs it on them).
        cc_kpts, x_probs, y_probs = network.dcc.keypoints_and_heatmaps(vecs, bbox_cs, flat(p_priors, (2,)),
                                                                       training=True, mask=flat(valid, ()))
        pred_sigmas = branches.sigmas(vecs)
        hm_x, hm_y = target_heatmaps(flat(t_kpts, (k, 2)), bbox_cs, pred_sigmas, flat(t_areas, ()),
                                     network.dcc.x_bins, network.dcc.y_bins)
        mle = mle_cc_loss(x_probs, y_probs, hm_x, hm_y, flat(t_vis, (k,)))
        terms["mle"] = ops.sum(ops.reshape(mle, (-1, q, k)) * w[..., None]) / (num_pos * k)
        cc_kpts = ops.reshape(cc_kpts, (-1, q, k, 2))

        if self.proxy_target_cc:
            cc = ops.stop_gradient(cc_kpts)
            diff_cc = ops.sum(ops.square(cc - t_kpts), axis=-1)
            diff_reg = ops.sum(ops.square(ops.stop_gradient(p_proxy) - t_kpts), axis=-1)
            reg_weight = t_vis * ops.cast(diff_reg > diff_cc, "float32")
            oks_terms = oks_loss(p_proxy, cc, reg_weight, t_areas, sigmas)
            positive_quality = ops.stop_gradient(keypoint_oks(cc, t_kpts, t_vis, t_areas, sigmas))
        else:
            oks_terms = oks_loss(p_proxy, t_kpts, t_vis, t_areas, sigmas)
            positive_quality = _take(assigned["matched_oks"], rows, num_priors)
        terms["oks"] = ops.sum(oks_terms * w) / num_pos

        # Classification: quality^power on positives, scattered back to the priors.
        quality = ops.power(ops.maximum(positive_quality, 0.0), self.overlaps_power) * w  # (B, Q)
        scatter = ops.one_hot(rows, num_priors) * w[..., None]  # (B, Q, P)
        cls_target = ops.stop_gradient(ops.einsum("bq,bqp->bp", quality, scatter))
        cls_weight = 1.0
        if self.use_ignore_mask and targets.get("ignore_mask") is not None:
            proxy_all = ops.stop_gradient(proxy)
            seen = ops.cast(ops.sigmoid(ops.stop_gradient(kpt_vis)) > 0.3, "float32")[..., None]
            mean_kpt = ops.sum(proxy_all * seen, axis=2) / ops.maximum(ops.sum(seen, axis=2), 1e-8)
            cls_weight = 1.0 - sample_mask_bilinear(targets["ignore_mask"], mean_kpt)
        terms["cls"] = ops.sum(varifocal_loss(cls, cls_target) * cls_weight) / num_pos

        if self.use_aux_loss:
            t_center = (t_boxes[..., :2] + t_boxes[..., 2:]) * 0.5
            t_size = ops.maximum(t_boxes[..., 2:] - t_boxes[..., :2], 0.0)
            aux_target = ops.concatenate([(t_center - p_priors) / p_strides[..., None],
                                          ops.log(t_size / p_strides[..., None] + 1e-8)], axis=-1)
            terms["bbox_aux"] = ops.sum(l1_loss(p_raw, ops.stop_gradient(aux_target)) * w[..., None]) / num_pos
        weighted = {name: value * self.weights[name] for name, value in terms.items()}
        weighted["num_positives"] = assigned["num_foreground"]
        return weighted


class RTMOModeSwitch(keras.callbacks.Callback):
    """RTMO's two-stage schedule as a `fit` callback (mmpose RTMOModeSwitchHook + YOLOXPoseModeSwitchHook).

    - from epoch `switch_epoch` (mmpose 280 of 600): OKS-loss weight 10,
      MLE weight 5, DCC keypoints as the proxy / classification targets;
    - from epoch `last_stage_epoch` (mmpose's ``num_last_epochs=20`` of 600:
      its hook fires when epoch + 1 == 580, i.e. from 0-based epoch 579): the L1
      auxiliary box loss and the ignore masks are on, and `on_last_stage()`
      is called (give it ``MixingSwitch.turn_off`` of the switch your
      whole-image pipeline reads, ``keras_pose.data.MixingSwitch``, to turn
      off mosaic and mixup).

    Epochs count from 0 as `fit`'s. Changes rebuild the train function (the
    settings are static in the traced step).

    Args:
        switch_epoch: the first epoch of stage 2 (None: never).
        last_stage_epoch: the first epoch of the last stage (None: never).
        on_last_stage: optional callable without arguments.
    """

    def __init__(self, switch_epoch=280, last_stage_epoch=579, on_last_stage=None):
        super().__init__()
        self.switch_epoch = None if switch_epoch is None else int(switch_epoch)
        self.last_stage_epoch = None if last_stage_epoch is None else int(last_stage_epoch)
        if on_last_stage is not None and not callable(on_last_stage):
            raise TypeError(f"on_last_stage must be callable (e.g. a function that turns off mosaic), "
                            f"got {type(on_last_stage).__name__}.")
        self.on_last_stage = on_last_stage

    def on_epoch_begin(self, epoch, logs=None):
        loss = getattr(self.model, "rtmo_loss", None)
        if loss is None:
            raise ValueError("RTMOModeSwitch needs an RTMO model compiled for training (model.compile()).")
        changed = False
        if self.switch_epoch is not None and epoch >= self.switch_epoch and not loss.proxy_target_cc:
            loss.proxy_target_cc = True
            loss.weights.update(STAGE2_CHANGES)
            changed = True
        if self.last_stage_epoch is not None and epoch >= self.last_stage_epoch and not loss.use_aux_loss:
            loss.use_aux_loss = True
            loss.use_ignore_mask = True
            if self.on_last_stage is not None:
                self.on_last_stage()
            changed = True
        if changed:
            self.model.make_train_function(force=True)


def rtmo_optimizer(model, learning_rate=0.004, weight_decay=0.05, encoder_lr_multiplier=0.05, clipnorm=0.1):
    """mmpose RTMO's optimizer: AdamW, no weight decay on norms and biases, encoder LR x0.05, clip 0.1.

    Args:
        model: the `RTMO` task (compiled branches included if present).
        learning_rate: base learning rate (or a schedule) [0.004 for batch 256].
        weight_decay: AdamW decay [0.05].
        encoder_lr_multiplier: factor of the neck's transformer encoder [0.05].
        clipnorm: global gradient-norm clip [0.1].
    """
    from keras_pose.training.param_groups import make_param_group_optimizer

    multipliers = {v.path: float(encoder_lr_multiplier) for v in model.trainable_variables
                   if "/neck/" in f"/{v.path}" and "encoder" in v.path}
    return make_param_group_optimizer(
        "adamw", lr_multipliers=multipliers, no_weight_decay=(r"bias", r"gamma", r"beta", r"_bn", r"norm"),
        learning_rate=learning_rate, weight_decay=weight_decay, global_clipnorm=clipnorm,
    )


__all__ = ["LOSS_TERMS", "RTMOLoss", "RTMOModeSwitch", "RTMOTrainingBranches", "STAGE1", "STAGE2_CHANGES",
           "TARGET_KEYS", "head_with_pose_features", "rtmo_optimizer", "sample_mask_bilinear"]
