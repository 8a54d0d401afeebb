"""Tests of COCO AP, OKS-NMS, PCKh, PCK, AUC and EPE (real data, hand-checked values)."""

import contextlib
import copy
import io
import json
import warnings

import numpy as np
import pytest
from pose_testing.paths import DATA_DIR

from keras_pose.datasets import load_coco_keypoints, load_mpii
from keras_pose.errors import AnnotationError
from keras_pose.metrics import (
    COCO_SIGMAS,
    CocoKeypointEvaluator,
    auc,
    epe,
    make_topdown_results,
    oks_iou,
    oks_nms,
    pck,
    pck_per_keypoint,
    pckh,
    rescore_instances,
    soft_oks_nms,
)

COCO_FILE = DATA_DIR / "coco" / "test_coco.json"
MPII_FILE = DATA_DIR / "mpii" / "test_mpii.json"


def _gt_results(path, keep=lambda ann: True):
    """Ground-truth annotations as COCO results (score 1, keypoint score 1)."""
    data = json.loads(path.read_text())
    results = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 1) == 0 or not keep(ann):
            continue
        kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        kpts[:, 2] = 1.0
        results.append(
            {"image_id": ann["image_id"], "category_id": ann["category_id"],
             "keypoints": kpts.reshape(-1).tolist(), "score": 1.0}
        )
    return results


def _perturbed(results, sigma_px=8.0, seed=0):
    rng = np.random.default_rng(seed)
    out = copy.deepcopy(results)
    for res in out:
        kpts = np.asarray(res["keypoints"]).reshape(-1, 3)
        kpts[:, :2] += rng.normal(0.0, sigma_px, size=kpts[:, :2].shape)
        res["keypoints"] = kpts.reshape(-1).tolist()
        res["score"] = float(rng.uniform(0.5, 1.0))
    return out


# ---------------------------------------------------------------------------
# COCO AP.


def test_ground_truth_predictions_give_ap_1(capsys):
    evaluator = CocoKeypointEvaluator(COCO_FILE)
    stats = evaluator.evaluate(_gt_results(COCO_FILE))
    assert list(stats) == ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    for name, value in stats.items():
        assert value == pytest.approx(1.0), name
    assert capsys.readouterr().out == ""  # pycocotools' prints are captured


def test_perturbed_keypoints_lower_ap_and_match_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = _perturbed(_gt_results(COCO_FILE))
    given = copy.deepcopy(results)
    stats = CocoKeypointEvaluator(COCO_FILE).evaluate(results)
    assert results == given  # inputs are not modified
    assert 0.0 < stats["AP"] < 0.95

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(COCO_FILE))
        dt = gt.loadRes(copy.deepcopy(results))
        coco_eval = COCOeval(gt, dt, iouType="keypoints")
        coco_eval.params.kpt_oks_sigmas = COCO_SIGMAS
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    np.testing.assert_allclose(list(stats.values()), coco_eval.stats, rtol=0, atol=1e-12)

    worse = CocoKeypointEvaluator(COCO_FILE).evaluate(_perturbed(_gt_results(COCO_FILE), 16.0))
    assert worse["AP"] < stats["AP"]


def test_half_of_the_people_gives_hand_computed_ap():
    # 6 of the 12 evaluable people predicted exactly, no false positives:
    # precision 1 up to recall 0.5 -> 51 of the 101 recall points -> AP 51/101.
    kept = []

    def every_other(ann):
        kept.append(ann["id"])
        return len(kept) % 2 == 1

    results = _gt_results(COCO_FILE, every_other)
    assert len(results) == 6
    stats = CocoKeypointEvaluator(COCO_FILE).evaluate(results)
    assert stats["AP"] == pytest.approx(51 / 101)
    assert stats["AR"] == pytest.approx(0.5)


def test_evaluator_inputs_and_errors():
    data = json.loads(COCO_FILE.read_text())
    dataset = load_coco_keypoints(COCO_FILE, mode="eval")
    for ground_truth in (data, dataset, str(COCO_FILE)):
        stats = CocoKeypointEvaluator(ground_truth, COCO_SIGMAS).evaluate(_gt_results(COCO_FILE))
        assert stats["AP"] == pytest.approx(1.0)
    assert data == json.loads(COCO_FILE.read_text())  # the dict is not modified
    evaluator = CocoKeypointEvaluator(COCO_FILE)
    assert evaluator.evaluate([]) == {name: 0.0 for name in stats}
    bad = _gt_results(COCO_FILE)
    bad[0]["keypoints"] = bad[0]["keypoints"][:-3]
    with pytest.raises(ValueError, match=r"result #0 .*48 keypoint values; expected 51"):
        evaluator.evaluate(bad)
    unknown = _gt_results(COCO_FILE)
    unknown[0]["image_id"] = 1
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluator.evaluate(unknown)
    with pytest.raises(AnnotationError, match=r"annotation id 442619 .*51 keypoint values.*14 keypoints"):
        CocoKeypointEvaluator(COCO_FILE, np.full(14, 0.05))
    with pytest.raises(ValueError, match="sigmas"):
        CocoKeypointEvaluator(DATA_DIR / "aic" / "test_aic.json")  # 14 keypoints, no sigmas


