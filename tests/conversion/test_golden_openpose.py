"""Reference parity of the OpenPose converters (tests/golden/openpose), through the user's path.

- ``body_coco18``: the synthetic checkpoint saved as the PyTorch port ships
  ``body_pose_model.pth`` (a flat dict, `torch.save`), converted with
  `convert_checkpoint(..., output_dir=...)` -> `keras_pose.from_preset` ->
  features and every stage's PAFs and heatmaps against controlnet-aux's.
- ``body25_coco``: the synthetic weights written as CMU's binary
  ``pose_iter_584000.caffemodel`` per meta.json's write recipe (its sha256
  checked), converted the same way, every output against cv2.dnn's.

Tolerance as meta.json: ``max|out - expected| <= 1e-4 * max|expected|`` per
output. Run with ``-s`` to see the max abs diff per output.
"""

import hashlib
import importlib.util
import json

import numpy as np
import pytest
from pose_testing.paths import DATA_DIR as TEST_DATA_DIR
from pose_testing.paths import GOLDEN_DIR

CASE_DIR = GOLDEN_DIR / "openpose"


def _meta(case):
    return json.loads((CASE_DIR / case / "meta.json").read_text())


def make_state_dict(case):
    """The case's synthetic weights (make_state_dict + meta.json's scales / overrides)."""
    spec = importlib.util.spec_from_file_location("golden_make_state_dict", GOLDEN_DIR / "make_state_dict.py")
    msd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(msd)
    meta = _meta(case)
    sd = msd.make_state_dict(msd.load_keys(CASE_DIR / case / "keys.json"), meta["seed"])
    for name, factor in (meta.get("state_dict_scales") or {}).items():
        sd[name] = (sd[name] * np.float32(factor)).astype(np.float32)
    for name, value in (meta.get("state_dict_overrides") or {}).items():
        sd[name] = np.asarray(value, dtype=sd[name].dtype).reshape(sd[name].shape)
    return sd


def write_caffemodel(sd, path, net_name):
    """meta.json's write recipe: one `layer` per layer with blobs, in key order (weight, bias / slope)."""
    from keras_pose.conversion.caffe_io import write_caffemodel as write

    layers = {}
    for key, value in sd.items():
        layer = key.rsplit(".", 1)[0]
        layers.setdefault(layer, []).append(value)
    typed = [(name, "PReLU" if len(blobs) == 1 else "Convolution", blobs) for name, blobs in layers.items()]
    write(path, typed, name=net_name)
    return path


def body25_input(meta):
    """input.npy rebuilt from the COCO sample as meta.json says (the 2.4 MB file is not copied)."""
    import cv2

    spec = meta["input"]
    image = cv2.imdecode(np.fromfile(str(TEST_DATA_DIR / "coco" / "000000040083.jpg"), np.uint8), cv2.IMREAD_COLOR)
    h, w = spec["resized_hw"]
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)
    padded = cv2.copyMakeBorder(resized, 0, (-h) % 8, 0, (-w) % 8, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    x = (np.float32(padded) / 256 - 0.5).transpose(2, 0, 1)[None]
    assert hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() == spec["input_npy_data_sha256"]
    return x


def _expected(case):
    """{output name: NHWC expected array} of a case."""
    d = CASE_DIR / case
    out = {}
    for path in sorted(d.glob("expected_*.npy")):
        if "_part" not in path.name:
            out[path.stem[len("expected_"):]] = np.load(path)
    parts = sorted(d.glob("expected_features_part*.npy"))
    if parts:
        out["features"] = np.concatenate([np.load(p) for p in parts], axis=1)
    return {k: v.transpose(0, 2, 3, 1) for k, v in out.items()}


# golden output name -> Keras backbone output, per case
NAMES = {
    "body_coco18": {**{f"stage{i}_paf": f"paf_stage{i}" for i in range(1, 6)},
                    **{f"stage{i}_heatmap": f"heatmap_stage{i}" for i in range(1, 6)},
                    "paf": "paf_stage6", "heatmap": "heatmap_stage6", "features": "features"},
    "body25_coco": {"stage0_paf": "paf_stage1", "stage1_paf": "paf_stage2", "stage2_paf": "paf_stage3",
                    "paf": "paf_stage4", "stage0_heatmap": "heatmap_stage1", "heatmap": "heatmap_stage2",
                    "features": "features"},
}


def check_outputs(case, model, x_nchw):
    import keras

    meta = _meta(case)
    rel = meta["tolerance"]["max_abs_diff_rel_to_max_abs"]
    maps = model.backbone(x_nchw.transpose(0, 2, 3, 1))
    expected = _expected(case)
    assert set(expected) == set(NAMES[case]), sorted(expected)
    failures = []
    for name, target in NAMES[case].items():
        got = np.asarray(keras.ops.convert_to_numpy(maps[target]), np.float32)
        want = expected[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        diff = float(np.abs(got - want).max())
        limit = rel * float(np.abs(want).max())
        print(f"[golden openpose] {case} {name}: max|diff| = {diff:.3e} (limit {limit:.3e})")
        if not diff <= limit:
            failures.append(f"{name}: {diff:.3e} > {limit:.3e}")
    # the task's outputs are the backbone's stage maps (float32 casts)
    outputs = model(x_nchw.transpose(0, 2, 3, 1))
    heat, paf = model.final_maps(outputs)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(heat), keras.ops.convert_to_numpy(maps[NAMES[case]["heatmap"]]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(paf), keras.ops.convert_to_numpy(maps[NAMES[case]["paf"]]))
    assert not failures, f"{case}: " + "; ".join(failures)


def _convert_and_load(path, preset, out_dir):
    import keras_pose
    from keras_pose import conversion
    from keras_pose.models.openpose import OpenPose

    conversion.convert_checkpoint(path, preset=preset, output_dir=out_dir)
    model = keras_pose.from_preset(str(out_dir), accept_license=True)
    assert isinstance(model, OpenPose)
    return model


@pytest.mark.slow
def test_golden_body_coco18_pth(tmp_path):
    """body_pose_model.pth (flat dict) -> convert -> preset dir -> from_preset -> every stage output."""
    torch = pytest.importorskip("torch")
    sd = make_state_dict("body_coco18")
    path = tmp_path / "body_pose_model.pth"
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, path)
    model = _convert_and_load(path, "openpose_coco18_coco_368x368", tmp_path / "preset")
    assert model.backbone.final_heatmap_relu and model.backbone.variant == "coco18"
    check_outputs("body_coco18", model, np.load(CASE_DIR / "body_coco18" / "input.npy"))


@pytest.mark.slow
def test_golden_body25_caffemodel(tmp_path):
    """pose_iter_584000.caffemodel (binary protobuf) -> convert -> preset dir -> from_preset -> every output."""
    meta = _meta("body25_coco")
    recipe = meta["checkpoint"]["write_recipe"]
    path = write_caffemodel(make_state_dict("body25_coco"), tmp_path / "pose_iter_584000.caffemodel",
                            "OpenPose - BODY_25")
    data = path.read_bytes()
    assert len(data) == recipe["bytes"] and hashlib.sha256(data).hexdigest() == recipe["sha256"]
    del data
    model = _convert_and_load(path, "openpose_body25_coco_368x368", tmp_path / "preset")
    assert model.backbone.variant == "body25" and not model.backbone.final_heatmap_relu
    check_outputs("body25_coco", model, body25_input(meta))
