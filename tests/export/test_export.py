"""Export to TFLite (LiteRT) and ONNX: parity with Keras, quantisation, metadata, errors.

Every family gets a small configuration, fitted for a few dozen steps on the
real COCO sample crops (tests/data/coco, the tf.data pipeline of
keras_pose.data) so its heatmaps have distinct peaks where the people's
joints are -- with random weights argmax decoding, and so any keypoint
comparison, means nothing. Parity is measured on the 12 COCO people and
their mirror images (24 crops, cropped the inference way), int8 calibrated
on those crops plus the OCHuman sample people (34 crops).

Run with `-s` to see the figures each test measures.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import warnings

import numpy as np
import pytest
from pose_testing.paths import DATA_DIR

import keras

tf2onnx = pytest.importorskip("tf2onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")
onnx = pytest.importorskip("onnx")

import keras_pose  # noqa: E402
from keras_pose.datasets import load_coco_keypoints  # noqa: E402
from keras_pose.export import (  # noqa: E402
    ExportError,
    argmax_decode_numpy,
    argmax_decode_tf,
    export_model,
    load_exported,
    metadata_path,
    read_metadata,
    representative_crops,
)

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="export runs on the TensorFlow backend (KERAS_BACKEND=tensorflow)"
)

COCO = DATA_DIR / "coco" / "test_coco.json"
OCHUMAN = DATA_DIR / "ochuman" / "test_ochuman.json"


# ------------------------------------------------------------------ models
def _vitpose():
    backbone = keras_pose.ViTPoseBackbone(image_size=(64, 48), hidden_dim=64, num_layers=2, num_heads=4, mlp_dim=128)
    return keras_pose.ViTPose(backbone, deconv_filters=(32, 32))


def _cpn():
    return keras_pose.CPN.from_checkpoint_config(
        image_size=(64, 32),
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_filters=[64, 16, 16, 16],
        global_channels=16,
        refine_planes=8,
    )


def _cpm():
    return keras_pose.CPM.from_checkpoint_config(
        image_size=(64, 48),
        num_stages=2,
        feat_channels=8,
        middle_channels=4,
        stem_channels=8,
        stem_mid_channels=4,
        stem_head_channels=16,
    )


def _hourglass():
    return keras_pose.Hourglass.from_checkpoint_config(
        image_size=(64, 64),
        num_stacks=2,
        downsample_times=2,
        stage_channels=[16, 16, 20],
        stage_blocks=[1, 1, 2],
        feat_channels=16,
        stem_channels=16,
    )


BUILDERS = {"vitpose": _vitpose, "cpn": _cpn, "cpm": _cpm, "hourglass": _hourglass}
FAMILIES = list(BUILDERS)
# (steps, learning rate) of the fit that gives the heatmaps their peaks.
FIT = {"vitpose": (150, 3e-3), "cpn": (80, 3e-3), "cpm": (100, 3e-3), "hourglass": (80, 3e-3)}


class Family:
    """A fitted model, its evaluation and calibration crops and Keras references."""

    def __init__(self, name):
        keras.utils.set_random_seed(0)
        self.name = name
        self.model = BUILDERS[name]()
        with _shared_weights(name) as weights_file:
            if weights_file is not None and os.path.isfile(weights_file):
                with warnings.catch_warnings():  # the file holds Adam's state too; not needed here
                    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                    self.model.load_weights(weights_file)  # fitted by the other pytest-xdist worker
            else:
                self._fit()
                if weights_file is not None:
                    self.model.save_weights(weights_file + ".tmp.weights.h5")
                    os.replace(weights_file + ".tmp.weights.h5", weights_file)
        self.crops = representative_crops(self.model, COCO, num_samples=24)  # 12 people + mirrors
        self.calibration = np.concatenate([self.crops, representative_crops(self.model, OCHUMAN, num_samples=10)])
        self.outputs = self.model.predict(self.crops, verbose=0)
        self.heatmaps = np.asarray(self.model.heatmaps_from_outputs(self.outputs), np.float32)
        self.keypoints, self.scores = self.model.codec.decode(self.heatmaps)
        flat = self.heatmaps.reshape(len(self.heatmaps), -1, self.heatmaps.shape[-1])
        self.contrast = float(np.median((flat.max(1) - np.median(flat, 1)) / (flat.std(1) + 1e-9)))
        self.range = float(np.ptp(self.heatmaps))

    def _fit(self):
        from keras_pose.data import model_dataset

        data = load_coco_keypoints(COCO)
        images, targets = next(
            iter(model_dataset(self.model, data, batch_size=len(data), training=True, augment=False, shuffle=False))
        )
        steps, lr = FIT[self.name]
        self.model.compile(optimizer=keras.optimizers.Adam(lr))
        self.model.fit(images, targets, batch_size=len(data), epochs=steps, verbose=0, shuffle=False)

    @property
    def stride(self):
        return self.model.image_size[1] / self.model.codec.heatmap_size[1]

    def keypoint_error(self, heatmaps):
        """Per-keypoint distance (input px) between codec decodes of `heatmaps` and of the Keras heatmaps."""
        keypoints, _ = self.model.codec.decode(heatmaps)
        return np.linalg.norm(keypoints - self.keypoints, axis=-1)


_FAMILIES = {}


_SHARED_FOLDER = []  # this run's folder common to the pytest-xdist workers (set by the fixture below)


@pytest.fixture(scope="module", autouse=True)
def _shared_folder(tmp_path_factory):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # basetemp is <run>/popen-gwN: <run> is the run's own
        _SHARED_FOLDER[:] = [str(tmp_path_factory.getbasetemp().parent / "export_families")]
    yield
    _SHARED_FOLDER.clear()


@contextlib.contextmanager
def _shared_weights(name):
    """The fitted weights file of family `name` shared by this run's pytest-xdist workers, locked.

    Under `pytest -n 2` both workers need most families; the first fits and saves the
    weights while holding the family's lock, the second waits and loads them (the fit
    costs tens of CPU seconds per family). Yields None outside xdist (one process: the
    module-level `_FAMILIES` already shares the model). pytest rotates the folder with
    its other temporary folders.
    """
    if not _SHARED_FOLDER:
        yield None
        return
    folder = _SHARED_FOLDER[0]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield os.path.join(folder, f"{name}.weights.h5")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ViTPose's matrix runs in the fast suite; the other families' (a fit each) carry `slow`
# (their float32 ONNX export is in the fast suite through tests/models/test_family_harness.py).
SLOW = pytest.mark.slow


@pytest.fixture(scope="module", params=[pytest.param(f, marks=() if f == "vitpose" else SLOW) for f in FAMILIES])
def family(request):
    if request.param not in _FAMILIES:
        _FAMILIES[request.param] = Family(request.param)
        fam = _FAMILIES[request.param]
        print(
            f"\n[{fam.name}] heatmaps {fam.heatmaps.shape[1:3]} stride {fam.stride:g}, median peak contrast "
            f"{fam.contrast:.2f}, all maxima > 0: {bool((fam.scores > 0).all())}"
        )
    return _FAMILIES[request.param]


def _get(name):
    if name not in _FAMILIES:
        _FAMILIES[name] = Family(name)
    return _FAMILIES[name]


def _summary(err):
    return f"mean {err.mean():.3f} median {np.median(err):.3f} p95 {np.percentile(err, 95):.2f} max {err.max():.2f} px"


# ----------------------------------------------------------- float32 parity
@SLOW  # float32 export of every family, random weights: tests/models/test_family_harness.py
@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_float32_parity(family, fmt, tmp_path):
    path = export_model(family.model, tmp_path / f"{family.name}.{fmt}")
    runner = load_exported(path)
    heatmaps = runner(family.crops)["heatmaps"]
    diff = float(np.abs(heatmaps - family.heatmaps).max())
    print(f"[{family.name} {fmt} float32] max abs diff {diff:.3g} = {diff / family.range:.2g} x output range")
    assert heatmaps.shape == family.heatmaps.shape
    assert diff <= 1e-4 * family.range
    np.testing.assert_allclose(family.keypoint_error(heatmaps).max(), 0, atol=1e-3)
    if fmt == "onnx":
        proto = onnx.load(path)
        onnx.checker.check_model(proto)
        ops = {n.op_type for n in proto.graph.node}
        assert "Erfc" not in ops  # onnxruntime rejects Erfc; GELU must export as Erf
        assert proto.opset_import[0].version == 17


# ------------------------------------------------------------ quantisation
def _tflite_float_constants(path):
    """Number of float32 constant values (the weights, BatchNorm folded) in a .tflite file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    produced = {t for op in interpreter._get_ops_details() for t in op["outputs"]}
    produced |= {d["index"] for d in interpreter.get_input_details()}
    return sum(
        int(np.prod(t["shape"]))
        for t in interpreter.get_tensor_details()
        if t["index"] not in produced and t["dtype"] == np.float32
    )


