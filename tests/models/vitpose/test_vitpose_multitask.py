"""The original multi-task ViTPose release (COCO+AIC+MPII): one plain ViT and
several heads, no experts. The converter keeps the requested dataset's head."""

import numpy as np
import pytest

from keras_pose.conversion import convert_checkpoint
from keras_pose.errors import CheckpointError

from pose_testing.tiny_checkpoints import save_pth, tiny_vitpose_state_dict


def _single_head(sd, prefix):
    """The same weights with `prefix` renamed to the main head, others dropped."""
    out = {}
    for key, value in sd.items():
        if key.startswith("associate_keypoint_heads.") or key.startswith("keypoint_head."):
            if key.startswith(prefix):
                out["keypoint_head." + key[len(prefix):]] = value
            continue
        out[key] = value
    return out


@pytest.mark.parametrize(
    "dataset, prefix, num_keypoints",
    [(None, "keypoint_head.", 17), ("aic", "associate_keypoint_heads.0.", 14), ("mpii", "associate_keypoint_heads.1.", 16)],
)
def test_multitask_checkpoint_keeps_the_chosen_head(tmp_path, dataset, prefix, num_keypoints):
    sd = tiny_vitpose_state_dict(extra_heads=(14, 16), seed=3)
    multi = convert_checkpoint(save_pth(sd, tmp_path / "multi.pth", meta={}), dataset=dataset, num_heads=4)
    single = convert_checkpoint(
        save_pth(_single_head(sd, prefix), tmp_path / "single.pth", meta={}),
        keypoint_spec=dataset or "coco",
        num_heads=4,
    )
    assert type(multi).__name__ == "ViTPose"
    assert multi.keypoint_spec.num_keypoints == num_keypoints
    assert multi.keypoint_spec.name == (dataset or "coco")
    x = np.random.default_rng(0).normal(size=(1, 64, 48, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(multi(x)), np.asarray(single(x)))


def test_multitask_checkpoint_unknown_dataset(tmp_path):
    sd = tiny_vitpose_state_dict(extra_heads=(14, 16), seed=3)
    with pytest.raises(CheckpointError, match="has heads for"):
        convert_checkpoint(save_pth(sd, tmp_path / "multi.pth", meta={}), dataset="ap10k", num_heads=4)
