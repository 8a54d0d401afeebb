"""Inspect and edit TFLite flatbuffers: op lists, float ops of quantised models, range fixes.

Used by `keras_pose.export.tflite` between the converter's calibration and
quantisation steps, and to describe a quantised model in its metadata.
Needs ``ai_edge_litert`` (inspection) and TensorFlow's flatbuffer schema
(edits).
"""

import numpy as np


def graph_details(model_bytes):
    """(ops, tensor names, signature outputs {name: tensor index}) of a TFLite model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    runner = interpreter.get_signature_runner()
    outputs = {name: d["index"] for name, d in runner.get_output_details().items()}
    return interpreter._get_ops_details(), names, dtypes, outputs


def decode_tensor_names(model_bytes):
    """Names of the tensors computing the in-graph ``keypoints`` from the argmax.

    The backward closure of the ``keypoints`` output, stopped at the
    ``ARG_MAX`` / ``REDUCE_MAX`` that read the heatmaps.
    """
    ops, names, _, outputs = graph_details(model_bytes)
    producer = {t: op for op in ops for t in op["outputs"]}
    nodes, stack = set(), [outputs["keypoints"]]
    while stack:
        tensor = stack.pop()
        op = producer.get(tensor)
        if op is None or op["op_name"] in ("ARG_MAX", "REDUCE_MAX") or names[tensor] in nodes:
            continue
        nodes.add(names[tensor])
        stack.extend(i for i in op["inputs"] if i >= 0)
    return sorted(nodes)


def float_ops(model_bytes, exclude=()):
    """{op: count} of the ops computing in float32 in a quantised model.

    Leaves out QUANTIZE / DEQUANTIZE and the tensors named in ``exclude``.
    """
    ops, names, dtypes, _ = graph_details(model_bytes)
    counts = {}
    for op in ops:
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        outs = [t for t in op["outputs"] if t >= 0]
        if outs and any(dtypes[t] == "float32" for t in outs) and not any(names[t] in exclude for t in outs):
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items()))


def fix_pad_ranges(calibrated):
    """Calibrated ranges of PAD / PADV2 outputs padded with -inf, set to their input's.

    `TorchMaxPool2D` pads with -inf before a valid max pool; calibration
    then records an output range down to -inf (or -3.4e38) and int8
    quantisation with that range zeroes every activation. With the input's
    range the pad value clamps to the int8 minimum, which is below every
    real value of the window: the max pool is unchanged.

    Returns:
        ``(model bytes, number of ranges fixed)``.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    pad_codes = {schema.BuiltinOperator.PAD, schema.BuiltinOperator.PADV2, schema.BuiltinOperator.MIRROR_PAD}
    fixed = 0
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            if builtin not in pad_codes:
                continue
            source = subgraph.tensors[op.inputs[0]].quantization
            target = subgraph.tensors[op.outputs[0]].quantization
            if source is None or target is None or source.min is None or target.min is None:
                continue
            if len(source.min) != 1 or len(target.min) != 1:
                continue
            if not (np.isfinite(target.min[0]) and target.min[0] > -1e30) or target.min[0] < source.min[0] - 1e6:
                target.min = list(source.min)
                target.max = list(source.max)
                fixed += 1
    if not fixed:
        return calibrated, 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), fixed



def op_types(model_bytes):
    """The set of op names (``"FULLY_CONNECTED"``, ...) in a TFLite model."""
    ops, *_ = graph_details(model_bytes)
    return {op["op_name"] for op in ops}


def count_ops(model_bytes, names):
    """Number of ops of the given names in a TFLite model."""
    ops, *_ = graph_details(model_bytes)
    return sum(op["op_name"] in names for op in ops)


def int8_weight_ops(model_bytes):
    """{op: count} of the ops reading an int8 constant (the weights of a dynamic-range model)."""
    ops, _, dtypes, _ = graph_details(model_bytes)
    produced = {t for op in ops for t in op["outputs"]}
    counts = {}
    for op in ops:
        if any(t >= 0 and t not in produced and dtypes[t] == "int8" for t in op["inputs"]):
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items()))


def builtin_op_names():
    """The names of TFLite's builtin ops (``BuiltinOperator``), e.g. ``"SOFTMAX"``."""
    from tensorflow.lite.python import schema_py_generated as schema

    return {name for name in vars(schema.BuiltinOperator) if name.isupper()}
