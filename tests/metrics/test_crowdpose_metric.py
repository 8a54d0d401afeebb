"""CrowdPose's figures (AP, AR, AP(E)/AP(M)/AP(H) by crowdIndex) on the real CrowdPose sample.

The reference figures are xtcocotools 1.14.3's `keypoints_crowd` evaluation
(mmpose's CrowdPose metric) of the same cases, produced by

    python3 -m venv /tmp/xtc-venv
    /tmp/xtc-venv/bin/pip install numpy==1.26.4 xtcocotools==1.14.3
    /tmp/xtc-venv/bin/python tests/pose_testing/crowdpose_cases.py

(xtcocotools' wheel does not import under NumPy 2, so it cannot run in the
project's environment; `tests/pose_testing/crowdpose_cases.py` builds the
cases from NumPy and json only, for both sides).
"""

import json
import shutil

import numpy as np
import pytest
from pose_testing.crowdpose_cases import CROWD_INDICES, cases, ground_truth, ground_truth_results, perturbed_results
from pose_testing.paths import DATA_DIR

from keras_pose.errors import AnnotationError
from keras_pose.metrics import CROWD_STAT_NAMES, STAT_NAMES, CocoKeypointEvaluator

CROWDPOSE_FILE = DATA_DIR / "crowdpose" / "test_crowdpose.json"
COCO_FILE = DATA_DIR / "coco" / "test_coco.json"

# xtcocotools 1.14.3 COCOeval(iouType="keypoints_crowd", CrowdPose sigmas, use_area=False).stats,
# numpy 1.26.4, from the command in the module docstring.
XTCOCOTOOLS = {
    "file/ground_truth": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, -1.0],
    "file/perturbed": [0.404207920792, 0.690594059406, 0.381188118812, 0.5, 0.75, 0.5, -1.0, 0.4042, -1.0],
    "easy_hard/ground_truth": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0],
    "easy_hard/perturbed": [0.404207920792, 0.690594059406, 0.381188118812, 0.5, 0.75, 0.5, 0.3515, -1.0, 0.404],
    "bounds/ground_truth": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0],
    "bounds/perturbed": [0.404207920792, 0.690594059406, 0.381188118812, 0.5, 0.75, 0.5, -1.0, 0.3515, 0.404],
}


def test_crowd_index_buckets_follow_xtcocotools_thresholds():
    # easy < 0.2 <= medium < 0.8 <= hard; the sample's own indices are 0.33 and 0.39.
    expected = {"file": ([], [106848, 103319], []), "easy_hard": ([106848], [], [103319]),
                "bounds": ([], [106848], [103319])}
    for variant in CROWD_INDICES:
        evaluator = CocoKeypointEvaluator(ground_truth(variant), "crowdpose")
        assert evaluator.crowd and evaluator.stat_names == CROWD_STAT_NAMES
        assert evaluator.buckets == expected[variant]


@pytest.mark.parametrize("variant", list(CROWD_INDICES))
def test_ground_truth_predictions_give_ap_1_in_every_bucket_present(variant):
    data = ground_truth(variant)
    stats = CocoKeypointEvaluator(data, "crowdpose").evaluate(ground_truth_results(data))
    assert list(stats) == ["AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP(E)", "AP(M)", "AP(H)"]
    present = {"file": {"AP(M)"}, "easy_hard": {"AP(E)", "AP(H)"}, "bounds": {"AP(M)", "AP(H)"}}[variant]
    for name, value in stats.items():
        expected = 1.0 if name in present or name[:3] != "AP(" else -1.0
        assert value == expected, name


@pytest.mark.parametrize("name,data,results", cases(), ids=[case[0] for case in cases()])
def test_figures_equal_xtcocotools_keypoints_crowd(name, data, results):
    stats = CocoKeypointEvaluator(data, "crowdpose").evaluate(results)
    np.testing.assert_allclose(list(stats.values()), XTCOCOTOOLS[name], rtol=0, atol=1e-11)


def test_perturbed_figures_are_below_1_and_depend_on_the_rules():
    data = ground_truth("easy_hard")
    results = perturbed_results(data)
    stats = CocoKeypointEvaluator(data, "crowdpose").evaluate(results)
    assert 0.0 < stats["AP"] < 1.0 and 0.0 < stats["AP(E)"] < 1.0 and 0.0 < stats["AP(H)"] < 1.0
    # The prediction with every keypoint score 0 is dropped: it sits exactly on a
    # person, so plain pycocotools (which keeps it) scores higher.
    plain = CocoKeypointEvaluator(data, "crowdpose", use_area=False, crowd_index=False).evaluate(results)
    assert plain["AP"] > stats["AP"] + 0.1
    kept = [res for res in results if max(res["keypoints"][2::3]) > 0]
    assert CocoKeypointEvaluator(data, "crowdpose", use_area=False, crowd_index=False).evaluate(kept)["AP"] == \
        pytest.approx(stats["AP"], abs=1e-12)


