"""The `keras-pose` command line.

    keras-pose presets [--family F] [--task-class T] [--json]
    keras-pose convert --checkpoint FILE --output DIR [--preset NAME] [--dataset D]
    keras-pose predict --preset NAME_OR_DIR INPUT... [--box X,Y,W,H] [--output PATH] [--json FILE] [--strict]
    keras-pose evaluate --preset NAME_OR_DIR --annotations FILE [--detections FILE] [--metric M] [--json FILE]
    keras-pose train CONFIG [--output-dir DIR] [--epochs N] [--set KEY=VALUE] [--dry-run]
    keras-pose export --preset NAME_OR_DIR --output PATH [--format tflite|onnx] [--quantization Q]

Each verb is an argparse sub-command registered in `VERBS`: a function that
adds its parser and sets `handler`. A verb's handler returns the exit code.
User errors (`KerasPoseError`, `CLIError`, missing or unwritable files, a
full disk) print one line on stderr and exit with status 1; bad arguments
exit with status 2 (argparse); a closed stdout (`keras-pose presets | head`)
exits quietly with 141, as a process killed by SIGPIPE; other exceptions are
bugs and keep their traceback.
"""

import argparse
import errno
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
                   help="preset folder to write: new, empty, or an earlier `keras-pose convert` output "
                   "(keras_pose_preset.json and only preset files), which is replaced; a folder holding "
                   "anything else, or the checkpoint itself, is refused")
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
    import math

    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
        raise argparse.ArgumentTypeError(
            f"expected X,Y,W,H (four finite numbers, W, H > 0, image pixels), got {text!r}"
        )
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


_DETECTIONS_FORMAT = ('COCO detection results [{"image_id": 785, "bbox": [x, y, w, h], "score": 0.98}, ...] '
                      'or {"file name": [[x, y, w, h, score], ...]}')


def _finite_number(value):
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _detection_box(path, where, values, lengths):
    """``(box, score)`` of one detection, checked; ``score`` None when absent."""
    if (not isinstance(values, (list, tuple)) or len(values) not in lengths
            or not all(_finite_number(v) for v in values)):
        shown = json.dumps(values)[:80]
        raise CLIError(f"Detections file {path!r}: {where} is {shown}, not a box of "
                       f"{' or '.join(map(str, lengths))} finite numbers (x, y, w, h in image pixels"
                       f"{', score' if 5 in lengths else ''}); fix the file, expected {_DETECTIONS_FORMAT}.")
    if values[2] <= 0 or values[3] <= 0:
        raise CLIError(f"Detections file {path!r}: {where} {list(values[:4])} has a width or height <= 0; boxes "
                       "are COCO x, y, w, h (convert x1, y1, x2, y2 corners to widths and heights).")
    return [float(v) for v in values[:4]], (float(values[4]) if len(values) > 4 else None)


def _load_detections(path, min_score):
    """Boxes per image from a COCO results file or a {file name: boxes} JSON.

    Returns:
        ``{image_id or file name: (boxes, scores)}``: boxes ``[[x, y, w, h],
        ...]`` image px (finite, w, h > 0), scores floats; detections scored
        below ``min_score`` are left out.

    Raises:
        CLIError: the file is missing, is not JSON, or an entry is malformed
            (the message names the entry).
    """
    import os

    if not os.path.isfile(path):
        raise CLIError(f"Detections file {path!r} does not exist" + (" (it is a folder)." if os.path.isdir(path)
                                                                      else "."))
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
        raise CLIError(f"Detections file {path!r} is not valid JSON ({' '.join(str(e).split())[:120]}); "
                       f"expected {_DETECTIONS_FORMAT}.") from None
    boxes = {}
    if isinstance(data, dict):
        for name, items in data.items():
            if not isinstance(items, list):
                raise CLIError(f"Detections file {path!r}: the entry for {name!r} is {json.dumps(items)[:80]}, not "
                               f"a list of boxes; expected {_DETECTIONS_FORMAT}.")
            entry = boxes.setdefault(name, ([], []))
            for i, item in enumerate(items):
                box, score = _detection_box(path, f"box {i} of {name!r}", item, (4, 5))
                score = 1.0 if score is None else score
                if score >= min_score:
                    entry[0].append(box)
                    entry[1].append(score)
        return boxes
    if not isinstance(data, list):
        raise CLIError(f"Detections file {path!r} holds a JSON {type(data).__name__}; expected "
                       f"{_DETECTIONS_FORMAT}.")
    for i, record in enumerate(data):
        if not isinstance(record, dict) or "bbox" not in record or "image_id" not in record:
            raise CLIError(f"Detections file {path!r}: record {i} is {json.dumps(record)[:80]}; expected COCO "
                           "detection results (image_id, bbox, score).")
        image_id = record["image_id"]
        if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
            raise CLIError(f"Detections file {path!r}: record {i} has image_id {json.dumps(image_id)[:40]}; "
                           "expected an integer id (or a file name).")
        box, _ = _detection_box(path, f"the bbox of record {i}", record["bbox"], (4,))
        score = record.get("score", 1.0)
        if not _finite_number(score):
            raise CLIError(f"Detections file {path!r}: record {i} has score {json.dumps(score)[:40]}; expected a "
                           "finite number (or no score).")
        if score < min_score:
            continue
        entry = boxes.setdefault(image_id, ([], []))
        entry[0].append(box)
        entry[1].append(float(score))
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


