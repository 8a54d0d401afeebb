"""The records the ViTPose presets repeat: flat model config, decoding, accuracy rows.

Builders over the release facts (`vitpose_releases`); `vitpose_presets` assembles the
entries from them.
"""

from keras_pose.reference_constants import VIT_SIZES, VITPOSE_PLUS_PART_FEATURES
from keras_pose.presets.common import heatmap_decoding
from keras_pose.presets.vitpose_releases import (
    COCO_DET,
    DATASET_DECODING,
    HEATMAP_SIZE,
    IMAGE_SIZE,
    ONEDRIVE,
    PLUS_ACCURACY,
    PLUS_DATASETS,
    SRC_README,
)


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------
def vitpose_config(size, decoder="classic", keypoint_spec="coco", layer_norm_epsilon=1e-6, plus=False,
                   datasets=None):
    """The flat `ViTPose` / `ViTPosePP.from_checkpoint_config` arguments of a released model.

    `layer_norm_epsilon=None` leaves it out (HF: taken from the repo's config.json).
    """
    config = {
        **VIT_SIZES[size],
        "patch_size": 16,
        "patch_padding": 2,
        "qkv_bias": True,
        "image_size": list(IMAGE_SIZE),
        "decoder": decoder,
        "keypoint_spec": keypoint_spec,
    }
    if layer_norm_epsilon is not None:
        config["layer_norm_epsilon"] = layer_norm_epsilon
    if plus:
        config.update(
            {
                "num_experts": 6,
                "part_features": VITPOSE_PLUS_PART_FEATURES[VIT_SIZES[size]["hidden_dim"]],
                "datasets": list(datasets or PLUS_DATASETS),
            }
        )
    return config


def udp_decoding(source):
    """mmpose 0.x `post_process='default', use_udp=True, modulate_kernel=11`
    (= mmpose 1.x UDPHeatmap with DARK-UDP refinement, blur kernel 11), UDP
    affine crops, flip test without heatmap shift, box padding 1.25."""
    return heatmap_decoding("UDPHeatmap", IMAGE_SIZE, HEATMAP_SIZE, 2.0, source, shift_heatmap=False,
                            blur_kernel_size=11)


HF_DECODING_REFERENCE = (
    "HF transformers VitPoseImageProcessor.post_process_pose_estimation: UDP argmax, DARK-UDP with "
    "scipy gaussian_filter(sigma=0.8, radius 5, mode='reflect') on the heatmaps (dark_variant='hf'), "
    "box padding 1.25; flip test as the original release. The published AP of this preset was "
    "measured with the original ViTPose decoding (mmpose DARK-UDP blur, dark_variant='mmpose'); "
    "on the same heatmaps the two differ by < 1.5 px per keypoint (tests/test_golden_decode.py)"
)


def hf_udp_decoding():
    """`udp_decoding` with HF transformers' DARK blur (`dark_variant="hf"`): the
    HF-converted presets decode as `VitPoseImageProcessor.post_process_pose_estimation`
    (6e-5 px on the golden heatmaps)."""
    return heatmap_decoding("UDPHeatmap", IMAGE_SIZE, HEATMAP_SIZE, 2.0, HF_DECODING_REFERENCE,
                            shift_heatmap=False, blur_kernel_size=11, dark_variant="hf")


def msra_decoding(source):
    """mmpose 0.x `post_process='default'` without UDP (argmax + quarter-pixel
    shift, = mmpose 1.x MSRAHeatmap(unbiased=False)), standard affine crops,
    flip test with the one-pixel heatmap shift, box padding 1.25."""
    return heatmap_decoding("MSRAHeatmap", IMAGE_SIZE, HEATMAP_SIZE, 2.0, source, shift_heatmap=True,
                            unbiased=False)


def dataset_decoding(dataset):
    kind, source = DATASET_DECODING[dataset]
    return udp_decoding(source) if kind == "udp" else msra_decoding(source)


def coco_accuracy(ap, ar, source, detector=COCO_DET, **extra):
    acc = {"dataset": "COCO val2017", "metric": "AP", "AP": ap, "AR": ar, "detector": detector, "source": source}
    acc.update(extra)
    return acc


def onedrive_url(share_id):
    return ONEDRIVE + share_id


def plus_accuracy(size, dataset):
    src = SRC_README + ", ViTPose++ rows"
    if dataset == "coco":
        ap, ar = PLUS_ACCURACY["coco"][size]
        oap, oar = PLUS_ACCURACY["ochuman"][size]
        return coco_accuracy(ap, ar, src, additional=[
            {"dataset": "OCHuman test", "metric": "AP", "AP": oap, "AR": oar, "detector": "ground-truth boxes",
             "source": src},
        ])
    if dataset == "mpii":
        return {"dataset": "MPII val", "metric": "PCKh", "PCKh": PLUS_ACCURACY["mpii"][size],
                "detector": "ground-truth boxes", "source": src}
    if dataset == "aic":
        ap, ar = PLUS_ACCURACY["aic"][size]
        return {"dataset": "AI Challenger test", "metric": "AP", "AP": ap, "AR": ar,
                "detector": "ground-truth boxes", "source": src}
    if dataset == "ap10k":
        return {"dataset": "AP-10K test", "metric": "AP", "AP": PLUS_ACCURACY["ap10k"][size],
                "detector": "ground-truth boxes", "source": src}
    if dataset == "apt36k":
        return {"dataset": "APT-36K val", "metric": "AP", "AP": PLUS_ACCURACY["apt36k"][size],
                "detector": "ground-truth boxes", "source": src}
    if dataset == "coco_wholebody":
        return {"dataset": "COCO-WholeBody val", "metric": "AP", "AP": PLUS_ACCURACY["coco_wholebody"][size],
                "detector": COCO_DET, "source": src}
    raise KeyError(dataset)
