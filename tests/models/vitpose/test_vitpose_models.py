"""ViTPose / ViTPose++ models: shapes, serialisation, experts, mixed precision, converters."""

import numpy as np
import pytest

import keras

from pose_testing.vitpose_models import randomize_weights
from keras_pose.models.vitpose import (
    VITPOSE_VARIANTS,
    ViTPose,
    ViTPoseBackbone,
    ViTPosePP,
    exact_gelu,
)
from keras_pose.preprocessing import legacy_decoding, resolve_top_down_settings

TINY = {"hidden_dim": 32, "num_layers": 2, "num_heads": 4, "mlp_dim": 64}
TINY_PP = {**TINY, "num_experts": 6, "part_features": 8}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


def _images(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


_randomize = randomize_weights


def tiny_pp(image_size=(64, 48), dataset=None, decoder="classic", seed=0):
    backbone = ViTPoseBackbone(image_size=image_size, **TINY_PP)
    return _randomize(ViTPosePP(backbone, dataset=dataset, decoder=decoder, deconv_filters=(16, 16)), seed)


# ------------------------------------------------------------------ shapes
def test_exact_gelu_matches_erf_gelu():
    import math

    x = np.linspace(-6, 6, 101).astype(np.float32)
    ref = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    np.testing.assert_allclose(_np(exact_gelu(x)), ref, atol=1e-6)  # float32 1 + erf(x) cancels for x << 0
    torch = pytest.importorskip("torch")
    reference = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()  # torch computes the same formula
    np.testing.assert_allclose(_np(exact_gelu(x)), reference, atol=1e-6)


def test_vitpose_small_shapes():
    backbone = ViTPoseBackbone(**VITPOSE_VARIANTS["ViTPose-S"])
    model = ViTPose(backbone)
    x = _images((1, 256, 192, 3))
    assert model.image_size == (256, 192)
    assert tuple(_np(backbone(x)).shape) == (1, 16, 12, 384)
    assert tuple(_np(model(x)).shape) == (1, 64, 48, 17)
    assert backbone.patch_embedding.position_embedding.shape == (1, 193, 384)
    # 12 blocks of (2 LN + qkv + proj + fc1 + fc2) + patch embedding + final LN
    assert len(backbone.transformer_layers) == 12
    assert model.decoding["codec"]["heatmap_size"] == [64, 48]


@pytest.mark.parametrize("image_size", [(128, 96), (192, 192), (256, 192)])
@pytest.mark.parametrize("decoder", ["classic", "simple"])
def test_tiny_any_input_size(image_size, decoder):
    backbone = ViTPoseBackbone(image_size=image_size, **TINY)
    model = ViTPose(backbone, decoder=decoder, keypoint_spec="mpii")
    h, w = image_size
    out = _np(model(_images((2, h, w, 3))))
    assert out.shape == (2, h // 4, w // 4, 16)
    assert out.dtype == np.float32
    assert backbone.grid_size == (h // 16, w // 16)
    assert isinstance(model.head, keras.layers.Layer) and model.head.name == "head"


def test_pos_embed_modes():
    add = ViTPoseBackbone(image_size=(64, 48), pos_embed_cls_slot="add", **TINY)
    none = ViTPoseBackbone(image_size=(64, 48), pos_embed_cls_slot="none", **TINY)
    assert add.patch_embedding.position_embedding.shape == (1, 13, 32)
    assert none.patch_embedding.position_embedding.shape == (1, 12, 32)
    _randomize(add)
    for src, dst in zip(add.weights, none.weights):
        if "position_embedding" in src.path:
            table = _np(src)
            dst.assign(table[:, 1:] + table[:, :1])
        else:
            dst.assign(src)
    x = _images((1, 64, 48, 3))
    np.testing.assert_allclose(_np(add(x)), _np(none(x)), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="decoder"):
        ViTPose(ViTPoseBackbone(image_size=(64, 48), **TINY), decoder="fancy")
    with pytest.raises(ValueError, match="num_keypoints"):
        ViTPose(ViTPoseBackbone(image_size=(64, 48), **TINY), num_keypoints=14, keypoint_spec="coco")
    with pytest.raises(ValueError, match="experts"):
        ViTPosePP(ViTPoseBackbone(image_size=(64, 48), **TINY))
    with pytest.raises(ValueError, match="dataset_index"):
        ViTPoseBackbone(image_size=(64, 48), dataset_index=6, **TINY_PP)
    with pytest.raises(ValueError, match="Unknown dataset"):
        tiny_pp().with_dataset("crowdpose")


# ----------------------------------------------------------- serialisation
def test_vitpose_config_and_keras_round_trip(tmp_path):
    model = _randomize(ViTPose(ViTPoseBackbone(image_size=(64, 48), **TINY), decoder="simple"))
    x = _images((2, 64, 48, 3))
    expected = _np(model(x))
    config = model.get_config()
    assert config["decoder"] == "simple" and config["num_keypoints"] == 17
    clone = ViTPose.from_config(config)
    assert clone.backbone.get_config() == model.backbone.get_config()
    assert clone.decoding == model.decoding and clone.preprocessing == model.preprocessing
    path = tmp_path / "vitpose.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is ViTPose
    np.testing.assert_array_equal(_np(loaded(x)), expected)


def test_vitpose_pp_config_and_keras_round_trip(tmp_path):
    model = tiny_pp(dataset="mpii")
    x = _images((2, 64, 48, 3))
    expected = _np(model(x))
    assert expected.shape == (2, 16, 12, 16)
    config = model.get_config()
    assert config["dataset"] == "mpii" and config["backbone"]["config"]["dataset_index"] == 2
    clone = ViTPosePP.from_config(config)
    assert clone.dataset == "mpii" and clone.keypoint_spec.num_keypoints == 16
    assert len(clone.weights) == len(model.weights)
    path = tmp_path / "vitpose_pp.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is ViTPosePP and loaded.dataset == "mpii"
    np.testing.assert_array_equal(_np(loaded(x)), expected)
    # every head and expert survived, not only the active ones
    for name in ("coco", "coco_wholebody"):
        np.testing.assert_array_equal(_np(loaded.with_dataset(name)(x)), _np(model.with_dataset(name)(x)))


def _load_preset(cls, directory, **kwargs):
    try:
        import keras_pose.preset_loading  # noqa: F401
    except ImportError:
        import keras_hub

        return keras_hub.models.Task.from_preset.__func__(cls, str(directory), **kwargs)
    return cls.from_preset(str(directory), **kwargs)


def test_vitpose_pp_preset_round_trip_with_dataset_override(tmp_path):
    model = tiny_pp()
    x = _images((1, 64, 48, 3))
    model.save_to_preset(str(tmp_path / "preset"))
    loaded = _load_preset(ViTPosePP, tmp_path / "preset", dataset="ap10k")
    assert loaded.dataset == "ap10k" and loaded.keypoint_spec.name == "ap10k"
    np.testing.assert_array_equal(_np(loaded(x)), _np(model.with_dataset("ap10k")(x)))


def test_dataset_decodings_follow_the_active_dataset():
    msra = {
        "codec": {"type": "MSRAHeatmap", "input_size": [64, 48], "heatmap_size": [16, 12], "sigma": 2.0},
        "flip_test": True,
        "shift_heatmap": True,
        "padding": 1.25,
    }
    backbone = ViTPoseBackbone(image_size=(64, 48), **TINY_PP)
    model = ViTPosePP(backbone, deconv_filters=(16, 16), dataset_decodings={"aic": msra})
    assert model.decoding["codec"]["type"] == "UDPHeatmap" and model.decoding["warp"] == "udp"
    # The old-style dict as the task holds it: full codec config, the warp its codec implies.
    msra = legacy_decoding(*resolve_top_down_settings((64, 48), (16, 12), decoding=msra))
    assert msra["codec"]["unbiased"] is False and msra["warp"] == "standard"
    assert model.with_dataset("aic").decoding == msra
    assert model.with_dataset("mpii").decoding == model.decoding
    assert model.fuse_experts("aic").decoding == msra
    clone = ViTPosePP.from_config({**model.get_config(), "dataset": "aic"})
    assert clone.decoding == msra and clone.keypoint_spec.name == "aic"


# ---------------------------------------------------------------- experts
def test_with_dataset_shares_weights():
    model = tiny_pp()
    x = _images((1, 64, 48, 3))
    shapes = {}
    for name in model.datasets:
        view = model.with_dataset(name)
        assert view.dataset == name and view.keypoint_spec.name == name
        shapes[name] = _np(view(x)).shape[-1]
        assert {id(w) for w in view.weights} == {id(w) for w in model.weights}
    assert shapes == {"coco": 17, "aic": 14, "mpii": 16, "ap10k": 17, "apt36k": 17, "coco_wholebody": 133}
    assert model.with_dataset("coco") is model
    assert model.with_dataset("ap10k") is model.with_dataset(3)  # cached view
    # experts differ per dataset: same-K heads with the same head weights still differ
    view = model.with_dataset("ap10k")
    before = _np(view(x))
    kernel = model.backbone.transformer_layers[0].mlp.experts_kernel
    kernel.assign(_np(kernel) * 2.0)  # a change through the original shows in the view
    assert np.abs(_np(view(x)) - before).max() > 0


@pytest.mark.parametrize("dataset", ["coco", "aic", "ap10k", "coco_wholebody"])
def test_fuse_experts_parity(dataset):
    model = tiny_pp(seed=3)
    fused = model.fuse_experts(dataset)
    assert type(fused) is ViTPose
    assert fused.backbone.num_experts == 0
    assert fused.keypoint_spec.name == dataset
    assert fused.backbone.transformer_layers[0].mlp.fc2.kernel.shape == (64, 32)
    x = _images((2, 64, 48, 3), seed=1)
    diff = np.abs(_np(fused(x)) - _np(model.with_dataset(dataset)(x))).max()
    assert diff <= 1e-5, diff


def test_predict_keypoints_per_dataset():
    model = tiny_pp()
    image = (np.random.default_rng(0).uniform(0, 255, (120, 90, 3))).astype(np.uint8)
    boxes = np.array([[10, 10, 50, 90]], np.float32)
    result = model.predict_keypoints(image, boxes, dataset="aic")
    assert np.asarray(result.keypoints).shape == (1, 14, 2)
    result = model.predict_keypoints(image, boxes)
    assert np.asarray(result.keypoints).shape == (1, 17, 2)


# ------------------------------------------------- mixed precision, jit, fit
@pytest.fixture
def mixed_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(previous)


def _fit_two_steps(model, jit_compile):
    b = 2
    x = _images((b, *model.image_size, 3))
    h, w = model.image_size[0] // 4, model.image_size[1] // 4
    k = model.keypoint_spec.num_keypoints
    y = {
        "heatmaps": np.random.default_rng(1).uniform(0, 1, (b, h, w, k)).astype(np.float32),
        "keypoint_weights": np.ones((b, k), np.float32),
    }
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=b, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    return losses


@pytest.mark.slow  # XLA-compiled fits: `python -m pytest -m slow`
@pytest.mark.parametrize("decoder", ["classic", "simple"])
def test_mixed_bfloat16_jit_forward_and_fit(mixed_bfloat16, decoder):
    model = ViTPose(ViTPoseBackbone(image_size=(64, 48), **TINY), decoder=decoder, deconv_filters=(16, 16))
    assert model.backbone.compute_dtype == "bfloat16"
    assert model.backbone.transformer_layers[0].mlp.fc1.kernel.dtype == "float32"
    x = _images((2, 64, 48, 3))
    out = model(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert np.isfinite(_np(out)).all()
    _fit_two_steps(model, jit_compile=True)
    predicted = model.predict(x, verbose=0)
    assert predicted.dtype == np.float32 and np.isfinite(predicted).all()


@pytest.mark.slow
def test_mixed_float16_pp_fit():
    backbone = ViTPoseBackbone(image_size=(64, 48), dtype="mixed_float16", **TINY_PP)
    model = ViTPosePP(backbone, dataset="aic", deconv_filters=(16, 16))
    out = model(_images((1, 64, 48, 3)))
    assert keras.backend.standardize_dtype(out.dtype) == "float32" and tuple(out.shape) == (1, 16, 12, 14)
    _fit_two_steps(model, jit_compile=False)


@pytest.mark.slow
def test_float32_jit_fit_changes_weights():
    model = ViTPose(ViTPoseBackbone(image_size=(64, 48), **TINY), decoder="classic", deconv_filters=(16, 16))
    before = _np(model.backbone.transformer_layers[0].mlp.fc1.kernel).copy()
    _fit_two_steps(model, jit_compile=True)
    assert np.abs(_np(model.backbone.transformer_layers[0].mlp.fc1.kernel) - before).max() > 0


# ------------------------------------------------------------- converters
def _layouts(sd):
    """The same weights in the mmpose 1.x and HF layouts (and the ViTAE one)."""
    mm, hf = {}, {}
    c = sd["backbone.patch_embed.proj.weight"].shape[0]
    for key, value in sd.items():
        if key == "backbone.cls_token":
            mm[key] = value
            continue
        if key == "backbone.pos_embed":
            # mmpose drops slot 0: give it the ViTAE-equivalent table with slot 0 folded in
            folded = value.copy()
            folded[:, 1:] = value[:, 1:] + value[:, :1]
            folded[:, 0] = 123.0  # ignored by mmpose semantics
            mm[key] = folded
            hf["backbone.embeddings.position_embeddings"] = value
            continue
        m = key
        m = m.replace("backbone.patch_embed.proj.", "backbone.patch_embed.projection.")
        m = m.replace("backbone.blocks.", "backbone.layers.").replace(".norm1.", ".ln1.").replace(".norm2.", ".ln2.")
        m = m.replace(".mlp.fc1.", ".ffn.layers.0.0.").replace(".mlp.fc2.", ".ffn.layers.1.")
        m = m.replace("backbone.last_norm.", "backbone.ln1.").replace("keypoint_head.", "head.")
        mm[m] = value
        h = key.replace("backbone.patch_embed.proj.", "backbone.embeddings.patch_embeddings.projection.")
        h = h.replace("backbone.blocks.", "backbone.encoder.layer.").replace(".norm1.", ".layernorm_before.")
        h = h.replace(".norm2.", ".layernorm_after.").replace(".attn.proj.", ".attention.output.dense.")
        h = h.replace("backbone.last_norm.", "backbone.layernorm.")
        for old, new in (("deconv_layers.0.", "deconv1."), ("deconv_layers.1.", "batchnorm1."),
                         ("deconv_layers.3.", "deconv2."), ("deconv_layers.4.", "batchnorm2."),
                         ("final_layer.", "conv.")):
            h = h.replace("keypoint_head." + old, "head." + new)
        if ".attn.qkv." in h:
            for j, part in enumerate(("query", "key", "value")):
                hf[h.replace(".attn.qkv.", f".attention.attention.{part}.")] = value[j * c:(j + 1) * c]
            continue
        hf[h] = value
    return mm, hf


@pytest.mark.parametrize("decoder", ["classic", "simple"])
def test_converters_agree_across_layouts(tmp_path, decoder):
    import json

    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    from pose_testing.tiny_checkpoints import save_pth, tiny_vitpose_state_dict

    from keras_pose.conversion.vitpose_converter import convert

    sd = tiny_vitpose_state_dict(decoder=decoder, seed=5)
    mm, hf = _layouts(sd)
    original = convert(save_pth(sd, tmp_path / "vitpose.pth", meta={}), num_heads=4)
    path = tmp_path / "mmpose.pth"
    torch.save({"meta": {}, "state_dict": {k: torch.from_numpy(v) for k, v in mm.items()}}, path,
               _use_new_zipfile_serialization=False)
    mmpose = convert(path, num_heads=4)
    assert mmpose.backbone.pos_embed_cls_slot == "none"
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in hf.items()}, str(hf_dir / "model.safetensors"))
    (hf_dir / "config.json").write_text(json.dumps({
        "backbone_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                            "layer_norm_eps": 1e-6, "image_size": [64, 48], "num_experts": 1, "part_features": 0},
        "use_simple_decoder": decoder == "simple",
    }))
    huggingface = convert(hf_dir)
    assert original.image_size == mmpose.image_size == huggingface.image_size == (64, 48)
    assert original.decoder == decoder
    x = _images((2, 64, 48, 3), seed=2)
    ref = _np(original(x))
    np.testing.assert_allclose(_np(mmpose(x)), ref, atol=2e-5)
    np.testing.assert_allclose(_np(huggingface(x)), ref, atol=1e-6)


def test_convert_vitpose_plus_and_split_files(tmp_path):
    pytest.importorskip("torch")
    from pose_testing.tiny_checkpoints import save_pth, tiny_vitpose_state_dict

    from keras_pose.conversion.vitpose_converter import convert

    sd = tiny_vitpose_state_dict(experts=6, part=8, extra_heads=(14, 16, 17, 17, 133), seed=7)
    path = save_pth(sd, tmp_path / "vitpose+_small.pth", meta={})
    model = convert(path, num_heads=4)
    assert type(model) is ViTPosePP
    assert model.datasets == ["coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody"]
    assert model.num_keypoints == [17, 14, 16, 17, 17, 133]
    assert model.backbone.part_features == 8
    x = _images((1, 64, 48, 3), seed=4)
    active = convert(path, num_heads=4, dataset="ap10k")
    assert active.dataset == "ap10k"
    np.testing.assert_array_equal(_np(active(x)), _np(model.with_dataset("ap10k")(x)))
    # a per-dataset (plain ViTPose) preset fuses the expert
    entry = {"task_class": "ViTPose", "dataset": "aic", "config": {"num_heads": 4}}
    fused = convert(path, entry=entry)
    assert type(fused) is ViTPose and fused.keypoint_spec.name == "aic"
    np.testing.assert_allclose(_np(fused(x)), _np(model.with_dataset("aic")(x)), atol=1e-5)
    # the released split files (tools/model_split.py): fc2 concatenated, the dataset's head only
    split = {}
    for key, value in sd.items():
        if ".mlp.experts." in key or key.startswith("keypoint_head.") or key.startswith("associate_keypoint_heads."):
            continue
        if ".mlp.fc2." in key:
            expert = sd[key.replace(".mlp.fc2.", ".mlp.experts.1.")]
            value = np.concatenate([value, expert], axis=0)
        split[key] = value
    for key, value in sd.items():
        if key.startswith("associate_keypoint_heads.0."):
            split[key.replace("associate_keypoint_heads.0.", "keypoint_head.")] = value
    plain = convert(save_pth(split, tmp_path / "aic.pth"), num_heads=4)
    assert type(plain) is ViTPose and plain.keypoint_spec.name == "aic"
    np.testing.assert_allclose(_np(plain(x)), _np(model.with_dataset("aic")(x)), atol=1e-5)
    # entry datasets disagreeing with the heads in the file
    from keras_pose.errors import CheckpointError

    bad = {"task_class": "ViTPosePP", "config": {"num_heads": 4, "datasets": ["coco", "aic"]}}
    with pytest.raises(CheckpointError, match="2 datasets"):
        convert(path, entry=bad)


def test_convert_hf_vitpose_plus_single_head(tmp_path):
    import json

    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    from pose_testing.tiny_checkpoints import save_pth, tiny_vitpose_state_dict

    from keras_pose.conversion.vitpose_converter import convert

    sd = tiny_vitpose_state_dict(experts=6, part=8, extra_heads=(14, 16, 17, 17, 133), seed=11)
    reference = convert(save_pth(sd, tmp_path / "vitpose+.pth"), num_heads=4)
    single = {k: v for k, v in sd.items() if not k.startswith("associate_keypoint_heads.")}
    _, hf = _layouts(single)
    assert any(".mlp.experts.5." in k for k in hf)
    directory = tmp_path / "hf_plus"
    directory.mkdir()
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in hf.items()},
              str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({
        "backbone_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                            "layer_norm_eps": 1e-6, "image_size": [64, 48], "num_experts": 6,
                            "part_features": 8},
        "use_simple_decoder": False,
    }))
    entry = {"task_class": "ViTPosePP", "dataset": "coco",
             "config": {"num_heads": 4, "num_experts": 6, "part_features": 8, "datasets": ["coco"]}}
    model = convert(directory, entry=entry)
    assert type(model) is ViTPosePP and model.datasets == ["coco"] and model.backbone.num_experts == 6
    x = _images((1, 64, 48, 3), seed=6)
    np.testing.assert_allclose(_np(model(x)), _np(reference(x)), atol=1e-6)
    plain = convert(directory)  # no entry: datasets inferred from the one head
    assert plain.datasets == ["coco"]



_BUILD_AND_SUM = """
import random, sys
random.seed(int(sys.argv[1]))  # the interpreter's start-up state differs from process to process
import keras, numpy as np
from keras_pose.models.vitpose import ViTPoseBackbone, ViTPosePP
keras.utils.set_random_seed(0)
model = ViTPosePP(ViTPoseBackbone(image_size=(64, 48), hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64,
                                  num_experts=6, part_features=8), deconv_filters=(16, 16))
print(repr([float(np.asarray(w).sum()) for w in model.weights]))
"""


@pytest.mark.slow  # two interpreters
def test_seeded_initialisation_is_the_same_in_every_process():
    # A module-level head initializer drew its seed when keras_pose was imported, before
    # keras.utils.set_random_seed: a seeded run differed from process to process (found by
    # issue 14's resume check).
    import os
    import subprocess
    import sys

    from pose_testing.paths import REPO_ROOT

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT))
    sums = [subprocess.run([sys.executable, "-c", _BUILD_AND_SUM, seed], env=env, check=True, capture_output=True,
                           text=True).stdout.strip().splitlines()[-1] for seed in ("1", "2")]
    assert sums[0] == sums[1]