# Leading bytes of the files --output may replace (images, videos). A file
# that exists under the output name is overwritten only if it is one of these.
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*")
_VIDEO_SIGNATURES = (b"\x1a\x45\xdf\xa3",)  # Matroska / WebM


def _looks_like(path, video):
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    if video:
        return head.startswith(_VIDEO_SIGNATURES) or head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free") or (
            head.startswith(b"RIFF") and head[8:12] == b"AVI ")
    return head.startswith(_IMAGE_SIGNATURES) or (head.startswith(b"RIFF") and head[8:12] == b"WEBP")


def _check_parent(path, flag):
    """The nearest existing ancestor of ``path`` is a writable folder."""
    import os

    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise CLIError(f"{flag} {path!r} cannot be written: {parent!r} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {path!r} cannot be written: no write permission in {parent!r}.")


def _same_file(a, b):
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_output_file(target, inputs, flag, video=False):
    """Refuse to write ``target`` over a folder, an input or a file we do not write.

    Returns:
        True when ``target`` is an existing image (video) file to be replaced.
    """
    import os

    if os.path.isdir(target):
        raise CLIError(f"{flag}: {target!r} is a folder; it is never written over. Choose another name.")
    _check_parent(target, flag)
    if not os.path.exists(target):
        return False
    for source in inputs:
        if _same_file(source, target):
            raise CLIError(f"{flag}: {target!r} is the input {source!r}; writing the drawing there would destroy "
                           "it. Choose another output path.")
    kind = "video" if video else "image"
    if not os.path.isfile(target) or not _looks_like(target, video):
        raise CLIError(f"{flag}: {target!r} exists and is not an {kind} file; it is not overwritten. Remove it or "
                       "choose another output path.")
    return True


def _plan_outputs(args, images, videos):
    """The output file of every input, checked before the model is loaded.

    One input: ``--output`` is an image (video) file path with a known
    extension, or a folder (an existing one, or a path ending in ``/``).
    Several inputs: ``--output`` is a folder (created if missing) receiving
    ``<input stem><ext>`` (videos ``.mp4``; images keep their extension when
    OpenCV writes it, else ``.png``). Existing files are replaced only if
    they are images (videos) and never when they are an input; folders are
    never written over.

    Returns:
        ``{input path: output path}`` (empty without ``--output``).
    """
    import os

    out = args.output
    if not out:
        return {}
    inputs = images + videos
    folder = len(inputs) > 1 or os.path.isdir(out) or out.endswith(("/", os.sep))
    plan = {}
    if folder:
        if os.path.exists(out) and not os.path.isdir(out):
            raise CLIError(f"--output {out!r} is a file, but {len(inputs)} inputs need an output folder; give a "
                           "folder path (it is created if missing).")
        if not os.path.exists(out) and os.path.splitext(out)[1].lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
            raise CLIError(f"--output {out!r} looks like a file name, but {len(inputs)} inputs need an output "
                           "folder; give a folder path (it is created if missing).")
        _check_parent(os.path.join(out, "x"), "--output")
        for path in images:
            stem, ext = os.path.splitext(os.path.basename(path))
            plan[path] = os.path.join(out, stem + (ext if ext.lower() in IMAGE_EXTENSIONS else ".png"))
        for path in videos:
            plan[path] = os.path.join(out, os.path.splitext(os.path.basename(path))[0] + ".mp4")
    else:
        video = bool(videos)
        kinds = VIDEO_EXTENSIONS if video else IMAGE_EXTENSIONS
        ext = os.path.splitext(out)[1].lower()
        if ext not in kinds:
            what = f"extension {ext!r} is not" if ext else "it has no extension, so it is not"
            raise CLIError(f"--output {out!r}: {what} a {'video' if video else 'image'} type this command writes; "
                           f"end it in one of {', '.join(kinds)}, or end it in / for a folder.")
        plan[inputs[0]] = out
    by_target = {}
    replaced = []
    for source, target in plan.items():
        key = os.path.normcase(os.path.abspath(target))
        if key in by_target:
            raise CLIError(f"--output: {by_target[key]!r} and {source!r} would both be drawn to {target!r}; "
                           "predict them into different folders.")
        by_target[key] = source
        if _check_output_file(target, inputs, "--output", video=source in videos):
            replaced.append(target)
    if replaced:
        more = f" and {len(replaced) - 1} more" if len(replaced) > 1 else ""
        print(f"{PROG}: note: --output replaces the existing file {replaced[0]!r}{more}.", file=sys.stderr)
    return plan


