"""Built-in presets of RTMO (family "rtmo"), the one-stage pose estimator.

The mmpose model-zoo releases (download.openmmlab.com, Apache-2.0). Facts
from open-mmlab/mmpose `configs/body_2d_keypoint/rtmo/` (`body7/rtmo_body7.md`
/ `.yml`, `coco/rtmo_coco.md` / `.yml`, `crowdpose/rtmo_crowdpose.md` /
`.yml`, `projects/rtmo/README.md`) and the configs they link. Accuracy values
are fractions (0.677 = 67.7 AP): COCO val2017 for the body7 and COCO models,
CrowdPose test for the CrowdPose models, with the model's own instances (no
detector). `sha256` is the hash prefix mmpose puts in the file name.

Every config: CSPDarknet (deepen / widen factors per size: t 0.33 / 0.375,
s 0.33 / 0.5, m 0.67 / 0.75, l 1.0 / 1.0), HybridEncoder (hidden 256),
RTMOHead (strides 16 and 32, DCC with 192 x 256 bins), `BottomupResize(
input_size, pad_val=(114, 114, 114))`, `PoseDataPreprocessor(mean 0, std 1,
bgr_to_rgb=False)` (BGR 0..255), `test_cfg=dict(input_size, score_thr=0.1,
nms_thr=0.65)`. "body7" is AI Challenger + COCO + CrowdPose + Halpe + MPII +
PoseTrack18 + sub-JHMDB.
"""

from keras_pose.preset_entry import PresetEntry
from keras_pose.presets.common import APACHE, PREFIX_ONLY_NOTE

URL = "https://download.openmmlab.com/mmpose/v1/projects/rtmo/"
SRC = "open-mmlab/mmpose configs/body_2d_keypoint/rtmo/"

SIZES = {
    "t": {"deepen_factor": 0.33, "widen_factor": 0.375},
    "s": {"deepen_factor": 0.33, "widen_factor": 0.5},
    "m": {"deepen_factor": 0.67, "widen_factor": 0.75},
    "l": {"deepen_factor": 1.0, "widen_factor": 1.0},
}

BODY7 = "AI Challenger, COCO, CrowdPose, Halpe, MPII, PoseTrack18, sub-JHMDB (body7)"


def _preprocessing():
    """What the reference feeds RTMO: the letterbox padded with 114, BGR 0..255 without normalisation."""
    return {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "channel_order": "bgr", "pad_value": 114}


def _decoding(config_file, image_size):
    h, w = image_size
    return {
        "score_threshold": 0.1,
        "nms_threshold": 0.65,
        "max_instances": 100,
        "max_candidates": None,
        "reference": (
            f"mmpose 1.x config {config_file}: BottomupResize(input_size=({w}, {h}), pad_val=(114, 114, 114)), "
            "PoseDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1], bgr_to_rgb=False), "
            f"test_cfg=dict(input_size=({w}, {h}), score_thr=0.1, nms_thr=0.65)"
        ),
    }


def _coco_accuracy(source, ap, ap50, ap75, ar, ar50):
    return {"dataset": "COCO val2017", "metric": "AP", "AP": ap, "AP50": ap50, "AP75": ap75, "AR": ar,
            "AR50": ar50, "detector": "none (one-stage: the model's own instances)", "source": SRC + source}


def _crowdpose_accuracy(source, ap, ap50, ap75, ap_e, ap_m, ap_h):
    return {"dataset": "CrowdPose test", "metric": "AP", "AP": ap, "AP50": ap50, "AP75": ap75, "AP(E)": ap_e,
            "AP(M)": ap_m, "AP(H)": ap_h, "detector": "none (one-stage: the model's own instances)",
            "source": SRC + source}


def _entry(size, dataset, config_file, file_name, accuracy, trained_on, url=None, notes=""):
    image_size = (416, 416) if size == "t" else (640, 640)
    spec, k = ("crowdpose", 14) if "crowdpose" in dataset else ("coco", 17)
    name = f"rtmo_{size}_{dataset}_{image_size[0]}x{image_size[1]}"
    return PresetEntry(
        name=name,
        family="rtmo",
        task_class="RTMO",
        description=f"RTMO-{size} one-stage, trained on {trained_on}, {spec} keypoints, "
        f"{image_size[0]}x{image_size[1]}; mmpose 1.x release",
        config={"image_size": list(image_size), "keypoint_spec": spec, "num_keypoints": k, **SIZES[size]},
        preprocessing=_preprocessing(),
        decoding=_decoding(config_file, image_size),
        source_url=url or URL + file_name,
        file_name=file_name,
        sha256=file_name.rsplit("-", 1)[1].split("_")[0],
        checkpoint_format="mmpose",
        license=APACHE,
        published_accuracy=accuracy,
        notes=(notes + " " if notes else "") + PREFIX_ONLY_NOTE,
    )


