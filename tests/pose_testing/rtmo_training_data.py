"""RTMO training targets from the COCO sample annotations with the plain inference letterbox (tests only).

`letterbox_coco_batch(image_size)` returns (images (N, H, W, 3) float32 BGR
0..255 as RTMO's network takes them, targets dict (`rtmo_training`
format, M padded instances per image), the (2, 3) image -> input matrices,
the image ids). People without labelled keypoints go to the ignore mask
(their segmentation, warped as the image), as mmpose's bottom-up heatmap
mask; the others are instances with box, keypoints, labels and area
(the COCO area times the squared letterbox scale).
"""

import json
import os

import cv2
import numpy as np

from pose_testing.paths import DATA_DIR

COCO_DIR = os.path.join(str(DATA_DIR), "coco")


def _segmentation_mask(segmentation, height, width):
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(np.float32)


def letterbox_coco_batch(image_size, max_instances=8, annotation="test_coco.json"):
    from keras_pose.preprocessing import WarpLetterboxResizer

    with open(os.path.join(COCO_DIR, annotation)) as f:
        data = json.load(f)
    resizer = WarpLetterboxResizer(image_size, pad_value=114)
    height, width = image_size
    images, matrices, ids = [], [], []
    out = {"boxes": [], "keypoints": [], "keypoint_visible": [], "instance_valid": [], "ignore_mask": [],
           "areas": []}
    for info in data["images"]:
        image = cv2.cvtColor(cv2.imread(os.path.join(COCO_DIR, info["file_name"])), cv2.COLOR_BGR2RGB)
        resized, matrix = resizer.resize(image)
        scale = float(matrix[0, 0])
        images.append(resized[..., ::-1].astype(np.float32))  # BGR 0..255
        matrices.append(matrix)
        ids.append(info["id"])
        boxes = np.zeros((max_instances, 4), np.float32)
        kpts = np.zeros((max_instances, 17, 2), np.float32)
        vis = np.zeros((max_instances, 17), np.float32)
        valid = np.zeros((max_instances,), np.float32)
        areas = np.ones((max_instances,), np.float32)
        ignore = np.zeros((info["height"], info["width"]), np.float32)
        m = 0
        for ann in data["annotations"]:
            if ann["image_id"] != info["id"]:
                continue
            if ann["num_keypoints"] == 0 or ann.get("iscrowd", 0):
                ignore = np.maximum(ignore, _segmentation_mask(ann["segmentation"], info["height"], info["width"]))
                continue
            if m >= max_instances:
                raise ValueError(f"image {info['id']} has more than {max_instances} people.")
            x, y, w, h = ann["bbox"]
            corners = np.array([[x, y], [x + w, y + h]], np.float32)
            boxes[m] = (corners @ matrix[:, :2].T + matrix[:, 2]).ravel()
            k = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
            kpts[m] = k[:, :2] @ matrix[:, :2].T + matrix[:, 2]
            vis[m] = (k[:, 2] > 0).astype(np.float32)
            valid[m] = 1.0
            areas[m] = float(ann["area"]) * scale * scale
            m += 1
        warped = cv2.warpAffine(ignore, matrix.astype(np.float64), (width, height), flags=cv2.INTER_NEAREST)
        for key, value in zip(out, (boxes, kpts, vis, valid, (warped > 0.5).astype(np.float32), areas)):
            out[key].append(value)
    targets = {k: np.stack(v) for k, v in out.items()}
    return np.stack(images), targets, np.stack(matrices), ids
