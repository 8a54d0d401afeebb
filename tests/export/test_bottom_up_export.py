"""OpenPose exported at a fixed, realistic input (184x248) and checked on a real COCO image: heatmaps and PAFs
against Keras (ONNX / TFLite fp32, fp16, int8 calibrated on real whole images), and the people grouped outside
the graph from the exported maps against the people grouped from the Keras maps.

The model is narrow (VGG widths 16-32, 3 stages, 7x7 refinement) with He-normal kernels so its activations keep
their scale through the ~20 ReLU layers: its maps have a range of ~2, and the reference parser with its default
thresholds assembles 14 "people" (4-8 parts) on the image. Grouping is discontinuous in the maps (peaks above a
threshold, local maxima, greedy matching), so the same people from both sets of maps checks the exported maps
where grouping reads them.
"""

import json

import keras
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export runs on TensorFlow")
IMAGE = str(DATA_DIR / "coco" / "000000000785.jpg")
ANNOTATIONS = str(DATA_DIR / "coco" / "test_coco.json")
SIZE = (184, 248)
NARROW = {"vgg_channels": [16, 16, 32, 32], "cpm_channels": [32, 16], "stage_channels": 16, "head_channels": 32,
          "refine_head_channels": 16, "refine_kernel_size": 7, "num_stages": 3}


