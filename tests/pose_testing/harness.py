"""The family test harness, in the style of keras-hub's `TestCase` (ideas, not code).

Each `run_*` function checks one contract every pose family must keep and
fails with a message naming what broke:

- `run_backbone_test(cls, init_kwargs, input_data, tmp_path)`: forward shapes
  (the eager outputs have the symbolic outputs' shapes, or the given ones),
  float32 and finite; `get_config` / `from_config` gives the same config and,
  with the same weights, the same outputs; a `.keras` round trip too.
- `run_task_test(model, tmp_path)`: forward heatmaps `(B, h, w, K)` of the
  codec's size; a `.keras` round trip with identical outputs and settings;
  `predict_keypoints` on a real COCO sample image returning a `PoseResult`
  with the right shapes and keypoints inside their people's crops; a short
  eager `fit` on targets the model's codec encodes (`run_fit_test`).
- `run_preset_test(model, tmp_path)`: `save_to_preset` writes the keras-hub
  files (`preprocessor.json` included) and `from_preset` gives identical
  outputs and the same preprocessor and codec.
- `run_converter_test(model, entry, exporter, checkpoint_format, tmp_path)`:
  the model's weights exported in the reference layout and saved as the
  reference file format, detected (`detect_family`) and converted back through
  `keras_pose.conversion.convert_checkpoint` into a preset folder: outputs
  equal to 1e-5.
- `run_converter_accounting_test(model, entry, exporter)`: a damaged export
  (missing, unexpected, misshapen tensors) is refused, each tensor named.
- `run_fit_test(model)`: a short `fit` (finite loss, weights move), eager or
  traced.
- `run_export_test(model, tmp_path)`: TFLite (float32) and ONNX exports give
  the Keras heatmaps.

`pose_testing.families` supplies, per registered family, the tiny model these
run on; tests/models/test_family_harness.py runs them for every family.
"""

import json
import os

import keras
import numpy as np

from pose_testing.paths import DATA_DIR

COCO_SAMPLE = DATA_DIR / "coco" / "test_coco.json"


