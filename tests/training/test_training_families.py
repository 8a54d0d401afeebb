"""Every CNN family overfits the COCO sample crops through the top-down pipeline.

The overfit check of `tests/training/test_training.py` (ViTPose) for CPM, Stacked
Hourglass and CPN, each with its training loss: CPM and Hourglass sum the
MSE of every stage / stack (intermediate supervision, `KeypointMSELoss`),
CPN trains its GlobalNet levels with L2 on per-level targets
(`heatmaps_levels` from the `CPNHeatmap` codec) and RefineNet with OHKM
(`CPNLoss`). Small configurations learn the 14 COCO sample crops (12 with
visible keypoints) in 100-150 steps on a CPU: trained through `model_dataset`
(augmentation off), evaluated by `PoseEvaluationCallback` through
`predict_keypoints` (OpenCV crops, the model's codec, keypoints mapped to
image pixels), PCK@0.05 of max(box w, h) on the visible keypoints >= 0.9.

Flip test is off in the evaluation: the models never see a mirrored crop
(augmentation off), so averaging in the mirrored prediction would measure
flip generalisation, not fitting.

What the sizes and inits rest on (measured while choosing them):

- PCK@0.05 needs a fine enough heatmap: the threshold is 0.04 x the
  heatmap width for the squarish boxes of the sample (crop = 1.25 x box),
  and the MSRA codec's target sits at the *rounded* heatmap pixel (up to
  0.71 px off) plus the decoder's 0.25 px shift. A heatmap 12 px wide (CPM
  at 128x96, stride 8) caps PCK at 0.94 even for the exact targets (0.64
  with a random +-0.25 px shift); trained, CPM reached 0.81 at 128x96 and
  0.88-0.90 at 160x120 (20x15), 0.95-0.98 at 192x144 (24x18), used here,
  in batches of 7 (half the crops per step: PCK 0.967 after 150 steps with
  217 CPU-s against 0.969 with 342 CPU-s for batches of 14; 0.85 after 100
  steps). CPN keeps batches of 14 (its BatchNorm heads reached 0.66 with 7).
- Heads start near zero (mmpose's Normal(0, 0.001) head init), so training
  does not first unlearn random heatmaps.
- CPN's heads end in BatchNorm (gamma 1): its outputs start with unit
  variance per map while a peak-1 target has a standard deviation of ~0.05;
  Adam moves gamma by ~lr per step, so 1 -> 0.05 alone takes ~1000 steps
  (PCK 0.37 after 200). Starting the output BN scales at 0.05 fits in 100.
"""

import time

import keras
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR

from keras_pose.training import PoseEvaluationCallback, evaluate_pose_model


def _coco():
    from keras_pose.datasets import load_coco_keypoints

    return load_coco_keypoints(DATA_DIR / "coco" / "test_coco.json", keypoint_spec="coco")


def _small_init(layers, seed=0, std=1e-3):
    """mmpose's head init: conv kernels Normal(0, std), zero bias."""
    rng = np.random.default_rng(seed)
    count = 0
    for layer in layers:
        for weight in layer.weights:
            if weight.path.endswith("kernel"):
                weight.assign(rng.normal(0.0, std, weight.shape).astype("float32"))
                count += 1
            elif weight.path.endswith("bias"):
                weight.assign(np.zeros(weight.shape, "float32"))
    assert count == len(layers), [layer.name for layer in layers]


def _per_output_losses(model, batch):
    """Each output's loss on one batch (its own target for CPN's levels)."""
    from keras_pose.losses import KeypointMSELoss

    x, y = batch
    outputs = model(x, training=False)
    if isinstance(outputs, dict):
        outputs = [outputs[k] for k in sorted(outputs)]  # global_0 .. global_3, refine
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    if "heatmaps_levels" in y:
        targets = [*y["heatmaps_levels"], y["heatmaps"]]
    else:
        targets = [y["heatmaps"]] * len(outputs)
    assert len(targets) == len(outputs)
    mse = KeypointMSELoss()
    return np.array(
        [float(keras.ops.convert_to_numpy(mse({"heatmaps": t, "keypoint_weights": y["keypoint_weights"]}, o)))
         for t, o in zip(targets, outputs)]
    )


