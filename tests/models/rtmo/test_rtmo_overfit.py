"""Overfit through the training pipeline: a small RTMO fitted on the four COCO samples gains COCO AP on them.

The user's path end to end: ``load_coco_keypoints`` (COCO-17 file) ->
``keras_pose.data.model_dataset(rtmo, ...)`` (the whole-image pipeline:
letterbox to the input, BGR 0..255, padded instance targets, ignore masks of
the people without keypoints) -> ``model.fit`` (`RTMOLoss` with SimOTA,
`rtmo_optimizer`: AdamW, no decay on norms / biases, global clip) ->
``evaluate_pose_model`` (``predict_keypoints`` per image with the model's
test settings: score threshold 0.1, NMS 0.65; pycocotools keypoint AP).

Model: RTMO-t depth (deepen 0.33) at widen 0.25 (RTMO-t proper is 0.375),
160 x 160 input in CI's 60-step run (256 x 256 in the measurements below;
384 x 384 in the long mode), batch 4 (the 4 images, 12 people with keypoints;
the two smallest ~300 px^2 in area at 256 px), `norm_momentum` 0.9, lr warm-up then
cosine decay over the run (``SCHEDULE``).

Causes of the slow AP rise found (measured with a scratch loop over the same
pipeline: fit in chunks, `evaluate_pose_model` after each; TF, seed 0, shared
2-core CPU; "recal" = AP with the BatchNorm statistics recomputed from the
training batch, i.e. train-mode AP):

- `ConvModule`'s he_normal init (6x mmpose's Kaiming a=sqrt(5) variance):
  the untrained model's eval outputs reached 1e4, its keypoints were NaN
  (``evaluate_pose_model`` raised NonFiniteModelError), and training was
  slower: loss 15.8 vs 11.3 after 100 steps at lr 2e-3 with the mmpose init.
- eval-mode BatchNorm after a short run: momentum 0.97 (mmpose's 0.03) keeps
  0.97^t of the (0, 1) start and trails the weights. lr 2e-3, mmpose init:
  AP 0.004 / 0.008 / 0.467 after 50 / 100 / 200 steps, recal 0.135 / 0.319 /
  0.455. he_normal init, momentum 0.97: 0.006 / 0.290 (recal 0.106 / 0.413)
  after 50 / 100; momentum 0.9: 0.010 / 0.339 (recal 0.074 / 0.415).

This recipe (norm_momentum 0.9, peak lr 3e-3, mmpose init), AP with the
cosine over 300 steps: 0.531 / 0.672 / 0.779 after 100 / 200 / 300 steps
(AP50 0.708 / 0.753 / 0.871, AR 0.717 / 0.833 / 0.833; recal the same to
+-0.02: the eval statistics now follow), loss 16.6 / 8.7 / 6.2; ~2.6 CPU-s
a step on the loaded machine (~1.2 when it is quiet).

The CI run (60 steps, cosine over 60): untrained AP 0.000 (AR 0.000), after
60 steps AP 0.067, AP50 0.261, AR 0.200; loss means first -> last quarter
29.5 -> 13.2 (oks 24.5 -> 15.1, mle -1.1 -> -4.4, vis 0.68 -> 0.33, bbox
4.7 -> 1.6, cls 0.73 -> 0.52); pytest 272 user + 32 sys CPU-s, 636 s wall
with two other training processes on the 2 cores (XLA compilation of the
step ~90 CPU-s of it).

At 256 px the issue's goal (AP >= 0.8) was not reached: this test with
KERAS_POSE_RTMO_OVERFIT_STEPS=400 (cosine over 400) gave AP 0.741 (AP50
0.906, AR 0.875; loss 15.5 -> 4.0), pytest 1057 user + 177 sys CPU-s, 1698 s
wall on the loaded machine; the best 256 px run, 300 steps above, 0.779; the
stage-2 switch (`RTMOModeSwitch`: DCC targets, MLE weight 5) for the last 100
of 300 steps: 0.680. AP50 and AR are high: the misses are precision at the
strict OKS thresholds (two of the 12 people cover ~300 px^2 at 256 px).

At 384 x 384 (``LONG_INPUT``), same recipe, 300 steps: AP 0.005 / 0.309 /
0.477 / 0.628 / 0.697 / 0.815 after 50 / 100 / ... / 300 steps (AP50 0.981,
AR 0.858 at 300; loss 23.4 -> 2.2), measured with a scratch loop over the
same pipeline and schedule (fit in 6 chunks of 50 steps, evaluated after
each; an EMA of the weights, momentum 0.01 and gamma 100, gave the same AP
at 300), 2767 s wall on the shared machine. From LONG_STEPS steps on, this
test uses that input and asserts the issue's AP >= 0.8 (``MIN_AP_LONG``).
"""

