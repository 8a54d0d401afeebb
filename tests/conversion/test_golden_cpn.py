"""Reference parity of the CPN converter (tests/golden/cpn).

The case `cpn50_coco_256x192`: rebuild the pytorch-cpn CPN50 checkpoint from
keys.json + seed with the golden `make_state_dict`, save it as pytorch-cpn
does (`torch.save({'epoch', 'state_dict'})`, DataParallel `module.` keys),
convert it the user way (convert -> preset directory -> load) and compare
every stored output: the GlobalNet heatmaps and features, the RefineNet
heatmaps (max|diff| <= 2e-5 * max|expected|) and the image-dependent parts
(`*_delta`: output(input) - output(zeros), <= 2e-2 * max|expected|), as
meta.json specifies. Run with `-s` to see the differences per file.
"""

import importlib.util
import json

import numpy as np
import pytest
from pose_testing.paths import GOLDEN_DIR

CASE_DIR = GOLDEN_DIR / "cpn" / "cpn50_coco_256x192"
PRESET = "cpn50_coco_256x192"
REL_TOL = 2e-5
DELTA_REL_TOL = 2e-2


def _meta():
    with open(CASE_DIR / "meta.json") as f:
        return json.load(f)


def _load_make_state_dict():
    spec = importlib.util.spec_from_file_location("golden_make_state_dict", GOLDEN_DIR / "make_state_dict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_checkpoint(directory):
    """The synthetic checkpoint in pytorch-cpn's on-disk layout; returns its path."""
    import torch

    meta = _meta()
    msd = _load_make_state_dict()
    sd = msd.make_state_dict(msd.load_keys(CASE_DIR / "keys.json"), meta["seed"])
    for name, value in (meta.get("state_dict_overrides") or {}).items():
        sd[name] = np.asarray(value, dtype=sd[name].dtype).reshape(sd[name].shape)
    # keys.json already holds the DataParallel names (module.resnet...).
    assert all(k.startswith("module.") for k in sd), "expected DataParallel 'module.' keys"
    state_dict = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "CPN50_256x192.pth.tar"
    torch.save({"epoch": 32, "state_dict": state_dict}, path)  # meta: golden_container_used
    return path


def convert_and_load(path, preset_dir):
    """Convert like a user (`convert_checkpoint` -> preset dir -> `from_preset`)."""
    from keras_pose.models.cpn import CPN
    from keras_pose.presets.cpn_presets import PRESETS

    entry = next(e for e in PRESETS if e.name == PRESET)
    try:
        from keras_pose.conversion import CONVERTERS
        from keras_pose.conversion import convert_checkpoint
    except ImportError:
        CONVERTERS, convert_checkpoint = {}, None
    if convert_checkpoint is not None and entry.family in CONVERTERS:
        convert_checkpoint(path, preset=entry, output_dir=preset_dir)
    else:  # the lead has not wired the CPN converter into the dispatch yet
        from keras_pose.conversion.cpn_converter import convert

        convert(path, entry=entry).save_to_preset(str(preset_dir))
    try:
        from keras_pose import from_preset
    except ImportError:
        from_preset = CPN.from_preset
    model = from_preset(str(preset_dir))
    assert isinstance(model, CPN), type(model)
    return model


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    if not (CASE_DIR / "meta.json").exists():
        pytest.fail(f"golden CPN case not found at {CASE_DIR}")
    pytest.importorskip("torch")
    base = tmp_path_factory.mktemp("cpn_golden")
    model = convert_and_load(write_checkpoint(base / "checkpoint"), base / "preset")
    assert model.image_size == (256, 192)
    assert model.preprocessing["std"] == [255.0, 255.0, 255.0]
    features = model.feature_model()
    x = np.load(CASE_DIR / "input.npy").transpose(0, 2, 3, 1).astype(np.float32)
    on_input = {k: np.asarray(v, np.float32) for k, v in features.predict_on_batch(x).items()}
    on_zeros = {k: np.asarray(v, np.float32) for k, v in features.predict_on_batch(np.zeros_like(x)).items()}
    return on_input, on_zeros


def test_golden_cpn(outputs):
    on_input, on_zeros = outputs
    files = sorted(CASE_DIR.glob("expected_*.npy"))
    assert len(files) == 12, [f.name for f in files]
    failures = []
    for path in files:
        stem = path.name[len("expected_"):-len(".npy")]
        expected = np.load(path).transpose(0, 2, 3, 1)
        if stem.endswith("_delta"):
            key = stem[: -len("_delta")]
            actual = on_input[key] - on_zeros[key]
            rel_tol = DELTA_REL_TOL
        else:
            actual = on_input[stem]
            rel_tol = REL_TOL
        assert actual.shape == expected.shape, (path.name, actual.shape, expected.shape)
        diff = float(np.abs(actual - expected).max())
        scale = float(np.abs(expected).max())
        limit = rel_tol * scale
        status = "ok" if diff <= limit else "FAIL"
        print(
            f"[golden cpn] {path.name}: max|diff| = {diff:.3e}, relative {diff / scale:.3e} "
            f"(limit {limit:.3e} = {rel_tol:g} x max|expected|) {status}"
        )
        if not diff <= limit:
            failures.append(f"{path.name}: {diff:.3e} > {limit:.3e}")
    assert not failures, "; ".join(failures)