def _check_json_output(path, inputs):
    import os

    if os.path.isdir(path):
        raise CLIError(f"--json {path!r} is a folder; give a file path for the results JSON.")
    _check_parent(path, "--json")
    for source in inputs:
        if _same_file(source, path):
            raise CLIError(f"--json {path!r} is the input {source!r}; choose another results file.")


def _write_image(path, rgb):
    import os

    import cv2

    from keras_pose.utils.file_utils import atomic_write

    ext = os.path.splitext(path)[1].lower() or ".png"
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise CLIError(f"OpenCV cannot write {ext!r} images; use .png or .jpg for {path!r}.")
    try:
        with atomic_write(path) as f:
            f.write(data.tobytes())
    except OSError as e:
        raise CLIError(f"Could not write {path!r}: {e.strerror or e}.") from None


def _predict_video(model, path, args, out_path):
    import contextlib
    import os
    import tempfile

    import cv2

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
                    directory = os.path.dirname(os.path.abspath(out_path))
                    os.makedirs(directory, exist_ok=True)
                    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(out_path) + ".",
                                               suffix=os.path.splitext(out_path)[1] or ".mp4", dir=directory)
                    os.close(fd)
                    h, w = rgb.shape[:2]
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                drawn = result.draw(rgb, keypoint_threshold=args.threshold)
                writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
            frame_index += 1
        if frame_index == 0:
            raise CLIError(f"Video {path!r} has no readable frames.")
        if writer is not None:
            writer.release()
            writer = None
            os.replace(tmp, out_path)
            tmp = None
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)
    return records


def _dataset_kwargs(model, args):
    return {"dataset": args.dataset} if args.dataset else {}


# Errors that belong to one input (unreadable or undecodable file, a box the
# model refuses, an output that cannot be written): a folder run skips the
# input and goes on; anything else is a bug and stops with a traceback.
def _input_errors():
    from keras_pose.errors import KerasPoseError

    return (KerasPoseError, CLIError, OSError)


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


