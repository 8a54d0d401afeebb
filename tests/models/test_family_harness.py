"""Every family that registers presets, through the harness (pose_testing.harness).

The families come from the preset registry; each runs on its smallest
registered preset made tiny by its line in `pose_testing.families.TINY_OVERRIDES`
and converts back from the reference layout its `REFERENCE_EXPORTERS` line
writes. A new family gets these tests by registering presets and adding those
two lines; a registered family without them fails here, naming the table.
"""

import keras
import pytest

from pose_testing import families
from pose_testing.harness import (
    model_inputs,
    run_backbone_test,
    run_converter_accounting_test,
    run_converter_test,
    run_export_test,
    run_fit_test,
    run_preset_test,
    run_task_test,
)

FAMILIES = families.registered_families()


def test_every_built_in_family_is_covered():
    # the zoo's families: a family dropping out of the registry is a failure too
    assert {"vitpose", "vitpose_plus", "cpm", "hourglass", "cpn"} <= set(FAMILIES)
    for family in FAMILIES:
        families.lookup(families.TINY_OVERRIDES, "TINY_OVERRIDES", family)
        families.lookup(families.REFERENCE_EXPORTERS, "REFERENCE_EXPORTERS", family)


def test_a_family_without_a_line_fails_naming_the_table():
    with pytest.raises(pytest.fail.Exception, match="no line in pose_testing.families.TINY_OVERRIDES"):
        families.lookup(families.TINY_OVERRIDES, "TINY_OVERRIDES", "a_new_family")


def test_reference_entries_are_the_smallest_presets():
    names = {family: families.reference_entry(family).name for family in ("vitpose", "vitpose_plus", "cpn", "cpm")}
    assert names == {"vitpose": "vitpose_small_coco_256x192", "vitpose_plus": "vitpose_plus_small",
                     "cpn": "cpn50_coco_256x192", "cpm": "cpm_coco_256x192"}
    entry = families.tiny_entry("cpm")  # codec sizes follow the tiny input (CPM: stride 8)
    assert entry.decoding["codec"]["input_size"] == [64, 48] and entry.decoding["codec"]["heatmap_size"] == [8, 6]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture(scope="module")
def tiny(family):
    """(tiny entry, tiny model with randomized weights) of the family."""
    entry = families.tiny_entry(family)
    return entry, families.tiny_model(family)


def test_backbone(tiny, tmp_path):
    _, model = tiny
    backbone = model.backbone
    run_backbone_test(type(backbone), backbone.get_config(), model_inputs(model, 2), tmp_path)


def test_preset(tiny, tmp_path):
    run_preset_test(tiny[1], tmp_path)


def test_converter(family, tiny, tmp_path):
    pytest.importorskip("torch")
    entry, model = tiny
    checkpoint_format, exporter = families.lookup(families.REFERENCE_EXPORTERS, "REFERENCE_EXPORTERS", family)
    run_converter_test(model, entry, exporter, checkpoint_format, tmp_path)


def test_converter_lists_damaged_tensors(family, tiny):
    entry, model = tiny
    _, exporter = families.lookup(families.REFERENCE_EXPORTERS, "REFERENCE_EXPORTERS", family)
    run_converter_accounting_test(model, entry, exporter)


def _export_cases():
    """(family, format): every family exports to ONNX in the default suite, ViTPose (the reference
    family) to TFLite too; the other TFLite exports (20-25 s of converter time each on two cores for
    the convolutional families) are marked slow."""
    cases = []
    for family in FAMILIES:
        cases.append(pytest.param(family, "onnx", id=f"{family}-onnx"))
        marks = () if family == "vitpose" else (pytest.mark.slow,)
        cases.append(pytest.param(family, "tflite", marks=marks, id=f"{family}-tflite"))
    return cases


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export runs on the TensorFlow backend")
@pytest.mark.parametrize("export_family,fmt", _export_cases())
def test_export(export_family, fmt, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("ai_edge_litert")
    run_export_test(families.tiny_model(export_family), tmp_path, formats=(fmt,))


def test_task(tiny, tmp_path):
    # last of the module's tests on the shared model: its short fit moves the weights
    run_task_test(tiny[1], tmp_path)


@pytest.mark.slow
def test_traced_fit(family):
    """The traced (graph) train step of a fresh tiny model (`test_task` fits eagerly)."""
    run_fit_test(families.tiny_model(family), run_eagerly=False)


@pytest.mark.large
def test_smallest_preset_at_full_size(family, tmp_path):
    """The smallest registered preset's architecture at full size: forward and `.keras` round trip."""
    from pose_testing.harness import assert_outputs_close

    model = families.smallest_full_size_model(family)
    x = model_inputs(model, 1)
    outputs = model(x)
    if getattr(model, "paradigm", None) == "one_stage":  # raw outputs and the .keras round trip only
        path = tmp_path / "full.keras"
        model.save(path)
        assert_outputs_close(keras.saving.load_model(path)(x), outputs, 1e-5, f"{family} full size .keras round trip")
        return
    heatmaps = keras.ops.convert_to_numpy(model.heatmaps_from_outputs(outputs))
    assert heatmaps.shape == (1, *model.codec.heatmap_size, model.keypoint_spec.num_keypoints)
    path = tmp_path / "full.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert_outputs_close(restored(x), outputs, 1e-5, f"{family} full size .keras round trip")
