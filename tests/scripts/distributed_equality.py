"""Distributed vs one-device training on the same global batches (run in a subprocess).

    KERAS_BACKEND=jax python distributed_equality.py data|model
    KERAS_BACKEND=tensorflow python distributed_equality.py data

Sets up two devices on this CPU (JAX: --xla_force_host_platform_device_count=2;
TensorFlow: two logical CPUs), trains a one-layer ViTPose (simple decoder)
for 3 steps of global batch 8 on one device, then the same from the same
weights under `keras_pose.training.distribution`, and prints one JSON line:
the replica count and the largest weight difference.
"""

import json
import sys

import keras

from keras_pose.training.distribution import setup_distribution
from keras_pose.training.distribution import simulate_cpu_devices

kind = sys.argv[1]
# `data COORDINATOR PROCESS_ID`: one device in each of two processes instead of two in one.
multi = sys.argv[2:4]
if not multi:
    simulate_cpu_devices(2)

import numpy as np  # noqa: E402

from keras_pose.models.vitpose import ViTPose, ViTPoseBackbone  # noqa: E402


def build():
    keras.utils.set_random_seed(0)
    model = ViTPose(ViTPoseBackbone(image_size=(64, 48), hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64),
                    decoder="simple")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="keypoint_mse", jit_compile=False)
    return model


def data():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 64, 48, 3)).astype("float32")
    y = {"heatmaps": rng.uniform(size=(24, 16, 12, 17)).astype("float32"),
         "keypoint_weights": np.ones((24, 17), "float32")}
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8, drop_remainder=True)


setup = setup_distribution(kind, mesh="1,2" if kind == "model" else None, coordinator=multi[0] if multi else None,
                           num_processes=2 if multi else None, process_id=int(multi[1]) if multi else None)
# One device first (with the distribution unset), then the same steps distributed from the same weights.
if setup.distribution is not None:
    keras.distribution.set_distribution(None)
single = build()
start = single.get_weights()
single.fit(data(), epochs=1, verbose=0, shuffle=False)
if setup.distribution is not None:
    keras.distribution.set_distribution(setup.distribution)
with setup.scope():
    distributed = build()
    distributed.set_weights(start)
distributed.fit(data(), epochs=1, verbose=0, shuffle=False)
worst = max(float(np.max(np.abs(a - np.asarray(b)))) for a, b in zip(single.get_weights(),
                                                                        distributed.get_weights()))
moved = max(float(np.max(np.abs(a - b))) for a, b in zip(start, single.get_weights()))
result = {"kind": kind, "backend": keras.backend.backend(), "replicas": setup.num_replicas,
          "max_abs_diff": worst, "max_update": moved, "describe": setup.describe(8)}
if kind == "model":  # the ViT kernels really are split over the model axis
    qkv = next(v for v in distributed.weights if v.path.endswith("attention/qkv/kernel"))
    result["qkv_sharding"] = list(qkv.value.sharding.spec)
print(json.dumps(result))