def _cmd_predict(args):
    import keras_pose

    images, videos = _collect_inputs(args.inputs)
    inputs = images + videos
    if args.box and len(inputs) > 1:
        raise CLIError("--box applies to a single image; use --detections for several images.")
    detections = _load_detections(args.detections, args.min_box_score) if args.detections else None
    # Every output is checked before the (slow) model load.
    outputs = _plan_outputs(args, images, videos)
    if args.json:
        _check_json_output(args.json, inputs)
    model = keras_pose.from_preset(args.preset)
    if args.dataset and not hasattr(model, "datasets"):
        raise CLIError(f"--dataset is only for multi-dataset presets; {args.preset!r} has one keypoint set.")
    # One input: its error is the command's error. Several: a bad one is
    # reported and skipped (--strict: the run stops there); the results of
    # the others are written either way.
    strict = args.strict or len(inputs) == 1
    records, failed, without_boxes, done = [], [], [], 0
    finished = False
    try:
        for path in inputs:
            try:
                if path in videos:
                    records += _predict_video(model, path, args, outputs.get(path))
                    done += 1
                    continue
                boxes, scores = _boxes_for(path, args, detections)
                if boxes is not None and len(boxes) == 0:
                    without_boxes.append(path)
                    continue
                result = model.predict_keypoints(path, boxes, box_scores=scores, flip_test=args.flip_test,
                                                 **_dataset_kwargs(model, args))
                if outputs.get(path):
                    from keras_pose.utils.image_io import read_image

                    _write_image(outputs[path], result.draw(read_image(path), keypoint_threshold=args.threshold))
                records += result.to_coco(image_id=_image_id(path))
                done += 1
            except _input_errors() as e:
                if strict:
                    raise
                failed.append(path)
                print(f"{PROG}: skipped {path}: {' '.join(str(e).split()) or type(e).__name__}", file=sys.stderr)
        finished = True
    finally:
        if finished or records:
            _write_records(args, records)
            if not finished and args.json:
                print(f"{PROG}: stopped; the results of the {done} inputs done so far are in {args.json}",
                      file=sys.stderr)
    if without_boxes:
        print(f"{PROG}: note: {len(without_boxes)} image(s) have no box in --detections at --min-box-score "
              f"{args.min_box_score:g} and were not predicted (first: {without_boxes[0]}).", file=sys.stderr)
    if failed:
        where = f" are in {args.json}" if args.json else " were printed"
        print(f"{PROG}: error: {len(failed)} of {len(inputs)} inputs failed (listed above); the results of the "
              f"other {done}{where}. Use --strict to stop at the first failure.", file=sys.stderr)
        return 1
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
                   help="image with skeletons drawn (single input: a .png/.jpg/... path, or a folder), or a folder "
                   "for several inputs; an existing image of that name is replaced, any other file or folder is not")
    p.add_argument("--json", metavar="FILE", help="write the keypoints (COCO results JSON) here instead of stdout")
    p.add_argument("--threshold", type=float, default=0.3, help="keypoint score threshold for drawing")
    p.add_argument("--flip-test", dest="flip_test", action="store_true", default=None,
                   help="average with the mirrored image (default: as the preset's decoding says)")
    p.add_argument("--no-flip-test", dest="flip_test", action="store_false")
    p.add_argument("--dataset", metavar="D", help="multi-dataset presets (ViTPose++): which keypoint set to predict")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first input that fails (default: report it on stderr, go on, write the "
                   "results of the others and exit with status 1)")
    p.set_defaults(handler=_cmd_predict)


# --------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------
_METRIC_ORDER = ("coco_AP", "coco_AP50", "coco_AP75", "coco_APm", "coco_APl", "coco_AR", "coco_AR50", "coco_AR75",
                 "coco_ARm", "coco_ARl", "pckh", "pckh@0.1", "pck", "epe")


