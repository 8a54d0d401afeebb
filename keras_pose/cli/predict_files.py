"""`keras-pose predict`: which files it reads and writes, checked before the model loads.

Inputs are image files, folders of images and video files; ``--output`` is
an image (video) path for one input or a folder for several. Nothing that is
not an image (video) this command could have written is ever replaced: no
folder, no input, no other file.
"""

import os

from keras_pose.cli.common import CLIError, note

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")

# Leading bytes of the files --output may replace (images, videos). A file
# that exists under the output name is overwritten only if it is one of these.
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*")
_VIDEO_SIGNATURES = (b"\x1a\x45\xdf\xa3",)  # Matroska / WebM


def collect_inputs(paths):
    """Expand folders; split into images and videos (folder contents sorted).

    Returns:
        ``(images, videos)``: lists of paths.
    """
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


def image_id(path):
    """The COCO image id of a numeric file name (``000000000785.jpg`` -> 785), else the file name."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return int(stem) if stem.isdigit() else os.path.basename(path)


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
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise CLIError(f"{flag} {path!r} cannot be written: {parent!r} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {path!r} cannot be written: no write permission in {parent!r}.")


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_output_file(target, inputs, flag, video=False):
    """Refuse to write ``target`` over a folder, an input or a file we do not write.

    Returns:
        True when ``target`` is an existing image (video) file to be replaced.
    """
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


def _folder_plan(out, images, videos):
    inputs = images + videos
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--output {out!r} is a file, but {len(inputs)} inputs need an output folder; give a "
                       "folder path (it is created if missing).")
    if not os.path.exists(out) and os.path.splitext(out)[1].lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
        raise CLIError(f"--output {out!r} looks like a file name, but {len(inputs)} inputs need an output "
                       "folder; give a folder path (it is created if missing).")
    _check_parent(os.path.join(out, "x"), "--output")
    plan = {}
    for path in images:
        stem, ext = os.path.splitext(os.path.basename(path))
        plan[path] = os.path.join(out, stem + (ext if ext.lower() in IMAGE_EXTENSIONS else ".png"))
    for path in videos:
        plan[path] = os.path.join(out, os.path.splitext(os.path.basename(path))[0] + ".mp4")
    return plan


def plan_outputs(out, images, videos):
    """The output file of every input, checked before the model is loaded.

    One input: ``out`` is an image (video) file path with a known extension,
    or a folder (an existing one, or a path ending in ``/``). Several inputs:
    ``out`` is a folder (created if missing) receiving ``<input stem><ext>``
    (videos ``.mp4``; images keep their extension when OpenCV writes it,
    else ``.png``). Existing files are replaced only if they are images
    (videos) and never when they are an input; folders are never written
    over.

    Returns:
        ``{input path: output path}`` (empty when ``out`` is None).
    """
    if not out:
        return {}
    inputs = images + videos
    if len(inputs) > 1 or os.path.isdir(out) or out.endswith(("/", os.sep)):
        plan = _folder_plan(out, images, videos)
    else:
        video = bool(videos)
        kinds = VIDEO_EXTENSIONS if video else IMAGE_EXTENSIONS
        ext = os.path.splitext(out)[1].lower()
        if ext not in kinds:
            what = f"extension {ext!r} is not" if ext else "it has no extension, so it is not"
            raise CLIError(f"--output {out!r}: {what} a {'video' if video else 'image'} type this command writes; "
                           f"end it in one of {', '.join(kinds)}, or end it in / for a folder.")
        plan = {inputs[0]: out}
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
        note(f"note: --output replaces the existing file {replaced[0]!r}{more}.")
    return plan


def check_json_output(path, inputs):
    """``--json`` is a writable file path that is no folder and no input."""
    if os.path.isdir(path):
        raise CLIError(f"--json {path!r} is a folder; give a file path for the results JSON.")
    _check_parent(path, "--json")
    for source in inputs:
        if _same_file(source, path):
            raise CLIError(f"--json {path!r} is the input {source!r}; choose another results file.")
