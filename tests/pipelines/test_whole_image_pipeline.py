"""The whole-image tf.data pipeline (bottom-up / one-stage training) on the real COCO samples."""

import json

import numpy as np
import pytest
from pose_testing.paths import DATA_DIR

from keras_pose.data import INSTANCE_KEYS, MixingSwitch, build_whole_image_dataset
from keras_pose.datasets import load_coco_keypoints
from keras_pose.errors import PipelineError
from keras_pose.keypoints import get_keypoint_spec

SIZE = (96, 128)
NO_AUG = {"affine": None, "flip": None, "hsv": None}
COCO_JSON = DATA_DIR / "coco" / "test_coco.json"
# people with keypoints per image (file order) and the images with a no-keypoint person
KEPT = {785: 1, 40083: 2, 196141: 4, 197388: 5}


def coco(path=COCO_JSON):
    return load_coco_keypoints(str(path), image_root=str(DATA_DIR / "coco"), keypoint_spec="coco", mode="eval")


def first_batch(data, **kwargs):
    kwargs.setdefault("batch_size", 4)
    element = next(iter(build_whole_image_dataset(data, SIZE, **kwargs)))
    return [{k: np.asarray(v) for k, v in e.items()} if isinstance(e, dict) else np.asarray(e) for e in element]


