"""Issue 8 (training): nothing lost, nothing silently wrong in `keras-pose train`.

Item 2: an earlier run in the output folder is never destroyed without a
separately named choice; item 7: model.backbone / model.head keys are checked
against the constructors; item 8: a diverging run stops, keeps the last finite
checkpoint and writes no NaN; item 15: numbers as users write them (1e-3).
Models are a one-layer ViTPose (hidden 32) on 64x48 crops, 1-2 epochs of 1-2
steps.
"""

import hashlib
import json
import math
import os

import numpy as np
import pytest
import yaml

import keras

import keras_pose
from keras_pose.cli import main
from keras_pose.training import (
    NonFiniteModelError,
    TerminateOnNonFiniteLoss,
    TrainConfigError,
    TrainingDivergedError,
    describe_previous_run,
    evaluate_pose_model,
    load_train_config,
    model_builder,
    train_from_config,
    trainer,
)
from keras_pose.training.callbacks import BestWeightsCheckpoint, HistoryWriter
from keras_pose.training.checkpoints import save_weights_atomic
from keras_pose.training.config_io import load_yaml_text, parse_override

from pose_testing.paths import DATA_DIR

COCO_JSON = DATA_DIR / "coco" / "test_coco.json"
TINY_BACKBONE = {"hidden_dim": 32, "num_layers": 1, "num_heads": 2, "mlp_dim": 64}


def _config(out_dir, val=False, **train):
    train = {"batch_size": 4, "epochs": 1, "steps_per_epoch": 1, "augmentation": False, "learning_rate": 1e-3,
             "seed": 0, **train}
    return {
        "model": {"input_size": [64, 48], "backbone": dict(TINY_BACKBONE), "head": {"decoder": "simple"}},
        "keypoints": "coco",
        "data": {"train": str(COCO_JSON), "val": str(COCO_JSON) if val else None, "cache_images": "decoded"},
        "train": train,
        "output": {"dir": str(out_dir), "plot": False},
    }


def _write_config(path, config):
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("keras-pose: error:") and "Traceback" not in err
    return lines[0]


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# ------------------------------------------------ item 15: numbers as written
def test_numbers_as_users_write_them_in_files_overrides_and_json(tmp_path):
    # YAML 1.1 (yaml.safe_load) reads these as strings, or 010 as octal 8.
    assert yaml.safe_load("a: 1e-3")["a"] == "1e-3"
    parsed = load_yaml_text("a: 1e-3\nb: 1E-4\nc: 5.e-4\nd: .5\ne: 1_000\nf: 010\ng: 1.5e+3\nh: -2\ni: 0x10\n"
                            "j: yes\nk: '1e-3'\nl: 1:30\nm: .inf\n")
    assert parsed == {"a": 0.001, "b": 0.0001, "c": 0.0005, "d": 0.5, "e": 1000, "f": 10, "g": 1500.0, "h": -2,
                      "i": 16, "j": True, "k": "1e-3", "l": "1:30", "m": math.inf}
    assert parse_override("train.learning_rate.base=1e-3") == ("train.learning_rate.base", 0.001)

    # A config file with `base: 1e-4` and other numeric keys in every form.
    text = yaml.safe_dump(_config(tmp_path / "out"), sort_keys=False)
    text = text.replace("learning_rate: 0.001", "learning_rate:\n    base: 1e-4\n    warmup_epochs: .5\n"
                        "    warmup_start_factor: 1E-3\n    min_factor: 5.e-2")
    text = text.replace("epochs: 1", "epochs: 1_000")
    path = tmp_path / "numbers.yaml"
    path.write_text(text)
    config = load_train_config(path, overrides=[
        "keypoints={spec: coco, sigmas: 2.5e-2}",
        "model.backbone.layer_norm_epsilon=1e-5",
        "train.augmentation={bbox_transform: {rotate_factor: 4e1, scale_factor: [.5, 1.5E0]}}",
        "train.optimizer.clipnorm=1e0",
    ])
    lr = config.get("train.learning_rate")
    assert (lr["base"], lr["warmup_epochs"], lr["warmup_start_factor"], lr["min_factor"]) == (1e-4, 0.5, 1e-3, 0.05)
    assert config.get("train.epochs") == 1000
    assert config.get("keypoints.sigmas") == 0.025
    assert config.get("model.backbone.layer_norm_epsilon") == 1e-5
    assert config.get("train.augmentation.bbox_transform") == {"rotate_factor": 40.0, "scale_factor": [0.5, 1.5]}
    assert config.get("train.optimizer.clipnorm") == 1.0

    # JSON: numbers are numbers; a quoted number is accepted for a numeric key.
    raw = _config(tmp_path / "out")
    raw["train"]["learning_rate"] = {"base": "1e-3", "warmup_steps": "1_0"}
    raw["train"]["batch_size"] = "8"
    json_path = tmp_path / "c.json"
    json_path.write_text(json.dumps(raw))
    config = load_train_config(json_path)
    assert config.get("train.learning_rate.base") == 0.001 and config.get("train.learning_rate.warmup_steps") == 10
    assert config.get("train.batch_size") == 8
    assert load_train_config(raw, overrides=["train.learning_rate=1e-2"]).get("train.learning_rate.base") == 0.01
    # Still refused: words, non-integers for integer keys, non-finite values.
    for override, key in (("train.learning_rate.base=fast", "'train.learning_rate.base'"),
                          ("train.epochs=1.5e0", "'train.epochs'"),
                          ("train.learning_rate.base=.nan", "'train.learning_rate.base'")):
        with pytest.raises(TrainConfigError, match=key):
            load_train_config(raw, overrides=[override])


