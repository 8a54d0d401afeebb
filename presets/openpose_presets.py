"""Built-in presets of OpenPose (family "openpose"): CMU's body models.

Sources: CMU-Perceptual-Computing-Lab/openpose `models/getModels.sh`
(``<OPENPOSE_URL>pose/coco/pose_iter_440000.caffemodel``,
``<OPENPOSE_URL>pose/body_25/pose_iter_584000.caffemodel``, with OPENPOSE_URL
= http://posefs1.perception.cs.cmu.edu/OpenPose/models/) and the PyTorch
port's ``body_pose_model.pth`` (Hzzone/pytorch-openpose; the copy on the
Hugging Face hub in lllyasviel/Annotators, which controlnet-aux loads).

Licence: CMU's OpenPose weights are released for non-commercial research
only (the OpenPose LICENSE: "ACADEMIC OR NON-PROFIT ORGANIZATION
NONCOMMERCIAL RESEARCH USE ONLY"); the PyTorch port converts the same COCO
weights. Loading these presets needs ``accept_license=True`` (CLI:
``--accept-license``); see `keras_pose.preset_loading`.

No sha256 is published for these files: a download is only checked to parse
(its full digest is recorded on first download); the Hugging Face copy is
also checked against the digest the hub sends (X-Linked-Etag). No accuracy figure is
recorded here: the papers' COCO numbers (multi-scale search, CMU's C++
pipeline) could not be re-checked for these exact settings.

Test settings: net height 368 (``image_size[0]``), one scale; CMU's demo
averages scales 0.5 / 1 / 1.5 / 2 (set ``test_cfg["scales"]``).
"""

from keras_pose.preset_entry import PresetEntry

CMU_URL = "http://posefs1.perception.cs.cmu.edu/OpenPose/models/pose/"
NONCOMMERCIAL = "LicenseRef-CMU-OpenPose-Academic-NonCommercial"
NO_DIGEST = (" No sha256 is published: the download is checked to parse as a checkpoint, and its full digest is "
             "recorded on first download.")
HUB_DIGEST = (" No sha256 is recorded here: the download is checked against the one the hub sends (X-Linked-Etag), "
              "and its full digest is recorded on first download.")
LICENSE_NOTE = (
    "Weights: CMU OpenPose licence, academic or non-profit non-commercial research use only "
    "(https://github.com/CMU-Perceptual-Computing-Lab/openpose/blob/master/LICENSE); commercial use needs a "
    "licence from CMU. Loading requires accept_license=True / --accept-license. "
)
PREPROCESSING = {
    "channel_order": "bgr",
    "scale": 1.0 / 256.0,
    "offset": -0.5,
    "resize": "height to net_height (cv2.INTER_CUBIC), pad right / bottom to a multiple of 8 with 128",
}


def _decoding(num_maps, reference):
    return {
        "codec": {"type": "OpenPoseMaps", "input_size": [368, 368], "heatmap_size": [46, 46],
                  "num_heatmaps": num_maps[0], "num_pafs": num_maps[1]},
        "test_cfg": {"net_height": 368, "scales": [1.0], "flip_test": False, "upsample": "cubic"},
        "reference": reference,
    }


COCO18 = {"image_size": [368, 368], "keypoint_spec": "openpose", "variant": "coco18", "num_heatmaps": 19,
          "num_pafs": 38, "num_stages": 6, "vgg_channels": [64, 128, 256, 512], "cpm_channels": [256, 128],
          "stage_channels": 128, "head_channels": 512, "refine_head_channels": 128, "refine_kernel_size": 7}
BODY25 = {"image_size": [368, 368], "keypoint_spec": None, "variant": "body25", "num_heatmaps": 26,
          "num_pafs": 52, "num_paf_stages": 4, "num_heatmap_stages": 2, "vgg_channels": [64, 128, 256, 512],
          "cpm_channels": [256, 128], "stage_channels": 128, "head_channels": 512, "first_stage_channels": 96,
          "first_head_channels": 256, "final_heatmap_relu": False}

PRESETS = [
    PresetEntry(
        name="openpose_coco18_coco_368x368",
        family="openpose",
        task_class="OpenPose",
        description="OpenPose COCO-18 body model (CVPR 2017, 6 stages), PyTorch port body_pose_model.pth",
        config={**COCO18, "final_heatmap_relu": True},
        preprocessing=PREPROCESSING,
        decoding=_decoding((19, 38), "Hzzone/pytorch-openpose src/body.py: boxsize 368, stride 8, padValue 128, "
                                     "thre1 0.1, thre2 0.05, INTER_CUBIC upsampling"),
        source_url="https://huggingface.co/lllyasviel/Annotators/resolve/main/body_pose_model.pth",
        file_name="body_pose_model.pth",
        checkpoint_format="pytorch_openpose",
        license=NONCOMMERCIAL,
        notes=LICENSE_NOTE + "The PyTorch port of CMU's pose_iter_440000.caffemodel (flat dict named after the "
        "Caffe layers). The port applies a ReLU to the final heatmaps (its no_relu_layers misses "
        "Mconv7_stage6_L2); the converted model keeps it (final_heatmap_relu=True)." + HUB_DIGEST,
    ),
    PresetEntry(
        name="openpose_coco18_caffe_coco_368x368",
        family="openpose",
        task_class="OpenPose",
        description="OpenPose COCO-18 body model (CVPR 2017, 6 stages), CMU Caffe pose_iter_440000.caffemodel",
        config={**COCO18, "final_heatmap_relu": False},
        preprocessing=PREPROCESSING,
        decoding=_decoding((19, 38), "CMU openpose POSE_COCO, net resolution -1x368"),
        source_url=CMU_URL + "coco/pose_iter_440000.caffemodel",
        file_name="pose_iter_440000.caffemodel",
        checkpoint_format="caffe",
        license=NONCOMMERCIAL,
        notes=LICENSE_NOTE + "Binary Caffe NetParameter read without Caffe (conversion.caffe_io)." + NO_DIGEST,
    ),
    PresetEntry(
        name="openpose_body25_coco_368x368",
        family="openpose",
        task_class="OpenPose",
        description="OpenPose BODY_25 (TPAMI 2019: 4 PAF + 2 heatmap stages, PReLU), CMU pose_iter_584000",
        config=BODY25,
        preprocessing=PREPROCESSING,
        decoding=_decoding((26, 52), "CMU openpose POSE_BODY_25, net resolution -1x368"),
        source_url=CMU_URL + "body_25/pose_iter_584000.caffemodel",
        file_name="pose_iter_584000.caffemodel",
        checkpoint_format="caffe",
        license=NONCOMMERCIAL,
        notes=LICENSE_NOTE + "Binary Caffe NetParameter read without Caffe (conversion.caffe_io). Grouping here "
        "uses the reference (pytorch-openpose) parser generalised to the 26 BODY_25 limbs, not CMU's C++ one."
        + NO_DIGEST,
    ),
]
