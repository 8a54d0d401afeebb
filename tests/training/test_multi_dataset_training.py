"""`train_from_config` / `keras-pose train` with data.train as a list of datasets (ViTPose++)."""

import json

import numpy as np
import pytest

import keras

from pose_testing.interrupt import interrupt_after_global_step
from pose_testing.paths import DATA_DIR

import keras_pose
from keras_pose.models.vitpose import ViTPoseBackbone, ViTPosePP
from keras_pose.training import TrainConfigError, load_train_config

TINY_PP = {"hidden_dim": 32, "num_layers": 1, "num_heads": 4, "mlp_dim": 64, "num_experts": 2, "part_features": 8}
COCO = str(DATA_DIR / "coco" / "test_coco.json")
AP10K = str(DATA_DIR / "ap10k" / "test_ap10k.json")


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = ViTPosePP(ViTPoseBackbone(image_size=(64, 48), **TINY_PP), datasets=["coco", "mpii"], decoder="simple")
    path = str(tmp_path_factory.mktemp("pp") / "preset")
    model.save_to_preset(path)
    return path


def _config(preset, out, **train):
    return {
        "model": {"preset": preset},
        "data": {"train": [
            {"dataset": "coco", "annotation_file": COCO, "ratio": 1},
            {"dataset": "ap10k", "annotation_file": AP10K, "ratio": 1, "keypoints": "ap10k", "init_from": "coco"},
        ]},
        "train": {"batch_size": 8, "epochs": 3, "steps_per_epoch": 6, "augmentation": False,
                  "optimizer": {"type": "adam"}, "learning_rate": {"base": 1e-3, "schedule": "constant"}, **train},
        "output": {"dir": str(out), "plot": False},
    }


def test_list_config_is_validated(preset, tmp_path):
    config = load_train_config(_config(preset, tmp_path / "run"))
    entries = config["data"]["train"]
    assert [e["dataset"] for e in entries] == ["coco", "ap10k"] and entries[1]["ratio"] == 1.0
    bad = _config(preset, tmp_path / "run")
    bad["data"]["train"][1]["ratoi"] = 2
    with pytest.raises(TrainConfigError, match="ratoi"):
        load_train_config(bad)
    bad = _config(preset, tmp_path / "run")
    bad["data"]["train"][1]["dataset"] = "coco"
    with pytest.raises(TrainConfigError, match="listed twice"):
        load_train_config(bad)
    bad = _config(preset, tmp_path / "run")
    bad["data"]["train"][0]["ratio"] = 0
    with pytest.raises(TrainConfigError, match="ratio"):
        load_train_config(bad)


def test_unsupported_options_are_refused_by_name(preset, tmp_path):
    from keras_pose.training import train_from_config

    config = _config(preset, tmp_path / "run", distribution="data")
    with pytest.raises(TrainConfigError, match="train.distribution.*train on one device"):
        train_from_config(config, verbose=0)
    config = _config(preset, tmp_path / "run")
    config["data"]["val"] = COCO
    with pytest.raises(TrainConfigError, match=r"data.val.*data.train\[i\].val"):
        train_from_config(config, verbose=0)
    config = _config(preset, tmp_path / "run")
    config["data"]["train"][1]["val"] = {"annotation_file": COCO, "imageroot": "x"}
    with pytest.raises(TrainConfigError, match="imageroot"):
        load_train_config(config)


def _recipe_config(preset, out):
    config = _config(preset, out, epochs=2, steps_per_epoch=3, ema={"momentum": 0.3, "gamma": 1},
                     freeze=["attention"], optimizer={"type": "adamw", "weight_decay": 0.05, "layer_decay": 0.75})
    config["data"]["train"][0]["val"] = COCO
    config["data"]["train"][1]["val"] = {"annotation_file": AP10K}
    config["output"]["state_every_n_steps"] = 2
    return config