def test_cli_accepts_the_documented_learning_rate_override(tmp_path, capsys):
    path = _write_config(tmp_path / "c.yaml", _config(tmp_path / "out"))
    code, out, err = _run(capsys, "train", path, "--dry-run", "--set", "train.learning_rate.base=1e-3")
    assert code == 0, err
    assert yaml.safe_load(out)["train"]["learning_rate"]["base"] == 0.001
    path.write_text(path.read_text().replace("learning_rate: 0.001", "learning_rate: {base: 1e-4}"))
    code, out, err = _run(capsys, "train", path, "--dry-run")
    assert code == 0, err
    assert yaml.safe_load(out)["train"]["learning_rate"]["base"] == 0.0001


# ------------------------------------- item 7: constructor arguments checked
@pytest.mark.parametrize(
    "section, expected",
    [
        ("backbone: {hidden_dim: 32, num_layer: 1}", ["'model.backbone.num_layer'", "did you mean 'num_layers'",
                                                       "keras_pose.ViTPoseBackbone:", "mlp_dim", "num_layers"]),
        ("backbone: {hidden_dim:64}", ["'model.backbone.hidden_dim:64'", "space after the colon",
                                       "{hidden_dim: 64}"]),
        ("head: {decoder: simple, deconv_filter: [32]}", ["'model.head.deconv_filter'",
                                                          "did you mean 'deconv_filters'", "keras_pose.ViTPose:"]),
        ("backbone: {hidden_dim: '64x'}", ["'model.backbone.hidden_dim'", "integer", "'64x'"]),
        ("backbone: {hidden_dim: 32.5}", ["'model.backbone.hidden_dim'", "integer", "32.5"]),
        ("backbone: {qkv_bias: 'no way'}", ["'model.backbone.qkv_bias'", "true or false"]),
        ("backbone: {num_heads: }", ["'model.backbone.num_heads'", "got null"]),
        ("head: {decoder: simpel}", ["'model.head.decoder'", "did you mean 'simple'"]),
        ("head: {deconv_filters: 256}", ["'model.head.deconv_filters'", "list of integers"]),
        ("backbone: {image_size: [64, 48]}", ["'model.backbone.image_size'", "model.input_size"]),
    ],
)
def test_unknown_or_mistyped_model_keys_fail_in_dry_run(tmp_path, capsys, section, expected):
    # The section exactly as a user types it (YAML flow mapping).
    path = tmp_path / "c.yaml"
    path.write_text(f"model:\n  input_size: [64, 48]\n  {section}\nkeypoints: coco\n"
                    f"data:\n  train: {COCO_JSON}\noutput: {tmp_path / 'out'}\n")
    code, out, err = _run(capsys, "train", path, "--dry-run")
    assert code == 1 and out == ""
    line = _one_line_error(err)
    for text in expected:
        assert text in line, line


@pytest.mark.parametrize("architecture", ["ViTPose", "Hourglass", "CPM", "CPN"])
def test_every_architecture_checks_backbone_and_head_keys(tmp_path, architecture):
    raw = _config(tmp_path / "out")
    raw["model"] = {"architecture": architecture, "input_size": [64, 64], "backbone": {"no_such_arg": 1}}
    with pytest.raises(TrainConfigError, match=f"keras_pose.{architecture}Backbone:"):
        load_train_config(raw)
    raw["model"]["backbone"] = {}
    raw["model"]["head"] = {"no_such_arg": 1}
    with pytest.raises(TrainConfigError, match=rf"'model.head.no_such_arg'.*keras_pose.{architecture}:"):
        load_train_config(raw)
    # Every real argument is accepted (here: `name`, which every class takes).
    raw["model"]["head"] = {"name": "my_model"}
    assert load_train_config(raw).get("model.head") == {"name": "my_model"}


