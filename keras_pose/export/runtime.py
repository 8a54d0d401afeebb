"""Run exported pose models: LiteRT (``.tflite``) and ONNX Runtime (``.onnx``).

```python
from keras_pose.export import load_exported

runner = load_exported("pose.tflite")          # reads pose.tflite.json when present
outputs = runner(crops)                        # crops: (N, H, W, 3) normalised float32
outputs["heatmaps"]                            # (N, h, w, K) float32
keypoints, scores = runner.decode(crops)       # the model's codec, as predict_keypoints
```

Runners take any number of crops: a graph exported with a static batch
``b`` is run on chunks of ``b`` (the last one zero-padded, the padding
dropped). int8 inputs are quantised and int8 / uint8 outputs dequantised
with the tensors' scale and zero point, so callers always see float32.
Needs no Keras or TensorFlow: ``ai_edge_litert`` for ``.tflite``,
``onnxruntime`` for ``.onnx``.
"""

import os

import numpy as np

TFLITE_MAGIC = b"TFL3"
ONNX_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}


def _sniff_format(path, content):
    if content is not None:
        return "tflite" if content[4:8] == TFLITE_MAGIC else "onnx"
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".tflite", ".lite"):
        return "tflite"
    if suffix == ".onnx":
        return "onnx"
    with open(path, "rb") as f:
        head = f.read(8)
    return "tflite" if head[4:8] == TFLITE_MAGIC else "onnx"


def load_exported(model, format=None, num_threads=None, metadata=True, providers=None):
    """A runner for an exported model.

    Args:
        model: path of a ``.tflite`` / ``.onnx`` file, or its bytes.
        format: "tflite" or "onnx"; default from the extension (or the
            TFLite file identifier).
        num_threads: CPU threads (None: the runtime's default).
        metadata: True reads ``<path>.json`` when present (None when
            absent); False skips it; or a metadata dict.
        providers: onnxruntime execution providers (default CPU).

    Returns:
        `TFLiteRunner` or `ONNXRunner`: call it on normalised crops
        ``(N, H, W, 3)`` (or one ``(H, W, 3)``) to get a dict of float32
        NumPy outputs by name.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown format.
    """
    content = None
    path = None
    if isinstance(model, (bytes, bytearray, memoryview)):
        content = bytes(model)
    else:
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No exported model at {path!r}; export one with keras_pose.export.export_model.")
    fmt = format or _sniff_format(path, content)
    fmt = {"litert": "tflite"}.get(str(fmt).lower(), str(fmt).lower())
    if fmt not in ("tflite", "onnx"):
        raise ValueError(f"Unknown exported model format {format!r}; expected 'tflite' or 'onnx'.")
    if metadata is True:
        meta = None
        if path is not None:
            from keras_pose.export.export_metadata import metadata_path, read_metadata

            if os.path.isfile(metadata_path(path)):
                meta = read_metadata(path)
    elif isinstance(metadata, dict):
        meta = metadata
    else:
        meta = None
    cls = TFLiteRunner if fmt == "tflite" else ONNXRunner
    kwargs = {"providers": providers} if fmt == "onnx" else {}
    return cls(path=path, content=content, num_threads=num_threads, metadata=meta, **kwargs)


class ExportedModelRunner:
    """Shared plumbing: batching, (de)quantisation, decoding.

    Attributes:
        format: "tflite" or "onnx".
        path: the model file (None when loaded from bytes).
        metadata: the export metadata dict, or None.
        input_details: {"name", "shape" (None = dynamic), "dtype",
            "quantization" ({"scale", "zero_point"} or None)}.
        output_details: {name: {"shape", "dtype", "quantization"}}.
        output_names: output names (metadata order when known).
    """

    format = None

    def __init__(self, path, metadata):
        self.path = path
        self.metadata = metadata

    # -- subclass hooks ------------------------------------------------------
    def _run(self, batch):
        raise NotImplementedError

    # -- public --------------------------------------------------------------
    @property
    def output_names(self):
        names = list(self.output_details)
        if self.metadata:
            ordered = [o["name"] for o in self.metadata.get("outputs", []) if o["name"] in self.output_details]
            names = ordered + [n for n in names if n not in ordered]
        return names

    @property
    def batch_size(self):
        """The static batch of the graph, or None when dynamic."""
        return self.input_details["shape"][0]

    @property
    def image_size(self):
        """(H, W) of the input."""
        return tuple(self.input_details["shape"][1:3])

    def __call__(self, images):
        """Run the model.

        Args:
            images: float32 normalised crops ``(N, H, W, 3)`` or ``(H, W, 3)``.

        Returns:
            dict of float32 (integer outputs keep their type) NumPy arrays
            by output name, batch ``N`` (no batch axis for a single crop).
        """
        x = np.asarray(images, np.float32)
        single = x.ndim == 3
        if single:
            x = x[None]
        expected = tuple(self.input_details["shape"][1:])
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"The exported model takes normalised crops (N, {expected[0]}, {expected[1]}, {expected[2]}) "
                f"NHWC float32, got {x.shape}. Crop with model.crop_people or resize to the input size."
            )
        n = len(x)
        batch = self.batch_size
        if n == 0:
            return {
                name: np.zeros([0] + [d or 0 for d in self.output_details[name]["shape"][1:]], np.float32)
                for name in self.output_names
            }
        chunks = []
        if batch is None:
            chunks.append(self._dequantize_outputs(self._run(self._quantize_input(x))))
        else:
            for start in range(0, n, batch):
                part = x[start : start + batch]
                valid = len(part)
                if valid < batch:
                    part = np.concatenate([part, np.zeros((batch - valid, *part.shape[1:]), np.float32)])
                result = self._dequantize_outputs(self._run(self._quantize_input(part)))
                chunks.append({k: v[:valid] for k, v in result.items()})
        outputs = {name: np.concatenate([c[name] for c in chunks], axis=0) for name in self.output_names}
        if single:
            outputs = {k: v[0] for k, v in outputs.items()}
        return outputs

    def heatmaps(self, images):
        """The final heatmaps ``(N, h, w, K)`` float32."""
        name = (self.metadata or {}).get("heatmaps_output")
        if not name:
            name = "heatmaps" if "heatmaps" in self.output_details else self.output_names[0]
        return self(images)[name]

    def decode(self, images):
        """Keypoints ``(N, K, 2)`` (input px, box frame) and scores ``(N, K)``.

        Decodes the final heatmaps with the codec recorded in the metadata
        (with its sub-pixel refinement), as ``predict_keypoints`` does;
        ``keras_pose.geometry.crop_to_image`` maps them to the image.
        """
        if not self.metadata:
            raise ValueError("decode needs the export metadata (<model>.json) to know the codec.")
        from keras_pose.codecs import get_codec

        codec = get_codec(self.metadata["decoding"]["codec"])
        return codec.decode(self.heatmaps(images))

    # -- quantisation --------------------------------------------------------
    def _quantize_input(self, x):
        q = self.input_details.get("quantization")
        dtype = np.dtype(self.input_details["dtype"])
        if not q or dtype.kind not in "iu":
            return x.astype(dtype, copy=False)
        info = np.iinfo(dtype)
        values = np.round(x / q["scale"] + q["zero_point"])
        return np.clip(values, info.min, info.max).astype(dtype)

    def _dequantize_outputs(self, outputs):
        result = {}
        for name, value in outputs.items():
            q = self.output_details[name].get("quantization")
            value = np.asarray(value)
            if q and value.dtype.kind in "iu":
                value = (value.astype(np.float32) - np.float32(q["zero_point"])) * np.float32(q["scale"])
            elif value.dtype.kind == "f":
                value = value.astype(np.float32, copy=False)
            result[name] = value
        return result


