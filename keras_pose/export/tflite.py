"""TFLite (LiteRT) conversion and quantisation.

The route is Keras' own: ``keras.export.ExportArchive`` (tracks every Keras
variable) -> SavedModel -> ``tf.lite.TFLiteConverter.from_saved_model``.

Quantisations (``quantization=``):

- ``"float16"``: float16 weights; XNNPACK computes in float32.
- ``"dynamic_int8"``: dynamic-range int8: int8 weights (per channel), float
  activations that the FULLY_CONNECTED / CONV kernels quantise per call
  (XNNPACK ``qd8`` kernels). No calibration data.
- ``"int8"``: static int8 calibrated on representative crops, in the
  converter's two steps (calibrate, then ``mlir_quantize``) with fixes in
  between (`tflite_graph.fix_pad_ranges`; the in-graph decode kept float32).
  Which op types stay float32 is ``int8_float_ops``: ``"auto"`` (the
  default) keeps everything but the weight ops (`WEIGHT_OPS`: matmuls with
  weights and convolutions) in float32 in graphs with attention (ViTPose:
  LayerNorm, softmax, GELU, the attention BATCH_MATMULs, residual adds),
  and quantises every op of convolutional graphs; a list of TFLite op
  names (``["SOFTMAX", "GELU"]``) keeps those; ``()`` quantises all. (Ops
  that only move values -- RESHAPE, TRANSPOSE, MAX_POOL_2D, ... -- take
  their neighbours' type whatever the list says.)

Why ``"auto"`` (ViTPose-S 256x192, x86, 2 threads, XNNPACK; measured by
``benchmarks/bench_export.py``, medians of interleaved runs): with every op
int8, the attention BATCH_MATMULs, SOFTMAX, GELU and the LayerNorm ops
(MEAN, RSQRT, SQUARED_DIFFERENCE, and a NEG the quantiser leaves float32
between DEQUANTIZE / QUANTIZE pairs) run on int8 kernels XNNPACK lacks or
runs slowly, and the int8 attention products cost accuracy: 0.76-0.85x
the speed of Keras float32 (0.88-0.96x LiteRT float16), heatmap error
3.2-3.4 % of the output range at most (two runs). With only the weight ops
int8 the graph stays on XNNPACK (float ops plus QS8 matmuls / convs):
1.24-1.33x Keras (1.43-1.50x float16), error 1.3-2.1 %. ``"dynamic_int8"``:
1.12-1.20x Keras (1.30-1.34x float16), error 1.1-1.7 %.
"""

import warnings

from keras_pose.export import tflite_graph
from keras_pose.export.files import export_temp_dir
from keras_pose.export.options import ExportError

# The ops whose weights int8 quantises and that XNNPACK runs fast in int8.
WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")
# Ops that mark a graph with attention (int8_float_ops="auto" keeps all but WEIGHT_OPS float there).
ATTENTION_OPS = ("BATCH_MATMUL", "SOFTMAX")


