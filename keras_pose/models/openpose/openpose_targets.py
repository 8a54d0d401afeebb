"""OpenPose training targets (`OpenPoseMaps` codec) and the masked L2 loss over every stage.

Targets on the stride-8 grid of a whole-image input (cell ``(gy, gx)`` is
centred on input pixel ``(8 gx + 3.5, 8 gy + 3.5)``, CMU caffe_train's
``start = stride / 2 - 0.5``):

- ``"heatmaps"`` ``(h, w, K + 1)``: per person and visible part a Gaussian
  ``exp(-d^2 / (2 sigma^2))`` (``d`` in input pixels; 0 where the exponent
  exceeds 4.6052, i.e. below 0.01), max over people; last channel background
  = 1 - max over parts;
- ``"pafs"`` ``(h, w, 2L)``: per limb (both parts visible) the unit vector
  part A -> part B on cells within ``paf_width`` cells of the segment
  (perpendicular distance, and along it from ``-paf_width`` to its length +
  ``paf_width``); where people overlap the vectors are averaged;
- ``"mask"`` ``(h, w, 1)``: 0 on cells of unannotated people / crowds (an
  input-resolution ``ignore_mask`` given to `encode`, e.g. from
  `ignore_mask_from_coco`), else 1; the loss ignores those cells.

`OpenPoseLoss`: sum over stages of ``0.5 * sum_{h,w,c} mask * (pred -
target)^2`` (CMU's Euclidean loss with intermediate supervision), mean over
the batch.
"""

import keras
import numpy as np
from keras import ops

from keras_pose.codecs.base import PoseCodec, VISIBLE_THRESHOLD, register_codec

STRIDE = 8


