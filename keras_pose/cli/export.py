"""`keras-pose export`: a preset to TFLite (LiteRT) or ONNX, with a metadata JSON, checked against Keras."""

import os
import sys

from keras_pose.cli.common import (
    CLIError,
    add_preset_argument,
    dataset_kwargs,
    load_model,
    positive_int,
    quiet_native_output,
    start_backend,
)

_FORMAT_BY_SUFFIX = {".tflite": "tflite", ".onnx": "onnx"}


def _check_arguments(args, min_opset, max_opset):
    """The export format and flag combinations, before the (slow) model load. Returns the format."""
    suffix = os.path.splitext(args.output)[1].lower()
    fmt = args.format or _FORMAT_BY_SUFFIX.get(suffix)
    if fmt is None:
        raise CLIError(f"Cannot tell the export format from {args.output!r}: end it in .tflite or .onnx, or pass "
                       "--format tflite|onnx.")
    if suffix in _FORMAT_BY_SUFFIX and _FORMAT_BY_SUFFIX[suffix] != fmt:
        raise CLIError(f"--format {fmt} but {args.output!r} ends in {suffix}; use a .{fmt} path or --format "
                       f"{_FORMAT_BY_SUFFIX[suffix]}.")
    if fmt == "onnx" and not min_opset <= args.opset <= max_opset:
        raise CLIError(f"--opset {args.opset} is not supported: ONNX opsets {min_opset}..{max_opset} (default 17).")
    if args.int8_io and not (fmt == "tflite" and args.quantization == "int8"):
        raise CLIError("--int8-io applies to TFLite int8 exports only (--quantization int8, a .tflite output).")
    if args.int8_io and args.include_decode:
        raise CLIError("--int8-io with --include-decode would quantise the keypoints to int8 steps; drop one of "
                       "them (decode host-side, or keep float32 I/O).")
    if args.quantization == "dynamic_int8" and fmt != "tflite":
        raise CLIError("--quantization dynamic_int8 is a TFLite export (a .tflite output); for ONNX use int8 or "
                       "float16.")
    if args.calibration_annotations and not os.path.isfile(args.calibration_annotations):
        raise CLIError(f"Calibration annotation file {args.calibration_annotations!r} does not exist.")
    missing = [p for p in args.calibration_images or () if not os.path.exists(p)]
    if missing:
        raise CLIError(f"Calibration image(s) {missing[:3]} do not exist.")
    if args.calibration_images and args.calibration_annotations:
        raise CLIError("Give one calibration source: --calibration-annotations FILE or --calibration-images PATH ...")
    if args.quantization == "int8" and not (args.calibration_annotations or args.calibration_images):
        raise CLIError("--quantization int8 needs calibration data: pass --calibration-annotations FILE (a "
                       "COCO-format keypoint json, e.g. person_keypoints_val2017.json) and --calibration-image-root, "
                       "or (whole-image models: OpenPose, RTMO) --calibration-images IMAGE|FOLDER ...")
    if args.image_size is not None and any(v < 1 for v in args.image_size):
        raise CLIError(f"--image-size takes a positive height and width, got {args.image_size}.")
    return fmt


def _calibration(args, model):
    """int8 calibration inputs: person crops (top-down) or whole images prepared as the export takes them."""
    from keras_pose.export import representative_crops, representative_images

    if getattr(model, "paradigm", None) in ("bottom_up", "one_stage"):
        source = args.calibration_images or args.calibration_annotations
        if source is None:
            return None
        if isinstance(source, list) and len(source) == 1:
            source = source[0]  # one json, folder or image
        return representative_images(model, source, num_samples=args.num_calibration, image_size=args.image_size,
                                     image_root=args.calibration_image_root)
    if args.calibration_images:
        raise CLIError(f"{type(model).__name__} calibrates on person crops: use --calibration-annotations FILE (a "
                       "COCO-format keypoint json) instead of --calibration-images.")
    if not args.calibration_annotations:
        return None
    return representative_crops(model, args.calibration_annotations, args.calibration_image_root,
                                num_samples=args.num_calibration)