def test_tflite_float16(family, tmp_path):
    fp32 = export_model(family.model, tmp_path / "fp32.tflite")
    path = export_model(family.model, tmp_path / "fp16.tflite", quantization="float16")
    heatmaps = load_exported(path)(family.crops)["heatmaps"]
    ratio = os.path.getsize(path) / os.path.getsize(fp32)
    saved = os.path.getsize(fp32) - os.path.getsize(path)
    weights = _tflite_float_constants(fp32)
    diff = np.abs(heatmaps - family.heatmaps).max() / family.range
    print(f"[{family.name} tflite float16] heatmaps max diff {diff:.2g} x range; size {ratio:.2f} x float32")
    assert np.abs(heatmaps - family.heatmaps).max() <= 0.02 * family.range
    _float16_check(family, heatmaps, "tflite float16")
    assert saved >= 1.6 * weights  # about 2 bytes saved a (BN-folded) weight
    assert read_metadata(path)["quantization"] == "float16"


def _argmax_error(fam, heatmaps):
    """Per-keypoint distance (input px) between argmax decodes (no refinement) of `heatmaps` and Keras'."""
    ours = argmax_decode_numpy(heatmaps, fam.model.codec)[0]
    return np.linalg.norm(ours - argmax_decode_numpy(fam.heatmaps, fam.model.codec)[0], axis=-1)