def _load_eval_dataset(args, model):
    import os
    import warnings

    from keras_pose.datasets import dataset_from_detections, load_coco_detections, load_coco_keypoints, load_mpii

    if not os.path.isfile(args.annotations):
        raise CLIError(f"Annotation file {args.annotations!r} does not exist.")
    if args.image_root and not os.path.isdir(args.image_root):
        raise CLIError(f"Image folder {args.image_root!r} does not exist.")
    fmt = args.format
    if fmt == "auto":
        with open(args.annotations, "rb") as f:
            head = f.read(4096).lstrip()
        fmt = "mpii" if head.startswith(b"[") else "coco"
    if fmt == "mpii":
        if args.detections:
            raise CLIError("--detections applies to COCO-format annotation files; MPII is evaluated on its boxes.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = load_mpii(args.annotations, args.image_root, mode="eval", keypoint_spec=model.keypoint_spec)
    else:
        dataset = load_coco_keypoints(args.annotations, args.image_root, keypoint_spec=model.keypoint_spec,
                                      mode="eval")
        if args.detections:
            if not os.path.isfile(args.detections):
                raise CLIError(f"Detections file {args.detections!r} does not exist.")
            detections = load_coco_detections(args.detections, min_score=args.min_box_score,
                                              category_id=args.category_id)
            dataset = dataset_from_detections(detections, dataset, category_id=args.category_id)
    if len(dataset) == 0:
        raise CLIError(f"Nothing to evaluate in {args.annotations!r}: no labelled instance"
                       + (" and no detection above --min-box-score." if args.detections else "."))
    return dataset, fmt


def _cmd_evaluate(args):
    import keras_pose
    from keras_pose.training import evaluate_pose_model
    from keras_pose.utils.file_utils import atomic_write

    kwargs = {"dataset": args.dataset} if args.dataset else {}
    model = keras_pose.from_preset(args.preset, **kwargs)
    dataset, fmt = _load_eval_dataset(args, model)
    metric = args.metric
    if metric == "coco" and fmt == "mpii":
        raise CLIError("--metric coco needs a COCO-format annotation file; use pckh or pck for MPII.")
    if metric == "pckh" and fmt != "mpii":
        raise CLIError("--metric pckh needs MPII annotations (head sizes); use coco or pck.")
    if metric == "coco" and model.keypoint_spec.sigmas is None:
        raise CLIError(f"COCO AP needs OKS sigmas and the keypoint spec {model.keypoint_spec.name!r} of "
                       f"{args.preset!r} has none; use --metric pck.")
    boxes = "detected boxes" if args.detections else "ground-truth boxes"
    images = len({inst.image_id for inst in dataset})
    print(f"Evaluating {type(model).__name__} on {len(dataset)} instances in {images} images ({boxes}).",
          file=sys.stderr)
    progress = not args.quiet and _isatty()
    stats = evaluate_pose_model(model, dataset, metric=metric, batch_size=args.batch_size, flip_test=args.flip_test,
                                pck_threshold=args.pck_threshold, verbose=1 if progress else 0)
    names = [k for k in _METRIC_ORDER if k in stats] + [k for k in stats if k not in _METRIC_ORDER]
    width = max(len(k) for k in names)
    for name in names:
        value = stats[name]
        text = f"{value:.2f} px" if name == "epe" else f"{value:.4f}"
        print(f"{name.ljust(width)}  {text}")
    if args.json:
        record = {
            "preset": args.preset,
            "annotations": args.annotations,
            "detections": args.detections,
            "boxes": "detections" if args.detections else "ground_truth",
            "instances": len(dataset),
            "metrics": {k: float(v) for k, v in stats.items()},
        }
        with atomic_write(args.json, "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
    return 0


def _add_evaluate(subparsers):
    p = subparsers.add_parser(
        "evaluate",
        help="measure COCO AP / PCKh / PCK of a preset on an annotated dataset",
        description="Evaluate a top-down model as a user runs it: every person box (ground truth, or detections "
        "with --detections) is cropped with the preset's settings, keypoints are decoded to image pixels and "
        "scored: COCO keypoint AP/AR with pycocotools (mmpose rescoring and OKS-NMS), MPII PCKh@0.5, or PCK. "
        "Prints one metric per line.",
    )
    p.add_argument("--preset", required=True, metavar="NAME_OR_DIR",
                   help="registered preset name (`keras-pose presets`), preset directory, or checkpoint URL")
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
    p.add_argument("--batch-size", dest="batch_size", type=_positive_int, default=32, metavar="N",
                   help="crops per forward pass (default 32)")
    p.add_argument("--flip-test", dest="flip_test", action="store_true", default=None,
                   help="average with the mirrored crops (default: as the preset's decoding says)")
    p.add_argument("--no-flip-test", dest="flip_test", action="store_false", help="do not use the flip test")
    p.add_argument("--dataset", metavar="D", help="multi-dataset presets (ViTPose++): which keypoint set to evaluate")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stdout is not a terminal)")
    p.set_defaults(handler=_cmd_evaluate)


def _isatty():
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------
def _cmd_train(args):
    from keras_pose.training.train_config import describe_previous_run, load_train_config, train_from_config

    overrides = list(args.set or [])
    for flag, key in (("epochs", "train.epochs"), ("batch_size", "train.batch_size"),
                      ("steps_per_epoch", "train.steps_per_epoch"), ("output_dir", "output.dir"),
                      ("preset", "model.preset")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append((key, value))
    if args.preset is not None:
        # The preset brings its architecture and input size: drop the config's.
        overrides[:0] = [("model.backbone", {}), ("model.head", {}), ("model.input_size", None)]
    if args.overwrite:
        overrides.append(("output.overwrite", True))
    if args.discard_previous_run:
        overrides.append(("output.discard_previous_run", True))
    # Path values of flags and --set are relative to the working directory.
    config = load_train_config(args.config, overrides=overrides)
    if args.dry_run:
        out = config["output"]
        previous = describe_previous_run(out["dir"])
        sys.stdout.write(config.to_yaml())
        if previous is not None:
            action = ("would delete it (--discard-previous-run)" if out["discard_previous_run"] else
                      "would move it to previous_runs/ (--overwrite)" if out["overwrite"] else
                      "would refuse to start: give another --output-dir, --overwrite or --discard-previous-run")
            print(f"note: output.dir {out['dir']!r} holds {previous['summary']}; train {action}.", file=sys.stderr)
        return 0
    result = train_from_config(config, verbose=0 if args.quiet else 1)
    metrics = result.metrics
    best = metrics.get("best") or {}
    monitor = metrics["monitor"]
    line = f"{monitor} {best[monitor]:.4f} (epoch {metrics['best_epoch']})" if monitor in best else "no evaluation"
    print(f"Trained {metrics['epochs']} epochs x {metrics['steps_per_epoch']} steps: best {line}.")
    print(f"Preset: {result.preset_dir} (load with keras_pose.from_preset); history: "
          f"{result.files['history.csv']}")
    if result.files.get("previous_run"):
        print(f"The earlier run in the output folder was moved to {result.files['previous_run']}.")
    return 0


def _add_train(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train or fine-tune a model from a YAML/JSON config",
        description="Train a top-down model as a config file says (schema: keras_pose.training.train_config; "
        "documented sample: examples/train_config.yaml): model (a preset to fine-tune, or an architecture to "
        "build), keypoint spec, datasets, batch size, epochs, learning-rate schedule, augmentation, validation "
        "metric and output folder. Writes history.csv/json, the best checkpoint, metrics.json, "
        "training_curves.png and a preset folder (keras_pose.from_preset(DIR)) into the output folder. "
        "Relative paths inside the config are relative to the config file. An output folder that holds an earlier "
        "run (finished or killed) is refused, listing its checkpoints, unless --overwrite (move it to "
        "previous_runs/) or --discard-previous-run (delete it) says what to do with it. Training stops with an "
        "error at the first NaN/Inf loss, keeping the last finite checkpoint and writing no preset.",
    )
    p.add_argument("config", metavar="CONFIG", help="training config, .yaml/.yml or .json")
    p.add_argument("--output-dir", dest="output_dir", metavar="DIR", help="override output.dir")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="override train.epochs")
    p.add_argument("--batch-size", dest="batch_size", type=_positive_int, metavar="N", help="override train.batch_size")
    p.add_argument("--steps-per-epoch", dest="steps_per_epoch", type=_positive_int, metavar="N",
                   help="override train.steps_per_epoch (default: one pass over the training set)")
    p.add_argument("--preset", metavar="NAME_OR_DIR",
                   help="fine-tune this preset (sets model.preset; the config's model.backbone, model.head and "
                   "model.input_size are dropped: the preset brings its own)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config key, dotted, value in YAML (repeatable), e.g. "
                   "--set train.learning_rate.base=1e-3 --set train.augmentation=false")
    p.add_argument("--overwrite", action="store_true",
                   help="start over in an output folder that holds an earlier run: the earlier run (checkpoints, "
                   "preset, history) is moved to OUTPUT_DIR/previous_runs/<its start time>/, nothing is deleted "
                   "(output.overwrite)")
    p.add_argument("--discard-previous-run", dest="discard_previous_run", action="store_true",
                   help="start over in an output folder that holds an earlier run and DELETE the earlier run: its "
                   "best and last checkpoints and its preset are lost (output.discard_previous_run)")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="check the config and print it resolved (defaults filled, paths absolute); do not train")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch messages")
    p.set_defaults(handler=_cmd_train)


