"""`keras-pose evaluate`: COCO AP / PCKh / PCK of a preset on an annotated dataset."""

import json
import sys
import warnings

from keras_pose.cli.common import CLIError, add_preset_argument, dataset_kwargs, load_model, positive_int

_METRIC_ORDER = ("coco_AP", "coco_AP50", "coco_AP75", "coco_APm", "coco_APl", "coco_AR", "coco_AR50", "coco_AR75",
                 "coco_ARm", "coco_ARl", "coco_AP(E)", "coco_AP(M)", "coco_AP(H)", "pckh", "pckh@0.1", "pck", "epe")


def _check_metric(args, fmt):
    if args.metric == "coco" and fmt == "mpii":
        raise CLIError("--metric coco needs a COCO-format annotation file; use pckh or pck for MPII.")
    if args.metric == "pckh" and fmt != "mpii":
        raise CLIError("--metric pckh needs MPII annotations (head sizes); use coco or pck.")


def _data_spec(model):
    """The keypoint spec of the annotations a model is scored on (OpenPose-18 models: COCO-17)."""
    return getattr(model, "evaluation_keypoint_spec", None) or model.keypoint_spec


def _check_sigmas(args, model):
    spec = _data_spec(model)
    if args.metric == "coco" and spec.sigmas is None:
        raise CLIError(f"COCO AP needs OKS sigmas and the keypoint spec {spec.name!r} of "
                       f"{args.preset!r} has none; use --metric pck.")


def _print_metrics(stats):
    names = [k for k in _METRIC_ORDER if k in stats] + [k for k in stats if k not in _METRIC_ORDER]
    width = max(len(k) for k in names)
    for name in names:
        value = stats[name]
        text = f"{value:.2f} px" if name == "epe" else f"{value:.4f}"
        print(f"{name.ljust(width)}  {text}")


def _write_json(args, dataset, stats):
    """The metrics as strict JSON: a metric with nothing to measure (NaN, e.g. PCKh of a joint never
    labelled) is written as null, never as a NaN token strict parsers reject."""
    import math

    from keras_pose.utils.file_utils import atomic_write

    record = {
        "preset": args.preset,
        "annotations": args.annotations,
        "detections": args.detections,
        "boxes": "detections" if args.detections else "ground_truth",
        "instances": len(dataset),
        "metrics": {k: float(v) if math.isfinite(float(v)) else None for k, v in stats.items()},
    }
    with atomic_write(args.json, "w") as f:
        json.dump(record, f, indent=2, allow_nan=False)
        f.write("\n")


def run(args):
    from keras_pose.datasets import detect_annotation_format, load_pose_annotations
    from keras_pose.utils.console import isatty

    # The annotation file (and its format) before the slow model load.
    fmt = detect_annotation_format(args.annotations) if args.format == "auto" else args.format
    _check_metric(args, fmt)
    model = load_model(args, **dataset_kwargs(args), **({"accept_license": True} if args.accept_license else {}))
    with warnings.catch_warnings():
        if fmt == "mpii":  # approximated head boxes, skipped records: the metric lines say enough
            warnings.simplefilter("ignore")
        dataset, fmt = load_pose_annotations(
            args.annotations, args.image_root, format=fmt, keypoint_spec=_data_spec(model), mode="eval",
            detections=args.detections, min_detection_score=args.min_box_score, category_id=args.category_id)
    if len(dataset) == 0:
        raise CLIError(f"Nothing to evaluate in {args.annotations!r}: no labelled instance"
                       + (" and no detection above --min-box-score." if args.detections else "."))
    _check_sigmas(args, model)
    from keras_pose.training import evaluate_pose_model

    boxes = "detected boxes" if args.detections else "ground-truth boxes"
    if getattr(model, "paradigm", "top_down") in ("bottom_up", "one_stage"):
        boxes = "whole images, the model's own people"
    images = len({inst.image_id for inst in dataset})
    print(f"Evaluating {type(model).__name__} on {len(dataset)} instances in {images} images ({boxes}).",
          file=sys.stderr)
    progress = not args.quiet and isatty()
    stats = evaluate_pose_model(model, dataset, metric=args.metric, batch_size=args.batch_size,
                                flip_test=args.flip_test, pck_threshold=args.pck_threshold,
                                verbose=1 if progress else 0)
    _print_metrics(stats)
    if args.json:
        _write_json(args, dataset, stats)
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "evaluate",
        help="measure COCO AP / PCKh / PCK of a preset on an annotated dataset",
        description="Evaluate a top-down model as a user runs it: every person box (ground truth, or detections "
        "with --detections) is cropped with the preset's settings, keypoints are decoded to image pixels and "
        "scored: COCO keypoint AP/AR with pycocotools (mmpose rescoring and OKS-NMS; a CrowdPose file, whose "
        "images carry crowdIndex, gives CrowdPose's AP/AR and AP(E)/AP(M)/AP(H)), MPII PCKh@0.5, or PCK. "
        "Prints one metric per line.",
    )
    add_preset_argument(p)
    p.add_argument("--annotations", required=True, metavar="FILE",
                   help="ground truth: a COCO-format keypoint json (COCO, AP-10K, CrowdPose, ...) or an MPII json")
    p.add_argument("--image-root", dest="image_root", metavar="DIR",
                   help="folder the annotation file's image names are relative to (default: the file's folder)")
    p.add_argument("--format", choices=("auto", "coco", "mpii"), default="auto",
                   help="annotation format (default auto: a JSON list is MPII, an object COCO)")
    p.add_argument("--detections", metavar="FILE",
                   help="evaluate on detected boxes: COCO detection results JSON (image_id, bbox, score), e.g. "
                   "COCO_val2017_detections_AP_H_56_person.json; default: ground-truth boxes")
    p.add_argument("--min-box-score", dest="min_box_score", type=float, default=0.0, metavar="S",
                   help="ignore detections below this score (default 0)")
    p.add_argument("--category-id", dest="category_id", type=int, default=1, metavar="ID",
                   help="category of the detections to use (default 1, COCO person)")
    p.add_argument("--metric", choices=("auto", "coco", "pck", "pckh"), default="auto",
                   help="auto (pckh for MPII, coco for COCO-format files), coco, pck or pckh")
    p.add_argument("--pck-threshold", dest="pck_threshold", type=float, default=0.05, metavar="T",
                   help="PCK threshold as a fraction of the box's longer side (default 0.05)")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=32, metavar="N",
                   help="crops per forward pass (default 32)")
    p.add_argument("--flip-test", dest="flip_test", action="store_true", default=None,
                   help="average with the mirrored crops (default: as the preset's decoding says)")
    p.add_argument("--no-flip-test", dest="flip_test", action="store_false", help="do not use the flip test")
    p.add_argument("--dataset", metavar="D", help="multi-dataset presets (ViTPose++): which keypoint set to evaluate")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON here")
    p.add_argument("--accept-license", dest="accept_license", action="store_true",
                   help="accept a licence-restricted preset's terms (e.g. CMU's non-commercial OpenPose weights)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stdout is not a terminal)")
    p.set_defaults(handler=run)
    return p


__all__ = ["add_parser", "run"]
