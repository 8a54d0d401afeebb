"""Reading a binary Caffe `.caffemodel` (a `caffe.NetParameter` protobuf) without Caffe or protobuf.

Only what a converter needs is decoded: every layer's name, type and blobs.
Both message forms are read:

- ``layer`` (NetParameter field 100, `LayerParameter`): name = 1, type = 2
  (string), blobs = 7;
- legacy ``layers`` (NetParameter field 2, `V1LayerParameter`): name = 4,
  type = 5 (enum), blobs = 6;

and both blob-shape forms of `BlobProto`: ``shape`` (field 7, `BlobShape`
with packed or unpacked int64 ``dim``) and the legacy ``num`` / ``channels``
/ ``height`` / ``width`` (fields 1-4). Values are ``data`` (field 5, packed or
unpacked float32) or ``double_data`` (field 8). Every other field (bottom,
top, params, phase, layer parameters) is skipped by its wire type.

Blobs become tensors named like the PyTorch ports name them:
``<layer>.weight`` (blob 0), ``<layer>.bias`` (blob 1), ``<layer>.blob<i>``
(any further blob). A legacy 4-D shape of a 1-D blob (``1 x 1 x 1 x N``,
how old Caffe stores biases and slopes) becomes ``(N,)``.
"""

import os

import numpy as np

from keras_pose.errors import CheckpointError

CAFFE_SUFFIX = ".caffemodel"
# V1LayerParameter.LayerType enum values (caffe.proto) of the layers that hold blobs.
V1_TYPES = {4: "Convolution", 14: "InnerProduct", 39: "Deconvolution", 8: "Eltwise"}


class _Reader:
    """Protobuf wire-format reader over a bytes-like buffer (views, no copies)."""

    def __init__(self, buf, source):
        self.buf = memoryview(buf)
        self.source = source

    def varint(self, pos, end):
        result = shift = 0
        while True:
            if pos >= end:
                raise CheckpointError(f"{self.source} is not a complete Caffe model: a varint runs past its message "
                                      "(truncated or corrupt file). Download it again.")
            byte = self.buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, pos
            shift += 7
            if shift > 70:
                raise CheckpointError(f"{self.source} is not a Caffe model: a malformed varint at byte {pos}.")

    def fields(self, start, end):
        """Yield (field number, wire type, value) in [start, end); value = int or (offset, length)."""
        pos = start
        while pos < end:
            key, pos = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise CheckpointError(f"{self.source} is not a Caffe model: field number 0 at byte {pos}.")
            if wire == 0:
                value, pos = self.varint(pos, end)
            elif wire == 1:
                value, pos = (pos, 8), pos + 8
            elif wire == 2:
                length, pos = self.varint(pos, end)
                value, pos = (pos, length), pos + length
            elif wire == 5:
                value, pos = (pos, 4), pos + 4
            else:
                raise CheckpointError(f"{self.source} is not a Caffe model: unsupported protobuf wire type {wire} "
                                      f"(field {number}) at byte {pos}.")
            if pos > end:
                raise CheckpointError(f"{self.source} is not a complete Caffe model: field {number} runs past the "
                                      f"end of its message ({pos} > {end} bytes; truncated file?). Download it again.")
            yield number, wire, value

    def string(self, value):
        offset, length = value
        return bytes(self.buf[offset:offset + length]).decode("utf-8", "replace")

    def packed_varints(self, value):
        offset, length = value
        out, pos = [], offset
        while pos < offset + length:
            v, pos = self.varint(pos, offset + length)
            out.append(v)
        return out