# --------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------
def _cmd_export(args):
    import os

    import numpy as np

    import keras_pose
    from keras_pose.export import check_export_path, export_model, load_exported, read_metadata, representative_crops

    from keras_pose.export.exporters import MAX_ONNX_OPSET, MIN_ONNX_OPSET

    # Argument checks before the (slow) model load.
    suffix = os.path.splitext(args.output)[1].lower()
    by_suffix = {".tflite": "tflite", ".onnx": "onnx"}
    fmt = args.format or by_suffix.get(suffix)
    if fmt is None:
        raise CLIError(f"Cannot tell the export format from {args.output!r}: end it in .tflite or .onnx, or pass "
                       "--format tflite|onnx.")
    if suffix in by_suffix and by_suffix[suffix] != fmt:
        raise CLIError(f"--format {fmt} but {args.output!r} ends in {suffix}; use a .{fmt} path or --format "
                       f"{by_suffix[suffix]}.")
    if fmt == "onnx" and not MIN_ONNX_OPSET <= args.opset <= MAX_ONNX_OPSET:
        raise CLIError(f"--opset {args.opset} is not supported: ONNX opsets {MIN_ONNX_OPSET}..{MAX_ONNX_OPSET} "
                       "(default 17).")
    if args.int8_io and not (fmt == "tflite" and args.quantization == "int8"):
        raise CLIError("--int8-io applies to TFLite int8 exports only (--quantization int8, a .tflite output).")
    if args.int8_io and args.include_decode:
        raise CLIError("--int8-io with --include-decode would quantise the keypoints to int8 steps; drop one of "
                       "them (decode host-side, or keep float32 I/O).")
    # The destination (a writable folder, not a folder itself) before the slow load and conversion.
    fmt, output = check_export_path(args.output, fmt)
    if args.calibration_annotations and not os.path.isfile(args.calibration_annotations):
        raise CLIError(f"Calibration annotation file {args.calibration_annotations!r} does not exist.")
    if args.quantization == "int8" and not args.calibration_annotations:
        raise CLIError("--quantization int8 needs calibration crops: pass --calibration-annotations FILE (a "
                       "COCO-format keypoint json, e.g. person_keypoints_val2017.json) and --calibration-image-root.")
    kwargs = {"dataset": args.dataset} if args.dataset else {}
    model = keras_pose.from_preset(args.preset, **kwargs)
    calibration = None
    if args.calibration_annotations:
        calibration = representative_crops(model, args.calibration_annotations, args.calibration_image_root,
                                           num_samples=args.num_calibration)
    quantization = None if args.quantization == "none" else args.quantization
    batch_size = None if args.batch_size == "dynamic" else int(args.batch_size)
    print(f"Exporting {type(model).__name__} ({model.count_params():,} parameters) to {fmt}"
          f"{'' if quantization is None else ' ' + quantization} ...", file=sys.stderr)
    path = export_model(
        model,
        output,
        format=fmt,
        quantization=quantization,
        representative_dataset=calibration,
        num_calibration_samples=args.num_calibration,
        batch_size=batch_size,
        include_decode=args.include_decode,
        all_outputs=args.all_outputs,
        opset=args.opset,
        int8_io=args.int8_io,
        preset=args.preset,
    )
    metadata = read_metadata(path)
    outputs = ", ".join(f"{o['name']} {o['shape']}" for o in metadata.get("outputs", []))
    print(f"Wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB, {metadata['format']}, quantization "
          f"{metadata.get('quantization') or 'none'}) and its metadata {path}.json")
    print(f"input {metadata['input']['name']} {metadata['input']['shape']}; outputs {outputs}")
    if not args.no_verify:
        if calibration is not None:
            crops = calibration[: max(1, min(4, len(calibration)))]
        else:
            rng = np.random.default_rng(0)
            crops = rng.uniform(0, 255, (2, *model.image_size, 3)).astype(np.uint8)
            crops = model.normalize_images(crops)
        runner = load_exported(path)
        exported = runner.heatmaps(crops)
        reference = model.predict_heatmaps(crops, flip_test=False)
        diff = float(np.max(np.abs(exported - reference)))
        scale = float(np.max(np.abs(reference))) or 1.0
        source = "calibration crops" if calibration is not None else "random crops"
        print(f"check: max |heatmap difference| vs Keras on {len(crops)} {source}: {diff:.3g} "
              f"({100 * diff / scale:.2g}% of the peak)")
    return 0


