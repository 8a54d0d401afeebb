"""The serving function an export converts, built from the task's export hooks.

`build_serving_function` traces ``model(images)`` into a ``tf.function``
on a ``(batch_size, H, W, 3)`` float32 input named ``images`` and returns
the task's `serving_outputs(raw_outputs)` (top-down: ``{"heatmaps"}``),
or, with ``all_outputs``, every raw output under its Keras name; with
``include_decode``, the argmax decode of `keras_pose.export.in_graph_decode`
adds ``keypoints`` / ``scores``.
"""

from keras_pose.export.options import INPUT_NAME, RESERVED_OUTPUTS, ExportError


def _raw_output_names(model):
    """Keras output names in `model.outputs` order, and the final one's index."""
    outputs = list(model.outputs)
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != len(outputs):
        names = [f"output_{i}" for i in range(len(outputs))]
    structure = model.output if len(outputs) > 1 else outputs[0]
    final = model.heatmaps_from_outputs(structure)
    index = next((i for i, t in enumerate(outputs) if t is final), len(outputs) - 1)
    return names, index


def _flatten_raw(model, raw, names):
    """(name, tensor) pairs of a model call's raw outputs."""
    if isinstance(raw, dict):
        return [(n, raw[n]) for n in names]
    if isinstance(raw, (list, tuple)):
        return list(zip(names, raw))
    return [(names[0], raw)]


def build_serving_function(model, batch_size=1, include_decode=False, all_outputs=False, image_size=None):
    """The ``tf.function`` that export converts, from the task's `serving_outputs` hook.

    Args:
        model: a `PoseEstimator` (TensorFlow backend) with
            ``serving_outputs(raw_outputs)`` (top-down: ``{"heatmaps": (B,
            h, w, K)}``).
        batch_size: static batch, or None for a dynamic one.
        include_decode: add ``keypoints`` ``(B, K, 2)`` / ``scores`` ``(B,
            K)``, the argmax decode of the ``heatmaps`` output.
        all_outputs: every raw output by Keras name instead of the serving
            outputs (the final one named by ``heatmaps_output``).

    Returns:
        ``(function, input_spec, output_names, heatmaps_output)``: a traced
        ``tf.function`` of one ``images`` argument ``(batch_size, H, W, 3)``
        float32 returning a dict of float32 tensors, the output names in
        order, and the name of the final heatmaps output.
    """
    import tensorflow as tf

    from keras_pose.export.in_graph_decode import argmax_decode_tf

    h, w = image_size if image_size is not None else model.image_size
    spec = tf.TensorSpec((batch_size, h, w, 3), tf.float32, name=INPUT_NAME)
    raw_names, final_index = _raw_output_names(model)
    if all_outputs:
        clash = [n for n in raw_names if n in RESERVED_OUTPUTS or n == INPUT_NAME]
        if clash and include_decode:
            raise ExportError(f"Model outputs {clash} clash with the decode outputs; export without all_outputs.")
    codec = model.codec

    def serve(images):
        raw = model(images, training=False)
        if all_outputs:
            outputs = {name: tf.cast(tensor, tf.float32) for name, tensor in _flatten_raw(model, raw, raw_names)}
            heatmaps = outputs[raw_names[final_index]]
        else:
            outputs = {name: tf.cast(tensor, tf.float32) for name, tensor in model.serving_outputs(raw).items()}
            heatmaps = outputs.get("heatmaps")
        if include_decode:
            if heatmaps is None:
                raise ExportError(
                    f"include_decode=True decodes the 'heatmaps' serving output; {type(model).__name__} serves "
                    f"{sorted(outputs)}. Export without include_decode and decode host-side "
                    "(runner.decode / the codec)."
                )
            outputs["keypoints"], outputs["scores"] = argmax_decode_tf(heatmaps, codec)
        return outputs

    function = tf.function(serve, input_signature=[spec], autograph=False)
    # Trace once (the converters reuse this trace) to learn the output names the hook returns.
    served = list(function.get_concrete_function().structured_outputs)
    if all_outputs:
        order, heatmaps_name = list(raw_names), raw_names[final_index]
    else:
        order = [n for n in served if n not in RESERVED_OUTPUTS]
        heatmaps_name = "heatmaps" if "heatmaps" in order else order[0]
    if include_decode:
        order += list(RESERVED_OUTPUTS)
    return function, spec, order, heatmaps_name
