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
                         "scale": [sx, sy], "udp", "keypoints_output",
                         "scores_output", "frame"}
    quantization        null | "float16" | "int8"; plus "int8" details
    opset               (ONNX) the opset
    keras_pose_version, tensorflow_version, converter, created (UTC ISO)
"""

import json
import os

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
