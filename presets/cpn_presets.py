"""Built-in presets of CPN (family "cpn"), from GengDavid/pytorch-cpn.

pytorch-cpn (a PyTorch re-implementation of the CPN paper) releases three
COCO checkpoints through Google Drive share links (README, "Pre-trained
models"): ResNet-50 256x192, ResNet-50 384x288 and ResNet-101 384x288 (the
last fine-tuned from the previous model). Google Drive "open?id=" links are
not direct downloads (a confirmation page answers large files), so loading
these presets asks for a manual download; `keras-pose convert` then reads the
saved file. No checksums are published.

Pre-processing (`config.py`, `utils/imutils.py`, `utils/transforms.py`): RGB
images / 255 minus `pixel_means / 255` with `pixel_means = [122.7717,
115.9465, 102.9801]` (RGB), no division by a std, i.e. std 255 in 0..255
units.

Published accuracy: the pytorch-cpn README table "Evaluation results on COCO
minival dataset" (the COCO 2017 val images, `person_keypoints_val2017.json`),
with the person boxes of tf-cpn's detector ("detection_minival"; tf-cpn
README: detector AP 41.1, human AP 55.3 on minival) and with ground-truth
boxes. Values are fractions (0.692 = 69.2 AP). The README reports AP only
(no AR).

Decoding: pytorch-cpn's `test.py` flips the crop, flips the heatmaps back
with the COCO symmetry pairs and averages (no shift: `flip_test` with
`shift_heatmap` False reproduces it), then per keypoint normalises the map by
its maximum, zero-pads it by 10 px, blurs it with a 21x21 Gaussian
(`cv2.GaussianBlur(dr, (21, 21), 0)`, sigma 3.5), takes the argmax, then
moves 0.25 heatmap px toward the *second* largest pixel of the blurred map (a
unit vector), clips to the map, and maps heatmap px ``x`` to input px
``4 x + 2``, i.e. ``u = (x + 0.5) * W / w``. Keypoint scores are
``heatmap / 255 + 0.5`` at the rounded peak, the instance score is the box
score times their mean. The `CPNHeatmap` codec reproduces all of this
(`keras_pose.codecs.cpn_codec`); mmpose-style rescoring (mean of the
keypoint scores above 0.2, times the box score) equals CPN's plain mean
because CPN scores are ``>= 0.2`` unless a heatmap value is below -76.

The crop extends the box by 10 % per side in x and 15 % per side in y, fixes
the aspect ratio and pads the image with the pixel means: `decoding`
``"padding_xy": [1.2, 1.3]`` and ``"border": "mean"`` (read by
`TopDownPoseEstimator.crop_people`); ``"padding": 1.3`` stays for code that
takes one factor (the training pipeline). Not reproduced (recorded in
``decoding["cpn_test"]``): pytorch-cpn truncates the crop corners to integers
(the box moves by < 1 px and its aspect ratio changes slightly), crops with
``cv2.resize`` (which samples ``0.5 * (s - 1)`` image px further right /
down than the affine warp, ``s`` = image px per input px), and shrinks crops
that would leave the image padded by ``max(H, W)``; on the golden crop
(cpn50_coco_256x192, image 785) the warp differs from pytorch-cpn's crop by
1.7 grey levels on average (8.4 with a zero border).
"""

from keras_pose.preset_entry import PresetEntry
from keras_pose.reference_constants import CPN_PREPROCESSING

REPO = "https://github.com/GengDavid/pytorch-cpn"
GDRIVE = "https://drive.google.com/open?id="
LICENSE = "GPL-3.0-only"
SOURCE = "GengDavid/pytorch-cpn README, 'Evaluation results on COCO minival dataset'"
DETECTOR = (
    "tf-cpn person detection results on COCO minival ('detection_minival', human AP 55.3); "
    "the instance score multiplies the box score"
)

COMMON_NOTES = (
    "Google Drive share link from the pytorch-cpn README: not a direct download; open it in a browser, "
    "save the file under the file_name given, then run `keras-pose convert --preset NAME FILE`. "
    "No sha256 is published. Weights are released in a repository under the GNU GPL v3 (LICENSE); no "
    "separate weights licence is stated. "
    "Decoding: the CPNHeatmap codec reproduces pytorch-cpn test.py (21x21 blur of the max-normalised "
    "heatmap, 0.25 px toward the second maximum, input px = 4 * heatmap px + 2, keypoint scores "
    "heatmap/255 + 0.5) and the crop uses the box +10 %/side in x, +15 %/side in y with a pixel-mean border; "
    "not reproduced: pytorch-cpn's integer crop corners and cv2.resize sampling (sub-pixel crop offsets, see "
    "decoding['cpn_test']). Heatmaps peak near 255 (training targets were scaled to 255)."
)


def _accuracy(det, gt):
    keys = ("AP", "AP50", "AP75", "AP_M", "AP_L")
    acc = {"dataset": "COCO val2017 (minival)", "metric": "AP", "detector": DETECTOR, "source": SOURCE}
    acc.update(dict(zip(keys, det)))
    acc["gt_boxes"] = dict(zip(keys, gt))
    return acc