@pytest.mark.slow  # two tiny two-dataset runs with evaluation
def test_recipes_validation_per_dataset_and_resume(preset, tmp_path, monkeypatch):
    from keras_pose.training import train_from_config
    from keras_pose.training.ema import EMA_FILE
    from keras_pose.training.resume import list_training_states
    from keras_pose.models.vitpose.vitpose_multi_dataset import ViTPosePPMultiDataset
    from keras_pose.training.ema import _averaged_variables

    start = keras_pose.from_preset(preset)
    initial = {v.path: keras.ops.convert_to_numpy(v) for v in start.weights}
    interrupt_after_global_step(monkeypatch, 5)  # epoch 2, step 2 of 3; the newest state is global step 4
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_from_config(_recipe_config(preset, out), verbose=0)
    monkeypatch.undo()
    assert [step for step, _ in list_training_states(str(out / "checkpoints" / "state"))][-1] == 4
    result = train_from_config(_recipe_config(preset, out), verbose=0)
    assert result.files["resumed_from"].endswith("step-000000004")
    reference = train_from_config(_recipe_config(preset, tmp_path / "reference"), verbose=0)
    a, b = reference.model.get_weights(), result.model.get_weights()
    worst = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
    print(f"multi-dataset resumed vs uninterrupted, max |dw| = {worst:.3g}")
    assert worst < 1e-6

    # Validation per dataset, each through its own head and keypoint spec.
    metrics = result.metrics
    assert metrics["val_instances"] == {"coco": 12, "ap10k": 2}
    for name in ("coco", "ap10k"):
        assert 0.0 <= metrics["val"][name]["coco_AP"] <= 1.0
        assert len(result.history[f"val_{name}_coco_AP"]) == 2
    assert metrics["val"]["coco"]["coco_AP"] == pytest.approx(reference.metrics["val"]["coco"]["coco_AP"], abs=1e-6)
    # Frozen: every block's attention as in the preset; the mpii expert (not trained) bit-identical too.
    final = {v.path: keras.ops.convert_to_numpy(v) for v in result.model.weights}
    for path, value in initial.items():
        if "attention" in path or "head_mpii" in path:
            assert np.array_equal(final[path], value), path
    expert = "transformer_layer_0/mlp/experts_kernel"
    assert np.array_equal(final[expert][1], initial[expert][1])  # mpii's row
    assert not np.array_equal(final[expert][0], initial[expert][0])  # coco's row trained
    # EMA: the preset holds the averages of the last state's ema.npz, over all 6 steps.
    saved = keras_pose.from_preset(result.preset_dir)
    averages_model = ViTPosePPMultiDataset(keras_pose.from_preset(result.preset_dir))
    newest = list_training_states(str(out / "checkpoints" / "state"))[-1][1]
    with np.load(f"{newest}/{EMA_FILE}") as ema:
        arrays = [ema[f"ema_{i}"] for i in range(len(ema.files) - 1)]
        info = json.loads(ema["info"].tobytes().decode())
    assert info["steps"] == 6
    variables = _averaged_variables(averages_model)
    assert len(variables) == len(arrays)
    for variable, array in zip(variables, arrays):
        variable.assign(array)
    ema_weights = {v.path: keras.ops.convert_to_numpy(v) for v in averages_model.pose_model.weights}
    for v in saved.weights:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(v), ema_weights[v.path], atol=1e-7, err_msg=v.path)


@pytest.mark.slow  # ~20 s: a two-dataset run through the CLI
def test_cli_trains_two_datasets(preset, tmp_path, capsys):
    import yaml

    from keras_pose.cli import main

    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(_config(preset, tmp_path / "run")))
    assert main(["train", str(path)]) in (0, None)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["datasets"] == ["coco", "ap10k"] and metrics["train_instances"] == {"coco": 12, "ap10k": 2}
    assert metrics["last_loss"] < metrics["first_loss"]
    for name in ("coco", "ap10k"):  # each dataset's own training loss falls
        first, last = metrics["dataset_losses"][name]
        assert last < first
    trained = keras_pose.from_preset(str(tmp_path / "run" / "preset"))
    assert isinstance(trained, ViTPosePP) and trained.datasets == ["coco", "mpii", "ap10k"]
    assert trained.with_dataset("ap10k").keypoint_spec.name == "ap10k"
    x = np.zeros((1, 64, 48, 3), np.float32)
    assert keras.ops.convert_to_numpy(trained.with_dataset("ap10k")(x)).shape == (1, 16, 12, 17)
