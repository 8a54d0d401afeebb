"""Batch norm under data-parallel training vs one device (run in a subprocess).

    KERAS_BACKEND=tensorflow|jax python sync_batch_norm_equality.py

Makes two devices out of this CPU, trains a tiny CPM (batch norm in every
stage) 3 SGD steps of global batch 8 on one device, then the same from the
same weights data-parallel over the two devices, with the batch norms
synchronised (`synchronized_batch_norm`) and without, and prints one JSON
line: per run, the largest difference from the one-device run of the trained
weights and of the moving means and variances (|a - b| / (|a| + 1)). On JAX
(one run, nothing switched) one program sees the global batch. The samples of the
two replicas' halves have different scales, so per-replica statistics differ
from the global batch's.
"""

import json

import keras

from keras_pose.training.distribution import (
    batch_norm_layers,
    setup_distribution,
    simulate_cpu_devices,
    synchronized_batch_norm,
)

simulate_cpu_devices(2)

import numpy as np  # noqa: E402

from keras_pose.models.cpm import CPM, CPMBackbone  # noqa: E402


def build():
    keras.utils.set_random_seed(0)
    backbone = CPMBackbone(num_keypoints=17, image_size=(32, 24), num_stages=2, feat_channels=8, middle_channels=8,
                           stem_channels=8, stem_mid_channels=8, stem_head_channels=16)
    model = CPM(backbone)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="keypoint_mse",
                  jit_compile=keras.backend.backend() != "tensorflow")  # no XLA under MirroredStrategy on CPU
    return model


def data():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    scale = np.repeat(np.tile([0.3, 3.0], 6), 2).astype("float32")[:, None, None, None]  # replica halves differ
    x = rng.normal(size=(24, 32, 24, 3)).astype("float32") * scale + 0.5
    y = {"heatmaps": rng.uniform(size=(24, 4, 3, 17)).astype("float32"),
         "keypoint_weights": np.ones((24, 17), "float32")}
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8, drop_remainder=True)


setup = setup_distribution("data")
if setup.distribution is not None:
    keras.distribution.set_distribution(None)
single = build()
start = single.get_weights()
single.fit(data(), epochs=1, verbose=0, shuffle=False)
if setup.distribution is not None:
    keras.distribution.set_distribution(setup.distribution)


def worst(model, stats):
    out = 0.0
    for a, b in zip(single.weights, model.weights):
        if ("moving_" in a.path) == stats:
            a, b = np.asarray(a), np.asarray(b)
            out = max(out, float(np.max(np.abs(a - b) / (np.abs(a) + 1.0))))
    return out


result = {"backend": keras.backend.backend(), "replicas": setup.num_replicas,
          "batch_norm_layers": len(batch_norm_layers(single)), "describe": setup.describe(8),
          "stat_moved": max(float(np.max(np.abs(a - np.asarray(b.value))))
                            for a, b in zip(start, single.weights) if "moving_" in b.path)}
for mode in ("sync", "local") if keras.backend.backend() == "tensorflow" else ("global",):
    with setup.scope():
        distributed = build()
        distributed.set_weights(start)
    # On JAX (mode "global") nothing is switched: Keras refuses synchronized=True there, and
    # one program sees the sharded global batch anyway.
    with synchronized_batch_norm(distributed, enabled=mode == "sync") as switched:
        distributed.fit(data(), epochs=1, verbose=0, shuffle=False)
    result[mode] = {"switched": switched, "max_weight_diff": worst(distributed, False),
                    "max_stat_diff": worst(distributed, True),
                    "synchronized_after": any(layer.get_config()["synchronized"]
                                              for layer in batch_norm_layers(distributed))}
print(json.dumps(result))