def test_eval_letterbox_shapes_instances_and_ignore_masks():
    data = coco()
    image, inst, meta = first_batch(data, training=False, return_meta=True, max_instances=6)
    assert image.shape == (4, *SIZE, 3) and set(inst) == set(INSTANCE_KEYS)
    assert inst["keypoints"].shape == (4, 6, 17, 2) and inst["boxes"].shape == (4, 6, 4)
    assert inst["keypoint_visible"].shape == (4, 6, 17) and inst["ignore_mask"].shape == (4, *SIZE)
    ids = list(meta["image_id"])
    assert ids == list(KEPT) and inst["instance_valid"].sum(axis=1).tolist() == list(KEPT.values())
    # keypoints / boxes are the annotations through the letterbox matrix, visibility clamped to 1
    for b, image_id in enumerate(ids):
        people = [i for i in data.instances if i.image_id == image_id]
        m = meta["matrix"][b].astype(np.float64)
        for j, person in enumerate(people):
            expected = person.keypoints @ m[:, :2].T + m[:, 2]
            labelled = person.keypoints_visible > 0
            np.testing.assert_allclose(inst["keypoints"][b, j][labelled], expected[labelled], atol=1e-3)
            np.testing.assert_array_equal(inst["keypoint_visible"][b, j], labelled.astype(np.float32))
            x, y, w, h = person.bbox
            np.testing.assert_allclose(inst["boxes"][b, j], [*(m[:, :2] @ [x, y] + m[:, 2]),
                                                             *(m[:, :2] @ [x + w, y + h] + m[:, 2])], atol=1e-3)
        assert (inst["keypoints"][b, len(people):] == 0).all() and (inst["boxes"][b, len(people):] == 0).all()
    # the no-keypoint people of 40083 and 196141 are ignore regions; the other images have none
    import cv2

    from keras_pose.models.openpose.openpose_targets import ignore_mask_from_coco

    ann = json.loads(COCO_JSON.read_text())
    for b, image_id in enumerate(ids):
        info = data.images[image_id]
        full = ignore_mask_from_coco([a for a in ann["annotations"] if a["image_id"] == image_id], info.height,
                                     info.width).astype(np.uint8)
        expected = cv2.warpAffine(full, meta["matrix"][b].astype(np.float64), SIZE[::-1], flags=cv2.INTER_NEAREST)
        assert (expected.sum() > 5) == (image_id in (40083, 196141))
        assert np.mean(inst["ignore_mask"][b] == expected) > 0.995
    # centred letterbox of a landscape image: black (pad 0, raw RGB) rows above and below
    assert meta["matrix"][0, 1, 2] > 0 and (image[0, 0] == 0).all() and image[0, SIZE[0] // 2].max() > 0


@pytest.mark.slow
def test_seeded_stream_is_deterministic_and_augments():
    data = coco()
    kwargs = dict(seed=7, repeat=True, max_instances=6, augment={"hsv": True, "affine": True, "flip": True})
    a, b = first_batch(data, **kwargs), first_batch(data, **kwargs)
    np.testing.assert_array_equal(a[0], b[0])
    for key in INSTANCE_KEYS:
        np.testing.assert_array_equal(a[1][key], b[1][key])
    c = first_batch(data, **dict(kwargs, seed=8, ignore_regions=False))
    assert not np.array_equal(a[0], c[0])
    assert a[1]["ignore_mask"].sum() > 0 and c[1]["ignore_mask"].sum() == 0
    # skip_elements continues the stream: batch 2 of one equals batch 1 after skipping 4 images
    stream = iter(build_whole_image_dataset(data, SIZE, batch_size=4, **kwargs))
    next(stream)
    second = np.asarray(next(stream)[0])
    np.testing.assert_array_equal(second, first_batch(data, skip_elements=4, **kwargs)[0])


def test_flip_mirrors_image_keypoints_and_swaps_left_right():
    data = coco()
    spec = get_keypoint_spec("coco")
    plain = first_batch(data, augment=NO_AUG, shuffle=False, seed=0)
    flipped = first_batch(data, augment=dict(NO_AUG, flip={"prob": 1.0}), shuffle=False, seed=0)
    np.testing.assert_allclose(flipped[0], plain[0][:, :, ::-1], atol=0.05)  # bilinear weights rounded
    order = np.asarray(spec.flip_indices)
    kp, kf = plain[1]["keypoints"], flipped[1]["keypoints"]
    valid = plain[1]["instance_valid"] > 0
    np.testing.assert_array_equal(flipped[1]["instance_valid"], plain[1]["instance_valid"])
    np.testing.assert_allclose(kf[..., 0][valid], (SIZE[1] - 1 - kp[..., 0][:, :, order])[valid], atol=1e-3)
    np.testing.assert_allclose(kf[..., 1][valid], kp[..., 1][:, :, order][valid], atol=1e-3)
    np.testing.assert_array_equal(flipped[1]["keypoint_visible"], plain[1]["keypoint_visible"][:, :, order])
    assert spec.keypoint_names[5] == "left_shoulder" and order[5] == 6  # left <-> right really swap
    boxes_p, boxes_f = plain[1]["boxes"][valid], flipped[1]["boxes"][valid]
    mirrored = np.clip(SIZE[1] - 1 - boxes_p[:, [2, 0]], 0, SIZE[1])  # boxes stay clipped to the input
    np.testing.assert_allclose(boxes_f[:, [0, 2]], mirrored, atol=1e-3)
    np.testing.assert_array_equal(flipped[1]["ignore_mask"], plain[1]["ignore_mask"][:, :, ::-1])


def _with_crowd(tmp_path):
    """test_coco.json with person 3 of image 40083 turned into a crowd region (uncompressed RLE)."""
    from pycocotools import mask as mask_utils

    ann = json.loads(COCO_JSON.read_text())
    target = [a for a in ann["annotations"] if a["image_id"] == 40083][0]  # a person with keypoints
    image = [i for i in ann["images"] if i["id"] == 40083][0]
    pixels = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(target["segmentation"], image["height"],
                                                                       image["width"])))
    flat = pixels.reshape(-1, order="F")
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    target.update(iscrowd=1, segmentation={"size": [image["height"], image["width"]], "counts": counts})
    path = tmp_path / "crowd.json"
    path.write_text(json.dumps(ann))
    for name in ("000000040083.jpg", "000000000785.jpg", "000000196141.jpg", "000000197388.jpg"):
        (tmp_path / name).symlink_to(DATA_DIR / "coco" / name)
    return path, pixels


def test_ignore_mask_from_a_crowd_annotation(tmp_path):
    import cv2

    path, pixels = _with_crowd(tmp_path)
    data = load_coco_keypoints(str(path), keypoint_spec="coco")
    _, inst, meta = first_batch(data, training=False, return_meta=True, max_instances=6)
    b = list(meta["image_id"]).index(40083)
    assert inst["instance_valid"][b].sum() == KEPT[40083] - 1  # the crowd is no instance
    # its mask (and the no-keypoint person's) warped by the letterbox, nearest: the pipeline's mask
    base = first_batch(coco(), training=False, max_instances=6)[1]["ignore_mask"][b]
    crowd = cv2.warpAffine(pixels, meta["matrix"][b].astype(np.float64), SIZE[::-1], flags=cv2.INTER_NEAREST)
    expected = np.maximum(base, crowd)
    assert crowd.sum() > 100 and np.mean(inst["ignore_mask"][b] == expected) > 0.99