@register_codec("OpenPoseMaps")
class OpenPoseMaps(PoseCodec):
    """Confidence maps + PAFs + mask targets of one whole image (see the module docstring).

    Args:
        input_size: ``(H, W)`` of the model input, pixels.
        num_keypoints: K.
        limbs: ``[(part_a, part_b), ...]``.
        paf_channels: ``[(x_channel, y_channel), ...]`` per limb (default
            ``(2i, 2i + 1)``).
        sigma: Gaussian sigma in input pixels (7.0, CMU).
        paf_width: PAF half-width in grid cells (1.0, CMU).
        heatmap_size: ``(h, w)``; default ``ceil(H / 8), ceil(W / 8)``.
    """

    target_keys = ("heatmaps", "pafs", "mask")

    def __init__(self, input_size, num_keypoints, limbs, paf_channels=None, sigma=7.0, paf_width=1.0,
                 heatmap_size=None):
        self.input_size = tuple(int(s) for s in input_size)
        self.num_keypoints = int(num_keypoints)
        self.limbs = [tuple(int(v) for v in p) for p in limbs]
        self.paf_channels = [tuple(int(v) for v in p) for p in (paf_channels or
                                                                 [(2 * i, 2 * i + 1) for i in range(len(self.limbs))])]
        self.sigma = float(sigma)
        self.paf_width = float(paf_width)
        self.heatmap_size = tuple(int(s) for s in heatmap_size) if heatmap_size else tuple(
            -(-s // STRIDE) for s in self.input_size)

    def _grid(self):
        h, w = self.heatmap_size
        return np.arange(w) * STRIDE + 3.5, np.arange(h) * STRIDE + 3.5

    def encode(self, keypoints, keypoints_visible=None, ignore_mask=None):
        """People of one image -> targets; ``(B, N, K, 2)`` input gives batched targets.

        Args:
            keypoints: ``(N, K, 2)`` input pixels.
            keypoints_visible: ``(N, K)`` (COCO v; > 0.5 counts), default all.
            ignore_mask: optional ``(H, W)`` bool, True on pixels of people
                without keypoint annotations (zeroed in the loss).
        """
        keypoints = np.asarray(keypoints, np.float64)
        if keypoints.ndim == 4:
            vis = [None] * len(keypoints) if keypoints_visible is None else keypoints_visible
            masks = [None] * len(keypoints) if ignore_mask is None else ignore_mask
            parts = [self.encode(k, v, m) for k, v, m in zip(keypoints, vis, masks)]
            return {key: np.stack([p[key] for p in parts]) for key in self.target_keys}
        if keypoints.ndim != 3 or keypoints.shape[1:] != (self.num_keypoints, 2):
            raise ValueError(f"keypoints must be (N, {self.num_keypoints}, 2) input pixels, got {keypoints.shape}.")
        visible = (np.ones(keypoints.shape[:2]) if keypoints_visible is None
                   else np.asarray(keypoints_visible, np.float64)) > VISIBLE_THRESHOLD
        h, w = self.heatmap_size
        xs, ys = self._grid()
        heat = np.zeros((h, w, self.num_keypoints + 1), np.float32)
        for person, vis in zip(keypoints, visible):
            for k in np.flatnonzero(vis):
                d2 = (xs[None, :] - person[k, 0]) ** 2 + (ys[:, None] - person[k, 1]) ** 2
                exponent = d2 / (2 * self.sigma ** 2)
                g = np.where(exponent > 4.6052, 0.0, np.exp(-exponent))
                heat[..., k] = np.maximum(heat[..., k], g)
        heat[..., -1] = 1.0 - heat[..., :-1].max(axis=-1) if self.num_keypoints else 1.0
        pafs = np.zeros((h, w, 2 * len(self.limbs)), np.float32)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        for (a, b), (cx, cy) in zip(self.limbs, self.paf_channels):
            total = np.zeros((h, w, 2))
            count = np.zeros((h, w))
            for person, vis in zip(keypoints, visible):
                if not (vis[a] and vis[b]):
                    continue
                pa, pb = (person[a] - 3.5) / STRIDE, (person[b] - 3.5) / STRIDE  # grid coordinates
                vec = pb - pa
                length = float(np.hypot(*vec))
                if length < 1e-6:
                    continue
                unit = vec / length
                along = (gx - pa[0]) * unit[0] + (gy - pa[1]) * unit[1]
                across = np.abs((gx - pa[0]) * unit[1] - (gy - pa[1]) * unit[0])
                on = (across <= self.paf_width) & (along >= -self.paf_width) & (along <= length + self.paf_width)
                total[on] += unit
                count[on] += 1
            nonzero = count > 0
            pafs[..., cx][nonzero] = total[..., 0][nonzero] / count[nonzero]
            pafs[..., cy][nonzero] = total[..., 1][nonzero] / count[nonzero]
        mask = np.ones((h, w, 1), np.float32)
        if ignore_mask is not None:
            ignore = np.asarray(ignore_mask, bool)
            iy = np.clip(ys.astype(int), 0, ignore.shape[0] - 1)
            ix = np.clip(xs.astype(int), 0, ignore.shape[1] - 1)
            mask[..., 0] = ~ignore[iy][:, ix]
        return {"heatmaps": heat, "pafs": pafs, "mask": mask}

    def encode_tf(self, keypoints, keypoints_visible=None, ignore_mask=None, instance_valid=None):
        """TensorFlow twin of `encode` for one image (vectorised over people, parts and limbs; ``tf.data``).

        Args:
            keypoints: ``(N, K, 2)`` input pixels.
            keypoints_visible: ``(N, K)`` (> 0.5 counts), default all.
            ignore_mask: optional ``(H, W)`` (> 0.5 = ignore), input resolution.
            instance_valid: optional ``(N,)``: rows with 0 are padding and
                contribute nothing (the whole-image pipeline's padded instances).

        Returns:
            ``{"heatmaps": (h, w, K + 1), "pafs": (h, w, 2L), "mask": (h, w, 1)}``
            float32, equal to `encode` (computed in float64).
        """
        import tensorflow as tf

        kps = tf.cast(keypoints, tf.float64)
        k = self.num_keypoints
        vis = tf.ones(tf.shape(kps)[:2], tf.bool) if keypoints_visible is None else (
            tf.cast(keypoints_visible, tf.float64) > VISIBLE_THRESHOLD)
        if instance_valid is not None:
            vis = vis & (tf.cast(instance_valid, tf.float64) > 0.5)[:, None]
        h, w = self.heatmap_size
        xs, ys = (tf.constant(v, tf.float64) for v in self._grid())
        # heatmaps: (N, K, h, w) Gaussians, max over people
        dx2 = (xs[None, None, None, :] - kps[:, :, 0, None, None]) ** 2
        dy2 = (ys[None, None, :, None] - kps[:, :, 1, None, None]) ** 2
        exponent = (dx2 + dy2) / (2 * self.sigma ** 2)
        g = tf.where((exponent > 4.6052) | ~vis[:, :, None, None], tf.zeros_like(exponent), tf.exp(-exponent))
        parts = tf.transpose(tf.reduce_max(tf.concat([g, tf.zeros_like(g[:1])], 0), axis=0), [1, 2, 0])
        background = 1.0 - tf.reduce_max(parts, axis=-1, keepdims=True) if k else tf.ones([h, w, 1], tf.float64)
        heat = tf.concat([parts, background], axis=-1)
        # PAFs: (N, L, h, w) membership of each cell in each person's limb, averaged unit vectors
        a_idx = [a for a, _ in self.limbs]
        b_idx = [b for _, b in self.limbs]
        pa = (tf.gather(kps, a_idx, axis=1) - 3.5) / STRIDE  # (N, L, 2) grid coordinates
        pb = (tf.gather(kps, b_idx, axis=1) - 3.5) / STRIDE
        both = tf.gather(vis, a_idx, axis=1) & tf.gather(vis, b_idx, axis=1)
        vec = pb - pa
        length = tf.norm(vec, axis=-1)
        usable = both & (length >= 1e-6)
        unit = vec / tf.where(usable, length, 1.0)[..., None]
        gx = tf.range(w, dtype=tf.float64)[None, None, None, :]
        gy = tf.range(h, dtype=tf.float64)[None, None, :, None]
        ox, oy = gx - pa[..., 0, None, None], gy - pa[..., 1, None, None]
        ux, uy = unit[..., 0, None, None], unit[..., 1, None, None]
        along = ox * ux + oy * uy
        across = tf.abs(ox * uy - oy * ux)
        on = (across <= self.paf_width) & (along >= -self.paf_width) & (along <= length[..., None, None] + self.paf_width)
        on = tf.cast(on & usable[..., None, None], tf.float64)
        count = tf.reduce_sum(on, axis=0)  # (L, h, w)
        mean_x = tf.math.divide_no_nan(tf.reduce_sum(on * ux, axis=0), count)
        mean_y = tf.math.divide_no_nan(tf.reduce_sum(on * uy, axis=0), count)
        order = np.zeros(2 * len(self.limbs), np.int64)  # channel c <- stacked row
        for i, (cx, cy) in enumerate(self.paf_channels):
            order[cx], order[cy] = i, len(self.limbs) + i
        pafs = tf.transpose(tf.gather(tf.concat([mean_x, mean_y], 0), order), [1, 2, 0])
        if ignore_mask is None:
            mask = tf.ones([h, w, 1], tf.float32)
        else:
            ignore = tf.cast(ignore_mask, tf.float32) > 0.5
            shape = tf.shape(ignore)
            iy = tf.clip_by_value(tf.constant(self._grid()[1].astype(np.int32)), 0, shape[0] - 1)
            ix = tf.clip_by_value(tf.constant(self._grid()[0].astype(np.int32)), 0, shape[1] - 1)
            picked = tf.gather(tf.gather(ignore, iy, axis=0), ix, axis=1)
            mask = tf.cast(~picked, tf.float32)[..., None]
        return {"heatmaps": tf.ensure_shape(tf.cast(heat, tf.float32), [h, w, k + 1]),
                "pafs": tf.ensure_shape(tf.cast(pafs, tf.float32), [h, w, 2 * len(self.limbs)]),
                "mask": tf.ensure_shape(mask, [h, w, 1])}

    def decode(self, outputs):
        raise NotImplementedError("OpenPose decodes by grouping: use OpenPose.predict_keypoints / group().")

    def get_config(self):
        return {"input_size": list(self.input_size), "num_keypoints": self.num_keypoints,
                "limbs": [list(p) for p in self.limbs], "paf_channels": [list(p) for p in self.paf_channels],
                "sigma": self.sigma, "paf_width": self.paf_width, "heatmap_size": list(self.heatmap_size)}


def coco17_to_op18_tf(keypoints, visible):
    """Graph twin of `coco17_to_op18`: ``(..., 17, 2)`` / ``(..., 17)`` -> OpenPose-18 (neck from the shoulders).

    The neck is the mean of the two shoulders, visible where both are.
    """
    import tensorflow as tf

    from keras_pose.models.openpose.openpose_layers import COCO17_TO_OP18

    source = [COCO17_TO_OP18.index(i) if i in COCO17_TO_OP18 else 0 for i in range(18)]
    kps = tf.gather(keypoints, source, axis=-2)
    vis = tf.gather(visible, source, axis=-1)
    both = tf.cast((visible[..., 5] > 0) & (visible[..., 6] > 0), keypoints.dtype)
    neck = 0.5 * (keypoints[..., 5, :] + keypoints[..., 6, :]) * both[..., None]
    neck_vis = tf.minimum(visible[..., 5], visible[..., 6]) * tf.cast(both, visible.dtype)
    kps = tf.concat([kps[..., :1, :], neck[..., None, :], kps[..., 2:, :]], axis=-2)
    vis = tf.concat([vis[..., :1], neck_vis[..., None], vis[..., 2:]], axis=-1)
    return kps, vis


class OpenPoseTargetEncoder:
    """The whole-image pipeline's padded instances -> `OpenPoseMaps` targets, in the graph.

    Args:
        codec: an `OpenPoseMaps` for the training input size.
        convert: None (the data are in the model's keypoint order) or
            "coco17_to_op18" (COCO-17 data, OpenPose-18 model: the neck from
            the shoulders).

    Called on one element's dict (``keypoints``, ``keypoint_visible``,
    ``instance_valid``, ``ignore_mask``); returns ``{"heatmaps", "pafs", "mask"}``.
    """

    def __init__(self, codec, convert=None):
        if convert not in (None, "coco17_to_op18"):
            raise ValueError(f"convert must be None or 'coco17_to_op18', got {convert!r}.")
        self.codec, self.convert = codec, convert

    def __call__(self, instances):
        kps, vis = instances["keypoints"], instances["keypoint_visible"]
        if self.convert == "coco17_to_op18":
            kps, vis = coco17_to_op18_tf(kps, vis)
        return self.codec.encode_tf(kps, vis, ignore_mask=instances.get("ignore_mask"),
                                    instance_valid=instances.get("instance_valid"))


def ignore_mask_from_coco(annotations, height, width):
    """``(H, W)`` bool: pixels of crowd regions and of people without keypoints (pycocotools)."""
    from pycocotools import mask as mask_utils

    out = np.zeros((height, width), bool)
    for ann in annotations:
        if not (ann.get("iscrowd") or ann.get("num_keypoints", 0) == 0) or not ann.get("segmentation"):
            continue
        seg = ann["segmentation"]
        rles = mask_utils.frPyObjects(seg, height, width) if isinstance(seg, list) else (
            mask_utils.frPyObjects(seg, height, width) if isinstance(seg.get("counts"), list) else seg)
        out |= mask_utils.decode(mask_utils.merge(rles) if isinstance(rles, list) else rles).astype(bool)
    return out


@keras.saving.register_keras_serializable(package="keras_pose")
class OpenPoseLoss(keras.losses.Loss):
    """Masked L2 over every stage (intermediate supervision), see the module docstring.

    Called as ``loss(y_true, y_pred)`` with ``y_true = {"heatmaps", "pafs",
    optional "mask"}`` and the OpenPose outputs dict (``paf_stage{i}``,
    ``heatmap_stage{j}``); returns ``(B,)`` per-sample losses.
    """

    def call(self, y_true, y_pred):
        mask = y_true.get("mask")
        mask = 1.0 if mask is None else ops.cast(mask, "float32")
        total = 0.0
        for name in sorted(y_pred):
            target = y_true["pafs" if name.startswith("paf") else "heatmaps"]
            error = ops.square(ops.cast(y_pred[name], "float32") - ops.cast(target, "float32")) * mask
            total = total + 0.5 * ops.sum(error, axis=(1, 2, 3))
        return total
