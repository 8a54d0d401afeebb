"""Shared test fixtures: where the sample data and golden parity cases are.

The repository carries them (`tests/data/`, `tests/golden/`; provenance in
their READMEs), so the suite runs on a fresh clone. `KERAS_POSE_SHARED_DIR`
points the tests at another copy: a folder holding `data/` and `golden/`.
"""

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"
SHARED_DIR = pathlib.Path(os.environ["KERAS_POSE_SHARED_DIR"]) if os.environ.get("KERAS_POSE_SHARED_DIR") else TESTS_DIR
DATA_DIR = SHARED_DIR / "data"
GOLDEN_DIR = SHARED_DIR / "golden"


@pytest.fixture(scope="session")
def data_dir():
    if not DATA_DIR.is_dir():
        pytest.fail(f"sample data not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(scope="session")
def golden_dir():
    if not GOLDEN_DIR.is_dir():
        pytest.fail(f"golden parity cases not found at {GOLDEN_DIR}")
    return GOLDEN_DIR


@pytest.fixture(scope="session")
def tiny_preset_dir(tmp_path_factory):
    """A preset folder of a one-layer ViTPose (64x48 input, COCO keypoints, simple decoder): fast CLI runs."""
    import keras_pose

    backbone = keras_pose.ViTPoseBackbone(image_size=(64, 48), hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64)
    model = keras_pose.ViTPose(backbone, decoder="simple")
    directory = tmp_path_factory.mktemp("preset") / "tiny"
    model.save_to_preset(str(directory))
    return str(directory)