@pytest.mark.parametrize(
    "folder,name,spec_name",
    [("aic", "test_aic.json", "aic"), ("crowdpose", "test_crowdpose.json", "crowdpose"),
     ("ap10k", "test_ap10k.json", "ap10k"), ("animalpose", "test_animalpose.json", "animalpose"),
     ("ochuman", "test_ochuman.json", "ochuman")],
)
def test_other_datasets_evaluate(folder, name, spec_name):
    path = DATA_DIR / folder / name
    k = len(json.loads(path.read_text())["annotations"][0]["keypoints"]) // 3
    sigmas = np.full(k, 0.079)
    try:
        from keras_pose.keypoints import get_keypoint_spec

        sigmas = get_keypoint_spec(spec_name)
    except Exception:  # the spec module is written concurrently; fall back to an array
        pass
    evaluator = CocoKeypointEvaluator(path, sigmas)
    assert evaluator.num_keypoints == k
    results = _gt_results(path)
    assert evaluator.evaluate(results)["AP"] == pytest.approx(1.0)
    assert evaluator.evaluate(_perturbed(results, 20.0))["AP"] < 1.0


# ---------------------------------------------------------------------------
# Rescoring and OKS-NMS.


def test_rescore_instances():
    scores = rescore_instances([[0.1, 0.5, 0.9], [0.1, 0.1, 0.2]], [0.8, 1.0])
    # (0.5 + 0.9) / 2 * 0.8 ; no keypoint score above 0.2 -> 0
    np.testing.assert_allclose(scores, [0.56, 0.0])


def test_oks_iou_hand_value():
    ref = np.array([[10.0, 10.0], [20.0, 20.0]])
    others = np.stack([ref + [1.0, 0.0], ref])
    # vars = (2 * 0.1)^2 = 0.04, s = (50 + 50) / 2: e = 1 / 0.04 / 50 / 2 = 0.25
    ious = oks_iou(ref, others, 50.0, [50.0, 50.0], sigmas=[0.1, 0.1])
    np.testing.assert_allclose(ious, [np.exp(-0.25), 1.0], rtol=1e-6)
    # only keypoints scored above vis_threshold in both instances count
    ref3 = np.array([[10.0, 10.0, 0.9], [20.0, 20.0, 0.1]])
    other3 = np.array([[[10.0, 10.0, 0.9], [40.0, 40.0, 0.9]]])
    assert oks_iou(ref3, other3, 50.0, [50.0], [0.1, 0.1], vis_threshold=0.2)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sigmas"):
        oks_iou(ref, others, 50.0, [50.0, 50.0])  # K=2 needs sigmas


def test_oks_nms_removes_a_duplicate():
    rng = np.random.default_rng(1)
    a = rng.uniform(100, 300, size=(17, 2))
    b = a + 0.2  # the same person found twice
    c = a + 150.0  # another person
    keypoints = np.stack([b, a, c])
    scores = [0.8, 0.9, 0.7]
    areas = [5000.0, 5000.0, 5000.0]
    assert oks_iou(a, b[None], 5000.0, [5000.0])[0] > 0.9
    np.testing.assert_array_equal(oks_nms(keypoints, scores, areas, threshold=0.9), [1, 2])
    # soft NMS keeps everyone but decays the duplicate below the other person
    keep, decayed = soft_oks_nms(keypoints, scores, areas, threshold=0.9, return_scores=True)
    np.testing.assert_array_equal(keep, [1, 2, 0])
    assert decayed[0] == pytest.approx(0.9) and decayed[2] < 0.7
    assert len(soft_oks_nms(keypoints, scores, areas, max_dets=2)) == 2
    assert oks_nms(np.zeros((0, 17, 2)), [], []).shape == (0,)


def test_make_topdown_results_rescores_and_suppresses():
    data = json.loads(COCO_FILE.read_text())
    anns = [a for a in data["annotations"] if a["num_keypoints"] > 0]
    gt = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(len(anns), 17, 3)
    keypoints = np.concatenate([gt[..., :2], gt[..., :2] + 0.3])
    kscores = np.concatenate([(gt[..., 2] > 0) * 0.9 + 0.05] * 2)
    bbox_scores = np.concatenate([np.ones(len(anns)), np.full(len(anns), 0.5)])
    image_ids = [a["image_id"] for a in anns] * 2
    areas = [a["area"] for a in anns] * 2
    results = make_topdown_results(image_ids, keypoints, kscores, bbox_scores, areas)
    assert len(results) == len(anns)  # every duplicate suppressed
    assert all(r["score"] == pytest.approx(0.95) for r in results)
    assert CocoKeypointEvaluator(COCO_FILE).evaluate(results)["AP"] == pytest.approx(1.0)
    no_nms = make_topdown_results(image_ids, keypoints, kscores, bbox_scores, areas, nms_mode="none")
    assert len(no_nms) == 2 * len(anns)


