"""CrowdPose evaluation cases on the real sample, and their xtcocotools reference figures.

Pure NumPy + json (no keras_pose import), so the same cases run in a scratch
environment that has xtcocotools (whose 1.14.3 wheel needs NumPy 1.x):

    python3 -m venv /tmp/xtc-venv
    /tmp/xtc-venv/bin/pip install numpy==1.26.4 xtcocotools==1.14.3
    /tmp/xtc-venv/bin/python tests/pose_testing/crowdpose_cases.py

prints, per case, xtcocotools' `COCOeval(iouType="keypoints_crowd",
sigmas=CrowdPose sigmas, use_area=False)` stats (mmpose's CrowdPose
evaluation); `tests/metrics/test_crowdpose_metric.py` stores them.

Cases: the sample file with its own crowd indices (both images medium), and
two copies with other indices so that every bucket and both thresholds occur
("easy_hard": 0.1 / 0.9; "bounds": 0.2 / 0.8, medium and hard by xtcocotools'
`<` rule). Predictions: "perturbed" = the labelled people with seeded
uniform noise (amplitudes 5-30% of sqrt(0.53 w h)), one person dropped, a
near-duplicate, two random false positives per image and one prediction with
all keypoint scores 0 placed on a person (xtcocotools drops it).
"""

import copy
import json
import pathlib
import sys

import numpy as np

TESTS = pathlib.Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # run as a script (the xtcocotools venv): tests/ holds pose_testing
    sys.path.insert(0, str(TESTS))
from pose_testing.coco_results import ground_truth_results  # noqa: E402

SAMPLE = TESTS / "data" / "crowdpose" / "test_crowdpose.json"
# mmpose configs/_base_/datasets/crowdpose.py sigmas (the keypoint spec's).
CROWDPOSE_SIGMAS = [0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
                    0.079, 0.079]
CROWD_INDICES = {"file": None, "easy_hard": {106848: 0.1, 103319: 0.9}, "bounds": {106848: 0.2, 103319: 0.8}}


def ground_truth(variant, path=SAMPLE):
    """The sample's ground truth dict with the crowd indices of `variant` (a `CROWD_INDICES` key)."""
    data = json.loads(pathlib.Path(path).read_text())
    for image in data["images"]:
        if CROWD_INDICES[variant]:
            image["crowdIndex"] = CROWD_INDICES[variant][image["id"]]
    return data


def perturbed_results(data, seed=0):
    """Seeded predictions with noise, a missed person, duplicates and false positives (uniform draws only)."""
    rng = np.random.default_rng(seed)
    sizes = {image["id"]: (image["width"], image["height"]) for image in data["images"]}
    people = [ann for ann in data["annotations"] if ann["num_keypoints"] > 0]
    amplitudes = (0.05, 0.15, 0.1, 0.3)
    results = []
    for index, ann in enumerate(people):
        if index == 3:  # a missed person
            continue
        x, y, w, h = ann["bbox"]
        scale = amplitudes[index % len(amplitudes)] * np.sqrt(0.53 * w * h)
        gt = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        kpts = np.empty_like(gt)
        kpts[:, :2] = gt[:, :2] + (rng.random((len(gt), 2)) - 0.5) * 2.0 * scale
        unlabelled = gt[:, 2] == 0
        kpts[unlabelled, 0] = x + rng.random(int(unlabelled.sum())) * w
        kpts[unlabelled, 1] = y + rng.random(int(unlabelled.sum())) * h
        kpts[:, 2] = 0.05 + 0.95 * rng.random(len(gt))
        results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kpts.reshape(-1).tolist(),
                        "score": float(0.3 + 0.7 * rng.random())})
        if index == 0:  # a near-duplicate with a lower score
            dup = kpts.copy()
            dup[:, :2] += (rng.random((len(gt), 2)) - 0.5) * 0.5 * scale
            results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": dup.reshape(-1).tolist(),
                            "score": float(0.2 * rng.random())})
        if index == 1:  # exact keypoints, every keypoint score 0: dropped by xtcocotools
            zero = gt.copy()
            zero[:, 2] = 0.0
            results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": zero.reshape(-1).tolist(),
                            "score": 0.99})
    for image_id, (width, height) in sizes.items():
        for _ in range(2):
            kpts = np.stack([rng.random(14) * width, rng.random(14) * height, rng.random(14)], axis=1)
            results.append({"image_id": image_id, "category_id": 1, "keypoints": kpts.reshape(-1).tolist(),
                            "score": float(0.2 + 0.7 * rng.random())})
    return results


def cases():
    """`[(case name, ground truth dict, results), ...]` for every crowd-index variant and prediction set."""
    out = []
    for variant in CROWD_INDICES:
        data = ground_truth(variant)
        out.append((f"{variant}/ground_truth", data, ground_truth_results(data)))
        out.append((f"{variant}/perturbed", data, perturbed_results(data)))
    return out


def xtcocotools_stats(data, results):
    """xtcocotools `keypoints_crowd` stats (9 floats) of `results` against `data` (a temporary json)."""
    import contextlib
    import io
    import tempfile

    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    with tempfile.TemporaryDirectory() as folder:
        gt_file = pathlib.Path(folder) / "gt.json"
        gt_file.write_text(json.dumps(data))
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(gt_file))
            coco_eval = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "keypoints_crowd",
                                 np.array(CROWDPOSE_SIGMAS), use_area=False)
            coco_eval.params.useSegm = None  # as mmpose's CocoMetric
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
    return [float(v) for v in coco_eval.stats]


if __name__ == "__main__":
    import xtcocotools

    print(f"# xtcocotools {getattr(xtcocotools, '__version__', '?')}, numpy {np.__version__}", file=sys.stderr)
    print("{")
    for name, data, results in cases():
        print(f"    {name!r}: {[round(v, 12) for v in xtcocotools_stats(data, results)]},")
    print("}")
