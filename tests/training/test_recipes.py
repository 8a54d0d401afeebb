"""Issue 14 (the papers' training recipes): layer-wise learning-rate decay, no weight decay on norms /
biases / position embeddings, mmpose's ExpMomentumEMA, partial fine-tuning by name.

The optimizer checks use a two-block ViTPose (hidden 32, 64x48 crops) and compare the update of every
variable with the formula ``lr * decay ** (N + 1 - layer id)``; the EMA checks replay mmpose's
``ExpMomentumEMA`` in numpy on the weights recorded after every step.
"""

import re

import numpy as np
import pytest

import keras

import keras_pose
from keras_pose.training.ema import ExpMomentumEMA, ema_momentum
from keras_pose.training.param_groups import (
    DEFAULT_NO_WEIGHT_DECAY,
    ParamGroupAdamW,
    auto_layer_decay,
    freeze_by_patterns,
    layer_decay_multipliers,
    make_param_group_optimizer,
    vit_layer_id,
)


def _tiny_vitpose(num_layers=2, seed=0):
    keras.utils.set_random_seed(seed)
    backbone = keras_pose.ViTPoseBackbone(hidden_dim=32, num_layers=num_layers, num_heads=2, mlp_dim=64,
                                          image_size=(64, 48))
    return keras_pose.ViTPose(backbone=backbone, keypoint_spec="coco", decoder="simple")


def test_layer_ids_and_multipliers_follow_vitpose():
    model = _tiny_vitpose(num_layers=2)
    mult = layer_decay_multipliers(model, 0.75)
    assert vit_layer_id("patch_embedding/position_embedding", 2) == 0
    assert vit_layer_id("patch_embedding/projection/kernel", 2) == 0
    assert vit_layer_id("transformer_layer_0/attention/qkv/kernel", 2) == 1
    assert vit_layer_id("transformer_layer_1/mlp/fc2/bias", 2) == 2
    assert vit_layer_id("final_layernorm/gamma", 2) == 3
    assert vit_layer_id("head/final_conv/kernel", 2) == 3
    assert mult["patch_embedding/projection/kernel"] == pytest.approx(0.75 ** 3)
    assert mult["transformer_layer_0/attention/qkv/kernel"] == pytest.approx(0.75 ** 2)
    assert mult["transformer_layer_1/mlp/fc1/kernel"] == pytest.approx(0.75)
    assert mult["head/final_conv/kernel"] == 1.0
    assert len(mult) == len(model.trainable_variables)
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        layer_decay_multipliers(model, 1.5)


def test_auto_decay_by_size():
    sizes = {384: 0.8, 768: 0.75, 1024: 0.8, 1280: 0.85}
    for width, decay in sizes.items():
        assert auto_layer_decay(type("B", (), {"hidden_dim": width})()) == decay


def test_effective_update_per_variable_group_matches_the_formula():
    """One AdamW step with unit gradients: w1 = w0 (1 - lr f wd [not norm/bias/pos]) - lr f / (1 + eps)."""
    model = _tiny_vitpose(num_layers=2)
    mult = layer_decay_multipliers(model, 0.75)
    lr, wd = 1e-2, 0.1
    opt = make_param_group_optimizer("adamw", learning_rate=lr, weight_decay=wd, lr_multipliers=mult,
                                     no_weight_decay=DEFAULT_NO_WEIGHT_DECAY)
    variables = model.trainable_variables
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    opt.apply([keras.ops.ones(v.shape) for v in variables], variables)
    no_decay = re.compile("|".join(DEFAULT_NO_WEIGHT_DECAY))
    ratios = {}
    for v, w0 in zip(variables, before):
        f = mult[v.path]
        decay = 0.0 if no_decay.search(v.path) else wd
        expected = w0 - w0 * decay * lr * f - lr * f / (1 + 1e-7)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(v), expected, rtol=0, atol=2e-7)
        if v.path.endswith("bias"):  # no decay: the update is -lr f exactly
            ratios[v.path] = float(np.mean(w0 - keras.ops.convert_to_numpy(v))) / lr
    assert ratios["patch_embedding/projection/bias"] == pytest.approx(0.75 ** 3, rel=1e-5)
    assert ratios["transformer_layer_1/mlp/fc2/bias"] == pytest.approx(0.75, rel=1e-5)
    assert ratios["head/final_conv/bias"] == pytest.approx(1.0, rel=1e-5)


@pytest.mark.slow  # compiles a ViTPose train step
def test_layer_decay_inside_fit_scales_the_first_adam_step():
    """The compiled train step (any backend): the first Adam step moves a weight by lr * f * |g| / (|g| + eps).

    Its largest move (the largest gradient, |g| >> eps) is lr * f.
    """
    model = _tiny_vitpose(num_layers=2)
    mult = layer_decay_multipliers(model, 0.5)
    lr = 1e-3
    model.compile(optimizer=_adam(lr, mult), loss="keypoint_mse")
    x = np.random.default_rng(0).uniform(0, 1, (2, 64, 48, 3)).astype("float32")
    y = np.random.default_rng(1).normal(size=(2, 16, 12, 17)).astype("float32")
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    for v in model.trainable_variables:
        if not v.path.endswith("kernel"):
            continue
        step = np.abs(keras.ops.convert_to_numpy(v) - before[v.path]) / lr
        assert np.max(step) == pytest.approx(mult[v.path], rel=1e-3), v.path


