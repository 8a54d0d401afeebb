"""Top-down geometry: box -> center/scale, standard and UDP warp matrices."""

import json

import cv2
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR
from pose_testing.paths import GOLDEN_DIR

from keras_pose.geometry import GeometryError
from keras_pose.geometry import box_xywh_to_center_scale
from keras_pose.geometry import crop_to_image
from keras_pose.geometry import fix_aspect_ratio
from keras_pose.geometry import get_warp_matrix
from keras_pose.geometry import invert_affine
from keras_pose.geometry import transform_points
from keras_pose.geometry import warp_image

INPUT_SIZE = (256, 192)  # (h, w)
MMPOSE_CASE = GOLDEN_DIR / "vitpose" / "mmpose_small_coco"


def _mmpose_input_meta():
    path = MMPOSE_CASE / "meta.json"
    if not path.is_file():
        pytest.fail(f"golden case not found: {path}")
    return json.loads(path.read_text())["input"]


def test_box_to_center_scale_tall_box_matches_mmpose_pipeline():
    meta = _mmpose_input_meta()
    centers, scales = box_xywh_to_center_scale(meta["annotation_bbox_xywh"], INPUT_SIZE)
    info = meta["pipeline_metainfo"]
    np.testing.assert_allclose(centers, info["input_center"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(scales, info["input_scale"], rtol=1e-6, atol=1e-4)
    # By hand: w = 218.7 * 1.25 = 273.375 < 0.75 * h -> w = 0.75 * 346.68 * 1.25.
    np.testing.assert_allclose(scales, [0.75 * 433.35, 433.35], rtol=1e-6)
    assert centers.dtype == np.float32 and scales.dtype == np.float32


def test_box_to_center_scale_wide_box_and_batch():
    boxes = np.array([[10.0, 20.0, 200.0, 100.0], [0.0, 0.0, 30.0, 40.0]])
    centers, scales = box_xywh_to_center_scale(boxes, INPUT_SIZE, padding=1.25)
    assert centers.shape == (2, 2) and scales.shape == (2, 2)
    np.testing.assert_allclose(centers, [[110.0, 70.0], [15.0, 20.0]])
    # Wide box: h = w / 0.75; exact 3:4 box: unchanged.
    np.testing.assert_allclose(scales[0], [250.0, 200.0 / 0.75 * 1.25], rtol=1e-6)
    np.testing.assert_allclose(scales[1], [37.5, 50.0], rtol=1e-6)
    # HF VitPoseImageProcessor: scale / 200 in its units.
    np.testing.assert_allclose(fix_aspect_ratio([[200.0, 100.0]], 0.75), [[200.0, 266.66666]], rtol=1e-6)


def test_udp_matrix_matches_mmpose_golden():
    meta = _mmpose_input_meta()
    info = meta["pipeline_metainfo"]
    matrix = get_warp_matrix(info["input_center"], info["input_scale"], INPUT_SIZE, udp=True)
    expected = np.array(meta["udp_affine"]["matrix_2x3"])
    assert matrix.shape == (2, 3) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, expected, rtol=1e-6, atol=1e-5)


def test_standard_and_udp_matrices_by_hand():
    center, scale = (100.0, 50.0), (60.0, 80.0)  # 3:4 box, edges x 70..130, y 10..90
    std = get_warp_matrix(center, scale, INPUT_SIZE)
    np.testing.assert_allclose(std, [[3.2, 0.0, -224.0], [0.0, 3.2, -32.0]], atol=1e-5)
    corners = np.array([[70.0, 10.0], [130.0, 90.0], [100.0, 50.0]])
    np.testing.assert_allclose(transform_points(corners, std), [[0, 0], [192, 256], [96, 128]], atol=1e-4)

    udp = get_warp_matrix(center, scale, INPUT_SIZE, udp=True)
    sx, sy = 191.0 / 60.0, 255.0 / 80.0
    np.testing.assert_allclose(udp, [[sx, 0.0, -70.0 * sx], [0.0, sy, -10.0 * sy]], rtol=1e-6)
    np.testing.assert_allclose(
        transform_points(corners, udp), [[0, 0], [191, 255], [95.5, 127.5]], atol=1e-4
    )


def _mmpose_three_point_matrix(center, scale, rot, output_size_wh, shift=(0.0, 0.0)):
    """mmpose 1.x's definition of the standard matrix, rebuilt from its points.

    The box centre goes to the output centre and the point half a box width
    "above" the centre, rotated by ``rot`` in the image, goes to the point half
    an output width above the output centre; a third point completes the
    right angle on both sides.
    """
    w, h = output_size_wh
    theta = np.deg2rad(rot)
    rot_mat = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    c = np.asarray(center) + np.asarray(scale) * np.asarray(shift)
    src_b = c + rot_mat @ np.array([0.0, -0.5 * scale[0]])
    dst_a = np.array([0.5 * w, 0.5 * h])
    dst_b = dst_a + np.array([0.0, -0.5 * w])

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]])

    src = np.stack([c, src_b, third(c, src_b)]).astype(np.float32)
    dst = np.stack([dst_a, dst_b, third(dst_a, dst_b)]).astype(np.float32)
    return cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("rot", [0.0, 30.0, -45.0, 90.0])
