"""DropPath (stochastic depth) and its use in the ViTPose blocks (issue 14: the papers' recipes)."""

import numpy as np
import pytest

import keras

from keras_pose.layers import DropPath
from keras_pose.models.vitpose import ViTPoseBackbone


def test_drop_path_drops_whole_samples_and_keeps_the_expectation():
    layer = DropPath(0.25, seed=3)
    y = np.ones((4000, 3, 2), "float32")
    np.testing.assert_array_equal(np.asarray(layer(y)), y)  # inference: unchanged
    out = np.asarray(layer(y, training=True))
    per_sample = out.reshape(4000, -1)
    assert np.all((per_sample == 0).all(1) | np.isclose(per_sample, 1 / 0.75).all(1))  # all or nothing
    dropped = float((per_sample == 0).all(1).mean())
    assert 0.22 < dropped < 0.28
    assert abs(float(out.mean()) - 1.0) < 0.05
    assert not np.array_equal(out, np.asarray(layer(y, training=True)))  # the generator moves on
    np.testing.assert_array_equal(np.asarray(DropPath(0.0)(y, training=True)), y)
    clone = DropPath.from_config(layer.get_config())
    assert (clone.rate, clone.seed) == (0.25, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DropPath(1.0)


def test_vitpose_blocks_get_linearly_rising_rates_and_inference_is_unchanged():
    keras.utils.set_random_seed(0)
    config = dict(image_size=(64, 48), hidden_dim=32, num_layers=3, num_heads=2, mlp_dim=64)
    backbone = ViTPoseBackbone(drop_path_rate=0.2, **config)
    assert [b.drop_path_rate for b in backbone.transformer_layers] == pytest.approx([0.0, 0.1, 0.2])
    assert backbone.transformer_layers[0].drop_path is None
    restored = ViTPoseBackbone.from_config(backbone.get_config())
    assert restored.drop_path_rate == 0.2
    plain = ViTPoseBackbone(**config)
    by_path = {v.path: v for v in backbone.weights}
    for v in plain.weights:
        v.assign(by_path[v.path])
    x = np.random.default_rng(0).normal(size=(8, 64, 48, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(backbone(x)), np.asarray(plain(x)), rtol=0, atol=1e-6)
    trained = np.asarray(backbone(x, training=True))
    assert np.abs(trained - np.asarray(plain(x))).max() > 1e-3  # some samples lost a branch