def _float16_check(fam, heatmaps, label):
    err = fam.keypoint_error(heatmaps)
    argmax_err = _argmax_error(fam, heatmaps)
    close = float(np.mean(err <= 0.5))
    print(f"[{fam.name} {label}] keypoints (codec decode) {_summary(err)}, {close:.1%} within 0.5 px; "
          f"argmax decode mean {argmax_err.mean():.3f} px")
    assert argmax_err.mean() <= 0.5
    assert close >= 0.95


# int8 bounds, set from what this suite measures (`-s`), with margin: the mean argmax-decode error
# in input px (measured TFLite / ONNX: ViTPose 0.4-0.7, CPN 2.2, CPM 3.9, Hourglass 2.8) and the
# share of codec-decoded keypoints within one heatmap stride of the Keras decode (measured 99 %,
# 90 %, 88 %, 82 %). The tail beyond a stride is argmax jumping between two near-equal maxima of
# these briefly fitted models (and the DARK refinement of a flat, quantised peak, which can move a
# keypoint by hundreds of px), not a conversion error.
INT8_MEAN_ARGMAX_PX = {"vitpose": 1.5, "cpn": 4.0, "cpm": 6.0, "hourglass": 4.5}
INT8_WITHIN_STRIDE = 0.75


def _int8_check(fam, heatmaps, label):
    err = fam.keypoint_error(heatmaps)
    argmax_err = _argmax_error(fam, heatmaps)
    within = float(np.mean(err <= fam.stride + 1e-6))
    print(
        f"[{fam.name} {label}] keypoints (codec decode) {_summary(err)}, {within:.0%} within one stride "
        f"({fam.stride:g} px); argmax decode mean {argmax_err.mean():.2f} px"
    )
    assert argmax_err.mean() <= INT8_MEAN_ARGMAX_PX[fam.name]
    assert within >= INT8_WITHIN_STRIDE
    assert np.median(err) <= fam.stride / 2