# ----------------------------------------------------------------- helpers
def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def flat_outputs(outputs):
    """Model outputs as a list of NumPy arrays (dicts in sorted key order)."""
    if isinstance(outputs, dict):
        return [to_numpy(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [to_numpy(o) for o in outputs]
    return [to_numpy(outputs)]


def assert_outputs_close(actual, expected, atol, what):
    actual, expected = flat_outputs(actual), flat_outputs(expected)
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, expected {len(expected)}"
    for i, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape, f"{what}: output {i} has shape {a.shape}, expected {b.shape}"
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
        assert diff <= atol, f"{what}: output {i} differs by {diff:.3g} (> {atol:g})"


def random_images(shape, seed=0):
    """Normalised-looking float32 inputs (standard normal)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def model_inputs(model, batch_size=2, seed=0):
    return random_images((batch_size, *model.image_size, 3), seed)


def sample_people(max_people=3):
    """(image path, (M, 4) xywh boxes) of the COCO sample image with the most annotated people."""
    with open(COCO_SAMPLE) as f:
        data = json.load(f)
    boxes = {}
    for ann in data["annotations"]:
        if ann.get("num_keypoints", 1) > 0:
            boxes.setdefault(ann["image_id"], []).append(ann["bbox"])
    image = next(i for i in data["images"] if i["id"] == 785)  # one large person, 640x425
    people = np.asarray(boxes[image["id"]][:max_people], np.float32)
    return str(COCO_SAMPLE.parent / image["file_name"]), people, (image["height"], image["width"])


def codec_targets(model, batch_size, seed=0):
    """Training targets for `batch_size` random people, encoded by the model's own codec."""
    rng = np.random.default_rng(seed)
    h, w = model.image_size
    k = model.keypoint_spec.num_keypoints
    keypoints = np.stack([rng.uniform(0.1 * w, 0.9 * w, (batch_size, k)),
                          rng.uniform(0.1 * h, 0.9 * h, (batch_size, k))], axis=-1).astype(np.float32)
    visible = (rng.uniform(size=(batch_size, k)) > 0.2).astype(np.float32)
    if getattr(model, "paradigm", None) == "one_stage":  # padded instances (the whole-image pipeline's dict)
        return instance_targets(keypoints, visible, (h, w))
    if getattr(model, "paradigm", None) == "bottom_up":  # one person per whole-image sample: (B, 1, K, 2)
        targets = model.codec.encode(keypoints[:, None], visible[:, None])
    else:
        targets = model.codec.encode(keypoints, visible)
    as_float = lambda v: tuple(as_float(t) for t in v) if isinstance(v, (list, tuple)) else np.asarray(v, np.float32)  # noqa: E731
    return {name: as_float(value) for name, value in targets.items()}



def instance_targets(keypoints, visible, image_size, max_instances=2):
    """One person per image as the whole-image pipeline pads instances (slot 0 real, the rest padding).

    Args:
        keypoints: (B, K, 2) input pixels; visible: (B, K) 0/1; image_size: (H, W).

    Returns:
        {"boxes" (B, M, 4) xyxy, "keypoints" (B, M, K, 2), "keypoint_visible" (B, M, K),
        "instance_valid" (B, M), "ignore_mask" (B, H, W)} float32.
    """
    b, k = visible.shape
    shown = np.where(visible[..., None] > 0, keypoints, np.nan)
    lo, hi = np.nanmin(shown, axis=1), np.nanmax(shown, axis=1)  # (B, 2) each (every row has a visible point)
    out = {"boxes": np.zeros((b, max_instances, 4), np.float32),
           "keypoints": np.zeros((b, max_instances, k, 2), np.float32),
           "keypoint_visible": np.zeros((b, max_instances, k), np.float32),
           "instance_valid": np.zeros((b, max_instances), np.float32),
           "ignore_mask": np.zeros((b, *image_size), np.float32)}
    out["boxes"][:, 0] = np.concatenate([lo - 4.0, hi + 4.0], axis=-1)
    out["keypoints"][:, 0], out["keypoint_visible"][:, 0], out["instance_valid"][:, 0] = keypoints, visible, 1.0
    return out

def _symbolic_shapes(model):
    outputs = model.output if not isinstance(model.output, (list, tuple)) else list(model.output)
    if isinstance(outputs, dict):
        return [tuple(outputs[k].shape[1:]) for k in sorted(outputs)]
    if isinstance(outputs, list):
        return [tuple(o.shape[1:]) for o in outputs]
    return [tuple(outputs.shape[1:])]


# ---------------------------------------------------------------- backbone
def run_backbone_test(cls, init_kwargs, input_data, tmp_path, expected_output_shape=None, atol=1e-6):
    """Build `cls(**init_kwargs)`; check forward shapes, config round trip and `.keras` round trip.

    Args:
        cls: the backbone class.
        init_kwargs: its constructor arguments.
        input_data: a batch of inputs (B, H, W, 3).
        tmp_path: a folder for the `.keras` file.
        expected_output_shape: the output shape(s) (a shape, a list, or a
            dict by output name); default: the symbolic outputs' shapes with
            the batch size of `input_data`.
    """
    backbone = cls(**init_kwargs)
    outputs = backbone(input_data)
    batch = input_data.shape[0]
    shapes = [a.shape for a in flat_outputs(outputs)]
    if expected_output_shape is None:
        expected = [(batch, *s) for s in _symbolic_shapes(backbone)]
    elif isinstance(expected_output_shape, dict):
        expected = [tuple(expected_output_shape[k]) for k in sorted(expected_output_shape)]
    elif expected_output_shape and isinstance(expected_output_shape[0], (list, tuple)):
        expected = [tuple(s) for s in expected_output_shape]
    else:
        expected = [tuple(expected_output_shape)]
    same = len(shapes) == len(expected) and all(
        len(a) == len(e) and all(d is None or int(d) == int(x) for x, d in zip(a, e)) for a, e in zip(shapes, expected))
    assert same, f"{cls.__name__} output shapes {shapes}, expected {expected}"  # None: any size (fully convolutional)
    flat = []
    for i, a in enumerate(flat_outputs(outputs)):
        assert a.dtype == np.float32, f"{cls.__name__} returns {a.dtype}, expected float32"
        assert np.isfinite(a).all(), f"{cls.__name__} returns non-finite values"
        if a.size and not np.ptp(a) > 0:
            flat.append(i)
    if flat:
        # An untrained network in eval mode may be flat: its BatchNorm statistics sit at their (0, 1) start while
        # a small initialisation (RTMO: mmpose's Kaiming a=sqrt(5), variance 1 / (3 fan_in)) shrinks the signal
        # layer by layer, to ~1e-9 under a constant bias. Train mode normalises with the batch's statistics
        # (on a clone: the moving averages stay put), so a wired network's outputs vary there.
        probe = cls.from_config(backbone.get_config())
        probe.set_weights(backbone.get_weights())
        trained_mode = flat_outputs(probe(input_data, training=True))
        for i in flat:
            assert np.ptp(trained_mode[i]) > 0, f"{cls.__name__} returns a constant output (train mode too)"

    config = backbone.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config, f"{cls.__name__}.from_config(get_config()) changes the config"
    clone.set_weights(backbone.get_weights())
    assert_outputs_close(clone(input_data), outputs, atol, f"{cls.__name__} from_config clone")

    path = os.path.join(tmp_path, "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is cls, f".keras round trip gives {type(restored).__name__}, not {cls.__name__}"
    assert restored.get_config() == config
    assert_outputs_close(restored(input_data), outputs, atol, f"{cls.__name__} .keras round trip")
    return backbone


# -------------------------------------------------------------------- task
def _trainable(model):
    return {w.path: to_numpy(w).copy() for w in model.trainable_weights}


def assert_fully_built(model):
    """Every layer of a constructed task is built (the preprocessor's included).

    Keras' JAX `predict_on_batch` runs the whole model eagerly before every
    call while any layer is unbuilt, and its JAX / PyTorch `train_on_batch`
    traces it symbolically: a ViTPose-B forward took 2.5x as long on JAX.
    """
    unbuilt = [f"{layer.name} ({type(layer).__name__})" for layer in model._flatten_layers() if not layer.built]
    assert not unbuilt, f"{type(model).__name__} has unbuilt layers after construction: {unbuilt}"


def run_task_test(model, tmp_path, batch_size=2, fit_steps=1, run_eagerly=True, atol=1e-6, min_changed=0.5):
    """Forward, fit, `.keras` round trip and `predict_keypoints` of a task model.

    Args:
        model: a built task (a `TopDownPoseEstimator`).
        tmp_path: a folder for the `.keras` file.
        batch_size: inputs per forward / training batch.
        fit_steps: training steps of the short fit.
        run_eagerly: predict and fit without tracing the predict and train
            steps (tracing a deep tiny net costs up to a minute on two cores;
            the traced steps are `run_fit_test(run_eagerly=False)`'s, marked
            slow in tests/models/test_family_harness.py, and the exports').
        atol: tolerance of the round-trip comparisons.
        min_changed: the least fraction of trainable variables the fit must
            move (heads of inactive datasets get no gradient).
    """
    assert_fully_built(model)
    if getattr(model, "paradigm", None) == "one_stage":
        return run_one_stage_task_test(model, tmp_path, batch_size, atol)
    if getattr(model, "paradigm", None) == "bottom_up":
        return run_bottom_up_task_test(model, tmp_path, batch_size, atol)
    name = type(model).__name__
    x = model_inputs(model, batch_size)
    outputs = model(x)
    heatmaps = to_numpy(model.heatmaps_from_outputs(outputs))
    k = model.keypoint_spec.num_keypoints
    expected = (batch_size, *model.codec.heatmap_size, k)
    assert heatmaps.shape == expected, f"{name} heatmaps {heatmaps.shape}, expected (B, h, w, K) = {expected}"
    assert heatmaps.dtype == np.float32 and np.isfinite(heatmaps).all(), f"{name} heatmaps not finite float32"
    serving = model.serving_outputs(outputs)
    assert tuple(serving["heatmaps"].shape) == expected

    # .keras round trip (before fitting: the compiled state is not what is compared)
    path = os.path.join(tmp_path, "task.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model), f".keras round trip gives {type(restored).__name__}, not {name}"
    assert_fully_built(restored)
    assert restored.keypoint_spec.get_config() == model.keypoint_spec.get_config()
    assert restored.codec.get_config() == model.codec.get_config()
    assert restored.test_cfg == model.test_cfg
    assert restored.preprocessor.get_config() == model.preprocessor.get_config()
    assert_outputs_close(restored(x), outputs, atol, f"{name} .keras round trip")

    # predict_keypoints on a real image (eager forward passes with run_eagerly: nothing to trace)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=run_eagerly)
    image, boxes, (height, width) = sample_people()
    result = model.predict_keypoints(image, boxes=boxes)
    m = len(boxes)
    assert result.keypoints.shape == (m, k, 2) and result.scores.shape == (m, k), (
        f"{name}.predict_keypoints: keypoints {result.keypoints.shape}, scores {result.scores.shape}, "
        f"expected ({m}, {k}, 2), ({m}, {k})"
    )
    assert result.image_size == (height, width) and result.image_id == image
    np.testing.assert_allclose(result.boxes, boxes)
    assert np.isfinite(result.keypoints).all() and np.isfinite(result.scores).all()
    from keras_pose.utils.image_io import read_image

    _, centers, scales = model.crop_people(read_image(image), boxes)  # crop centres and sizes (w, h), pixels
    scales = np.asarray(scales)[:, None]
    heatmap_pixel = scales / np.asarray(model.codec.heatmap_size[::-1])  # sub-pixel shifts reach past the edge
    inside = np.abs(result.keypoints - np.asarray(centers)[:, None]) <= scales / 2 + heatmap_pixel
    found = result.scores > 0  # mmpose decoders put keypoints without a positive maximum at heatmap (-1, -1)
    assert found.any(), f"{name}: no keypoint with a positive score"
    assert inside.all(axis=-1)[found].all(), f"{name}: keypoints outside their people's crops"

    run_fit_test(model, batch_size, fit_steps, run_eagerly=run_eagerly, min_changed=min_changed)
    return restored


def run_bottom_up_task_test(model, tmp_path, batch_size=2, atol=1e-6):
    """A bottom-up task: forward maps at stride `model.backbone.stride`, `.keras` round trip, `predict_keypoints`
    on a real whole image (no boxes) giving a `PoseResult` in image pixels, with flip test and two scales."""
    name = type(model).__name__
    x = model_inputs(model, batch_size)
    outputs = model(x)
    heatmaps = to_numpy(model.heatmaps_from_outputs(outputs))
    stride = model.backbone.stride
    h, w = (-(-s // stride) for s in model.image_size)
    assert heatmaps.shape[:3] == (batch_size, h, w) and heatmaps.dtype == np.float32, heatmaps.shape
    serving = model.serving_outputs(outputs)
    assert tuple(serving["heatmaps"].shape) == heatmaps.shape
    path = os.path.join(tmp_path, "task.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model), f".keras round trip gives {type(restored).__name__}, not {name}"
    assert restored.keypoint_spec.get_config() == model.keypoint_spec.get_config()
    assert restored.test_cfg == model.test_cfg
    assert_outputs_close(restored(x), outputs, atol, f"{name} .keras round trip")
    image, _, (height, width) = sample_people()
    k = model.keypoint_spec.num_keypoints
    for cfg in ({}, {"flip_test": True, "scales": [0.5, 1.0]}):
        object.__setattr__(restored, "_pose_test_cfg", {**model.test_cfg, **cfg})
        result = restored.predict_keypoints(image)
        n = len(result)
        assert result.keypoints.shape == (n, k, 2) and result.scores.shape == (n, k), result.keypoints.shape
        assert result.image_size == (height, width) and result.image_id == image and result.boxes is None
        assert np.isfinite(result.keypoints).all() and result.person_scores.shape == (n,)
        assert ((result.keypoints >= 0) & (result.keypoints <= [width, height])).all()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    run_fit_test(model, batch_size, 1, run_eagerly=True)
    return restored


def run_fit_test(model, batch_size=2, steps=2, run_eagerly=False, jit_compile=False, min_changed=0.5):
    """A short `fit` on targets the model's codec encodes: finite loss, trainable weights move.

    Args:
        model: a task model (compiled here with Adam and its default loss).
        batch_size, steps: the fit's batches.
        run_eagerly, jit_compile: how the train step runs.
        min_changed: the least fraction of trainable variables that must move
            (the heads of a multi-dataset model's inactive datasets get no
            gradient).
    """
    name = type(model).__name__
    before = _trainable(model)
    y = codec_targets(model, batch_size * steps)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=run_eagerly, jit_compile=jit_compile)
    history = model.fit(model_inputs(model, batch_size * steps, seed=1), y, batch_size=batch_size,
                        epochs=1, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert np.isfinite(losses).all(), f"{name}: non-finite training loss {losses}"
    after = _trainable(model)
    changed = [p for p in before if not np.array_equal(before[p], after[p])]
    assert len(changed) >= min_changed * len(before), (
        f"{name}: the fit moved {len(changed)} of {len(before)} trainable variables; unchanged: "
        f"{sorted(set(before) - set(changed))[:10]}"
    )
    return losses


# ------------------------------------------------------------------ preset
PRESET_FILES = ("config.json", "task.json", "preprocessor.json", "model.weights.h5", "metadata.json")


def run_preset_test(model, tmp_path, atol=1e-6):
    """`save_to_preset` -> `keras_pose.from_preset`: the files (preprocessor.json too), identical outputs."""
    import keras_pose

    name = type(model).__name__
    directory = os.path.join(tmp_path, "preset")
    model.save_to_preset(directory)
    files = [f for f in PRESET_FILES if f != "preprocessor.json" or model.preprocessor is not None]
    missing = [f for f in files if not os.path.isfile(os.path.join(directory, f))]
    assert not missing, f"{name}.save_to_preset wrote no {missing} (files: {sorted(os.listdir(directory))})"
    if model.preprocessor is not None:  # bottom-up models keep their pre-processing in test_cfg
        with open(os.path.join(directory, "preprocessor.json")) as f:
            assert json.load(f)["config"], "preprocessor.json holds no configuration"
    x = model_inputs(model, 1, seed=2)
    expected = model(x)
    loaded = keras_pose.from_preset(directory)  # the loader behind every class's from_preset
    assert type(loaded) is type(model), f"from_preset gives {type(loaded).__name__}, not {name}"
    if model.preprocessor is not None:
        assert loaded.preprocessor.get_config() == model.preprocessor.get_config()
    assert _codec_config(loaded) == _codec_config(model) and loaded.test_cfg == model.test_cfg
    assert loaded.keypoint_spec.get_config() == model.keypoint_spec.get_config()
    assert_outputs_close(loaded(x), expected, atol, f"{name} preset round trip")
    return directory


# --------------------------------------------------------------- converter
def save_reference_checkpoint(state_dict, path, checkpoint_format):
    """Save `{name: array}` the way the family's reference code saves a release.

    - "vitpose_original": ``torch.save({'meta': {}, 'state_dict'})`` (ViTAE-Transformer/ViTPose);
    - "mmpose": ``torch.save({'meta': {...}, 'state_dict'})``, legacy (non-zip) serialisation;
    - "pytorch_cpn": ``torch.save({'epoch', 'state_dict', 'optimizer'})`` of a
      ``DataParallel`` model (``module.`` prefix).
    """
    import torch

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict.items()}
    if checkpoint_format == "vitpose_original":
        torch.save({"meta": {}, "state_dict": tensors}, path)
    elif checkpoint_format == "mmpose":
        torch.save({"meta": {"mmpose_version": "1.0.0"}, "state_dict": tensors}, path,
                   _use_new_zipfile_serialization=False)
    elif checkpoint_format == "pytorch_cpn":
        state = {f"module.{k}": v for k, v in tensors.items()}
        torch.save({"epoch": 32, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    elif checkpoint_format == "pytorch_openpose":  # body_pose_model.pth: a flat dict, Caffe layer names
        torch.save(tensors, path)
    else:
        raise ValueError(f"no writer for checkpoint format {checkpoint_format!r}; add one to save_reference_checkpoint")
    return path


def run_converter_test(model, entry, exporter, checkpoint_format, tmp_path, atol=1e-5):
    """Export `model` to the reference layout, convert it back, compare outputs.

    Args:
        model: the source model (weights randomized so misplaced tensors show).
        entry: the `PresetEntry` the file is converted with (its config
            describes `model`).
        exporter: `model -> {name: array}` in the reference layout.
        checkpoint_format: how the file is saved (`save_reference_checkpoint`).
        tmp_path: a folder for the checkpoint and the converted preset.
    """
    import dataclasses

    from keras_pose.conversion import PRESET_METADATA_FILE, convert_checkpoint, detect_family

    name = type(model).__name__
    state_dict = exporter(model)
    path = save_reference_checkpoint(state_dict, os.path.join(tmp_path, f"{entry.family}_reference.pth"),
                                     checkpoint_format)
    family, layout = detect_family(path)
    assert family.split("_plus")[0] == entry.family.split("_plus")[0], (
        f"detect_family says {family!r} for an exported {entry.family!r} checkpoint")
    assert layout == checkpoint_format, f"detect_family says layout {layout!r}, expected {checkpoint_format!r}"
    entry = dataclasses.replace(entry, checkpoint_format=checkpoint_format)
    output_dir = os.path.join(tmp_path, "converted")
    converted = convert_checkpoint(path, preset=entry, output_dir=output_dir)
    assert type(converted) is type(model), f"conversion gives {type(converted).__name__}, not {name}"
    x = model_inputs(model, 2, seed=3)
    expected = model(x)
    assert_outputs_close(converted(x), expected, atol, f"{name} exported -> converted")
    assert _codec_config(converted) == _codec_config(model) and converted.test_cfg == model.test_cfg
    assert os.path.isfile(os.path.join(output_dir, PRESET_METADATA_FILE))  # loading it: run_preset_test
    return converted


# ------------------------------------------------------------------ export
def run_export_test(model, tmp_path, formats=("tflite", "onnx"), rtol=1e-4):
    """float32 TFLite / ONNX exports of `model` return its heatmaps (to `rtol` of their range)."""
    from keras_pose.export import export_model, load_exported, read_metadata

    if getattr(model, "paradigm", None) == "one_stage":
        import pytest

        pytest.skip(f"{type(model).__name__}: keras_pose.export writes heatmap models only (one-stage export: to do)")
    x = model_inputs(model, 2, seed=4)
    expected = to_numpy(model.heatmaps_from_outputs(model(x))).astype(np.float32)
    atol = rtol * max(float(np.ptp(expected)), 1e-3)
    for fmt in formats:
        path = os.path.join(tmp_path, f"model.{fmt}")
        export_model(model, path, format=fmt)
        metadata = read_metadata(path)
        assert metadata["keypoints"]["names"] == list(model.keypoint_spec.keypoint_names)
        assert metadata["image_size"] == list(model.image_size)
        assert metadata["decoding"]["codec"] == model.export_decoding()["codec"]
        runner = load_exported(path)
        heatmaps = np.concatenate([np.asarray(runner(x[i:i + 1])["heatmaps"]) for i in range(len(x))])
        assert_outputs_close(heatmaps, expected, atol, f"{type(model).__name__} {fmt} export")


def run_converter_accounting_test(model, entry, exporter, atol=None):
    """A damaged export (one tensor missing, one unexpected, one misshapen) is refused, all three named.

    Args:
        model: a model of the family (its export is damaged).
        entry: the `PresetEntry` describing `model` (converted with it).
        exporter: `model -> {name: array}` in the reference layout.
    """
    import pytest

    from keras_pose.conversion import convert_checkpoint
    from keras_pose.errors import CheckpointError

    state_dict = exporter(model)
    weights = [k for k, v in state_dict.items() if k.endswith(".weight") and np.ndim(v) == 4]
    norms = [k for k in state_dict if k.endswith(".running_var") or k.endswith("norm1.bias")]
    norms = norms or [k for k in state_dict if k.endswith(".bias")]  # families without norm layers
    missing = norms[len(norms) // 2]
    misshapen = weights[len(weights) // 2]
    del state_dict[missing]
    bad_shape = tuple(d + 1 for d in np.shape(state_dict[misshapen]))
    state_dict[misshapen] = np.zeros(bad_shape, np.float32)
    state_dict["backbone.unexpected_extra.weight"] = np.zeros((3, 2), np.float32)
    with pytest.raises(CheckpointError) as info:
        convert_checkpoint(state_dict, preset=entry)
    message = str(info.value)
    for what, key in (("missing", missing), ("unexpected", "backbone.unexpected_extra.weight"),
                      ("misshapen", misshapen)):
        assert key in message, f"the converter's error does not name the {what} tensor {key}: {message}"
    assert f"checkpoint {bad_shape}" in message or str(bad_shape) in message, message


# ---------------------------------------------------------------- one-stage
def _codec_config(model):
    return None if model.codec is None else model.codec.get_config()


def run_one_stage_task_test(model, tmp_path, batch_size=2, atol=1e-6):
    """Forward, in-graph decoding, `.keras` round trip and `predict_keypoints` of a one-stage task.

    Checks: raw outputs finite float32; the decoded tensors (`DECODED_KEYS`)
    of the static shapes (B, M, ...); the `.keras` round trip (outputs,
    spec, test settings, preprocessor); `predict_keypoints` on two real COCO
    images at once (people sorted by score, boxes inside their image,
    shapes); `fit` on padded instance targets (finite loss).
    """
    from keras_pose.models.one_stage_pose_estimator import DECODED_KEYS

    name = type(model).__name__
    x = model_inputs(model, batch_size)
    outputs = model(x)
    for value in flat_outputs(outputs):
        assert value.dtype == np.float32 and np.isfinite(value).all(), f"{name} raw outputs not finite float32"
    k, m = model.keypoint_spec.num_keypoints, 3
    decoded = model.decode_outputs(outputs, max_instances=m, score_threshold=0.0)
    shapes = {"boxes": (batch_size, m, 4), "scores": (batch_size, m), "keypoints": (batch_size, m, k, 2),
              "keypoint_scores": (batch_size, m, k), "valid": (batch_size, m)}
    for key in DECODED_KEYS:
        assert tuple(decoded[key].shape) == shapes[key], f"{name} decoded {key} {tuple(decoded[key].shape)}"
    serving = model.serving_outputs(outputs)
    assert sorted(serving) == sorted(DECODED_KEYS)

    path = os.path.join(tmp_path, "task.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model), f".keras round trip gives {type(restored).__name__}, not {name}"
    assert restored.keypoint_spec.get_config() == model.keypoint_spec.get_config()
    assert restored.test_cfg == model.test_cfg
    assert restored.preprocessor.get_config() == model.preprocessor.get_config()
    assert_outputs_close(restored(x), outputs, atol, f"{name} .keras round trip")

    image, _, (height, width) = sample_people()
    other = str(COCO_SAMPLE.parent / "000000040083.jpg")
    results = model.predict_keypoints([image, other], max_instances=5, score_threshold=0.0)
    assert len(results) == 2 and results[0].image_id == image and results[0].image_size == (height, width)
    from keras_pose.utils.image_io import read_image

    for result, file in zip(results, (image, other)):
        n = len(result)
        assert 1 <= n <= 5, f"{name}.predict_keypoints: {n} people with score threshold 0 (expected 1..5)"
        assert result.keypoints.shape == (n, k, 2) and result.scores.shape == (n, k)
        assert result.boxes.shape == (n, 4) and result.box_scores.shape == (n,)
        assert np.all(np.diff(result.box_scores) <= 0), "people not sorted by score"
        # boxes are clamped to the model input (as the reference): inside the input's area in image pixels
        _, matrix = model.preprocessor.resizer.resize(read_image(file))
        area = model.preprocessor.resizer.to_image(np.array([[0.0, 0.0], model.image_size[::-1]], np.float32), matrix)
        tol = 1e-3 * float(np.abs(area).max())
        x1, y1 = result.boxes[:, 0], result.boxes[:, 1]
        x2, y2 = x1 + result.boxes[:, 2], y1 + result.boxes[:, 3]
        assert (np.all(x1 >= area[0, 0] - tol) and np.all(y1 >= area[0, 1] - tol) and np.all(x2 <= area[1, 0] + tol)
                and np.all(y2 <= area[1, 1] + tol)), f"{name}: boxes outside the input area {area}: {result.boxes}"
    _check_one_stage_fit(model, batch_size)
    return restored


def _check_one_stage_fit(model, batch_size):
    """`fit` on padded instance targets (the whole-image pipeline's dict) gives finite, named loss terms."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    y = codec_targets(model, batch_size)
    history = model.fit(model_inputs(model, batch_size, seed=1), y, batch_size=batch_size, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all(), f"{type(model).__name__}: loss {history.history['loss']}"