def _add_export(subparsers):
    p = subparsers.add_parser(
        "export",
        help="export a preset to TFLite (LiteRT) or ONNX, with a metadata JSON",
        description="Export a top-down model for mobile or servers. The exported graph takes normalised crops "
        "(B, H, W, 3) float32 and returns the final heatmaps (plus keypoints and scores with --include-decode); "
        "<output>.json beside it records the input, normalisation, keypoints, skeleton and codec. The file is "
        "checked against Keras after the export. Needs the TensorFlow backend.",
    )
    p.add_argument("--preset", required=True, metavar="NAME_OR_DIR",
                   help="registered preset name (`keras-pose presets`), preset directory, or checkpoint URL")
    p.add_argument("--output", required=True, metavar="PATH",
                   help="exported model file (.tflite or .onnx; the extension picks the format unless --format)")
    p.add_argument("--format", choices=("tflite", "onnx"), help="output format (default: from the extension)")
    p.add_argument("--quantization", choices=("none", "float16", "int8"), default="none",
                   help="none (float32), float16 weights, or int8 (needs --calibration-annotations)")
    p.add_argument("--calibration-annotations", dest="calibration_annotations", metavar="FILE",
                   help="int8 calibration: COCO-format keypoint json whose person crops calibrate the ranges")
    p.add_argument("--calibration-image-root", dest="calibration_image_root", metavar="DIR",
                   help="folder of the calibration images (default: the annotation file's folder)")
    p.add_argument("--num-calibration", dest="num_calibration", type=_positive_int, default=100, metavar="N",
                   help="the most calibration crops to use (default 100)")
    p.add_argument("--batch-size", dest="batch_size", default="1", type=_batch_arg, metavar="N|dynamic",
                   help="static batch of the exported graph (default 1), or 'dynamic'")
    p.add_argument("--include-decode", dest="include_decode", action="store_true",
                   help="add keypoints (B, K, 2) and scores (B, K) outputs: an argmax decode in the graph")
    p.add_argument("--all-outputs", dest="all_outputs", action="store_true",
                   help="export every raw output (CPM stages, Hourglass stacks, CPN levels), not only the final "
                   "heatmaps")
    p.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset, 13..18 (default 17)")
    p.add_argument("--int8-io", dest="int8_io", action="store_true",
                   help="TFLite int8 only: int8 input and outputs instead of float32")
    p.add_argument("--dataset", metavar="D", help="multi-dataset presets (ViTPose++): which expert and head to export")
    p.add_argument("--no-verify", dest="no_verify", action="store_true",
                   help="skip running the exported file and comparing it with Keras")
    p.set_defaults(handler=_cmd_export)


