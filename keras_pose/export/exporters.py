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

Outputs: ``"heatmaps"`` (B, h, w, K) float32 -- the final heatmaps
(`heatmaps_from_outputs`: the last CPM stage / Hourglass stack, CPN's
RefineNet). ``all_outputs=True`` exports every raw output under its Keras
output name instead (``stage1`` .. / ``stack1`` .. / ``global_0`` ..
``refine``); the metadata names the final one (``heatmaps_output``).
``include_decode=True`` adds ``"keypoints"`` (B, K, 2) input px and
``"scores"`` (B, K), an argmax decode in the graph
(`keras_pose.export.in_graph_decode`).

Quantisation:

- TFLite ``"float16"``: float16 weights, float32 compute on CPU.
- TFLite ``"int8"``: full-integer weights and activations calibrated on
  ``representative_dataset``; float32 input / outputs (the graph quantises
  on entry and dequantises on exit) or int8 ones with ``int8_io=True``
  (`load_exported` runners (de)quantise them). The converter's own steps
  (calibrate, then ``mlir_quantize``) run with two fixes in between: the
  calibrated range of ``-inf`` max-pool padding (`TorchMaxPool2D`, CPM) is
  set to the padded tensor's range -- with ``-inf`` in range every
  activation quantised to zero -- and the in-graph decode is kept float32.
  Ops the quantiser cannot quantise stay float32 between DEQUANTIZE /
  QUANTIZE pairs, without error; the metadata lists them
  (``int8.float_ops``).
