"""Overfit: a small OpenPose trained on the four COCO samples reaches COCO AP >= 0.7 on them.

Targets from `OpenPoseMaps` (confidence maps, PAFs, ignore mask of the people
without keypoints from their segmentations via pycocotools), COCO-17 ->
OpenPose-18 (neck from the shoulders), `OpenPoseLoss` (masked L2 at both
stages), Adam; evaluated with `predict_keypoints` (whole images, fast
grouping), OpenPose-18 -> COCO-17 and pycocotools' COCOeval. Measured once
on a shared 2-core CPU: untrained AP 0.0, AP 0.877 after 600 steps (pytest: 737 s);
hence `large`.
"""

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from pose_testing.paths import DATA_DIR

H, W = 256, 392  # canvas: height 256 (the net height at test time), width padded to 392 with 128
STEPS = 600


def _samples(codec):
    from keras_pose.models.openpose import coco17_to_op18
    from keras_pose.models.openpose.openpose_targets import ignore_mask_from_coco

    ann = json.loads((DATA_DIR / "coco" / "test_coco.json").read_text())
    xs, ys = [], {k: [] for k in codec.target_keys}
    for img in ann["images"]:
        bgr = cv2.imread(str(DATA_DIR / "coco" / img["file_name"]))
        s = H / img["height"]
        resized = cv2.resize(bgr, (int(round(img["width"] * s)), H), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((H, W, 3), 128, np.uint8)
        canvas[:, :resized.shape[1]] = resized[:, :W]
        xs.append(canvas.astype(np.float32) / 256 - 0.5)
        anns = [a for a in ann["annotations"] if a["image_id"] == img["id"]]
        kp = np.array([a["keypoints"] for a in anns if a["num_keypoints"] > 0], np.float64).reshape(-1, 17, 3)
        op = coco17_to_op18(kp)
        ignore = ignore_mask_from_coco(anns, img["height"], img["width"]).astype(np.uint8)
        ignore = cv2.resize(ignore, (resized.shape[1], H), interpolation=cv2.INTER_NEAREST).astype(bool)
        canvas_ignore = np.zeros((H, W), bool)
        canvas_ignore[:, :resized.shape[1]] = ignore[:, :W]
        targets = codec.encode(op[..., :2] * s, op[..., 2], ignore_mask=canvas_ignore)
        for k in ys:
            ys[k].append(targets[k])
    return ann, np.stack(xs), {k: np.stack(v) for k, v in ys.items()}


def coco_ap(model, ann):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from keras_pose.models.openpose import op18_to_coco17

    results = []
    for img in ann["images"]:
        r = model.predict_keypoints(str(DATA_DIR / "coco" / img["file_name"]))
        kp, sc = op18_to_coco17(r.keypoints, r.scores)
        for i in range(len(r)):
            flat = np.concatenate([kp[i], sc[i][:, None]], -1).reshape(-1)
            results.append({"image_id": img["id"], "category_id": 1, "keypoints": flat.tolist(),
                            "score": float(r.person_scores[i])})
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(DATA_DIR / "coco" / "test_coco.json"))
        ev = COCOeval(gt, gt.loadRes(results), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


@pytest.mark.large
def test_small_openpose_overfits_the_coco_samples():
    pytest.importorskip("pycocotools")
    import keras

    from keras_pose.models.openpose import OpenPose
    from keras_pose.models.openpose.openpose_targets import OpenPoseMaps

    keras.utils.set_random_seed(0)
    model = OpenPose.from_checkpoint_config(
        variant="coco18", image_size=[H, H], num_stages=2, vgg_channels=[32, 64, 64, 96], cpm_channels=[96, 64],
        stage_channels=64, head_channels=128, refine_head_channels=64, refine_kernel_size=3)
    ann, x, y = _samples(OpenPoseMaps((H, W), 18, model.limbs, model.paf_channels))
    untrained = coco_ap(model, ann)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))  # default loss: OpenPoseLoss
    for _ in range(STEPS):
        loss = model.train_on_batch(x, y)
    trained = coco_ap(model, ann)
    print(f"[openpose overfit] COCO AP untrained {untrained:.3f}, after {STEPS} steps {trained:.3f} (loss {loss})")
    assert untrained < 0.2 and trained >= 0.7