@pytest.mark.slow
def test_mosaic_and_mixup_give_valid_instance_sets():
    data = coco()
    image, inst = first_batch(data, seed=3, repeat=True, max_instances=24,
                              augment={"mosaic": True, "mixup": True, "hsv": None})
    valid = inst["instance_valid"] > 0
    h, w = SIZE
    single = first_batch(data, seed=3, repeat=True, max_instances=24, augment={"hsv": None})[1]
    assert valid.sum() > single["instance_valid"].sum()  # 4 + 1 images per element bring more people
    for b in range(len(image)):
        n = int(valid[b].sum())
        assert valid[b, :n].all() and not valid[b, n:].any()  # valid rows first
        boxes = inst["boxes"][b, :n]
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        assert ((boxes[:, 2:] - boxes[:, :2]) >= 1.0).all()
        vis = inst["keypoint_visible"][b, :n] > 0
        assert vis.sum(axis=1).min() >= 1
        kps = inst["keypoints"][b, :n][vis]
        assert (kps >= 0).all() and (kps[:, 0] < w).all() and (kps[:, 1] < h).all()
        assert (inst["keypoints"][b, n:] == 0).all() and (inst["keypoint_visible"][b, n:] == 0).all()
    assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 255


def test_mixing_switch_turns_mosaic_and_mixup_off_in_a_running_pipeline():
    data = coco()
    mixing = {"mosaic": {"prob": 1.0}, "mixup": {"prob": 1.0}, "hsv": None}
    plain = first_batch(data, seed=5, repeat=True, max_instances=24, augment={"hsv": None})
    switch = MixingSwitch(on=False)
    off = first_batch(data, seed=5, repeat=True, max_instances=24, augment=mixing, mixing_switch=switch)
    # off: exactly the elements of a pipeline built without mosaic and mixup (same draws, not applied)
    np.testing.assert_array_equal(off[0], plain[0])
    for key in INSTANCE_KEYS:
        np.testing.assert_array_equal(off[1][key], plain[1][key])
    # one pipeline, the switch flipped between elements (no parallel map, no prefetch: nothing made early)
    switch.turn_on()
    # prefetch=None also turns off the prefetch tf.data would inject (it could make the second batch early)
    pipeline = build_whole_image_dataset(data, SIZE, batch_size=4, seed=5, repeat=True, max_instances=24,
                                         augment=mixing, mixing_switch=switch, num_parallel_calls=None,
                                         prefetch=None)
    assert pipeline.options().experimental_optimization.inject_prefetch is False
    stream = iter(pipeline)
    mixed = next(stream)
    assert int(np.asarray(mixed[1]["instance_valid"]).sum()) > int(plain[1]["instance_valid"].sum())
    switch.turn_off()
    assert not switch.on
    later = next(stream)
    unmixed = first_batch(data, seed=5, repeat=True, max_instances=24, augment={"hsv": None}, batch_size=8)
    np.testing.assert_array_equal(np.asarray(later[0]), unmixed[0][4:])  # the stream's second batch, unmixed
    with pytest.raises(PipelineError, match="MixingSwitch"):
        build_whole_image_dataset(data, SIZE, mixing_switch=True)


def test_bad_arguments_are_named():
    data = coco()
    with pytest.raises(PipelineError, match="stage"):
        build_whole_image_dataset(data, SIZE, augment={"cutout": True})
    with pytest.raises(PipelineError, match="max_rotation"):
        build_whole_image_dataset(data, SIZE, augment={"affine": {"rotation": 3}})
    with pytest.raises(PipelineError, match="image_size"):
        build_whole_image_dataset(data, (0, 10))
    with pytest.raises(PipelineError, match="flip"):
        build_whole_image_dataset(list(data.instances), SIZE)
