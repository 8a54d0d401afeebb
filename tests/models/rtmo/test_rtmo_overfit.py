"""RTMO overfit: a small RTMO trained with `fit` on the 4 COCO sample images gains COCO AP on them.

The targets are the samples letterboxed as at inference (`rtmo_training_data`);
AP is COCO keypoint AP (pycocotools via `CocoKeypointEvaluator`) of the
model's own instances, mapped back to image pixels.
"""

import os

import cv2
import keras
import numpy as np
import pytest
from pose_testing.rtmo_training_data import COCO_DIR, letterbox_coco_batch

from keras_pose.metrics.coco_metric import CocoKeypointEvaluator
from keras_pose.models.rtmo import RTMO
from keras_pose.models.rtmo.rtmo_training import rtmo_optimizer

INPUT = (256, 256)
WIDEN = 0.25
STEPS = int(os.environ.get("KERAS_POSE_RTMO_OVERFIT_STEPS", "25"))
# The first loss is the untrained model's loss on the batch: a function of the seeded initial weights only
# (the same in one process after other tests, and on CI; the 53 once noted here was most likely measured before the
# training branches / weight-creation order changed, i.e. with other initial weights). Measured (TF, seed 0,
# lr 2e-3): loss 36.63 -> 30.55 after 25 steps (0.83x); before the DCC BatchNorm fix 37.01 -> 30.11 (CI the
# same); per term now mle 3.00 -> -1.22, vis 0.80 -> 0.67, oks 27.83 -> 25.96 (0.93x). The checks leave room for numeric
# drift between machines and fail when the weights do not train (every term stays put).
LOSS_RATIO = 0.9
# The goal is AP >= 0.8, not reached on CPU yet. Measured AP (score threshold 0.1, lr 2e-3, seed 0,
# TF, shared 2-core CPU): untrained 0.000; after 25 / 75 / 125 / 200 steps 0.000 / 0.006 / 0.196 / 0.621
# (loss 36.6 -> 30.6 / 23.5 / 19.7 / 18.0; 200 steps ~500 CPU-s). lr 5e-3: 0.313 / 0.207 / 0.311 after
# 100 / 150 / 200 steps (loss 18.6 / 16.0 / 14.8: lower loss, noisier AP); score threshold 0.01 instead of
# 0.1 changes AP by <= 0.025. Before the DCC BatchNorm took its
# statistics from the positives only (padded rows set them): 0.07 / 0.09 / 0.28 / 0.29 after 75 / 100 /
# 150 / 200 steps. KERAS_POSE_RTMO_OVERFIT_STEPS=150 or more also checks the AP gain (>= 0.2 from 150
# steps, >= 0.5 from 200).
MIN_AP = 0.2
MIN_AP_200 = 0.5  # 200 steps or more (0.621 measured)
AP_STEPS = 150


def coco_ap(model, images, matrices, ids, evaluator):
    """AP of the model's decoded instances (non-finite rows of an untrained model dropped)."""
    decoded = model.end_to_end_model().predict_on_batch(images)
    decoded = {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in decoded.items()}
    results = []
    for i, image_id in enumerate(ids):
        inverse = cv2.invertAffineTransform(matrices[i])
        for row in np.nonzero(decoded["valid"][i])[0]:
            keypoints, score = decoded["keypoints"][i][row], float(decoded["scores"][i][row])
            if not (np.isfinite(keypoints).all() and np.isfinite(score)):
                continue
            keypoints = keypoints @ inverse[:, :2].T + inverse[:, 2]
            values = np.concatenate([keypoints, decoded["keypoint_scores"][i][row][:, None]], axis=1)
            results.append({"image_id": image_id, "category_id": 1, "score": score,
                            "keypoints": values.ravel().tolist()})
    return evaluator.evaluate(results)["AP"]


@pytest.mark.slow
def test_rtmo_overfits_the_coco_samples():
    keras.utils.set_random_seed(0)
    images, targets, matrices, ids = letterbox_coco_batch(INPUT)
    evaluator = CocoKeypointEvaluator(os.path.join(COCO_DIR, "test_coco.json"))
    model = RTMO.from_checkpoint_config(image_size=INPUT, deepen_factor=0.33, widen_factor=WIDEN)
    untrained = coco_ap(model, images, matrices, ids, evaluator)
    model.compile()
    model.compile(optimizer=rtmo_optimizer(model, learning_rate=2e-3, clipnorm=10.0))
    trainable = {id(v) for v in model.trainable_variables}
    assert all(id(v) in trainable for v in model.training_branches.trainable_variables)
    assert not model.has_task_weights()  # a preset keeps the network only
    history = model.fit(images, targets, batch_size=4, epochs=STEPS, verbose=0, shuffle=False)
    trained = coco_ap(model, images, matrices, ids, evaluator)
    losses = history.history["loss"]
    print(f"RTMO overfit: AP untrained {untrained:.3f} -> trained {trained:.3f}; loss {losses[0]:.2f} -> "
          f"{losses[-1]:.2f}; " + " ".join(f"{k[5:]} {v[0]:.2f} -> {v[-1]:.2f}" for k, v in history.history.items()
                                            if k.startswith("loss_")))
    assert losses[-1] < LOSS_RATIO * losses[0]
    # the training-only branches train: the MLE term (sigma branch, DCC) and the visibility BCE fall
    assert history.history["loss_mle"][-1] < history.history["loss_mle"][0] - 1.0
    assert history.history["loss_vis"][-1] < 0.95 * history.history["loss_vis"][0]
    assert history.history["loss_oks"][-1] < 0.97 * history.history["loss_oks"][0]
    assert untrained < 0.1
    if STEPS >= AP_STEPS:
        assert trained >= (MIN_AP_200 if STEPS >= 200 else MIN_AP)
