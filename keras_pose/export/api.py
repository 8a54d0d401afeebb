"""Export top-down pose models to TFLite (LiteRT) and ONNX.

```python
import keras_pose
from keras_pose.export import export_model, load_exported, representative_crops

model = keras_pose.from_preset("vitpose_small_coco_256x192")
export_model(model, "pose.onnx")                       # heatmaps, float32
export_model(model, "pose.tflite", quantization="float16")
crops = representative_crops(model, "person_keypoints_val2017.json", "val2017/", 200)
export_model(model, "pose_int8.tflite", quantization="int8",
             representative_dataset=crops, include_decode=True)

runner = load_exported("pose_int8.tflite")             # metadata from pose_int8.tflite.json
outputs = runner(crops[:4])   # {"heatmaps": (4, 64, 48, 17), "keypoints": (4, 17, 2), "scores": (4, 17)}
```

How the graph is made (TensorFlow backend): the model is traced into a
``tf.function`` on a static ``(batch_size, H, W, 3)`` float32 input named
``images`` (``batch_size=None`` gives a dynamic batch), returning a dict of
named outputs. TFLite: Keras' own route -- ``keras.export.ExportArchive``
(tracks every Keras variable) -> SavedModel ->
``tf.lite.TFLiteConverter.from_saved_model``. (``from_concrete_functions``
with the model as trackable left the weights the TF object graph does not
reach -- Keras 3 layers held in Python lists -- as uninitialised
``READ_VARIABLE`` ops: NaN outputs.) ONNX: ``tf2onnx.convert.from_function``
on the same function, as ``keras.Model.export(format="onnx")`` does. Every
export is loaded and run once by its runtime before it is written.

Outputs: the task's ``serving_outputs(raw_outputs)`` hook (top-down:
``"heatmaps"`` (B, h, w, K) float32, the final heatmaps of
`heatmaps_from_outputs`: the last CPM stage / Hourglass stack, CPN's
RefineNet); the metadata's ``decoding`` is the task's ``export_decoding()``. ``all_outputs=True`` exports every raw output under its Keras
output name instead (``stage1`` .. / ``stack1`` .. / ``global_0`` ..
``refine``); the metadata names the final one (``heatmaps_output``).
``include_decode=True`` adds ``"keypoints"`` (B, K, 2) input px and
``"scores"`` (B, K), an argmax decode in the graph
(`keras_pose.export.in_graph_decode`).

Quantisation:

- TFLite ``"float16"``: float16 weights, float32 compute on CPU.
- TFLite ``"dynamic_int8"``: dynamic-range int8: int8 weights, float
  activations quantised per call by the matmul / conv kernels; no
  calibration data.
- TFLite ``"int8"``: static int8 calibrated on ``representative_dataset``;
  float32 input / outputs (the graph quantises on entry and dequantises on
  exit) or int8 ones with ``int8_io=True`` (`load_exported` runners
  (de)quantise them). ``int8_float_ops="auto"`` keeps every op but the
  matmuls with weights and the convolutions float32 in graphs with
  attention (ViTPose), where int8 attention / LayerNorm / softmax / GELU
  are slow on XNNPACK and lose accuracy; CNNs are quantised throughout.
  The converter's own steps (calibrate, then ``mlir_quantize``) run with
  fixes in between: the calibrated range of ``-inf`` max-pool padding
  (`TorchMaxPool2D`, CPM) is set to the padded tensor's range -- with
  ``-inf`` in range every activation quantised to zero -- and the in-graph
  decode is kept float32. The metadata lists the float ops
  (``int8.float_ops``, ``int8.kept_float``). See `keras_pose.export.tflite`.
- ONNX ``"float16"``: float16 weights and activations with float32 I/O
  (onnxruntime's ``convert_float_to_float16``).
- ONNX ``"int8"``: static QDQ quantisation (onnxruntime ``quantize_static``,
  int8 weights per channel, uint8 activations) calibrated on
  ``representative_dataset``; float32 I/O; ``-inf`` padding replaced by
  the padded tensor's minimum (same max pool), the decode kept float32.
"""

import numpy as np

from keras_pose.export import export_metadata
from keras_pose.export import files
from keras_pose.export import onnx_export
from keras_pose.export import serving
from keras_pose.export import tflite
from keras_pose.export.calibration import calibration_samples
from keras_pose.export.options import CALIBRATED
from keras_pose.export.options import ExportError
from keras_pose.export.options import check_backend
from keras_pose.export.options import check_batch_size
from keras_pose.export.options import check_int8_options
from keras_pose.export.options import check_model
from keras_pose.export.options import check_opset
from keras_pose.export.options import check_quantization