def _blob(reader, start, end, name):
    """(array) of one BlobProto."""
    shape, legacy, chunks = None, {}, []
    for number, wire, value in reader.fields(start, end):
        if number == 7 and wire == 2:  # BlobShape
            dims = []
            for n2, w2, v2 in reader.fields(value[0], value[0] + value[1]):
                if n2 == 1:
                    dims.extend(reader.packed_varints(v2) if w2 == 2 else [v2])
            shape = tuple(int(d) for d in dims)
        elif number in (1, 2, 3, 4) and wire == 0:
            legacy[number] = int(value)
        elif number in (5, 8):  # data (float) / double_data
            size = 4 if number == 5 else 8
            offset, length = value if wire == 2 else (value[0], size)
            chunks.append(np.frombuffer(reader.buf[offset:offset + length], dtype="<f4" if size == 4 else "<f8"))
    data = np.concatenate(chunks) if len(chunks) != 1 else chunks[0]
    data = np.asarray(data, dtype=np.float32)
    if shape is None:
        legacy_shape = tuple(legacy.get(i, 1) for i in (1, 2, 3, 4))
        shape = legacy_shape
        if int(np.prod(shape)) == data.size and legacy_shape[:3] == (1, 1, 1):
            shape = (legacy_shape[3],)
    if int(np.prod(shape)) != data.size:
        raise CheckpointError(f"Caffe blob {name} has shape {shape} ({int(np.prod(shape))} values) but holds "
                              f"{data.size} values; the file is corrupt. Download it again.")
    return data.reshape(shape).copy()


def _layer(reader, start, end, legacy):
    name_field, type_field, blobs_field = (4, 5, 6) if legacy else (1, 2, 7)
    name, kind, blob_ranges = None, None, []
    for number, wire, value in reader.fields(start, end):
        if number == name_field and wire == 2:
            name = reader.string(value)
        elif number == type_field:
            kind = V1_TYPES.get(value, f"V1 type {value}") if legacy else reader.string(value)
        elif number == blobs_field and wire == 2:
            blob_ranges.append(value)
    return name, kind, blob_ranges


def read_caffemodel(path):
    """The tensors and layer types of a binary `.caffemodel`.

    Args:
        path: the file.

    Returns:
        ``(tensors, layer_types)``: ``{"<layer>.weight" | "<layer>.bias" |
        "<layer>.blob<i>": float32 array}`` in file order (Caffe layouts:
        convolution weights ``(out, in, kh, kw)``), and ``{layer: type}``
        for the layers holding blobs.

    Raises:
        CheckpointError: not a Caffe NetParameter (names what was found), a
            truncated file, a blob whose size disagrees with its shape, or a
            layer name given twice.
    """
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a Caffe model. Download it again.")
    with open(path, "rb") as f:
        buf = f.read()
    reader = _Reader(buf, path)
    tensors, types, layer_count = {}, {}, 0
    for number, wire, value in reader.fields(0, len(buf)):
        if number not in (2, 100) or wire != 2:
            continue
        layer_count += 1
        name, kind, blobs = _layer(reader, value[0], value[0] + value[1], legacy=number == 2)
        if not blobs:
            continue
        if not name:
            raise CheckpointError(f"{path}: a Caffe layer with blobs has no name; cannot map its weights.")
        if name in types:
            raise CheckpointError(f"{path}: the Caffe layer {name!r} appears twice; the file is not a single net.")
        types[name] = kind
        for i, (offset, length) in enumerate(blobs):
            key = f"{name}." + ("weight" if i == 0 else "bias" if i == 1 else f"blob{i}")
            tensors[key] = _blob(reader, offset, offset + length, key)
    if not tensors:
        what = "no layers" if not layer_count else f"{layer_count} layers but no blobs (a deploy net without weights?)"
        raise CheckpointError(f"{path} is not a Caffe model with weights: it parses as a NetParameter with {what}. "
                              "Pass the trained .caffemodel (e.g. pose_iter_440000.caffemodel).")
    return tensors, types


def write_caffemodel(path, layers, name="net"):
    """Write ``layers`` (``[(layer name, type, [blob arrays])]``) as a binary `.caffemodel` (``layer`` form).

    Blobs are written with ``data`` (packed float32) then ``shape`` (packed
    int64 dims), fields in increasing number order, as protobuf serialises
    them. For tests and for exporting converted weights back to Caffe names.
    """

    def varint(n):
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def field(number, payload):
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    parts = [field(1, name.encode())]
    for layer_name, kind, blobs in layers:
        body = field(1, layer_name.encode()) + field(2, kind.encode())
        for blob in blobs:
            blob = np.ascontiguousarray(blob, dtype="<f4")
            dims = b"".join(varint(int(d)) for d in blob.shape)
            body += field(7, field(5, blob.tobytes()) + field(7, field(1, dims)))
        parts.append(field(100, body))
    from keras_pose.utils.file_utils import atomic_write

    with atomic_write(path) as f:
        f.write(b"".join(parts))


__all__ = ["CAFFE_SUFFIX", "read_caffemodel", "write_caffemodel"]
