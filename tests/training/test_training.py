"""Training: OHKM / multi-output losses, overfitting real crops, fit on every backend."""

import json
import os
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR, REPO_ROOT

from keras_pose.losses import KeypointMSELoss
from keras_pose.training import (
    KeypointOHKMMSELoss,
    MultiOutputHeatmapLoss,
    PoseEvaluationCallback,
    evaluate_pose_model,
)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# ---------------------------------------------------------------------- losses


def test_ohkm_keeps_the_top_k_joints():
    # Prediction constant per (sample, joint), target 0: per-joint loss = v^2.
    v = np.array([[1.0, 3.0, 2.0, 0.5], [4.0, 0.0, 1.0, 2.0]], np.float32)
    pred = np.broadcast_to(v[:, None, None, :], (2, 3, 2, 4)).copy()
    target = np.zeros_like(pred)
    weights = np.array([[1, 1, 1, 1], [0, 1, 1, 1]], np.float32)  # sample 1 joint 0 unlabelled
    y = {"heatmaps": target, "keypoint_weights": weights}
    loss = _np(KeypointOHKMMSELoss(topk=2)(y, pred))
    # sample 0: losses 1, 9, 4, 0.25 -> top-2 9 + 4; sample 1: 0, 0, 1, 4 -> 4 + 1.
    assert np.isclose(loss, ((9 + 4) / 2 + (4 + 1) / 2) / 2)
    assert np.isclose(_np(KeypointOHKMMSELoss(topk=1, loss_weight=2.0)(y, pred)), 2 * (9 + 4) / 2)
    # topk = K is the plain weighted MSE.
    np.testing.assert_allclose(_np(KeypointOHKMMSELoss(topk=4)(y, pred)), _np(KeypointMSELoss()(y, pred)), rtol=1e-6)
    with pytest.raises(ValueError, match="topk"):
        KeypointOHKMMSELoss(topk=5)(y, pred)


def test_multi_output_loss_sums_stages_and_serializes():
    rng = np.random.default_rng(0)
    shape = (2, 4, 3, 9)
    preds = [rng.normal(size=shape).astype(np.float32) for _ in range(3)]
    targets = [rng.random(shape).astype(np.float32) for _ in range(3)]
    weights = (rng.random((2, 9)) > 0.2).astype(np.float32)
    mse, ohkm = KeypointMSELoss(), KeypointOHKMMSELoss(topk=8)
    shared = {"heatmaps": targets[0], "keypoint_weights": weights}

    loss = MultiOutputHeatmapLoss([mse, mse, ohkm])  # CPN-like: L2 per level, OHKM on the last
    expected = _np(mse(shared, preds[0])) + _np(mse(shared, preds[1])) + _np(ohkm(shared, preds[2]))
    np.testing.assert_allclose(_np(loss(shared, preds)), expected, rtol=1e-6)
    # KeypointMSELoss alone sums the same MSE over every stage.
    np.testing.assert_allclose(
        _np(mse(shared, preds)), sum(_np(mse(shared, p)) for p in preds), rtol=1e-6
    )
    # Per-output targets (e.g. GlobalNet levels with different sigmas) and weights.
    per_output = {"heatmaps": targets, "keypoint_weights": weights}
    weighted = MultiOutputHeatmapLoss([mse, mse, ohkm], output_weights=[0.5, 1.0, 2.0])
    expected = sum(
        w * _np(f({"heatmaps": t, "keypoint_weights": weights}, p))
        for w, f, t, p in zip([0.5, 1.0, 2.0], [mse, mse, ohkm], targets, preds)
    )
    np.testing.assert_allclose(_np(weighted(per_output, preds)), expected, rtol=1e-6)
    # Dict outputs, losses by key.
    by_key = MultiOutputHeatmapLoss({"global": mse, "refine": ohkm})
    out = {"refine": preds[1], "global": preds[0]}
    np.testing.assert_allclose(
        _np(by_key(shared, out)), _np(mse(shared, preds[0])) + _np(ohkm(shared, preds[1])), rtol=1e-6
    )
    # Round trip through Keras serialization.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(weighted))
    np.testing.assert_allclose(_np(restored(per_output, preds)), _np(weighted(per_output, preds)), rtol=1e-6)
    with pytest.raises(ValueError, match="outputs"):
        weighted(shared, preds[:2])


# ------------------------------------------------------------ evaluation