def converter_from_saved_model(model, function, spec, directory):
    """A ``TFLiteConverter`` for ``function``, through a SavedModel of ``model`` in ``directory``.

    Keras' own LiteRT route (``ExportArchive`` -> SavedModel ->
    ``from_saved_model``): every Keras variable is tracked and frozen.
    ``from_concrete_functions`` with the model as trackable left some
    variables (those the TF object graph does not reach) as uninitialised
    ``READ_VARIABLE`` ops -- NaN outputs -- and freezing the function first
    (``convert_variables_to_constants_v2``) needed ~40x the weights in
    memory (15 GB for Hourglass-52); this route needs ~10x.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", function, input_signature=[spec])
    archive.write_out(directory, verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(directory, signature_keys=["serve"])


def convert(model, function, spec, quantization, calibration, int8_io, include_decode, int8_float_ops="auto"):
    """TFLite flatbuffer bytes of ``function`` and the quantisation details for the metadata.

    Args:
        model: the Keras model ``function`` calls (its variables are saved).
        function, spec: the serving ``tf.function`` and its input spec.
        quantization: None, "float16", "dynamic_int8" or "int8".
        calibration: float32 ``(N, H, W, 3)`` crops ("int8").
        int8_io: int8 input / outputs ("int8").
        include_decode: the graph has the in-graph decode (kept float32).
        int8_float_ops: "auto", or the TFLite op names kept float32 ("int8").

    Returns:
        ``(model bytes, info dict)``.
    """
    with export_temp_dir() as directory:
        converter = converter_from_saved_model(model, function, spec, directory)
        return quantize(converter, spec, quantization, calibration, int8_io, include_decode, int8_float_ops)


def quantize(converter, spec, quantization, calibration, int8_io, include_decode, int8_float_ops="auto"):
    """Run ``converter`` with the settings of ``quantization`` (see the module docstring)."""
    import tensorflow as tf

    if quantization is None:
        return converter.convert(), {}
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert(), {}
    if quantization == "dynamic_int8":
        model_bytes = converter.convert()
        return model_bytes, {
            "method": "dynamic range",
            "weights": "int8 per channel",
            "activations": "float32, quantised per call by the int8 matmul / conv kernels",
            "int8_weight_ops": tflite_graph.int8_weight_ops(model_bytes),
            **({"decode": "float32"} if include_decode else {}),
        }
    return _quantize_int8(converter, spec, calibration, int8_io, include_decode, int8_float_ops)


def _quantize_int8(converter, spec, calibration, int8_io, include_decode, int8_float_ops):
    import tensorflow as tf

    batch = spec.shape[0] or 1

    def representative():
        for start in range(0, len(calibration) - batch + 1, batch):
            yield [calibration[start : start + batch]]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = tf.int8 if int8_io else tf.float32
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    model_bytes, decode_nodes, pads, kept = _calibrate_and_quantize(converter, io_type, include_decode, int8_float_ops)
    if model_bytes is None:
        warnings.warn(
            "This TensorFlow lacks the calibrate-then-quantise hooks of TFLiteConverter "
            "(_experimental_calibrate_only / mlir_quantize); using the plain int8 conversion: every op is "
            "quantised, -inf max-pool padding is not range-fixed and the in-graph keypoints are quantised.",
            stacklevel=4,
        )
        model_bytes = converter.convert()
    info = {
        "method": "static (calibrated)",
        "weights": "int8 per channel",
        "activations": "int8 per tensor" if not kept else f"int8 per tensor around {', '.join(WEIGHT_OPS)}",
        "kept_float": list(kept),
        "padding_ranges_fixed": pads,
        # Ops left float32 (kept on purpose, or that the MLIR quantiser could
        # not quantise: it leaves those between DEQUANTIZE / QUANTIZE pairs
        # without failing), and the number of those conversions.
        "float_ops": tflite_graph.float_ops(model_bytes, exclude=decode_nodes),
        "quantize_dequantize_ops": tflite_graph.count_ops(model_bytes, ("QUANTIZE", "DEQUANTIZE")),
    }
    if include_decode:
        info["decode"] = "float32" if decode_nodes else "int8"
    return model_bytes, info


def resolve_float_ops(model_bytes, int8_float_ops):
    """The TFLite op names to keep float32 in an int8 export of ``model_bytes``.

    Args:
        model_bytes: the (calibrated) float model.
        int8_float_ops: "auto": every op type of the graph but `WEIGHT_OPS`
            when it has `ATTENTION_OPS`, else none; or a list of op names.

    Returns:
        sorted tuple of op names.

    Raises:
        ExportError: a name that is not a TFLite builtin op.
    """
    if isinstance(int8_float_ops, str) and int8_float_ops.lower() == "auto":
        present = tflite_graph.op_types(model_bytes)
        if not present & set(ATTENTION_OPS):
            return ()
        return tuple(sorted(present - set(WEIGHT_OPS) - {"QUANTIZE", "DEQUANTIZE"}))
    if isinstance(int8_float_ops, str):
        int8_float_ops = [int8_float_ops]
    names = tuple(sorted({str(n).upper() for n in int8_float_ops}))
    unknown = [n for n in names if n not in tflite_graph.builtin_op_names()]
    if unknown:
        raise ExportError(
            f"int8_float_ops names {unknown}, which are not TFLite builtin ops; use op names such as "
            "'SOFTMAX', 'GELU', 'BATCH_MATMUL', 'MEAN', or 'auto' (the default), or () to quantise every op."
        )
    return names


def _calibrate_and_quantize(converter, io_type, include_decode, int8_float_ops):
    """Post-training int8 as ``TFLiteConverter`` does it -- calibrate, then
    ``mlir_quantize`` -- with three changes in between:

    - -inf padding ranges are fixed (`tflite_graph.fix_pad_ranges`);
    - the in-graph decode tensors are denylisted (the mechanism of
      ``tf.lite.experimental.QuantizationDebugger``), so the keypoints are
      exact ``argmax * scale`` values rather than int8 steps;
    - the op types of `resolve_float_ops` are denylisted (kept float32).

    Returns:
        ``(model bytes, denylisted tensor names, pad ranges fixed, kept op
        types)``, or ``(None, (), 0, ())`` when this TensorFlow lacks the hooks.
    """
    try:
        from tensorflow.lite.python.convert import mlir_quantize
    except ImportError:  # pragma: no cover - TensorFlow moved it
        return None, (), 0, ()
    if not hasattr(converter, "_experimental_calibrate_only"):  # pragma: no cover
        return None, (), 0, ()
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    calibrated, pads = tflite_graph.fix_pad_ranges(calibrated)
    nodes = tflite_graph.decode_tensor_names(calibrated) if include_decode else []
    kept = resolve_float_ops(calibrated, int8_float_ops)
    quantized = mlir_quantize(
        calibrated,
        disable_per_channel=getattr(converter, "_experimental_disable_per_channel", False),
        input_data_type=io_type,
        output_data_type=io_type,
        denylisted_ops=list(kept) or None,
        denylisted_nodes=nodes or None,
        disable_per_channel_for_dense_layers=getattr(
            converter, "_experimental_disable_per_channel_quantization_for_dense_layers", False
        ),
    )
    return bytes(quantized), nodes, pads, kept
