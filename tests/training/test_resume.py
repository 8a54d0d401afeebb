"""Issue 14 (resume after a kill): complete training states, saved atomically, and resuming from them.

The callback is checked on a small dense model with dropout (its RNG state is
part of the state); `keras-pose train` on a one-layer ViTPose (hidden 32,
64x48 crops, augmentation on, seeded): killed mid-epoch, in process and with
SIGKILL, then run again, it ends with the weights of an uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

import keras

from keras_pose.errors import TrainConfigError
from keras_pose.training import (
    TrainingStateCheckpoint,
    describe_previous_run,
    latest_training_state,
    restore_training_state,
    train_from_config,
)
from keras_pose.training.resume import list_training_states
from keras_pose.training.run_folder import STATE_DIR

from pose_testing.interrupt import interrupt_after_global_step
from pose_testing.paths import DATA_DIR
from pose_testing.paths import REPO_ROOT

COCO_JSON = DATA_DIR / "coco" / "test_coco.json"


def _dense_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.3, seed=3), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def _dense_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 6)).astype("float32"), rng.normal(size=(32, 2)).astype("float32")


def test_states_are_complete_kept_and_restored_exactly(tmp_path):
    x, y = _dense_data()
    model = _dense_model()
    saver = TrainingStateCheckpoint(tmp_path / "state", every_n_steps=3, keep=2)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, callbacks=[saver], verbose=0)
    # 4 steps per epoch: states at global steps 3, 4 (epoch end), 6, 8 (epoch end); the last two kept.
    assert [step for step, _ in list_training_states(tmp_path / "state")] == [6, 8]
    assert sorted(os.listdir(tmp_path / "state")) == ["step-000000006", "step-000000008"]  # no temporaries left
    state = latest_training_state(tmp_path / "state")
    assert (state["epoch"], state["step"], state["global_step"], state["steps_per_epoch"]) == (2, 0, 8, 4)
    mid = latest_training_state(tmp_path / "state", epoch_end_only=False)
    assert mid["global_step"] == 8
    fresh = _dense_model(seed=5)
    restore_training_state(fresh, state["folder"])
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations) == 8
    for a, b in zip(model.optimizer.variables, fresh.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rng = [v for v in model.non_trainable_variables if "seed_generator" in v.path]
    assert rng and all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
                       zip(rng, [v for v in fresh.non_trainable_variables if "seed_generator" in v.path]))


def test_plain_fit_resumes_at_the_newest_epoch_end_like_an_uninterrupted_run(tmp_path):
    x, y = _dense_data()
    reference = _dense_model()
    reference.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)

    class Kill(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() == 10:  # epoch 3, step 2
                raise KeyboardInterrupt

    model = _dense_model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                  callbacks=[TrainingStateCheckpoint(tmp_path / "s", every_n_steps=3, restore=True), Kill()])
    resumed = _dense_model(seed=9)  # a new process: other initial weights, restored from the state
    history = resumed.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                          callbacks=[TrainingStateCheckpoint(tmp_path / "s", every_n_steps=3, restore=True)])
    assert len(history.history["loss"]) == 1  # only epoch 3 ran again
    for a, b in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_bad_arguments_and_unreadable_states_are_named(tmp_path):
    with pytest.raises(ValueError, match="every_n_steps"):
        TrainingStateCheckpoint(tmp_path, every_n_steps=0)
    with pytest.raises(ValueError, match="keep"):
        TrainingStateCheckpoint(tmp_path, keep=0)
    folder = tmp_path / "step-000000004"
    folder.mkdir()
    (folder / "state.json").write_text("{not json")
    with pytest.raises(TrainConfigError, match="step-000000004.*delete the folder"):
        latest_training_state(tmp_path)
    assert latest_training_state(tmp_path / "missing") is None


# ------------------------------------------------------------ keras-pose train
def _config(out_dir, epochs=3):
    return {
        "model": {"input_size": [64, 48], "backbone": {"hidden_dim": 32, "num_layers": 1, "num_heads": 2,
                                                       "mlp_dim": 64}, "head": {"decoder": "simple"}},
        "keypoints": "coco",
        "data": {"train": str(COCO_JSON), "cache_images": "decoded"},
        "train": {"batch_size": 2, "epochs": epochs, "steps_per_epoch": 3, "augmentation": True,
                  "learning_rate": 1e-3, "seed": 0},
        "output": {"dir": str(out_dir), "plot": False, "state_every_n_steps": 2},
    }


def _weights(preset_dir):
    import keras_pose

    return keras_pose.from_preset(str(preset_dir)).get_weights()


def _assert_same_weights(a, b, atol=1e-6):
    assert len(a) == len(b)
    worst = max(float(np.max(np.abs(x - y))) if x.size else 0.0 for x, y in zip(a, b))
    assert worst <= atol, worst
    return worst


@pytest.mark.slow  # three tiny training runs
def test_train_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    reference = train_from_config(_config(tmp_path / "reference"), verbose=0)

    interrupt_after_global_step(monkeypatch, 5)  # epoch 2, step 2 of 3; the newest state is global step 4
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_from_config(_config(out), verbose=0)
    monkeypatch.undo()
    info = describe_previous_run(str(out))
    assert not info["finished"] and info["state"]["global_step"] == 4
    assert (info["state"]["epoch"], info["state"]["step"]) == (1, 1)
    assert "resumable at epoch 2 step 2" in info["summary"]

    # Another config is refused, naming the keys that differ; the run is untouched.
    changed = _config(out)
    changed["train"]["learning_rate"] = 1e-2
    with pytest.raises(TrainConfigError, match="train.learning_rate.base"):
        train_from_config(changed, verbose=0)

    result = train_from_config(_config(out), verbose=0)
    assert result.files["resumed_from"].endswith("step-000000004")
    assert result.history["epoch"] == [1, 2, 3]
    worst = _assert_same_weights(reference.model.get_weights(), result.model.get_weights())
    print(f"resumed vs uninterrupted, max |dw| = {worst:.3g}")
    _assert_same_weights(_weights(reference.preset_dir), _weights(result.preset_dir))
    # Finished: the same command is refused now (nothing to resume), and says so.
    with pytest.raises(TrainConfigError, match="finished, so there is nothing to resume"):
        train_from_config(_config(out), verbose=0)


@pytest.mark.slow  # three CLI processes
def test_sigkill_then_the_same_command_resumes(tmp_path):
    config = tmp_path / "c.yaml"
    reference_config = tmp_path / "r.yaml"
    out = tmp_path / "run"
    config.write_text(yaml.safe_dump(_config(out, epochs=4)))
    reference_config.write_text(yaml.safe_dump(_config(tmp_path / "reference", epochs=4)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT))
    command = [sys.executable, "-m", "keras_pose.cli", "train", "--quiet"]
    subprocess.run(command + [str(reference_config)], env=env, check=True, capture_output=True, timeout=600)

    process = subprocess.Popen(command + [str(config)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state_dir = out / STATE_DIR
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        steps = [step for step, _ in list_training_states(state_dir)]
        if steps and max(steps) >= 5:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed: " + process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    killed_at = max(step for step, _ in list_training_states(state_dir))
    assert killed_at < 12 and not (out / "preset").exists()

    second = subprocess.run(command[:-1] + [str(config)], env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "Resuming the run" in second.stdout and f"global step {killed_at}" in second.stdout
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3, 4]
    worst = _assert_same_weights(_weights(tmp_path / "reference" / "preset"), _weights(out / "preset"))
    print(f"killed at global step {killed_at}; resumed vs uninterrupted, max |dw| = {worst:.3g}")


@pytest.mark.slow  # three tiny training runs
def test_resume_with_ema_continues_the_same_average(tmp_path, monkeypatch):
    """train.ema: the averages are saved with every state; a resumed run's preset (the EMA weights) equals
    an uninterrupted run's, and the averages differ from the raw weights (so the check can fail)."""

    def config(out):
        c = _config(out)
        c["train"]["ema"] = {"momentum": 0.05, "gamma": 3}
        return c

    reference = train_from_config(config(tmp_path / "reference"), verbose=0)
    interrupt_after_global_step(monkeypatch, 5)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_from_config(config(out), verbose=0)
    monkeypatch.undo()
    state = latest_training_state(str(out / STATE_DIR))
    assert state["global_step"] == 4 and os.path.isfile(os.path.join(state["folder"], "ema.npz"))
    result = train_from_config(config(out), verbose=0)
    assert result.files["resumed_from"].endswith("step-000000004")
    worst = _assert_same_weights(_weights(reference.preset_dir), _weights(result.preset_dir))
    print(f"EMA resumed vs uninterrupted preset, max |dw| = {worst:.3g}")
    plain = train_from_config(_config(tmp_path / "plain"), verbose=0)  # same seed, no EMA
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(_weights(plain.preset_dir), _weights(result.preset_dir)))
    assert gap > 1e-4, gap
