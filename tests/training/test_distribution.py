"""Issue 14 (distributed training): the backends' own engines, checked against one-device training.

The equality checks run in subprocesses that make two devices out of this
CPU (JAX: ``--xla_force_host_platform_device_count=2``; TensorFlow: two
logical CPUs), train a one-layer ViTPose 3 steps of global batch 8 on one
device and distributed from the same weights, and compare the weights.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from keras_pose.errors import TrainConfigError
from keras_pose.training import load_train_config
from keras_pose.training.distribution import batch_norm_layers, setup_distribution, synchronized_batch_norm

from pose_testing.paths import DATA_DIR
from pose_testing.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "tests" / "scripts" / "distributed_equality.py"
COCO_JSON = DATA_DIR / "coco" / "test_coco.json"


def _config(tmp_path, **train):
    return {
        "model": {"input_size": [64, 48], "backbone": {"hidden_dim": 32, "num_layers": 1, "num_heads": 2,
                                                       "mlp_dim": 64}, "head": {"decoder": "simple"}},
        "keypoints": "coco",
        "data": {"train": str(COCO_JSON), "val": str(COCO_JSON), "cache_images": "decoded"},
        "train": {"batch_size": 4, "epochs": 2, "steps_per_epoch": 3, "augmentation": False, "learning_rate": 1e-3,
                  "seed": 0, **train},
        "evaluation": {"metric": "coco"},
        "output": {"dir": str(tmp_path / "run"), "plot": False},
    }


def test_config_values_are_checked(tmp_path):
    assert load_train_config(_config(tmp_path))["train"]["distribution"] is None
    d = load_train_config(_config(tmp_path, distribution="data"))["train"]["distribution"]
    assert d == {"kind": "data", "mesh": None, "coordinator": None, "num_processes": None, "process_id": None,
                 "sync_batch_norm": True}
    d = load_train_config(_config(tmp_path, distribution={"kind": "data", "sync_batch_norm": False}))
    assert d["train"]["distribution"]["sync_batch_norm"] is False
    for value, match in (("pipeline", "train.distribution.kind"), ({"kind": "data", "coordinator": "host"},
                         "HOST:PORT"), ({"kind": "data", "num_processes": 2, "process_id": 2}, "below num_processes"),
                         ({"kind": "data", "devices": 2}, "train.distribution"), (3, "train.distribution"),
                         ({"kind": "data", "sync_batch_norm": "yes"}, "sync_batch_norm.*true or false")):
        with pytest.raises(TrainConfigError, match=match):
            load_train_config(_config(tmp_path, distribution=value))



def test_command_line_flags_override_one_distribution_key_each(tmp_path):
    """--distribution / --mesh / --coordinator set their keys; the config's other keys (sync_batch_norm) stay."""
    import argparse

    from keras_pose.cli import train as train_cli

    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    for distribution in ({"kind": "model", "sync_batch_norm": False}, "model"):
        config = _config(tmp_path, distribution=distribution)
        args = parser.parse_args(["train", "config.yaml", "--distribution", "data", "--coordinator", "127.0.0.1:1234",
                                  "--num-processes", "2", "--process-id", "1"])
        d = load_train_config(config, train_cli._overrides(args))["train"]["distribution"]
        assert d["kind"] == "data" and d["coordinator"] == "127.0.0.1:1234"
        assert (d["num_processes"], d["process_id"]) == (2, 1)
        assert d["sync_batch_norm"] is (not isinstance(distribution, dict))  # kept from the config, else default

def test_tensorflow_refuses_what_it_cannot_run_and_names_the_alternative():
    assert setup_distribution(None).describe(8) == "one device; batch 8"
    with pytest.raises(TrainConfigError, match="ModelParallel.*KERAS_BACKEND=jax"):
        setup_distribution("model")
    with pytest.raises(TrainConfigError, match="MultiWorkerMirroredStrategy.*JAX backend"):
        setup_distribution("data", coordinator="127.0.0.1:1234", num_processes=2, process_id=0)
    with pytest.raises(TrainConfigError, match="need train.distribution.kind"):
        setup_distribution(None, coordinator="127.0.0.1:1234", num_processes=2, process_id=0)
    setup = setup_distribution("data")  # this process's one CPU: MirroredStrategy with one replica, no XLA
    assert setup.num_replicas == 1 and setup.jit_compile is False and setup.is_chief
    assert "MirroredStrategy over 1 replicas" in setup.describe(8) and "not rescaled" in setup.describe(8)
    assert not setup.sync_batch_norm  # one replica: nothing to synchronise


