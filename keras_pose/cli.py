"""The `keras-pose` command line.

    keras-pose presets [--family F] [--task-class T] [--json]
    keras-pose convert --checkpoint FILE --output DIR [--preset NAME] [--dataset D]
    keras-pose predict --preset NAME_OR_DIR INPUT... [--box X,Y,W,H] [--output PATH] [--json FILE]

Each verb is an argparse sub-command registered in `VERBS`: a function that
adds its parser and sets `handler`. A verb's handler returns the exit code.
User errors (`KerasPoseError`, missing files) print one line on stderr and
exit with status 1; bad arguments exit with status 2 (argparse).
"""

import argparse
import json
import sys

PROG = "keras-pose"

# Keypoint counts of the built-in specs, for the table when the keypoint
# package cannot be imported.
_KEYPOINT_COUNTS = {
    "coco": 17,
    "aic": 14,
    "mpii": 16,
    "ap10k": 17,
    "apt36k": 17,
    "coco_wholebody": 133,
    "crowdpose": 14,
}


class CLIError(Exception):
    """A user error found by the CLI itself (exit status 1)."""


# --------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------
def _keypoints_label(entry):
    spec = entry.config.get("keypoint_spec", "?")
    datasets = entry.config.get("datasets")
    if datasets and entry.dataset is None:
        return f"{len(datasets)} sets"
    count = _KEYPOINT_COUNTS.get(spec)
    if count is None:
        try:
            from keras_pose.keypoints import get_keypoint_spec

            count = get_keypoint_spec(spec).num_keypoints
        except Exception:  # noqa: BLE001 - the table still shows the name
            count = None
    return f"{spec} ({count})" if count else str(spec)


def _accuracy_label(accuracy):
    if not accuracy:
        return "-"
    metric = accuracy.get("metric")
    value = accuracy.get(metric) if metric else None
    if value is None:
        for key in ("AP", "PCKh", "AUC", "PCK"):
            if accuracy.get(key) is not None:
                metric, value = key, accuracy[key]
                break
    if value is None:
        return "-"
    dataset = accuracy.get("dataset", "")
    return f"{metric} {100 * value:.1f} {dataset}".strip()


def _input_size(entry):
    size = entry.config.get("image_size")
    return f"{size[0]}x{size[1]}" if size else "-"


def _table(rows, headers):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _cmd_presets(args):
    from keras_pose.preset_registry import list_presets

    entries = list_presets(family=args.family, task_class=args.task_class)
    if not entries:
        from keras_pose.preset_registry import list_presets as all_presets

        families = sorted({e.family for e in all_presets()})
        raise CLIError(
            f"No presets match family={args.family!r} task_class={args.task_class!r}; "
            f"known families: {', '.join(families)}."
        )
    if args.json:
        json.dump([e.to_dict() for e in entries], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    headers = ("name", "task class", "input", "keypoints", "published", "licence")
    rows = [
        (e.name, e.task_class, _input_size(e), _keypoints_label(e), _accuracy_label(e.published_accuracy), e.license)
        for e in entries
    ]
    print(_table(rows, headers))
    print(f"\n{len(entries)} presets. Load one with keras_pose.from_preset(NAME); the checkpoint is "
          "downloaded and converted on first use.")
    return 0


def _add_presets(subparsers):
    p = subparsers.add_parser(
        "presets",
        help="list the built-in presets",
        description="List the built-in presets: name, task class, input size (HxW), keypoint set, "
        "published accuracy and licence of the weights.",
    )
    p.add_argument("--family", help="only presets of this model family (e.g. vitpose, vitpose_plus)")
    p.add_argument("--task-class", dest="task_class", help="only presets building this class (e.g. ViTPose)")
    p.add_argument("--json", action="store_true", help="print the full preset entries as JSON")
    p.set_defaults(handler=_cmd_presets)


# --------------------------------------------------------------------------
# convert
# --------------------------------------------------------------------------
def _cmd_convert(args):
    import os

    from keras_pose.conversion import convert_checkpoint

    if not os.path.exists(args.checkpoint):
        raise CLIError(f"Checkpoint {args.checkpoint!r} does not exist.")
    model = convert_checkpoint(args.checkpoint, preset=args.preset, output_dir=args.output, dataset=args.dataset)
    print(f"Wrote {type(model).__name__} preset to {os.path.abspath(args.output)}; load it with "
          f"keras_pose.from_preset({os.path.abspath(args.output)!r}).")
    return 0


def _add_convert(subparsers):
    p = subparsers.add_parser(
        "convert",
        help="convert a reference checkpoint into a keras-pose preset directory",
        description="Convert a reference checkpoint (original ViTPose .pth, mmpose 1.x .pth, or HF "
        "model.safetensors with config.json beside it) into a Keras preset directory that "
        "keras_pose.from_preset(DIR) loads. The folder is written atomically with a "
        "keras_pose_preset.json record of the source, licence and published accuracy.",
    )
    p.add_argument("--checkpoint", required=True, metavar="FILE",
                   help="the downloaded reference checkpoint file (or an HF model folder)")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="preset folder to write (new, empty, or an earlier keras-pose preset)")
    p.add_argument("--preset", metavar="NAME",
                   help="the registered preset the checkpoint was released as (see `keras-pose presets`); "
                   "omitted: the model family and layout are inferred from the checkpoint")
    p.add_argument("--dataset", metavar="D",
                   help="multi-dataset models (ViTPose++): the dataset whose expert and head to keep, "
                   "one of coco, aic, mpii, ap10k, apt36k, coco_wholebody")
    p.set_defaults(handler=_cmd_convert)