def test_tflite_int8_with_in_graph_decode(family, tmp_path):
    path = export_model(
        family.model,
        tmp_path / "int8.tflite",
        quantization="int8",
        representative_dataset=family.calibration,
        include_decode=True,
    )
    runner = load_exported(path)
    out = runner(family.crops)
    heatmaps = out["heatmaps"]
    rel_rms = float(np.sqrt(np.mean((heatmaps - family.heatmaps) ** 2)) / family.heatmaps.std())
    meta = runner.metadata
    print(
        f"[{family.name} tflite int8] heatmaps rms error {rel_rms:.3f} x heatmap std; size {os.path.getsize(path)} B; "
        f"float ops {meta['int8']['float_ops']}; -inf pads fixed {meta['int8']['padding_ranges_fixed']}"
    )
    assert rel_rms <= 0.25
    _int8_check(family, heatmaps, "tflite int8")
    # The in-graph decode is float32: the argmax decode of the int8 model's own heatmaps, exactly.
    expected, expected_scores = argmax_decode_numpy(heatmaps, family.model.codec)
    np.testing.assert_allclose(out["keypoints"], expected, atol=1e-4)
    np.testing.assert_allclose(out["scores"], expected_scores, atol=1e-6)
    assert meta["int8"]["decode"] == "float32"
    assert meta["in_graph_decode"]["method"] == "argmax"
    assert meta["int8"]["calibration_samples"] == len(family.calibration)
    if family.name == "cpm":  # TorchMaxPool2D pads with -inf
        assert meta["int8"]["padding_ranges_fixed"] > 0


@SLOW  # two int8 ViTPose exports + a fitted CPM
def test_tflite_int8_keeps_attention_float_and_beats_full_int8(tmp_path):
    """int8_float_ops="auto": ViTPose's matmuls with weights / convs int8, attention and LayerNorm float32."""
    fam = _get("vitpose")
    auto = load_exported(
        export_model(fam.model, tmp_path / "auto.tflite", quantization="int8", representative_dataset=fam.calibration)
    )
    full = load_exported(
        export_model(
            fam.model, tmp_path / "full.tflite", quantization="int8", representative_dataset=fam.calibration,
            int8_float_ops=(),
        )
    )
    meta, full_meta = auto.metadata["int8"], full.metadata["int8"]
    for op in ("SOFTMAX", "BATCH_MATMUL", "GELU", "MEAN", "RSQRT"):
        assert op in meta["kept_float"] and meta["float_ops"][op] > 0
    for op in ("FULLY_CONNECTED", "CONV_2D", "TRANSPOSE_CONV"):
        assert op not in meta["float_ops"]  # quantised
    assert full_meta["kept_float"] == [] and "SOFTMAX" not in full_meta["float_ops"]
    errors = {}
    for label, runner in (("auto", auto), ("full", full)):
        heatmaps = runner(fam.crops)["heatmaps"]
        errors[label] = float(np.sqrt(np.mean((heatmaps - fam.heatmaps) ** 2)) / fam.heatmaps.std())
        _int8_check(fam, heatmaps, f"tflite int8 {label}")
    print(f"[vitpose tflite int8] heatmaps rms error / std: auto {errors['auto']:.3f}, every op int8 "
          f"{errors['full']:.3f}; Q/DQ ops {meta['quantize_dequantize_ops']} vs {full_meta['quantize_dequantize_ops']}")
    assert errors["auto"] <= errors["full"]
    # A convolutional graph is quantised throughout by "auto"; named ops stay float on request.
    cpm = _get("cpm")
    path = export_model(cpm.model, tmp_path / "cpm.tflite", quantization="int8", representative_dataset=cpm.calibration)
    assert read_metadata(path)["int8"]["kept_float"] == []
    path = export_model(
        cpm.model, tmp_path / "cpm_conv.tflite", quantization="int8", representative_dataset=cpm.calibration,
        int8_float_ops=["conv_2d"],
    )
    meta = read_metadata(path)["int8"]
    assert meta["kept_float"] == ["CONV_2D"] and meta["float_ops"]["CONV_2D"] > 0
    with pytest.raises(ExportError, match="not TFLite builtin ops.*'SOFTMAX'"):
        export_model(
            cpm.model, tmp_path / "x.tflite", quantization="int8", representative_dataset=cpm.calibration,
            int8_float_ops=["LAYER_NORM_PLEASE"],
        )
    with pytest.raises(ExportError, match="int8_float_ops applies to TFLite int8"):
        export_model(cpm.model, tmp_path / "x.onnx", int8_float_ops=["SOFTMAX"])


