"""COCO keypoint AP of a top-down model, with ground-truth and detected boxes.

Run from the repository root (the COCO sample and its person detections,
test_coco_det_AP_H_56.json, come from tests/data/coco):

    python examples/evaluate_coco.py --output-dir /tmp/eval_demo
    python examples/evaluate_coco.py --preset vitpose_base_coco_256x192 --output-dir /tmp/eval_demo
    python examples/evaluate_coco.py --preset DIR --annotations person_keypoints_val2017.json \\
        --image-root val2017/ --detections COCO_val2017_detections_AP_H_56_person.json

The steps are the ones behind the published top-down numbers (mmpose
`CocoMetric`):

1. every box (annotated, or detected with its detector score) is cropped
   with the model's padding and aspect, run through the network and decoded
   to image pixels (`predict_dataset` -> `model.predict_keypoints`);
2. rescoring: instance score = box score x mean of the keypoint scores
   above 0.2;
3. OKS-NMS per image at OKS 0.9 (duplicate detections of one person);
4. pycocotools `COCOeval(iouType="keypoints")` with the spec's OKS sigmas.

A sanity line first scores the ground-truth keypoints themselves (AP must
be 1.0), which checks the evaluation independently of the model.

Without --preset the model is a small randomly initialised ViTPose -- an
untrained demo model whose AP is near 0: it shows the pipeline, not an
accuracy.

Writes to --output-dir: results_gt_boxes.json and results_detections.json
(COCO keypoint results after rescoring and NMS) and metrics.json.
"""

import argparse
import json
import os
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA_DIR = pathlib.Path(os.environ.get("KERAS_POSE_SHARED_DIR", REPO_ROOT / "tests")) / "data"
SHOWN = ("AP", "AP50", "AP75", "APm", "APl", "AR")


def demo_model(image_size=(128, 96), seed=0):
    """A small randomly initialised ViTPose (COCO keypoints): NOT trained."""
    import keras

    import keras_pose

    keras.utils.set_random_seed(seed)
    backbone = keras_pose.ViTPoseBackbone(image_size=image_size, hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64)
    return keras_pose.ViTPose(backbone, decoder="simple", keypoint_spec="coco")


def topdown_results(model, dataset, args):
    """Predict every instance, then rescore + OKS-NMS into COCO results."""
    import numpy as np

    from keras_pose.geometry import box_xywh_to_center_scale
    from keras_pose.metrics import make_topdown_results
    from keras_pose.training import predict_dataset

    instances = list(dataset)
    keypoints, scores = predict_dataset(model, instances, batch_size=args.batch_size, flip_test=args.flip_test,
                                        verbose=0)
    boxes = np.stack([inst.bbox for inst in instances])
    # mmpose's OKS-NMS area: the crop box (padded, aspect fixed) in px^2.
    _, crop_sizes = box_xywh_to_center_scale(boxes, model.image_size,
                                             padding=float(model.decoding.get("padding", 1.25)))
    results = make_topdown_results(
        [inst.image_id for inst in instances],
        keypoints,
        scores,
        bbox_scores=[inst.bbox_score for inst in instances],
        areas=np.prod(crop_sizes, axis=1),
        category_ids=[inst.category_id for inst in instances],
        keypoint_spec=model.keypoint_spec,
        score_mode="bbox" if args.no_rescore else "bbox_keypoint",
        nms_mode="none" if args.nms_threshold >= 1 else "oks_nms",
        nms_threshold=min(args.nms_threshold, 1.0),
    )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", metavar="NAME_OR_DIR",
                        help="preset name or folder; default: an untrained demo model (random weights)")
    parser.add_argument("--annotations", default=str(DATA_DIR / "coco" / "test_coco.json"),
                        help="COCO keypoint ground truth (default: the COCO sample)")
    parser.add_argument("--image-root", default=None, help="image folder (default: the annotation file's folder)")
    parser.add_argument("--detections", default=str(DATA_DIR / "coco" / "test_coco_det_AP_H_56.json"),
                        help="person detections, COCO results JSON (default: the sample's AP_H_56 boxes)")
    parser.add_argument("--min-box-score", type=float, default=0.0, help="drop detections below this score")
    parser.add_argument("--nms-threshold", type=float, default=0.9, help="OKS-NMS threshold (>= 1 disables NMS)")
    parser.add_argument("--no-rescore", action="store_true",
                        help="rank people by the box score alone (default: box x keypoint score)")
    parser.add_argument("--flip-test", dest="flip_test", action="store_true", default=None,
                        help="average with mirrored crops (default: the model's setting)")
    parser.add_argument("--batch-size", type=int, default=32, help="crops per forward pass")
    parser.add_argument("--output-dir", default="eval_demo", help="folder for the results and metrics JSON")
    args = parser.parse_args(argv)

    import numpy as np

    import keras_pose
    from keras_pose.datasets import dataset_from_detections, load_coco_detections, load_coco_keypoints
    from keras_pose.metrics import CocoKeypointEvaluator
    from keras_pose.utils.file_utils import atomic_write

    if args.preset:
        model = keras_pose.from_preset(args.preset)
        print(f"Model: {type(model).__name__} from preset {args.preset!r}.")
    else:
        model = demo_model()
        print("Model: untrained demo model (small ViTPose, random weights) -- expect AP near 0; pass --preset "
              "for a trained model's accuracy.")
    spec = model.keypoint_spec

    ground_truth = load_coco_keypoints(args.annotations, args.image_root, keypoint_spec=spec, mode="eval")
    detections = load_coco_detections(args.detections, min_score=args.min_box_score)
    detected = dataset_from_detections(detections, ground_truth)
    evaluator = CocoKeypointEvaluator(args.annotations, keypoint_spec=spec)
    print(f"Ground truth: {len(ground_truth)} labelled people in {len(ground_truth.images)} images; "
          f"detections: {len(detected)} boxes with score >= {args.min_box_score}.")

    # Sanity check of the evaluation itself: the annotations as predictions.
    oracle = [
        {"image_id": inst.image_id, "category_id": inst.category_id, "score": 1.0,
         "keypoints": np.concatenate([inst.keypoints, np.ones((spec.num_keypoints, 1))], 1).reshape(-1).tolist()}
        for inst in ground_truth
    ]
    oracle_ap = evaluator.evaluate(oracle)["AP"]
    print(f"sanity check: ground-truth keypoints as predictions -> AP {oracle_ap:.3f} (must be 1.000)")

    os.makedirs(args.output_dir, exist_ok=True)
    metrics = {"model": args.preset or "untrained demo model", "oracle_AP": oracle_ap}
    rows = []
    for label, key, dataset in (("ground-truth boxes", "gt_boxes", ground_truth),
                                ("detected boxes", "detections", detected)):
        results = topdown_results(model, dataset, args)
        stats = evaluator.evaluate(results)
        path = os.path.join(args.output_dir, f"results_{key}.json")
        with atomic_write(path, "w") as f:
            json.dump(results, f)
        metrics[key] = {"instances": len(dataset), "results_after_nms": len(results), **stats}
        rows.append((label, len(dataset), len(results), stats))

    header = f"{'boxes':<20}{'people':>7}{'kept':>6}" + "".join(f"{name:>8}" for name in SHOWN)
    print(header)
    print("-" * len(header))
    for label, count, kept, stats in rows:
        print(f"{label:<20}{count:>7}{kept:>6}" + "".join(f"{stats[name]:>8.3f}" for name in SHOWN))
    metrics_path = os.path.join(args.output_dir, "metrics.json")
    with atomic_write(metrics_path, "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"Wrote {metrics_path} and the COCO results files in {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