def export_model(
    model,
    path,
    format=None,
    quantization=None,
    representative_dataset=None,
    num_calibration_samples=100,
    batch_size=1,
    include_decode=False,
    all_outputs=False,
    opset=17,
    int8_io=False,
    preset=None,
    int8_float_ops="auto",
    image_size=None,
):
    """Export a top-down pose model to TFLite (LiteRT) or ONNX, with metadata.

    The exported graph takes normalised crops ``images`` float32 ``(B, H,
    W, 3)`` NHWC (``(pixel - mean) / std`` per the metadata's
    ``preprocessing``; crop people with ``model.crop_people``) and returns
    the final heatmaps ``heatmaps`` ``(B, h, w, K)`` float32. Decoding stays
    outside the graph unless ``include_decode``. ``<path>.json`` receives the
    metadata (`keras_pose.export.export_metadata`). Needs the TensorFlow
    backend.

    Args:
        model: a `TopDownPoseEstimator` (ViTPose, ViTPosePP, CPN, CPM,
            Hourglass, ...).
        path: output file. Its extension picks the format when ``format`` is
            None; without an extension, ``.tflite`` / ``.onnx`` is added.
        format: "tflite" (alias "litert") or "onnx".
        quantization: None (float32), "float16", "int8" (static,
            calibrated) or "dynamic_int8" (TFLite dynamic-range: int8
            weights, no calibration data).
        representative_dataset: int8 calibration crops (required for int8):
            an array ``(N, H, W, 3)`` of normalised crops, a tf.data.Dataset
            or iterable of crop batches or ``(images, targets)`` tuples, or
            a callable returning one. `representative_crops` makes real ones
            from a COCO-format annotation file.
        num_calibration_samples: the most crops used for calibration.
        batch_size: static batch of the exported graph (1), or None for a
            dynamic batch.
        include_decode: add ``keypoints`` ``(B, K, 2)`` (input px, box
            frame; no sub-pixel refinement) and ``scores`` ``(B, K)``.
        all_outputs: export every raw output (all CPM stages, Hourglass
            stacks, CPN GlobalNet levels) by its Keras name, not only the
            final heatmaps.
        opset: ONNX opset, 13..18 (tf2onnx 1.17 supports up to 18).
        int8_io: TFLite int8 only: int8 input and outputs instead of float32
            (their scale / zero point are in the metadata).
        preset: preset name recorded in the metadata (default: the model's
            ``preset_name`` attribute when present).
        int8_float_ops: TFLite int8 only: the op types kept float32.
            "auto" (default): in graphs with attention (ViTPose) all but the
            matmuls with weights and the convolutions, in convolutional
            graphs none; or a list of TFLite op names (``["SOFTMAX"]``);
            ``()`` quantises every op (see `keras_pose.export.tflite`).
        image_size: the fixed input ``(H, W)`` of the exported graph, pixels.
            Bottom-up models (OpenPose; fully convolutional) only, a
            multiple of the network stride; default ``model.image_size``
            (OpenPose: ``(net_height, net_height)``). Make inputs of that size
            with `keras_pose.export.export_input` (resize to fit, pad right /
            bottom) and group the exported maps with
            `keras_pose.export.group_exported_maps`.

    Returns:
        The path (str) of the exported model file.

    Raises:
        ExportError: unknown format or quantisation, int8 without
            representative data, a non-TensorFlow backend, bad arguments,
            an output path that cannot be written (checked before the
            conversion; `check_export_path`).
    """
    # The destination is checked first: a bad path fails before the conversion.
    fmt, path = files.check_export_path(path, format)
    quantization = check_quantization(quantization)
    check_model(model)
    batch_size = check_batch_size(batch_size)
    check_opset(fmt, opset)
    check_int8_options(fmt, quantization, int8_io, include_decode, representative_dataset)
    image_size = check_image_size(model, image_size)
    if include_decode and getattr(model, "paradigm", None) == "bottom_up":
        raise ExportError(
            f"include_decode=True adds an argmax decode for top-down heatmaps; {type(model).__name__} groups parts "
            "into people outside the graph: export without it and group the exported maps with "
            "keras_pose.export.group_exported_maps(model, outputs, ...)."
        )
    if not (isinstance(int8_float_ops, str) and int8_float_ops.lower() == "auto") and not (
        fmt == "tflite" and quantization == "int8"
    ):
        raise ExportError("int8_float_ops applies to TFLite int8 exports only (format='tflite', quantization='int8').")
    num_calibration_samples = int(num_calibration_samples)
    if num_calibration_samples < 1:
        raise ExportError(f"num_calibration_samples must be >= 1, got {num_calibration_samples}.")
    check_backend(fmt)

    calibration = None
    if quantization in CALIBRATED:
        calibration = calibration_samples(representative_dataset, image_size, num_calibration_samples)
        batch = batch_size or 1
        if len(calibration) < batch:
            raise ExportError(
                f"int8 calibration with batch_size={batch} needs at least {batch} crops; got {len(calibration)}."
            )

    function, spec, output_names, heatmaps_output = serving.build_serving_function(
        model, batch_size=batch_size, include_decode=include_decode, all_outputs=all_outputs, image_size=image_size
    )
    if fmt == "tflite":
        model_bytes, quant_info = tflite.convert(
            model, function, spec, quantization, calibration, int8_io, include_decode, int8_float_ops
        )
    else:
        proto, quant_info = onnx_export.convert(function, spec, opset, quantization, calibration)
        model_bytes = proto.SerializeToString()

    runner = _check_runs(model, model_bytes, fmt, batch_size, image_size)
    files.write_model_file(path, model_bytes)
    metadata = export_metadata.build_metadata(
        model,
        fmt,
        path,
        model_bytes,
        runner,
        {
            "output_names": [n for n in output_names if n in runner.output_details] or list(runner.output_details),
            "heatmaps_output": heatmaps_output,
            "include_decode": bool(include_decode),
            "all_outputs": bool(all_outputs),
            "quantization": quantization,
            "batch_size": batch_size,
            "opset": opset,
            "int8_io": bool(int8_io),
            "num_calibration": 0 if calibration is None else len(calibration),
            "quant_info": quant_info,
            "preset": preset if preset is not None else getattr(model, "preset_name", None),
            "image_size": image_size,
        },
    )
    files.write_or_explain(path, lambda: export_metadata.write_metadata(path, metadata))
    return path