def test_tflite_dynamic_int8_round_trip(family, tmp_path):
    """Dynamic-range int8: int8 weights, no calibration data, float I/O; int8-level keypoint errors."""
    fp32 = export_model(family.model, tmp_path / "fp32.tflite")
    path = export_model(family.model, tmp_path / "dyn.tflite", quantization="dynamic_int8", include_decode=True)
    runner = load_exported(path)
    out = runner(family.crops)
    heatmaps = out["heatmaps"]
    rel_rms = float(np.sqrt(np.mean((heatmaps - family.heatmaps) ** 2)) / family.heatmaps.std())
    meta = runner.metadata
    ratio = os.path.getsize(path) / os.path.getsize(fp32)
    print(f"[{family.name} tflite dynamic_int8] heatmaps rms error {rel_rms:.3f} x heatmap std; size {ratio:.2f} x "
          f"float32; int8 weight ops {meta['dynamic_int8']['int8_weight_ops']}")
    assert meta["quantization"] == "dynamic_int8" and meta["input"]["dtype"] == "float32"
    assert meta["dynamic_int8"]["int8_weight_ops"] and "calibration_samples" not in meta["dynamic_int8"]
    assert rel_rms <= 0.1
    _int8_check(family, heatmaps, "tflite dynamic_int8")
    expected, _ = argmax_decode_numpy(heatmaps, family.model.codec)  # the decode stays float32
    np.testing.assert_allclose(out["keypoints"], expected, atol=1e-4)
    assert ratio <= 0.6


@pytest.mark.parametrize("name", ["vitpose", pytest.param("cpm", marks=SLOW)])
def test_onnx_float16_and_int8(name, tmp_path):
    fam = _get(name)
    fp16 = load_exported(export_model(fam.model, tmp_path / f"{name}16.onnx", quantization="float16"))
    int8 = load_exported(
        export_model(
            fam.model, tmp_path / f"{name}8.onnx", quantization="int8", representative_dataset=fam.calibration
        )
    )
    _float16_check(fam, fp16(fam.crops)["heatmaps"], "onnx float16")
    _int8_check(fam, int8(fam.crops)["heatmaps"], "onnx int8")
    assert int8.metadata["int8"]["format"] == "QDQ"
    if name == "cpm":
        assert int8.metadata["int8"]["padding_ranges_fixed"] > 0  # CPM's -inf max-pool padding


def test_tflite_int8_io(tmp_path):
    fam = _get("vitpose")
    float_io = load_exported(
        export_model(fam.model, tmp_path / "f.tflite", quantization="int8", representative_dataset=fam.calibration)
    )
    int8_io = load_exported(
        export_model(
            fam.model, tmp_path / "q.tflite", quantization="int8", representative_dataset=fam.calibration, int8_io=True
        )
    )
    assert int8_io.input_details["dtype"] == "int8"
    assert int8_io.input_details["quantization"]["scale"] > 0
    assert int8_io.metadata["input"]["dtype"] == "int8"
    assert int8_io.metadata["outputs"][0]["quantization"]["scale"] > 0
    a, b = float_io(fam.crops)["heatmaps"], int8_io(fam.crops)["heatmaps"]
    assert b.dtype == np.float32
    # The same int8 network; the runner (de)quantises what the graph did.
    assert np.abs(a - b).max() <= 2.5 * int8_io.output_details["heatmaps"]["quantization"]["scale"]


