"""OpenPose training through the whole-image pipeline: graph targets, flips, model_dataset, fit, COCO AP."""

import numpy as np
import pytest
from pose_testing import openpose_models
from pose_testing.paths import DATA_DIR

from keras_pose.datasets import load_coco_keypoints
from keras_pose.models.openpose import OpenPose, coco17_to_op18

SIZE = (64, 96)  # width a multiple of 8: the stride-8 grid is symmetric under a flip
NO_AUG = {"affine": None, "flip": None, "hsv": None}


def tiny_model():
    return OpenPose.from_checkpoint_config(variant="coco18", image_size=[SIZE[0], SIZE[0]], num_stages=2,
                                           **openpose_models.TINY)


def coco():
    return load_coco_keypoints(str(DATA_DIR / "coco" / "test_coco.json"), keypoint_spec="coco", mode="eval")


def batch(dataset):
    images, targets = next(iter(dataset))
    return np.asarray(images), {k: np.asarray(v) for k, v in targets.items()}


def test_graph_targets_equal_the_numpy_encoder_on_real_instances():
    from keras_pose.data import model_dataset

    model, data = tiny_model(), coco()
    _, inst = batch(model_dataset(model, data, image_size=SIZE, training=False, target_encoder=None,
                                  batch_size=4, max_instances=6))
    encoder = model.target_encoder(SIZE, "coco")
    for b in range(4):
        element = {k: v[b] for k, v in inst.items()}
        got = {k: np.asarray(v) for k, v in encoder(element).items()}
        valid = element["instance_valid"] > 0
        op = coco17_to_op18(np.concatenate([element["keypoints"], element["keypoint_visible"][..., None]], -1)[valid])
        want = encoder.codec.encode(op[..., :2], op[..., 2], ignore_mask=element["ignore_mask"] > 0)
        assert got["heatmaps"].shape == (8, 12, 19) and got["pafs"].shape == (8, 12, 38)
        for key in ("heatmaps", "pafs", "mask"):
            np.testing.assert_allclose(got[key], want[key], atol=1e-5, err_msg=key)  # float32 instances
        assert got["heatmaps"][..., :18].max() > 0.5 and np.abs(got["pafs"]).max() > 0.5


def test_flipped_sample_gives_mirrored_maps_with_swapped_and_negated_pafs():
    from keras_pose.data import model_dataset

    model, data = tiny_model(), coco()
    common = dict(image_size=SIZE, batch_size=4, shuffle=False, seed=0, max_instances=6)
    _, plain = batch(model_dataset(model, data, augment=NO_AUG, **common))
    _, flipped = batch(model_dataset(model, data, augment=dict(NO_AUG, flip={"prob": 1.0}), **common))
    for b in range(4):
        heat, pafs = model.flip_maps(flipped["heatmaps"][b], flipped["pafs"][b])
        np.testing.assert_allclose(heat, plain["heatmaps"][b], atol=1e-5)
        np.testing.assert_allclose(pafs, plain["pafs"][b], atol=1e-5)
    # the neck -> right-shoulder limb (channels 12, 13) of a flipped image is the mirrored neck -> left-shoulder
    # limb (channels 20, 21) with its x component negated
    np.testing.assert_allclose(flipped["pafs"][..., 12], -plain["pafs"][:, :, ::-1, 20], atol=1e-5)
    assert np.abs(plain["pafs"][..., 20]).max() > 0.5


@pytest.mark.slow
def test_model_dataset_fits_and_evaluates_with_coco_ap():
    import keras

    from keras_pose.data import model_dataset
    from keras_pose.training import evaluate_pose_model

    keras.utils.set_random_seed(0)
    model, data = tiny_model(), coco()
    ds = model_dataset(model, data, image_size=SIZE, batch_size=2, seed=0, repeat=True, max_instances=6)
    images, targets = batch(ds)
    assert images.shape == (2, *SIZE, 3) and set(targets) == {"heatmaps", "pafs", "mask"}
    assert -0.5 <= images.min() and images.max() < 0.5  # BGR pixel / 256 - 0.5, as predict_keypoints feeds
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    stats = evaluate_pose_model(model, data, verbose=0)
    assert set(stats) >= {"coco_AP", "coco_AP50", "coco_AR"} and 0.0 <= stats["coco_AP"] <= 1.0
    with pytest.raises(ValueError, match="coco"):
        evaluate_pose_model(model, data, metric="pck")
