"""Fast checks of the export modules that need no conversion: options, files, the codecs' argmax decode.

The conversions themselves (TFLite, ONNX, quantisation) are in test_export.py.
"""

import errno
import os

import numpy as np
import pytest

from keras_pose.codecs import CPNHeatmap, MSRAHeatmap, UDPHeatmap, get_heatmap_maximum
from keras_pose.export import ExportError, argmax_decode_numpy, decode_scale
from keras_pose.export import files, options


# ------------------------------------------------------------------ options
def test_quantization_names_and_aliases():
    assert options.check_quantization("FP16") == "float16"
    assert options.check_quantization("dynamic") == "dynamic_int8"
    assert options.check_quantization("fp32") is None
    with pytest.raises(ExportError, match="Unknown quantization 'int4'.*'dynamic_int8'"):
        options.check_quantization("int4")


def test_int8_option_checks_name_the_fix():
    with pytest.raises(ExportError, match="dynamic_int8.*TFLite.*for ONNX use quantization='int8'"):
        options.check_int8_options("onnx", "dynamic_int8", False, False, None)
    with pytest.raises(ExportError, match="needs calibration data.*'dynamic_int8'"):
        options.check_int8_options("tflite", "int8", False, False, None)
    options.check_int8_options("tflite", "dynamic_int8", False, True, None)  # no calibration needed
    with pytest.raises(ExportError, match="int8_io=True applies to TFLite int8"):
        options.check_int8_options("tflite", "dynamic_int8", True, False, None)
    assert options.check_batch_size(None) is None and options.check_batch_size(4.0) == 4
    with pytest.raises(ExportError, match="positive integer"):
        options.check_batch_size(True)


# -------------------------------------------------------------------- files
def test_check_export_path_resolves_format_and_extension(tmp_path):
    assert files.check_export_path(tmp_path / "m.tflite") == ("tflite", str(tmp_path / "m.tflite"))
    assert files.check_export_path(tmp_path / "m", "litert") == ("tflite", str(tmp_path / "m.tflite"))
    assert files.check_export_path(tmp_path / "a" / "b" / "m.onnx") == ("onnx", str(tmp_path / "a" / "b" / "m.onnx"))
    with pytest.raises(ExportError, match="ends in '.onnx'"):
        files.check_export_path(tmp_path / "m.onnx", "tflite")
    (tmp_path / "d.onnx").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        files.check_export_path(tmp_path / "d.onnx")


def test_write_model_file_is_atomic_and_names_the_users_path(tmp_path, monkeypatch):
    target = tmp_path / "m.tflite"
    files.write_model_file(str(target), b"TFL3-bytes")
    assert target.read_bytes() == b"TFL3-bytes" and os.listdir(tmp_path) == ["m.tflite"]

    def full_disk(path, mode="wb"):
        raise OSError(errno.ENOSPC, "No space left on device", str(path) + ".abc.tmp")

    monkeypatch.setattr(files, "atomic_write", full_disk)
    with pytest.raises(ExportError, match="No space left on device") as info:
        files.write_model_file(str(tmp_path / "n.tflite"), b"x")
    assert str(tmp_path / "n.tflite") in str(info.value) and ".tmp" not in str(info.value)


def test_export_temp_dir_is_removed_and_stale_folders_cleaned(tmp_path, monkeypatch):
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    stale = tmp_path / f"{files.TEMP_PREFIX}{dead}@{files._host()}-x1"
    stale.mkdir()
    mine = tmp_path / f"{files.TEMP_PREFIX}{os.getpid()}@{files._host()}-y2"  # a live process's
    mine.mkdir()
    with pytest.raises(KeyError):
        with files.export_temp_dir() as folder:
            assert os.path.basename(folder).startswith(f"{files.TEMP_PREFIX}{os.getpid()}@")
            assert not stale.exists() and mine.exists()
            raise KeyError("conversion failed")
    assert not os.path.exists(folder) and mine.exists()


# ----------------------------------------------------- the codecs' argmax decode
def _heatmaps(shape, seed=0):
    rng = np.random.default_rng(seed)
    hm = rng.standard_normal(shape).astype(np.float32)
    hm[0, :, :, 0] = -1.0  # no positive value: missing
    return hm


@pytest.mark.parametrize(
    "codec,scale,offset",
    [
        (MSRAHeatmap((32, 24), (8, 6)), (4.0, 4.0), 0.0),
        (UDPHeatmap((32, 24), (8, 6)), (24 / 5, 32 / 7), 0.0),
        (CPNHeatmap((32, 24), (8, 6), kernel_sizes=(3,), blur_kernel_size=3), (4.0, 4.0), 0.5),
    ],
)
def test_decode_argmax_is_the_argmax_mapped_to_input_px(codec, scale, offset):
    hm = _heatmaps((3, 8, 6, 5))
    locs, vals = get_heatmap_maximum(hm)
    keypoints, scores = codec.decode_argmax(hm)
    np.testing.assert_allclose(keypoints, (locs + offset) * np.array(scale), rtol=1e-6)
    np.testing.assert_array_equal(scores, vals)
    np.testing.assert_allclose(decode_scale(codec), scale)
    np.testing.assert_array_equal(argmax_decode_numpy(hm, codec)[0], keypoints)
    single, _ = codec.decode_argmax(hm[1])
    np.testing.assert_array_equal(single, keypoints[1])


@pytest.mark.parametrize("codec", [MSRAHeatmap((256, 192), (64, 48)), CPNHeatmap((256, 192), (64, 48))])
def test_decode_argmax_is_decode_without_refinement(codec):
    """On Gaussian peaks, the refined decode moves the argmax decode by under one stride."""
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(20, 170, (4, 17, 2))
    heatmaps = MSRAHeatmap((256, 192), (64, 48), unbiased=True).encode(keypoints)["heatmaps"]  # sub-pixel peaks
    refined, _ = codec.decode(heatmaps)
    argmax, _ = codec.decode_argmax(heatmaps)
    assert np.abs(refined - argmax).max() <= 4.0  # the stride (CPN: 0.25 * stride shift + its blur)
    assert np.abs(refined - argmax).max() > 0  # and they do differ: decode refines