def _decoding(image_size, kernel_sizes):
    heatmap_size = [image_size[0] // 4, image_size[1] // 4]
    return {
        "codec": {
            "type": "CPNHeatmap",
            "input_size": list(image_size),
            "heatmap_size": heatmap_size,
            "kernel_sizes": list(kernel_sizes),
            "target_peak": 255.0,
            "blur_kernel_size": 21,
            "blur_border": 10,
            "shift": 0.25,
            "score_offset": 0.5,
        },
        "flip_test": True,
        "shift_heatmap": False,
        "padding": 1.3,
        "padding_xy": [1.2, 1.3],
        "border": "mean",
        "reference": "GengDavid/pytorch-cpn 256.192.model/test.py, 384.288.model/test.py (flip test on)",
        # What the codec and the crop do not reproduce (not read by any code).
        "cpn_test": {
            "box_extend_factor": [0.1, 0.15],
            "crop_corners": "int() truncation of the padded-image crop corners (box moves < 1 px)",
            "crop_resampling": "cv2.resize INTER_LINEAR (samples 0.5 * (s - 1) image px right/down of the warp)",
            "crop_size_clip": "crop shrunk to stay inside the image padded by max(H, W)",
            "instance_score": "box score * mean keypoint score (no threshold, no OKS-NMS)",
        },
    }


def _entry(name, depth, image_size, kernel_sizes, url, file_name, det, gt, description, extra_notes=""):
    return PresetEntry(
        name=name,
        family="cpn",
        task_class="CPN",
        description=description,
        config={
            "depth": depth,
            "image_size": list(image_size),
            "heatmap_size": [image_size[0] // 4, image_size[1] // 4],
            "keypoint_spec": "coco",
        },
        preprocessing=dict(CPN_PREPROCESSING),
        decoding=_decoding(image_size, kernel_sizes),
        source_url=url,
        file_name=file_name,
        sha256=None,
        checkpoint_format="pytorch_cpn",
        license=LICENSE,
        published_accuracy=_accuracy(det, gt),
        notes=(extra_notes + " " + COMMON_NOTES).strip(),
    )


# Target kernels (CPNHeatmap kernel_sizes, GlobalNet level coarsest first; RefineNet the last):
# pytorch-cpn `config.py` gk15, gk11, gk9, gk7 = 15, 11, 9, 7 at 256x192 and 23, 17, 13, 9 at 384x288,
# each `cv2.GaussianBlur(k, k, 0)` of one pixel (OpenCV 3/4 kernels: k = 7 is the fixed table
# [1, 3.5, 7, 9, 7, 3.5, 1] / 32, std 1.37; k >= 9 a Gaussian with sigma 0.3 * ((k - 1) / 2 - 1) + 0.8).
KERNELS_256x192 = (15, 11, 9, 7)
KERNELS_384x288 = (23, 17, 13, 9)
PRESETS = [
    _entry(
        "cpn50_coco_256x192",
        50,
        (256, 192),
        KERNELS_256x192,
        GDRIVE + "1pUpU8o6QtgK197vAfCtT5cxokE9p-yuB",
        "CPN50_256x192.pth.tar",
        det=(0.692, 0.880, 0.762, 0.658, 0.756),
        gt=(0.712, 0.914, 0.783, 0.686, 0.752),
        description="CPN ResNet-50, COCO, 256x192 (pytorch-cpn release)",
    ),
    _entry(
        "cpn50_coco_384x288",
        50,
        (384, 288),
        KERNELS_384x288,
        GDRIVE + "1L6Qq-incr2XtptdLJti3Zdf6sr19zs7y",
        "CPN50_384x288.pth.tar",
        det=(0.722, 0.892, 0.786, 0.681, 0.793),
        gt=(0.741, 0.925, 0.806, 0.706, 0.795),
        description="CPN ResNet-50, COCO, 384x288 (pytorch-cpn release)",
        extra_notes=(
            "The file name follows the release's naming (CPN50_256x192 / CPN101_384x288); the README does not "
            "print it, so check the downloaded name."
        ),
    ),
    _entry(
        "cpn101_coco_384x288",
        101,
        (384, 288),
        KERNELS_384x288,
        GDRIVE + "1zFYUsDbFG3xxMoZkSv253QsVD9AF9rv7",
        "CPN101_384x288.pth.tar",
        det=(0.723, 0.892, 0.789, 0.687, 0.791),
        gt=(0.740, 0.923, 0.806, 0.711, 0.787),
        description="CPN ResNet-101, COCO, 384x288 (pytorch-cpn release, fine-tuned from the ResNet-50 model)",
        extra_notes=(
            "The README marks this model as fine-tuned from the previous pre-trained model. The Drive file was "
            "once misnamed CPN101_385x288.pth.tar (pytorch-cpn issue #15, since corrected)."
        ),
    ),
]