- ONNX ``"float16"``: float16 weights and activations with float32 I/O
  (onnxruntime's ``convert_float_to_float16``).
- ONNX ``"int8"``: static QDQ quantisation (onnxruntime ``quantize_static``,
  int8 weights per channel, uint8 activations) calibrated on
  ``representative_dataset``; float32 I/O; ``-inf`` padding replaced by
  the padded tensor's minimum (same max pool), the decode kept float32.
"""

import atexit
import contextlib
import datetime
import hashlib
import os
import re
import shutil
import socket
import tempfile
import warnings

import numpy as np

from keras_pose.errors import KerasPoseError
from keras_pose.export import export_metadata
from keras_pose.utils.file_utils import atomic_write

FORMATS = ("tflite", "onnx")
FORMAT_ALIASES = {"tflite": "tflite", "litert": "tflite", "onnx": "onnx"}
EXTENSIONS = {"tflite": ".tflite", "onnx": ".onnx"}
QUANTIZATIONS = (None, "float16", "int8")
QUANTIZATION_ALIASES = {
    None: None,
    "none": None,
    "float32": None,
    "fp32": None,
    "float16": "float16",
    "fp16": "float16",
    "int8": "int8",
}
MIN_ONNX_OPSET = 13
MAX_ONNX_OPSET = 18  # tf2onnx 1.17
INPUT_NAME = "images"
RESERVED_OUTPUTS = ("keypoints", "scores")


class ExportError(KerasPoseError, ValueError):
    """An export request cannot be carried out; the message says how to fix it."""


# --------------------------------------------------------------------- checks
def _check_format(format, path):
    suffix = os.path.splitext(path)[1].lower()
    by_suffix = {v: k for k, v in EXTENSIONS.items()}
    if format is None:
        if suffix not in by_suffix:
            raise ExportError(
                f"Cannot tell the export format from {path!r}: pass format='tflite' or 'onnx', or a "
                "path ending in .tflite / .onnx."
            )
        return by_suffix[suffix], path
    key = str(format).lower()
    if key not in FORMAT_ALIASES:
        raise ExportError(
            f"Unknown export format {format!r}. Supported: 'tflite' (alias 'litert') for LiteRT / "
            "TensorFlow Lite, 'onnx' for ONNX Runtime and servers. (For a TF SavedModel use "
            "keras.Model.export(path, format='tf_saved_model').)"
        )
    fmt = FORMAT_ALIASES[key]
    if suffix in by_suffix and by_suffix[suffix] != fmt:
        raise ExportError(
            f"format={format!r} but the path {path!r} ends in {suffix!r}; use a "
            f"{EXTENSIONS[fmt]} path or format={by_suffix[suffix]!r}."
        )
    if not suffix:
        path = path + EXTENSIONS[fmt]
    return fmt, path


def _nearest_existing(path):
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    return parent


def check_export_path(path, format=None):
    """Resolve the format and output file, and check the file can be written.

    Called by `export_model` before anything is converted (and by the CLI
    before the model is loaded), so a bad destination fails in seconds.

    Args:
        path: the output file; its extension picks the format when
            ``format`` is None; without an extension, ``.tflite`` /
            ``.onnx`` is added.
        format: "tflite" (alias "litert"), "onnx" or None.

    Returns:
        ``(format, path)``: the format and the output file (str).

    Raises:
        ExportError: unknown format, or a destination that cannot be
            written: the file or its ``.json`` metadata is a folder, a parent
            is a file, or the nearest existing folder is not writable. The
            message names ``path``.
    """
    fmt, path = _check_format(format, os.fspath(path))
    for target, what in ((path, "the output"), (export_metadata.metadata_path(path), "its metadata file")):
        if os.path.isdir(target):
            raise ExportError(
                f"Cannot export to {path!r}: {what} {target!r} is a folder. Give a file path such as "
                f"{os.path.join(target, 'model' + EXTENSIONS[fmt])!r}."
            )
    parent = _nearest_existing(path)
    if not os.path.isdir(parent):
        raise ExportError(
            f"Cannot export to {path!r}: {parent!r} is a file, not a folder. Choose an output path in a folder."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(
            f"Cannot export to {path!r}: the folder {parent!r} is not writable. Choose another output path or "
            "fix the folder's permissions."
        )
    return fmt, path


def _write_or_explain(path, write):
    """Run ``write()``; an OSError becomes an ExportError naming ``path`` (not a hidden temp file)."""
    try:
        return write()
    except OSError as e:
        reason = e.strerror or " ".join(str(e).split()) or type(e).__name__
        raise ExportError(f"Could not write the export to {path!r}: {reason}. Check the free space and "
                          "permissions there, or choose another output path.") from e


# ------------------------------------------------------------ temp folders
# The TFLite route writes a SavedModel of the whole model (hundreds of MB)
# and ONNX int8 two copies of the graph into a temporary folder. Its name
# says who owns it: keras-pose-export-<pid>@<host>-<random>. It is removed
# when the export ends, however it ends (exceptions, Ctrl-C, interpreter
# exit); one left by a killed process (SIGKILL, SIGTERM, a crash) is removed
# by the next export on the same host once its process is gone.
TEMP_PREFIX = "keras-pose-export-"
_TEMP_NAME = re.compile(r"^keras-pose-export-(\d+)@(.*)-[A-Za-z0-9_]+$")
_LIVE_TEMP_DIRS = set()


def _host():
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname() or "localhost")[:64]


def _pid_alive(pid):
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows: assume alive.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def clean_stale_temp_folders(root=None):
    """Remove export temp folders whose process is gone (same host).

    Args:
        root: the folder to scan (default ``tempfile.gettempdir()``).

    Returns:
        The list of removed folders.
    """
    root = root or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    host = _host()
    for name in names:
        match = _TEMP_NAME.match(name)
        if not match or match.group(2) != host:
            continue
        folder = os.path.join(root, name)
        if folder in _LIVE_TEMP_DIRS or _pid_alive(int(match.group(1))) or not os.path.isdir(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.exists(folder):
            removed.append(folder)
    return removed


def _remove_live_temp_dirs():
    for folder in list(_LIVE_TEMP_DIRS):
        shutil.rmtree(folder, ignore_errors=True)
        _LIVE_TEMP_DIRS.discard(folder)


atexit.register(_remove_live_temp_dirs)


@contextlib.contextmanager
def export_temp_dir():
    """A temporary folder for one export step, removed on every exit path.

    Stale folders of killed exports are cleaned first
    (`clean_stale_temp_folders`).

    Yields:
        The folder path, ``<tempdir>/keras-pose-export-<pid>@<host>-<random>``.
    """
    clean_stale_temp_folders()
    folder = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}@{_host()}-")
    _LIVE_TEMP_DIRS.add(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _LIVE_TEMP_DIRS.discard(folder)


def _check_quantization(quantization):
    key = quantization.lower() if isinstance(quantization, str) else quantization
    if key not in QUANTIZATION_ALIASES:
        raise ExportError(
            f"Unknown quantization {quantization!r}. Supported: None (float32), 'float16' "
            "(float16 weights) or 'int8' (full-integer, needs representative_dataset)."
        )
    return QUANTIZATION_ALIASES[key]


def _check_model(model):
    missing = [
        a
        for a in ("image_size", "codec", "keypoint_spec", "heatmaps_from_outputs", "preprocessor", "serving_outputs",
                  "export_decoding")
        if not hasattr(model, a)
    ]
    if missing:
        raise ExportError(
            f"export_model exports keras-pose top-down models (ViTPose, CPN, CPM, Hourglass, ...); "
            f"{type(model).__name__} lacks {missing}. For a plain Keras model use "
            "keras.Model.export(path, format='onnx' | 'litert')."
        )


def _check_backend(fmt):
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


# ----------------------------------------------------------- calibration data
def _as_array(element):
    """The images array of one representative-dataset element."""
    if isinstance(element, dict):
        for key in (INPUT_NAME, "image", "inputs", "x"):
            if key in element:
                return _as_array(element[key])
        raise ExportError(
            f"A representative_dataset element is a dict with keys {sorted(element)}; "
            "it needs an 'images' entry (normalised crops)."
        )
    if isinstance(element, (tuple, list)) and len(element) and not np.isscalar(element[0]) and (
        hasattr(element[0], "shape") or isinstance(element[0], (tuple, list, dict))
    ):
        if not hasattr(element[0], "shape") or np.ndim(element[0]) >= 3:
            return _as_array(element[0])  # (images, targets[, meta]) from a tf.data pipeline
    if hasattr(element, "numpy"):
        element = element.numpy()
    return np.asarray(element, np.float32)


def calibration_samples(representative_dataset, image_size, num_samples):
    """Single normalised crops from a representative dataset.

    Args:
        representative_dataset: a NumPy array ``(N, H, W, 3)`` or ``(H, W,
            3)``; a ``tf.data.Dataset`` or any iterable whose elements are
            crops ``(B, H, W, 3)`` / ``(H, W, 3)``, ``(images, targets...)``
            tuples (the `keras_pose.data` pipelines) or dicts with
            ``"images"``; or a callable returning such an iterable.
        image_size: the model input ``(H, W)``.
        num_samples: the most crops to take.

    Returns:
        float32 ``(n, H, W, 3)``, ``1 <= n <= num_samples``.
    """
    h, w = image_size
    data = representative_dataset
    if callable(data) and not hasattr(data, "__iter__") and not isinstance(data, np.ndarray):
        data = data()
    if isinstance(data, np.ndarray) or hasattr(data, "numpy") and not hasattr(data, "element_spec"):
        array = _as_array(data)
        iterable = [array] if array.ndim == 4 else [array[None]] if array.ndim == 3 else [array]
    else:
        try:
            iterable = iter(data)
        except TypeError:
            raise ExportError(
                f"representative_dataset must be an array, an iterable or tf.data.Dataset of normalised "
                f"crops (B, {h}, {w}, 3), or a callable returning one; got {type(data).__name__}."
            ) from None
    samples, count = [], 0
    for element in iterable:
        array = _as_array(element)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or tuple(array.shape[1:]) != (h, w, 3):
            raise ExportError(
                f"representative_dataset gave an element of shape {tuple(array.shape)}; the model takes "
                f"normalised crops (B, {h}, {w}, 3). Make them with "
                "keras_pose.export.representative_crops(model, annotation_file, image_root) or "
                "model.crop_people(image, boxes)[0]."
            )
        if not np.all(np.isfinite(array)):
            raise ExportError("representative_dataset holds NaN or infinite values.")
        take = array[: num_samples - count]
        samples.append(take)
        count += len(take)
        if count >= num_samples:
            break
    if count == 0:
        raise ExportError("representative_dataset is empty; int8 calibration needs at least one crop.")
    return np.concatenate(samples, axis=0).astype(np.float32)


def representative_crops(
    model,
    annotation_file,
    image_root=None,
    num_samples=100,
    include_flipped=True,
    seed=0,
):
    """Real, normalised person crops for int8 calibration.

    Reads a COCO-format keypoint file (`keras_pose.datasets.load_coco_keypoints`,
    train-mode filter: labelled people only), crops every person box the way
    inference does (`model.crop_people`: the preset's padding, aspect and
    standard / UDP warp, normalisation), and adds the mirrored crops (what
    flip-test inference feeds the network) when ``include_flipped``.

    Args:
        model: a `TopDownPoseEstimator`.
        annotation_file: COCO-format keypoint json.
        image_root: folder of the images; default the json's folder.
        num_samples: the most crops returned. With more people than that,
            a random subset (``seed``) is used.
        include_flipped: add horizontally mirrored crops (after the
            originals, up to ``num_samples``).
        seed: subset selection seed.

    Returns:
        float32 ``(n, H, W, 3)`` normalised crops, ``n <= num_samples``.
    """
    from keras_pose.datasets import load_coco_keypoints
    from keras_pose.utils.image_io import read_image

    num_samples = int(num_samples)
    if num_samples < 1:
        raise ExportError(f"num_samples must be >= 1, got {num_samples}.")
    dataset = load_coco_keypoints(annotation_file, image_root, mode="train")
    instances = list(dataset)
    if not instances:
        raise ExportError(f"{annotation_file!r} has no labelled person to crop for calibration.")
    num_original = num_samples if not include_flipped else max(1, (num_samples + 1) // 2)
    if len(instances) > num_original:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(instances), num_original, replace=False))
        instances = [instances[i] for i in keep]
    by_image = {}
    for inst in instances:
        by_image.setdefault(inst.image_path, []).append(inst.bbox)
    crops = []
    for image_path, boxes in by_image.items():
        image = read_image(image_path)
        crops.append(model.crop_people(image, np.asarray(boxes, np.float32))[0])
    crops = np.concatenate(crops, axis=0).astype(np.float32)
    if include_flipped:
        crops = np.concatenate([crops, np.ascontiguousarray(crops[:, :, ::-1])], axis=0)
    return crops[:num_samples]


# ------------------------------------------------------------ serving graph
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


def build_serving_function(model, batch_size=1, include_decode=False, all_outputs=False):
    """The ``tf.function`` that export converts.

    Args:
        model: a `TopDownPoseEstimator` (TensorFlow backend).
        batch_size: static batch, or None for a dynamic one.
        include_decode: add ``keypoints`` / ``scores`` (argmax decode).
        all_outputs: every raw output by Keras name instead of ``heatmaps``.

    Returns:
        ``(function, input_spec, output_names, heatmaps_output)``: a
        ``tf.function`` of one ``images`` argument returning a dict of
        float32 tensors.
    """
    import tensorflow as tf

    from keras_pose.export.in_graph_decode import argmax_decode_tf

    h, w = model.image_size
    spec = tf.TensorSpec((batch_size, h, w, 3), tf.float32, name=INPUT_NAME)
    raw_names, final_index = _raw_output_names(model)
    if all_outputs:
        clash = [n for n in raw_names if n in RESERVED_OUTPUTS or n == INPUT_NAME]
        if clash and include_decode:
            raise ExportError(f"Model outputs {clash} clash with the decode outputs; export without all_outputs.")
        heatmaps_name = raw_names[final_index]
    else:
        heatmaps_name = "heatmaps"
    codec = model.codec

    def serve(images):
        raw = model(images, training=False)
        outputs = {}
        if all_outputs:
            for name, tensor in _flatten_raw(model, raw, raw_names):
                outputs[name] = tf.cast(tensor, tf.float32)
            heatmaps = outputs[heatmaps_name]
        else:
            outputs.update(model.serving_outputs(raw))
            heatmaps = outputs["heatmaps"]
        if include_decode:
            keypoints, scores = argmax_decode_tf(heatmaps, codec)
            outputs["keypoints"] = keypoints
            outputs["scores"] = scores
        return outputs

    order = list(raw_names) if all_outputs else ["heatmaps"]
    if include_decode:
        order += list(RESERVED_OUTPUTS)
    function = tf.function(serve, input_signature=[spec], autograph=False)
    return function, spec, order, heatmaps_name


# -------------------------------------------------------------------- TFLite
def _tflite_graph(model_bytes):
    """(ops, tensor names, signature outputs {name: tensor index}) of a TFLite model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    runner = interpreter.get_signature_runner()
    outputs = {name: d["index"] for name, d in runner.get_output_details().items()}
    return interpreter._get_ops_details(), names, dtypes, outputs


def _tflite_decode_nodes(model_bytes):
    """Names of the tensors computing the in-graph ``keypoints`` from the argmax.

    The backward closure of the ``keypoints`` output, stopped at the
    ``ARG_MAX`` / ``REDUCE_MAX`` that read the heatmaps.
    """
    ops, names, _, outputs = _tflite_graph(model_bytes)
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


def _tflite_float_ops(model_bytes, exclude=()):
    """{op: count} of the ops computing in float32 in a quantised model.

    Leaves out QUANTIZE / DEQUANTIZE and the tensors named in ``exclude``.
    """
    ops, names, dtypes, _ = _tflite_graph(model_bytes)
    counts = {}
    for op in ops:
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        outs = [t for t in op["outputs"] if t >= 0]
        if outs and any(dtypes[t] == "float32" for t in outs) and not any(names[t] in exclude for t in outs):
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items()))


