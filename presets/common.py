"""What the family preset modules share: licence, notes, and the builders of the
records they repeat (pre-processing, heatmap decoding, mmpose accuracy rows).

Not a family module (its name does not end in `_presets`), so `keras_pose.presets`
does not look for `PRESETS` here.
"""

import copy

from keras_pose.reference_constants import IMAGENET_PREPROCESSING

APACHE = "Apache-2.0"
MMPOSE_COCO_DETECTOR = (
    "person detector with 56.4 AP on COCO val2017 (COCO_val2017_detections_AP_H_56_person.json)"
)
MMPOSE_SOURCE = "open-mmlab/mmpose configs/body_2d_keypoint/topdown_heatmap/"

# Notes for entries whose checkpoint has no full published digest.
PREFIX_ONLY_NOTE = (
    "Digest: only the 8-hex sha256 prefix in the file name is published, so the download is checked against "
    "that prefix (and must parse); its full sha256 is recorded on the first download and later reads of the "
    "cached file are checked against it."
)
NO_DIGEST_NOTE = (
    "Digest: none is published, so the download is only checked to parse as a complete checkpoint; its full "
    "sha256 is recorded on the first download and later reads of the cached file are checked against it."
)


def imagenet_preprocessing():
    """ImageNet mean / std (0..255 units), RGB: what the mmpose and ViTPose releases use."""
    return copy.deepcopy(IMAGENET_PREPROCESSING)


def heatmap_decoding(codec, image_size, heatmap_size, sigma, reference, shift_heatmap, **codec_options):
    """The `decoding` record of a heatmap release: codec, flip test, box padding 1.25.

    Args:
        codec: codec type ("UDPHeatmap", "MSRAHeatmap").
        image_size, heatmap_size: (H, W) of the input and of the heatmaps, pixels.
        sigma: Gaussian sigma of the targets, heatmap pixels.
        reference: the release's test settings, for the record.
        shift_heatmap: the mmpose 0.x one-pixel shift of flipped heatmaps.
        **codec_options: further codec settings (`blur_kernel_size`, `unbiased`).
    """
    return {
        "codec": {
            "type": codec,
            "input_size": list(image_size),
            "heatmap_size": list(heatmap_size),
            "sigma": float(sigma),
            **codec_options,
        },
        "flip_test": True,
        "shift_heatmap": bool(shift_heatmap),
        "padding": 1.25,
        "reference": reference,
    }


def mmpose_coco_accuracy(source, ap, ap50, ap75, ar, ar50):
    """A COCO val2017 row of an mmpose model-zoo table (person boxes of the 56.4 AP detector)."""
    return {
        "dataset": "COCO val2017",
        "metric": "AP",
        "AP": ap,
        "AP50": ap50,
        "AP75": ap75,
        "AR": ar,
        "AR50": ar50,
        "detector": MMPOSE_COCO_DETECTOR,
        "flip_test": True,
        "source": source,
    }


def mmpose_mpii_accuracy(source, pckh, pckh01):
    """An MPII val row of an mmpose model-zoo table (boxes from the annotation center / scale)."""
    return {
        "dataset": "MPII val",
        "metric": "PCKh",
        "PCKh": pckh,
        "PCKh@0.1": pckh01,
        "detector": "ground-truth boxes (MPII center / scale)",
        "flip_test": True,
        "source": source,
    }
