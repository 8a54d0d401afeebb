"""Export options: formats, quantisations, names, and the checks of `export_model`'s arguments.

The lowest layer of `keras_pose.export`: every other export module imports
its constants and `ExportError` from here, and it imports none of them.
"""

from keras_pose.errors import KerasPoseError

FORMATS = ("tflite", "onnx")
FORMAT_ALIASES = {"tflite": "tflite", "litert": "tflite", "onnx": "onnx"}
EXTENSIONS = {"tflite": ".tflite", "onnx": ".onnx"}
QUANTIZATIONS = (None, "float16", "int8", "dynamic_int8")
QUANTIZATION_ALIASES = {
    None: None,
    "none": None,
    "float32": None,
    "fp32": None,
    "float16": "float16",
    "fp16": "float16",
    "int8": "int8",
    "dynamic_int8": "dynamic_int8",
    "dynamic": "dynamic_int8",
}
# Quantisations that calibrate activation ranges on representative crops.
CALIBRATED = ("int8",)
MIN_ONNX_OPSET = 13
MAX_ONNX_OPSET = 18  # tf2onnx 1.17
INPUT_NAME = "images"
RESERVED_OUTPUTS = ("keypoints", "scores")
# The attributes `export_model` reads from a model (the task's export hooks among them).
MODEL_ATTRIBUTES = (
    "image_size",
    "codec",
    "keypoint_spec",
    "heatmaps_from_outputs",
    "preprocessor",
    "serving_outputs",
    "export_decoding",
)


class ExportError(KerasPoseError, ValueError):
    """An export request cannot be carried out; the message says how to fix it."""


def check_quantization(quantization):
    """The canonical quantisation name (None, "float16", "int8", "dynamic_int8") of an alias.

    Raises:
        ExportError: an unknown name, listing the supported ones.
    """
    key = quantization.lower() if isinstance(quantization, str) else quantization
    if key not in QUANTIZATION_ALIASES:
        raise ExportError(
            f"Unknown quantization {quantization!r}. Supported: None (float32), 'float16' "
            "(float16 weights), 'int8' (full-integer, needs representative_dataset) or 'dynamic_int8' "
            "(int8 weights, activations quantised at run time; no calibration data)."
        )
    return QUANTIZATION_ALIASES[key]


def check_model(model):
    """Raise an ExportError when ``model`` lacks the attributes a keras-pose export reads."""
    missing = [a for a in MODEL_ATTRIBUTES if not hasattr(model, a)]
    if missing:
        raise ExportError(
            f"export_model exports keras-pose pose models (ViTPose, CPN, CPM, Hourglass, ...); "
            f"{type(model).__name__} lacks {missing}. For a plain Keras model use "
            "keras.Model.export(path, format='onnx' | 'litert')."
        )


def check_backend(fmt):
    """Raise an ExportError unless Keras runs on TensorFlow (the converters trace TF graphs)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    what = "LiteRT / TFLite" if fmt == "tflite" else "ONNX (through tf2onnx)"
    raise ExportError(
        f"{what} export needs the TensorFlow backend; this process runs Keras on {backend!r}. "
        "Run the export with KERAS_BACKEND=tensorflow set before keras is imported (the weights "
        "carry over: model.save('model.keras') or model.save_to_preset(dir) here, then "
        "keras_pose.from_preset(dir) / keras.saving.load_model under TensorFlow)."
    )


def check_batch_size(batch_size):
    """A positive int, or None (dynamic batch); else an ExportError."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or int(batch_size) < 1:
        raise ExportError(f"batch_size must be a positive integer or None (dynamic), got {batch_size!r}.")
    return int(batch_size)


def check_opset(fmt, opset):
    """Raise an ExportError for an ONNX opset tf2onnx cannot write."""
    if fmt == "onnx" and not MIN_ONNX_OPSET <= int(opset) <= MAX_ONNX_OPSET:
        raise ExportError(
            f"opset={opset} is not supported: tf2onnx converts to ONNX opsets {MIN_ONNX_OPSET}..{MAX_ONNX_OPSET} "
            "(17 is the default and runs on onnxruntime >= 1.14)."
        )


def check_int8_options(fmt, quantization, int8_io, include_decode, representative_dataset):
    """The int8-specific argument checks of `export_model` (int8_io, calibration data)."""
    if int8_io and not (fmt == "tflite" and quantization == "int8"):
        raise ExportError("int8_io=True applies to TFLite int8 exports only (format='tflite', quantization='int8').")
    if int8_io and include_decode:
        raise ExportError(
            "int8_io=True with include_decode=True would quantise the keypoints output to int8 steps; "
            "export the int8 model with float I/O (int8_io=False, the default) for in-graph decoding, "
            "or with int8 I/O and decode host-side (runner.decode / codec.decode)."
        )
    if quantization == "dynamic_int8" and fmt != "tflite":
        raise ExportError(
            "quantization='dynamic_int8' (dynamic-range int8) is a TFLite / LiteRT export; for ONNX use "
            "quantization='int8' (static QDQ, with representative_dataset) or 'float16'."
        )
    if quantization in CALIBRATED and representative_dataset is None:
        raise ExportError(
            "int8 quantization needs calibration data: pass representative_dataset= normalised crops "
            "(N, H, W, 3), e.g. keras_pose.export.representative_crops(model, "
            "'person_keypoints_val2017.json', 'val2017/', num_samples=100), or use "
            "quantization='dynamic_int8' (TFLite) or 'float16', which need none."
        )