PRESETS = [
    _entry("t", "body7", "body7/rtmo-t_8xb32-600e_body7-416x416.py",
           "rtmo-t_8xb32-600e_body7-416x416-f48f75cb_20231219.pth",
           _coco_accuracy("body7/rtmo_body7.md", 0.574, 0.803, 0.613, 0.611, 0.836), BODY7,
           notes="The model-zoo table lists its input as 640x640; its config (and this preset) use 416x416."),
    _entry("s", "body7", "body7/rtmo-s_8xb32-600e_body7-640x640.py",
           "rtmo-s_8xb32-600e_body7-640x640-dac2bf74_20231211.pth",
           _coco_accuracy("body7/rtmo_body7.md", 0.686, 0.879, 0.744, 0.723, 0.908), BODY7),
    _entry("m", "body7", "body7/rtmo-m_16xb16-600e_body7-640x640.py",
           "rtmo-m_16xb16-600e_body7-640x640-39e78cc4_20231211.pth",
           _coco_accuracy("body7/rtmo_body7.md", 0.726, 0.899, 0.790, 0.763, 0.926), BODY7),
    _entry("l", "body7", "body7/rtmo-l_16xb16-600e_body7-640x640.py",
           "rtmo-l_16xb16-600e_body7-640x640-b37118ce_20231211.pth",
           _coco_accuracy("body7/rtmo_body7.md", 0.748, 0.911, 0.813, 0.786, 0.939), BODY7),
    _entry("s", "coco", "coco/rtmo-s_8xb32-600e_coco-640x640.py",
           "rtmo-s_8xb32-600e_coco-640x640-8db55a59_20231211.pth",
           _coco_accuracy("coco/rtmo_coco.md", 0.677, 0.878, 0.737, 0.715, 0.908), "COCO"),
    _entry("m", "coco", "coco/rtmo-m_16xb16-600e_coco-640x640.py",
           "rtmo-m_16xb16-600e_coco-640x640-6f4e0306_20231211.pth",
           _coco_accuracy("coco/rtmo_coco.md", 0.709, 0.890, 0.778, 0.747, 0.920), "COCO"),
    _entry("l", "coco", "coco/rtmo-l_16xb16-600e_coco-640x640.py",
           "rtmo-l_16xb16-600e_coco-640x640-516a421f_20231211.pth",
           _coco_accuracy("coco/rtmo_coco.md", 0.724, 0.899, 0.788, 0.762, 0.927), "COCO"),
    _entry("s", "crowdpose", "crowdpose/rtmo-s_8xb32-700e_crowdpose-640x640.py",
           "rtmo-s_8xb32-700e_crowdpose-640x640-79f81c0d_20231211.pth",
           _crowdpose_accuracy("crowdpose/rtmo_crowdpose.md", 0.673, 0.882, 0.729, 0.737, 0.682, 0.591),
           "CrowdPose"),
    _entry("m", "crowdpose", "crowdpose/rtmo-m_16xb16-700e_crowdpose-640x640.py",
           "rrtmo-m_16xb16-700e_crowdpose-640x640-0eaf670d_20231211.pth",
           _crowdpose_accuracy("crowdpose/rtmo_crowdpose.md", 0.711, 0.897, 0.771, 0.774, 0.719, 0.634),
           "CrowdPose",
           notes="The published URL (rtmo_crowdpose.md / .yml, projects/rtmo/README.md) spells the file "
           "'rrtmo-m_...' (double r); the preset uses it as published."),
    _entry("l", "crowdpose", "crowdpose/rtmo-l_16xb16-700e_crowdpose-640x640.py",
           "rtmo-l_16xb16-700e_crowdpose-640x640-1008211f_20231211.pth",
           _crowdpose_accuracy("crowdpose/rtmo_crowdpose.md", 0.732, 0.907, 0.793, 0.792, 0.741, 0.653),
           "CrowdPose"),
    _entry("l", "body7_crowdpose", "crowdpose/rtmo-l_16xb16-700e_body7-crowdpose-640x640.py",
           "rtmo-l_16xb16-700e_body7-crowdpose-640x640-5bafdc11_20231219.pth",
           _crowdpose_accuracy("crowdpose/rtmo_crowdpose.md", 0.838, 0.947, 0.893, 0.888, 0.847, 0.772),
           BODY7 + " with CrowdPose keypoints"),
]
