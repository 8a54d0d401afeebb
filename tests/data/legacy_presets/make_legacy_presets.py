"""Save tiny presets with the pre-issue-9 code (run with PYTHONPATH=/work/main)."""
import os, shutil, sys, json
import numpy as np
import keras
keras.utils.set_random_seed(0)
from keras_pose.models.vitpose import ViTPose, ViTPoseBackbone
from keras_pose.models.cpn import CPN, CPNBackbone
out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
vit = ViTPose(
    ViTPoseBackbone(image_size=(64, 48), hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32),
    deconv_filters=(8, 8),
    keypoint_spec="coco",
    preprocessing={"mean": [120.0, 110.0, 100.0], "std": [60.0, 50.0, 40.0], "channel_order": "bgr"},
    decoding={
        "codec": {"type": "UDPHeatmap", "input_size": [64, 48], "heatmap_size": [16, 12], "sigma": 2.0},
        "flip_test": True, "shift_heatmap": False, "padding": 1.25,
        "reference": "a test preset saved by the code before issue 9",
    },
)
vit.save_to_preset(os.path.join(out, "vitpose_tiny"))
cpn = CPN(
    CPNBackbone(stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_filters=[64, 8, 8, 8], image_shape=(64, 64, 3)),
    keypoint_spec="coco", global_channels=8, refine_planes=4, refine_num_blocks=[1, 0, 0, 0],
    decoding={
        "codec": {"type": "CPNHeatmap", "input_size": [64, 64], "heatmap_size": [16, 16], "kernel_sizes": [7, 5, 5, 3]},
        "flip_test": True, "shift_heatmap": False, "padding": 1.3, "padding_xy": [1.2, 1.3], "border": "mean",
        "cpn_test": {"note": "informational"},
    },
)
cpn.save_to_preset(os.path.join(out, "cpn_tiny"))
x = np.random.default_rng(1).uniform(0, 255, (96, 80, 3)).astype(np.uint8)
np.save(os.path.join(out, "image.npy"), x)
expected = {}
for name, model in (("vitpose_tiny", vit), ("cpn_tiny", cpn)):
    r = model.predict_keypoints(x, [[10.0, 12.0, 40.0, 60.0]])
    expected[name] = {"keypoints": r.keypoints.tolist(), "scores": r.scores.tolist(),
                      "decoding": model.decoding, "preprocessing": model.preprocessing}
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
