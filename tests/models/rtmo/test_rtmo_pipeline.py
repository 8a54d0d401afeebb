"""RTMO on the whole-image training pipeline: `model_dataset(rtmo, coco)` gives what RTMO's loss and network take.

Checked against the plain inference letterbox (`rtmo_training_data`): the
images are the same BGR 0..255 letterboxed arrays (padding 114, no
normalisation), the padded-instance targets the same boxes, keypoints and
visibilities, the ignore masks the same people without keypoints.
"""

import numpy as np
from pose_testing.rtmo_training_data import COCO_DIR, letterbox_coco_batch

from keras_pose.data import model_dataset
from keras_pose.datasets import load_coco_keypoints
from keras_pose.models.rtmo import RTMO

INPUT = (256, 256)


def test_model_dataset_gives_rtmo_its_letterboxed_bgr_images_and_instance_targets():
    model = RTMO.from_checkpoint_config(image_size=INPUT, deepen_factor=0.33, widen_factor=0.25)
    data = load_coco_keypoints(COCO_DIR + "/test_coco.json", keypoint_spec="coco", mode="eval")
    ds = model_dataset(model, data, batch_size=4, seed=0, repeat=False, augment=False, max_instances=8)
    x, y = next(iter(ds))
    x, y = np.asarray(x), {k: np.asarray(v) for k, v in y.items()}
    images, targets, _, _ = letterbox_coco_batch(INPUT)
    assert x.shape == (4, *INPUT, 3) and set(y) >= {"boxes", "keypoints", "keypoint_visible", "instance_valid",
                                                   "ignore_mask"}
    assert y["boxes"].shape == (4, 8, 4) and y["ignore_mask"].shape == (4, *INPUT)
    for i in range(4):
        # the pipeline's image order is its own: pair each element with the letterboxed sample it shows
        j = min(range(4), key=lambda c: np.abs(x[i] - images[c]).mean())
        assert np.abs(x[i] - images[j]).mean() < 1.0  # BGR as the network takes it (interpolation only)
        if np.abs(images[j][..., 0] - images[j][..., 2]).mean() > 5.0:  # a colour image: RGB would differ
            assert np.abs(x[i][..., ::-1] - images[j]).mean() > 2.0
        valid, expected = y["instance_valid"][i] > 0, targets["instance_valid"][j] > 0
        assert valid.sum() == expected.sum() >= 1
        order = lambda b: np.lexsort(b.T[::-1])  # noqa: E731
        got, want = y["boxes"][i][valid], targets["boxes"][j][expected]
        np.testing.assert_allclose(got[order(got)], want[order(want)], atol=0.5)
        vis_got, vis_want = y["keypoint_visible"][i][valid], targets["keypoint_visible"][j][expected]
        np.testing.assert_array_equal(vis_got[order(got)], vis_want[order(want)])
        kp_got, kp_want = y["keypoints"][i][valid][order(got)], targets["keypoints"][j][expected][order(want)]
        labelled = vis_want[order(want)] > 0
        np.testing.assert_allclose(kp_got[labelled], kp_want[labelled], atol=0.5)
        ignored, expected_ignored = y["ignore_mask"][i].sum(), targets["ignore_mask"][j].sum()
        assert abs(ignored - expected_ignored) <= 0.05 * expected_ignored + 2
