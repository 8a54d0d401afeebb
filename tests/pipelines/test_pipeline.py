"""The tf.data top-down pipeline against the NumPy/OpenCV reference, on real samples."""

import types
import warnings

import numpy as np
import pytest
import tensorflow as tf
from pose_testing.paths import DATA_DIR

from keras_pose.codecs import MSRAHeatmap, UDPHeatmap
from keras_pose.data import PipelineError, build_top_down_dataset, model_dataset
from keras_pose.data.affine_tf import (
    box_xywh_to_center_scale_tf,
    get_warp_matrix_tf,
    transform_points_tf,
    warp_image_tf,
)
from keras_pose.datasets import load_coco_keypoints, load_mpii
from keras_pose.geometry import (
    box_xywh_to_center_scale,
    crop_to_image,
    fix_aspect_ratio,
    get_warp_matrix,
    transform_points,
    warp_image,
)
from keras_pose.keypoints import get_keypoint_spec
from keras_pose.preprocessing import PoseImageConverter, TopDownCropper, TopDownPreprocessor
from keras_pose.utils.image_io import read_image

SIZE = (256, 192)
NO_AUG = {"flip": None, "half_body": None, "bbox_transform": None, "color_jitter": None}


def only(**stages):
    config = dict(NO_AUG)
    config.update(stages)
    return config


@pytest.fixture(scope="module")
def coco():
    return load_coco_keypoints(DATA_DIR / "coco" / "test_coco.json", keypoint_spec="coco")


@pytest.fixture(scope="module")
def mpii():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # head boxes approximated
        return load_mpii(DATA_DIR / "mpii" / "test_mpii.json", keypoint_spec="mpii")


@pytest.fixture(scope="module")
def images(coco, mpii):
    return {inst.image_path: read_image(inst.image_path) for inst in list(coco) + list(mpii)}


def elements(ds):
    return [tf.nest.map_structure(lambda t: t.numpy(), e) for e in ds]


def assert_same_targets(heatmaps, weights, heatmaps_ref, weights_ref):
    """Equal heatmaps, allowing for a keypoint on a rounding boundary.

    Annotations at half pixels (MPII) can sit exactly where the integer
    centre of the Gaussian window rounds up or down, and a float ulp decides;
    the window then moves by one pixel, changing only its edge values
    (< 0.012 for the 3-sigma window).
    """
    np.testing.assert_array_equal(weights, weights_ref)
    np.testing.assert_allclose(heatmaps, heatmaps_ref, atol=0.012)
    assert np.mean(np.abs(heatmaps - heatmaps_ref) > 2e-5) < 1e-3


