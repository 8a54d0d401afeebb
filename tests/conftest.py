"""Shared test fixtures: locations of ../shared data and golden cases."""

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DIR = pathlib.Path(os.environ.get("KERAS_POSE_SHARED_DIR", REPO_ROOT.parent / "shared"))
DATA_DIR = SHARED_DIR / "data"
GOLDEN_DIR = SHARED_DIR / "golden"


@pytest.fixture(scope="session")
def data_dir():
    if not DATA_DIR.is_dir():
        pytest.fail(f"shared sample data not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(scope="session")
def golden_dir():
    if not GOLDEN_DIR.is_dir():
        pytest.fail(f"golden parity cases not found at {GOLDEN_DIR}")
    return GOLDEN_DIR