def test_checked_backbone_keys_build_the_model_they_say(tmp_path):
    raw = _config(tmp_path / "out")
    raw["model"]["backbone"] = {"hidden_dim": "32", "num_layers": 2.0, "num_heads": 2, "mlp_dim": 6.4e1}
    config = load_train_config(raw)
    assert config.get("model.backbone") == {"hidden_dim": 32, "num_layers": 2, "num_heads": 2, "mlp_dim": 64}
    model = model_builder.build_model_from_config(config, model_builder.resolve_train_keypoint_spec(config))
    backbone = model.backbone
    assert (backbone.hidden_dim, backbone.num_layers, backbone.num_heads, backbone.mlp_dim) == (32, 2, 2, 64)
    assert model.decoder == "simple" and model.image_size == (64, 48)


# ------------------------------------------------- item 2: earlier runs kept
def _kill_in_epoch(monkeypatch, epoch):
    """Simulate a kill right after epoch `epoch` was logged (before its checkpoint)."""
    original = HistoryWriter.on_epoch_end

    def on_epoch_end(self, e, logs=None):
        original(self, e, logs)
        if e + 1 == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(HistoryWriter, "on_epoch_end", on_epoch_end)


@pytest.mark.slow  # three training runs
def test_restarting_a_killed_run_never_loses_its_best_checkpoint(tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "run"
    path = _write_config(tmp_path / "c.yaml", _config(out_dir, epochs=2, learning_rate=1e-4))
    _kill_in_epoch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train_from_config(str(path), verbose=0)
    monkeypatch.undo()
    best = out_dir / "checkpoints" / "best.weights.h5"
    last = out_dir / "checkpoints" / "last.weights.h5"
    assert best.is_file() and last.is_file() and not (out_dir / "preset").exists()
    best_info = json.loads((out_dir / "checkpoints" / "best.json").read_text())
    assert best_info["epoch"] == 1 and best_info["monitor"] == "loss" and best_info["value"] > 0
    best_sha, last_sha = _sha(best), _sha(last)

    # 1. Without a choice (and resuming off: resuming is tested in test_resume.py): refused; the message
    # lists what is there and what each option does.
    code, _, err = _run(capsys, "train", path, "--quiet", "--set", "output.resume=false")
    line = _one_line_error(err)
    assert code == 1 and "'output.dir'" in line and "unfinished run" in line
    assert f"best checkpoint checkpoints/best.weights.h5 (loss {best_info['value']:.4f} at epoch 1)" in line
    assert "last checkpoint checkpoints/last.weights.h5 (end of epoch 2)" in line
    assert "--output-dir" in line and "--overwrite" in line and "--discard-previous-run" in line
    assert "previous_runs" in line and "losing" in line
    assert _sha(best) == best_sha and _sha(last) == last_sha
    # The dry run says what train would do, and exits 0.
    code, out, err = _run(capsys, "train", path, "--dry-run", "--set", "output.resume=false")
    assert code == 0 and "would refuse" in err and "best checkpoint" in err

    # 2. --overwrite: a new run, the earlier one moved aside intact.
    code, out, err = _run(capsys, "train", path, "--quiet", "--overwrite")
    assert code == 0, err
    backups = list((out_dir / "previous_runs").iterdir())
    assert len(backups) == 1 and f"moved to {backups[0]}" in out
    assert _sha(backups[0] / "checkpoints" / "best.weights.h5") == best_sha
    assert _sha(backups[0] / "checkpoints" / "last.weights.h5") == last_sha
    assert len(json.loads((backups[0] / "history.json").read_text())["epoch"]) == 2
    assert (out_dir / "preset" / "config.json").is_file()
    assert len(json.loads((out_dir / "history.json").read_text())["epoch"]) == 2
    finished = describe_previous_run(str(out_dir))
    assert finished["finished"] and finished["preset"] and finished["best"]["epoch"] in (1, 2)

    # 3. The finished run is refused too; --discard-previous-run deletes it (and only it).
    (out_dir / "notes.txt").write_text("mine")
    code, _, err = _run(capsys, "train", path, "--quiet")
    line = _one_line_error(err)
    assert code == 1 and "a finished run" in line and "and its preset (preset/)" in line
    # (The new run is stopped as it starts: what matters is what was deleted.)
    monkeypatch.setattr(HistoryWriter, "on_train_begin", lambda self, logs=None: _raise(KeyboardInterrupt),
                        raising=False)
    assert main(["train", str(path), "--quiet", "--discard-previous-run"]) == 130  # "interrupted"
    assert sorted(os.listdir(out_dir)) == ["config.yaml", "notes.txt", "previous_runs"]
    assert (out_dir / "notes.txt").read_text() == "mine"
    assert len(list((out_dir / "previous_runs").iterdir())) == 1  # deleted, not moved
    assert _sha(backups[0] / "checkpoints" / "best.weights.h5") == best_sha  # earlier backups stay


def _raise(error):
    raise error


def test_output_folder_with_a_foreign_config_yaml_is_refused(tmp_path, capsys):
    out_dir = tmp_path / "exp"
    out_dir.mkdir()
    path = _write_config(out_dir / "config.yaml", _config("."))  # the user's config, output.dir: its own folder
    before = path.read_text()
    for flag in ((), ("--overwrite",), ("--discard-previous-run",)):
        code, _, err = _run(capsys, "train", path, "--quiet", *flag)
        assert code == 1 and "config.yaml that no keras-pose run wrote" in _one_line_error(err)
    assert path.read_text() == before and sorted(os.listdir(out_dir)) == ["config.yaml"]


# ----------------------------------------------------- item 8: divergence
class _ExplodingSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """1e-4 during the first `steps` steps, then 1e30 (SGD diverges at once)."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, step):
        return keras.ops.where(keras.ops.cast(step, "float32") < self.steps, 1e-4, 1e30)

    def get_config(self):
        return {"steps": self.steps}


@pytest.mark.slow  # three `keras-pose train` runs with COCO validation (the fast checks of item 8 follow)
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_diverging_run_stops_keeps_last_finite_checkpoint_and_writes_no_nan(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(trainer, "make_schedule", lambda lr, steps, epochs: _ExplodingSchedule(steps))
    out_dir = tmp_path / "run"
    config = _config(out_dir, val=True, epochs=3, steps_per_epoch=2, optimizer={"type": "sgd"})
    config["evaluation"] = {"metric": "coco", "every_n_epochs": 1, "monitor": "val_coco_AP"}
    path = _write_config(tmp_path / "c.yaml", config)
    code, _, err = _run(capsys, "train", path, "--quiet")
    line = _one_line_error(err)
    assert code == 1
    assert "Training diverged" in line and "at epoch 2" in line
    assert "train.learning_rate.base" in line and "train.optimizer.clipnorm" in line and "warm" in line
    assert "end of epoch 1" in line and "no preset or metrics.json" in line
    assert not (out_dir / "preset").exists() and not (out_dir / "metrics.json").exists()

    # The checkpoints hold the finite weights of epoch 1; history holds no NaN.
    last_info = json.loads((out_dir / "checkpoints" / "last.json").read_text())
    best_info = json.loads((out_dir / "checkpoints" / "best.json").read_text())
    assert last_info == {"epoch": 1} and best_info["epoch"] == 1 and best_info["monitor"] == "val_coco_AP"
    model = model_builder.build_model_from_config(load_train_config(path), keras_pose.get_keypoint_spec("coco"))
    for name in ("last", "best"):
        model.load_weights(str(out_dir / "checkpoints" / f"{name}.weights.h5"))
        assert all(np.isfinite(w).all() for w in model.get_weights()), name
    history = json.loads((out_dir / "history.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert history["epoch"] == [1] and math.isfinite(history["loss"][0])
    assert "nan" not in (out_dir / "history.csv").read_text().lower()

    # It saved a training state at the end of epoch 1, but the same command does not resume it: it
    # would diverge again. The refusal says why and keeps everything.
    code, _, err = _run(capsys, "train", path, "--quiet")
    line = _one_line_error(err)
    assert code == 1 and "It diverged, and resuming it with the same config would diverge again" in line
    assert "at epoch 2" in line and "--restart" in line
    assert last_info == json.loads((out_dir / "checkpoints" / "last.json").read_text())

    # The API raises the same error.
    with pytest.raises(TrainingDivergedError, match="epoch 2"):
        train_from_config(str(path), overrides=["output.discard_previous_run=true"], verbose=0)


def test_divergence_in_the_first_epoch_keeps_nothing_and_says_so(tmp_path):
    config = _config(tmp_path / "run", epochs=2, steps_per_epoch=2, optimizer={"type": "sgd", "clipnorm": 5.0},
                     learning_rate={"base": 1e30, "schedule": "constant"})
    with pytest.raises(TrainingDivergedError) as info:
        train_from_config(config, verbose=0)
    message = str(info.value)
    assert "at epoch 1" in message and "no epoch finished with finite weights" in message
    assert "now 1e+30" in message and "clipnorm, now 5: lower it" in message
    assert not (tmp_path / "run" / "checkpoints" / "last.weights.h5").exists()
    assert not (tmp_path / "run" / "preset").exists()


class _Poison(keras.layers.Layer):
    """Multiplies by a non-trainable factor that `_PoisonAt` sets to NaN."""

    def build(self, input_shape):
        self.factor = self.add_weight(shape=(), initializer="ones", trainable=False, name="factor")

    def call(self, x):
        return x * self.factor


class _PoisonAt(keras.callbacks.Callback):
    """Makes the loss NaN from batch `batch` (0-based) of epoch `epoch` (0-based) on."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            self.model.get_layer("poison").factor.assign(float("nan"))


def _tiny_keras_model():
    inputs = keras.Input((3,))
    outputs = _Poison(name="poison")(keras.layers.Dense(1, kernel_initializer="ones")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    return model


def _data():
    return np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)


class _WeightsAtEpochEnd(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


@pytest.mark.parametrize("snapshot", [False, True])
def test_fit_callback_restores_the_last_finite_weights(tmp_path, snapshot):
    model = _tiny_keras_model()
    path = str(tmp_path / "last.weights.h5") if snapshot else None
    guard = TerminateOnNonFiniteLoss(snapshot_path=path, verbose=0)
    seen = _WeightsAtEpochEnd()
    history = model.fit(*_data(), batch_size=2, epochs=4, verbose=0, callbacks=[_PoisonAt(1, 1), guard, seen])
    assert guard.diverged["epoch"] == 2 and guard.diverged["step"] == 2 and math.isnan(guard.diverged["loss"])
    assert guard.diverged["restored"] == "end of epoch 1" and guard.last_finite_epoch == 1
    assert len(history.history["loss"]) == 2  # stopped in epoch 2 (Keras still ends that epoch)
    after_epoch_1 = seen.weights[0]
    assert not np.array_equal(after_epoch_1[0], np.ones((3, 1)))  # it did train
    assert float(keras.ops.convert_to_numpy(model.get_layer("poison").factor)) == 1.0  # restored too
    for got, want in zip(model.get_weights(), after_epoch_1):
        np.testing.assert_array_equal(got, want)
    # The callbacks after the guard saw the restored, finite weights at the end of epoch 2.
    for got, want in zip(seen.weights[1], after_epoch_1):
        np.testing.assert_array_equal(got, want)
    if snapshot:
        assert json.loads((tmp_path / "last.json").read_text()) == {"epoch": 1}

    # raise_error=True: fit raises a one-line error, the weights it started with are back.
    with pytest.raises(TrainingDivergedError, match="loss became nan at epoch 1, step 3"):
        model.fit(*_data(), batch_size=2, epochs=2, verbose=0,
                  callbacks=[_PoisonAt(0, 2), TerminateOnNonFiniteLoss(raise_error=True)])
    for got, want in zip(model.get_weights(), after_epoch_1):
        np.testing.assert_array_equal(got, want)


def test_checkpoints_and_evaluation_refuse_nan_weights(tmp_path):
    backbone = keras_pose.ViTPoseBackbone(image_size=(64, 48), **TINY_BACKBONE)
    model = keras_pose.ViTPose(backbone, decoder="simple", keypoint_spec="coco")
    good = str(tmp_path / "best.weights.h5")
    checkpoint = BestWeightsCheckpoint(good, "loss", mode="min", verbose=0)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    sha = _sha(good)
    weights = model.get_weights()
    weights[0] = np.full_like(weights[0], np.nan)
    model.set_weights(weights)
    checkpoint.on_epoch_end(1, {"loss": 0.5})  # better loss, NaN weights: not saved
    assert _sha(good) == sha and checkpoint.best_epoch == 1
    with pytest.raises(NonFiniteModelError, match="NaN or Inf"):
        save_weights_atomic(model, good)
    assert _sha(good) == sha

    from keras_pose.datasets import load_coco_keypoints

    val = load_coco_keypoints(str(COCO_JSON), str(COCO_JSON.parent), keypoint_spec="coco", mode="eval")
    with pytest.raises(NonFiniteModelError, match="NaN or Inf keypoints for 12 of 12"):
        evaluate_pose_model(model, val, metric="coco", verbose=0)
