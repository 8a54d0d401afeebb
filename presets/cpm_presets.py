"""Built-in presets of Convolutional Pose Machines (family "cpm").

The mmpose model-zoo releases (download.openmmlab.com, Apache-2.0). Facts
from open-mmlab/mmpose `configs/body_2d_keypoint/topdown_heatmap/coco/
cpm_coco.md` / `cpm_coco.yml`, `.../mpii/cpm_mpii.md` / `cpm_mpii.yml` and
the configs they link (`td-hm_cpm_8xb64-210e_coco-256x192.py`,
`td-hm_cpm_8xb32-210e_coco-384x288.py`, `td-hm_cpm_8xb64-210e_mpii-368x368.py`).
Accuracy values are fractions (0.627 = 62.7 AP). `sha256` is the hash prefix
mmpose puts in the file name.

All three configs: `CPM(in_channels=3, out_channels=K, feat_channels=128,
num_stages=6)`, `CPMHead(has_final_layer=False)`, PoseDataPreprocessor
(ImageNet mean / std in 0..255, BGR -> RGB), codec `MSRAHeatmap` (sigma per
config), test_cfg `flip_test=True, flip_mode='heatmap', shift_heatmap=True`,
`GetBBoxCenterScale` (padding 1.25) + `TopdownAffine` (no UDP).
"""

from keras_pose.preset_entry import PresetEntry
from keras_pose.presets.common import (
    APACHE,
    MMPOSE_SOURCE,
    PREFIX_ONLY_NOTE,
    heatmap_decoding,
    imagenet_preprocessing,
    mmpose_coco_accuracy,
    mmpose_mpii_accuracy,
)

MMPOSE_V1 = "https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/"
MMPOSE_V0 = "https://download.openmmlab.com/mmpose/top_down/cpm/"
SRC = MMPOSE_SOURCE

TEST_CFG = (
    "mmpose 1.x config {config}: codec MSRAHeatmap(input_size={w}x{h} (w x h), heatmap_size={hw}x{hh}, "
    "sigma={sigma}), test_cfg flip_test=True, flip_mode='heatmap', shift_heatmap=True; "
    "GetBBoxCenterScale(padding=1.25), TopdownAffine (no UDP)"
)


def _decoding(image_size, heatmap_size, sigma, config):
    (h, w), (hh, hw) = image_size, heatmap_size
    reference = TEST_CFG.format(config=config, w=w, h=h, hw=hw, hh=hh, sigma=sigma)
    return heatmap_decoding("MSRAHeatmap", image_size, heatmap_size, sigma, reference, shift_heatmap=True,
                            unbiased=False)


def _config(image_size, keypoint_spec, num_keypoints):
    return {
        "image_size": list(image_size),
        "keypoint_spec": keypoint_spec,
        "num_keypoints": num_keypoints,
        "num_stages": 6,
        "feat_channels": 128,
        "middle_channels": 32,
    }


def _coco_accuracy(ap, ap50, ap75, ar, ar50):
    return mmpose_coco_accuracy(SRC + "coco/cpm_coco.md", ap, ap50, ap75, ar, ar50)


PRESETS = [
    PresetEntry(
        name="cpm_coco_256x192",
        family="cpm",
        task_class="CPM",
        description="Convolutional Pose Machine (6 stages), COCO, 256x192; mmpose 1.x release",
        config=_config((256, 192), "coco", 17),
        preprocessing=imagenet_preprocessing(),
        decoding=_decoding((256, 192), (32, 24), 2, "td-hm_cpm_8xb64-210e_coco-256x192.py"),
        source_url=MMPOSE_V1 + "coco/td-hm_cpm_8xb64-210e_coco-256x192-0e978875_20220920.pth",
        file_name="td-hm_cpm_8xb64-210e_coco-256x192-0e978875_20220920.pth",
        sha256="0e978875",
        checkpoint_format="mmpose",
        license=APACHE,
        published_accuracy=_coco_accuracy(0.627, 0.862, 0.709, 0.689, 0.906),
        notes="Trained with mmpose 1.x; the checkpoint holds backbone.* only (CPMHead without final layer). "
        + PREFIX_ONLY_NOTE,
    ),
    PresetEntry(
        name="cpm_coco_384x288",
        family="cpm",
        task_class="CPM",
        description="Convolutional Pose Machine (6 stages), COCO, 384x288; mmpose 1.x release",
        config=_config((384, 288), "coco", 17),
        preprocessing=imagenet_preprocessing(),
        decoding=_decoding((384, 288), (48, 36), 3, "td-hm_cpm_8xb32-210e_coco-384x288.py"),
        source_url=MMPOSE_V1 + "coco/td-hm_cpm_8xb32-210e_coco-384x288-165487b8_20221011.pth",
        file_name="td-hm_cpm_8xb32-210e_coco-384x288-165487b8_20221011.pth",
        sha256="165487b8",
        checkpoint_format="mmpose",
        license=APACHE,
        published_accuracy=_coco_accuracy(0.652, 0.865, 0.730, 0.710, 0.907),
        notes="Trained with mmpose 1.x (codec sigma 3); the checkpoint holds backbone.* only. " + PREFIX_ONLY_NOTE,
    ),
    PresetEntry(
        name="cpm_mpii_368x368",
        family="cpm",
        task_class="CPM",
        description="Convolutional Pose Machine (6 stages), MPII, 368x368; mmpose release",
        config=_config((368, 368), "mpii", 16),
        preprocessing=imagenet_preprocessing(),
        decoding=_decoding((368, 368), (46, 46), 2, "td-hm_cpm_8xb64-210e_mpii-368x368.py"),
        source_url=MMPOSE_V0 + "cpm_mpii_368x368-116e62b8_20200822.pth",
        file_name="cpm_mpii_368x368-116e62b8_20200822.pth",
        sha256="116e62b8",
        checkpoint_format="mmpose",
        license=APACHE,
        published_accuracy=mmpose_mpii_accuracy(SRC + "mpii/cpm_mpii.md", 0.876, 0.285),
        notes=(
            "Trained with mmpose 0.x (TopDown + TopdownHeatmapMultiStageHead); its keys (backbone.* only) "
            "are the same as mmpose 1.x. No centre map (mmpose's CPM has none). MPII boxes come from the "
            "annotation center / scale (scale * 200 * 1.25, center y + 15 / 200 * scale) before the 1.25 "
            "box padding. " + PREFIX_ONLY_NOTE
        ),
    ),
]