# -------------------------------------------------------------- decode
def test_argmax_decode_tf_matches_codec_maximum():
    """First maximum in row-major order, (-1, -1) for maps <= 0, standard and UDP scaling."""
    from keras_pose.codecs import MSRAHeatmap, UDPHeatmap, get_heatmap_maximum

    rng = np.random.default_rng(0)
    heatmaps = rng.standard_normal((3, 8, 6, 5)).astype(np.float32)
    heatmaps[0, :, :, 0] = -1.0  # no positive value: missing
    heatmaps[1, :, :, 1] = 0.0
    heatmaps[1, 2, 3, 1] = heatmaps[1, 5, 1, 1] = 7.0  # tie: the first in (y, x) order wins
    for codec in (MSRAHeatmap((32, 24), (8, 6)), UDPHeatmap((32, 24), (8, 6))):
        keypoints, scores = argmax_decode_tf(keras.ops.convert_to_tensor(heatmaps), codec)
        locs, vals = get_heatmap_maximum(heatmaps)
        scale = (24 / 6, 32 / 8) if isinstance(codec, MSRAHeatmap) else (24 / 5, 32 / 7)
        np.testing.assert_allclose(np.asarray(keypoints), locs * np.array(scale), rtol=1e-6, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(scores), vals)
        np.testing.assert_allclose(np.asarray(keypoints)[1, 1], np.array([3, 2]) * np.array(scale), rtol=1e-6)
        assert (np.asarray(keypoints)[0, 0] < 0).all()


@pytest.mark.parametrize("name,fmt", [("vitpose", "onnx"), pytest.param("cpn", "tflite", marks=SLOW)])  # UDP, standard
def test_float32_in_graph_decode_equals_argmax_of_keras(name, fmt, tmp_path):
    fam = _get(name)
    out = load_exported(export_model(fam.model, tmp_path / f"d.{fmt}", include_decode=True))(fam.crops)
    expected, scores = argmax_decode_numpy(fam.heatmaps, fam.model.codec)
    np.testing.assert_allclose(out["keypoints"], expected, atol=1e-4)
    np.testing.assert_allclose(out["scores"], scores, atol=1e-4 * fam.range)
    assert out["keypoints"].shape == (len(fam.crops), 17, 2)


# --------------------------------------------------------- outputs / batch
@SLOW
def test_all_outputs_multi_output_families(tmp_path):
    for name, expected_names, final in (
        ("cpm", ["stage1", "stage2"], "stage2"),
        ("cpn", ["global_0", "global_1", "global_2", "global_3", "refine"], "refine"),
    ):
        fam = _get(name)
        path = export_model(fam.model, tmp_path / f"{name}.tflite", all_outputs=True)
        runner = load_exported(path)
        assert runner.output_names == expected_names
        assert runner.metadata["heatmaps_output"] == final
        out = runner(fam.crops[:4])
        keras_out = fam.outputs
        if isinstance(keras_out, dict):
            keras_out = [keras_out[n] for n in expected_names]
        for got, want in zip([out[n] for n in expected_names], keras_out):
            assert np.abs(got - np.asarray(want)[:4]).max() <= 1e-4 * np.ptp(want)
        np.testing.assert_allclose(runner.heatmaps(fam.crops[:4]), fam.heatmaps[:4], atol=1e-4 * fam.range)


@pytest.mark.parametrize("fmt", ["onnx", pytest.param("tflite", marks=SLOW)])
def test_dynamic_batch(fmt, tmp_path):
    fam = _get("vitpose")
    runner = load_exported(export_model(fam.model, tmp_path / f"dyn.{fmt}", batch_size=None))
    assert runner.batch_size is None
    assert runner.metadata["input"]["shape"] == [None, 64, 48, 3]
    np.testing.assert_allclose(runner(fam.crops[:5])["heatmaps"], fam.heatmaps[:5], atol=1e-4 * fam.range)


def test_static_batch_runner_pads_the_last_chunk(tmp_path):
    fam = _get("vitpose")
    runner = load_exported(export_model(fam.model, tmp_path / "b4.onnx", batch_size=4))
    assert runner.batch_size == 4
    out = runner(fam.crops[:6])["heatmaps"]  # chunks of 4: 4 + (2 padded to 4)
    assert out.shape[0] == 6
    np.testing.assert_allclose(out, fam.heatmaps[:6], atol=1e-4 * fam.range)
    single = runner(fam.crops[0])["heatmaps"]
    assert single.shape == fam.heatmaps.shape[1:]
    keypoints, scores = runner.decode(fam.crops[:3])
    np.testing.assert_allclose(keypoints, fam.keypoints[:3], atol=1e-3)


