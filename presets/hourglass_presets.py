"""Built-in presets of Stacked Hourglass networks (family "hourglass").

The mmpose model-zoo releases of Hourglass-52 (`HourglassNet(num_stacks=1)`,
download.openmmlab.com, Apache-2.0). Facts from open-mmlab/mmpose
`configs/body_2d_keypoint/topdown_heatmap/coco/hourglass_coco.md` /
`hourglass_coco.yml`, `.../mpii/hourglass_mpii.md` / `hourglass_mpii.yml`
and the configs they link (`td-hm_hourglass52_8xb32-210e_coco-256x256.py`,
`..._coco-384x384.py`, `td-hm_hourglass52_8xb64-210e_mpii-256x256.py`,
`td-hm_hourglass52_8xb32-210e_mpii-384x384.py`). Accuracy values are
fractions (0.726 = 72.6 AP). `sha256` is the hash prefix mmpose puts in the
file name.

All four files were trained with mmpose 0.x (head keys
`keypoint_head.multi_final_layers.0.*`, which mmpose 1.x renames to
`head.`); the converter reads both. Configs: `HourglassNet(num_stacks=1)`
(downsample_times 5, stage_channels (256, 256, 384, 384, 384, 512),
stage_blocks (2, 2, 2, 2, 2, 4), feat_channel 256), `CPMHead(in_channels=256,
num_stages=1, deconv_out_channels=None)` (one 1x1 conv), PoseDataPreprocessor
(ImageNet mean / std in 0..255, BGR -> RGB), codec `MSRAHeatmap`, test_cfg
`flip_test=True, flip_mode='heatmap', shift_heatmap=True`,
`GetBBoxCenterScale` (padding 1.25) + `TopdownAffine` (no UDP).
"""

import copy

from keras_pose.preset_entry import PresetEntry
from keras_pose.reference_constants import HOURGLASS52
from keras_pose.presets.common import (
    APACHE,
    MMPOSE_SOURCE,
    PREFIX_ONLY_NOTE,
    heatmap_decoding,
    imagenet_preprocessing,
    mmpose_coco_accuracy,
    mmpose_mpii_accuracy,
)

MMPOSE_V0 = "https://download.openmmlab.com/mmpose/top_down/hourglass/"
SRC = MMPOSE_SOURCE

TEST_CFG = (
    "mmpose 1.x config {config}: codec MSRAHeatmap(input_size={s}x{s}, heatmap_size={hs}x{hs}, "
    "sigma={sigma}), test_cfg flip_test=True, flip_mode='heatmap', shift_heatmap=True; "
    "GetBBoxCenterScale(padding=1.25), TopdownAffine (no UDP)"
)
NOTES = (
    "Trained with mmpose 0.x (TopDown + TopdownHeatmapMultiStageHead): head keys "
    "keypoint_head.multi_final_layers.0.*. The file also holds backbone.inters.0.*, a residual block "
    "mmpose's one-stack HourglassNet builds but never runs; the converter drops it. " + PREFIX_ONLY_NOTE
)


def _entry(dataset, size, sigma, config_name, file_name, accuracy):
    hs = size // 4
    keypoint_spec, num_keypoints = ("coco", 17) if dataset == "coco" else ("mpii", 16)
    return PresetEntry(
        name=f"hourglass52_{dataset}_{size}x{size}",
        family="hourglass",
        task_class="Hourglass",
        description=f"Stacked Hourglass-52 (1 stack), {dataset.upper()}, {size}x{size}; mmpose release",
        config={
            "image_size": [size, size],
            "keypoint_spec": keypoint_spec,
            "num_keypoints": num_keypoints,
            **copy.deepcopy(HOURGLASS52),
        },
        preprocessing=imagenet_preprocessing(),
        decoding=heatmap_decoding(
            "MSRAHeatmap",
            (size, size),
            (hs, hs),
            sigma,
            TEST_CFG.format(config=config_name, s=size, hs=hs, sigma=sigma),
            shift_heatmap=True,
            unbiased=False,
        ),
        source_url=MMPOSE_V0 + file_name,
        file_name=file_name,
        sha256=file_name.rsplit("-", 1)[1].split("_", 1)[0],
        checkpoint_format="mmpose",
        license=APACHE,
        published_accuracy=accuracy,
        notes=NOTES,
    )


def _coco_accuracy(ap, ap50, ap75, ar, ar50):
    return mmpose_coco_accuracy(SRC + "coco/hourglass_coco.md", ap, ap50, ap75, ar, ar50)


def _mpii_accuracy(pckh, pckh01):
    return mmpose_mpii_accuracy(SRC + "mpii/hourglass_mpii.md", pckh, pckh01)


PRESETS = [
    _entry(
        "coco",
        256,
        2,
        "td-hm_hourglass52_8xb32-210e_coco-256x256.py",
        "hourglass52_coco_256x256-4ec713ba_20200709.pth",
        _coco_accuracy(0.726, 0.896, 0.799, 0.780, 0.934),
    ),
    _entry(
        "coco",
        384,
        3,
        "td-hm_hourglass52_8xb32-210e_coco-384x384.py",
        "hourglass52_coco_384x384-be91ba2b_20200812.pth",
        _coco_accuracy(0.746, 0.900, 0.812, 0.797, 0.939),
    ),
    _entry(
        "mpii",
        256,
        2,
        "td-hm_hourglass52_8xb64-210e_mpii-256x256.py",
        "hourglass52_mpii_256x256-ae358435_20200812.pth",
        _mpii_accuracy(0.889, 0.317),
    ),
    _entry(
        "mpii",
        384,
        2,
        "td-hm_hourglass52_8xb32-210e_mpii-384x384.py",
        "hourglass52_mpii_384x384-04090bc3_20200812.pth",
        _mpii_accuracy(0.894, 0.367),
    ),
]

