"""CrowdPose keypoint AP: pycocotools' `COCOeval` with the crowd-index breakdown.

CrowdPose (Li et al., CVPR 2019) reports AP, AP50, AP75, AR, AR50, AR75 and
the AP of its easy, medium and hard images, split by each image's
`crowdIndex` (the file's `images[i]["crowdIndex"]`). mmpose computes it with
xtcocotools' `COCOeval(iouType="keypoints_crowd", use_area=False)`; the
xtcocotools 1.14.3 wheel (the latest release) does not import under NumPy 2
("numpy.dtype size changed": it is built against NumPy 1.x), so this module
reproduces that evaluation on top of pycocotools. The rules, read from
xtcocotools 1.14.3 `cocoeval.py` (`_prepare`, `_summarizeKps_crowd`,
`get_type_result`, `split`):

- buckets: easy `crowdIndex < 0.2`, medium `0.2 <= crowdIndex < 0.8`, hard
  `crowdIndex >= 0.8`;
- a bucket's AP is the mean of `eval["precision"][:, :, :, 0, :]` (area
  "all", maxDets 20) over that bucket's images, rounded to 4 decimals; a
  bucket with no image (or no person to find) is -1;
- a prediction whose keypoint scores are all <= 0 is dropped before
  matching;
- a person is ignored when its `num_keypoints` is 0 (CrowdPose counts only
  the v=2 keypoints there), and OKS uses the area 0.53 * box w * h
  (`use_area=False`, the filled `area` of `CocoKeypointEvaluator`).

Every other step (OKS, matching, accumulation) is pycocotools' and is the
same code in both libraries. `tests/metrics/test_crowdpose_metric.py`
compares the result with figures xtcocotools computed on the same inputs.
"""

import contextlib
import io

import numpy as np
from pycocotools.cocoeval import COCOeval

# Stat names in the order of xtcocotools' `keypoints_crowd` stats. The first
# six follow `STAT_NAMES` (mmpose prints them as "AP .5", "AR .75", ...); the
# buckets keep mmpose's names, as the CrowdPose presets' published accuracy.
CROWD_STAT_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP(E)", "AP(M)", "AP(H)")
# mmpose's names for the same stats (`CocoMetric(iou_type="keypoints_crowd")`).
MMPOSE_CROWD_STAT_NAMES = ("AP", "AP .5", "AP .75", "AR", "AR .5", "AR .75", "AP(E)", "AP(M)", "AP(H)")
# xtcocotools `get_type_result(first=0.2, second=0.8)`.
CROWD_INDEX_THRESHOLDS = (0.2, 0.8)
# pycocotools' keypoint stats (maxDets 20) that are CrowdPose's first six.
_COCO_STAT_INDEX = (0, 1, 2, 5, 6, 7)


def crowd_index_buckets(images, thresholds=CROWD_INDEX_THRESHOLDS):
    """Image ids split into CrowdPose's easy / medium / hard buckets.

    Args:
        images: the annotation file's `images` list (dicts with `id` and
            `crowdIndex`, a float in [0, 1]).
        thresholds: `(first, second)`: easy `< first`, medium `< second`,
            hard otherwise (xtcocotools' `split`).

    Returns:
        `(easy, medium, hard)`: three lists of image ids, in file order.

    Raises:
        KeyError: an image has no `crowdIndex` (callers check first).
    """
    first, second = thresholds
    buckets = ([], [], [])
    for image in images:
        crowd = float(image["crowdIndex"])
        buckets[0 if crowd < first else 1 if crowd < second else 2].append(image["id"])
    return buckets


class CrowdPoseCOCOeval(COCOeval):
    """pycocotools `COCOeval(iouType="keypoints")` scored as xtcocotools' `keypoints_crowd`.

    Args:
        coco_gt, coco_dt: pycocotools `COCO` ground truth (its images carry
            `crowdIndex`, its annotations `num_keypoints` and an `area` of
            0.53 * w * h) and results.
        sigmas: `(K,)` OKS sigmas.
        buckets: `(easy, medium, hard)` image ids (`crowd_index_buckets`).

    After `evaluate()`, `accumulate()`, `summarize()`, `stats` holds the nine
    values named by `CROWD_STAT_NAMES` (fractions in [0, 1], -1 where there
    is nothing to measure).
    """

    def __init__(self, coco_gt, coco_dt, sigmas, buckets):
        super().__init__(coco_gt, coco_dt, iouType="keypoints")
        self.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64).copy()
        self.buckets = tuple(list(b) for b in buckets)

    def _prepare(self):
        super()._prepare()
        # xtcocotools skips a prediction without any keypoint score > 0.
        for key, dts in self._dts.items():
            self._dts[key] = [dt for dt in dts if np.count_nonzero(np.asarray(dt["keypoints"])[2::3] > 0)]

    def summarize(self):
        super().summarize()
        overall = [float(self.stats[i]) for i in _COCO_STAT_INDEX]
        image_ids = list(self.params.imgIds)
        chosen = set(image_ids)
        # The bucket runs replace these; put the all-images evaluation back after.
        kept = {name: getattr(self, name) for name in ("evalImgs", "eval", "_paramsEval", "ious", "_gts", "_dts")}
        per_bucket = []
        for name, bucket in zip(("easy", "medium", "hard"), self.buckets):
            ids = [i for i in bucket if i in chosen]
            value = -1.0
            if ids:
                self.params.imgIds = ids
                with contextlib.redirect_stdout(io.StringIO()):  # progress lines, as xtcocotools hides them
                    self.evaluate()
                    self.accumulate()
                value = round(float(np.mean(self.eval["precision"][:, :, :, 0, :])), 4)
            per_bucket.append(value)
            print(f" Average Precision  (AP) @[ IoU=0.50:0.95 | type={name:>6s} | maxDets= 20 ] = {value:0.3f}")
        self.params.imgIds = image_ids
        for name, value in kept.items():
            setattr(self, name, value)
        self.stats = np.asarray(overall + per_bucket)