@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.1, -0.05)])
def test_standard_matrix_matches_three_point_definition(rot, shift):
    center, scale = np.array([321.5, 210.25]), np.array([150.0, 200.0])
    ours = get_warp_matrix(center, scale, INPUT_SIZE, rot=rot, shift=shift)
    ref = _mmpose_three_point_matrix(center, scale, rot, (192, 256), shift)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=2e-3)


def test_rotation_by_hand():
    center, scale = (100.0, 50.0), (60.0, 80.0)
    # Standard: (W / sw) * R(-rot); rot = 90 -> [[0, 1], [-1, 0]] * 3.2.
    std = get_warp_matrix(center, scale, INPUT_SIZE, rot=90.0)
    np.testing.assert_allclose(std[:, :2], [[0.0, 3.2], [-3.2, 0.0]], atol=1e-6)
    # UDP: diag(sx, sy) * R(rot) (mmpose get_udp_warp_matrix rotates the other way).
    udp = get_warp_matrix(center, scale, INPUT_SIZE, rot=90.0, udp=True)
    np.testing.assert_allclose(udp[:, :2], [[0.0, -191.0 / 60.0], [255.0 / 80.0, 0.0]], atol=1e-6)
    # Both keep the box centre at the crop centre.
    np.testing.assert_allclose(transform_points(center, std), [96.0, 128.0], atol=1e-4)
    np.testing.assert_allclose(transform_points(center, udp), [95.5, 127.5], atol=1e-4)
    # Image point 30 px right of the centre: standard -> 96 px up, UDP -> down.
    p = np.array([130.0, 50.0])
    np.testing.assert_allclose(transform_points(p, std), [96.0, 32.0], atol=1e-4)
    np.testing.assert_allclose(transform_points(p, udp), [95.5, 127.5 + 30 * 255 / 80], atol=1e-4)


