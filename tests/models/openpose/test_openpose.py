"""The OpenPose task: inference pipeline, flip, keypoint mapping, Caffe reader, licence gate, CLI."""

import json

import numpy as np
import pytest
from pose_testing import openpose_models
from pose_testing.paths import DATA_DIR, GOLDEN_DIR

from keras_pose.errors import CheckpointError, PresetError
from keras_pose.models.openpose import OpenPose, coco17_to_op18, op18_to_coco17

GROUPING = GOLDEN_DIR / "openpose" / "grouping_coco18"
TINY = dict(openpose_models.TINY, num_stages=2)


def tiny_model(variant="coco18", **test_cfg):
    if variant == "coco18":
        model = OpenPose.from_checkpoint_config(variant="coco18", image_size=[32, 32], **TINY)
    else:
        model = OpenPose.from_checkpoint_config(
            variant="body25", image_size=[32, 32], num_heatmaps=26, num_pafs=52, num_paf_stages=2,
            num_heatmap_stages=1, vgg_channels=[8, 8, 8, 8], cpm_channels=[8, 8], stage_channels=8,
            head_channels=8, first_stage_channels=8, first_head_channels=8)
    if test_cfg:
        object.__setattr__(model, "_pose_test_cfg", {**model.test_cfg, **test_cfg})
    return model


class GoldenMaps(OpenPose):
    """An OpenPose whose network returns the golden grouping case's maps (the reference's own input)."""

    def _forward(self, x):
        assert x.shape == (392, 640, 3)
        return [np.load(GROUPING / "input_heatmap.npy"), np.load(GROUPING / "input_paf.npy")]


def test_predict_keypoints_reproduces_the_reference_people():
    """Pipeline (pre-processing at scale 1, cubic x8 upsampling, crop, grouping, PoseResult) = Hzzone's decode."""
    model = tiny_model(net_height=392, upsample="cubic")
    model.__class__ = GoldenMaps
    result = model.predict_keypoints(str(DATA_DIR / "coco" / "000000197388.jpg"))
    candidate, subset = np.load(GROUPING / "expected_candidate_cubic.npy"), np.load(GROUPING / "expected_subset_cubic.npy")
    assert len(result) == len(subset) and result.image_size == (392, 640) and result.boxes is None
    for person, row in zip(range(len(result)), subset):
        index = row[:18].astype(int)
        present = index >= 0
        np.testing.assert_array_equal(result.keypoints[person][present], candidate[index[present], :2])
        np.testing.assert_allclose(result.scores[person][present], candidate[index[present], 2], atol=1e-6)
        assert (result.scores[person][~present] == 0).all()
        assert result.person_scores[person] == pytest.approx(row[18] / row[19], abs=1e-5)
    records = result.to_coco(image_id=197388)
    assert len(records) == len(subset) and len(records[0]["keypoints"]) == 18 * 3


def test_flip_maps_is_an_involution_and_mirrors_limbs():
    model = tiny_model()
    rng = np.random.default_rng(0)
    heat, paf = rng.standard_normal((6, 7, 19)), rng.standard_normal((6, 7, 38))
    h2, p2 = model.flip_maps(*model.flip_maps(heat, paf))
    np.testing.assert_allclose(h2, heat)
    np.testing.assert_allclose(p2, paf)
    h1, p1 = model.flip_maps(heat, paf)
    # right shoulder (2) of the flipped maps is the mirrored left shoulder (5); neck->r_shoulder PAF
    # (limb 0, channels 12, 13) is the mirrored neck->l_shoulder PAF (limb 1, channels 20, 21), x negated
    np.testing.assert_allclose(h1[..., 2], heat[:, ::-1, 5])
    np.testing.assert_allclose(p1[..., 12], -paf[:, ::-1, 20])
    np.testing.assert_allclose(p1[..., 13], paf[:, ::-1, 21])


@pytest.mark.slow
def test_multi_scale_flip_and_body25_predict():
    image = np.random.default_rng(1).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    for model in (tiny_model(scales=[0.5, 1.0], flip_test=True), tiny_model("body25")):
        result = model.predict_keypoints(image, flip_test=True)
        k = model.keypoint_spec.num_keypoints
        assert result.keypoints.shape[1:] == (k, 2) and result.image_size == (50, 70)
    assert tiny_model("body25").keypoint_spec.name == "openpose_body25"
    with pytest.raises(TypeError, match="no boxes"):
        tiny_model().predict_keypoints(image, boxes=[[0, 0, 10, 10]])


