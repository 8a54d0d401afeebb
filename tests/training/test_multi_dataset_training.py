"""`train_from_config` / `keras-pose train` with data.train as a list of datasets (ViTPose++)."""

import json

import numpy as np
import pytest

import keras

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

    config = _config(preset, tmp_path / "run", ema={"momentum": 0.0002})
    with pytest.raises(TrainConfigError, match="train.ema"):
        train_from_config(config, verbose=0)


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