def _verify(model, path, calibration, load_exported):
    """Print the largest heatmap difference between the exported file and Keras."""
    import numpy as np

    if calibration is not None:
        crops = calibration[: max(1, min(4, len(calibration)))]
    else:
        rng = np.random.default_rng(0)
        crops = rng.uniform(0, 255, (2, *model.image_size, 3)).astype(np.uint8)
        crops = model.normalize_images(crops)
    exported = load_exported(path).heatmaps(crops)
    reference = model.predict_heatmaps(crops, flip_test=False)
    diff = float(np.max(np.abs(exported - reference)))
    scale = float(np.max(np.abs(reference))) or 1.0
    source = "calibration crops" if calibration is not None else "random crops"
    print(f"check: max |heatmap difference| vs Keras on {len(crops)} {source}: {diff:.3g} "
          f"({100 * diff / scale:.2g}% of the peak)")


def _check_one_stage(args, quantization, fmt):
    int8_ok = quantization == "int8" and fmt == "onnx"
    if quantization not in (None, "float16") and not int8_ok or args.int8_io or args.all_outputs or \
            args.include_decode or args.image_size is not None:
        raise CLIError(f"{args.preset!r} is a one-stage model: it exports end to end (decoding and NMS in the graph) "
                       "at its input size in float32, float16, or int8 to ONNX (the network int8, the decoding "
                       "float32); drop --quantization dynamic_int8 / TFLite int8, --int8-io, --all-outputs, "
                       "--include-decode, --image-size.")


def _export_one_stage(args, model, output, fmt, quantization, calibration):
    """A one-stage model (RTMO) end to end: decoding and NMS in the graph (`export_one_stage`)."""
    from keras_pose.export.one_stage_export import export_one_stage

    _check_one_stage(args, quantization, fmt)
    return export_one_stage(model, output, format=fmt, quantization=quantization,
                            batch_size=None if args.batch_size == "dynamic" else int(args.batch_size),
                            opset=args.opset, representative_dataset=calibration,
                            num_calibration_samples=args.num_calibration)


def _verify_one_stage(model, path, load_exported):
    """Print the largest keypoint / box difference (model-input pixels) between the exported file and Keras."""
    import numpy as np

    x = np.random.default_rng(0).uniform(0, 255, (1, *model.image_size, 3)).astype(np.float32)
    exported = load_exported(path)(x)
    reference = {k: np.asarray(v) for k, v in model.end_to_end_model().predict_on_batch(x).items()}
    valid = reference["valid"][0].astype(bool)
    same = bool(np.array_equal(exported["valid"][0].astype(bool), valid))
    diffs = [float(np.abs(exported[k][0][valid] - reference[k][0][valid]).max()) if valid.any() else 0.0
             for k in ("boxes", "keypoints")]
    print(f"check: same people as Keras on a random image: {same} ({int(valid.sum())}); max |box difference| "
          f"{diffs[0]:.3g} px, max |keypoint difference| {diffs[1]:.3g} px")


def _verify_bottom_up(model, path, load_exported, image_size):
    """Print the largest heatmap / PAF difference (relative to the output range) on a random image."""
    import numpy as np

    from keras_pose.export import export_input

    image = np.random.default_rng(0).integers(0, 256, (*image_size, 3), dtype=np.uint8)
    x = export_input(model, image, image_size)[None]
    exported = load_exported(path)(x)
    reference = {k: np.asarray(v) for k, v in model.serving_outputs(model.predict_on_batch(x)).items()}
    parts = []
    for name in sorted(set(exported) & set(reference)):
        span = float(reference[name].max() - reference[name].min()) or 1.0
        diff = float(np.abs(exported[name] - reference[name]).max())
        parts.append(f"{name} {diff:.3g} ({100 * diff / span:.2g}% of the range)")
    print(f"check: max |difference| vs Keras on a random image: {'; '.join(parts)}")


def _export(args, model, output, fmt, quantization, calibration, export_model):
    if getattr(model, "paradigm", None) == "one_stage":
        return _export_one_stage(args, model, output, fmt, quantization, calibration)
    return export_model(
        model,
        output,
        format=fmt,
        quantization=quantization,
        representative_dataset=calibration,
        num_calibration_samples=args.num_calibration,
        batch_size=None if args.batch_size == "dynamic" else int(args.batch_size),
        include_decode=args.include_decode,
        all_outputs=args.all_outputs,
        opset=args.opset,
        int8_io=args.int8_io,
        preset=args.preset,
        image_size=args.image_size,
    )