def _tflite_fix_pad_ranges(calibrated):
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


def _tflite_converter(model, function, spec, directory):
    """A ``TFLiteConverter`` for ``function``, through a SavedModel of ``model``.

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


def _tflite_convert(model, function, spec, quantization, calibration, int8_io, include_decode):
    import tensorflow as tf

    with export_temp_dir() as directory:
        converter = _tflite_converter(model, function, spec, directory)
        return _tflite_quantize(converter, spec, quantization, calibration, int8_io, include_decode)


def _tflite_quantize(converter, spec, quantization, calibration, int8_io, include_decode):
    import tensorflow as tf

    info = {}
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert(), info
    if quantization != "int8":
        return converter.convert(), info

    batch = spec.shape[0] or 1

    def representative():
        for start in range(0, len(calibration) - batch + 1, batch):
            yield [calibration[start : start + batch]]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = tf.int8 if int8_io else tf.float32
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    model_bytes, decode_nodes, pads = _tflite_int8_calibrate_and_quantize(converter, io_type, include_decode)
    if model_bytes is None:
        warnings.warn(
            "This TensorFlow lacks the calibrate-then-quantise hooks of TFLiteConverter "
            "(_experimental_calibrate_only / mlir_quantize); using the plain int8 conversion: -inf max-pool "
            "padding is not range-fixed and the in-graph keypoints are quantised.",
            stacklevel=3,
        )
        model_bytes = converter.convert()
    info["padding_ranges_fixed"] = pads
    # The MLIR quantiser leaves ops it cannot quantise in float32 between
    # DEQUANTIZE / QUANTIZE pairs without failing: list them.
    info["float_ops"] = _tflite_float_ops(model_bytes, exclude=decode_nodes)
    if include_decode:
        info["decode"] = "float32" if decode_nodes else "int8"
    return model_bytes, info


def _tflite_int8_calibrate_and_quantize(converter, io_type, include_decode):
    """Post-training int8 as ``TFLiteConverter`` does it -- calibrate, then
    ``mlir_quantize`` -- with two changes in between:

    - -inf padding ranges are fixed (`_tflite_fix_pad_ranges`);
    - the in-graph decode tensors are denylisted (the mechanism of
      ``tf.lite.experimental.QuantizationDebugger``), so the keypoints are
      exact ``argmax * scale`` values rather than int8 steps.

    Returns:
        ``(model bytes, denylisted tensor names, pad ranges fixed)``, or
        ``(None, (), 0)`` when this TensorFlow lacks the hooks.
    """
    try:
        from tensorflow.lite.python.convert import mlir_quantize
    except ImportError:  # pragma: no cover - TensorFlow moved it
        return None, (), 0
    if not hasattr(converter, "_experimental_calibrate_only"):  # pragma: no cover
        return None, (), 0
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    calibrated, pads = _tflite_fix_pad_ranges(calibrated)
    nodes = _tflite_decode_nodes(calibrated) if include_decode else []
    quantized = mlir_quantize(
        calibrated,
        disable_per_channel=getattr(converter, "_experimental_disable_per_channel", False),
        input_data_type=io_type,
        output_data_type=io_type,
        denylisted_nodes=nodes or None,
        disable_per_channel_for_dense_layers=getattr(
            converter, "_experimental_disable_per_channel_quantization_for_dense_layers", False
        ),
    )
    return bytes(quantized), nodes, pads


# ---------------------------------------------------------------------- ONNX
def _onnx_decode_nodes(proto):
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


def _onnx_float_tail(proto):
    """The decode's final float -> float nodes (scale, stack): kept float32 in float16 exports."""
    from keras_pose.export.in_graph_decode import DECODE_SCOPE, FLOAT_TAIL

    marks = tuple(f"{DECODE_SCOPE}/{name}" for name in FLOAT_TAIL)
    return [n.name for n in proto.graph.node if any(m in n.name for m in marks)]