def _batch_arg(text):
    if str(text).lower() == "dynamic":
        return "dynamic"
    _positive_int(text)
    return str(int(text))


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
# Verb registration: each adds one sub-parser.
VERBS = [_add_presets, _add_convert, _add_predict, _add_evaluate, _add_train, _add_export]


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


# OSError numbers that describe the user's files or machine, not a bug: the
# message (with the path) is the whole story.
_USER_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOENT", "EEXIST", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "ENOSPC", "EDQUOT", "EROFS",
                 "ENAMETOOLONG", "ELOOP", "EMFILE", "ENFILE", "EFBIG", "ENOTEMPTY", "EXDEV", "EBUSY", "ETXTBSY",
                 "EIO")
    if hasattr(errno, name)
)


def _is_user_error(error):
    """Expected failures (bad input, files, disk): one line, exit 1. Anything else is a bug: traceback."""
    from keras_pose.errors import KerasPoseError

    if isinstance(error, (KerasPoseError, CLIError)):
        return True
    if isinstance(error, (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)):
        return True
    return isinstance(error, OSError) and not isinstance(error, BrokenPipeError) and error.errno in _USER_ERRNOS


def _user_error_message(error):
    if isinstance(error, OSError) and error.errno is not None and error.strerror:
        # "[Errno 28] No space left on device: 'x'" -> "No space left on device: 'x'"
        names = [repr(n) for n in (error.filename, error.filename2) if n is not None]
        return error.strerror + (": " + " -> ".join(names) if names else "") + "."
    return " ".join(str(error).split()) or type(error).__name__


def _silence_stdout():
    """After a broken pipe: point stdout at /dev/null so the exit flush is quiet."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):  # no real file descriptor (captured in tests)
        pass


def main(argv=None):
    """Run the CLI; returns the exit status.

    0 ok; 1 a user error (bad input, missing or unwritable files: one line
    on stderr); 2 bad arguments (argparse); 130 interrupted; 141 (as a
    process killed by SIGPIPE) when stdout is closed early, e.g. by
    ``keras-pose presets | head``. Other exceptions are bugs and keep their
    traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a broken pipe surfaces here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - re-raised unless a user error
        if not _is_user_error(e):
            raise
        print(f"{PROG}: error: {_user_error_message(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
