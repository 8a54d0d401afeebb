"""COCO keypoint AP/AR with pycocotools, and mmpose's top-down post-processing.

`CocoKeypointEvaluator` wraps `pycocotools.cocoeval.COCOeval` with
`iouType="keypoints"` and the OKS sigmas of the dataset's keypoint spec, so it
evaluates any keypoint count (COCO, AP-10K, AIC, CrowdPose, OCHuman,
Animal-Pose, custom); a CrowdPose file gets CrowdPose's own figures (AP, AR,
AP of the easy / medium / hard images: `keras_pose.metrics.crowdpose_eval`).
`make_topdown_results` turns top-down predictions into COCO results the way
mmpose's `CocoMetric` does: rescoring
(`score_mode="bbox_keypoint"`) then per-image OKS-NMS at 0.9.
"""

import contextlib
import copy
import io
import math
import os
from collections import OrderedDict

import numpy as np

from keras_pose.datasets.coco_format import BOX_AREA_FACTOR, read_json_file, renumber_annotation_ids
from keras_pose.errors import AnnotationError
from keras_pose.metrics.crowdpose_eval import CROWD_STAT_NAMES, CrowdPoseCOCOeval, crowd_index_buckets
from keras_pose.metrics.oks_nms import oks_nms, resolve_sigmas, soft_oks_nms
from keras_pose.results import rescore_instances

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


@contextlib.contextmanager
def _quiet(verbose):
    if verbose:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def make_topdown_results(
    image_ids,
    keypoints,
    keypoint_scores,
    bbox_scores=None,
    areas=None,
    category_ids=1,
    keypoint_spec=None,
    score_mode="bbox_keypoint",
    keypoint_score_threshold=0.2,
    nms_mode="oks_nms",
    nms_threshold=0.9,
):
    """Top-down predictions -> COCO results, as mmpose `CocoMetric` does.

    Args:
        image_ids: `(N,)` image id of each predicted instance.
        keypoints: `(N, K, 2)` predicted keypoints in image pixels.
        keypoint_scores: `(N, K)` keypoint confidences.
        bbox_scores: `(N,)` box scores (default 1).
        areas: `(N,)` instance areas for OKS-NMS in px^2; mmpose uses the
            product of the crop scale (w*h in pixels after padding). Default:
            the area of the keypoints' bounding rectangle (mmpose's fallback).
        category_ids: int or `(N,)`.
        keypoint_spec: spec / name / sigmas array for OKS-NMS (default COCO
            sigmas when K == 17).
        score_mode: "bbox_keypoint" (rescore, mmpose default), "bbox" (box
            score only) or "keypoint" (mean keypoint score above the
            threshold, box score ignored).
        keypoint_score_threshold: see `rescore_instances`.
        nms_mode: "oks_nms" (default), "soft_oks_nms" or "none".
        nms_threshold: OKS threshold (mmpose 0.9).

    Returns:
        list of COCO results dicts `{image_id, category_id, keypoints
        (flat [x, y, score] * K), score}` (kept instances, grouped by image
        in first-appearance order, highest score first).
    """
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim != 3 or kpts.shape[2] != 2:
        raise ValueError(f"keypoints must have shape (N, K, 2); got {kpts.shape}.")
    n, k, _ = kpts.shape
    kscores = np.asarray(keypoint_scores, dtype=np.float64)
    if kscores.shape != (n, k):
        raise ValueError(f"keypoint_scores must have shape ({n}, {k}); got {kscores.shape}.")
    image_ids = list(np.asarray(image_ids).reshape(-1).tolist())
    if len(image_ids) != n:
        raise ValueError(f"{len(image_ids)} image ids given for {n} instances.")
    bscores = np.ones(n) if bbox_scores is None else np.asarray(bbox_scores, dtype=np.float64).reshape(-1)
    if bscores.shape != (n,):
        raise ValueError(f"bbox_scores must have shape ({n},); got {bscores.shape}.")
    cats = np.broadcast_to(np.asarray(category_ids).reshape(-1), (n,)) if n else np.zeros((0,), int)
    if areas is None:
        extent = kpts.max(axis=1) - kpts.min(axis=1) if n else np.zeros((0, 2))
        areas = extent[:, 0] * extent[:, 1]
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    if areas.shape != (n,):
        raise ValueError(f"areas must have shape ({n},); got {areas.shape}.")

    if score_mode == "bbox_keypoint":
        scores = rescore_instances(kscores, bscores, keypoint_score_threshold)
    elif score_mode == "bbox":
        scores = bscores.copy()
    elif score_mode == "keypoint":
        scores = rescore_instances(kscores, np.ones(n), keypoint_score_threshold)
    else:
        raise ValueError(f"score_mode must be 'bbox_keypoint', 'bbox' or 'keypoint'; got {score_mode!r}.")
    if nms_mode not in ("oks_nms", "soft_oks_nms", "none"):
        raise ValueError(f"nms_mode must be 'oks_nms', 'soft_oks_nms' or 'none'; got {nms_mode!r}.")
    sigmas = resolve_sigmas(keypoint_spec, k) if nms_mode != "none" else None

    by_image = OrderedDict()
    for index, image_id in enumerate(image_ids):
        by_image.setdefault(image_id, []).append(index)
    stacked = np.concatenate([kpts, kscores[..., None]], axis=-1)
    results = []
    for image_id, indices in by_image.items():
        indices = np.asarray(indices)
        if nms_mode == "oks_nms":
            keep = indices[oks_nms(stacked[indices], scores[indices], areas[indices], nms_threshold, sigmas)]
        elif nms_mode == "soft_oks_nms":
            keep = indices[soft_oks_nms(stacked[indices], scores[indices], areas[indices], nms_threshold,
                                        sigmas=sigmas)]
        else:
            keep = indices
        for i in keep:
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(cats[i]),
                    "keypoints": stacked[i].reshape(-1).tolist(),
                    "score": float(scores[i]),
                }
            )
    return results


