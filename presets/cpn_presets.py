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
with the COCO symmetry pairs and averages (no shift), then per keypoint
normalises the map by its maximum, zero-pads it by 10 px, blurs it with a
21x21 Gaussian (`cv2.GaussianBlur(dr, (21, 21), 0)`, sigma 3.5), takes the
argmax, then moves 0.25 heatmap px toward the *second* largest pixel of the
blurred map (a unit vector, not per-axis signs), clips to the map, and maps
heatmap px ``x`` to input px ``4 x + 2`` (pixel centres: a half-pixel
offset), i.e. ``u = (x + 0.5) * W / w``. Keypoint scores are
``heatmap / 255 + 0.5`` at the rounded peak, the instance score is the box
score times their mean. The crop extends the box by 10 % per side in x and
15 % per side in y, fixes the aspect ratio, pads the image with the pixel
means and resizes with `cv2.resize` (integer crop corners). The `decoding`
dicts hold the closest codec settings (MSRAHeatmap argmax + quarter-pixel
shift, flip test, padding 1.3) plus a `cpn_test` record of these details.
"""

from keras_pose.models.cpn.cpn_pose_estimator import CPN_PREPROCESSING
from keras_pose.models.cpn.cpn_pose_estimator import cpn_decoding
from keras_pose.preset_registry import PresetEntry
from keras_pose.preset_registry import register_presets

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
    "Decoding differences from pytorch-cpn test.py that the codecs do not reproduce (see decoding['cpn_test']): "
    "21x21 Gaussian blur of the max-normalised heatmap before the argmax, the 0.25 px shift toward the "
    "second maximum (instead of MSRA's per-axis gradient signs on the raw map), the half-pixel offset "
    "(input px = 4 * heatmap px + 2), keypoint scores heatmap/255 + 0.5, and the crop (box +10 %/side in x, "
    "+15 %/side in y, integer corners, cv2.resize) approximated by padding 1.3. Heatmaps peak near 255 "
    "(training targets were scaled to 255)."
)


def _accuracy(det, gt):
    keys = ("AP", "AP50", "AP75", "AP_M", "AP_L")
    acc = {"dataset": "COCO val2017 (minival)", "metric": "AP", "detector": DETECTOR, "source": SOURCE}
    acc.update(dict(zip(keys, det)))
    acc["gt_boxes"] = dict(zip(keys, gt))
    return acc


def _decoding(image_size, sigma):
    heatmap_size = [image_size[0] // 4, image_size[1] // 4]
    decoding = cpn_decoding(image_size, heatmap_size, sigma=sigma)
    decoding["reference"] = "GengDavid/pytorch-cpn 256.192.model/test.py, 384.288.model/test.py (flip test on)"
    return decoding


def _entry(name, depth, image_size, sigma, url, file_name, det, gt, description, extra_notes=""):
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
        decoding=_decoding(image_size, sigma),
        source_url=url,
        file_name=file_name,
        sha256=None,
        checkpoint_format="pytorch_cpn",
        license=LICENSE,
        published_accuracy=_accuracy(det, gt),
        notes=(extra_notes + " " + COMMON_NOTES).strip(),
    )


# Target sigma: pytorch-cpn trains RefineNet on `cv2.GaussianBlur` targets
# with kernel 7x7 at 256x192 (sigma 0.3*((7-1)/2-1)+0.8 = 1.4) and 9x9 at
# 384x288 (sigma 1.7); GlobalNet levels use 15/11/9/7 (23/17/13/9).
PRESETS = [
    _entry(
        "cpn50_coco_256x192",
        50,
        (256, 192),
        1.4,
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
        1.7,
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
        1.7,
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

register_presets(PRESETS)