# ---------------------------------------------------------------- metadata
def test_metadata_contents(tmp_path):
    fam = _get("vitpose")
    path = export_model(fam.model, tmp_path / "pose.tflite", include_decode=True, preset="my_preset")
    assert metadata_path(path) == path + ".json"
    meta = json.loads(open(path + ".json").read())
    spec = fam.model.keypoint_spec
    assert meta["format"] == "tflite" and meta["model_class"] == "ViTPose" and meta["preset"] == "my_preset"
    assert meta["input"] == {"name": "images", "shape": [1, 64, 48, 3], "dtype": "float32", "layout": "NHWC"}
    assert meta["image_size"] == [64, 48] and meta["heatmap_size"] == [16, 12]
    assert meta["preprocessing"]["mean"] == fam.model.preprocessing["mean"]
    assert meta["preprocessing"]["std"] == fam.model.preprocessing["std"]
    assert meta["preprocessing"]["channel_order"] == "rgb"
    assert meta["keypoints"]["names"] == spec.keypoint_names
    assert meta["keypoints"]["skeleton"] == [list(p) for p in spec.skeleton_indices]
    assert meta["keypoints"]["flip_indices"] == list(spec.flip_indices)
    assert np.array_equal(meta["keypoints"]["keypoint_colors"], spec.keypoint_colors)
    assert meta["decoding"] == fam.model.decoding == fam.model.export_decoding()
    restored = keras.saving.deserialize_keras_object(meta["preprocessing"]["preprocessor"])
    assert restored.cropper == fam.model.preprocessor.cropper and meta["decoding"]["warp"] == restored.cropper.warp
    assert [o["name"] for o in meta["outputs"]] == ["heatmaps", "keypoints", "scores"]
    assert meta["outputs"][0]["shape"] == [1, 16, 12, 17] and meta["outputs"][1]["shape"] == [1, 17, 2]
    assert meta["heatmaps_output"] == "heatmaps"
    assert meta["in_graph_decode"]["udp"] is True
    np.testing.assert_allclose(meta["in_graph_decode"]["scale"], [48 / 11, 64 / 15])
    assert meta["in_graph_decode"]["offset"] == [0.0, 0.0]  # UDP: u = x * W / (w - 1)
    assert meta["quantization"] is None
    assert meta["keras_pose_version"] == keras_pose.__version__
    data = open(path, "rb").read()
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["file_size"] == len(data)
    assert sorted(os.listdir(tmp_path)) == ["pose.tflite", "pose.tflite.json"]  # atomic writes leave no temp files
    # The format comes from the extension, or the extension from the format.
    onnx_path = export_model(fam.model, tmp_path / "pose", format="onnx")
    assert onnx_path.endswith("pose.onnx") and read_metadata(onnx_path)["opset"] == 17


# ------------------------------------------------------------ calibration
def test_representative_crops_are_inference_crops():
    fam = _get("vitpose")
    crops = representative_crops(fam.model, COCO, num_samples=30)
    assert crops.shape == (24, 64, 48, 3) and crops.dtype == np.float32  # 12 labelled people + mirrors
    from keras_pose.utils.image_io import read_image

    data = load_coco_keypoints(COCO)
    first = data[0]
    expected = fam.model.crop_people(read_image(first.image_path), first.bbox[None])[0][0]
    np.testing.assert_allclose(crops[0], expected)
    np.testing.assert_allclose(crops[12], expected[:, ::-1])
    assert representative_crops(fam.model, COCO, num_samples=5, include_flipped=False).shape[0] == 5


