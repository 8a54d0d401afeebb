"""ViTPose window-attention variants (the minimal decoder, a knowledge-token student) export to ONNX and TFLite
with float32 parity.

The window partition (6-D reshape / transpose), the cyclic shift (static
slices + concatenation), the masks and the pooled keys are all plain ops of
both formats; the exported heatmaps equal the Keras ones to float32 round-off.
"""

import numpy as np
import pytest

import keras

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

import keras_pose  # noqa: E402
from keras_pose.export import export_model, load_exported  # noqa: E402

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="export runs on the TensorFlow backend (KERAS_BACKEND=tensorflow)"
)

TINY = {"hidden_dim": 32, "num_layers": 2, "num_heads": 4, "mlp_dim": 64}
MODELS = {
    # 1/8 tokens (8 x 6), 3 x 4 windows (rows padded), pooling in every block, shift in the second; minimal decoder.
    "stride8_shifted_pooling_minimal": dict(
        backbone=dict(patch_stride=8, patch_padding=4, attention="shifted_pooling_window", window_size=(3, 4)),
        head=dict(decoder="minimal"),
    ),
    # 1/16 tokens (4 x 3), 2 x 2 windows (columns padded), plain then shifted windows; classic decoder.
    "stride16_shifted_classic": dict(
        backbone=dict(attention="shifted_window", window_size=2), head=dict(decoder="classic", deconv_filters=(16, 16))
    ),
    # A student with a frozen 64-wide knowledge token and its projection (knowledge-token distillation).
    "stride16_knowledge_token_simple": dict(
        backbone=dict(knowledge_token_dim=64, freeze_knowledge_token=True), head=dict(decoder="simple")
    ),
}


def _model(name):
    spec = MODELS[name]
    backbone = keras_pose.ViTPoseBackbone(image_size=(64, 48), **TINY, **spec["backbone"])
    model = keras_pose.ViTPose(backbone, **spec["head"])
    rng = np.random.default_rng(0)
    for w in model.weights:  # non-trivial relative bias tables and BN statistics too
        value = rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else 0.1 * rng.standard_normal(w.shape)
        w.assign(value.astype(np.float32))
    return model


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("fmt", ["onnx", pytest.param("tflite", marks=pytest.mark.slow)])  # tflite ~3 s each
def test_window_variants_float32_parity(name, fmt, tmp_path):
    model = _model(name)
    crops = np.random.default_rng(1).standard_normal((2, 64, 48, 3)).astype(np.float32)
    expected = np.asarray(keras.ops.convert_to_numpy(model(crops)))
    heatmaps = load_exported(export_model(model, tmp_path / f"{name}.{fmt}"))(crops)["heatmaps"]
    diff = float(np.abs(heatmaps - expected).max())
    scale = float(np.abs(expected).max())
    print(f"[{name} {fmt}] max abs diff {diff:.3g} (output max {scale:.3g})")
    assert heatmaps.shape == expected.shape == (2, 16, 12, 17)
    assert diff <= 1e-5 * max(1.0, scale)