def run(args):
    start_backend(args)
    from keras_pose.export import ExportError, check_export_path, export_model, load_exported, read_metadata
    from keras_pose.export.options import MAX_ONNX_OPSET, MIN_ONNX_OPSET

    fmt = _check_arguments(args, MIN_ONNX_OPSET, MAX_ONNX_OPSET)
    # The destination (a writable folder, not a folder itself) before the slow load and conversion.
    fmt, output = check_export_path(args.output, fmt)
    model = load_model(args, **dataset_kwargs(args))
    quantization = None if args.quantization == "none" else args.quantization
    paradigm = getattr(model, "paradigm", None)
    if paradigm == "one_stage":
        _check_one_stage(args, quantization, fmt)
    if args.image_size is not None and paradigm != "bottom_up":
        raise CLIError(f"--image-size applies to bottom-up models (OpenPose); {type(model).__name__} exports at its "
                       f"input size {list(model.image_size)}.")
    if paradigm == "bottom_up":
        from keras_pose.export.api import check_image_size

        try:
            args.image_size = list(check_image_size(model, args.image_size))
        except ExportError as error:
            raise CLIError(str(error).replace("image_size=", "--image-size ")) from None
    calibration = _calibration(args, model)
    print(f"Exporting {type(model).__name__} ({model.count_params():,} parameters) to {fmt}"
          f"{'' if quantization is None else ' ' + quantization} ...", file=sys.stderr)
    with quiet_native_output(args):  # the converters' and interpreters' native log lines
        path = _export(args, model, output, fmt, quantization, calibration, export_model)
    metadata = read_metadata(path)
    outputs = ", ".join(f"{o['name']} {o['shape']}" for o in metadata.get("outputs", []))
    print(f"Wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB, {metadata['format']}, quantization "
          f"{metadata.get('quantization') or 'none'}) and its metadata {path}.json")
    print(f"input {metadata['input']['name']} {metadata['input']['shape']}; outputs {outputs}")
    if not args.no_verify and paradigm == "one_stage":
        _verify_one_stage(model, path, load_exported)
    elif not args.no_verify and paradigm == "bottom_up":
        with quiet_native_output(args):
            _verify_bottom_up(model, path, load_exported, args.image_size)
    elif not args.no_verify:
        with quiet_native_output(args):
            _verify(model, path, calibration, load_exported)
    return 0


def _batch_arg(text):
    if str(text).lower() == "dynamic":
        return "dynamic"
    positive_int(text)
    return str(int(text))


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export",
        help="export a preset to TFLite (LiteRT) or ONNX, with a metadata JSON",
        description="Export a model for mobile or servers. Top-down: the exported graph takes normalised crops "
        "(B, H, W, 3) float32 and returns the final heatmaps (plus keypoints and scores with --include-decode); "
        "bottom-up (OpenPose): whole images at --image-size, returning heatmaps and PAFs (group them with "
        "keras_pose.export.group_exported_maps); one-stage (RTMO): letterboxed images, returning boxes, scores and "
        "keypoints (decoding and NMS in the graph); "
        "<output>.json beside it records the input, normalisation, keypoints, skeleton and codec. The file is "
        "checked against Keras after the export. Needs the TensorFlow backend.",
    )
    add_preset_argument(p)
    p.add_argument("--output", required=True, metavar="PATH",
                   help="exported model file (.tflite or .onnx; the extension picks the format unless --format)")
    p.add_argument("--format", choices=("tflite", "onnx"), help="output format (default: from the extension)")
    p.add_argument("--quantization", choices=("none", "float16", "int8", "dynamic_int8"), default="none",
                   help="none (float32), float16 weights, int8 (static, needs --calibration-annotations) or "
                   "dynamic_int8 (TFLite: int8 weights, no calibration data)")
    p.add_argument("--calibration-annotations", dest="calibration_annotations", metavar="FILE",
                   help="int8 calibration: COCO-format keypoint json whose person crops (top-down) or whole images "
                   "(OpenPose, RTMO) calibrate the ranges")
    p.add_argument("--calibration-images", dest="calibration_images", nargs="+", metavar="PATH",
                   help="int8 calibration of whole-image models (OpenPose, RTMO): image files, a folder of images or "
                   "a COCO-format json whose images are used, prepared as the export's input")
    p.add_argument("--image-size", dest="image_size", nargs=2, type=int, metavar=("H", "W"),
                   help="bottom-up models (OpenPose): the fixed input size of the export, multiples of 8 (default "
                   "net_height x net_height)")
    p.add_argument("--calibration-image-root", dest="calibration_image_root", metavar="DIR",
                   help="folder of the calibration images (default: the annotation file's folder)")
    p.add_argument("--num-calibration", dest="num_calibration", type=positive_int, default=100, metavar="N",
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
    p.set_defaults(handler=run)
    return p


__all__ = ["add_parser", "run"]
