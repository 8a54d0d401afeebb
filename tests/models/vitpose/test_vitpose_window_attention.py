"""ViTPose attention flexibility: window / shifted / pooling attention, overlapping patches, minimal decoder.

Equalities checked: one window covering the map == global attention; every
window kind == an independent NumPy loop over windows (padding, shift and
pooling included); shifted windows == timm's Swin `WindowAttention` /
`SwinTransformerBlock` with the same weights; a global checkpoint's weights
load unchanged into a window model.
"""

import importlib.util
import os
import sys
import types

import numpy as np
import pytest

import keras

from keras_pose.models.vitpose import (
    ViTPose,
    ViTPoseAttention,
    ViTPoseBackbone,
    ViTPoseMinimalHead,
    ViTPoseWindowAttention,
    ViTPoseWindowTransformerBlock,
    pixel_shuffle,
    transfer_weights,
)
from keras_pose.models.vitpose.vitpose_window_attention import block_attention_types, relative_position_index

TINY = {"hidden_dim": 32, "num_layers": 2, "num_heads": 4, "mlp_dim": 64}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


def _rand(shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "moving_variance" in w.path:
            value = rng.uniform(0.5, 1.5, w.shape)
        elif "gamma" in w.path:
            value = 1 + 0.1 * rng.standard_normal(w.shape)
        else:
            value = 0.1 * rng.standard_normal(w.shape)
        w.assign(value.astype(np.float32))
    return model


def _window_layer(grid, window, shifted=False, pooling=False, dim=32, heads=4, seed=0):
    layer = ViTPoseWindowAttention(dim, heads, grid, window_size=window, shifted=shifted, pooling=pooling)
    layer.build((None, grid[0] * grid[1], dim))
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign((0.3 * rng.standard_normal(w.shape)).astype(np.float32))
    return layer


# ------------------------------------------------------- NumPy reference
def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_window_attention(x, layer):
    """Loop-over-windows float64 reference of `ViTPoseWindowAttention` (independent of its reshapes)."""
    hp, wp = layer.grid_size
    c, heads, hd = layer.hidden_dim, layer.num_heads, layer.head_dim
    (wh, ww), (sh, sw) = layer.window, layer.shift
    qkv_k, qkv_b = (np.float64(_np(w)) for w in layer.qkv.weights)
    proj_k, proj_b = (np.float64(_np(w)) for w in layer.proj.weights)
    table = np.float64(_np(layer.relative_position_bias_table))
    grid = np.float64(x).reshape(-1, hp, wp, c)
    # Un-shifted windows' pooled tokens (mean of the valid tokens).
    pooled = [grid[:, i:i + wh, j:j + ww].reshape(len(grid), -1, c).mean(1)
              for i in range(0, hp, wh) for j in range(0, wp, ww)]
    pooled = np.stack(pooled, 1)  # (B, P, C)
    out = np.zeros_like(grid)
    # Shifted map position (a, b) holds original token ((a + sh) % hp, (b + sw) % wp); pad to the window.
    ph, pw = -(-hp // wh) * wh, -(-wp // ww) * ww
    region = np.zeros((ph, pw), int)
    if sh or sw:
        rh = np.digitize(np.arange(ph), [ph - wh, ph - sh]) if sh else np.zeros(ph, int)
        rw = np.digitize(np.arange(pw), [pw - ww, pw - sw]) if sw else np.zeros(pw, int)
        region = rh[:, None] * 3 + rw[None, :]
    for a0 in range(0, ph, wh):
        for b0 in range(0, pw, ww):
            cells = [(a, b) for a in range(a0, a0 + wh) for b in range(b0, b0 + ww)]
            valid = [a < hp and b < wp for a, b in cells]
            orig = [((a + sh) % hp, (b + sw) % wp) if v else None for (a, b), v in zip(cells, valid)]
            tok = np.stack([grid[:, o[0], o[1]] if o else np.zeros((len(grid), c)) for o in orig], 1)
            qkv = tok @ qkv_k + qkv_b
            q, k, v = (qkv[..., i * c:(i + 1) * c].reshape(len(grid), -1, heads, hd).transpose(0, 2, 1, 3)
                       for i in range(3))
            scores = q @ k.transpose(0, 1, 3, 2) * hd**-0.5
            for i, (ai, bi) in enumerate(cells):
                for j, (aj, bj) in enumerate(cells):
                    index = (ai - aj + wh - 1) * (2 * ww - 1) + (bi - bj + ww - 1)
                    scores[:, :, i, j] += table[index]
                    if region[ai, bi] != region[aj, bj] or not valid[j]:
                        scores[:, :, i, j] += -100.0
            if layer.pooling:
                pkv = pooled @ qkv_k + qkv_b
                pk, pv = (pkv[..., i * c:(i + 1) * c].reshape(len(grid), -1, heads, hd).transpose(0, 2, 1, 3)
                          for i in (1, 2))
                scores = np.concatenate([scores, q @ pk.transpose(0, 1, 3, 2) * hd**-0.5], -1)
                v = np.concatenate([v, pv], 2)
            o = (_softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(len(grid), -1, c)
            for n, t in enumerate(orig):
                if t:
                    out[:, t[0], t[1]] = o[:, n]
    return (out.reshape(len(grid), hp * wp, c) @ proj_k + proj_b).astype(np.float32)


@pytest.mark.parametrize(
    "grid,window,shifted,pooling",
    [
        ((6, 4), (2, 2), False, False),
        ((6, 4), (4, 4), False, False),  # padded rows, a window wider than the map
        ((6, 4), (2, 2), True, False),
        ((5, 7), (3, 3), True, False),  # padded and shifted
        ((6, 4), (2, 2), False, True),
        ((5, 7), (3, 3), True, True),
    ],
)
def test_window_kinds_match_numpy_loop(grid, window, shifted, pooling):
    layer = _window_layer(grid, window, shifted, pooling)
    x = _rand((2, grid[0] * grid[1], 32), seed=1)
    diff = np.abs(_np(layer(x)) - numpy_window_attention(x, layer)).max()
    print(f"[{grid} window {window} shifted={shifted} pooling={pooling}] max abs diff vs NumPy {diff:.2e}")
    assert diff < 2e-5


def test_relative_position_index_layout():
    index = relative_position_index((2, 3))
    assert index.shape == (6, 6) and index.min() == 0 and index.max() == 3 * 5 - 1
    assert index[0, 0] == (2 - 1) * 5 + (3 - 1)  # (dy, dx) = (0, 0): the table's centre


# --------------------------------------------------- global equivalence
def test_one_window_covering_the_map_equals_global_attention():
    grid, dim = (4, 3), 32
    window = _window_layer(grid, (4, 3))
    window.relative_position_bias_table.assign(np.zeros(window.relative_position_bias_table.shape, np.float32))
    global_attention = ViTPoseAttention(dim, 4)
    global_attention.build((None, 12, dim))
    for src, dst in zip(window.qkv.weights + window.proj.weights, global_attention.weights):
        dst.assign(src)
    x = _rand((2, 12, dim), seed=2)
    diff = np.abs(_np(window(x)) - _np(global_attention(x))).max()
    print(f"one window == global attention: max abs diff {diff:.2e}")
    assert diff < 1e-5
    # Larger windows clamp to the map: still global attention.
    big = _window_layer(grid, (16, 16))
    assert big.window == (4, 3) and big.shift == (0, 0)


def test_global_backbone_weights_load_into_window_backbone():
    source = _randomize(ViTPoseBackbone(image_size=(64, 48), **TINY))
    x = _rand((1, 64, 48, 3), seed=3)
    target = source.with_attention("shifted_window", window_size=(4, 3))  # one window = the 4 x 3 map
    kinds = [type(b.attention).__name__ for b in target.transformer_layers]
    assert kinds == ["ViTPoseWindowAttention"] * 2
    diff = np.abs(_np(target(x)) - _np(source(x))).max()
    print(f"global weights in a one-window backbone: max abs diff {diff:.2e}")
    assert diff < 1e-5
    small = ViTPoseBackbone(image_size=(64, 48), attention="window", window_size=2, **TINY)
    kept = transfer_weights(source, small)
    assert sorted(kept) == [f"transformer_layer_{i}/attention/relative_position_bias_table" for i in range(2)]
    for w in small.weights:
        if "relative_position_bias_table" not in w.path:
            np.testing.assert_array_equal(_np(w), _np(next(s for s in source.weights if s.path == w.path)))
    with pytest.raises(ValueError, match="differ in more than the attention"):
        transfer_weights(source, ViTPoseBackbone(image_size=(64, 48), **{**TINY, "mlp_dim": 32}))


def test_converted_checkpoint_loads_into_window_model(tmp_path):
    torch = pytest.importorskip("torch")
    from pose_testing.tiny_checkpoints import make_tiny_state_dict, save_original_checkpoint

    from keras_pose.conversion.vitpose_converter import convert

    path = tmp_path / "tiny.pth"
    save_original_checkpoint(path, make_tiny_state_dict())
    model = convert(str(path), num_heads=4)
    windowed = model.with_attention("shifted_pooling_window", window_size=2)
    assert type(windowed) is type(model) and windowed.backbone.attention == "shifted_pooling_window"
    source = {w.path: _np(w) for w in model.weights}
    new = [w.path for w in windowed.weights if w.path not in source]
    assert new == [f"transformer_layer_{i}/attention/relative_position_bias_table" for i in range(2)]
    for w in windowed.weights:
        if w.path in source:
            np.testing.assert_array_equal(_np(w), source[w.path])
    assert torch is not None
    x = _rand((1, *model.image_size, 3), seed=4)
    assert _np(windowed(x)).shape == _np(model(x)).shape


# ------------------------------------------------------------- timm Swin
def _import_timm_swin():
    """timm's Swin module without torchvision (timm imports it at package level; the Swin math does not use it).

    torchvision is not a dependency here (a torchvision wheel would pull its own torch): without it, the
    `timm`, `timm.models` and `timm.data` packages are entered without their `__init__` (which import
    every model and the data pipeline) and `torchvision.ops.misc.FrozenBatchNorm2d` is a placeholder class
    that the Swin code never calls; sys.modules is restored afterwards.
    """
    pytest.importorskip("torch")
    spec = importlib.util.find_spec("timm")
    if spec is None:
        pytest.skip("timm is not installed (pip install timm --no-deps; the `bench` extra)")
    if importlib.util.find_spec("torchvision") is not None:
        from timm.models import swin_transformer

        return swin_transformer
    import torch

    root = os.path.dirname(spec.origin)
    saved = {k: v for k, v in sys.modules.items() if k == "timm" or k.startswith(("timm.", "torchvision"))}

    def package(name, path):
        module = types.ModuleType(name)
        module.__path__ = [path]
        sys.modules[name] = module
        return module

    try:
        misc = types.ModuleType("torchvision.ops.misc")
        misc.FrozenBatchNorm2d = type("FrozenBatchNorm2d", (torch.nn.Module,), {})
        package("torchvision", "/nonexistent").ops = package("torchvision.ops", "/nonexistent")
        sys.modules["torchvision.ops.misc"] = misc
        timm = package("timm", root)
        timm.__version__ = importlib.import_module("timm.version").__version__
        package("timm.models", os.path.join(root, "models"))
        data = package("timm.data", os.path.join(root, "data"))
        constants = importlib.import_module("timm.data.constants")
        data.__dict__.update({k: v for k, v in vars(constants).items() if k.isupper()})
        return importlib.import_module("timm.models.swin_transformer")
    finally:
        for name in [k for k in sys.modules if k == "timm" or k.startswith(("timm.", "torchvision"))]:
            if name not in saved:
                del sys.modules[name]
        sys.modules.update(saved)


def _copy_to_timm(block, ours, torch):
    """Our block's / attention's weights into timm's (torch Linear weight = kernel^T)."""
    attn = ours.attention if isinstance(ours, ViTPoseWindowTransformerBlock) else ours
    theirs = block.attn if hasattr(block, "attn") else block
    pairs = [(theirs.qkv, attn.qkv), (theirs.proj, attn.proj)]
    if hasattr(block, "mlp"):
        pairs += [(block.mlp.fc1, ours.mlp.fc1), (block.mlp.fc2, ours.mlp.fc2)]
        for t, k in ((block.norm1, ours.norm1), (block.norm2, ours.norm2)):
            t.weight.data = torch.from_numpy(_np(k.gamma))
            t.bias.data = torch.from_numpy(_np(k.beta))
    for t, k in pairs:
        t.weight.data = torch.from_numpy(_np(k.kernel).T.copy())
        t.bias.data = torch.from_numpy(_np(k.bias))
    theirs.relative_position_bias_table.data = torch.from_numpy(_np(attn.relative_position_bias_table))


@pytest.mark.parametrize("grid,window", [((8, 8), (4, 4)), ((8, 12), (4, 6))])
@pytest.mark.parametrize("shifted", [True, False])
def test_window_attention_equals_timm_swin(grid, window, shifted):
    swin = _import_timm_swin()
    import torch

    dim, heads = 32, 4
    shift = (window[0] // 2, window[1] // 2) if shifted else 0
    block = swin.SwinTransformerBlock(dim, grid, num_heads=heads, window_size=window, shift_size=shift,
                                      mlp_ratio=2.0).eval()
    ours = ViTPoseWindowTransformerBlock(dim, heads, 2 * dim, grid_size=grid, window_size=window,
                                         attention_type="shifted_window" if shifted else "window",
                                         layer_norm_epsilon=1e-5)
    ours.build((None, grid[0] * grid[1], dim))
    _randomize(ours, seed=5)
    ours.attention.relative_position_bias_table.assign(_rand(ours.attention.relative_position_bias_table.shape, 6))
    _copy_to_timm(block, ours, torch)
    x = _rand((2, *grid, dim), seed=7)
    tokens = x.reshape(2, -1, dim)
    with torch.no_grad():
        attention_ref = block._attn(torch.from_numpy(x)).numpy().reshape(2, -1, dim)
        block_ref = block(torch.from_numpy(x)).numpy().reshape(2, -1, dim)
    attention_diff = np.abs(_np(ours.attention(tokens)) - attention_ref).max()
    block_diff = np.abs(_np(ours(tokens)) - block_ref).max()
    print(f"[timm Swin {grid} window {window} shifted={shifted}] attention {attention_diff:.2e}, "
          f"block {block_diff:.2e} max abs diff")
    assert attention_diff < 1e-5 and block_diff < 1e-5


# ------------------------------------------------- backbone, decoder, saving
def test_attention_settings_per_block():
    assert block_attention_types("shifted_pooling_window", 4) == [
        "pooling_window", "shifted_pooling_window", "pooling_window", "shifted_pooling_window"]
    assert block_attention_types("window", 2) == ["window", "window"]
    assert block_attention_types(["global", "shifted_window"], 2) == ["global", "shifted_window"]
    with pytest.raises(ValueError, match="attention must be one of"):
        block_attention_types("local", 2)
    with pytest.raises(ValueError, match="3 block types but the backbone has 2"):
        ViTPoseBackbone(image_size=(64, 48), attention=["window"] * 3, **TINY)
    with pytest.raises(ValueError, match="window_size"):
        ViTPoseWindowAttention(32, 4, (4, 3), window_size=0)


def test_overlapping_patches_give_an_eighth_map():
    backbone = ViTPoseBackbone(image_size=(256, 192), patch_stride=8, patch_padding=4, attention="window",
                               **{**TINY, "num_layers": 1})
    assert backbone.grid_size == (32, 24)
    assert backbone.patch_embedding.position_embedding.shape == (1, 1 + 32 * 24, 32)
    assert tuple(backbone.patch_embedding.projection.kernel.shape) == (16, 16, 3, 32)


def test_pixel_shuffle_matches_torch():
    torch = pytest.importorskip("torch")
    x = _rand((2, 3, 4, 5 * 9), seed=8)
    ref = torch.nn.functional.pixel_shuffle(torch.from_numpy(x.transpose(0, 3, 1, 2)), 3).numpy()
    np.testing.assert_array_equal(_np(pixel_shuffle(x, 3, 5)), ref.transpose(0, 2, 3, 1))


def _minimal_model(stride):
    backbone = ViTPoseBackbone(image_size=(64, 48), patch_stride=stride, patch_padding=2 if stride == 16 else 4,
                               attention="shifted_pooling_window", window_size=4, **TINY)
    return ViTPose(backbone, decoder="minimal", keypoint_spec="mpii")


@pytest.mark.parametrize("stride", [16, 8])
def test_minimal_decoder_shapes(stride):
    model = _minimal_model(stride)
    assert isinstance(model.head, ViTPoseMinimalHead) and model.head.upsample == stride // 4
    assert _np(model(_rand((2, 64, 48, 3), seed=9))).shape == (2, 16, 12, 16)


@pytest.mark.slow  # a TF fit, ~7 s
def test_minimal_decoder_fit():
    model = _minimal_model(8)
    x = _rand((2, 64, 48, 3), seed=9)
    before = _np(model.head.projection.kernel)
    y = {"heatmaps": np.abs(_rand((2, 16, 12, 16), seed=10)), "keypoint_weights": np.ones((2, 16), np.float32)}
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    losses = model.fit(x, y, epochs=2, batch_size=2, verbose=0).history["loss"]
    assert len(losses) == 2 and np.isfinite(losses).all()
    assert not np.allclose(_np(model.head.projection.kernel), before)
    assert np.isfinite(_np(model(x))).all()


def test_window_model_config_and_keras_round_trip(tmp_path):
    backbone = ViTPoseBackbone(image_size=(64, 48), patch_stride=8, patch_padding=4,
                               attention=["shifted_pooling_window", "window"], window_size=(4, 3), **TINY)
    model = _randomize(ViTPose(backbone, decoder="minimal"))
    x = _rand((2, 64, 48, 3), seed=11)
    expected = _np(model(x))
    config = model.backbone.get_config()
    assert config["attention"] == ["shifted_pooling_window", "window"]
    assert config["window_size"] == [4, 3] and config["patch_stride"] == 8
    clone = ViTPoseBackbone.from_config(config)
    assert clone.get_config() == config
    path = tmp_path / "window.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is ViTPose and loaded.decoder == "minimal"
    np.testing.assert_array_equal(_np(loaded(x)), expected)


def test_vitpose_plus_with_attention_keeps_experts_and_heads():
    from keras_pose.models.vitpose import ViTPosePP, with_attention

    backbone = ViTPoseBackbone(image_size=(64, 48), num_experts=6, part_features=8, **TINY)
    model = _randomize(ViTPosePP(backbone, dataset="ap10k", deconv_filters=(16, 16)))
    windowed = with_attention(model, "window", window_size=(4, 3))
    assert type(windowed) is ViTPosePP and windowed.backbone.attention == "window"
    x = _rand((1, 64, 48, 3), seed=12)
    diff = np.abs(_np(windowed(x)) - _np(model(x))).max()  # one window covering the map, zero bias
    assert diff < 1e-5, diff


def test_train_config_backbone_and_head_arguments():
    from keras_pose.errors import TrainConfigError
    from keras_pose.training.model_builder import validate_architecture_args

    args = {"attention": "shifted_pooling_window", "window_size": 8, "patch_stride": 8, "patch_padding": 4}
    assert validate_architecture_args(args, "ViTPose", "backbone") == args
    assert validate_architecture_args({"decoder": "minimal"}, "ViTPose", "head") == {"decoder": "minimal"}
    with pytest.raises(TrainConfigError, match="model.backbone.attention"):
        validate_architecture_args({"attention": "local"}, "ViTPose", "backbone")
    with pytest.raises(TrainConfigError, match="model.backbone.patch_stride"):
        validate_architecture_args({"patch_stride": 0}, "ViTPose", "backbone")
