"""The metadata JSON written beside every exported model.

An exported ``.tflite`` / ``.onnx`` file holds only the network. What a
runtime needs around it -- how to crop and normalise the input, which output
holds the final heatmaps, how to decode them, the keypoint names, skeleton,
flip pairs and colours -- goes into ``<model path>.json`` (``pose.tflite``
-> ``pose.tflite.json``), so a TFLite and an ONNX export of one model can
share a folder.

Schema (``"schema": "keras_pose.export/1"``)::

    format              "tflite" | "onnx"
    file                model file name, file_size (bytes), sha256
    model_class         e.g. "ViTPose"; model_name; preset (or null)
    input               {"name", "shape" [B, H, W, 3] (B null = dynamic),
                         "dtype" "float32" | "int8", "layout" "NHWC",
                         "quantization" {"scale", "zero_point"} for int8 I/O}
    image_size          [H, W]; heatmap_size [h, w]
    preprocessing       {"mean", "std" (0..255 units, network channel order),
                         "channel_order" "rgb" | "bgr",
                         "formula" "(pixel - mean) / std", "pixel_range",
                         "preprocessor" (the task's preprocessor config,
                         keras serialized: converter and cropper)}
    keypoints           {"spec", "names", "skeleton" (index pairs),
                         "flip_indices", "keypoint_colors", "limb_colors",
                         "sigmas"}
    decoding            the task's `export_decoding()`: "codec", "padding"
                         (+ "padding_xy", "border"), "warp", "flip_test",
                         "shift_heatmap"
    outputs             [{"name", "shape", "dtype", "kind" "heatmaps" |
                         "keypoints" | "scores", "quantization"?}]
    heatmaps_output     name of the final heatmaps output
    in_graph_decode     null, or {"method": "argmax", "refinement": null,
                         "scale": [sx, sy], "offset": [ox, oy] (input px =
                         (heatmap px + offset) * scale, the codec's
                         `argmax_to_input`), "udp", "keypoints_output",
                         "scores_output", "frame"}
    quantization        null | "float16" | "int8" | "dynamic_int8"; plus a
                        section of that name with the details ("float_ops",
                        "kept_float", "io", "calibration_samples", ...)
    opset               (ONNX) the opset
    keras_pose_version, tensorflow_version, converter, created (UTC ISO)
"""

import datetime
import hashlib
import json
import os

from keras_pose.export.in_graph_decode import decode_offset, decode_scale
from keras_pose.export.options import INPUT_NAME, RESERVED_OUTPUTS
from keras_pose.utils.file_utils import atomic_write

SCHEMA = "keras_pose.export/1"


def metadata_path(path):
    """The metadata JSON path of an exported model: ``<path>.json``."""
    path = os.fspath(path)
    if path.endswith(".json"):
        return path
    return path + ".json"


def write_metadata(path, metadata):
    """Write ``metadata`` atomically to ``metadata_path(path)``; returns that path."""
    target = metadata_path(path)
    with atomic_write(target, "w") as f:
        json.dump(metadata, f, indent=2, sort_keys=False)
        f.write("\n")
    return target


def read_metadata(path):
    """Read the metadata of an exported model.

    Args:
        path: the model file (``.tflite`` / ``.onnx``) or its ``.json``.

    Returns:
        The metadata dict.

    Raises:
        FileNotFoundError: no metadata JSON beside the model.
    """
    target = metadata_path(path)
    if not os.path.isfile(target):
        raise FileNotFoundError(
            f"No export metadata at {target!r}. It is written by keras_pose.export.export_model "
            "beside the model file; re-export the model, or pass the JSON path."
        )
    with open(target) as f:
        return json.load(f)


def preprocessing_metadata(preprocessor):
    """The preprocessing section of the metadata from a task's preprocessor."""
    import keras

    return {
        **preprocessor.image_converter.legacy_config(),
        "formula": "(pixel - mean) / std",
        "pixel_range": [0, 255],
        "preprocessor": keras.saving.serialize_keras_object(preprocessor),
    }


def keypoint_metadata(spec):
    """The keypoint section of the metadata from a `KeypointSpec`."""

    def as_list(values):
        return None if values is None else [[int(v) for v in row] for row in values]

    sigmas = spec.sigmas
    return {
        "spec": spec.name,
        "num_keypoints": spec.num_keypoints,
        "names": list(spec.keypoint_names),
        "skeleton": [[int(a), int(b)] for a, b in spec.skeleton_indices],
        "flip_indices": [int(i) for i in spec.flip_indices],
        "keypoint_colors": as_list(spec.keypoint_colors),
        "limb_colors": as_list(spec.limb_colors),
        "sigmas": None if sigmas is None else [float(s) for s in sigmas],
    }