def codec_for(udp, size=SIZE):
    hm = (size[0] // 4, size[1] // 4)
    return UDPHeatmap(size, hm) if udp else MSRAHeatmap(size, hm)


# --------------------------------------------------------------------- geometry


@pytest.mark.parametrize("udp", [False, True])
def test_graph_geometry_equals_numpy(udp, images, coco):
    inst = coco[4]
    c, s = box_xywh_to_center_scale(inst.bbox, SIZE)
    ct, st = box_xywh_to_center_scale_tf(inst.bbox, SIZE)
    np.testing.assert_allclose(ct.numpy(), c, atol=1e-4)
    np.testing.assert_allclose(st.numpy(), s, atol=1e-3)
    image = images[inst.image_path]
    for rot, shift, inverse in [(0.0, (0, 0), False), (37.0, (0.1, -0.05), False), (-70.0, (0, 0), True)]:
        m = get_warp_matrix(c, s, SIZE, rot=rot, shift=shift, udp=udp, inverse=inverse)
        mt = get_warp_matrix_tf(c, s, SIZE, rot=rot, shift=shift, udp=udp, inverse=inverse).numpy()
        np.testing.assert_allclose(mt, m, rtol=1e-5, atol=1e-3)
        if inverse:
            continue
        np.testing.assert_allclose(
            transform_points_tf(inst.keypoints, mt).numpy(), transform_points(inst.keypoints, m), atol=1e-3
        )
        crop = warp_image_tf(image, mt, SIZE).numpy()
        ref = warp_image(image, m, SIZE).astype(np.float32)
        diff = np.abs(crop - ref)
        assert diff.max() <= 0.51 + 0.05, diff.max()  # cv2 rounds uint8 results
        assert diff.mean() < 0.3


# ------------------------------------------------------------ crops and targets


@pytest.mark.parametrize("udp", [True, False])
def test_eval_crops_and_targets_match_opencv_coco_and_mpii(udp, coco, mpii, images):
    codec = codec_for(udp)
    for dataset in (coco, mpii):
        (x, y, meta), = elements(build_top_down_dataset(dataset, codec, batch_size=64, training=False))
        assert x.shape == (len(dataset), *SIZE, 3) and x.dtype == np.float32
        assert y["heatmaps"].shape == (len(dataset), 64, 48, dataset.num_keypoints)
        assert y["keypoint_weights"].shape == (len(dataset), dataset.num_keypoints)
        for i, inst in enumerate(dataset):
            c, s = box_xywh_to_center_scale(inst.bbox, SIZE)
            np.testing.assert_allclose(meta["center"][i], c, atol=1e-3)
            np.testing.assert_allclose(meta["scale"][i], s, rtol=1e-5)
            assert meta["image_id"][i] == inst.image_id and meta["instance_id"][i] == inst.instance_id
            assert tuple(meta["image_size"][i]) == images[inst.image_path].shape[:2]
            m = get_warp_matrix(c, s, SIZE, udp=udp)
            ref = warp_image(images[inst.image_path], m, SIZE).astype(np.float32)
            diff = np.abs(x[i] - ref)
            assert diff.max() < 0.6 and diff.mean() < 0.3, (inst, diff.max(), diff.mean())
            kps = transform_points(inst.keypoints, m)
            np.testing.assert_allclose(meta["keypoints"][i], kps, atol=1e-3)
            # The codec's NumPy encoding of the OpenCV-transformed keypoints.
            ref = codec.encode(kps, np.minimum(inst.keypoints_visible, 1))
            hm_ref, w_ref = ref["heatmaps"], ref["keypoint_weights"]
            assert_same_targets(y["heatmaps"][i], y["keypoint_weights"][i], hm_ref, w_ref)
            assert w_ref.sum() > 0


def test_preprocessing_and_model_dataset(coco):
    pre = {"mean": [120.0, 110.0, 100.0], "std": [60.0, 50.0, 40.0], "channel_order": "bgr"}
    codec = codec_for(True)
    (raw, _, _), = elements(build_top_down_dataset(coco[:3], codec, batch_size=8, training=False))
    (x, _, _), = elements(build_top_down_dataset(coco[:3], codec, preprocessing=pre, batch_size=8, training=False))
    np.testing.assert_allclose(x, (raw[..., ::-1] - np.array(pre["mean"])) / np.array(pre["std"]), atol=1e-4)

    fake = types.SimpleNamespace(
        codec=codec,
        image_size=SIZE,
        preprocessor=TopDownPreprocessor(
            cropper=TopDownCropper(SIZE, padding=1.25, warp="udp"), image_converter=PoseImageConverter(**pre)
        ),
        keypoint_spec=get_keypoint_spec("coco"),
        heatmap_size=(64, 48),
    )
    (xm, _, _), = elements(model_dataset(fake, coco[:3], batch_size=8, training=False))
    np.testing.assert_array_equal(xm, x)
    with pytest.raises(PipelineError, match="preprocessor"):
        build_top_down_dataset(coco[:3], codec, preprocessor=fake.preprocessor, padding=1.3)
    fake.heatmap_size = (32, 24)
    with pytest.raises(PipelineError, match="heatmap"):
        model_dataset(fake, coco[:3])


def test_image_cache_modes_are_identical(coco):
    codec = codec_for(True, (128, 96))
    outs = [
        elements(build_top_down_dataset(coco, codec, batch_size=32, seed=3, cache_images=mode))[0]
        for mode in (False, "encoded", True)
    ]
    for other in outs[1:]:
        tf.nest.map_structure(np.testing.assert_array_equal, outs[0], other)


# ----------------------------------------------------------------- augmentation


def test_flip_swaps_left_and_right(coco, images):
    spec = get_keypoint_spec("coco")
    codec = codec_for(True)
    ds = build_top_down_dataset(
        coco, codec, batch_size=None, augment=only(flip={"prob": 1.0}), shuffle=False, return_meta=True, seed=0
    )
    for inst, (x, y, meta) in zip(coco, elements(ds)):
        assert meta["flipped"]
        image = images[inst.image_path]
        width = image.shape[1]
        c, s = box_xywh_to_center_scale(inst.bbox, SIZE)
        c_flip = np.array([width - 1 - c[0], c[1]])
        np.testing.assert_allclose(meta["center"], c_flip, atol=1e-3)
        m = get_warp_matrix(c_flip, s, SIZE, udp=True)
        # The crop is the OpenCV crop of the mirrored image ...
        ref = warp_image(np.ascontiguousarray(image[:, ::-1]), m, SIZE).astype(np.float32)
        diff = np.abs(x - ref)
        assert diff.max() < 1.0 and diff.mean() < 0.3
        # ... and its keypoints are the mirrored ones, left and right swapped:
        mirrored = np.stack([width - 1 - inst.keypoints[:, 0], inst.keypoints[:, 1]], axis=-1)
        expected = transform_points(mirrored[spec.flip_indices], m)
        np.testing.assert_allclose(meta["keypoints"], expected, atol=1e-3)
        np.testing.assert_array_equal(meta["keypoints_visible"], inst.keypoints_visible[spec.flip_indices])
        ls, rs = spec.index("left_shoulder"), spec.index("right_shoulder")
        if inst.keypoints_visible[rs] > 0:
            np.testing.assert_allclose(meta["keypoints"][ls], transform_points(mirrored[rs], m), atol=1e-3)
        ref = codec.encode(expected, np.minimum(meta["keypoints_visible"], 1))
        assert_same_targets(y["heatmaps"], y["keypoint_weights"], ref["heatmaps"], ref["keypoint_weights"])


@pytest.mark.parametrize("upper_prob, expected_half", [(1.0, 1), (0.0, 2)])
def test_half_body_selects_upper_or_lower(upper_prob, expected_half, coco):
    spec = get_keypoint_spec("coco")
    aug = only(half_body={"prob": 1.0, "upper_prioritized_prob": upper_prob})
    ds = build_top_down_dataset(coco, codec_for(False), batch_size=None, augment=aug, shuffle=False, return_meta=True)
    seen = 0
    for inst, (_, _, meta) in zip(coco, elements(ds)):
        vis = inst.keypoints_visible > 0
        upper = [i for i in spec.upper_body_indices if vis[i]]
        lower = [i for i in spec.lower_body_indices if vis[i]]
        if vis.sum() < 9 or (len(upper) < 2 and len(lower) < 3):
            assert meta["half_body"] == 0
            np.testing.assert_allclose(meta["center"], inst.bbox_center, atol=1e-3)
            continue
        if expected_half == 1:
            chosen, half = (upper, 1) if len(upper) >= 2 else (lower, 2)
        else:
            chosen, half = (lower, 2) if len(lower) >= 3 else (upper, 1)
        assert meta["half_body"] == half
        seen += half == expected_half
        pts = inst.keypoints[chosen]
        np.testing.assert_allclose(meta["center"], pts.mean(axis=0), atol=1e-3)
        extent = (pts.max(axis=0) - pts.min(axis=0)) * 1.5
        np.testing.assert_allclose(meta["scale"], fix_aspect_ratio(extent, SIZE[1] / SIZE[0]), rtol=1e-4)
        # The chosen keypoints lie inside the crop, the others mostly not.
        inside = np.all((meta["keypoints"] >= 0) & (meta["keypoints"] <= [SIZE[1], SIZE[0]]), axis=1)
        assert inside[chosen].all()
    assert seen >= 3


def test_random_bbox_transform_ranges_and_rotated_crops(coco, images):
    aug = only(bbox_transform={"shift_prob": 1.0, "rotate_prob": 1.0})
    codec = codec_for(True)
    ds = build_top_down_dataset(coco, codec, batch_size=None, augment=aug, shuffle=False, return_meta=True, seed=5)
    rots = []
    for inst, (x, y, meta) in zip(coco, elements(ds)):
        c0, s0 = box_xywh_to_center_scale(inst.bbox, SIZE)
        ratio = meta["scale"] / s0
        assert abs(ratio[0] - ratio[1]) < 1e-4 and 0.5 - 1e-4 <= ratio[0] <= 1.5 + 1e-4
        raw = np.array(inst.bbox[2:]) * 1.25  # mmpose shifts by the un-fixed padded box size
        assert np.all(np.abs(meta["center"] - inst.bbox_center) <= 0.16 * raw + 1e-3)
        assert -80 <= meta["rotation"] <= 80
        rots.append(float(meta["rotation"]))
        m = get_warp_matrix(meta["center"], meta["scale"], SIZE, rot=meta["rotation"], udp=True)
        ref = warp_image(images[inst.image_path], m, SIZE).astype(np.float32)
        diff = np.abs(x - ref)
        assert diff.mean() < 0.3 and np.percentile(diff, 99.9) < 1.0
        np.testing.assert_allclose(meta["keypoints"], transform_points(inst.keypoints, m), atol=2e-3)
    assert np.std(rots) > 10  # really random


def test_color_jitter_changes_pixels_not_targets(coco):
    codec = codec_for(True, (128, 96))
    jit = only(color_jitter={"prob": 1.0, "brightness": 0.2, "contrast": 0.2, "saturation": 0.3, "hue": 0.05})
    jittered = elements(build_top_down_dataset(coco, codec, batch_size=32, augment=jit, seed=1, shuffle=False))[0]
    base = elements(build_top_down_dataset(coco, codec, batch_size=32, augment=NO_AUG, seed=1, shuffle=False))[0]
    assert np.abs(jittered[0] - base[0]).mean() > 2.0
    assert jittered[0].min() >= 0 and jittered[0].max() <= 255
    tf.nest.map_structure(np.testing.assert_array_equal, jittered[1], base[1])
    zero = only(color_jitter={"prob": 1.0, "brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0})
    same = elements(build_top_down_dataset(coco, codec, batch_size=32, augment=zero, seed=1, shuffle=False))[0]
    np.testing.assert_allclose(same[0], base[0], atol=1e-3)


def test_determinism_with_seed(coco):
    codec = codec_for(True, (128, 96))

    def batches(seed):
        return elements(build_top_down_dataset(coco, codec, batch_size=5, seed=seed))

    a, b, c = batches(7), batches(7), batches(8)
    tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    assert any(np.abs(x[0] - z[0]).mean() > 1.0 for x, z in zip(a, c))
    # Two epochs of one dataset differ (new order and augmentation) ...
    ds = build_top_down_dataset(coco, codec, batch_size=5, seed=7)
    first, second = elements(ds), elements(ds)
    tf.nest.map_structure(np.testing.assert_array_equal, first, a)
    assert any(np.abs(x[0] - z[0]).mean() > 1.0 for x, z in zip(first, second))
    # ... and parallelism does not change the result.
    serial = elements(build_top_down_dataset(coco, codec, batch_size=5, seed=7, num_parallel_calls=1))
    tf.nest.map_structure(np.testing.assert_array_equal, serial, a)


def test_repeated_seeded_stream_ignores_the_global_seed_and_skips_exactly(coco):
    # Distributed processes and resumed runs rebuild the stream: it must not depend on
    # TensorFlow's global seed, and skip_elements must land where the unskipped stream is.
    codec = codec_for(True, (128, 96))

    def batches(global_seed, skip=0, count=4):
        tf.random.set_seed(global_seed)
        ds = build_top_down_dataset(coco, codec, batch_size=3, seed=7, repeat=True, drop_remainder=True,
                                    skip_elements=skip)
        return [(x.numpy(), y["heatmaps"].numpy()) for x, y in ds.take(count)]

    a, b = batches(1), batches(2)
    tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    assert np.abs(a[0][0] - a[3][0]).mean() > 1.0  # later batches differ (order and augmentation)
    tf.nest.map_structure(np.testing.assert_array_equal, batches(3, skip=6, count=2), a[2:])
    # Another seed, another stream.
    tf.random.set_seed(1)
    other = build_top_down_dataset(coco, codec, batch_size=3, seed=8, repeat=True, drop_remainder=True)
    assert np.abs(next(iter(other))[0].numpy() - a[0][0]).mean() > 1.0


# ---------------------------------------------------------------- round trip


def test_round_trip_reproduces_annotations(coco, mpii):
    from keras_pose.metrics import CocoKeypointEvaluator, make_topdown_results

    codec = codec_for(True)
    for dataset in (coco, mpii):
        (_, y, meta), = elements(build_top_down_dataset(dataset, codec, batch_size=64, training=False))
        kps, scores = codec.decode(y["heatmaps"])
        image_kps = crop_to_image(kps, meta["center"], meta["scale"], SIZE)
        gt = np.stack([inst.keypoints for inst in dataset])
        used = y["keypoint_weights"] > 0
        assert used.sum() >= 0.95 * (np.stack([i.keypoints_visible for i in dataset]) > 0).sum()
        err = np.linalg.norm(image_kps - gt, axis=-1)[used]
        assert err.mean() < 1.0, err.mean()
        if dataset is mpii:
            from keras_pose.metrics import pckh

            visible = np.stack([inst.keypoints_visible for inst in dataset]) > 0
            head_sizes = np.array([inst.head_size for inst in dataset], np.float32)
            table = pckh(image_kps, gt, visible, head_sizes, threshold=0.5)
            assert table["PCKh"] == 1.0, table
        if dataset is coco:
            results = make_topdown_results(
                meta["image_id"], image_kps, scores, bbox_scores=meta["bbox_score"], keypoint_spec="coco"
            )
            stats = CocoKeypointEvaluator(dataset, keypoint_spec="coco").evaluate(results)
            assert stats["AP"] >= 0.99, stats


# -------------------------------------------------------------------- errors


def test_argument_errors(coco, mpii):
    codec = codec_for(True)
    with pytest.raises(PipelineError, match="input_size"):
        build_top_down_dataset(coco, codec, image_size=(128, 96))
    no_spec = list(mpii)  # a plain list of instances carries no keypoint spec
    with pytest.raises(PipelineError, match="keypoint_spec"):
        build_top_down_dataset(no_spec, codec)
    build_top_down_dataset(no_spec, codec, augment={"flip": None, "half_body": None})  # fine without a spec
    with pytest.raises(FileNotFoundError, match="image_root"):
        build_top_down_dataset([coco[0].replace(image_path="/nonexistent/x.jpg")], codec, training=False)
    with pytest.raises(ValueError, match="stage"):
        build_top_down_dataset(coco, codec, augment={"mosaic": True})
    with pytest.raises(ValueError, match="rotate"):
        build_top_down_dataset(coco, codec, augment={"bbox_transform": {"rotation": 3}})