# ---------------------------------------------------------------------------
# PCKh on the MPII sample.


def _mpii_arrays():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arrays = load_mpii(MPII_FILE, mode="eval").to_arrays()
    return arrays["keypoints"], arrays["keypoints_visible"], arrays["head_size"]


def test_pckh_ground_truth_is_perfect():
    gt, visible, head = _mpii_arrays()
    assert np.isfinite(head).all()
    table = pckh(gt, gt, visible, head)
    for name in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "PCKh", "PCKh@0.1"):
        assert table[name] == pytest.approx(1.0), name


def test_pckh_perturbed_hand_values():
    gt, visible, head = _mpii_arrays()
    # Joint counts: ankles (0, 5) are labelled for 3 of the 5 people, every
    # other joint for all 5. Person 0 has all 16 joints labelled.
    pred = gt.copy()
    pred[0, :, 0] += 0.6 * head[0]  # person 0 off by 0.6 head sizes: all wrong
    table = pckh(pred, gt, visible, head)
    # mean excludes pelvis/thorax: weights 2 x 3 + 12 x 5 = 66 joints, 2 x 2 + 12 x 4 = 52 correct
    assert table["PCKh"] == pytest.approx(52 / 66)
    assert table["PCKh@0.1"] == pytest.approx(52 / 66)
    assert table["Head"] == pytest.approx(4 / 5)
    assert table["Shoulder"] == pytest.approx(4 / 5)
    assert table["Ankle"] == pytest.approx(2 / 3)
    assert table["per_joint"][6] == pytest.approx(4 / 5)  # pelvis still reported per joint

    pred = gt.copy()
    pred[0, :, 1] += 0.3 * head[0]  # right at PCKh@0.5, wrong at 0.1
    table = pckh(pred, gt, visible, head)
    assert table["PCKh"] == pytest.approx(1.0)
    assert table["PCKh@0.1"] == pytest.approx(52 / 66)

    # a person without head size is left out
    head_missing = head.copy()
    head_missing[0] = np.nan
    pred = gt.copy()
    pred[0] += 1000.0
    assert pckh(pred, gt, visible, head_missing)["PCKh"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="16 MPII joints"):
        pckh(gt[:, :15], gt[:, :15], visible[:, :15], head)


# ---------------------------------------------------------------------------
# PCK / AUC / EPE against hand-computed numbers.


def _toy():
    gt = np.zeros((2, 3, 2))
    pred = np.array(
        [[[3.0, 4.0], [0.0, 0.0], [30.0, 40.0]],  # 5, 0, 50 px
         [[0.0, 4.0], [30.0, 40.0], [99.0, 99.0]]]  # 4, 50 px, (not labelled)
    )
    visible = np.array([[2, 1, 2], [2, 2, 0]])
    return pred, gt, visible


def test_pck_hand_values():
    pred, gt, visible = _toy()
    norm = np.array([[100.0, 100.0], [10.0, 10.0]])
    # normalised: person 0 -> 0.05, 0, 0.5 ; person 1 -> 0.4, 5.0, -
    np.testing.assert_allclose(pck_per_keypoint(pred, gt, visible, norm, 0.2), [0.5, 0.5, 0.0])
    assert pck(pred, gt, visible, norm, 0.2) == pytest.approx(1 / 3)
    assert pck(pred, gt, visible, norm, 0.45) == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert pck(pred, gt, visible, np.array([100.0, 10.0]), 0.45) == pytest.approx(0.5)  # (N,) form
    # a zero normaliser leaves the person out
    only_first = pck_per_keypoint(pred, gt, visible, np.array([[100.0, 100.0], [0.0, 0.0]]), 0.2)
    np.testing.assert_allclose(only_first, [1.0, 1.0, 0.0])


def test_auc_hand_value():
    pred, gt, visible = _toy()
    # distances / 30 px: kp0 {1/6, 2/15}, kp1 {0, 5/3}, kp2 {5/3}; thresholds i/20:
    # mean PCK = 0 (i=0), 1/6 (i=1,2), 1/3 (i=3), 1/2 (i=4..19) -> (2/6 + 1/3 + 8) / 20
    assert auc(pred, gt, visible, normalize=30.0, num_thresholds=20) == pytest.approx(13 / 30)


def test_epe_hand_value():
    pred, gt, visible = _toy()
    assert epe(pred, gt, visible) == pytest.approx((5 + 0 + 50 + 4 + 50) / 5)
    assert epe(pred, gt, np.zeros((2, 3))) == 0.0
    with pytest.raises(ValueError, match="visible"):
        epe(pred, gt, np.ones((2, 4)))
