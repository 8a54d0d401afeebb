"""On the JAX and PyTorch backends keras-pose never imports TensorFlow for inference.

Each check runs in a fresh interpreter (`KERAS_BACKEND` is read once per
process): import the package, build a ViTPose, load a preset saved by this
test's process with `keras_pose.from_preset`, predict keypoints. (Saving a
preset is not covered: Keras' own `serialize_keras_object` probes for
TensorFlow with an import.) TensorFlow must stay
out of `sys.modules` the whole time; building a `tf.data` pipeline then
imports it and hands it to keras-hub (which recognises tf.data datasets
again).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import json, sys
import numpy as np
out = {}
import keras_pose
out["after_import"] = "tensorflow" in sys.modules
from keras_pose.models.vitpose import ViTPose
model = ViTPose.from_checkpoint_config(
    image_size=(64, 48), hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64, name="tiny_vitpose"
)
out["after_build"] = "tensorflow" in sys.modules
loaded = keras_pose.from_preset(sys.argv[1])
out["after_from_preset"] = "tensorflow" in sys.modules
image = np.random.default_rng(0).integers(0, 255, (80, 60, 3), dtype=np.uint8)
result = loaded.predict_keypoints(image, boxes=[[5, 5, 40, 60]])
out["keypoints_shape"] = list(np.asarray(result.keypoints).shape)
out["after_predict"] = "tensorflow" in sys.modules
from keras_hub.src.utils import tensor_utils
out["keras_hub_tf_before_pipeline"] = tensor_utils.tf is not None
import keras_pose.data  # the tf.data pipelines: imports TensorFlow
out["after_pipeline_import"] = "tensorflow" in sys.modules
out["keras_hub_tf_after_pipeline"] = tensor_utils.tf is not None
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    from keras_pose.models.vitpose import ViTPose

    model = ViTPose.from_checkpoint_config(
        image_size=(64, 48), hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64, name="tiny_vitpose"
    )
    path = tmp_path_factory.mktemp("tiny_vitpose") / "preset"
    model.save_to_preset(str(path))
    return path


@pytest.mark.backends
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_inference_does_not_import_tensorflow(backend, tiny_preset, tmp_path):
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tiny_preset)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(tmp_path),
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT") :])
    assert out["keypoints_shape"] == [1, 17, 2]
    assert out["after_import"] is False
    assert out["after_build"] is False
    assert out["after_from_preset"] is False
    assert out["after_predict"] is False
    assert out["keras_hub_tf_before_pipeline"] is False
    assert out["after_pipeline_import"] is True
    assert out["keras_hub_tf_after_pipeline"] is True


def test_tensorflow_backend_keeps_keras_hub_whole(tmp_path):
    code = (
        "import sys\n"
        "from keras_pose.utils.backend_imports import import_keras_hub\n"
        "import_keras_hub()\n"
        "from keras_hub.src.utils import tensor_utils, pipeline_model\n"
        "print('RESULT', tensor_utils.tf is not None, pipeline_model.tf is not None)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "RESULT True True" in proc.stdout, proc.stderr[-3000:]
