"""A ``tf.data`` pipeline mixing several keypoint datasets for ViTPose++ multi-dataset training."""

import numpy as np
import tensorflow as tf

from keras_pose.data.top_down_pipeline import PipelineError, model_dataset

AUTOTUNE = tf.data.AUTOTUNE


def _pad_element(index, max_keypoints):
    def pad(images, targets):
        heatmaps = targets["heatmaps"]
        k = tf.shape(heatmaps)[-1]
        heatmaps = tf.pad(heatmaps, [[0, 0], [0, 0], [0, max_keypoints - k]])
        weights = targets.get("keypoint_weights")
        weights = tf.ones([k], tf.float32) if weights is None else tf.cast(weights, tf.float32)
        weights = tf.pad(weights, [[0, max_keypoints - k]])
        heatmaps.set_shape([None, None, max_keypoints])
        weights.set_shape([max_keypoints])
        dataset_index = tf.constant(index, tf.int32)
        inputs = {"images": images, "dataset_index": dataset_index}
        return inputs, {"heatmaps": heatmaps, "keypoint_weights": weights, "dataset_index": dataset_index}

    return pad


def build_multi_dataset_pipeline(
    model,
    datasets,
    ratios=None,
    batch_size=32,
    seed=None,
    augment=True,
    repeat=True,
    drop_remainder=False,
    prefetch=AUTOTUNE,
    **kwargs,
):
    """Batches mixing several datasets for a `ViTPosePPMultiDataset`.

    Each dataset is read by `build_top_down_dataset` with its own keypoint
    spec (flip pairs, half body) and the model's codec and preprocessor
    (`model_dataset` of `pose_model.with_dataset(name)`), unbatched; its
    targets are zero-padded to K_max and every element gets its dataset
    index; `tf.data.Dataset.sample_from_datasets` draws from them with the
    given ratios.

    Args:
        model: a `ViTPosePPMultiDataset` (or its `ViTPosePP`).
        datasets: {dataset name: `PoseDataset` or list of `PoseInstance`}
            (or a list of (name, data) pairs); names from `model.datasets`.
        ratios: sampling weights per dataset ({name: float} or a list in
            the order of `datasets`; normalised); default: equal.
        batch_size: elements per batch.
        seed: int: the same seed gives the same batches (each dataset is
            read with seed + its position, the mixing uses `seed`).
        augment: `build_top_down_dataset`'s augmentation setting (every
            dataset).
        repeat: repeat every dataset forever (use `steps_per_epoch`); False
            ends when every dataset has run out.
        drop_remainder, prefetch: batching options.
        **kwargs: other `build_top_down_dataset` arguments (every dataset).

    Returns:
        ``tf.data.Dataset`` of ``(inputs, targets)``: inputs
        {"images": (B, H, W, 3) float32, "dataset_index": (B,) int32},
        targets {"heatmaps": (B, h, w, K_max), "keypoint_weights":
        (B, K_max), "dataset_index": (B,)} float32 / int32.
    """
    pose = getattr(model, "pose_model", model)
    pairs = list(datasets.items()) if isinstance(datasets, dict) else [tuple(p) for p in datasets]
    if not pairs:
        raise PipelineError("`datasets` is empty; give {dataset name: PoseDataset}.")
    names = [name for name, _ in pairs]
    unknown = [name for name in names if name not in pose.datasets]
    if unknown:
        raise PipelineError(f"datasets {unknown} have no expert/head in the model (its datasets: {pose.datasets}).")
    if ratios is None:
        weights = [1.0] * len(pairs)
    elif isinstance(ratios, dict):
        missing = [name for name in names if name not in ratios]
        if missing:
            raise PipelineError(f"ratios has no entry for {missing}; give one per dataset.")
        weights = [float(ratios[name]) for name in names]
    else:
        weights = [float(r) for r in ratios]
    if len(weights) != len(pairs) or any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise PipelineError(f"ratios must be one non-negative number per dataset, not all zero; got {ratios}.")
    weights = [w / sum(weights) for w in weights]
    max_keypoints = max(pose.num_keypoints)
    streams = []
    for position, (name, data) in enumerate(pairs):
        index = pose.datasets.index(name)
        view = pose.with_dataset(name)
        stream = model_dataset(
            view,
            data,
            batch_size=None,
            training=True,
            augment=augment,
            seed=None if seed is None else int(seed) + position,
            repeat=repeat,
            prefetch=None,
            return_meta=False,
            **kwargs,
        )
        streams.append(stream.map(_pad_element(index, max_keypoints), num_parallel_calls=AUTOTUNE))
    mixed = tf.data.Dataset.sample_from_datasets(
        streams, weights=weights, seed=seed, stop_on_empty_dataset=False
    )
    mixed = mixed.batch(batch_size, drop_remainder=drop_remainder)
    if prefetch:
        mixed = mixed.prefetch(prefetch)
    return mixed