def _onnx_fix_pad_values(proto):
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


def _onnx_convert(function, spec, opset, quantization, calibration):
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
        proto = convert_float_to_float16(proto, keep_io_types=True, node_block_list=_onnx_float_tail(proto) or None)
        # keep_io_types appends the input casts at the end of the node list.
        graph = OnnxModel(proto)
        graph.topological_sort()
        proto = graph.model
        onnx.checker.check_model(proto)
    elif quantization == "int8":
        pads = _onnx_fix_pad_values(proto)
        onnx.checker.check_model(proto)
        proto, info = _onnx_quantize_int8(proto, spec, calibration, _onnx_decode_nodes(proto))
        info["padding_ranges_fixed"] = pads
    return proto, info


def _onnx_quantize_int8(proto, spec, calibration, exclude_nodes=()):
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


# ------------------------------------------------------------------ metadata
def _versions():
    versions = {}
    for name in ("keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", None)
        except ImportError:
            pass
    return versions


def _build_metadata(model, fmt, path, model_bytes, runner, options):
    from keras_pose.version import __version__

    h, w = model.image_size
    codec = model.codec
    input_detail = runner.input_details
    outputs = []
    for name in options["output_names"]:
        detail = runner.output_details[name]
        kind = "heatmaps" if name not in RESERVED_OUTPUTS else name
        entry = {"name": name, "shape": detail["shape"], "dtype": detail["dtype"], "kind": kind}
        if name == options["heatmaps_output"]:
            entry["final"] = True
        if detail.get("quantization"):
            entry["quantization"] = detail["quantization"]
        outputs.append(entry)
    decode = None
    if options["include_decode"]:
        from keras_pose.export.in_graph_decode import decode_scale

        decode = {
            "method": "argmax",
            "refinement": None,
            "scale": [float(v) for v in decode_scale(codec)],
            "udp": tuple(codec.heatmap_span) != (codec.heatmap_size[1], codec.heatmap_size[0]),
            "missing_location": [-1.0, -1.0],
            "frame": "input pixels, box frame (keras_pose.geometry.crop_to_image maps them to the image)",
            "keypoints_output": "keypoints",
            "scores_output": "scores",
        }
    quantization = options["quantization"]
    metadata = {
        "schema": export_metadata.SCHEMA,
        "format": fmt,
        "file": os.path.basename(path),
        "file_size": len(model_bytes),
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "model_class": type(model).__name__,
        "model_name": model.name,
        "preset": options["preset"],
        "input": {
            "name": INPUT_NAME,
            "shape": input_detail["shape"],
            "dtype": input_detail["dtype"],
            "layout": "NHWC",
            **({"quantization": input_detail["quantization"]} if input_detail.get("quantization") else {}),
        },
        "image_size": [int(h), int(w)],
        "heatmap_size": [int(v) for v in codec.heatmap_size],
        "preprocessing": export_metadata.preprocessing_metadata(model.preprocessor),
        "keypoints": export_metadata.keypoint_metadata(model.keypoint_spec),
        "decoding": model.export_decoding(),
        "outputs": outputs,
        "heatmaps_output": options["heatmaps_output"],
        "all_outputs": bool(options["all_outputs"]),
        "in_graph_decode": decode,
        "quantization": quantization,
        "batch_size": options["batch_size"],
        "keras_pose_version": __version__,
        "converter": (
            "keras ExportArchive -> SavedModel -> tf.lite.TFLiteConverter"
            if fmt == "tflite"
            else "tf2onnx.convert.from_function"
        ),
        "versions": _versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if fmt == "onnx":
        metadata["opset"] = int(options["opset"])
    if quantization == "int8":
        metadata["int8"] = {
            "calibration_samples": int(options["num_calibration"]),
            "io": "int8" if options["int8_io"] else "float32",
            **options["quant_info"],
        }
    elif quantization == "float16":
        metadata["float16"] = (
            {"weights": "float16", "compute": "float32 on CPU (weights dequantised at load)"}
            if fmt == "tflite"
            else {"weights": "float16", "activations": "float16", "io": "float32"}
        )
    return metadata


# ----------------------------------------------------------------------- API
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
        quantization: None (float32), "float16" or "int8".
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

    Returns:
        The path (str) of the exported model file.

    Raises:
        ExportError: unknown format or quantisation, int8 without
            representative data, a non-TensorFlow backend, bad arguments,
            an output path that cannot be written (checked before the
            conversion; `check_export_path`).
    """
    # The destination is checked first: a bad path fails before the conversion.
    fmt, path = check_export_path(path, format)
    quantization = _check_quantization(quantization)
    _check_model(model)
    if batch_size is not None:
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or int(batch_size) < 1:
            raise ExportError(f"batch_size must be a positive integer or None (dynamic), got {batch_size!r}.")
        batch_size = int(batch_size)
    if fmt == "onnx" and not MIN_ONNX_OPSET <= int(opset) <= MAX_ONNX_OPSET:
        raise ExportError(
            f"opset={opset} is not supported: tf2onnx converts to ONNX opsets {MIN_ONNX_OPSET}..{MAX_ONNX_OPSET} "
            "(17 is the default and runs on onnxruntime >= 1.14)."
        )
    if int8_io and not (fmt == "tflite" and quantization == "int8"):
        raise ExportError("int8_io=True applies to TFLite int8 exports only (format='tflite', quantization='int8').")
    if int8_io and include_decode:
        raise ExportError(
            "int8_io=True with include_decode=True would quantise the keypoints output to int8 steps; "
            "export the int8 model with float I/O (int8_io=False, the default) for in-graph decoding, "
            "or with int8 I/O and decode host-side (runner.decode / codec.decode)."
        )
    num_calibration_samples = int(num_calibration_samples)
    if num_calibration_samples < 1:
        raise ExportError(f"num_calibration_samples must be >= 1, got {num_calibration_samples}.")
    if quantization == "int8" and representative_dataset is None:
        raise ExportError(
            "int8 quantization needs calibration data: pass representative_dataset= normalised crops "
            "(N, H, W, 3), e.g. keras_pose.export.representative_crops(model, "
            "'person_keypoints_val2017.json', 'val2017/', num_samples=100), or use "
            "quantization='float16', which needs none."
        )
    _check_backend(fmt)

    calibration = None
    if quantization == "int8":
        calibration = calibration_samples(representative_dataset, model.image_size, num_calibration_samples)
        batch = batch_size or 1
        if len(calibration) < batch:
            raise ExportError(
                f"int8 calibration with batch_size={batch} needs at least {batch} crops; got {len(calibration)}."
            )

    function, spec, output_names, heatmaps_output = build_serving_function(
        model, batch_size=batch_size, include_decode=include_decode, all_outputs=all_outputs
    )
    quant_info = {}
    if fmt == "tflite":
        model_bytes, quant_info = _tflite_convert(
            model, function, spec, quantization, calibration, int8_io, include_decode
        )
    else:
        proto, quant_info = _onnx_convert(function, spec, opset, quantization, calibration)
        model_bytes = proto.SerializeToString()

    from keras_pose.export.runtime import load_exported

    # Open and run the result with its runtime before anything is written.
    runner = load_exported(model_bytes, format=fmt, metadata=False)
    zeros = np.zeros((batch_size or 1, *model.image_size, 3), np.float32)
    probe = runner(zeros)
    bad = [name for name, value in probe.items() if value.dtype.kind == "f" and not np.all(np.isfinite(value))]
    if bad:
        reference = np.asarray(model.heatmaps_from_outputs(model.predict_on_batch(zeros)), np.float32)
        if np.all(np.isfinite(reference)):
            raise ExportError(
                f"The exported {fmt} model returns non-finite values in {bad} on a zero input where the "
                "Keras model is finite: the conversion is broken (please report it with the model config)."
            )
    def write_model():
        with atomic_write(path, "wb") as f:
            f.write(model_bytes)

    _write_or_explain(path, write_model)
    metadata = _build_metadata(
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
        },
    )
    _write_or_explain(path, lambda: export_metadata.write_metadata(path, metadata))
    return path