import os

import pytest
from pose_testing.paths import DATA_DIR

INPUT = (160, 160)
WIDEN = 0.25
NORM_MOMENTUM = 0.9
STEPS = int(os.environ.get("KERAS_POSE_RTMO_OVERFIT_STEPS", "60"))  # a multiple of 4 (4 epochs)
# CI (60 steps, INPUT 160: the 256 px run's loss terms fall alike and AP gains more, for 114 instead of 153 CPU-s):
# AP50 and AR gain from 0.000 (measured at 160 twice: AP50 0.776, AR 0.750, AP 0.672; at 192: 0.645 / 0.400;
# at 256: 0.358 / 0.192; chaotic trajectories: a margin)
MIN_AP50_AR_CI = 0.1
LONG_STEPS = 300  # from here on: LONG_INPUT and AP >= MIN_AP_LONG (measured 0.815 at 300 steps)
LONG_INPUT = (384, 384)
MIN_AP_LONG = 0.8
SCHEDULE = {"peak_lr": 3e-3, "warmup": 10, "final_fraction": 0.02}


def _schedule(steps, peak_lr, warmup, final_fraction):
    import keras

    warmup = min(warmup, max(steps - 1, 1))
    return keras.optimizers.schedules.CosineDecay(peak_lr * 0.01, max(steps - warmup, 1), alpha=final_fraction,
                                                  warmup_target=peak_lr, warmup_steps=warmup)


@pytest.mark.slow
def test_rtmo_overfits_the_coco_samples_through_the_pipeline():
    pytest.importorskip("pycocotools")
    import keras

    from keras_pose.data import model_dataset
    from keras_pose.datasets import load_coco_keypoints
    from keras_pose.models.rtmo import RTMO
    from keras_pose.models.rtmo.rtmo_training import rtmo_optimizer
    from keras_pose.training import evaluate_pose_model

    if STEPS < 4 or STEPS % 4:
        raise ValueError(f"KERAS_POSE_RTMO_OVERFIT_STEPS must be a positive multiple of 4 (4 epochs), got {STEPS}.")
    keras.utils.set_random_seed(0)
    data = load_coco_keypoints(str(DATA_DIR / "coco" / "test_coco.json"), keypoint_spec="coco", mode="eval")
    size = LONG_INPUT if STEPS >= LONG_STEPS else INPUT
    model = RTMO.from_checkpoint_config(image_size=size, deepen_factor=0.33, widen_factor=WIDEN,
                                        norm_momentum=NORM_MOMENTUM)
    untrained = evaluate_pose_model(model, data, verbose=0)  # finite: mmpose's init (no NaN keypoints)
    train = model_dataset(model, data, batch_size=4, seed=0, repeat=True, augment=False, max_instances=8)
    model.compile(optimizer=rtmo_optimizer(model, learning_rate=_schedule(STEPS, **SCHEDULE), clipnorm=10.0))
    assert not model.has_task_weights()  # the training-only branches are not part of a preset
    # 4 epochs of STEPS / 4 steps: one stream (the iterator goes on), the loss means of the first and last quarter
    history = model.fit(train, steps_per_epoch=STEPS // 4, epochs=4, verbose=0).history
    trained = evaluate_pose_model(model, data, verbose=0)
    print(f"[rtmo overfit] COCO AP untrained {untrained['coco_AP']:.3f}, after {STEPS} steps "
          f"{trained['coco_AP']:.3f} (AP50 {trained['coco_AP50']:.3f}, AR {trained['coco_AR']:.3f}); loss "
          + " ".join(f"{k[5:] or 'total'} {v[0]:.2f} -> {v[-1]:.2f}" for k, v in history.items()
                     if k.startswith("loss")))
    assert untrained["coco_AP"] < 0.05 and untrained["coco_AR"] < 0.05
    # every term of the loss trains (the training-only branches too: the proxy keypoints' OKS, the DCC's MLE
    # with the sigma branch, the visibility BCE)
    for term in ("oks", "mle", "vis", "bbox", "cls"):
        assert history[f"loss_{term}"][-1] < history[f"loss_{term}"][0] - 0.05 * abs(history[f"loss_{term}"][0]), term
    if STEPS >= LONG_STEPS:
        assert trained["coco_AP"] >= MIN_AP_LONG
    else:
        assert trained["coco_AP50"] >= MIN_AP50_AR_CI and trained["coco_AR"] >= MIN_AP50_AR_CI
