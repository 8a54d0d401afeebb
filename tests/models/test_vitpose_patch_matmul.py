"""The JAX patch embedding (space-to-depth + matmul) equals the layer's own convolution."""

import numpy as np

from keras import ops

from keras_pose.models.vitpose.vitpose_layers import ViTPosePatchEmbedding


def test_patch_matmul_equals_the_projection_convolution():
    layer = ViTPosePatchEmbedding(8, grid_size=(4, 3), patch_size=16, patch_padding=2)
    x = np.random.default_rng(0).standard_normal((2, 64, 48, 3)).astype("float32")
    layer.build(x.shape)
    rng = np.random.default_rng(1)
    layer.projection.bias.assign(rng.standard_normal(8).astype("float32"))
    padded = layer.padding(x)
    expected = ops.convert_to_numpy(layer.projection(padded))
    got = ops.convert_to_numpy(layer._patches_as_matmul(padded))
    assert got.shape == (2, 4, 3, 8)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    full = ops.convert_to_numpy(layer(x))
    pos = ops.convert_to_numpy(layer.position_embedding)
    np.testing.assert_allclose(full, expected.reshape(2, 12, 8) + pos[:, 1:] + pos[:, :1], rtol=1e-4, atol=1e-5)
