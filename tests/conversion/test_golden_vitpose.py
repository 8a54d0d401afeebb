"""Reference parity of the ViTPose / ViTPose++ converters (tests/golden/vitpose).

For every case: rebuild the checkpoint from keys.json + seed with the golden
`make_state_dict`, save it the way the released files are saved (torch.save
zip / legacy, or safetensors + config.json), convert it the user way
(convert -> preset directory -> load), and compare every stored output
within meta.json's tolerance. Run with `-s` to see the max abs diff per file.
"""

import importlib.util
import json
import shutil

import numpy as np
import pytest
from pose_testing.paths import GOLDEN_DIR

VITPOSE_DIR = GOLDEN_DIR / "vitpose"
CASES = sorted(p.parent.name for p in VITPOSE_DIR.glob("*/meta.json")) if VITPOSE_DIR.is_dir() else []
SMALL_CASES = ("vitpose_small_simple", "vitpose_plus_small_moe", "mmpose_small_coco")


def _load_make_state_dict():
    spec = importlib.util.spec_from_file_location("golden_make_state_dict", GOLDEN_DIR / "make_state_dict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _meta(case):
    with open(VITPOSE_DIR / case / "meta.json") as f:
        return json.load(f)


def _model_case(case):
    """The case whose keys.json / layout build the model (end_to_end_base reuses vitpose_base_classic)."""
    meta = _meta(case)
    if "model_case" in meta:
        return meta["model_case"].split()[0]
    return case


def write_checkpoint(case, directory):
    """Save the case's synthetic checkpoint like the released file; returns the path to convert."""
    import torch

    msd = _load_make_state_dict()
    meta = _meta(case)
    sd = msd.make_state_dict(msd.load_keys(VITPOSE_DIR / case / "keys.json"), meta["seed"])
    for name, value in (meta.get("state_dict_overrides") or {}).items():
        sd[name] = np.asarray(value, dtype=sd[name].dtype).reshape(sd[name].shape)
    tensors = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in sd.items()}
    directory.mkdir(parents=True, exist_ok=True)
    layout = json.dumps(meta.get("checkpoint", meta.get("checkpoint_layout", {})))
    if "safetensors" in layout:
        from safetensors.torch import save_file

        save_file(tensors, str(directory / "model.safetensors"))
        shutil.copy(VITPOSE_DIR / case / "config.json", directory / "config.json")
        return directory
    path = directory / f"{case}.pth"
    if "checkpoint_layout" in meta:  # mmpose 1.x release: {'meta', 'state_dict'}, legacy format
        torch.save({"meta": {"mmpose_version": "1.0.0"}, "state_dict": tensors}, path,
                   _use_new_zipfile_serialization=False)
    else:  # original ViTPose: mmcv save_checkpoint
        torch.save({"meta": {}, "state_dict": tensors}, path)
    return path


def convert_and_load(path, preset_dir):
    """Convert `path` into a preset directory and load it, the way a user does.

    Uses `keras_pose.conversion.convert_checkpoint` and `keras_pose.from_preset`
    (falling back to the converter + keras-hub preset machinery while those
    public entry points are not available).
    """
    try:
        from keras_pose.conversion import convert_checkpoint
    except ImportError:
        from keras_pose.conversion.vitpose_converter import convert

        convert(path).save_to_preset(str(preset_dir))
    else:
        convert_checkpoint(path, preset=None, output_dir=preset_dir)
    try:
        from keras_pose import from_preset
    except ImportError:
        try:
            from keras_pose.preset_loading import load_preset as from_preset
        except ImportError:
            import keras_hub

            from keras_pose.models.vitpose import ViTPose, ViTPosePP

            with open(preset_dir / "task.json") as f:
                registered = json.load(f)["registered_name"]
            cls = ViTPosePP if registered.endswith("ViTPosePP") else ViTPose
            return keras_hub.models.Task.from_preset.__func__(cls, str(preset_dir))
    return from_preset(str(preset_dir))


_MODELS = {}


def converted_model(model_case, tmp_path_factory):
    if model_case not in _MODELS:
        base = tmp_path_factory.mktemp(model_case)
        path = write_checkpoint(model_case, base / "checkpoint")
        _MODELS.clear()  # keep at most one full-size model alive
        _MODELS[model_case] = convert_and_load(path, base / "preset")
    return _MODELS[model_case]


def _nhwc(array):
    return np.transpose(array, (0, 2, 3, 1)) if array.ndim == 4 else array


def _np(x):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


def _atol(meta, file_name):
    tol = meta["tolerance"]
    stem = file_name[len("expected_"):-len(".npy")]
    for key in (stem, stem.rsplit("_ds", 1)[0]):
        if key in tol:
            return float(tol[key]["atol"])
    raise KeyError(f"no tolerance for {file_name}")


def _compare(case, results):
    failures = []
    for name, diff, atol in results:
        status = "ok" if diff <= atol else "FAIL"
        print(f"[golden vitpose] {case} {name}: max|diff| = {diff:.3e} (atol {atol:.3e}) {status}")
        if not diff <= atol:
            failures.append(f"{name}: {diff:.3e} > {atol:.3e}")
    assert not failures, f"{case}: " + "; ".join(failures)


def _check_case(case, model):
    meta = _meta(case)
    case_dir = VITPOSE_DIR / case
    x = _nhwc(np.load(case_dir / "input.npy")).astype(np.float32)
    results = []
    if "expected_per_dataset_index" in meta:
        for index, spec in sorted(meta["expected_per_dataset_index"].items()):
            view = model.with_dataset(spec["dataset"])
            assert view.datasets.index(spec["dataset"]) == int(index)
            outputs = {"heatmaps": _np(view(x)), "features": _np(view.backbone(x))}
            for file_name in spec["files"]:
                expected = _nhwc(np.load(case_dir / file_name))
                kind = "heatmaps" if "heatmaps" in file_name else "features"
                results.append((file_name, float(np.abs(outputs[kind] - expected).max()), _atol(meta, file_name)))
        return results
    heatmaps = _np(model(x))
    for path in sorted(case_dir.glob("expected_*.npy")):
        name = path.name
        if name == "expected_heatmaps.npy":
            actual = heatmaps
        elif name == "expected_features.npy":
            actual = _np(model.backbone(x))
        elif name == "expected_heatmaps_delta.npy":
            actual = heatmaps - _np(model(np.zeros_like(x)))
        else:
            continue  # keypoints / scores / decode-only data: tested with the codecs
        expected = _nhwc(np.load(path))
        assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
        results.append((name, float(np.abs(actual - expected).max()), _atol(meta, name)))
    return results


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=[] if c in SMALL_CASES else [pytest.mark.large])
        for c in CASES
    ],
)
def test_golden_vitpose(case, tmp_path_factory):
    if not CASES:
        pytest.fail(f"no golden vitpose cases under {VITPOSE_DIR}")
    model = converted_model(_model_case(case), tmp_path_factory)
    results = _check_case(case, model)
    assert results, f"{case}: nothing compared"
    _compare(case, results)


def test_golden_cases_present():
    assert set(SMALL_CASES) <= set(CASES), f"golden cases missing under {VITPOSE_DIR}: {CASES}"
