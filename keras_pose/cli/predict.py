"""`keras-pose predict`: poses in images, folders and videos, as COCO keypoint results.

Without an input, the bundled sample image (`keras_pose.assets`) is used.
Every file it reads and writes is checked first (`predict_files`); then the
model loads and each input is predicted. One input: its error is the
command's error. Several: a bad one is reported and skipped (``--strict``:
the run stops there); the results of the others are written either way.
"""

import argparse
import json
import math
import os

from keras_pose.cli import predict_files
from keras_pose.cli.common import CLIError, add_preset_argument, dataset_kwargs, load_model, note


def _parse_box(text):
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
        raise argparse.ArgumentTypeError(
            f"expected X,Y,W,H (four finite numbers, W, H > 0, image pixels), got {text!r}"
        )
    return values


def _boxes_for(image_path, args, detections):
    """``(boxes, scores)`` of one image: ``--box``, its detections, or (None, None): the whole image."""
    if args.box:
        return args.box, None
    if detections is None:
        return None, None
    for key in (predict_files.image_id(image_path), os.path.basename(image_path)):
        if key in detections:
            return detections[key]
    return [], []


def _write_records(args, records):
    from keras_pose.utils.file_utils import atomic_write

    # allow_nan=False: never write NaN / Infinity tokens strict parsers reject.
    try:
        text = json.dumps(records, indent=1, allow_nan=False)
    except ValueError:
        raise CLIError("The model returned non-finite (NaN or infinite) keypoints or scores, which JSON cannot "
                       "hold; nothing was written. Check the preset's weights (keras-pose convert again).") from None
    if args.json:
        with atomic_write(args.json, "w") as f:
            f.write(text)
    else:
        print(text)


def _inputs(args):
    """``(images, videos)`` to predict; the bundled sample when no input is given."""
    paths = args.inputs
    if not paths:
        from keras_pose.assets import SAMPLE_IMAGE_CREDIT, sample_image_path

        paths = [sample_image_path()]
        note(f"note: no INPUT given; predicting on the bundled sample image {paths[0]} ({SAMPLE_IMAGE_CREDIT}).")
    return predict_files.collect_inputs(paths)


def _predict_one_stage(model, path, args, output, videos):
    """COCO keypoint records of one input of a one-stage model (RTMO): it finds the people itself."""
    if path in videos:
        raise CLIError(f"{path}: video input is not supported for one-stage presets yet; predict its frames as "
                       "images.")
    result = model.predict_keypoints(path)
    if output:
        from keras_pose.utils.image_io import read_image
        from keras_pose.visualization import save_image

        save_image(output, result.draw(read_image(path), keypoint_threshold=args.threshold))
    return result.to_coco(image_id=predict_files.image_id(path))


def _predict_one(model, path, args, detections, output, videos):
    """COCO keypoint records of one input (None: an image with no box in --detections)."""
    if getattr(model, "paradigm", None) == "one_stage":
        return _predict_one_stage(model, path, args, output, videos)
    predict_kwargs = {"flip_test": args.flip_test, **dataset_kwargs(args)}
    if path in videos:
        from keras_pose.video import predict_video

        results = predict_video(model, path, args.box or None, output=output, keypoint_threshold=args.threshold,
                                **predict_kwargs)
        records = []
        for frame, result in enumerate(results):
            records += [dict(record, video=os.path.basename(path)) for record in result.to_coco(image_id=frame)]
        return records
    boxes, scores = _boxes_for(path, args, detections)
    if getattr(model, "paradigm", None) == "bottom_up":  # whole images, no boxes (OpenPose)
        if args.box or detections is not None:
            raise CLIError(f"{type(model).__name__} is a bottom-up model: it finds every person in the whole image "
                           "and takes no --box / --detections.")
        result = model.predict_keypoints(path, flip_test=args.flip_test)
    elif boxes is not None and len(boxes) == 0:
        return None
    else:
        result = model.predict_keypoints(path, boxes, box_scores=scores, **predict_kwargs)
    if output:
        from keras_pose.utils.image_io import read_image
        from keras_pose.visualization import save_image

        save_image(output, result.draw(read_image(path), keypoint_threshold=args.threshold))
    return result.to_coco(image_id=predict_files.image_id(path))


def _say_written(args, drawn, records, finished):
    if len(drawn) == 1:
        note(f"wrote the drawing to {drawn[0]}")
    elif drawn:
        note(f"wrote {len(drawn)} drawings to {args.output}")
    if args.json and finished:
        count = len(records)
        note(f"wrote {count} keypoint result{'' if count == 1 else 's'} (COCO results JSON) to {args.json}")