def versions():
    """Versions of the packages an export depends on ({name: version}; absent ones left out)."""
    versions = {}
    for name in ("keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", None)
        except ImportError:
            pass
    return versions


def _heatmap_size(model, image_size):
    """``[h, w]`` of the output maps: the codec's, or (bottom-up) the input size over the stride, rounded up."""
    if getattr(model, "paradigm", None) == "bottom_up":
        stride = int(model.test_cfg.get("stride", 8))
        return [int(-(-int(v) // stride)) for v in image_size]
    codec = model.codec
    return [int(v) for v in (codec.heatmap_size if codec is not None else model.heatmap_size)]


def build_metadata(model, fmt, path, model_bytes, runner, options):
    """The metadata dict of one export (the schema in this module's docstring).

    The decoding section is the task's `export_decoding()`; input and
    output details come from ``runner`` (the exported file opened by its
    runtime), the rest from ``options`` (`export_model`'s resolved arguments).
    """
    from keras_pose.version import __version__

    h, w = options.get("image_size") or model.image_size
    codec = model.codec
    input_detail = runner.input_details
    outputs = []
    for name in options["output_names"]:
        detail = runner.output_details[name]
        kind = "heatmaps" if name not in RESERVED_OUTPUTS else name
        entry = {"name": name, "shape": detail["shape"], "dtype": detail["dtype"], "kind": kind}
        if name == options["heatmaps_output"]:
            entry["final"] = True
        if detail.get("quantization"):
            entry["quantization"] = detail["quantization"]
        outputs.append(entry)
    decode = None
    if options["include_decode"]:
        decode = {
            "method": "argmax",
            "refinement": None,
            "scale": [float(v) for v in decode_scale(codec)],
            "offset": [float(v) for v in decode_offset(codec)],
            "udp": tuple(codec.heatmap_span) != (codec.heatmap_size[1], codec.heatmap_size[0]),
            "missing_location": [-1.0, -1.0],
            "frame": "input pixels, box frame (keras_pose.geometry.crop_to_image maps them to the image)",
            "keypoints_output": "keypoints",
            "scores_output": "scores",
        }
    quantization = options["quantization"]
    metadata = {
        "schema": SCHEMA,
        "format": fmt,
        "file": os.path.basename(path),
        "file_size": len(model_bytes),
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "model_class": type(model).__name__,
        "model_name": model.name,
        "preset": options["preset"],
        "input": {
            "name": INPUT_NAME,
            "shape": input_detail["shape"],
            "dtype": input_detail["dtype"],
            "layout": "NHWC",
            **({"quantization": input_detail["quantization"]} if input_detail.get("quantization") else {}),
        },
        "image_size": [int(h), int(w)],
        # models without a codec / preprocessor (bottom-up OpenPose) give their own (`export_preprocessing`)
        "heatmap_size": _heatmap_size(model, (h, w)),
        "preprocessing": (preprocessing_metadata(model.preprocessor) if model.preprocessor is not None
                          else model.export_preprocessing()),
        "keypoints": keypoint_metadata(model.keypoint_spec),
        "decoding": model.export_decoding(),
        "outputs": outputs,
        "heatmaps_output": options["heatmaps_output"],
        "all_outputs": bool(options["all_outputs"]),
        "in_graph_decode": decode,
        "quantization": quantization,
        "batch_size": options["batch_size"],
        "keras_pose_version": __version__,
        "converter": (
            "keras ExportArchive -> SavedModel -> tf.lite.TFLiteConverter"
            if fmt == "tflite"
            else "tf2onnx.convert.from_function"
        ),
        "versions": versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if fmt == "onnx":
        metadata["opset"] = int(options["opset"])
    if quantization in ("int8", "dynamic_int8"):
        metadata[quantization] = {
            **({"calibration_samples": int(options["num_calibration"])} if quantization == "int8" else {}),
            "io": "int8" if options["int8_io"] else "float32",
            **options["quant_info"],
        }
    elif quantization == "float16":
        metadata["float16"] = (
            {"weights": "float16", "compute": "float32 on CPU (weights dequantised at load)"}
            if fmt == "tflite"
            else {"weights": "float16", "activations": "float16", "io": "float32"}
        )
    return metadata
