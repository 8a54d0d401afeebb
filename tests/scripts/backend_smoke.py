"""Build a small model of every family, run it and fit it for 2 steps.

Run under one Keras backend (KERAS_BACKEND); writes a .npz with each
family's forward output on a fixed input (weights set from a fixed seed, so
outputs are comparable across backends) and the two fit losses.

    KERAS_BACKEND=jax python tests/scripts/backend_smoke.py OUT.npz
"""

import os
import sys
import time

import keras
import numpy as np

import keras_pose
from keras_pose.models.cpm import CPMBackbone
from keras_pose.models.hourglass import HourglassBackbone


def _seed_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        name = variable.path
        if "moving_variance" in name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "gamma" in name or name.endswith("scale"):
            value = 1.0 + rng.normal(0.0, 0.1, shape)
        elif len(shape) <= 1:
            value = rng.normal(0.0, 0.05, shape)
        else:
            fan_in = int(np.prod(shape[:-1])) or 1
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        variable.assign(value.astype(variable.dtype if variable.dtype != "bfloat16" else "float32"))
    return model


# Families whose bfloat16 forward is compared here (the others are covered
# by their own test files on the TensorFlow backend).
MIXED_FAMILIES = ("vitpose", "vitpose_simple", "cpm", "cpn")


def _builders():
    """``{family: () -> model}``: each family's small model, built on demand."""
    tiny_vit = dict(hidden_dim=32, num_layers=2, num_heads=4, mlp_dim=64)
    return {
        "vitpose": lambda: keras_pose.ViTPose(
            keras_pose.ViTPoseBackbone(image_size=(64, 48), **tiny_vit), decoder="classic", deconv_filters=(16, 16)
        ),
        "vitpose_simple": lambda: keras_pose.ViTPose(
            keras_pose.ViTPoseBackbone(image_size=(64, 48), **tiny_vit), decoder="simple"
        ),
        "vitpose_plus": lambda: keras_pose.ViTPosePP(
            keras_pose.ViTPoseBackbone(image_size=(64, 48), num_experts=6, part_features=8, **tiny_vit),
            dataset="ap10k",
            deconv_filters=(16, 16),
        ),
        "cpm": lambda: keras_pose.CPM(
            backbone=CPMBackbone(
                num_keypoints=17, image_size=(64, 48), num_stages=3, feat_channels=8, middle_channels=4,
                stem_channels=8, stem_mid_channels=4, stem_head_channels=16,
            )
        ),
        "hourglass": lambda: keras_pose.Hourglass(
            backbone=HourglassBackbone(
                image_size=(32, 32), num_stacks=2, downsample_times=2, stage_channels=[8, 8, 12],
                stage_blocks=[1, 1, 2], feat_channels=8, stem_channels=4,
            )
        ),
        "cpn": lambda: keras_pose.CPN(
            backbone=keras_pose.CPNBackbone(
                stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_filters=[64, 8, 8, 8], image_shape=(64, 64, 3)
            ),
            global_channels=16,
            refine_planes=8,
        ),
    }


def _targets(model, batch, rng):
    final = model.heatmaps_from_outputs(model.outputs if len(model.outputs) > 1 else model.outputs[0])
    h, w, k = (int(d) for d in final.shape[1:])
    heatmaps = rng.uniform(0.0, 1.0, (batch, h, w, k)).astype("float32")
    weights = (rng.uniform(size=(batch, k)) > 0.2).astype("float32")
    return {"heatmaps": heatmaps, "keypoint_weights": weights}


def _one_sample_batches(x, targets):
    """fit's data: batches of one sample as ``(x, y, None)``, the structure train_on_batch passes on.

    Arrays given to fit would come as ``(x, y)``: on JAX that pytree differs from
    train_on_batch's ``(x, y, None)`` and the step was XLA-compiled a second
    time for train_on_batch (CPN: 10 s; with this, 0.05 s)."""
    for i in range(len(x)):
        yield x[i : i + 1], {key: value[i : i + 1] for key, value in targets.items()}, None


def main(out_path, families=None):
    results = {}
    rng = np.random.default_rng(123)
    for name, build in _builders().items():
        if families and name not in families:
            continue
        start = time.perf_counter()
        model = build()
        _seed_weights(model)
        h, w = model.image_size
        x = np.random.default_rng(7).normal(0.0, 1.0, (2, h, w, 3)).astype("float32")
        final = model.heatmaps_from_outputs(model(x, training=False))
        results[f"{name}/forward"] = keras.ops.convert_to_numpy(final)
        # JAX: one XLA-compiled step (fit and train_on_batch share it) costs less than
        # JAX's op-by-op eager steps (CPN: 18 s against 63 s). TensorFlow and PyTorch:
        # eager steps (compiling six training graphs would dominate the run; XLA fits
        # are covered by tests/training/test_training.py).
        model.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=keras.backend.backend() == "jax")
        batches = _one_sample_batches(x, _targets(model, 2, rng))
        history = model.fit(batches, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
        results[f"{name}/loss"] = np.asarray(history.history["loss"], np.float32)
        # Mixed precision forward (bfloat16 compute, float32 heatmaps).
        if name in MIXED_FAMILIES:
            keras.config.set_dtype_policy("mixed_bfloat16")
            try:
                mixed = build()
                mixed.set_weights(model.get_weights())
                out = keras.ops.convert_to_numpy(mixed.heatmaps_from_outputs(mixed(x, training=False)))
                results[f"{name}/mixed_dtype"] = np.array(str(out.dtype))
                results[f"{name}/mixed"] = out.astype("float32")
            finally:
                keras.config.set_dtype_policy("float32")
        # One step on a target dict (keras-hub's PipelineModel converts `y` with one convert_to_tensor),
        # on a batch of fit's size (JAX: the compiled step is reused, not compiled again for another shape).
        step_targets = _targets(model, 1, np.random.default_rng(5))  # own generator: the fits above stay as they were
        results[f"{name}/train_on_batch"] = np.asarray(model.train_on_batch(x[:1], step_targets), np.float32)
        print(name, "ok", f"{time.perf_counter() - start:.1f}s", flush=True)
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or None)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: TensorFlow with torch loaded in the same
    # process can abort in its atexit handlers after all work is done.
    os._exit(0)