class CocoKeypointEvaluator:
    """COCO keypoint AP/AR (pycocotools `COCOeval`, `iouType="keypoints"`), or CrowdPose's.

    Args:
        annotation: ground truth: a COCO keypoint json path, the loaded dict,
            or a `PoseDataset` read from such a file (its `annotation_file`).
        keypoint_spec: the spec whose `sigmas` are the OKS sigmas, a spec
            name, a `(K,)` sigmas array, or `None` for the COCO-17 sigmas.
        use_area: use each annotation's `area` for OKS (COCO). With False,
            or for annotations without `area` (AIC, CrowdPose), the area is
            0.53 * box w * h, as xtcocotools' `use_area=False`. Default
            (None): True, False for the CrowdPose figures (mmpose's
            CrowdPose configs).
        verbose: let pycocotools print its progress and summary table.
        crowd_index: CrowdPose's figures, as mmpose's
            `CocoMetric(iou_type="keypoints_crowd", use_area=False)` (the
            CrowdPose paper's metric, xtcocotools): `evaluate` returns
            `CROWD_STAT_NAMES` = AP, AP50, AP75, AR, AR50, AR75 (maxDets 20,
            every image) and AP(E), AP(M), AP(H): the AP of the images whose
            `crowdIndex` is < 0.2, in [0.2, 0.8), >= 0.8 (rounded to 4
            decimals, -1 for a bucket with no person to find). "auto" (default):
            when every image of the file has a `crowdIndex` and the spec has
            14 keypoints (CrowdPose); True: required (an `AnnotationError`
            when an image lacks `crowdIndex`); False: the COCO figures.
            Values are fractions in [0, 1]. As in xtcocotools, a prediction
            whose keypoint scores are all <= 0 is dropped, and a person with
            `num_keypoints` 0 is ignored. Computed on pycocotools
            (`crowdpose_eval.CrowdPoseCOCOeval`: the xtcocotools wheel needs
            NumPy 1.x) and tested equal to xtcocotools 1.14.3's figures.

    The ground truth is copied and completed where pycocotools needs fields
    the file lacks: `iscrowd` (0), `num_keypoints` (count of v > 0), `area`
    (see above), `categories` (from the annotations' category ids). An
    annotation whose id repeats an earlier one, or is missing, not an
    integer or not positive, gets a fresh id with a warning (pycocotools
    keys annotations by id and would silently lose that person).
    APm/APl use the (filled) areas. `stat_names` lists the keys `evaluate`
    returns (`STAT_NAMES` or `CROWD_STAT_NAMES`); `crowd` says which, and
    `buckets` holds the easy / medium / hard image ids (None for COCO).
    """

    def __init__(self, annotation, keypoint_spec=None, use_area=None, verbose=False, crowd_index="auto"):
        self.verbose = verbose
        if hasattr(annotation, "annotation_file") and hasattr(annotation, "images"):
            if annotation.annotation_file is None:
                raise ValueError("the PoseDataset has no annotation_file to evaluate against.")
            annotation = annotation.annotation_file
        if isinstance(annotation, dict):
            data, self.source = copy.deepcopy(annotation), "the given ground-truth dict"
        else:
            path = os.fspath(annotation)
            data, self.source = read_json_file(path), repr(path)
        if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
            raise AnnotationError(
                f"ground truth {self.source} is not a COCO annotation object with 'images' and "
                "'annotations'."
            )
        k = self._infer_num_keypoints(data, keypoint_spec)
        self.sigmas = resolve_sigmas(keypoint_spec, k)
        self.num_keypoints = self.sigmas.shape[0]
        self.crowd = self._wants_crowd(data, crowd_index)
        self.stat_names = CROWD_STAT_NAMES if self.crowd else STAT_NAMES
        self.buckets = crowd_index_buckets(data["images"]) if self.crowd else None
        self._prepare(data, (not self.crowd) if use_area is None else bool(use_area))
        from pycocotools.coco import COCO

        with _quiet(verbose):
            coco = COCO()
            coco.dataset = data
            coco.createIndex()
        self.coco = coco
        self.image_ids = set(coco.getImgIds())

    def _wants_crowd(self, data, crowd_index):
        if not (isinstance(crowd_index, str) and crowd_index == "auto"):
            if isinstance(crowd_index, str) or crowd_index not in (True, False):
                raise ValueError(f"crowd_index must be 'auto', True or False; got {crowd_index!r}.")
            if not crowd_index:
                return False
        images = data["images"] if isinstance(data["images"], list) else []
        missing = [img.get("id") if isinstance(img, dict) else img for img in images
                   if not isinstance(img, dict) or not isinstance(img.get("crowdIndex"), (int, float))]
        if crowd_index == "auto":
            return bool(images) and not missing and self.num_keypoints == 14
        if missing or not images:
            raise AnnotationError(
                f"CrowdPose's easy/medium/hard AP needs a numeric 'crowdIndex' on every image of the ground truth "
                f"{self.source}, and "
                + (f"{len(missing)} of its {len(images)} images lack one (e.g. image ids {missing[:5]})"
                   if images else "it has no image table")
                + "; evaluate with the official CrowdPose annotation file "
                "(crowdpose_test.json / crowdpose_val.json), or pass crowd_index=False for the COCO figures."
            )
        return True

    @staticmethod
    def _infer_num_keypoints(data, keypoint_spec):
        if keypoint_spec is not None:
            return None
        for ann in data["annotations"]:
            if isinstance(ann, dict) and isinstance(ann.get("keypoints"), list):
                return len(ann["keypoints"]) // 3
        return None

    def _prepare(self, data, use_area):
        k = self.num_keypoints
        cat_ids = []
        # A repeated (or missing / zero) id makes pycocotools drop or never
        # match a person: renumber on this copy, as load_coco_keypoints does.
        new_ids = renumber_annotation_ids(
            data["annotations"], f"in ground truth {self.source}", positive=True, stacklevel=4
        )
        for index, ann in enumerate(data["annotations"]):
            ann_id = ann.get("id", f"#{index}") if isinstance(ann, dict) else f"#{index}"
            where = f"annotation id {ann_id} in ground truth {self.source}"
            if not isinstance(ann, dict) or any(key not in ann for key in ("image_id", "bbox", "keypoints")):
                raise AnnotationError(f"{where} lacks image_id/bbox/keypoints.")
            try:
                kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1)
                _, _, w, h = [float(v) for v in ann["bbox"]]
            except (TypeError, ValueError) as e:
                raise AnnotationError(f"{where} has malformed keypoints or bbox ({e}).") from e
            if kpts.size != 3 * k:
                raise AnnotationError(
                    f"{where} has {kpts.size} keypoint values but the evaluator's sigmas are for "
                    f"{k} keypoints ({3 * k} values); pass the keypoint spec of this dataset."
                )
            if index in new_ids:
                ann["id"] = new_ids[index]
            ann.setdefault("iscrowd", 0)
            ann.setdefault("category_id", 1)
            if "num_keypoints" not in ann:
                ann["num_keypoints"] = int(np.count_nonzero(kpts[2::3] > 0))
            if not use_area or "area" not in ann:
                ann["area"] = w * h * BOX_AREA_FACTOR  # xtcocotools' order of the product
            cat_ids.append(ann["category_id"])
        if not data.get("categories"):
            data["categories"] = [{"id": c, "name": str(c)} for c in sorted(set(cat_ids))]

    def _check_results(self, results):
        k = self.num_keypoints
        clean = []
        unknown = set()
        for index, res in enumerate(results):
            where = f"result #{index}"
            if not isinstance(res, dict) or any(key not in res for key in ("image_id", "keypoints", "score")):
                raise ValueError(f"{where} must be a dict with image_id, category_id, keypoints, score.")
            kpts = np.asarray(res["keypoints"], dtype=np.float64).reshape(-1)
            if kpts.size != 3 * k:
                raise ValueError(
                    f"{where} (image {res['image_id']}) has {kpts.size} keypoint values; expected "
                    f"{3 * k} ([x, y, score] for {k} keypoints)."
                )
            score = float(res["score"])
            if not (np.all(np.isfinite(kpts)) and math.isfinite(score)):
                raise ValueError(f"{where} (image {res['image_id']}) has NaN/inf keypoints or score.")
            if res["image_id"] not in self.image_ids:
                unknown.add(res["image_id"])
            clean.append(
                {
                    "image_id": res["image_id"],
                    "category_id": res.get("category_id", 1),
                    "keypoints": kpts.tolist(),
                    "score": score,
                }
            )
        if unknown:
            raise ValueError(
                f"results refer to {len(unknown)} image id(s) not in the ground truth {self.source} "
                f"(e.g. {sorted(unknown, key=str)[:5]}); predictions and annotations come from "
                "different splits."
            )
        return clean

    def evaluate(self, results, image_ids=None):
        """Compute COCO keypoint AP/AR.

        Args:
            results: list of COCO results dicts `{image_id, category_id,
                keypoints: [x, y, score] * K, score}` (or a json path). Not
                modified.
            image_ids: optional subset of image ids to evaluate (default:
                every ground-truth image, as COCO does).

        Returns:
            dict `AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl` of
            floats (pycocotools gives -1 where no ground truth falls in an
            area range); for CrowdPose (`self.crowd`) `AP, AP50, AP75, AR,
            AR50, AR75, AP(E), AP(M), AP(H)`. With no results every value is
            0.0 (a crowd bucket with no person to find: -1.0).
        """
        if isinstance(results, (str, os.PathLike)):
            results = read_json_file(results, what="results file")
        if not isinstance(results, (list, tuple)):
            raise ValueError(f"results must be a list of dicts; got {type(results).__name__}.")
        results = self._check_results(results)
        if not results:
            stats = {name: 0.0 for name in self.stat_names}
            if self.crowd:
                chosen = self.image_ids if image_ids is None else set(image_ids)
                for name, bucket in zip(CROWD_STAT_NAMES[6:], self.buckets):
                    ids = sorted(chosen.intersection(bucket))
                    anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=ids)) if ids else []  # [] means all
                    findable = any(not ann["iscrowd"] and ann["num_keypoints"] > 0 for ann in anns)
                    stats[name] = 0.0 if findable else -1.0  # -1: no person to find (xtcocotools)
            return stats
        from pycocotools.cocoeval import COCOeval

        with _quiet(self.verbose):
            coco_dt = self.coco.loadRes(results)
            if self.crowd:
                coco_eval = CrowdPoseCOCOeval(self.coco, coco_dt, self.sigmas, self.buckets)
            else:
                coco_eval = COCOeval(self.coco, coco_dt, iouType="keypoints")
                coco_eval.params.kpt_oks_sigmas = self.sigmas.copy()
            if image_ids is not None:
                coco_eval.params.imgIds = sorted(set(image_ids))
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        self.last_eval = coco_eval
        return {name: float(value) for name, value in zip(self.stat_names, coco_eval.stats)}
