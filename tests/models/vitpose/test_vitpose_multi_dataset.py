"""ViTPose++ multi-dataset training: per-sample routing equals the single-dataset graphs; gradients are routed."""

import numpy as np
import pytest

import keras

from keras_pose.models.vitpose import ViTPoseBackbone, ViTPosePP
from keras_pose.models.vitpose.vitpose_multi_dataset import (
    MultiDatasetKeypointMSELoss,
    ViTPosePPMultiDataset,
    multi_dataset_inputs,
    multi_dataset_targets,
)

TINY_PP = {"hidden_dim": 32, "num_layers": 2, "num_heads": 4, "mlp_dim": 64, "num_experts": 3, "part_features": 8}
DATASETS = ["coco", "mpii", "ap10k"]  # 17, 16, 17 keypoints


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        if "moving_variance" in w.path:
            value = rng.uniform(0.5, 1.5, shape)
        elif "gamma" in w.path:
            value = 1 + 0.1 * rng.standard_normal(shape)
        else:
            value = 0.1 * rng.standard_normal(shape)
        w.assign(value.astype(np.float32))
    return model


def tiny_multi(seed=0):
    backbone = ViTPoseBackbone(image_size=(64, 48), **TINY_PP)
    pose = _randomize(ViTPosePP(backbone, datasets=DATASETS, deconv_filters=(8, 8)), seed)
    return ViTPosePPMultiDataset(pose)


def _images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 64, 48, 3)).astype(np.float32)


def test_single_dataset_batches_equal_the_single_dataset_model():
    model = tiny_multi()
    x = _images(3)
    for d, name in enumerate(DATASETS):
        single = model.pose_model.with_dataset(name)
        expected = _np(single(x))
        out = _np(model(multi_dataset_inputs(x, d)))
        k = single.num_keypoints[d]
        assert out.shape == (3, 16, 12, 17)
        np.testing.assert_allclose(out[..., :k], expected, atol=2e-5)
        np.testing.assert_array_equal(out[..., k:], 0.0)


def test_mixed_batch_routes_each_sample():
    model = tiny_multi()
    x = _images(4, seed=1)
    index = np.array([2, 0, 1, 0], np.int32)
    out = _np(model(multi_dataset_inputs(x, index)))
    for b, d in enumerate(index):
        single = model.pose_model.with_dataset(int(d))
        k = model.num_keypoints[d]
        np.testing.assert_allclose(out[b, ..., :k], _np(single(x[b : b + 1]))[0], atol=2e-5)


def test_loss_masks_to_own_keypoints_and_matches_single_dataset_mse():
    from keras_pose.losses import KeypointMSELoss

    model = tiny_multi()
    x = _images(2)
    rng = np.random.default_rng(3)
    target = rng.random((2, 16, 12, 16)).astype(np.float32)
    weights = rng.random((2, 16)).astype(np.float32)
    y = multi_dataset_targets(target, weights, 1, model.max_keypoints)
    pred = model(multi_dataset_inputs(x, 1))
    loss = MultiDatasetKeypointMSELoss(model.num_keypoints)
    single = model.pose_model.with_dataset("mpii")
    expected = KeypointMSELoss()({"heatmaps": target, "keypoint_weights": weights}, single(x))
    np.testing.assert_allclose(_np(loss(y, pred)), _np(expected), rtol=1e-5)


def test_bad_inputs():
    model = tiny_multi()
    with pytest.raises(ValueError, match="dataset_index"):
        model(_images(1))
    with pytest.raises(ValueError, match="ViTPosePP"):
        ViTPosePPMultiDataset(keras.Sequential([keras.layers.Dense(1)]))


def test_save_round_trip(tmp_path):
    model = tiny_multi()
    x = multi_dataset_inputs(_images(2), np.array([0, 2], np.int32))
    path = str(tmp_path / "multi.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ViTPosePPMultiDataset) and loaded.datasets == DATASETS
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="GradientTape (TensorFlow)")
def test_expert_and_head_gradients_are_zero_without_their_samples():
    import tensorflow as tf

    model = tiny_multi()
    x = _images(2)
    rng = np.random.default_rng(0)

    def grads(index):
        inputs = multi_dataset_inputs(x, np.array(index, np.int32))
        k = [model.num_keypoints[d] for d in index]
        y = {
            "heatmaps": rng.random((2, 16, 12, 17)).astype(np.float32),
            "keypoint_weights": np.stack([(np.arange(17) < kk).astype(np.float32) for kk in k]),
            "dataset_index": np.array(index, np.int32),
        }
        with tf.GradientTape() as tape:
            loss = MultiDatasetKeypointMSELoss(model.num_keypoints)(y, model(inputs, training=True))
        variables = model.trainable_variables
        return {v.path: g for v, g in zip(variables, tape.gradient(loss, variables))}

    def expert_rows(g, path_part):
        return [_np(value) for path, value in g.items() if path_part in path]

    for batch, absent, present in (([0, 2], 1, 0), ([1, 1], 0, 1)):
        g = grads(batch)
        head_absent = [v for p, v in g.items() if f"head_{DATASETS[absent]}/" in p]
        head_present = [v for p, v in g.items() if f"head_{DATASETS[present]}/" in p]
        assert head_absent and all(v is None or not np.any(_np(v)) for v in head_absent)
        assert all(v is not None for v in head_present) and any(np.any(_np(v)) for v in head_present)
        for kernel in expert_rows(g, "experts_kernel") + expert_rows(g, "experts_bias"):
            assert not np.any(kernel[absent])
            assert np.any(kernel[present])
        shared = expert_rows(g, "fc1/kernel")
        assert shared and all(np.any(v) for v in shared)
