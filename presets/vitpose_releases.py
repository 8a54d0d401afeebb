"""Facts of the ViTPose / ViTPose++ releases: where each file is, its digest, and its published accuracy.

Pure data, copied from the release tables (ViTPose README, mmpose `vitpose_coco.md`
/ `vitpose_humanart.md`, the HF hub pages); `vitpose_presets.py` builds the
`PresetEntry` objects from it. Accuracy values are fractions (0.758 = 75.8 AP).
"""

from keras_pose.reference_constants import VIT_SIZES
from keras_pose.presets.common import MMPOSE_COCO_DETECTOR

VITPOSE_REPO = "https://github.com/ViTAE-Transformer/ViTPose"
MMPOSE_ROOT = "https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/"
HF = "https://huggingface.co/"
NIELSR = HF + "nielsr/vitpose-original-checkpoints/resolve/main/"
PUBLIC_DATA = HF + "public-data/ViTPose/resolve/main/models/"
ONEDRIVE = "https://1drv.ms/u/s!"

IMAGE_SIZE = [256, 192]  # (H, W)
HEATMAP_SIZE = [64, 48]

SIZES = tuple(VIT_SIZES)  # small, base, large, huge
LETTER = {"small": "S", "base": "B", "large": "L", "huge": "H"}

# ViTPose++ dataset order (dataset_index 0..5).
PLUS_DATASETS = ["coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody"]

COCO_DET = "person detector with 56 AP on COCO val2017 (COCO_val2017_detections_AP_H_56_person.json)"
COCO_DET_MMPOSE = MMPOSE_COCO_DETECTOR
SRC_README = "ViTAE-Transformer/ViTPose README"
SRC_MMPOSE_COCO = "open-mmlab/mmpose configs/body_2d_keypoint/topdown_heatmap/coco/vitpose_coco.md"
SRC_MMPOSE_HUMANART = "open-mmlab/mmpose configs/body_2d_keypoint/topdown_heatmap/humanart/vitpose_humanart.md"


ORIG_UDP = (
    "ViTPose config test_cfg: flip_test=True, post_process='default', shift_heatmap=False, "
    "target_type='GaussianHeatmap', modulate_kernel=11, use_udp=True; TopDownAffine(use_udp=True)"
)
ORIG_MSRA = (
    "ViTPose evaluation config test_cfg: flip_test=True, post_process='default', shift_heatmap=True, "
    "modulate_kernel=11 (no use_udp); TopDownAffine() without UDP"
)
MMPOSE_UDP = (
    "mmpose 1.x config: codec UDPHeatmap(sigma=2) (DARK-UDP refinement, blur_kernel_size=11), "
    "test_cfg flip_test=True, flip_mode='heatmap', shift_heatmap=False; TopdownAffine(use_udp=True); "
    "GetBBoxCenterScale(padding=1.25)"
)

# Per-dataset evaluation settings of the ViTPose multi-task / ViTPose++ models
# (the configs the README tables link to).
DATASET_DECODING = {
    "coco": ("udp", ORIG_UDP + "; configs/body/.../coco"),
    "mpii": ("udp", ORIG_UDP + "; configs/body/.../mpii/ViTPose_*_mpii_256x192.py"),
    "aic": ("msra", ORIG_MSRA + "; configs/body/.../aic/ViTPose_*_aic_256x192.py"),
    "ap10k": ("msra", ORIG_MSRA + "; configs/animal/.../ap10k/ViTPose_*_ap10k_256x192.py"),
    "apt36k": ("msra", ORIG_MSRA + "; configs/animal/.../apt36k/ViTPose_*_apt36k_256x192.py"),
    "coco_wholebody": ("msra", ORIG_MSRA + "; configs/wholebody/.../ViTPose_*_wholebody_256x192.py"),
    "crowdpose": ("msra", ORIG_MSRA + "; configs/body/.../crowdpose/ViTPose_*_crowdpose_256x192.py"),
}



