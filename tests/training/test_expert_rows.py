"""Issue 14: fine-tuning one ViTPose++ dataset leaves the other datasets' expert rows and heads bit-identical.

All experts of a block are one stacked variable (``experts_kernel``
(E, mlp_dim, P)); without frozen rows AdamW's decoupled weight decay shrinks
every expert's rows and every head, trained or not.
"""

import numpy as np
import pytest

import keras

from keras_pose.models.vitpose import ViTPoseBackbone, ViTPosePP
from keras_pose.training.param_groups import inactive_dataset_rows, make_param_group_optimizer


def _finetune(frozen):
    keras.utils.set_random_seed(0)
    model = ViTPosePP(ViTPoseBackbone(image_size=(64, 48), hidden_dim=32, num_layers=1, num_heads=4, mlp_dim=64,
                                      num_experts=2, part_features=8), datasets=["coco", "mpii"], decoder="simple")
    rows = inactive_dataset_rows(model, ["coco"]) if frozen else None
    model.compile(optimizer=make_param_group_optimizer("adamw", learning_rate=1e-2, weight_decay=0.1,
                                                       frozen_rows=rows), loss="keypoint_mse",
                  jit_compile=False)
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 64, 48, 3)).astype("float32")
    y = {"heatmaps": rng.uniform(size=(8, 16, 12, 17)).astype("float32"),
         "keypoint_weights": np.ones((8, 17), "float32")}
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    after = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    return rows, before, after


def test_inactive_dataset_rows_names_the_other_experts_and_heads():
    model = ViTPosePP(ViTPoseBackbone(image_size=(64, 48), hidden_dim=32, num_layers=2, num_heads=4, mlp_dim=64,
                                      num_experts=3, part_features=8), datasets=["coco", "mpii", "aic"],
                      decoder="simple")
    rows = inactive_dataset_rows(model, ["mpii"])
    assert rows["transformer_layer_1/mlp/experts_kernel"] == [0, 2]
    assert rows["transformer_layer_0/mlp/experts_bias"] == [0, 2]
    assert rows["heads/head_coco/final_conv/kernel"] == [0, 1, 2] and "heads/head_mpii/final_conv/kernel" not in rows
    assert inactive_dataset_rows(model, ["coco", "mpii", "aic"]) == {}
    with pytest.raises(ValueError, match="not in the model"):
        inactive_dataset_rows(model, ["ap10k"])
    config = make_param_group_optimizer("adamw", weight_decay=0.1, frozen_rows=rows).get_config()
    assert type(make_param_group_optimizer("adamw").from_config(config)).__name__ == "ParamGroupAdamW"
    assert config["frozen_rows"]["transformer_layer_1/mlp/experts_kernel"] == [0, 2]


@pytest.mark.slow  # two tiny ViTPose++ fits
def test_adamw_finetuning_one_dataset_leaves_other_experts_bit_identical():
    rows, before, after = _finetune(True)
    kernel, bias = "transformer_layer_0/mlp/experts_kernel", "transformer_layer_0/mlp/experts_bias"
    # mpii (row 1) and its head: exactly as before, weight decay included.
    assert np.array_equal(before[kernel][1], after[kernel][1]) and np.array_equal(before[bias][1], after[bias][1])
    for path in ("heads/head_mpii/final_conv/kernel", "heads/head_mpii/final_conv/bias"):
        assert np.array_equal(before[path], after[path])
    # coco (row 0) trained.
    assert np.max(np.abs(after[kernel][0] - before[kernel][0])) > 1e-3
    # Without frozen rows the decay moves mpii's expert though it gets no gradient. (Its head, outside the
    # coco graph, has no gradient at all, so Keras skips it; in multi-dataset training it has zero gradients.)
    _, before, after = _finetune(False)
    assert np.max(np.abs(after[kernel][1] - before[kernel][1])) > 1e-6