def _overfit(name, model, coco, *, steps, epochs, learning_rate, batch_size=None, **dataset_kwargs):
    """Fit on the sample crops; returns (PCK before, history, per-output losses before / after)."""
    from keras_pose.data import model_dataset

    before = evaluate_pose_model(model, coco, metric="pck", flip_test=False, verbose=0)
    ds = model_dataset(
        model, coco, batch_size=batch_size or len(coco), augment=False, seed=0, repeat=True, cache_images=True,
        **dataset_kwargs
    )
    probe = next(iter(model_dataset(model, coco, batch_size=len(coco), training=False, return_meta=False,
                                    cache_images=True, **dataset_kwargs)))
    outputs_before = _per_output_losses(model, probe)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps * epochs, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule))  # loss="auto": the family's loss
    callback = PoseEvaluationCallback(coco, metric="pck", every_n_epochs=epochs, flip_test=False, verbose=0)
    wall, cpu = time.perf_counter(), time.process_time()
    history = model.fit(ds, steps_per_epoch=steps, epochs=epochs, callbacks=[callback], verbose=0, shuffle=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    outputs_after = _per_output_losses(model, probe)
    losses, pck = history.history["loss"], history.history["val_pck"][-1]
    print(
        f"\n[overfit] {name}, {steps * epochs} steps in {wall:.0f}s wall / {cpu:.0f}s CPU: "
        f"PCK@0.05 {before['pck']:.3f} -> {pck:.3f}, EPE {history.history['val_epe'][-1]:.1f}px, "
        f"loss {losses[0]:.5f} -> {losses[-1]:.5f}, per-output MSE {np.round(outputs_before, 5).tolist()} -> "
        f"{np.round(outputs_after, 5).tolist()}"
    )
    return before["pck"], history.history, outputs_before, outputs_after


def _assert_fitted(before_pck, history, outputs_before, outputs_after, loss_factor=0.5):
    assert before_pck < 0.2, before_pck
    assert len(history["val_pck"]) == 1  # evaluated once, after the last epoch
    assert history["loss"][-1] < loss_factor * history["loss"][0], history["loss"]
    # Every stage / stack / level is supervised: each output's error drops
    # (CPN's coarsest GlobalNet levels, 4x3 and 8x6 maps upsampled, cannot
    # draw the sharp targets: they drop least), the final output's halves.
    assert np.all(outputs_after < outputs_before), (outputs_before, outputs_after)
    assert outputs_after[-1] < 0.5 * outputs_before[-1], (outputs_before, outputs_after)
    assert history["val_pck"][-1] >= 0.9, history


def test_pipeline_per_level_targets_for_cpn():
    """`heatmap_levels=True` adds the CPNHeatmap GlobalNet targets; the rest is unchanged."""
    import pytest

    from keras_pose.codecs import CPNHeatmap, MSRAHeatmap
    from keras_pose.data import PipelineError, build_top_down_dataset

    coco = _coco()
    codec = CPNHeatmap((128, 96), (32, 24), kernel_sizes=(11, 9, 7, 5))
    kwargs = dict(batch_size=4, training=False, cache_images=True)
    plain = next(iter(build_top_down_dataset(coco[:4], codec, **kwargs)))
    images, targets, meta = next(iter(build_top_down_dataset(coco[:4], codec, heatmap_levels=True, **kwargs)))
    assert set(plain[1]) == {"heatmaps", "keypoint_weights"}
    np.testing.assert_array_equal(images.numpy(), plain[0].numpy())
    for key in ("heatmaps", "keypoint_weights"):
        np.testing.assert_array_equal(targets[key].numpy(), plain[1][key].numpy())
    levels = targets["heatmaps_levels"]
    assert isinstance(levels, tuple) and len(levels) == 4
    for i in range(4):
        encoded = codec.encode(meta["keypoints"][i].numpy(), meta["keypoints_visible"][i].numpy())
        expected, weights = encoded["heatmaps_levels"], encoded["keypoint_weights"]
        for level, exp in zip(levels, expected):
            np.testing.assert_allclose(level[i].numpy(), exp, atol=1e-3)  # peak 255
        np.testing.assert_array_equal(targets["keypoint_weights"][i].numpy(), weights)
    with pytest.raises(PipelineError, match="heatmap_levels"):
        build_top_down_dataset(coco[:4], MSRAHeatmap((128, 96), (32, 24)), heatmap_levels=True, **kwargs)


@pytest.mark.slow  # a convergence check: `python -m pytest -m slow`
def test_cpm_overfits_coco_sample_crops():
    """CPM, 2 stages (intermediate supervision), 192x144 -> 24x18 belief maps, MSRA decoding."""
    from keras_pose.losses import KeypointMSELoss
    from keras_pose.models.cpm import CPM, CPMBackbone

    keras.utils.set_random_seed(0)
    backbone = CPMBackbone(
        num_keypoints=17,
        image_size=(192, 144),
        num_stages=2,
        feat_channels=32,
        middle_channels=16,
        stem_channels=16,
        stem_mid_channels=16,
        stem_head_channels=64,
    )
    model = CPM(backbone, keypoint_spec="coco")
    assert len(model.outputs) == 2 and isinstance(model._default_loss, KeypointMSELoss)
    assert type(model.codec).__name__ == "MSRAHeatmap"
    _small_init([backbone.get_layer("stem_9"), backbone.get_layer("out_convs_0_1")])
    result = _overfit("CPM 2 stages 192x144", model, _coco(), steps=15, epochs=10, learning_rate=2e-3,
                      batch_size=7)
    _assert_fitted(*result)


@pytest.mark.slow  # a convergence check: `python -m pytest -m slow`
def test_hourglass_overfits_coco_sample_crops():
    """Stacked Hourglass, 2 stacks (intermediate supervision), 128x96 -> 32x24, MSRA decoding."""
    from keras_pose.losses import KeypointMSELoss
    from keras_pose.models.hourglass import Hourglass, HourglassBackbone

    keras.utils.set_random_seed(0)
    backbone = HourglassBackbone(
        image_size=(128, 96),
        num_stacks=2,
        downsample_times=3,
        stage_channels=(32, 32, 48, 64),
        stage_blocks=(1, 1, 1, 1),
        feat_channels=32,
        stem_channels=16,
    )
    model = Hourglass(backbone, keypoint_spec="coco")
    assert len(model.outputs) == 2 and isinstance(model._default_loss, KeypointMSELoss)
    assert type(model.codec).__name__ == "MSRAHeatmap"
    _small_init(model.final_layers)
    result = _overfit("Hourglass 2 stacks 128x96", model, _coco(), steps=10, epochs=12, learning_rate=2e-3)
    _assert_fitted(*result)


@pytest.mark.slow  # a convergence check: `python -m pytest -m slow`
def test_cpn_overfits_coco_sample_crops():
    """CPN (ResNet 1-1-1-1), GlobalNet L2 on per-level targets + RefineNet OHKM, CPNHeatmap decoding."""
    from keras_pose.models.cpn import CPN, CPNBackbone, CPNLoss

    keras.utils.set_random_seed(0)
    backbone = CPNBackbone(
        stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_filters=[64, 32, 32, 32], image_shape=(128, 96, 3)
    )
    decoding = CPN.default_decoding((128, 96), (32, 24))
    # pytorch-cpn's codec (blurred-pixel targets, its test-time decoding) with
    # the GlobalNet kernels scaled to the 32x24 maps (15, 11, 9, 7 at 64x48)
    # and peak 1 instead of 255.
    decoding["codec"] = {
        "type": "CPNHeatmap",
        "input_size": [128, 96],
        "heatmap_size": [32, 24],
        "kernel_sizes": [11, 9, 7, 5],
        "target_peak": 1.0,
    }
    model = CPN(
        backbone,
        keypoint_spec="coco",
        global_channels=64,
        refine_planes=32,
        refine_num_blocks=[1, 1, 1, 0],
        decoding=decoding,
    )
    assert isinstance(model._default_loss, CPNLoss) and type(model.codec).__name__ == "CPNHeatmap"
    output_bns = [layer for layer in model.layers if layer.name == "refine_final_bn" or (
        layer.name.startswith("global_predict") and layer.name.endswith("_2_bn"))]
    assert len(output_bns) == 5
    for layer in output_bns:  # the output scale of a peak-1 target (see the module docstring)
        layer.gamma.assign(np.full(layer.gamma.shape, 0.05, "float32"))
    result = _overfit(
        "CPN R-1111 128x96", model, _coco(), steps=10, epochs=10, learning_rate=1e-3, heatmap_levels=True
    )
    # CPNLoss is mostly the GlobalNet L2 of the coarse levels, which stays
    # near that of an all-zero map (see above): the loss falls ~2.2x, not more.
    _assert_fitted(*result, loss_factor=0.6)