@pytest.mark.parametrize("udp", [False, True])
@pytest.mark.parametrize("rot", [0.0, 17.0])
def test_inverse_consistency(udp, rot):
    center, scale = (250.0, 180.0), (120.0, 160.0)
    fwd = get_warp_matrix(center, scale, INPUT_SIZE, rot=rot, udp=udp)
    inv = get_warp_matrix(center, scale, INPUT_SIZE, rot=rot, udp=udp, inverse=True)
    np.testing.assert_allclose(inv, invert_affine(fwd), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(inv, cv2.invertAffineTransform(fwd.astype(np.float64)), rtol=1e-5, atol=1e-4)
    pts = np.random.default_rng(0).uniform(0, 400, size=(5, 7, 2))
    back = transform_points(transform_points(pts, fwd), inv)
    assert back.shape == pts.shape
    np.testing.assert_allclose(back, pts, atol=2e-3)


def test_crop_to_image_inverts_standard_warp_and_matches_udp_decode_frame():
    centers = np.array([[100.0, 50.0], [300.0, 200.0]], np.float32)
    scales = np.array([[60.0, 80.0], [150.0, 200.0]], np.float32)
    pts = np.random.default_rng(1).uniform(0, 400, size=(2, 17, 2))
    crop = np.stack(
        [transform_points(pts[i], get_warp_matrix(centers[i], scales[i], INPUT_SIZE)) for i in range(2)]
    )
    np.testing.assert_allclose(crop_to_image(crop, centers, scales, INPUT_SIZE), pts, atol=2e-3)
    # UDP crop pixel p corresponds to box-frame u = p * W / (W - 1).
    udp_crop = transform_points(pts[0], get_warp_matrix(centers[0], scales[0], INPUT_SIZE, udp=True))
    u = udp_crop * np.array([192.0 / 191.0, 256.0 / 255.0])
    np.testing.assert_allclose(crop_to_image(u, centers[0], scales[0], INPUT_SIZE), pts[0], atol=2e-3)
    # Hand value: u = 0 is the box's left/top edge, u = W its right/bottom edge.
    edges = crop_to_image(np.array([[0.0, 0.0], [192.0, 256.0]]), centers[0], scales[0], INPUT_SIZE)
    np.testing.assert_allclose(edges, [[70.0, 10.0], [130.0, 90.0]], atol=1e-5)


def test_warp_image_identity_and_known_pixel():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, size=(256, 192, 3), dtype=np.uint8)
    # Standard warp of the box (0, 0, 192, 256) is the identity.
    c, s = box_xywh_to_center_scale([0, 0, 192, 256], INPUT_SIZE, padding=1.0)
    np.testing.assert_array_equal(warp_image(image, get_warp_matrix(c, s, INPUT_SIZE), INPUT_SIZE), image)
    # UDP warp is the identity when the box spans pixel centres 0..W-1.
    m = get_warp_matrix((95.5, 127.5), (191.0, 255.0), INPUT_SIZE, udp=True)
    np.testing.assert_array_equal(warp_image(image, m, INPUT_SIZE), image)
    # A single bright pixel lands where transform_points says.
    img = np.zeros((300, 400), np.float32)
    img[123, 217] = 1.0
    m = get_warp_matrix((200.0, 150.0), (96.0, 128.0), INPUT_SIZE)  # 2x zoom
    out = warp_image(img, m, INPUT_SIZE, border_value=0)
    assert out.shape == (256, 192)
    y, x = np.unravel_index(np.argmax(out), out.shape)
    np.testing.assert_allclose((x, y), transform_points([217.0, 123.0], m), atol=1e-4)


def test_warp_image_reproduces_mmpose_udp_crop():
    meta = _mmpose_input_meta()
    image_path = DATA_DIR / "coco" / "000000000785.jpg"
    if not image_path.is_file():
        pytest.fail(f"sample image not found: {image_path}")
    expected = np.load(MMPOSE_CASE / "input.npy")[0].transpose(1, 2, 0)
    expected = expected * np.array(meta["std"]) + np.array(meta["mean"])  # RGB, 0..255
    center, scale = box_xywh_to_center_scale(meta["annotation_bbox_xywh"], INPUT_SIZE)
    matrix = get_warp_matrix(center, scale, INPUT_SIZE, udp=True)
    crop = warp_image(cv2.imread(str(image_path)), matrix, INPUT_SIZE)[..., ::-1]
    diff = np.abs(crop.astype(np.float64) - expected)
    # JPEG decoders and OpenCV versions differ by a few levels at some pixels.
    assert diff.mean() < 0.25 and diff.max() <= 5.0


def test_bad_arguments_raise_named_errors():
    with pytest.raises(GeometryError, match="boxes"):
        box_xywh_to_center_scale([1.0, 2.0, 3.0], INPUT_SIZE)
    with pytest.raises(ValueError, match="output_size"):
        get_warp_matrix((0, 0), (10, 10), (256,))
    with pytest.raises(GeometryError, match="scale"):
        get_warp_matrix((0, 0), (0, 10), INPUT_SIZE)
    with pytest.raises(GeometryError, match="matrix"):
        transform_points([[1.0, 2.0]], np.eye(3))
    with pytest.raises(GeometryError, match="centers"):
        crop_to_image(np.zeros((2, 17, 2)), np.zeros((3, 2)), np.ones((3, 2)), INPUT_SIZE)