def test_synchronized_batch_norm_switches_every_norm_and_restores_the_config(monkeypatch):
    import keras
    import numpy as np

    inner = keras.Sequential([keras.layers.Conv2D(3, 1), keras.layers.BatchNormalization()], name="inner")
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="top")(inner(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(4, 4, 4, 2)).astype("float32")
    model.fit(x, np.zeros((4, 4, 4, 3), "float32"), verbose=0)
    assert model.train_function is not None
    norms = batch_norm_layers(model)
    assert len(norms) == 2 and "top" in [n.name for n in norms]  # the nested one found too
    with synchronized_batch_norm(model) as count:
        assert count == 2 and all(n.synchronized for n in norms)
        assert model.train_function is None  # retraced with the synchronised statistics
    assert not any(n.synchronized for n in norms) and model.train_function is None
    assert not any(layer["config"].get("synchronized") for layer in _layer_configs(model.get_config()))
    with synchronized_batch_norm(model, enabled=False) as count:
        assert count == 0 and not any(n.synchronized for n in norms)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")  # Keras refuses synchronized=True there
    with pytest.raises(TrainConfigError, match="jax backend.*global batch"):
        with synchronized_batch_norm(model):
            pass
    assert not any(n.synchronized for n in norms)


def _layer_configs(config):
    """Every nested layer config of a functional/sequential model config."""
    for layer in config.get("layers", []):
        yield layer
        yield from _layer_configs(layer.get("config", {}))


def _run(backend, *args, timeout=600):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, *map(str, args)], env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.backends
@pytest.mark.parametrize("backend,kind", [("tensorflow", "data"), ("jax", "data"), ("jax", "model")])
def test_distributed_steps_equal_one_device_steps(backend, kind):
    result = _run(backend, SCRIPT, kind)
    print(result)
    assert result["max_update"] > 1e-3  # the steps moved the weights
    assert result["max_abs_diff"] < 1e-6
    if kind == "data":
        assert result["replicas"] == 2
    else:
        assert result["replicas"] == 1 and result["qkv_sharding"] == [None, "model"]


BATCH_NORM_SCRIPT = REPO_ROOT / "tests" / "scripts" / "sync_batch_norm_equality.py"


@pytest.mark.backends
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_data_parallel_batch_norm_statistics_equal_one_device(backend):
    # A tiny CPM (14 batch norms), 3 SGD steps of global batch 8 on 2 simulated devices vs one device.
    result = _run(backend, BATCH_NORM_SCRIPT)
    print(result)
    assert result["replicas"] == 2 and result["batch_norm_layers"] == 14
    assert result["stat_moved"] > 0.5  # the moving statistics did move
    runs = ("sync", "local") if backend == "tensorflow" else ("global",)
    for mode in runs:
        assert not result[mode]["synchronized_after"]  # configs (and presets) stay loadable on every backend
    equal = result["sync" if backend == "tensorflow" else "global"]
    assert equal["max_weight_diff"] < 1e-5 and equal["max_stat_diff"] < 1e-5
    if backend == "tensorflow":
        assert result["sync"]["switched"] == 14 and "batch norm synchronised" in result["describe"]
        # Per-replica statistics (what MirroredStrategy does without synchronisation) are not the global batch's.
        assert result["local"]["max_stat_diff"] > 1e-2


@pytest.mark.backends
def test_torch_backend_says_what_to_use_instead():
    code = ("from keras_pose.training.distribution import setup_distribution\n"
            "try:\n    setup_distribution('data')\nexcept Exception as e:\n"
            "    import json; print(json.dumps({'error': type(e).__name__, 'message': str(e)}))\n")
    result = _run("torch", "-c", code)
    assert result["error"] == "TrainConfigError"
    assert "torch backend" in result["message"] and "KERAS_BACKEND=jax" in result["message"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # three JAX training processes
def test_two_process_jax_train_matches_one_process(tmp_path):
    import yaml

    single = tmp_path / "single.yaml"
    single.write_text(yaml.safe_dump(_config(tmp_path / "single")))
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path / "two")))
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT))
    command = [sys.executable, "-m", "keras_pose.cli", "train", "--quiet"]
    subprocess.run(command + [str(single)], env=env, check=True, capture_output=True, timeout=900)
    port = _free_port()
    processes = [subprocess.Popen(command + [str(config), "--distribution", "data", "--coordinator",
                                             f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
    outputs = [p.communicate(timeout=900) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    one = json.loads((tmp_path / "single" / "run" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "run" / "metrics.json").read_text())
    assert one["last"]["val_coco_AP"] == pytest.approx(two["last"]["val_coco_AP"], abs=1e-6)
    assert one["last"]["loss"] == pytest.approx(two["last"]["loss"], rel=1e-4)
    assert "Process 1: done; process 0 wrote the results" in outputs[1][0]
    import keras_pose

    a = keras_pose.from_preset(str(tmp_path / "single" / "run" / "preset")).get_weights()
    b = keras_pose.from_preset(str(tmp_path / "two" / "run" / "preset")).get_weights()
    worst = max(float(abs(x - y).max()) for x, y in zip(a, b))
    print(f"two processes vs one, max |dw| = {worst:.3g}")
    assert worst < 1e-5
    # Only process 0 wrote into the output folder; process 1's scratch folder is gone.
    assert sorted(os.listdir(tmp_path / "two" / "run")) == sorted(os.listdir(tmp_path / "single" / "run"))