def _adam(lr, mult):
    return make_param_group_optimizer("adam", learning_rate=lr, lr_multipliers=mult, epsilon=1e-12)


def test_param_group_optimizer_round_trips_config():
    opt = ParamGroupAdamW(learning_rate=1e-3, weight_decay=0.05, lr_multipliers={"a/kernel": 0.5},
                          no_weight_decay=["bias"])
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(opt))
    assert type(copy) is ParamGroupAdamW
    assert copy.lr_multipliers == {"a/kernel": 0.5} and copy.no_weight_decay == ["bias"]
    assert copy.weight_decay == pytest.approx(0.05)


def test_freeze_by_patterns_names_what_it_froze():
    model = _tiny_vitpose(num_layers=2)
    total = len(model.trainable_variables)
    counts, params = freeze_by_patterns(model, ["attention"])
    assert counts == {"attention": 8}  # qkv + proj, kernel + bias, 2 blocks
    assert params == 2 * (32 * 96 + 96 + 32 * 32 + 32)
    assert not any("attention" in v.path for v in model.trainable_variables)
    assert len(model.trainable_variables) == total - 8
    model = _tiny_vitpose(num_layers=2)
    counts, _ = freeze_by_patterns(model, ["backbone"])
    assert [v.path for v in model.trainable_variables] == ["head/final_conv/kernel", "head/final_conv/bias"]
    with pytest.raises(ValueError, match="'atention' matches no trainable variable"):
        freeze_by_patterns(_tiny_vitpose(num_layers=1), ["atention"])


# ------------------------------------------------------------------ EMA
def _bn_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


class _Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        self.weights.append([keras.ops.convert_to_numpy(v) for v in self.model.weights])


def test_ema_momentum_formula():
    # mmpose ExpMomentumEMA: (1 - m) * exp(-(1 + steps) / gamma) + m
    assert ema_momentum(1, 0.0002, 2000) == pytest.approx(0.9998 * np.exp(-2 / 2000) + 0.0002)
    assert ema_momentum(10**6, 0.0002, 2000) == pytest.approx(0.0002)
    with pytest.raises(ValueError, match="momentum"):
        ExpMomentumEMA(momentum=0.0)


def test_ema_follows_mmpose_exp_momentum_on_every_weight_and_swaps():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 4)).astype("float32"), rng.normal(size=(24, 2)).astype("float32")
    model = _bn_model()
    ema = ExpMomentumEMA(momentum=0.01, gamma=3.0)
    record = _Record()
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[record, ema])
    expected = [w.copy() for w in record.weights[0]]
    for step, weights in enumerate(record.weights[1:], start=1):
        rate = (1 - 0.01) * np.exp(-(1 + step) / 3.0) + 0.01
        expected = [a + rate * (w - a) for a, w in zip(expected, weights)]
    assert ema.steps == 12
    got = ema.averages()
    assert len(got) == len(model.weights) == 8  # BN moving mean / variance averaged too
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    raw = [keras.ops.convert_to_numpy(v) for v in model.weights]
    ema.swap_in()
    for a, v in zip(expected, model.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(v), a, rtol=1e-5, atol=1e-6)
    ema.swap_out()
    for a, v in zip(raw, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), a)


def test_ema_state_saves_and_restores(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    model = _bn_model()
    ema = ExpMomentumEMA(momentum=0.1, gamma=2.0)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[ema])
    ema.save_state(str(tmp_path))
    other = ExpMomentumEMA(momentum=0.1, gamma=2.0)
    assert other.restore_state(str(tmp_path), model)
    assert other.steps == 2
    for a, b in zip(ema.averages(), other.averages()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="another model"):
        ExpMomentumEMA().restore_state(str(tmp_path), keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]))