# --------------------------------------------------------------------------
# Facts from the release tables
# --------------------------------------------------------------------------
# Single-task COCO (ViTPose README, "Results from this repo on MS COCO val
# set (single-task training)"): (AP, AR, OneDrive id).
SINGLE_TASK = {
    ("small", "classic"): (0.738, 0.792, "AimBgYV7JjTlgccifT1XlGRatxg3vw?e=9wz7BY"),
    ("base", "classic"): (0.758, 0.811, "AimBgYV7JjTlgSMjp1_NrV3VRSmK?e=Q1uZKs"),
    ("large", "classic"): (0.783, 0.835, "AimBgYV7JjTlgSd9k_kuktPtiP4F?e=K7DGYT"),
    ("huge", "classic"): (0.791, 0.841, "AimBgYV7JjTlgShLMI-kkmvNfF_h?e=dEhGHe"),
    ("small", "simple"): (0.735, 0.789, "AimBgYV7JjTlgccgb_50jIgiYkHvdw?e=D7RbH2"),
    ("base", "simple"): (0.755, 0.809, "AimBgYV7JjTlgSRPKrD5PmDRiv0R?e=jifvOe"),
    ("large", "simple"): (0.782, 0.834, "AimBgYV7JjTlgSVS6DP2LmKwZ3sm?e=MmCvDT"),
    ("huge", "simple"): (0.789, 0.840, "AimBgYV7JjTlgSbHyN2mjh2n2LyG?e=y0FgMK"),
}

# Hugging Face hub copies of the original files: (url, file name, LFS sha256, where).
SINGLE_TASK_MIRRORS = {
    ("small", "classic"): (
        NIELSR + "vitpose_small.pth",
        "vitpose_small.pth",
        "43eba5e44ea5471a449c6a85bd7f11284727da79fc25c35a3bd358d6b0cdb698",
        "HF hub nielsr/vitpose-original-checkpoints (added by its PR #2); same LFS sha256 as the "
        "ViTPose-S copies in camenduru/SMPLer-X and shauray/ViTPose",
    ),
    ("base", "classic"): (
        NIELSR + "vitpose-b.pth",
        "vitpose-b.pth",
        "2e849e1f1dbb5b87191eda7171f1b16468d5d082a7380e93e94b7ce76a061679",
        "HF hub nielsr/vitpose-original-checkpoints (also public-data/ViTPose models/vitpose-b.pth, "
        "same sha256); the file HF converted into usyd-community/vitpose-base",
    ),
    ("base", "simple"): (
        NIELSR + "vitpose-b-simple.pth",
        "vitpose-b-simple.pth",
        "1d60b1e86af84d36cb57d500c5d517f66beb211cfcb36d5e60c741f2164533da",
        "HF hub nielsr/vitpose-original-checkpoints (also public-data/ViTPose, same sha256); the "
        "file HF converted into usyd-community/vitpose-base-simple",
    ),
    ("large", "classic"): (
        PUBLIC_DATA + "vitpose-l.pth",
        "vitpose-l.pth",
        "c79ff0cbe5c00e723fb96b7ab05cd38ce12c479446501b34fc17d4ffa6f7b10f",
        "HF hub public-data/ViTPose (HF staff copy used by the ViTPose Spaces demos)",
    ),
    ("large", "simple"): (
        PUBLIC_DATA + "vitpose-l-simple.pth",
        "vitpose-l-simple.pth",
        "1f09b3690e1fbac2c9c05700cdcf73f72c707cec05281aefff1069aad23b298b",
        "HF hub public-data/ViTPose (HF staff copy used by the ViTPose Spaces demos)",
    ),
}
SINGLE_TASK_LOCAL_NAMES = {
    ("small", "simple"): "vitpose-s-simple.pth",
    ("huge", "classic"): "vitpose-h.pth",
    ("huge", "simple"): "vitpose-h-simple.pth",
}

# Multi-task COCO+AIC+MPII (ViTPose README, "Results with multi-task
# training", rows without "*"): COCO (AP, AR), OCHuman (AP, AR), MPII PCKh,
# AIC (AP, AR), OneDrive id.
MULTI3 = {
    "base": ((0.771, 0.822), (0.880, 0.896), 0.933, (0.320, 0.363), "AimBgYV7JjTlgcccwaTZ8xCFFM3Sjg?e=chmiK5"),
    "large": ((0.787, 0.838), (0.909, 0.922), 0.940, (0.345, 0.390), "AimBgYV7JjTlgccdOLQqSo6E87GfMw?e=TEurgW"),
    "huge": ((0.795, 0.845), (0.909, 0.923), 0.941, (0.354, 0.399), "AimBgYV7JjTlgccmHofkmfJDQDukVw?e=gRK224"),
}

