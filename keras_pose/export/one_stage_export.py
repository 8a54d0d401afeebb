"""End-to-end export of one-stage pose models (RTMO): network, decoding and NMS in one graph.

```python
from keras_pose.export import load_exported
from keras_pose.export.one_stage_export import export_one_stage

export_one_stage(model, "rtmo.onnx")         # or "rtmo.tflite" (LiteRT)
runner = load_exported("rtmo.onnx")
x, matrix = model.preprocessor.resize_image(image)   # letterbox, BGR 0..255
out = runner(x[None])
# {"boxes" (1, M, 4) xyxy, "scores" (1, M), "keypoints" (1, M, K, 2), "keypoint_scores" (1, M, K),
#  "valid" (1, M) 0 / 1}: model-input pixels, rows sorted by score, M = test_cfg["max_instances"]
```

The graph takes the resized, model-ready image (the preprocessor's output,
``images`` float32 ``(B, H, W, 3)``) and returns fixed-size tensors: the
task's decoding (`OneStagePoseEstimator.decode_outputs`: sigmoid scores,
boxes from the priors, score threshold, greedy NMS as a loop in the graph,
keypoints) -- no second NMS or decoding on the host. Boxes and keypoints
are in model-input pixels; ``<path>.json`` records how to map them back to
the image (the inverse of the resizer's matrix) with the pre-processing,
keypoints and settings. TensorFlow backend.

Quantisation: float32; ``"float16"`` (TFLite: float16 weights; ONNX:
float16 weights and activations, float32 I/O); ``"int8"`` (ONNX): static QDQ
int8 of the network (backbone, neck, head) calibrated on real letterboxed
images (`keras_pose.export.representative_images`), the decoding -- scores,
boxes, NMS and the DCC keypoint head -- kept float32 (every node of the
decoder's name scope and what it feeds), so boxes and keypoints are not
rounded to int8 steps. TFLite int8 is refused: TensorFlow's calibrator
crashes (segmentation fault) on the NMS loop of this graph.
"""

import contextlib

import numpy as np

from keras_pose.export import export_metadata
from keras_pose.export import files
from keras_pose.export import onnx_export
from keras_pose.export import tflite
from keras_pose.export.calibration import calibration_samples
from keras_pose.export.options import ExportError
from keras_pose.export.options import check_backend
from keras_pose.export.options import check_batch_size
from keras_pose.export.options import check_opset
from keras_pose.export.options import check_quantization

OUTPUTS = ("boxes", "scores", "keypoints", "keypoint_scores", "valid")


@contextlib.contextmanager
def split_grouped_convolutions(model):
    """Grouped convolutions computed as one convolution per group while exporting.

    Keras' TensorFlow backend runs a grouped convolution on CPU as an XLA
    function call, which tf2onnx cannot convert (``StatefulPartitionedCall``);
    per-group convolutions over channel slices give the same values with
    plain ops. The layers are restored on exit.
    """
    import keras
    from keras import ops

    def split_op(layer):
        def convolution_op(inputs, kernel):
            g = layer.groups
            cout = kernel.shape[-1] // g
            parts = ops.split(inputs, g, axis=-1)
            return ops.concatenate(
                [ops.conv(parts[i], kernel[..., i * cout:(i + 1) * cout], strides=layer.strides,
                          padding=layer.padding, dilation_rate=layer.dilation_rate, data_format=layer.data_format)
                 for i in range(g)], axis=-1)

        return convolution_op

    patched = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
               if isinstance(layer, keras.layers.Conv2D) and getattr(layer, "groups", 1) > 1]
    for layer in patched:
        object.__setattr__(layer, "convolution_op", split_op(layer))
    try:
        yield patched
    finally:
        for layer in patched:
            object.__delattr__(layer, "convolution_op")


def build_one_stage_function(model, batch_size=1, **settings):
    """``(tf.function, input spec)``: images ``(B, H, W, 3)`` -> the decoded dict of float32 tensors."""
    import tensorflow as tf

    h, w = model.image_size
    spec = tf.TensorSpec((batch_size, h, w, 3), tf.float32, name="images")

    def serve(images):
        decoded = model.decode_outputs(model(images, training=False), **settings)
        return {name: tf.cast(decoded[name], tf.float32) for name in OUTPUTS}

    return tf.function(serve, input_signature=[spec], autograph=False), spec


def decode_nodes(proto, scope):
    """ONNX nodes of the decoding: those named in the decoder's ``scope`` and every node they feed.

    tf2onnx keeps TensorFlow's name scopes in node names, except the nodes it
    adds itself (``Unsqueeze__12``); those after the decoder are caught by
    following its outputs forward.
    """
    decode, tensors = set(), set()
    for node in proto.graph.node:  # tf2onnx writes nodes in topological order
        if scope in node.name or any(i in tensors for i in node.input):
            decode.add(node.name)
            tensors.update(node.output)
    return sorted(decode)


