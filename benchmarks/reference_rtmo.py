"""The reference side of `bench_rtmo.py`: mmpose 1.3.2's RTMO, run from mmpose's own virtual environment.

    /work/mmpose-venv/bin/python benchmarks/reference_rtmo.py --checkpoint FILE.pth --image IMAGE.jpg

A persistent worker (the driver interleaves it with the keras-pose workers):
it builds ``BottomupPoseEstimator`` from mmpose's own config
(``configs/body_2d_keypoint/rtmo/coco/rtmo-s_8xb32-600e_coco-640x640.py``,
shipped in the wheel under ``mmpose/.mim``), loads the checkpoint with
mmengine's ``load_checkpoint(strict=True)``, and runs the config's test
pipeline (``LoadImage`` of the decoded BGR array, ``BottomupResize`` 640x640
letterbox padded with 114, ``PackPoseInputs``) then ``model.test_step``
(``PoseDataPreprocessor`` + backbone + neck + ``RTMOHead.predict``: score
threshold, NMS, DCC keypoints, mapping back to image pixels) -- one image,
end to end, from the decoded image to the people.

Protocol on stdout: ``READY {json}`` once (versions, load time, the people
found: bboxes xyxy, bbox_scores, keypoints, keypoint_scores, in image
pixels), then for every stdin line ``time N``: ``TIMES {json list of N
seconds}``; ``quit`` ends. Only PyTorch, mmengine, mmcv-lite and mmpose are
imported (keras-pose is never imported here).
"""

import argparse
import json
import os
import sys
import time
import types


def _stub_missing_modules():
    """mmcv-lite ships no compiled ops; `mmpose.models` imports `mmcv.ops` for heads RTMO does not use (EDPose).

    A stand-in module whose attributes are empty classes lets that import succeed; RTMO's backbone (CSPDarknet),
    neck (HybridEncoder) and head (RTMOHead, with mmpose's pure-torch NMS) never call into it. A torchvision built
    for another torch fails at import: it is hidden the same way (RTMO does not use it).
    """
    stub = types.ModuleType("mmcv.ops")
    stub.__getattr__ = lambda name: (_ for _ in ()).throw(AttributeError(name)) if name.startswith("__") else type(
        name, (), {})
    stub.__path__ = []
    sys.modules.setdefault("mmcv.ops", stub)
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision"] = None


CONFIG = "body_2d_keypoint/rtmo/coco/rtmo-s_8xb32-600e_coco-640x640.py"


def build(checkpoint):
    import mmpose
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import mmpose.models  # noqa: F401 - registers the models
    import mmpose.datasets  # noqa: F401 - registers the transforms
    from mmpose.registry import MODELS

    init_default_scope("mmpose")
    config = Config.fromfile(os.path.join(os.path.dirname(mmpose.__file__), ".mim", "configs", CONFIG))
    model = MODELS.build(config.model).eval()
    load_checkpoint(model, checkpoint, map_location="cpu", strict=True)
    pipeline = Compose(config.val_dataloader.dataset.pipeline)
    return model, pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    _stub_missing_modules()
    import cv2
    import mmengine
    import mmpose
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    model, pipeline = build(args.checkpoint)
    image = cv2.imread(args.image)  # BGR uint8, as mmpose's LoadImage decodes it

    def predict():
        data = pipeline({"img": image.copy(), "img_id": 0, "id": 0})
        batch = {"inputs": [data["inputs"]], "data_samples": [data["data_samples"]]}
        with torch.inference_mode():
            return model.test_step(batch)[0].pred_instances

    instances = predict()  # warm-up, and the people found
    people = {key: np.asarray(instances[key], np.float64).tolist()
              for key in ("bboxes", "bbox_scores", "keypoints", "keypoint_scores")}
    print("READY " + json.dumps({
        "versions": {"mmpose": mmpose.__version__, "mmengine": mmengine.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "opencv": cv2.__version__},
        "config": CONFIG, "load_s": time.perf_counter() - start, "threads": torch.get_num_threads(),
        "people": people}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        times = []
        for _ in range(int(command[1])):
            t0 = time.perf_counter()
            predict()
            times.append(time.perf_counter() - t0)
        print("TIMES " + json.dumps(times), flush=True)


if __name__ == "__main__":
    main()