def narrow_openpose(seed=0):
    """A narrow OpenPose COCO-18 whose maps have a range of ~2 (He-normal kernels, small random biases)."""
    from keras_pose.models.openpose import OpenPose

    keras.utils.set_random_seed(seed)
    model = OpenPose.from_checkpoint_config(variant="coco18", image_size=[SIZE[0], SIZE[0]], **NARROW)
    rng = np.random.default_rng(seed)
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            fan_in = int(np.prod(layer.kernel.shape[:3]))
            layer.kernel.assign(rng.normal(0, np.sqrt(2.0 / fan_in), layer.kernel.shape).astype("float32"))
            layer.bias.assign(rng.normal(0, 0.02, layer.bias.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def model():
    return narrow_openpose()


@pytest.fixture(scope="module")
def keras_side(model):
    """(x, resized_hw, image, {"heatmaps", "pafs"} of Keras, people grouped from them)."""
    from keras_pose.export import group_exported_maps
    from keras_pose.export.whole_images import bottom_up_input
    from keras_pose.utils.image_io import read_image

    image = read_image(IMAGE)
    x, resized_hw = bottom_up_input(model, image, SIZE)
    maps = {k: keras.ops.convert_to_numpy(v) for k, v in model.serving_outputs(model(x[None])).items()}
    people = group_exported_maps(model, maps, resized_hw, image.shape[:2])
    return x, resized_hw, image, maps, people


def test_bottom_up_input_is_the_reference_preprocessing(model):
    """Height to the export height (aspect kept, cubic), BGR / 256 - 0.5, padded right / bottom with 128."""
    import cv2

    from keras_pose.export.whole_images import bottom_up_input
    from keras_pose.utils.image_io import read_image

    image = read_image(IMAGE)  # 425 x 640: too wide for 184 x 248 at height 184, so the width fits
    x, resized_hw = bottom_up_input(model, image, SIZE)
    assert x.shape == (*SIZE, 3) and x.dtype == np.float32
    factor = min(SIZE[0] / 425, SIZE[1] / 640)
    assert resized_hw == (round(425 * factor), 248)
    expected = cv2.resize(image[..., ::-1].copy(), (248, resized_hw[0]), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(x[: resized_hw[0]], expected.astype(np.float32) / 256 - 0.5)
    np.testing.assert_array_equal(x[resized_hw[0]:], np.float32(128 / 256 - 0.5))
    tall, tall_hw = bottom_up_input(model, np.zeros((400, 100, 3), np.uint8), SIZE)  # height fits: pad right
    assert tall_hw == (184, 46) and np.all(tall[:, 46:] == np.float32(0.0)) and np.all(tall[:, :46] == -0.5)


def test_representative_images_from_a_coco_file(model):
    from keras_pose.export import representative_images
    from keras_pose.export.whole_images import bottom_up_input
    from keras_pose.utils.image_io import read_image

    samples = representative_images(model, ANNOTATIONS, num_samples=6, image_size=SIZE)
    with open(ANNOTATIONS) as f:
        names = [i["file_name"] for i in json.load(f)["images"]]
    assert samples.shape == (6, *SIZE, 3) and len(names) == 4
    # 3 originals (a seeded subset of the 4 images) then their mirrors
    firsts = [bottom_up_input(model, read_image(str(DATA_DIR / "coco" / n)), SIZE)[0] for n in names]
    matches = [next(i for i, f in enumerate(firsts) if np.array_equal(f, s)) for s in samples[:3]]
    assert len(set(matches)) == 3
    mirrored = bottom_up_input(model, read_image(str(DATA_DIR / "coco" / names[matches[0]]))[:, ::-1], SIZE)[0]
    np.testing.assert_array_equal(samples[3], mirrored)
    paths = representative_images(model, [IMAGE], num_samples=4, image_size=SIZE, include_flipped=False)
    assert paths.shape == (1, *SIZE, 3)


def test_whole_image_calibration_errors(model, tmp_path):
    from keras_pose.export import ExportError, representative_images
    from pose_testing import families

    with pytest.raises(ExportError, match="representative_crops"):
        representative_images(families.tiny_model("cpm"), [IMAGE])
    with pytest.raises(FileNotFoundError, match="image_root"):
        representative_images(model, ANNOTATIONS, image_root=str(tmp_path))
    with pytest.raises(ExportError, match="num_samples"):
        representative_images(model, [IMAGE], num_samples=0)


def test_export_image_size_checks(model, tmp_path):
    from keras_pose.export import ExportError, export_model
    from keras_pose.export.api import check_image_size
    from pose_testing import families

    assert check_image_size(model, None) == (184, 184)
    assert check_image_size(model, [368, 496]) == (368, 496)
    with pytest.raises(ExportError, match="multiples of its stride 8"):
        check_image_size(model, (184, 250))
    with pytest.raises(ExportError, match="its own size"):
        check_image_size(families.tiny_model("cpm"), (64, 64))
    with pytest.raises(ExportError, match="group_exported_maps"):
        export_model(model, tmp_path / "op.onnx", include_decode=True)


CASES = {  # format, quantization, bound on max|exported - Keras| / output range (heatmaps, pafs)
    "onnx_fp32": ("onnx", None, 1e-4),
    "tflite_fp32": ("tflite", None, 1e-4),
    "tflite_fp16": ("tflite", "float16", 1e-2),
    "tflite_int8": ("tflite", "int8", 0.15),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_openpose_export_parity_on_a_real_image(model, keras_side, case, tmp_path):
    """One export per case (~30-45 s on two shared cores, the SavedModel and converter)."""
    fmt, quantization, bound = CASES[case]
    pytest.importorskip("tf2onnx" if fmt == "onnx" else "ai_edge_litert")
    from keras_pose.export import export_model, group_exported_maps, load_exported, representative_images

    x, resized_hw, image, reference, people = keras_side
    calibration = None
    if quantization == "int8":
        calibration = representative_images(model, ANNOTATIONS, num_samples=4, image_size=SIZE)
    path = export_model(model, tmp_path / f"openpose.{fmt}", quantization=quantization,
                        representative_dataset=calibration, image_size=SIZE)
    metadata = json.loads((tmp_path / f"openpose.{fmt}.json").read_text())
    assert metadata["image_size"] == list(SIZE) and metadata["heatmap_size"] == [23, 31]
    assert metadata["decoding"]["type"] == "openpose" and metadata["keypoints"]["spec"] == "openpose"
    exported = load_exported(path)(x[None])
    for name in ("heatmaps", "pafs"):
        assert exported[name].shape == reference[name].shape == (1, 23, 31, 18 if name == "heatmaps" else 38)
        span = float(reference[name].max() - reference[name].min())
        error = float(np.abs(exported[name] - reference[name]).max()) / span
        print(f"[openpose export] {case} {name}: max|diff| / range = {error:.2e} (range {span:.3f})")
        assert error <= bound, (case, name, error)
    grouped = group_exported_maps(model, exported, resized_hw, image.shape[:2])
    assert len(people.keypoints) >= 10  # the check means something: many people on the Keras maps
    same = len(grouped.keypoints) == len(people.keypoints)
    print(f"[openpose export] {case}: {len(grouped.keypoints)} people from the exported maps, "
          f"{len(people.keypoints)} from Keras'")
    if quantization is None:  # fp32: the same people, parts and positions
        assert same
        np.testing.assert_array_equal(grouped.scores > 0, people.scores > 0)
        np.testing.assert_allclose(grouped.keypoints, people.keypoints, atol=0.05)
        np.testing.assert_allclose(grouped.person_scores, people.person_scores, atol=1e-3)
