"""Export for mobile and servers: TFLite (LiteRT) and ONNX, with metadata.

- `export_model(model, path, format="tflite" | "onnx", quantization=None |
  "float16" | "int8" | "dynamic_int8", ...)`: the final heatmaps (optionally every raw
  output, optionally an in-graph argmax decode), plus ``<path>.json``
  metadata (input, normalisation, keypoints, skeleton, codec, outputs).
- `representative_crops(model, annotation_file, image_root)`: real
  normalised person crops for int8 calibration.
- `representative_images(model, annotation_file_or_paths, num_samples,
  image_size)`: real whole images prepared as bottom-up (OpenPose) and
  one-stage (RTMO) exports take them; `export_input` one image,
  `group_exported_maps` people from an exported bottom-up model's maps
  (grouping stays outside the graph).
- `load_exported(path)`: a runner (LiteRT interpreter / onnxruntime) that
  returns float32 NumPy outputs by name.

Modules: `api` (export_model), `options` (formats, quantisations, argument
checks, ExportError), `files` (destination checks, temp folders),
`calibration`, `whole_images`, `serving` (the graph from the task's ``serving_outputs``),
`tflite` + `tflite_graph`, `onnx_export`, `export_metadata`,
`in_graph_decode`, `runtime`.

Export needs the TensorFlow backend; running an export needs only
``ai_edge_litert`` or ``onnxruntime``.
"""

from keras_pose.export.api import export_model
from keras_pose.export.calibration import calibration_samples, representative_crops
from keras_pose.export.export_metadata import metadata_path, read_metadata
from keras_pose.export.files import check_export_path, clean_stale_temp_folders
from keras_pose.export.in_graph_decode import argmax_decode_numpy, argmax_decode_tf, decode_scale
from keras_pose.export.options import FORMATS, QUANTIZATIONS, ExportError
from keras_pose.export.serving import build_serving_function
from keras_pose.export.runtime import ExportedModelRunner, ONNXRunner, TFLiteRunner, load_exported
from keras_pose.export.whole_images import export_input, group_exported_maps, representative_images

__all__ = [
    "FORMATS",
    "QUANTIZATIONS",
    "ExportError",
    "ExportedModelRunner",
    "ONNXRunner",
    "TFLiteRunner",
    "argmax_decode_numpy",
    "argmax_decode_tf",
    "build_serving_function",
    "calibration_samples",
    "check_export_path",
    "clean_stale_temp_folders",
    "decode_scale",
    "export_input",
    "export_model",
    "group_exported_maps",
    "load_exported",
    "metadata_path",
    "read_metadata",
    "representative_crops",
    "representative_images",
]