# Multi-task "*" models (COCO+AIC+MPII+CrowdPose), one file per dataset head.
# Per size: dataset -> (published accuracy fields, OneDrive id).
MULTI4 = {
    "base": {
        "coco": ((0.775, 0.826), "AimBgYV7JjTlgSrlMB093JzJtqq-?e=Jr5S3R"),
        "ochuman": (0.882, 0.900),
        "mpii": (0.934, "AimBgYV7JjTlgSy_OSEm906wd2LB?e=GOSg14"),
        "aic": ((0.319, 0.363), "AimBgYV7JjTlgSlvdVaXTC92SHYH?e=j7iqcp"),
        "crowdpose": ((0.747, 0.633), "AimBgYV7JjTlgStrrCb91cPlaxJx?e=6Xobo6"),
    },
    "large": {
        "coco": ((0.791, 0.841), "AimBgYV7JjTlgTBm3dCVmBUbHYT6?e=fHUrTq"),
        "ochuman": (0.915, 0.928),
        "mpii": (0.939, "AimBgYV7JjTlgTM32I6Kpjr-esl6?e=qvh0Yl"),
        "aic": ((0.346, 0.390), "AimBgYV7JjTlgTF06FX3FSAm0MOH?e=rYts9F"),
        "crowdpose": ((0.766, 0.659), "AimBgYV7JjTlgTK3dug-r7c6GFyu?e=1ZBpEG"),
    },
    "huge": {
        "coco": ((0.798, 0.848), "AimBgYV7JjTlgS5rLeRAJiWobCdh?e=41GsDd"),
        "ochuman": (0.916, 0.928),
        "mpii": (0.941, "AimBgYV7JjTlgTT90XEQBKy-scIH?e=D2WhTS"),
        "aic": ((0.353, 0.398), "AimBgYV7JjTlgS1MRmb2mcow_K04?e=q9jPab"),
        "crowdpose": ((0.763, 0.656), "AimBgYV7JjTlgS-oAvEV4MTD--Xr?e=EeW2Fu"),
    },
}
# HF hub copies (public-data/ViTPose, LFS sha256). The mpii digest is the
# prefix shown in the hub's commit view (the full digest was not readable).
MULTI4_MIRRORS = {
    ("base", "coco"): "595b5e128b2fe6e4364d8fa9cb9a2fd0f9710301b08ea0daa5f2903595bbab27",
    ("base", "aic"): "b38cba796d786d5558209b14dd1d60a7cd3341bbc380745ce670fbe86eb9a44a",
    ("base", "mpii"): "92424e3c6a814e89096796e6c",
    ("base", "crowdpose"): "5b3c2fb5dda4ea01f6f345e2e489c9a06cd6bb22e611c97a98f0f7db60581ccd",
    ("large", "coco"): "9475d27cece040bca5c4141682de63d13917f64f358d86edd40a808b0701f8b3",
    ("large", "aic"): "3e1be9641e703fc6015d5d4df372c9ee3adf078e81fba0824f076b24053ce221",
    ("large", "mpii"): "57eab07b6d19b529df393f47194e906618cbb5f756bdb40f3a9e427734da86d4",
    ("large", "crowdpose"): "42f1ab941d060f81c8940b286ca9079ebff5bb7ba4512cd9047ba4aed4f05fd0",
}

# mmpose 1.x COCO releases (vitpose_coco.md / .yml): file stem, hash prefix,
# date, AP, AP50, AP75, AR, AR50.
MMPOSE_COCO = {
    ("small", "classic"): ("td-hm_ViTPose-small_8xb64-210e_coco-256x192", "62d7a712", "20230314", 0.739, 0.903, 0.816, 0.792, 0.942),
    ("base", "classic"): ("td-hm_ViTPose-base_8xb64-210e_coco-256x192", "216eae50", "20230314", 0.757, 0.905, 0.829, 0.810, 0.946),
    ("large", "classic"): ("td-hm_ViTPose-large_8xb64-210e_coco-256x192", "53609f55", "20230314", 0.782, 0.914, 0.850, 0.834, 0.952),
    ("huge", "classic"): ("td-hm_ViTPose-huge_8xb64-210e_coco-256x192", "e32adcd4", "20230314", 0.788, 0.917, 0.855, 0.839, 0.954),
    ("small", "simple"): ("td-hm_ViTPose-small-simple_8xb64-210e_coco-256x192", "4c101a76", "20230314", 0.736, 0.900, 0.811, 0.790, 0.940),
    ("base", "simple"): ("td-hm_ViTPose-base-simple_8xb64-210e_coco-256x192", "0b8234ea", "20230407", 0.756, 0.906, 0.826, 0.809, 0.946),
    ("large", "simple"): ("td-hm_ViTPose-large-simple_8xb64-210e_coco-256x192", "3a7ee9e1", "20230314", 0.781, 0.914, 0.853, 0.833, 0.952),
    ("huge", "simple"): ("td-hm_ViTPose-huge-simple_8xb64-210e_coco-256x192", "ffd48c05", "20230314", 0.789, 0.916, 0.856, 0.839, 0.953),
}

