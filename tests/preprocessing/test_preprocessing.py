"""The preprocessor: image converter, top-down cropper, whole-image resizer, configs, old settings."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from pose_testing.paths import DATA_DIR

from keras_pose.codecs import CPNHeatmap, UDPHeatmap
from keras_pose.data import build_top_down_dataset
from keras_pose.datasets import load_coco_keypoints
from keras_pose.errors import PreprocessingError
from keras_pose.geometry import box_xywh_to_center_scale, get_warp_matrix, warp_image
from keras_pose.preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PoseImageConverter,
    TopDownCropper,
    TopDownPreprocessor,
    WholeImagePreprocessor,
    WholeImageResizer,
    legacy_decoding,
    resolve_top_down_settings,
)
from keras_pose.utils.image_io import read_image


@pytest.fixture(scope="module")
def coco():
    return load_coco_keypoints(DATA_DIR / "coco" / "test_coco.json", keypoint_spec="coco")


def _serialize_round_trip(obj):
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(obj)))
    return keras.saving.deserialize_keras_object(config)


# ------------------------------------------------------------ image converter
def test_image_converter_numpy_and_tf_twins_agree():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 5, 4, 3)).astype(np.uint8)
    converter = PoseImageConverter(mean=[120.0, 110.0, 100.0], std=[60.0, 50.0, 40.0], channel_order="bgr")
    expected = (images[..., ::-1].astype(np.float64) - [120.0, 110.0, 100.0]) / [60.0, 50.0, 40.0]
    np.testing.assert_allclose(converter.normalize(images), expected, rtol=1e-6)
    np.testing.assert_array_equal(converter.normalize_tf(tf.constant(images)).numpy(), converter.normalize(images))
    # As a layer: eagerly (NumPy path) and inside tf.data (TF path).
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(converter(images)), converter.normalize(images))
    mapped = next(iter(tf.data.Dataset.from_tensors(images).map(converter)))
    np.testing.assert_array_equal(mapped.numpy(), converter.normalize(images))
    # The pixel that normalises to zero, in input (RGB) order.
    assert converter.fill_value() == (100.0, 110.0, 120.0)
    assert PoseImageConverter().mean == IMAGENET_MEAN and PoseImageConverter().std == IMAGENET_STD


def test_image_converter_config_and_errors():
    converter = PoseImageConverter(mean=[1, 2, 3], std=[4, 5, 6], channel_order="bgr", name="conv")
    clone = _serialize_round_trip(converter)
    assert type(clone) is PoseImageConverter and clone.get_config() == converter.get_config()
    assert clone.legacy_config() == {"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0], "channel_order": "bgr"}
    with pytest.raises(PreprocessingError, match="channel_order"):
        PoseImageConverter(channel_order="rgba")
    with pytest.raises(PreprocessingError, match="std"):
        PoseImageConverter(std=[1.0, 0.0, 1.0])
    with pytest.raises(PreprocessingError, match="mean"):
        PoseImageConverter(mean=[1.0, 2.0])


# -------------------------------------------------------------------- cropper
def test_cropper_crops_like_the_geometry(coco):
    inst = coco[4]
    image = read_image(inst.image_path)
    for warp in ("standard", "udp"):
        cropper = TopDownCropper((64, 48), padding=1.25, warp=warp)
        crops, centers, scales = cropper.crop(image, [inst.bbox])
        center, scale = box_xywh_to_center_scale(inst.bbox, (64, 48), padding=1.25)
        np.testing.assert_allclose(centers[0], center)
        np.testing.assert_allclose(scales[0], scale)
        expected = warp_image(image, get_warp_matrix(center, scale, (64, 48), udp=warp == "udp"), (64, 48))
        np.testing.assert_array_equal(crops[0], expected)
        assert crops.dtype == np.uint8
    # Per-axis padding wins over the factor.
    cropper = TopDownCropper((64, 48), padding=1.3, padding_xy=(1.2, 1.3))
    _, scale = box_xywh_to_center_scale(inst.bbox, (64, 48), padding=(1.2, 1.3))
    np.testing.assert_allclose(cropper.centers_and_scales([inst.bbox])[1][0], scale)


def test_cropper_config_and_errors():
    cropper = TopDownCropper((256, 192), padding=1.3, padding_xy=[1.2, 1.3], border="mean", warp="standard")
    clone = _serialize_round_trip(cropper)
    assert clone == cropper and clone.crop_padding == (1.2, 1.3) and not clone.udp
    assert TopDownCropper((8, 8), border=None).border == "zeros"
    for kwargs, match in (
        ({"padding": 0}, "padding"),
        ({"padding_xy": (1.2,)}, "padding_xy"),
        ({"border": "edge"}, "border"),
        ({"warp": "bilinear"}, "warp"),
        ({"image_size": (0, 4)}, "image_size"),
    ):
        with pytest.raises(ValueError, match=match):
            TopDownCropper(**{"image_size": (8, 8), **kwargs})


# -------------------------------------------------------------------- resizer
def test_letterbox_center_and_bottom_right():
    image = np.full((100, 200, 3), 7, np.uint8)
    centre = WholeImageResizer((64, 64), pad_value=114)
    out, matrix = centre.resize(image)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(matrix, [[0.32, 0, 0], [0, 0.32, 16]], rtol=1e-6)
    assert (out[16:48] == 7).all() and (out[:16] == 114).all() and (out[48:] == 114).all()
    corner = WholeImageResizer((64, 64), pad_value=114, pad_position="bottom_right")
    out, matrix = corner.resize(image)
    assert (out[:32] == 7).all() and (out[32:] == 114).all() and matrix[1, 2] == 0
    # Points map there and back (mmpose's `Resize`: p * scale + offset).
    points = np.array([[0.0, 0.0], [199.0, 99.0], [50.5, 20.25]])
    for resizer in (centre, corner):
        _, matrix = resizer.resize(image)
        to_input = points * np.diag(matrix[:, :2]) + matrix[:, 2]
        np.testing.assert_allclose(resizer.to_image(to_input, matrix), points, atol=1e-4)


def test_stretch_and_size_multiple():
    image = np.zeros((100, 200, 3), np.uint8)
    out, matrix = WholeImageResizer((64, 64), keep_aspect_ratio=False).resize(image)
    assert out.shape == (64, 64, 3)
    np.testing.assert_allclose(np.diag(matrix[:, :2]), [64 / 200, 64 / 100])
    dynamic = WholeImageResizer((368, 368), size_multiple=8, pad_position="bottom_right")
    out, matrix = dynamic.resize(image)
    assert out.shape == (184, 368, 3)  # 368 x 184 image, already multiples of 8
    out, _ = dynamic.resize(np.zeros((101, 200, 3), np.uint8))
    assert out.shape[0] % 8 == 0 and out.shape[1] == 368
    clone = _serialize_round_trip(dynamic)
    assert clone == dynamic and clone.size_multiple == 8
    with pytest.raises(PreprocessingError, match="pad_position"):
        WholeImageResizer((64, 64), pad_position="top")
    with pytest.raises(PreprocessingError, match="size_multiple"):
        WholeImageResizer((64, 64), size_multiple=0)


def test_whole_image_preprocessor_round_trip():
    preprocessor = WholeImagePreprocessor(
        resizer=WholeImageResizer((32, 32), pad_value=114, pad_position="bottom_right"),
        image_converter=PoseImageConverter(mean=[0, 0, 0], std=[255, 255, 255]),
    )
    clone = _serialize_round_trip(preprocessor)
    assert type(clone) is WholeImagePreprocessor and clone.resizer == preprocessor.resizer
    image = np.full((16, 32, 3), 255, np.uint8)
    x, matrix = clone.resize_image(image)
    assert x.shape == (32, 32, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[:16], 1.0) and np.testing.assert_allclose(x[16:], 114 / 255, rtol=1e-6)
    assert clone.image_size == (32, 32)


# ---------------------------------------------------------- top-down preprocessor
def _cpn_like(image_size=(64, 48)):
    return TopDownPreprocessor(
        cropper=TopDownCropper(image_size, padding=1.3, padding_xy=(1.2, 1.3), border="mean", warp="standard"),
        image_converter=PoseImageConverter(mean=[122.7717, 115.9465, 102.9801], std=[60.0, 55.0, 50.0],
                                           channel_order="bgr"),
    )


def test_top_down_preprocessor_config_round_trip():
    preprocessor = _cpn_like()
    clone = _serialize_round_trip(preprocessor)
    assert type(clone) is TopDownPreprocessor
    assert clone.cropper == preprocessor.cropper
    assert clone.image_converter.get_config() == preprocessor.image_converter.get_config()
    assert clone.get_config() == preprocessor.get_config()
    with pytest.raises(PreprocessingError, match="cropper"):
        TopDownPreprocessor(cropper={"image_size": (8, 8)})


def test_crop_and_normalise_numpy_equals_tf_data(coco):
    """The host crop (OpenCV) and the tf.data crop of one preprocessor agree: padding_xy, mean border, BGR."""
    preprocessor = _cpn_like()
    codec = CPNHeatmap((64, 48), (16, 12), kernel_sizes=(5, 3))
    people = list(coco)
    ds = build_top_down_dataset(people, codec, preprocessor=preprocessor, batch_size=len(people), training=False)
    x, _, meta = next(iter(ds))
    outside = 0
    for i, inst in enumerate(people):
        image = read_image(inst.image_path)
        ours, centers, scales = preprocessor.crop_people(image, [inst.bbox])
        np.testing.assert_allclose(meta["center"][i].numpy(), centers[0], atol=1e-3)
        np.testing.assert_allclose(meta["scale"][i].numpy(), scales[0], rtol=1e-5)
        # OpenCV rounds to uint8 and quantises its weights: about one grey level.
        diff = np.abs(x[i].numpy() - ours[0]) * 50.0
        assert diff.max() < 1.5 and diff.mean() < 0.3, (diff.max(), diff.mean())
        # Where the crop reaches outside the image, both fill with the mean (0 after normalisation).
        h, w = image.shape[:2]
        left, top = centers[0] - scales[0] / 2
        if left < -4 or top < -4 or left + scales[0][0] > w + 4 or top + scales[0][1] > h + 4:
            outside += 1
            assert (np.abs(ours[0]).max(axis=-1) < 0.02).any() and (np.abs(x[i].numpy()).max(axis=-1) < 0.02).any()
    assert outside >= 2
    # Old-style arguments and a preprocessor are one or the other.
    with pytest.raises(ValueError, match="preprocessor"):
        build_top_down_dataset(people, codec, preprocessor=preprocessor, use_udp=False)


# -------------------------------------------------------------- old settings
def test_old_settings_translate_once():
    decoding = {
        "codec": {"type": "UDPHeatmap", "input_size": [64, 48], "heatmap_size": [16, 12]},
        "flip_test": True,
        "shift_heatmap": False,
        "padding": 1.25,
        "reference": "documentation only",
    }
    preprocessing = {"mean": [1, 2, 3], "std": [4, 5, 6], "channel_order": "bgr"}
    preprocessor, codec, test_cfg = resolve_top_down_settings(
        (64, 48), (16, 12), preprocessing=preprocessing, decoding=decoding
    )
    assert isinstance(codec, UDPHeatmap) and test_cfg == {"flip_test": True, "shift_heatmap": False}
    assert preprocessor.cropper.warp == "udp"  # what a UDP codec implied before the warp was a setting
    assert preprocessor.image_converter.legacy_config() == {"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0],
                                                            "channel_order": "bgr"}
    view = legacy_decoding(preprocessor, codec, test_cfg)
    assert view["warp"] == "udp" and view["padding"] == 1.25 and view["codec"]["sigma"] == 2.0
    # The view translates back to the same settings.
    again = resolve_top_down_settings((64, 48), (16, 12), preprocessing=preprocessing, decoding=view)
    assert again[0].cropper == preprocessor.cropper and again[1] == codec and again[2] == test_cfg
    # Defaults fill what is not given, sized to the model.
    preprocessor, codec, test_cfg = resolve_top_down_settings(
        (64, 48), (16, 12), defaults={"codec": {"type": "MSRAHeatmap"}, "test_cfg": {"flip_test": True}}
    )
    assert codec.heatmap_size == (16, 12) and preprocessor.cropper.warp == "standard" and test_cfg["flip_test"]


def test_old_settings_errors():
    with pytest.raises(PreprocessingError, match=r"unknown key\(s\) \['paddding'\]"):
        resolve_top_down_settings((64, 48), (16, 12), decoding={"paddding": 1.2})
    with pytest.raises(PreprocessingError, match="both `codec`"):
        resolve_top_down_settings(
            (64, 48), (16, 12), codec={"type": "MSRAHeatmap", "input_size": [64, 48], "heatmap_size": [16, 12]},
            decoding={"codec": {"type": "MSRAHeatmap", "input_size": [64, 48], "heatmap_size": [16, 12]}},
        )
    with pytest.raises(PreprocessingError, match="both `preprocessor`"):
        resolve_top_down_settings((64, 48), (16, 12), preprocessor=_cpn_like(), decoding={"padding": 1.2})
    with pytest.raises(PreprocessingError, match="model input"):
        resolve_top_down_settings((32, 24), (8, 6), preprocessor=_cpn_like())
    with pytest.raises(PreprocessingError, match="input_size"):
        resolve_top_down_settings(
            (32, 24), (8, 6), codec={"type": "MSRAHeatmap", "input_size": [64, 48], "heatmap_size": [16, 12]}
        )
