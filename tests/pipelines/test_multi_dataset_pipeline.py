"""The multi-dataset pipeline (COCO + AP-10K samples) and a two-dataset ViTPose++ toy run."""

import numpy as np
import pytest

import keras

from pose_testing.paths import DATA_DIR

from keras_pose.data.multi_dataset_pipeline import build_multi_dataset_pipeline
from keras_pose.datasets import load_coco_keypoints
from keras_pose.errors import PipelineError
from keras_pose.models.vitpose import ViTPoseBackbone, ViTPosePP
from keras_pose.models.vitpose.vitpose_multi_dataset import (
    MultiDatasetKeypointMSELoss,
    ViTPosePPMultiDataset,
    per_dataset_losses,
)

TINY_PP = {"hidden_dim": 32, "num_layers": 2, "num_heads": 4, "mlp_dim": 64, "num_experts": 3, "part_features": 8}


@pytest.fixture(scope="module")
def data():
    coco = load_coco_keypoints(DATA_DIR / "coco" / "test_coco.json", keypoint_spec="coco")
    ap10k = load_coco_keypoints(DATA_DIR / "ap10k" / "test_ap10k.json", keypoint_spec="ap10k")
    return {"coco": coco, "ap10k": ap10k}


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    backbone = ViTPoseBackbone(image_size=(64, 48), **TINY_PP)
    # mpii (16 keypoints) is a third dataset with no data here: padding and the unused expert
    return ViTPosePPMultiDataset(ViTPosePP(backbone, datasets=["mpii", "coco", "ap10k"], decoder="simple"))


@pytest.mark.slow  # ~4.5 s: two pipelines built and traced
def test_mixed_batches_shapes_ratios_and_seed(data):
    model = _model()
    ds = build_multi_dataset_pipeline(model, data, ratios={"coco": 3, "ap10k": 1}, batch_size=32, seed=0,
                                      augment=False)
    x, y = next(iter(ds))
    assert tuple(x["images"].shape) == (32, 64, 48, 3)
    assert tuple(y["heatmaps"].shape) == (32, 16, 12, 17) and tuple(y["keypoint_weights"].shape) == (32, 17)
    index = x["dataset_index"].numpy()
    np.testing.assert_array_equal(index, y["dataset_index"].numpy())
    assert set(index) == {1, 2}  # coco, ap10k indices in the model
    assert 0.55 < np.mean(index == 1) < 0.95  # ratio 3:1
    again = next(iter(build_multi_dataset_pipeline(model, data, ratios={"coco": 3, "ap10k": 1}, batch_size=32,
                                                   seed=0, augment=False)))
    np.testing.assert_array_equal(again[0]["dataset_index"].numpy(), index)
    np.testing.assert_array_equal(again[0]["images"].numpy(), x["images"].numpy())


def test_bad_arguments(data):
    model = _model()
    with pytest.raises(PipelineError, match="no expert/head"):
        build_multi_dataset_pipeline(model, {"aic": data["coco"]})
    with pytest.raises(PipelineError, match="ratios has no entry"):
        build_multi_dataset_pipeline(model, data, ratios={"coco": 1})
    with pytest.raises(PipelineError, match="non-negative"):
        build_multi_dataset_pipeline(model, data, ratios=[1, -1])


@pytest.mark.slow  # ~15 s: 60 steps of a tiny ViTPose++ on both sample sets
def test_two_dataset_toy_run_improves_both(data):
    model = _model()
    everything = build_multi_dataset_pipeline(model, data, batch_size=64, augment=False, repeat=False)
    x, y = next(iter(everything))  # all 12 COCO and 2 AP-10K people
    loss = MultiDatasetKeypointMSELoss(model.num_keypoints)
    before = per_dataset_losses(loss, y, model(x), 3)
    train = build_multi_dataset_pipeline(model, data, ratios={"coco": 0.5, "ap10k": 0.5}, batch_size=8, seed=0,
                                         augment=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(train, steps_per_epoch=20, epochs=3, verbose=0)
    after = per_dataset_losses(loss, y, model(x), 3)
    print(f"\n[COCO + AP-10K] coco {before[1]:.4g} -> {after[1]:.4g}; ap10k {before[2]:.4g} -> {after[2]:.4g}")
    assert np.isnan(before[0])  # no mpii sample
    assert after[1] < 0.7 * before[1] and after[2] < 0.7 * before[2]
