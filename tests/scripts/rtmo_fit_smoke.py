"""Fit a small RTMO for 2 steps with `compile()` defaults (RTMOLoss with SimOTA, rtmo_optimizer) on one backend.

Run under one Keras backend (KERAS_BACKEND); the targets are the 4 COCO
samples letterboxed to 128 x 128 (`rtmo_training_data`). Writes a .npz with
the per-step losses and loss terms, the number of positives, the largest
weight change of the network and of the training-only branches, and the
decoded outputs' finiteness after training.

    KERAS_BACKEND=jax python tests/scripts/rtmo_fit_smoke.py OUT.npz
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from pose_testing.rtmo_training_data import letterbox_coco_batch  # noqa: E402

from keras_pose.models.rtmo import RTMO  # noqa: E402

SIZE = (128, 128)


def main(out_path):
    keras.utils.set_random_seed(0)
    images, targets, _, _ = letterbox_coco_batch(SIZE)
    model = RTMO.from_checkpoint_config(image_size=SIZE, deepen_factor=0.33, widen_factor=0.125)
    model.compile()
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.backbone.trainable_variables]
    branches_before = [keras.ops.convert_to_numpy(v).copy() for v in model.training_branches.trainable_variables]
    history = model.fit(images, targets, batch_size=2, epochs=1, verbose=0, shuffle=False).history
    change = lambda old, variables: max(  # noqa: E731
        float(np.abs(keras.ops.convert_to_numpy(v) - o).max()) for v, o in zip(variables, old))
    decoded = model.end_to_end_model().predict_on_batch(images[:2])
    results = {f"history/{k}": np.asarray(v, np.float32) for k, v in history.items()}
    results["network_change"] = np.float32(change(before, model.backbone.trainable_variables))
    results["branches_change"] = np.float32(change(branches_before, model.training_branches.trainable_variables))
    results["decoded_finite"] = np.bool_(all(np.isfinite(keras.ops.convert_to_numpy(decoded[k])).all()
                                             for k in ("boxes", "scores", "keypoints", "keypoint_scores")))
    results["backend"] = np.asarray(keras.backend.backend())
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(sys.argv[1])
