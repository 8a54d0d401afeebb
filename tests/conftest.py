"""Shared test fixtures. Where the sample data and golden parity cases are is
in `pose_testing.paths` (this folder is on `sys.path` through this file, so the
test modules import `pose_testing` helpers directly).
"""

import pytest

from pose_testing.http_server import LocalHTTPServer
from pose_testing.paths import DATA_DIR, GOLDEN_DIR


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


@pytest.fixture
def home(tmp_path, monkeypatch):
    """KERAS_POSE_HOME in tmp_path, downloads allowed: the preset cache of one test."""
    root = tmp_path / "kp_home"
    monkeypatch.setenv("KERAS_POSE_HOME", str(root))
    monkeypatch.delenv("KERAS_POSE_OFFLINE", raising=False)
    return root


@pytest.fixture
def server(tmp_path):
    """A LocalHTTPServer on 127.0.0.1 serving tmp_path/srv."""
    root = tmp_path / "srv"
    root.mkdir()
    srv = LocalHTTPServer(root)
    yield srv
    srv.close()