def _tflite_detail(detail):
    shape = [int(v) for v in detail.get("shape_signature", detail["shape"])]
    shape = [None if v < 0 else v for v in shape]
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = np.dtype(detail["dtype"]).name
    quantization = None
    if scale and np.dtype(detail["dtype"]).kind in "iu":
        quantization = {"scale": float(scale), "zero_point": int(zero_point)}
    return {"shape": shape, "dtype": dtype, "quantization": quantization}


class TFLiteRunner(ExportedModelRunner):
    """Runs a ``.tflite`` model with the LiteRT interpreter (``ai_edge_litert``).

    (The interpreter, not ``tf.lite.Interpreter``; the XNNPACK delegate is
    applied by default.)
    """

    format = "tflite"

    def __init__(self, path=None, content=None, num_threads=None, metadata=None):
        super().__init__(path, metadata)
        self._source = {"model_content": content} if content is not None else {"model_path": path}
        self._num_threads = num_threads
        self.delegate = "xnnpack"
        self._load()

    def _load(self, **kwargs):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(**self._source, num_threads=self._num_threads, **kwargs)
        signatures = self.interpreter.get_signature_list()
        if not signatures:
            raise ValueError(
                f"{self.path or 'the model'} has no SignatureDef; export it with keras_pose.export.export_model."
            )
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        self._runner = self.interpreter.get_signature_runner(key)
        inputs = self._runner.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"Expected a model with one image input, got inputs {sorted(inputs)}.")
        self._input_name, detail = next(iter(inputs.items()))
        self.input_details = {"name": self._input_name, **_tflite_detail(detail)}
        self.output_details = {name: _tflite_detail(d) for name, d in self._runner.get_output_details().items()}

    def _run(self, batch):
        try:
            return self._runner(**{self._input_name: batch})
        except RuntimeError as error:
            if self.delegate != "xnnpack" or "XNNPACK" not in str(error):
                raise
        # The XNNPACK delegate refused part of the graph: the built-in kernels run everything.
        import warnings

        from ai_edge_litert.interpreter import OpResolverType

        warnings.warn(
            f"XNNPACK could not prepare {self.path or 'the model'}; running it on the built-in LiteRT kernels.",
            stacklevel=3,
        )
        self.delegate = None
        self._load(experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        return self._runner(**{self._input_name: batch})


class ONNXRunner(ExportedModelRunner):
    """Runs a ``.onnx`` model with onnxruntime (CPU provider by default)."""

    format = "onnx"

    def __init__(self, path=None, content=None, num_threads=None, metadata=None, providers=None):
        super().__init__(path, metadata)
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.session = ort.InferenceSession(
            content if content is not None else path,
            sess_options=options,
            providers=providers or ["CPUExecutionProvider"],
        )
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"Expected a model with one image input, got {[i.name for i in inputs]}.")

        def detail(arg):
            shape = [d if isinstance(d, int) and d > 0 else None for d in arg.shape]
            dtype = ONNX_TYPES.get(arg.type, arg.type)
            return {"shape": shape, "dtype": dtype, "quantization": None}

        self._input_name = inputs[0].name
        self.input_details = {"name": self._input_name, **detail(inputs[0])}
        self.output_details = {o.name: detail(o) for o in self.session.get_outputs()}
        self._names = [o.name for o in self.session.get_outputs()]

    def _run(self, batch):
        values = self.session.run(self._names, {self._input_name: batch})
        return dict(zip(self._names, values))
