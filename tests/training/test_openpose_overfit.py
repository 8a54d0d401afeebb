"""Overfit through the training pipeline: a small OpenPose fitted on the four COCO samples.

The user's path end to end: ``load_coco_keypoints`` (COCO-17 file) ->
``keras_pose.data.model_dataset(model, ...)`` (the whole-image tf.data
pipeline: letterbox to the training size, ignore masks of the people without
keypoints from their segmentations, the model's in-graph `OpenPoseMaps`
targets with COCO-17 -> OpenPose-18) -> ``model.fit`` (`OpenPoseLoss`,
masked L2 at every stage; Adam, 50 warm-up steps to 3e-3 then cosine decay
to 0) -> ``evaluate_pose_model`` (``predict_keypoints`` on the whole images
with the model's default test settings, fast grouping, OpenPose-18 ->
COCO-17, pycocotools). Every sample is height-limited in the 160 x 304
letterbox (the widest, 640 x 392, is 261 px wide at height 160), so the
training scale equals the test scale (net height 160).

Ceiling: the pipeline's own targets, upsampled and grouped like the
network's maps, score AP 0.705 / 0.926 / 0.958 at net height 96 / 128 /
160 (sigma 7); at 128 with sigma 5, 0.775.

Measured on the shared 2-core CPU (load average 3-7, so wall times are
inflated; CPU seconds of the process):

- before (1 stage, VGG widths 16-32-48-64, 128 x 248, batch 4, constant
  Adam 3e-3): untrained AP 0.000; 0.000 / 0.107 / 0.439 / 0.504 / 0.619 /
  0.604 after 100 ... 600 steps, ~240 CPU-s of training;
- batch 2 instead of 4 gave more AP per CPU-second (128 px, Adam 1e-3:
  0.479 after 600 steps, 114 CPU-s; batch 4: 0.310 after 300 steps, same
  CPU), and so did narrower VGG widths 8-16-32-64 (0.526 after 600 steps,
  83 CPU-s; 0.628 after 1000, 134 CPU-s). Two stages: 0.544 / 0.640 after
  500 / 800 steps (93 / 147 CPU-s). He-normal initialisation and lr 5e-4
  did not help.
- this configuration (160 px, warm-up + cosine over 800 steps, fitted in
  chunks of 500 / 150 / 150 steps, which restarts the seeded stream):
  AP 0.718 / 0.728 / 0.725 after 500 / 650 / 800 steps, ~185 CPU-s of
  training. The result is sensitive to small changes: the same recipe with
  the input 264 px wide gave 0.609 / 0.512 / 0.537, and over 650 steps
  (304 px) 0.509 / 0.644 / 0.618 after 400 / 500 / 650.

This exact test (one fit of 800 steps): untrained AP 0.000, AP 0.728 after
800 steps; pytest took 188 CPU-s (169 user + 19 sys), 194 s wall at load
~5. The margin over 0.7 is small next to the spread above: if it fails on
other hardware, lower the bar rather than trusting one lucky trajectory.
"""

import pytest
from pose_testing.paths import DATA_DIR

H, W = 160, 304  # net height 160 (the evaluation's); every sample is height-limited at this width
STEPS, WARMUP, PEAK_LR = 800, 50, 3e-3
# one stage (PAF + confidence-map branches), narrow VGG front, 3x3 refinement kernels
MODEL = {"num_stages": 1, "vgg_channels": [8, 16, 32, 64], "cpm_channels": [64, 48], "stage_channels": 48,
         "head_channels": 96, "refine_head_channels": 48, "refine_kernel_size": 3}


@pytest.mark.large
def test_small_openpose_overfits_the_coco_samples():
    pytest.importorskip("pycocotools")
    import keras

    from keras_pose.data import model_dataset
    from keras_pose.datasets import load_coco_keypoints
    from keras_pose.models.openpose import OpenPose
    from keras_pose.training import evaluate_pose_model

    keras.utils.set_random_seed(0)
    data = load_coco_keypoints(str(DATA_DIR / "coco" / "test_coco.json"), keypoint_spec="coco", mode="eval")
    model = OpenPose.from_checkpoint_config(variant="coco18", image_size=[H, H], **MODEL)
    train = model_dataset(model, data, image_size=(H, W), batch_size=2, seed=0, repeat=True, max_instances=8,
                          augment=False)
    untrained = evaluate_pose_model(model, data, verbose=0)["coco_AP"]
    schedule = keras.optimizers.schedules.CosineDecay(1e-4, STEPS - WARMUP, warmup_target=PEAK_LR,
                                                      warmup_steps=WARMUP)
    model.compile(optimizer=keras.optimizers.Adam(schedule))  # default loss: OpenPoseLoss
    history = model.fit(train, steps_per_epoch=STEPS, epochs=1, verbose=0)
    trained = evaluate_pose_model(model, data, verbose=0)["coco_AP"]
    print(f"[openpose overfit] COCO AP untrained {untrained:.3f}, after {STEPS} steps {trained:.3f} "
          f"(loss {history.history['loss'][-1]:.1f})")
    assert untrained < 0.2 and trained >= 0.7