# --------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _parse_box(text):
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H with W, H > 0 (image pixels), got {text!r}")
    return values


def _collect_inputs(paths):
    """Expand folders; split into images and videos (sorted, de-duplicated)."""
    import os

    images, videos = [], []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            images += [os.path.join(path, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
            videos += [os.path.join(path, n) for n in names if n.lower().endswith(VIDEO_EXTENSIONS)]
        elif not os.path.exists(path):
            raise CLIError(f"Input {path!r} does not exist.")
        elif path.lower().endswith(VIDEO_EXTENSIONS):
            videos.append(path)
        else:
            images.append(path)
    if not images and not videos:
        raise CLIError(f"No images or videos found in {paths}.")
    return images, videos


def _image_id(path):
    import os

    stem = os.path.splitext(os.path.basename(path))[0]
    return int(stem) if stem.isdigit() else os.path.basename(path)


def _load_detections(path, min_score):
    """Boxes per image from a COCO results file or a {file name: boxes} JSON."""
    with open(path) as f:
        data = json.load(f)
    boxes = {}
    if isinstance(data, dict):
        for name, items in data.items():
            boxes[name] = ([list(map(float, b[:4])) for b in items], [float(b[4]) if len(b) > 4 else 1.0 for b in items])
        return boxes
    for record in data:
        if not isinstance(record, dict) or "bbox" not in record or "image_id" not in record:
            raise CLIError(f"{path}: expected COCO detection results (image_id, bbox, score), got {str(record)[:80]}")
        score = float(record.get("score", 1.0))
        if score < min_score:
            continue
        entry = boxes.setdefault(record["image_id"], ([], []))
        entry[0].append(list(map(float, record["bbox"])))
        entry[1].append(score)
    return boxes


def _boxes_for(image_path, args, detections):
    import os

    if args.box:
        return args.box, None
    if detections is None:
        return None, None
    for key in (_image_id(image_path), os.path.basename(image_path)):
        if key in detections:
            return detections[key]
    return [], []


def _output_path(args, source, multiple, suffix=None):
    import os

    if not args.output:
        return None
    if not multiple:
        return args.output
    os.makedirs(args.output, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(source))
    return os.path.join(args.output, stem + (suffix or ext or ".png"))


def _write_image(path, rgb):
    import os

    import cv2

    from keras_pose.utils.file_utils import atomic_write

    ext = os.path.splitext(path)[1] or ".png"
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise CLIError(f"OpenCV cannot write {ext!r} images; use .png or .jpg for {path!r}.")
    with atomic_write(path) as f:
        f.write(data.tobytes())


def _predict_video(model, path, args, out_path):
    import os
    import tempfile

    import cv2

    from keras_pose.utils.file_utils import atomic_write

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise CLIError(f"Could not open video {path!r} (unsupported codec or not a video).")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer, tmp, records, frame_index = None, None, [], 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            result = model.predict_keypoints(rgb, args.box or None, flip_test=args.flip_test, **_dataset_kwargs(model, args))
            for record in result.to_coco(image_id=frame_index):
                record["video"] = os.path.basename(path)
                records.append(record)
            if out_path:
                if writer is None:
                    fd, tmp = tempfile.mkstemp(suffix=os.path.splitext(out_path)[1] or ".mp4",
                                               dir=os.path.dirname(os.path.abspath(out_path)))
                    os.close(fd)
                    h, w = rgb.shape[:2]
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                drawn = result.draw(rgb, keypoint_threshold=args.threshold)
                writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
            frame_index += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if frame_index == 0:
        raise CLIError(f"Video {path!r} has no readable frames.")
    if tmp:
        os.replace(tmp, out_path)
    return records


def _dataset_kwargs(model, args):
    return {"dataset": args.dataset} if args.dataset else {}


def _cmd_predict(args):
    import keras_pose
    from keras_pose.utils.file_utils import atomic_write

    images, videos = _collect_inputs(args.inputs)
    if args.box and len(images) + len(videos) > 1:
        raise CLIError("--box applies to a single image; use --detections for several images.")
    detections = _load_detections(args.detections, args.min_box_score) if args.detections else None
    model = keras_pose.from_preset(args.preset)
    if args.dataset and not hasattr(model, "datasets"):
        raise CLIError(f"--dataset is only for multi-dataset presets; {args.preset!r} has one keypoint set.")
    multiple = len(images) + len(videos) > 1
    records = []
    for path in images:
        boxes, scores = _boxes_for(path, args, detections)
        if boxes is not None and len(boxes) == 0:
            continue
        result = model.predict_keypoints(path, boxes, box_scores=scores, flip_test=args.flip_test,
                                         **_dataset_kwargs(model, args))
        records += result.to_coco(image_id=_image_id(path))
        out = _output_path(args, path, multiple)
        if out:
            from keras_pose.utils.image_io import read_image

            _write_image(out, result.draw(read_image(path), keypoint_threshold=args.threshold))
    for path in videos:
        records += _predict_video(model, path, args, _output_path(args, path, multiple or bool(images), ".mp4"))
    text = json.dumps(records, indent=1)
    if args.json:
        with atomic_write(args.json, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


def _add_predict(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="estimate poses in images, folders or videos with a preset",
        description="Run a top-down pose model on images (files or folders) or videos. Each person box "
        "(given, from a detections file, or the whole image) is cropped as the preset's reference did, "
        "and keypoints are returned in image pixels as COCO keypoint results JSON.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders of images, or video files")
    p.add_argument("--preset", required=True, metavar="NAME_OR_DIR",
                   help="registered preset name (`keras-pose presets`), preset directory, or checkpoint URL")
    p.add_argument("--box", action="append", type=_parse_box, metavar="X,Y,W,H",
                   help="a person box in image pixels (repeat for several people; single image only); "
                   "default: the whole image")
    p.add_argument("--detections", metavar="FILE",
                   help="person boxes per image: COCO detection results JSON (image_id matched to numeric "
                   "file names such as 000000000785.jpg) or {\"file name\": [[x, y, w, h, score], ...]}")
    p.add_argument("--min-box-score", type=float, default=0.0, help="ignore detections below this score")
    p.add_argument("--output", metavar="PATH",
                   help="image with skeletons drawn (single input), or a folder for several inputs")
    p.add_argument("--json", metavar="FILE", help="write the keypoints (COCO results JSON) here instead of stdout")
    p.add_argument("--threshold", type=float, default=0.3, help="keypoint score threshold for drawing")
    p.add_argument("--flip-test", dest="flip_test", action="store_true", default=None,
                   help="average with the mirrored image (default: as the preset's decoding says)")
    p.add_argument("--no-flip-test", dest="flip_test", action="store_false")
    p.add_argument("--dataset", metavar="D", help="multi-dataset presets (ViTPose++): which keypoint set to predict")
    p.set_defaults(handler=_cmd_predict)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
# Verb registration: each adds one sub-parser.
VERBS = [_add_presets, _add_convert, _add_predict]


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="keras-pose: pose-estimation model zoo for Keras 3.",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    subparsers.required = True
    for add_verb in VERBS:
        add_verb(subparsers)
    return parser


def main(argv=None):
    """Run the CLI; returns the exit status (0 ok, 1 error, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from keras_pose.errors import KerasPoseError

    try:
        return int(args.handler(args) or 0)
    except (KerasPoseError, CLIError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
            PermissionError) as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