@pytest.mark.slow
def test_any_input_size_and_config_round_trip(tmp_path):
    import keras

    model = tiny_model("body25")
    for h, w in ((16, 24), (40, 32)):
        out = model(np.zeros((1, h, w, 3), np.float32))
        assert out["heatmap_stage1"].shape == (1, h // 8, w // 8, 26) and out["paf_stage2"].shape[-1] == 52
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    x = np.random.default_rng(0).standard_normal((1, 24, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(restored(x)["paf_stage2"], model(x)["paf_stage2"], atol=1e-6)
    assert restored.limbs == model.limbs and restored.backbone.get_config() == model.backbone.get_config()


def test_bad_configs_are_named():
    from keras_pose.models.openpose import OpenPoseBackbone

    with pytest.raises(ValueError, match="variant"):
        OpenPoseBackbone(variant="mpi")
    with pytest.raises(ValueError, match="even"):
        OpenPoseBackbone(num_pafs=37)
    with pytest.raises(ValueError, match="keypoints"):
        OpenPose(OpenPoseBackbone(**TINY), keypoint_spec="coco")


def test_keypoint_mapping():
    coco = np.arange(17 * 3, dtype=float).reshape(17, 3) + 1
    op = coco17_to_op18(coco)
    np.testing.assert_allclose(op[1, :2], (coco[5, :2] + coco[6, :2]) / 2)
    np.testing.assert_allclose(op18_to_coco17(op), coco)
    coco[6, 2] = 0
    assert (coco17_to_op18(coco)[1] == 0).all()  # neck only when both shoulders are visible


def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_caffe_reader_legacy_layers_and_shapes(tmp_path):
    """V1 `layers` (name 4, type enum 5, blobs 6), legacy num/channels/height/width, unpacked floats."""
    from keras_pose.conversion.caffe_io import read_caffemodel

    weight = np.arange(2 * 3 * 1 * 1, dtype=np.float32)
    bias = np.array([0.5, -1.0], np.float32)
    legacy = b"".join(_varint(n << 3) + _varint(v) for n, v in ((1, 2), (2, 3), (3, 1), (4, 1)))
    blob_w = legacy + _field(5, weight.tobytes())
    blob_b = b"".join(_varint(n << 3) + _varint(v) for n, v in ((1, 1), (2, 1), (3, 1), (4, 2)))
    blob_b += b"".join(_varint(5 << 3 | 5) + np.float32(v).tobytes() for v in bias)  # unpacked
    layer = _field(4, b"conv1") + _varint(5 << 3) + _varint(4) + _field(6, blob_w) + _field(6, blob_b)
    data_layer = _field(4, b"data")  # a layer without blobs is skipped
    path = tmp_path / "legacy.caffemodel"
    path.write_bytes(_field(1, b"net") + _field(2, data_layer) + _field(2, layer))
    tensors, types = read_caffemodel(path)
    assert types == {"conv1": "Convolution"}
    np.testing.assert_array_equal(tensors["conv1.weight"], weight.reshape(2, 3, 1, 1))
    np.testing.assert_array_equal(tensors["conv1.bias"], bias)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(CheckpointError, match="truncated|complete"):
        read_caffemodel(path)


def test_caffemodel_conversion_accounts_for_every_blob(tmp_path):
    from keras_pose.conversion import convert_checkpoint
    from keras_pose.conversion.caffe_io import write_caffemodel

    model = tiny_model("body25")
    sd = openpose_models.export_state_dict(model)
    layers = {}
    for key, value in sd.items():
        layers.setdefault(key.rsplit(".", 1)[0], []).append(value)
    typed = [(n, "PReLU" if len(b) == 1 else "Convolution", b) for n, b in layers.items()]
    path = tmp_path / "tiny.caffemodel"
    write_caffemodel(path, typed)
    converted = convert_checkpoint(str(path))
    x = np.random.default_rng(0).standard_normal((1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(converted(x)["heatmap_stage1"], model(x)["heatmap_stage1"], atol=1e-5)
    write_caffemodel(path, typed[:5] + [("extra_fc", "InnerProduct", [np.zeros((2, 3), np.float32)])] + typed[6:])
    with pytest.raises(CheckpointError) as info:
        convert_checkpoint(str(path))
    assert "extra_fc.weight" in str(info.value) and typed[5][0] in str(info.value)


@pytest.fixture
def converted_preset(tmp_path, home):
    """A tiny COCO-18 model converted from its body_pose_model.pth with the (licence-restricted) preset."""
    import dataclasses

    import torch

    from keras_pose.conversion import convert_checkpoint
    from keras_pose.preset_registry import get_preset_entry

    model = tiny_model()
    path = tmp_path / "body_pose_model.pth"
    torch.save({k: torch.from_numpy(v) for k, v in openpose_models.export_state_dict(model).items()}, path)
    entry = get_preset_entry("openpose_coco18_coco_368x368")
    entry = dataclasses.replace(entry, config={**entry.config, **TINY, "num_stages": 2, "image_size": [32, 32]})
    out = tmp_path / "preset"
    convert_checkpoint(str(path), preset=entry, output_dir=str(out))
    return str(out)


def test_licence_must_be_accepted_once(converted_preset, home):
    import keras_pose
    from keras_pose.license_gate import accepted_licenses

    with pytest.raises(PresetError, match="accept_license=True"):
        keras_pose.from_preset(converted_preset)
    with pytest.raises(PresetError, match="non-commercial"):
        keras_pose.from_preset("openpose_body25_coco_368x368")  # refused before any download
    model = keras_pose.from_preset(converted_preset, accept_license=True)
    assert isinstance(model, OpenPose) and accepted_licenses()
    assert isinstance(keras_pose.from_preset(converted_preset), OpenPose)  # accepted before


def test_cli_predict_bottom_up(converted_preset, tmp_path):
    import cv2

    from keras_pose.cli import main

    image = str(DATA_DIR / "coco" / "000000000785.jpg")
    out_png, out_json = tmp_path / "out.png", tmp_path / "out.json"
    assert main(["predict", "--preset", converted_preset, image, "--output", str(out_png), "--json",
                 str(out_json), "--accept-license"]) == 0
    assert isinstance(json.loads(out_json.read_text()), list)
    assert cv2.imread(str(out_png)).shape == cv2.imread(image).shape
    assert main(["predict", "--preset", converted_preset, image, "--box", "1,1,20,20"]) != 0


def test_training_targets_and_loss():
    from keras_pose.models.openpose.openpose_targets import OpenPoseLoss, OpenPoseMaps

    codec = OpenPoseMaps((64, 80), 18, [(1, 2)] + [(0, 1)] * 18)
    people = np.zeros((1, 18, 2))
    people[0, 1] = (19.5, 27.5)  # neck on cell (2, 3)
    people[0, 2] = (51.5, 27.5)  # right shoulder on cell (6, 3): limb 0 is horizontal
    visible = np.zeros((1, 18))
    visible[0, [1, 2]] = 2
    ignore = np.zeros((64, 80), bool)
    ignore[40:, :] = True
    t = codec.encode(people, visible, ignore_mask=ignore)
    assert t["heatmaps"].shape == (8, 10, 19) and t["pafs"].shape == (8, 10, 38) and t["mask"].shape == (8, 10, 1)
    assert t["heatmaps"][3, 2, 1] == pytest.approx(1.0) and t["heatmaps"][3, 2, 18] == pytest.approx(0.0)
    np.testing.assert_allclose(t["pafs"][3, 2:7, 0], 1.0)  # unit x along the limb
    assert t["pafs"][3, 9, 0] == 0 and t["pafs"][0, 4, 0] == 0 and (t["pafs"][..., 1] == 0).all()
    assert (t["mask"][5:, :, 0] == 0).all() and (t["mask"][:5, :, 0] == 1).all()
    batched = codec.encode(np.stack([people, people]), np.stack([visible, visible]))
    assert batched["pafs"].shape == (2, 8, 10, 38)
    # masked L2 over every stage: zero at the target, masked cells ignored
    y = {k: v[None] for k, v in t.items()}
    pred = {"paf_stage1": y["pafs"], "heatmap_stage1": y["heatmaps"] + 10.0 * (1 - y["mask"])}
    assert float(np.asarray(OpenPoseLoss()(y, pred))) == pytest.approx(0.0)
    pred["paf_stage1"] = y["pafs"] + 1.0
    assert float(np.asarray(OpenPoseLoss()(y, pred))) == pytest.approx(0.5 * 50 * 38)  # rows 0..4 unmasked (cell centres y < 40)


def test_mixed_precision_outputs_float32():
    model = OpenPose.from_checkpoint_config(variant="coco18", image_size=[32, 32], dtype="mixed_bfloat16", **TINY)
    out = model(np.zeros((1, 16, 24, 3), np.float32))
    import keras

    assert {keras.backend.standardize_dtype(v.dtype) for v in out.values()} == {"float32"}
    assert model.backbone.get_layer("conv1_1").compute_dtype == "bfloat16"


@pytest.mark.slow
def test_cli_evaluate_bottom_up_scores_its_own_people(converted_preset, tmp_path):
    """`keras-pose evaluate` on an OpenPose preset: whole images, COCO-17 annotations, COCO AP of grouped people."""
    from keras_pose.cli import main

    out_json = tmp_path / "metrics.json"
    assert main(["evaluate", "--preset", converted_preset, "--annotations", str(DATA_DIR / "coco" / "test_coco.json"),
                 "--json", str(out_json), "--accept-license", "--quiet"]) == 0
    metrics = json.loads(out_json.read_text())["metrics"]
    assert 0.0 <= metrics["coco_AP"] <= 1.0 and "coco_AR" in metrics  # random tiny weights: AP ~0