def export_one_stage(model, path, format=None, batch_size=1, opset=17, quantization=None,
                     representative_dataset=None, num_calibration_samples=100, **settings):
    """Export a one-stage model end to end (decoding and NMS in the graph) to TFLite or ONNX.

    Args:
        model: a `OneStagePoseEstimator` (`RTMO`).
        path: output file; its extension picks the format when `format` is None.
        format: "tflite" (alias "litert") or "onnx".
        batch_size: static batch (1) or None (dynamic).
        opset: ONNX opset.
        quantization: None (float32), "float16" or "int8" (ONNX only; the
            network int8, the decoding float32).
        representative_dataset: int8 calibration: model-ready images ``(N,
            H, W, 3)`` (letterboxed, BGR 0..255), e.g.
            ``representative_images(model, "person_keypoints_val2017.json",
            100)``, or an iterable / tf.data.Dataset of such batches.
        num_calibration_samples: the most images used for calibration.
        **settings: decoding overrides (`score_threshold`, `nms_threshold`,
            `max_instances`, `max_candidates`) baked into the graph.

    Returns:
        The path (str) of the exported file (its metadata beside it, ``.json``).

    Raises:
        ExportError: not a one-stage model, another quantisation (TFLite
            int8), int8 without calibration images, a non-TensorFlow
            backend, or an export that does not run.
    """
    fmt, path = files.check_export_path(path, format)
    if getattr(model, "paradigm", None) != "one_stage":
        raise ExportError(
            f"export_one_stage exports one-stage models (RTMO); {type(model).__name__} is "
            f"{getattr(model, 'paradigm', None)!r}: use keras_pose.export.export_model."
        )
    quantization = check_quantization(quantization)
    if quantization not in (None, "float16", "int8") or (quantization == "int8" and fmt != "onnx"):
        raise ExportError(
            f"export_one_stage exports {fmt} with quantization None (float32) or 'float16'"
            f"{' or int8 for ONNX' if fmt == 'onnx' else ''}; got {quantization!r}. "
            + ("TFLite int8 is not available for the end-to-end graph (TensorFlow's calibrator crashes on its NMS "
               "loop): export ONNX int8 (a .onnx path) or TFLite float16." if fmt == "tflite" else ""))
    batch_size = check_batch_size(batch_size)
    check_opset(fmt, opset)
    check_backend(fmt)
    calibration = None
    if quantization == "int8":
        if representative_dataset is None:
            raise ExportError(
                "int8 needs calibration images: pass representative_dataset= model-ready images (N, H, W, 3), e.g. "
                "keras_pose.export.representative_images(model, 'person_keypoints_val2017.json', 100).")
        calibration = calibration_samples(representative_dataset, model.image_size, int(num_calibration_samples))
        if len(calibration) < (batch_size or 1):
            raise ExportError(f"int8 calibration with batch_size={batch_size} needs at least {batch_size} images.")
    function, spec = build_one_stage_function(model, batch_size, **settings)
    quant_info = {}
    with split_grouped_convolutions(model):
        if fmt == "tflite":
            model_bytes, _ = tflite.convert(model, function, spec, quantization, None, False, False)
        elif quantization == "int8":
            proto, _ = onnx_export.convert(function, spec, opset, None, None)
            pads = onnx_export.fix_pad_values(proto)  # SPP max pools pad with -inf
            kept = decode_nodes(proto, model.decoder().name)
            proto, quant_info = onnx_export.quantize_int8(proto, spec, calibration, kept)
            quant_info = {**quant_info, "decode": "float32", "float_nodes": len(kept),
                          "padding_ranges_fixed": pads, "calibration_samples": len(calibration)}
            model_bytes = proto.SerializeToString()
        else:
            proto, _ = onnx_export.convert(function, spec, opset, quantization, None)
            model_bytes = proto.SerializeToString()

    from keras_pose.export.runtime import load_exported

    runner = load_exported(model_bytes, format=fmt, metadata=False)
    probe = runner(np.full((batch_size or 1, *model.image_size, 3), 114.0, np.float32))
    missing = [name for name in OUTPUTS if name not in probe]
    if missing:
        raise ExportError(f"The exported {fmt} model lacks the outputs {missing} (it has {sorted(probe)}).")
    files.write_model_file(path, model_bytes)
    test_cfg = {**model.test_cfg, **{k: v for k, v in settings.items() if v is not None}}
    metadata = {
        "format": fmt,
        "paradigm": "one_stage",
        "model_class": type(model).__name__,
        "image_size": list(model.image_size),
        "input": {"name": "images", "shape": [batch_size, *model.image_size, 3], "dtype": "float32",
                  "layout": "NHWC, the preprocessor's output (resized image, converted channels)"},
        "outputs": [{"name": name, "shape": list(np.shape(probe[name])), "dtype": "float32"} for name in OUTPUTS],
        "preprocessing": export_metadata.preprocessing_metadata(model.preprocessor),
        "keypoints": export_metadata.keypoint_metadata(model.keypoint_spec),
        "decoding": {**model.export_decoding(), "test_cfg": test_cfg},
        "quantization": quantization,
        **({"int8": quant_info} if quant_info else {}),
        "batch_size": batch_size,
        "opset": opset if fmt == "onnx" else None,
        "versions": export_metadata.versions(),
    }
    files.write_or_explain(path, lambda: export_metadata.write_metadata(path, metadata))
    return path


__all__ = ["OUTPUTS", "build_one_stage_function", "decode_nodes", "export_one_stage"]
