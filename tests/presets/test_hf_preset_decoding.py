"""The presets converted from HF transformers' safetensors decode as HF does.

`vitpose_*_hf` presets record `dark_variant="hf"` (HF's
`post_process_pose_estimation` DARK blur); on the golden decode-only heatmaps
(tests/golden/vitpose/end_to_end_base) the model built from such a preset's
settings reproduces HF's keypoints, where the original-release decoding
(`dark_variant="mmpose"`, the published AP's) moves them by up to 1.5 px.
"""

import json

import numpy as np
import pytest
from pose_testing.paths import GOLDEN_DIR

from keras_pose.geometry import box_xywh_to_center_scale
from keras_pose.geometry import crop_to_image
from keras_pose.models.vitpose import ViTPose
from keras_pose.preset_registry import get_preset_entry
from keras_pose.preset_registry import list_presets

CASE = GOLDEN_DIR / "vitpose" / "end_to_end_base"
HF_PRESETS = sorted(e.name for e in list_presets() if e.name.endswith("_hf"))


@pytest.fixture(scope="module")
def golden():
    meta = json.loads((CASE / "meta.json").read_text())["decode_only"]
    return {
        "heatmaps": np.load(CASE / "decode_heatmaps.npy").transpose(0, 2, 3, 1),  # NCHW -> NHWC
        "boxes": np.asarray(meta["boxes_xywh"], np.float64),
        "keypoints": np.load(CASE / "expected_decode_keypoints.npy"),
        "scores": np.load(CASE / "expected_decode_scores.npy"),
    }


def _image_keypoints(model, golden):
    keypoints, scores = model.codec.decode(golden["heatmaps"])
    size = model.codec.input_size
    centers, scales = box_xywh_to_center_scale(golden["boxes"], size, padding=model.decoding["padding"])
    return crop_to_image(keypoints, centers, scales, size), scores


def _tiny_model(decoding):
    return ViTPose.from_checkpoint_config(
        image_size=(256, 192), hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64, decoding=decoding
    )


def test_every_hf_preset_records_the_hf_decoding():
    assert {"vitpose_base_coco_256x192_hf", "vitpose_base_simple_coco_256x192_hf"} <= set(HF_PRESETS)
    for name in HF_PRESETS:
        decoding = get_preset_entry(name).decoding
        assert decoding["codec"]["dark_variant"] == "hf", name
        assert "post_process_pose_estimation" in decoding["reference"]
        assert "published AP" in decoding["reference"]  # says which number it does not reproduce


def test_hf_preset_model_decodes_like_hf_transformers(golden):
    model = _tiny_model(get_preset_entry("vitpose_base_coco_256x192_hf").decoding)
    assert model.codec.dark_variant == "hf"
    keypoints, scores = _image_keypoints(model, golden)
    np.testing.assert_allclose(keypoints, golden["keypoints"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(scores, golden["scores"], rtol=0, atol=1e-6)


def test_original_release_preset_keeps_the_mmpose_decoding(golden):
    model = _tiny_model(get_preset_entry("vitpose_base_coco_256x192").decoding)
    assert model.codec.dark_variant == "mmpose"
    keypoints, _ = _image_keypoints(model, golden)
    moved = np.abs(keypoints - golden["keypoints"])[:, :16].max()
    assert 1e-3 < moved < 1.5