# mmpose 1.x Human-Art + COCO releases (vitpose_humanart.md): stem, hash,
# date, Human-Art val (detector AP 56.2) AP/AP50/AP75/AR/AR50, Human-Art GT
# boxes AP/AR, COCO val AP/AR.
MMPOSE_HUMANART = {
    "small": ("td-hm_ViTPose-small_8xb64-210e_humanart-256x192", "5cbe2bfc", "20230611",
              (0.381, 0.532, 0.405, 0.448, 0.602), (0.738, 0.768), (0.737, 0.792)),
    "base": ("td-hm_ViTPose-base_8xb64-210e_humanart-256x192", "b417f546", "20230611",
             (0.410, 0.549, 0.434, 0.475, 0.615), (0.759, 0.790), (0.758, 0.812)),
    "large": ("td-hm_ViTPose-large_8xb64-210e_humanart-256x192", "9aba9345", "20230614",
              (0.459, 0.592, 0.487, 0.525, 0.656), (0.789, 0.819), (0.782, 0.835)),
    "huge": ("td-hm_ViTPose-huge_8xb64-210e_humanart-256x192", "603bb573", "20230612",
             (0.468, 0.594, 0.498, 0.534, 0.655), (0.800, 0.828), (0.788, 0.841)),
}

# ViTPose++ (README, bold "ViTPose++" rows): per dataset, per size.
PLUS_ACCURACY = {
    "coco": {"small": (0.758, 0.826), "base": (0.770, 0.826), "large": (0.786, 0.841), "huge": (0.794, 0.848)},
    "ochuman": {"small": (0.784, 0.806), "base": (0.826, 0.848), "large": (0.857, 0.875), "huge": (0.857, 0.874)},
    "mpii": {"small": 0.927, "base": 0.928, "large": 0.940, "huge": 0.942},
    "aic": {"small": (0.297, 0.343), "base": (0.318, 0.363), "large": (0.343, 0.389), "huge": (0.348, 0.391)},
    "ap10k": {"small": 0.714, "base": 0.745, "large": 0.804, "huge": 0.824},
    "apt36k": {"small": 0.742, "base": 0.759, "large": 0.808, "huge": 0.823},
    "coco_wholebody": {"small": 0.544, "base": 0.574, "large": 0.606, "huge": 0.612},
}
PLUS_ONEDRIVE = {
    "small": "AimBgYV7JjTlgccrwORr61gT9E4n8g?e=kz9sz5",
    "base": "AimBgYV7JjTlgcckRZk1bIAuRa_E1w?e=ylDB2G",
    "large": "AimBgYV7JjTlgccs1SNFUGSTsmRJ8w?e=a9zKwZ",
    "huge": "AimBgYV7JjTlgccoXv8rCUgVe7oD9Q?e=ZBw6gR",
}
# nielsr/vitpose-original-checkpoints file names (from transformers'
# convert_vitpose_to_hf.py) and LFS sha256 where the hub page was found.
PLUS_FILES = {
    "small": ("vitpose+_small.pth", "75df941cd7ae632a7b0abb136d6c11c9f967643f9ea4a1dd52cf6b642b1eb8f3"),
    "base": ("vitpose+_base.pth", "de043d2ea25a8bcffeb8ea278a68f52e487b918866b629efb2f894b15fdb3545"),
    "large": ("vitpose+_large.pth", None),
    "huge": ("vitpose+_huge.pth", None),
}

DATASET_TITLES = {
    "coco": "COCO",
    "aic": "AI Challenger",
    "mpii": "MPII",
    "ap10k": "AP-10K",
    "apt36k": "APT-36K",
    "coco_wholebody": "COCO-WholeBody",
    "crowdpose": "CrowdPose",
}