def test_representative_dataset_forms():
    """tf.data of (images, targets) batches, generators and arrays give the same calibration crops."""
    import tensorflow as tf

    from keras_pose.export import calibration_samples

    size = (64, 48)
    crops = np.random.default_rng(0).normal(size=(21, *size, 3)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((crops, np.zeros(len(crops)))).batch(8)
    batches = lambda: (crops[i : i + 8] for i in range(0, len(crops), 8))  # noqa: E731
    np.testing.assert_array_equal(calibration_samples(crops, size, 100), crops)
    for form in (ds, batches, batches(), list(crops), ds.map(lambda x, y: {"images": x})):
        np.testing.assert_array_equal(calibration_samples(form, size, 100), crops)
    np.testing.assert_array_equal(calibration_samples(crops[3], size, 100), crops[3:4])
    np.testing.assert_array_equal(calibration_samples(ds, size, 7), crops[:7])
    np.testing.assert_array_equal(calibration_samples(batches, size, 10), crops[:10])


@SLOW
def test_int8_export_from_a_tf_data_dataset_records_its_calibration(tmp_path):
    """The int8 export takes a tf.data dataset, calibrates on num_calibration_samples crops, says so."""
    import tensorflow as tf

    fam = _get("hourglass")
    ds = tf.data.Dataset.from_tensor_slices((fam.calibration, np.zeros(len(fam.calibration)))).batch(8)
    path = export_model(fam.model, tmp_path / "d.tflite", quantization="int8", representative_dataset=ds,
                        num_calibration_samples=7)
    assert read_metadata(path)["int8"]["calibration_samples"] == 7
    out = load_exported(path)(fam.crops[:4])["heatmaps"]
    reference = keras.ops.convert_to_numpy(fam.model.heatmaps_from_outputs(fam.model(fam.crops[:4])))
    assert out.shape == reference.shape
    # int8 keeps the heatmap pattern (the full int8 parity bounds are in test_int8_parity)
    assert np.corrcoef(out.ravel(), reference.ravel())[0, 1] > 0.9


# ------------------------------------------------------------------ errors
def test_errors_name_the_fix(tmp_path, monkeypatch):
    fam = _get("vitpose")
    model = fam.model
    with pytest.raises(ExportError, match="Unknown export format 'coreml'.*'tflite'.*'onnx'"):
        export_model(model, tmp_path / "m.mlmodel", format="coreml")
    with pytest.raises(ExportError, match="Cannot tell the export format.*format='tflite'"):
        export_model(model, tmp_path / "m.bin")
    with pytest.raises(ExportError, match="ends in '.onnx'"):
        export_model(model, tmp_path / "m.onnx", format="tflite")
    with pytest.raises(ExportError, match="Unknown quantization 'int4'.*'float16'.*'int8'"):
        export_model(model, tmp_path / "m.tflite", quantization="int4")
    with pytest.raises(ExportError, match="int8 quantization needs calibration data.*representative_crops"):
        export_model(model, tmp_path / "m.tflite", quantization="int8")
    with pytest.raises(ExportError, match="opset=19.*13..18"):
        export_model(model, tmp_path / "m.onnx", opset=19)
    with pytest.raises(ExportError, match=r"shape \(2, 32, 32, 3\).*\(B, 64, 48, 3\)"):
        export_model(model, tmp_path / "m.tflite", quantization="int8", representative_dataset=np.zeros((2, 32, 32, 3)))
    with pytest.raises(ExportError, match="int8_io=True applies to TFLite int8"):
        export_model(
            model, tmp_path / "m.onnx", quantization="int8", representative_dataset=fam.calibration, int8_io=True
        )
    with pytest.raises(ExportError, match="include_decode"):
        export_model(
            model, tmp_path / "m.tflite", quantization="int8", representative_dataset=fam.calibration,
            int8_io=True, include_decode=True,
        )
    with pytest.raises(ExportError, match="batch_size must be a positive integer or None"):
        export_model(model, tmp_path / "m.tflite", batch_size=0)
    with pytest.raises(ExportError, match="keras.Model.export"):
        export_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), tmp_path / "m.tflite")
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ExportError, match="needs the TensorFlow backend.*KERAS_BACKEND=tensorflow"):
        export_model(model, tmp_path / "m.tflite")
    monkeypatch.undo()
    assert not os.listdir(tmp_path)  # nothing half-written
    with pytest.raises(FileNotFoundError, match="export_model"):
        load_exported(tmp_path / "missing.tflite")
    runner = load_exported(export_model(model, tmp_path / "m.onnx"))
    with pytest.raises(ValueError, match=r"\(N, 64, 48, 3\).*crop_people"):
        runner(np.zeros((1, 32, 32, 3), np.float32))
