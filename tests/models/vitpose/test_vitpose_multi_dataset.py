"""ViTPose++ multi-dataset training: per-sample routing equals the single-dataset graphs; gradients are routed."""

import numpy as np
import pytest

import keras

from pose_testing.vitpose_models import randomize_weights
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


_randomize = randomize_weights


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


def test_add_dataset_copies_the_chosen_expert_and_head():
    from keras_pose.models.vitpose.vitpose_add_dataset import add_dataset

    model = tiny_multi()
    x = _images(2)
    grown = model.pose_model.add_dataset("mine", "ap10k", init_from="coco")
    assert grown.datasets == DATASETS + ["mine"] and grown.dataset == "mine"
    assert grown.backbone.num_experts == 4 and grown.keypoint_spec.name == "ap10k"
    # Same keypoint count as coco: the new dataset starts as coco's expert and head.
    np.testing.assert_array_equal(_np(grown(x)), _np(model.pose_model.with_dataset("coco")(x)))
    for name in DATASETS:  # the old datasets are unchanged
        np.testing.assert_array_equal(_np(grown.with_dataset(name)(x)), _np(model.pose_model.with_dataset(name)(x)))
    with pytest.raises(ValueError, match="already exists"):
        add_dataset(model.pose_model, "coco", "coco")
    # Another keypoint count: all but the final convolution is copied.
    other = add_dataset(model.pose_model, "hands", "mpii", init_from="ap10k")
    src, dst = model.pose_model.heads.heads[2], other.heads.heads[3]
    assert dst.final_conv.kernel.shape[-1] == 16
    np.testing.assert_array_equal(_np(dst.deconvs[0].kernel), _np(src.deconvs[0].kernel))
    from keras_pose.models.vitpose.vitpose_add_dataset import freeze_for_dataset

    trainable = {v.path for v in freeze_for_dataset(other, "hands", train_shared=True).trainable_weights}
    assert any("fc1" in p for p in trainable) and any("head_hands" in p for p in trainable)
    assert not any("head_coco" in p for p in trainable)


@pytest.mark.slow
def test_fine_tune_new_dataset_with_the_rest_frozen():
    from keras_pose.models.vitpose.vitpose_add_dataset import add_dataset, freeze_for_dataset

    base = tiny_multi().pose_model
    pose = freeze_for_dataset(add_dataset(base, "mine", "ap10k", init_from="coco"), "mine")
    multi = ViTPosePPMultiDataset(pose)
    frozen_before = {v.path: _np(v) for v in multi.non_trainable_weights}
    trainable = {v.path for v in multi.trainable_weights}
    assert any("head_mine" in p for p in trainable) and not any("head_coco" in p for p in trainable)
    assert not any("fc1" in p or "attention" in p for p in trainable)
    experts_before = [_np(b.mlp.experts_kernel) for b in pose.backbone.transformer_layers]
    multi.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = multi_dataset_inputs(_images(2), 3)
    rng = np.random.default_rng(0)
    y = multi_dataset_targets(rng.random((2, 16, 12, 17)).astype(np.float32), np.ones((2, 17), np.float32), 3, 17)
    losses = [float(multi.train_on_batch(x, y, return_dict=True)["loss_mine"]) for _ in range(4)]
    assert losses[-1] < losses[0]
    for v in multi.non_trainable_weights:
        if "moving_" not in v.path:
            np.testing.assert_array_equal(_np(v), frozen_before[v.path])
    for block, before in zip(pose.backbone.transformer_layers, experts_before):
        after = _np(block.mlp.experts_kernel)
        np.testing.assert_array_equal(after[:3], before[:3])  # other experts: zero gradient, Adam leaves them
        assert np.any(after[3] != before[3])


def test_training_mode_batch_norm_sees_only_each_heads_samples():
    model = tiny_multi()
    x = _images(5, seed=2)
    index = np.array([0, 2, 0, 2, 0], np.int32)
    heads = model.pose_model.heads.heads
    moving = {d: _np(heads[d].norms[0].moving_mean) for d in range(3)}
    out = _np(model(multi_dataset_inputs(x, index), training=True))
    np.testing.assert_array_equal(_np(heads[1].norms[0].moving_mean), moving[1])  # no mpii sample: unchanged
    assert np.any(_np(heads[0].norms[0].moving_mean) != moving[0])
    for d in (0, 2):
        rows = np.flatnonzero(index == d)
        single = model.pose_model.with_dataset(DATASETS[d])
        np.testing.assert_allclose(out[rows], _np(single(x[rows], training=True)), atol=2e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="GradientTape (TensorFlow)")
def test_no_gradient_crosses_datasets_in_a_mixed_batch():
    import tensorflow as tf

    model = tiny_multi()
    inputs = multi_dataset_inputs(_images(2), np.array([0, 2], np.int32))
    with tf.GradientTape() as tape:
        out = model(inputs, training=True)
        loss = tf.reduce_mean(tf.square(out[1]))  # the ap10k sample's heatmaps only
    variables = model.trainable_variables
    grads = {v.path: g for v, g in zip(variables, tape.gradient(loss, variables))}
    for path, g in grads.items():
        if "experts_kernel" in path or "experts_bias" in path:
            g = _np(g)
            assert not np.any(g[0]) and not np.any(g[1]) and np.any(g[2])
        if "head_coco/" in path:
            assert g is None or not np.any(_np(g))


def test_fit_reports_each_datasets_loss():
    model = tiny_multi()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    index = np.array([0, 2, 0, 0], np.int32)
    x = multi_dataset_inputs(_images(4), index)
    y = multi_dataset_targets(rng.random((4, 16, 12, 17)).astype(np.float32), np.ones((4, 17), np.float32), index, 17)
    logs = model.test_on_batch(x, y, return_dict=True)
    per_sample = _np(MultiDatasetKeypointMSELoss(model.num_keypoints).per_sample(y, model(x)))
    np.testing.assert_allclose(logs["loss_coco"], per_sample[index == 0].mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["loss_ap10k"], per_sample[1], rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], per_sample.mean(), rtol=1e-5)
    assert logs["loss_mpii"] == 0.0


@pytest.mark.parametrize("extra", [{"attention": "shifted_window", "window_size": 2}, {"knowledge_token_dim": 32}])
def test_window_attention_and_knowledge_token_backbones_route_too(extra):
    backbone = ViTPoseBackbone(image_size=(64, 48), **TINY_PP, **extra)
    model = ViTPosePPMultiDataset(_randomize(ViTPosePP(backbone, datasets=DATASETS, deconv_filters=(8, 8))))
    x = _images(2, seed=4)
    index = np.array([1, 2], np.int32)
    out = _np(model(multi_dataset_inputs(x, index)))
    for b, d in enumerate(index):
        k = model.num_keypoints[d]
        expected = _np(model.pose_model.with_dataset(int(d))(x[b : b + 1]))[0]
        np.testing.assert_allclose(out[b, ..., :k], expected, atol=2e-5)