def run(args):
    from keras_pose.errors import KerasPoseError

    images, videos = _inputs(args)
    inputs = images + videos
    if args.box and len(inputs) > 1:
        raise CLIError("--box applies to a single image; use --detections for several images.")
    detections = None
    if args.detections:
        from keras_pose.datasets.detections import load_detections

        detections = load_detections(args.detections, min_score=args.min_box_score, category_id=None,
                                     default_score=1.0)
    # Every output is checked before the (slow) model load.
    outputs = predict_files.plan_outputs(args.output, images, videos)
    if args.json:
        predict_files.check_json_output(args.json, inputs)
    model = load_model(args, **({"accept_license": True} if args.accept_license else {}))
    if args.dataset and not hasattr(model, "datasets"):
        raise CLIError(f"--dataset is only for multi-dataset presets; {args.preset!r} has one keypoint set.")
    if getattr(model, "paradigm", None) == "one_stage" and (args.box or args.detections or args.flip_test):
        raise CLIError(f"{args.preset!r} is a one-stage model: it finds the people itself and has no flip test; "
                       "drop --box / --detections / --flip-test.")
    strict = args.strict or len(inputs) == 1
    records, failed, without_boxes, drawn, done = [], [], [], [], 0
    finished = False
    try:
        for path in inputs:
            try:
                found = _predict_one(model, path, args, detections, outputs.get(path), videos)
            except (KerasPoseError, OSError) as e:  # this input's file, box or output
                if strict:
                    raise
                failed.append(path)
                note(f"skipped {path}: {' '.join(str(e).split()) or type(e).__name__}")
                continue
            if found is None:
                without_boxes.append(path)
                continue
            records += found
            done += 1
            if outputs.get(path):
                drawn.append(outputs[path])
        finished = True
    finally:
        if finished or records:
            _write_records(args, records)
            _say_written(args, drawn, records, finished)
            if not finished and args.json:
                note(f"stopped; the results of the {done} inputs done so far are in {args.json}")
    if without_boxes:
        note(f"note: {len(without_boxes)} image(s) have no box in --detections at --min-box-score "
             f"{args.min_box_score:g} and were not predicted (first: {without_boxes[0]}).")
    if failed:
        where = f" are in {args.json}" if args.json else " were printed"
        note(f"error: {len(failed)} of {len(inputs)} inputs failed (listed above); the results of the other "
             f"{done}{where}. Use --strict to stop at the first failure.")
        return 1
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="estimate poses in images, folders or videos with a preset",
        description="Run a top-down pose model on images (files or folders) or videos. Each person box "
        "(given, from a detections file, or the whole image) is cropped as the preset's reference did, "
        "and keypoints are returned in image pixels as COCO keypoint results JSON. One-stage presets (RTMO) "
        "find the people (boxes and keypoints) in whole images themselves. Without INPUT, the sample "
        "image bundled with keras-pose is used.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="image files, folders of images, or video files (default: the bundled sample image)")
    add_preset_argument(p)
    p.add_argument("--box", action="append", type=_parse_box, metavar="X,Y,W,H",
                   help="a person box in image pixels (repeat for several people; single image only); "
                   "default: the whole image")
    p.add_argument("--detections", metavar="FILE",
                   help="person boxes per image: COCO detection results JSON (image_id matched to numeric "
                   "file names such as 000000000785.jpg) or {\"file name\": [[x, y, w, h, score], ...]}")
    p.add_argument("--min-box-score", type=float, default=0.0, help="ignore detections below this score")
    p.add_argument("--output", metavar="PATH",
                   help="image with skeletons drawn (single input: a .png/.jpg/... path, or a folder), or a folder "
                   "for several inputs; an existing image of that name is replaced, any other file or folder is not")
    p.add_argument("--json", metavar="FILE", help="write the keypoints (COCO results JSON) here instead of stdout")
    p.add_argument("--threshold", type=float, default=0.3, help="keypoint score threshold for drawing")
    p.add_argument("--flip-test", dest="flip_test", action="store_true", default=None,
                   help="average with the mirrored image (default: as the preset's decoding says)")
    p.add_argument("--no-flip-test", dest="flip_test", action="store_false")
    p.add_argument("--dataset", metavar="D", help="multi-dataset presets (ViTPose++): which keypoint set to predict")
    p.add_argument("--accept-license", action="store_true",
                   help="accept the preset's restrictive weight licence (e.g. CMU OpenPose: non-commercial research "
                   "only); needed once for such presets")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first input that fails (default: report it on stderr, go on, write the "
                   "results of the others and exit with status 1)")
    p.set_defaults(handler=run)
    return p


__all__ = ["add_parser", "run"]