# ------------------------------------------------------------- keras-pose train
@pytest.mark.slow  # two tiny training runs
def test_train_config_recipes_freeze_layer_decay_ema_and_log(tmp_path, capsys):
    from keras_pose.training import train_from_config
    from pose_testing.paths import DATA_DIR

    def config(out, **train):
        return {
            "model": {"input_size": [64, 48], "backbone": {"hidden_dim": 32, "num_layers": 2, "num_heads": 2,
                                                           "mlp_dim": 64}, "head": {"decoder": "simple"}},
            "keypoints": "coco",
            "data": {"train": str(DATA_DIR / "coco" / "test_coco.json"), "cache_images": "decoded"},
            "train": {"batch_size": 2, "epochs": 2, "steps_per_epoch": 2, "augmentation": False,
                      "learning_rate": 1e-3, "seed": 0, **train},
            "output": {"dir": str(out), "plot": False, "save": "last"},
        }

    initial = _tiny_vitpose(num_layers=2)  # not the run's initialisation: only shapes / paths are used
    paths = [v.path for v in initial.weights]
    result = train_from_config(config(tmp_path / "a", freeze=["attention"], ema=True,
                                      optimizer={"layer_decay": "auto"}), verbose=2)
    out = capsys.readouterr().out
    assert "Frozen: 'attention' (8 variables); 8,448 parameters" in out
    assert "Layer-wise lr decay 0.8 over 2 blocks: lr x 0.512 (embeddings) .. 1 (heads), 4 groups" in out
    assert "EMA of the weights (mmpose ExpMomentumEMA, momentum 0.0002, gamma 2000 steps)" in out
    assert "Epoch 2/2:" in out and "images/s" in out and "run ETA 0:00:00 (0 epochs)" in out
    opt = result.model.optimizer
    assert opt.lr_multipliers["patch_embedding/projection/kernel"] == pytest.approx(0.8 ** 3)
    assert not any("attention" in v.path for v in result.model.trainable_variables)
    # Frozen attention weights keep the run's initial values: compare with a run that trains nothing but the head.
    frozen_run = train_from_config(config(tmp_path / "b", freeze=["backbone"]), verbose=0)
    for path, a, b in zip(paths, result.model.get_weights(), frozen_run.model.get_weights()):
        if "attention" in path:
            np.testing.assert_array_equal(a, b)
    # The model returned (and its preset) holds the EMA weights; test_resume checks they differ from raw ones.
    import keras_pose as kp

    preset = kp.from_preset(result.preset_dir).get_weights()
    for a, b in zip(preset, result.model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.backends  # a JAX / PyTorch pytest process each: `python -m pytest -m backends`
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_recipes_on_other_backends(backend):
    """The layer-decay update (apply and a compiled fit step), freezing and the EMA checks of this file."""
    from pose_testing.backend_runs import run_test_file_on_backend

    run_test_file_on_backend(__file__, backend, min_passed=11, extra_args=("-k", "not train_config"))


def test_config_validates_the_recipe_keys(tmp_path):
    from keras_pose.errors import TrainConfigError
    from keras_pose.training import TrainConfig

    (tmp_path / "a.json").write_text("{}")

    def config(**train):
        return {"model": {"input_size": [64, 48]}, "data": {"train": "a.json"}, "train": train,
                "output": {"dir": str(tmp_path)}}

    t = TrainConfig.from_dict(config(), base_dir=str(tmp_path))["train"]
    assert t["optimizer"]["layer_decay"] is None and t["ema"] is None and t["freeze"] == []
    assert t["optimizer"]["no_weight_decay"] == list(DEFAULT_NO_WEIGHT_DECAY)
    t = TrainConfig.from_dict(config(ema=True, freeze=["attention"], optimizer={"layer_decay": "auto"}),
                              base_dir=str(tmp_path))["train"]
    assert t["ema"] == {"momentum": 0.0002, "gamma": 2000.0} and t["optimizer"]["layer_decay"] == "auto"
    t = TrainConfig.from_dict(config(optimizer={"layer_decay": "0.75"}), base_dir=str(tmp_path))["train"]
    assert t["optimizer"]["layer_decay"] == 0.75
    bad = [({"optimizer": {"layer_decay": 1.5}}, "train.optimizer.layer_decay"),
           ({"optimizer": {"layer_decay": "big"}}, "train.optimizer.layer_decay"),
           ({"optimizer": {"no_weight_decay": "bias"}}, "train.optimizer.no_weight_decay"),
           ({"ema": {"momentum": 1.0}}, "train.ema.momentum"),
           ({"ema": {"gama": 10}}, "gama"),
           ({"freeze": ["attention("]}, "train.freeze")]
    for train, message in bad:
        with pytest.raises(TrainConfigError, match=re.escape(message)):
            TrainConfig.from_dict(config(**train), base_dir=str(tmp_path))


def test_vitpose_plus_experts_and_heads_get_their_layer_rates():
    from keras_pose.models.vitpose.vitpose_plus_pose_estimator import ViTPosePP

    backbone = keras_pose.ViTPoseBackbone(hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=64, image_size=(64, 48),
                                          num_experts=2, part_features=8)
    model = ViTPosePP(backbone=backbone, datasets=["coco", "ap10k"], decoder="simple")
    mult = layer_decay_multipliers(model, 0.5)
    assert mult["transformer_layer_0/mlp/experts_kernel"] == 0.25
    assert mult["transformer_layer_1/mlp/experts_kernel"] == 0.5
    assert mult["heads/head_ap10k/final_conv/kernel"] == 1.0 and mult["patch_embedding/position_embedding"] == 0.125
    counts, _ = freeze_by_patterns(model, ["mlp"])
    assert counts == {"mlp": 12}  # fc1, fc2, experts: kernel + bias, 2 blocks
