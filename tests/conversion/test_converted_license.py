"""The licence a conversion records: without a preset, a family whose registered presets all carry one
restrictive licence (CMU's non-commercial OpenPose weights) records it, so the licence gate applies to the
converted folder; an explicit licence overrides it (one's own weights)."""

import json

import pytest
from pose_testing import openpose_models

from keras_pose.errors import PresetError

TINY = dict(openpose_models.TINY, num_stages=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny COCO-18 model saved as the PyTorch port's body_pose_model.pth (a flat dict of tensors)."""
    torch = pytest.importorskip("torch")
    from keras_pose.models.openpose import OpenPose

    model = OpenPose.from_checkpoint_config(variant="coco18", image_size=[32, 32], **TINY)
    path = tmp_path_factory.mktemp("ckpt") / "body_pose_model.pth"
    torch.save({k: torch.from_numpy(v) for k, v in openpose_models.export_state_dict(model).items()}, path)
    return str(path)


def _record(folder):
    with open(folder / "keras_pose_preset.json") as f:
        return json.load(f)


def test_family_license_is_the_shared_restrictive_one():
    from keras_pose.conversion.preset_output import family_license
    from keras_pose.presets.openpose_presets import NONCOMMERCIAL
    from keras_pose.preset_registry import list_presets

    assert len(list_presets(family="openpose")) >= 2
    assert family_license("openpose") == NONCOMMERCIAL
    assert family_license("vitpose") is None  # permissive: nothing is assumed
    assert family_license(None) is None


def test_conversion_without_preset_records_the_cmu_licence_and_gates_loading(checkpoint, tmp_path, home):
    import keras_pose
    from keras_pose.conversion import convert_checkpoint
    from keras_pose.license_gate import preset_license
    from keras_pose.presets.openpose_presets import NONCOMMERCIAL

    out = tmp_path / "converted"
    with pytest.warns(UserWarning, match=r"--license"):
        convert_checkpoint(checkpoint, output_dir=str(out))
    record = _record(out)
    assert record["preset"] is None and record["family"] == "openpose"
    assert record["license"] == NONCOMMERCIAL and record["license_source"] == "family"
    assert preset_license(str(out))[0] == NONCOMMERCIAL
    with pytest.raises(PresetError, match="accept_license=True"):
        keras_pose.from_preset(str(out))


def test_explicit_license_overrides(checkpoint, tmp_path, home):
    import warnings

    import keras_pose
    from keras_pose.conversion import convert_checkpoint

    out = tmp_path / "own"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert_checkpoint(checkpoint, output_dir=str(out), license="MIT")
    assert not [w for w in caught if "licence" in str(w.message)]  # no licence warning when the user names it
    record = _record(out)
    assert record["license"] == "MIT" and record["license_source"] == "given"
    model = keras_pose.from_preset(str(out))  # no gate for a permissive licence
    assert model.keypoint_spec.name == "openpose"


def test_resolve_license_order():
    from keras_pose.conversion.preset_output import resolve_license
    from keras_pose.preset_registry import get_preset_entry

    entry = get_preset_entry("openpose_coco18_coco_368x368")
    assert resolve_license(entry, "openpose") == (entry.license, "preset")
    assert resolve_license(entry, "openpose", "none") == (None, "given")
    assert resolve_license(None, "vitpose") == (None, None)


def test_cli_convert_license_option(checkpoint, tmp_path, home):
    from keras_pose.cli import main

    out = tmp_path / "cli"
    assert main(["convert", "--checkpoint", checkpoint, "--output", str(out), "--license", "Apache-2.0"]) == 0
    assert _record(out)["license"] == "Apache-2.0"