class _OracleModel:
    """Stands in for a TopDownPoseEstimator: returns the annotations of each box."""

    def __init__(self, dataset, spec, noise=0.0):
        self.keypoint_spec = spec
        self.image_size = (256, 192)
        self.decoding = {"padding": 1.25}
        from keras_pose.preprocessing import PoseImageConverter, TopDownCropper, TopDownPreprocessor

        self.preprocessor = TopDownPreprocessor(
            cropper=TopDownCropper(image_size=self.image_size, padding=1.25), image_converter=PoseImageConverter()
        )
        self.by_box = {(i.image_path, tuple(np.round(i.bbox, 3))): i.keypoints for i in dataset}
        self.noise = noise
        self.calls = []

    def predict_keypoints(self, images, boxes=None, box_scores=None, batch_size=32, flip_test=None):
        from keras_pose.results import PoseResult

        self.calls.append(sum(len(b) for b in boxes))
        out = []
        for path, image_boxes, scores in zip(images, boxes, box_scores):
            kps = np.stack([self.by_box[(path, tuple(np.round(b, 3)))] for b in image_boxes]) + self.noise
            out.append(
                PoseResult(
                    keypoints=kps.astype(np.float32),
                    scores=np.ones(kps.shape[:2], np.float32),
                    boxes=np.asarray(image_boxes),
                    box_scores=np.asarray(scores),
                    keypoint_spec=self.keypoint_spec,
                    image_size=(1, 1),
                )
            )
        return out


def test_evaluation_metrics_and_callback_plumbing():
    import warnings

    from keras_pose.datasets import load_mpii
    from keras_pose.keypoints import get_keypoint_spec

    coco = _coco()
    oracle = _OracleModel(coco, get_keypoint_spec("coco"))
    assert evaluate_pose_model(oracle, coco, metric="pck", batch_size=4, verbose=0)["pck"] == 1.0
    assert max(oracle.calls) <= 5 and sum(oracle.calls) == len(coco)  # whole images, ~batch_size crops
    stats = evaluate_pose_model(oracle, coco, metric="auto", verbose=1)
    assert stats["coco_AP"] > 0.99, stats
    shifted = _OracleModel(coco, get_keypoint_spec("coco"), noise=25.0)
    assert evaluate_pose_model(shifted, coco, metric="pck", verbose=0)["pck"] < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mpii = load_mpii(DATA_DIR / "mpii" / "test_mpii.json", keypoint_spec="mpii")
    stats = evaluate_pose_model(_OracleModel(mpii, get_keypoint_spec("mpii")), mpii, verbose=0)
    assert stats["pckh"] == 1.0, stats

    callback = PoseEvaluationCallback(coco, metric="pck", every_n_epochs=2, verbose=0)
    callback.set_model(oracle)
    callback.set_params({"epochs": 3})
    callback.on_train_begin()
    logs = [{}, {}, {}]
    for epoch in range(3):
        callback.on_epoch_end(epoch, logs[epoch])
    assert [sorted(log) for log in logs] == [[], ["val_epe", "val_pck"], ["val_epe", "val_pck"]]
    with pytest.raises(ValueError, match="metric"):
        PoseEvaluationCallback(coco, metric="map")


# ------------------------------------------------------------ overfit ViTPose


def _tiny_vitpose(image_size, hidden_dim, num_layers, dtype=None, seed=0):
    from keras_pose.models.vitpose import ViTPose, ViTPoseBackbone

    keras.utils.set_random_seed(seed)
    backbone = ViTPoseBackbone(
        hidden_dim=hidden_dim,
        num_layers=num_layers,
        num_heads=4,
        mlp_dim=2 * hidden_dim,
        image_size=image_size,
        dtype=dtype,
    )
    model = ViTPose(backbone, decoder="simple", keypoint_spec="coco", dtype=dtype)
    # mmpose's head initialisation (Normal std 0.001, zero bias): training then
    # starts from near-zero heatmaps instead of first unlearning random ones.
    rng = np.random.default_rng(seed)
    for weight in model.head.weights:
        if weight.path.endswith("kernel"):
            weight.assign(rng.normal(0.0, 1e-3, weight.shape).astype("float32"))
        elif weight.path.endswith("bias"):
            weight.assign(np.zeros(weight.shape, "float32"))
    return model