def test_image_subset_keeps_the_bucket_figures_of_those_images():
    data = ground_truth("easy_hard")
    results = perturbed_results(data)
    evaluator = CocoKeypointEvaluator(data, "crowdpose")
    full = evaluator.evaluate(results)
    easy_only = evaluator.evaluate(results, image_ids=[106848])
    assert easy_only["AP(E)"] == full["AP(E)"] == 0.3515
    assert easy_only["AP(M)"] == easy_only["AP(H)"] == -1.0
    assert easy_only["AP"] == pytest.approx(full["AP(E)"], abs=5e-5)  # the same image set, unrounded
    # No results: 0 where a person was to be found, -1 for a bucket without one.
    assert evaluator.evaluate([]) == {**{n: 0.0 for n in CROWD_STAT_NAMES}, "AP(M)": -1.0}
    assert evaluator.evaluate([], image_ids=[103319])["AP(E)"] == -1.0


def test_auto_and_explicit_modes():
    # crowd_index=False: the COCO figures of the same file.
    coco_style = CocoKeypointEvaluator(CROWDPOSE_FILE, "crowdpose", crowd_index=False)
    assert not coco_style.crowd
    assert list(coco_style.evaluate(ground_truth_results(ground_truth("file")))) == list(STAT_NAMES)
    # A COCO file has no crowdIndex: auto gives the COCO figures, True is an error naming the fix.
    assert not CocoKeypointEvaluator(COCO_FILE).crowd
    with pytest.raises(AnnotationError, match=r"'crowdIndex' on every image .*test_coco\.json', and 4 of its 4 "
                                              r"images lack one \(e\.g\. image ids \[785, 40083, 196141, 197388\]\)"):
        CocoKeypointEvaluator(COCO_FILE, crowd_index=True)
    with pytest.raises(ValueError, match="crowd_index must be 'auto', True or False"):
        CocoKeypointEvaluator(CROWDPOSE_FILE, "crowdpose", crowd_index="yes")


def test_an_image_without_crowd_index_is_named():
    data = json.loads(CROWDPOSE_FILE.read_text())
    del data["images"][1]["crowdIndex"]
    with pytest.raises(AnnotationError, match=r"1 of its 2 images lack one \(e\.g\. image ids \[103319\]\).*"
                                              r"crowd_index=False"):
        CocoKeypointEvaluator(data, "crowdpose", crowd_index=True)
    assert not CocoKeypointEvaluator(data, "crowdpose").crowd  # auto: COCO figures
    data = json.loads(CROWDPOSE_FILE.read_text())
    data["images"][0]["crowdIndex"] = "high"
    with pytest.raises(AnnotationError, match=r"numeric 'crowdIndex'.*image ids \[106848\]"):
        CocoKeypointEvaluator(data, "crowdpose", crowd_index=True)


class _GivenPredictions:
    """A one-stage model whose `predict_keypoints` returns fixed predictions (COCO results) per image file."""

    paradigm = "one_stage"
    keypoint_spec = "crowdpose"

    def __init__(self, results, file_to_id):
        self.results, self.file_to_id = results, file_to_id

    def predict_keypoints(self, path):
        from keras_pose.keypoints import get_keypoint_spec
        from keras_pose.results import PoseResult

        image_id = self.file_to_id[str(path).replace("\\", "/").rsplit("/", 1)[-1]]
        mine = [res for res in self.results if res["image_id"] == image_id]
        flat = np.array([res["keypoints"] for res in mine], dtype=np.float64).reshape(len(mine), 14, 3)
        return PoseResult(keypoints=flat[..., :2], scores=flat[..., 2], boxes=None, box_scores=None,
                          keypoint_spec=get_keypoint_spec("crowdpose"), image_size=(480, 640), image_id=image_id,
                          person_scores=np.array([res["score"] for res in mine]))


def test_evaluate_pose_model_gives_crowdpose_figures_for_a_crowdpose_file(tmp_path):
    from keras_pose.datasets import load_coco_keypoints
    from keras_pose.training import evaluate_pose_model

    data = ground_truth("easy_hard")
    for image in data["images"]:
        shutil.copy(CROWDPOSE_FILE.parent / image["file_name"], tmp_path / image["file_name"])
    (tmp_path / "crowdpose_test.json").write_text(json.dumps(data))
    dataset = load_coco_keypoints(tmp_path / "crowdpose_test.json", keypoint_spec="crowdpose", mode="eval")
    model = _GivenPredictions(perturbed_results(data), {img["file_name"]: img["id"] for img in data["images"]})
    stats = evaluate_pose_model(model, dataset, verbose=0)
    assert list(stats) == [f"coco_{name}" for name in CROWD_STAT_NAMES]
    # Scores pass through float32 (PoseResult.instance_scores); the order, hence every figure, is kept.
    np.testing.assert_allclose(list(stats.values()), XTCOCOTOOLS["easy_hard/perturbed"], rtol=0, atol=1e-11)


def test_crowd_stats_can_be_monitored_and_share_the_coco_plot_panel():
    from keras_pose.visualization_plots import _is_coco_stat, _panel_of

    assert _panel_of("val_coco_AP(H)") == _panel_of("val_coco_AP50") == "val_coco_AP"
    assert _is_coco_stat("val_coco_AP(E)")  # -1 (a bucket with no image) is drawn as missing
    assert _panel_of("val_coco_AR75") == "val_coco_AR"
