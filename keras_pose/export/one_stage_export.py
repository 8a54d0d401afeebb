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
keypoints and settings. float32 (and TFLite / ONNX float16 weights);
TensorFlow backend.
"""

import contextlib

import numpy as np

from keras_pose.export import export_metadata
from keras_pose.export import files
from keras_pose.export import onnx_export
from keras_pose.export import tflite
from keras_pose.export.options import ExportError
from keras_pose.export.options import check_backend
from keras_pose.export.options import check_batch_size
from keras_pose.export.options import check_opset

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


def export_one_stage(model, path, format=None, batch_size=1, opset=17, quantization=None, **settings):
    """Export a one-stage model end to end (decoding and NMS in the graph) to TFLite or ONNX.

    Args:
        model: a `OneStagePoseEstimator` (`RTMO`).
        path: output file; its extension picks the format when `format` is None.
        format: "tflite" (alias "litert") or "onnx".
        batch_size: static batch (1) or None (dynamic).
        opset: ONNX opset.
        quantization: None (float32) or "float16" (float16 weights).
        **settings: decoding overrides (`score_threshold`, `nms_threshold`,
            `max_instances`, `max_candidates`) baked into the graph.

    Returns:
        The path (str) of the exported file (its metadata beside it, ``.json``).

    Raises:
        ExportError: not a one-stage model, another quantisation, a
            non-TensorFlow backend, or an export that does not run.
    """
    fmt, path = files.check_export_path(path, format)
    if getattr(model, "paradigm", None) != "one_stage":
        raise ExportError(
            f"export_one_stage exports one-stage models (RTMO); {type(model).__name__} is "
            f"{getattr(model, 'paradigm', None)!r}: use keras_pose.export.export_model."
        )
    if quantization not in (None, "float16"):
        raise ExportError(f"export_one_stage supports quantization None or 'float16', got {quantization!r}.")
    batch_size = check_batch_size(batch_size)
    check_opset(fmt, opset)
    check_backend(fmt)
    function, spec = build_one_stage_function(model, batch_size, **settings)
    with split_grouped_convolutions(model):
        if fmt == "tflite":
            model_bytes, _ = tflite.convert(model, function, spec, quantization, None, False, False)
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
        "batch_size": batch_size,
        "opset": opset if fmt == "onnx" else None,
        "versions": export_metadata.versions(),
    }
    files.write_or_explain(path, lambda: export_metadata.write_metadata(path, metadata))
    return path


__all__ = ["OUTPUTS", "build_one_stage_function", "export_one_stage"]