def _coco():
    from keras_pose.datasets import load_coco_keypoints

    return load_coco_keypoints(DATA_DIR / "coco" / "test_coco.json", keypoint_spec="coco")


@pytest.mark.slow  # a convergence check: `python -m pytest -m slow`
def test_vitpose_overfits_coco_sample_crops():
    """A small ViTPose learns the 12 COCO sample people: PCK@0.05 >= 0.9.

    Trained through the tf.data pipeline (augmentation off), evaluated by the
    callback through `predict_keypoints` (OpenCV crops, codec decode, mapped
    to image pixels), so a wrong crop, target, loss or decoder fails it.
    """
    from keras_pose.data import model_dataset

    coco = _coco()
    model = _tiny_vitpose((128, 96), hidden_dim=128, num_layers=3)
    before = evaluate_pose_model(model, coco, metric="pck", verbose=0)
    assert before["pck"] < 0.2, before

    steps, epochs = 100, 4
    ds = model_dataset(model, coco, batch_size=len(coco), augment=False, seed=0, repeat=True, cache_images=True)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, steps * epochs, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    pck_cb = PoseEvaluationCallback(coco, metric="pck", every_n_epochs=epochs, verbose=0)
    coco_cb = PoseEvaluationCallback(coco, metric="coco", every_n_epochs=epochs, verbose=0)
    start = time.perf_counter()
    history = model.fit(ds, steps_per_epoch=steps, epochs=epochs, callbacks=[pck_cb, coco_cb], verbose=0, shuffle=False)
    elapsed = time.perf_counter() - start
    losses = history.history["loss"]
    pck = history.history["val_pck"][-1]
    ap = history.history["val_coco_AP"][-1]
    print(
        f"\n[overfit] ViTPose h128 x3 layers 128x96, {steps * epochs} steps in {elapsed:.0f}s: "
        f"PCK@0.05 {before['pck']:.3f} -> {pck:.3f}, EPE {history.history['val_epe'][-1]:.1f}px, "
        f"COCO AP {ap:.3f}, loss {losses[0]:.5f} -> {losses[-1]:.5f}"
    )
    assert len(history.history["val_pck"]) == 1  # evaluated only at the last epoch
    assert losses[-1] < 0.5 * losses[0]
    assert pck >= 0.9
    assert ap >= 0.8


# ------------------------------------------------------------ fit everywhere


@pytest.mark.slow  # an XLA-compiled fit
def test_fit_tf_jit_compile_mixed_bfloat16():
    from keras_pose.data import model_dataset

    coco = _coco()
    model = _tiny_vitpose((64, 48), hidden_dim=32, num_layers=1, dtype="mixed_bfloat16")
    assert model.backbone.dtype_policy.name == "mixed_bfloat16"
    ds = model_dataset(model, coco, batch_size=4, seed=0, repeat=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    history = model.fit(ds, steps_per_epoch=1, epochs=2, verbose=0, shuffle=False)
    assert np.all(np.isfinite(history.history["loss"]))
    out = model.predict_on_batch(next(iter(ds))[0])
    assert str(out.dtype).endswith("float32")


_FIT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    sys.path[:0] = {paths!r}
    from test_training import _coco, _tiny_vitpose
    from keras_pose.data import model_dataset

    assert keras.backend.backend() == {backend!r}, keras.backend.backend()
    coco = _coco()
    # JAX: mixed precision and XLA (jit_compile) as on TensorFlow; torch: eager.
    mixed = {backend!r} == "jax"
    model = _tiny_vitpose((64, 48), hidden_dim=32, num_layers=1, dtype="mixed_bfloat16" if mixed else None)
    ds = model_dataset(model, coco[:4], batch_size=4, augment=False, shuffle=False, repeat=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True if mixed else "auto")
    history = model.fit(ds, steps_per_epoch=1, epochs=3, verbose=0, shuffle=False)
    print("RESULT" + json.dumps(history.history["loss"]))
    """
)


@pytest.mark.backends  # a JAX / PyTorch process each: `python -m pytest -m backends`
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_fit_other_backends_in_subprocess(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    script = _FIT_SCRIPT.format(paths=[str(REPO_ROOT / "tests" / "training"), str(REPO_ROOT / "tests")], backend=backend)
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600, cwd=str(REPO_ROOT)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    losses = json.loads(line[len("RESULT"):])
    assert len(losses) == 3 and np.all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses  # same batch every step: the loss goes down