def check_image_size(model, image_size):
    """The export input ``(H, W)``: ``model.image_size``, or another size for fully convolutional bottom-up models.

    Raises:
        ExportError: another size for a model with a fixed input (top-down
            crops), or a size that is not positive multiples of the stride.
    """
    default = tuple(int(v) for v in model.image_size)
    if image_size is None:
        return default
    try:
        size = tuple(int(v) for v in image_size)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or any(v != float(u) for v, u in zip(size, image_size)):
        raise ExportError(f"image_size must be (height, width) in pixels, got {image_size!r}.")
    if size == default:
        return size
    if getattr(model, "paradigm", None) != "bottom_up":
        raise ExportError(
            f"image_size={list(size)}: {type(model).__name__} takes inputs of its own size {list(default)} only; "
            "export without image_size (an input size of your choice applies to bottom-up models such as OpenPose)."
        )
    stride = int(model.test_cfg.get("stride", 8))
    if any(v < stride or v % stride for v in size):
        raise ExportError(
            f"image_size={list(size)}: {type(model).__name__} needs positive multiples of its stride {stride} "
            f"(e.g. {[max(stride, -(-v // stride) * stride) for v in size]})."
        )
    return size


def _check_runs(model, model_bytes, fmt, batch_size, image_size):
    """Open and run the converted model on zeros with its runtime, before anything is written.

    Returns:
        the runner (`keras_pose.export.runtime`), for the metadata's input / output details.

    Raises:
        ExportError: non-finite outputs where the Keras model is finite.
    """
    from keras_pose.export.runtime import load_exported

    runner = load_exported(model_bytes, format=fmt, metadata=False)
    zeros = np.zeros((batch_size or 1, *image_size, 3), np.float32)
    probe = runner(zeros)
    bad = [name for name, value in probe.items() if value.dtype.kind == "f" and not np.all(np.isfinite(value))]
    if bad:
        reference = np.asarray(model.heatmaps_from_outputs(model.predict_on_batch(zeros)), np.float32)
        if np.all(np.isfinite(reference)):
            raise ExportError(
                f"The exported {fmt} model returns non-finite values in {bad} on a zero input where the "
                "Keras model is finite: the conversion is broken (please report it with the model config)."
            )
    return runner
