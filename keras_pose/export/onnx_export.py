"""ONNX conversion (tf2onnx) and quantisation (onnxruntime): float16, static int8 QDQ, -inf pad fixes."""

import os

import numpy as np

from keras_pose.export.files import export_temp_dir
from keras_pose.export.options import INPUT_NAME


# ---------------------------------------------------------------------- ONNX
def decode_node_names(proto):
    """Nodes of the in-graph decode that compute ``keypoints`` from the argmax.

    The backward closure of the ``keypoints`` output, stopped at the
    ``ArgMax`` / ``ReduceMax`` that read the heatmaps (tf2onnx renames some
    of them, so they are found by structure, not by scope).
    """
    producer = {out: node for node in proto.graph.node for out in node.output}
    if "keypoints" not in producer:
        return []
    nodes, stack = [], ["keypoints"]
    seen = set()
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.op_type in ("ArgMax", "ReduceMax") or node.name in seen:
            continue
        seen.add(node.name)
        nodes.append(node.name)
        stack.extend(node.input)
    return nodes


def _float_tail(proto):
    """The decode's final float -> float nodes (scale, stack): kept float32 in float16 exports."""
    from keras_pose.export.in_graph_decode import DECODE_SCOPE, FLOAT_TAIL

    marks = tuple(f"{DECODE_SCOPE}/{name}" for name in FLOAT_TAIL)
    return [n.name for n in proto.graph.node if any(m in n.name for m in marks)]


def fix_pad_values(proto):
    """Replace -inf constant padding by the padded tensor's minimum (int8 exports).

    `TorchMaxPool2D` pads with -inf before a valid max pool. Calibrated with
    -inf in range, int8 quantisation of the pad output zeroes every
    activation; padding with ``ReduceMin(input)`` gives the same max pool
    and a finite range.

    Returns:
        the number of Pad nodes changed (the proto is edited in place).
    """
    from onnx import helper, numpy_helper

    initializers = {t.name: t for t in proto.graph.initializer}
    constants = {n.output[0]: n for n in proto.graph.node if n.op_type == "Constant"}
    nodes = list(proto.graph.node)
    fixed = 0
    for position in range(len(nodes) - 1, -1, -1):
        node = nodes[position]
        if node.op_type != "Pad" or len(node.input) < 3 or not node.input[2]:
            continue
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        if mode != b"constant":
            continue
        name = node.input[2]
        if name in initializers:
            value = numpy_helper.to_array(initializers[name])
        elif name in constants:
            value = numpy_helper.to_array(constants[name].attribute[0].t)
        else:
            continue
        if value.dtype.kind != "f" or (np.all(np.isfinite(value)) and np.all(value > -1e30)):
            continue
        minimum = f"{node.name}/padded_input_min"
        reduce = helper.make_node("ReduceMin", [node.input[0]], [minimum], name=minimum, keepdims=0)
        node.input[2] = minimum
        proto.graph.node.insert(position, reduce)
        fixed += 1
    if fixed:  # drop the -inf constants nothing reads any more
        used = {i for n in proto.graph.node for i in n.input}
        for tensor in [t for t in proto.graph.initializer if t.name not in used]:
            proto.graph.initializer.remove(tensor)
    return fixed


def convert(function, spec, opset, quantization, calibration):
    """ONNX ``ModelProto`` of ``function`` (tf2onnx), float32 / float16 / int8 QDQ.

    Args:
        function, spec: the serving ``tf.function`` and its input spec
            (`keras_pose.export.serving.build_serving_function`).
        opset: ONNX opset (13..18).
        quantization: None, "float16" or "int8".
        calibration: float32 ``(N, H, W, 3)`` crops (int8 only).

    Returns:
        ``(proto, info)``: the checked model and the quantisation details
        the metadata records.
    """
    import onnx
    import tf2onnx

    try:  # tf2onnx 1.17 and NumPy 2 (np.object, np.cast ...): Keras' compatibility patch.
        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        patch_tf2onnx()
    except ImportError:  # pragma: no cover - older / newer Keras
        pass
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=int(opset))
    onnx.checker.check_model(proto)
    info = {}
    if quantization == "float16":
        from onnxruntime.transformers.float16 import convert_float_to_float16
        from onnxruntime.transformers.onnx_model import OnnxModel

        # The decode stays float32 (exact argmax * scale, as in float32 exports).
        proto = convert_float_to_float16(proto, keep_io_types=True, node_block_list=_float_tail(proto) or None)
        # keep_io_types appends the input casts at the end of the node list.
        graph = OnnxModel(proto)
        graph.topological_sort()
        proto = graph.model
        onnx.checker.check_model(proto)
    elif quantization == "int8":
        pads = fix_pad_values(proto)
        onnx.checker.check_model(proto)
        proto, info = quantize_int8(proto, spec, calibration, decode_node_names(proto))
        info["padding_ranges_fixed"] = pads
    return proto, info


def quantize_int8(proto, spec, calibration, exclude_nodes=()):
    """Static QDQ int8 (onnxruntime ``quantize_static``): int8 weights per channel, uint8 activations.

    Calibrated on ``calibration`` in batches of the graph's batch; the
    nodes in ``exclude_nodes`` (the in-graph decode) stay float32.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    batch = spec.shape[0] or 1

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(
                [{INPUT_NAME: calibration[s : s + batch]} for s in range(0, len(calibration) - batch + 1, batch)]
            )

        def get_next(self):
            return next(self._batches, None)

    with export_temp_dir() as tmp:
        source = os.path.join(tmp, "float.onnx")
        target = os.path.join(tmp, "int8.onnx")
        onnx.save(proto, source)
        try:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            prepared = os.path.join(tmp, "prepared.onnx")
            quant_pre_process(source, prepared, skip_symbolic_shape=True)
            source = prepared
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation only
            pass
        quantize_static(
            source,
            target,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude_nodes),
        )
        quantized = onnx.load(target)
    onnx.checker.check_model(quantized)
    return quantized, {
        "format": "QDQ",
        "weights": "int8 per channel",
        "activations": "uint8",
        **({"decode": "float32"} if exclude_nodes else {}),
    }

