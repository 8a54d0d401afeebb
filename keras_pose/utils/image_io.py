"""Image reading with clear errors (OpenCV), and EXIF orientation."""

import os
import struct

import cv2
import numpy as np

from keras_pose.errors import ImageReadError

# EXIF tag 0x0112: how the stored pixels must be turned to show the image
# upright. 1 is "as stored"; 2..8 flip and/or rotate (see `apply_orientation`).
ORIENTATION_TAG = 0x0112

# Decode flags: keep 16-bit depth and colour, but let OpenCV apply the EXIF
# orientation (IMREAD_UNCHANGED would ignore it), as cv2.imread(IMREAD_COLOR).
_DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def read_image(image):
    """Read an image as RGB uint8 ``(H, W, 3)``, upright.

    Files are decoded with OpenCV and turned upright per their EXIF
    ``Orientation`` tag (all 8 values), exactly as ``cv2.imread(path,
    cv2.IMREAD_COLOR)`` shows them -- annotations (COCO, ...) are in that
    upright frame. The tf.data pipeline (``keras_pose.data``) decodes to the
    same pixels.

    Pixel values (files and arrays alike):

    - ``uint8``: used as is.
    - ``uint16`` (16-bit PNG / TIFF files, or arrays): scaled by the full
      16-bit range, ``round(v / 257)`` (65535 -> 255), so brightness does not
      depend on the image content.
    - other integer dtypes (``int64``, ``int32``, ``uint32``, ...): accepted
      when every value lies in 0..255, else refused.
    - float arrays: accepted when the values lie in 0..255 (rounded to the
      nearest integer); refused when the maximum is <= 1 (a 0..1 image:
      multiply by 255 first) or any value is outside 0..255 (e.g. an image
      already normalised with a mean / std), or is NaN / Inf. Float image
      files (HDR, EXR, float TIFF) are refused.
    - ``bool`` and non-numeric arrays are refused.

    Args:
        image: a file path (str / PathLike) or a NumPy array ``(H, W, 3)``
            RGB. Arrays are checked, not converted: pass RGB, 3 channels
            (arrays carry no EXIF tag and are used as given).

    Returns:
        ``(H, W, 3)`` uint8 RGB array (the input itself for a uint8 array).

    Raises:
        ImageReadError: the file is missing or does not decode, or the array
            is empty, has the wrong shape or channel count, or a dtype /
            value range listed above as refused.
    """
    if isinstance(image, (str, os.PathLike)):
        return _read_file(os.fspath(image))
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ImageReadError(
            f"Expected an RGB image array of shape (H, W, 3), got shape "
            f"{array.shape}. Convert grayscale with "
            "cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) and drop alpha channels."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(
            f"The image array is empty (shape {array.shape}, 0 pixels); pass the decoded image, "
            "not an empty crop or a failed read."
        )
    return _to_uint8(array, "The image array")


def _read_file(path):
    if not os.path.isfile(path):
        raise ImageReadError(f"Image file not found: {path!r}.")
    data = np.fromfile(path, dtype=np.uint8)
    decoded = cv2.imdecode(data, _DECODE_FLAGS) if data.size else None
    if decoded is None or decoded.size == 0:
        raise ImageReadError(
            f"Could not decode image {path!r}: the file is empty, truncated "
            "or not an image format OpenCV reads (JPEG, PNG, BMP, TIFF, WebP)."
        )
    if decoded.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(
            f"Image {path!r} holds {decoded.dtype} pixels (an HDR / floating-point or 32-bit "
            "file); keras-pose reads 8- and 16-bit images. Convert it to an 8-bit PNG or JPEG."
        )
    decoded = _to_uint8(decoded, f"Image {path!r}")
    if decoded.ndim == 2:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
    if decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    if decoded.shape[2] == 3:
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    raise ImageReadError(f"Image {path!r} has {decoded.shape[2]} channels; expected 1, 3 or 4.")


def _to_uint8(array, what):
    """Pixel values -> uint8 per the rules of `read_image`."""
    dtype = array.dtype
    if dtype == np.uint8:
        return array
    if dtype == np.bool_:
        raise ImageReadError(
            f"{what} is boolean (a mask?); pass uint8 RGB pixels in 0..255 "
            "(for a mask: mask.astype('uint8') * 255)."
        )
    if dtype == np.uint16:
        # round(v / 257): 257 is odd, so (v + 128) // 257 never ties.
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ImageReadError(
                f"{what} is {dtype} with values {low}..{high}, outside 0..255; pass uint8 RGB "
                "(16-bit data as uint16, which is scaled by 1/257)."
            )
        return array.astype(np.uint8)
    if np.issubdtype(dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            raise ImageReadError(
                f"{what} has {int(array.size - finite.sum())} NaN / Inf value(s); pass finite "
                "uint8 RGB pixels in 0..255."
            )
        low, high = float(array.min()), float(array.max())
        if high <= 1.0:
            raise ImageReadError(
                f"{what} is a float image with values in [{low:g}, {high:g}], i.e. 0..1; pass "
                "uint8 RGB in 0..255 (e.g. (img * 255).round().astype('uint8'))."
            )
        if low < -0.5 or high >= 255.5:
            raise ImageReadError(
                f"{what} is a float image with values {low:g}..{high:g}, outside 0..255 (already "
                "normalised?); pass the raw uint8 RGB pixels -- the model normalises them."
            )
        return np.rint(array).astype(np.uint8)
    raise ImageReadError(f"{what} has dtype {dtype}; pass uint8 RGB pixels in 0..255.")


# --------------------------------------------------------------------- EXIF


def apply_orientation(image, orientation):
    """Turn stored pixels ``(H, W, ...)`` upright per an EXIF orientation.

    The same operations as OpenCV's ``imread``: 2 mirror left-right, 3 rotate
    180 deg, 4 mirror top-bottom, 5 transpose, 6 rotate 90 deg clockwise, 7
    transverse, 8 rotate 90 deg counter-clockwise; 1 (and any unknown value)
    leaves the image as stored. Orientations 5..8 swap height and width.

    Returns:
        a C-contiguous array (the input itself for orientation 1).
    """
    orientation = int(orientation)
    if orientation not in range(2, 9):
        return image
    if orientation >= 5:
        image = np.swapaxes(image, 0, 1)
    if orientation in (2, 6):
        image = image[:, ::-1]
    elif orientation in (3, 7):
        image = image[::-1, ::-1]
    elif orientation in (4, 8):
        image = image[::-1]
    return np.ascontiguousarray(image)


def exif_orientation(source):
    """The EXIF orientation (1..8) of an encoded image; 1 when it has none.

    Reads what OpenCV reads: the first ``Exif`` APP1 segment of a JPEG, the
    ``eXIf`` chunk of a PNG or the ``EXIF`` chunk of a WebP (the TIFF
    structure itself, without the ``Exif\\0\\0`` prefix). Other formats,
    missing, malformed or out-of-range tags give 1.

    Args:
        source: the encoded bytes, or a file path (only the headers are
            read, not the pixel data).

    Returns:
        int in 1..8.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(os.fspath(source), "rb") as f:
                return _orientation_from_stream(f)
        except OSError:
            return 1
    import io

    return _orientation_from_stream(io.BytesIO(bytes(source)))


def _orientation_from_stream(f):
    try:
        tiff = _exif_block(f)
    except (OSError, struct.error, ValueError):
        return 1
    return _tiff_orientation(tiff) if tiff else 1


def _exif_block(f):
    """The TIFF-structured EXIF data of a JPEG / PNG / WebP stream, or None."""
    head = f.read(12)
    if head[:2] == b"\xff\xd8":  # JPEG: walk the marker segments up to SOS.
        f.seek(2)
        while True:
            byte = f.read(1)
            if not byte:
                return None
            if byte != b"\xff":
                return None  # corrupt marker stream
            marker = f.read(1)
            while marker == b"\xff":  # fill bytes
                marker = f.read(1)
            if not marker or marker in (b"\xda", b"\xd9"):  # SOS / EOI: no more headers
                return None
            code = marker[0]
            if code == 0x01 or 0xD0 <= code <= 0xD7:  # standalone markers
                continue
            size_bytes = f.read(2)
            if len(size_bytes) < 2:
                return None
            size = struct.unpack(">H", size_bytes)[0] - 2
            if size < 0:
                return None
            if code == 0xE1 and size > 6:
                payload = f.read(size)
                if payload[:6] == b"Exif\x00\x00":
                    return payload[6:]
            else:
                f.seek(size, os.SEEK_CUR)
    if head[:8] == b"\x89PNG\r\n\x1a\n":  # PNG: chunks (length, type, data, crc).
        f.seek(8)
        while True:
            header = f.read(8)
            if len(header) < 8:
                return None
            length, kind = struct.unpack(">I", header[:4])[0], header[4:]
            if kind == b"eXIf":
                return f.read(length)
            if kind == b"IEND":
                return None
            f.seek(length + 4, os.SEEK_CUR)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":  # WebP: RIFF chunks.
        while True:
            header = f.read(8)
            if len(header) < 8:
                return None
            kind, length = header[:4], struct.unpack("<I", header[4:])[0]
            if kind == b"EXIF":
                return f.read(length)
            f.seek(length + (length & 1), os.SEEK_CUR)
    return None


def _tiff_orientation(tiff):
    """Orientation tag of IFD0 of a TIFF structure (bytes); 1 if absent/invalid."""
    if len(tiff) < 8:
        return 1
    order = tiff[:2]
    if order == b"II":
        endian = "<"
    elif order == b"MM":
        endian = ">"
    else:
        return 1
    if struct.unpack(endian + "H", tiff[2:4])[0] != 42:
        return 1
    offset = struct.unpack(endian + "I", tiff[4:8])[0]
    if offset + 2 > len(tiff):
        return 1
    count = struct.unpack(endian + "H", tiff[offset : offset + 2])[0]
    for i in range(count):
        entry = offset + 2 + 12 * i
        if entry + 12 > len(tiff):
            return 1
        tag, kind = struct.unpack(endian + "HH", tiff[entry : entry + 4])
        if tag != ORIENTATION_TAG:
            continue
        if kind == 3:  # SHORT, stored left-aligned in the 4-byte value field
            value = struct.unpack(endian + "H", tiff[entry + 8 : entry + 10])[0]
        elif kind == 4:  # LONG
            value = struct.unpack(endian + "I", tiff[entry + 8 : entry + 12])[0]
        else:
            return 1
        return value if 1 <= value <= 8 else 1
    return 1
