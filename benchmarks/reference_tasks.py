"""One measurement per process, for `bench_vs_reference.py`.

    python benchmarks/reference_tasks.py TASK '{"json": "arguments"}'

prints one line ``RESULT {json}``. Every task reports its own peak resident
memory (``ru_maxrss``, whole process: imports included) and its times as
medians of ``repeats`` timed calls after a warm-up. Tasks that need Keras read
``KERAS_BACKEND`` (set by the caller); the HF transformers and mmpose tasks
import only PyTorch and their library (the mmpose ones run in mmpose's own
virtual environment). Weights are random (same architecture on both sides):
speed and memory do not depend on them.
"""

import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SAMPLE_IMAGE = os.path.join(REPO, "keras_pose", "assets", "000000000785.jpg")
SAMPLE_BOX = (280.79, 44.73, 218.7, 346.68)  # COCO xywh, the person of the sample image
VIT = {  # keras_pose.reference_constants.VIT_SIZES (copied: the HF / mmpose tasks do not import keras_pose)
    "small": {"hidden_dim": 384, "num_layers": 12, "num_heads": 12, "mlp_dim": 1536},
    "base": {"hidden_dim": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072},
}
_START = time.perf_counter()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def boxes_for(n):
    """`n` person boxes (xywh) around the sample person, slightly shifted each."""
    x, y, w, h = SAMPLE_BOX
    return [[x + 3.0 * (i % 4), y + 2.0 * (i // 4), w - 2.0 * (i % 3), h] for i in range(n)]


def vitpose_flops(size, image_size=(256, 192)):
    """Multiply-adds x 2 of one ViTPose forward (classic head, 17 keypoints), per image."""
    c, layers, mlp = VIT[size]["hidden_dim"], VIT[size]["num_layers"], VIT[size]["mlp_dim"]
    hp, wp = (image_size[0] + 4 - 16) // 16 + 1, (image_size[1] + 4 - 16) // 16 + 1
    n = hp * wp
    block = 2 * n * c * 3 * c + 2 * n * c * c + 4 * n * n * c + 4 * n * c * mlp
    patch = 2 * n * 16 * 16 * 3 * c
    head = 2 * n * 16 * c * 256 + 2 * 4 * n * 16 * 256 * 256 + 2 * 16 * n * 256 * 17
    return layers * block + patch + head


# ----------------------------------------------------------------- keras-pose
def _keras_backend():
    import keras

    return keras.backend.backend()


def _sync(x):
    if hasattr(x, "block_until_ready"):
        x.block_until_ready()
    return x


def task_gemm(n=2048, repeats=5):
    """float32 (n x n) @ (n x n) on the active Keras backend's own library: GFLOP/s (best)."""
    import numpy as np

    backend = _keras_backend()
    a = np.random.default_rng(0).standard_normal((n, n)).astype("float32")
    if backend == "jax":
        import jax

        x = jax.device_put(a)
        mm = jax.jit(lambda p, q: p @ q)
        fn = lambda: mm(x, x).block_until_ready()  # noqa: E731
    elif backend == "torch":
        import torch

        x = torch.from_numpy(a)
        fn = lambda: torch.mm(x, x)  # noqa: E731
    else:
        import tensorflow as tf

        x = tf.constant(a)
        fn = lambda: tf.linalg.matmul(x, x).numpy()  # noqa: E731
    fn()
    best = min(timed(fn, 1, warmup=0) for _ in range(repeats))
    return {"gflops": 2 * n**3 / best / 1e9, "seconds": best}


def task_keras_vitpose_forward(size="base", batches=(1, 8), repeats=3):
    """ViTPose forward (`predict_on_batch`) per batch size; cold start times too."""
    import numpy as np

    t0 = time.perf_counter()
    import keras_pose  # noqa: F401
    from keras_pose.models import ViTPose

    import_s = time.perf_counter() - t0
    out = {"import_s": import_s, "process_start_to_import_s": time.perf_counter() - _START,
           "import_rss_mb": peak_rss_mb()}
    model = ViTPose.from_checkpoint_config(size=size)
    rng = np.random.default_rng(0)
    first = True
    for batch in batches:
        x = rng.standard_normal((batch, 256, 192, 3)).astype("float32")
        if first:
            start = time.perf_counter()
            model.predict_on_batch(x)
            out["first_prediction_s"] = time.perf_counter() - start
            out["cold_start_to_first_prediction_s"] = time.perf_counter() - _START
            first = False
        out[f"forward_b{batch}_s"] = timed(lambda: _sync(model.predict_on_batch(x)), repeats)
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    out["flops_per_image"] = vitpose_flops(size)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def task_keras_vitpose_train(size="small", batch=8, repeats=3):
    """One `train_on_batch` step (Adam, the codec's target dict), seconds."""
    import numpy as np

    from keras_pose.models import ViTPose

    import_rss = peak_rss_mb()
    model = ViTPose.from_checkpoint_config(size=size)
    model.compile()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 256, 192, 3)).astype("float32")
    keypoints = rng.uniform([0, 0], [191, 255], (batch, 17, 2))
    y = {k: np.asarray(v, np.float32) for k, v in model.codec.encode(keypoints, np.ones((batch, 17))).items()}
    step = timed(lambda: model.train_on_batch(x, y), repeats, warmup=2)
    return {"train_step_s": step, "peak_rss_mb": peak_rss_mb(), "import_rss_mb": import_rss}


def task_keras_end_to_end(size="base", boxes=(1, 4, 16), repeats=3):
    """`predict_keypoints` on the sample image with N boxes, no flip test."""
    from keras_pose.models import ViTPose
    from keras_pose.utils.image_io import read_image

    model = ViTPose.from_checkpoint_config(size=size)
    image = read_image(SAMPLE_IMAGE)
    out = {}
    for n in boxes:
        b = boxes_for(n)
        out[f"end_to_end_n{n}_s"] = timed(lambda: model.predict_keypoints(image, boxes=b, flip_test=False), repeats)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def task_keras_family_forward(family="cpm", batches=(1, 8), repeats=3):
    """CPM / Hourglass forward (`predict_on_batch`) with a released preset's architecture."""
    import numpy as np

    from keras_pose.models import CPM, Hourglass
    from keras_pose.preset_registry import get_preset_entry

    preset = {"cpm": "cpm_coco_256x192", "hourglass": "hourglass52_coco_256x256"}[family]
    model = {"cpm": CPM, "hourglass": Hourglass}[family].from_checkpoint_config(**get_preset_entry(preset).config)
    h, w = model.input_shape[1:3]
    out = {}
    for batch in batches:
        x = np.random.default_rng(0).standard_normal((batch, h, w, 3)).astype("float32")
        out[f"forward_b{batch}_s"] = timed(lambda: _sync(model.predict_on_batch(x)), repeats)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


# ------------------------------------------------------------ HF transformers
def _hf_model(size):
    import torch
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    v = VIT[size]
    backbone = VitPoseBackboneConfig(
        hidden_size=v["hidden_dim"], num_hidden_layers=v["num_layers"], num_attention_heads=v["num_heads"],
        mlp_ratio=v["mlp_dim"] // v["hidden_dim"], image_size=[256, 192], patch_size=[16, 16],
        out_indices=[v["num_layers"]],
    )
    torch.manual_seed(0)
    return VitPoseForPoseEstimation(VitPoseConfig(backbone_config=backbone, use_simple_decoder=False, num_labels=17))


def task_hf_vitpose_forward(size="base", batches=(1, 8), repeats=3):
    import torch

    t0 = time.perf_counter()
    import transformers  # noqa: F401

    out = {"import_s": time.perf_counter() - t0, "import_rss_mb": peak_rss_mb()}
    model = _hf_model(size).eval()
    first = True
    with torch.inference_mode():
        for batch in batches:
            x = torch.randn(batch, 3, 256, 192)
            if first:
                start = time.perf_counter()
                model(x)
                out["first_prediction_s"] = time.perf_counter() - start
                out["cold_start_to_first_prediction_s"] = time.perf_counter() - _START
                first = False
            out[f"forward_b{batch}_s"] = timed(lambda: model(x), repeats)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def task_hf_vitpose_train(size="small", batch=8, repeats=3):
    import torch
    import transformers  # noqa: F401

    import_rss = peak_rss_mb()
    model = _hf_model(size).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    x = torch.randn(batch, 3, 256, 192)
    target = torch.rand(batch, 17, 64, 48)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x).heatmaps, target)
        loss.backward()
        optimizer.step()

    return {"train_step_s": timed(step, repeats, warmup=2), "peak_rss_mb": peak_rss_mb(), "import_rss_mb": import_rss}


def task_hf_end_to_end(size="base", boxes=(1, 4, 16), repeats=3):
    """HF's documented chain: VitPoseImageProcessor + model + post_process_pose_estimation."""
    import numpy as np
    import torch
    import cv2
    from transformers import VitPoseImageProcessor

    model = _hf_model(size).eval()
    processor = VitPoseImageProcessor()
    image = cv2.cvtColor(cv2.imread(SAMPLE_IMAGE), cv2.COLOR_BGR2RGB)  # (H, W, 3) uint8 RGB
    out = {}

    def run(b):
        inputs = processor(images=image, boxes=[np.asarray(b, np.float32)], return_tensors="pt")
        with torch.inference_mode():
            outputs = model(inputs["pixel_values"])
        return processor.post_process_pose_estimation(outputs, boxes=[b])

    for n in boxes:
        b = boxes_for(n)
        out[f"end_to_end_n{n}_s"] = timed(lambda: run(b), repeats)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


# --------------------------------------------------------------------- mmpose
MMPOSE_CONFIGS = {
    "cpm": "body_2d_keypoint/topdown_heatmap/coco/td-hm_cpm_8xb64-210e_coco-256x192.py",
    "hourglass": "body_2d_keypoint/topdown_heatmap/coco/td-hm_hourglass52_8xb32-210e_coco-256x256.py",
}


def task_mmpose_family_forward(family="cpm", batches=(1, 8), repeats=3):
    """mmpose 1.3.2 `model(inputs, mode="tensor")` (backbone + head), random init."""
    import types

    import mmpose
    import torch

    # mmcv-lite has no compiled ops; mmpose.models imports mmcv.ops for heads these
    # models do not use (EDPose): a stand-in module whose names are empty classes.
    stub = types.ModuleType("mmcv.ops")
    stub.__getattr__ = lambda name: (_ for _ in ()).throw(AttributeError(name)) if name.startswith("__") else type(
        name, (), {})
    stub.__path__ = []
    sys.modules.setdefault("mmcv.ops", stub)
    try:  # a torchvision built for another torch fails at import; these models do not use it
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision"] = None
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmpose.models  # noqa: F401 - registers the models (mmpose.apis would need torchvision)
    from mmpose.registry import MODELS

    init_default_scope("mmpose")
    config = Config.fromfile(os.path.join(os.path.dirname(mmpose.__file__), ".mim", "configs", MMPOSE_CONFIGS[family]))
    model = MODELS.build(config.model).eval()
    size = {"cpm": (256, 192), "hourglass": (256, 256)}[family]
    out = {"mmpose": mmpose.__version__}
    with torch.inference_mode():
        for batch in batches:
            x = torch.randn(batch, 3, *size)
            out[f"forward_b{batch}_s"] = timed(lambda: model(x, None, mode="tensor"), repeats)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


TASKS = {name[5:]: fn for name, fn in globals().items() if name.startswith("task_")}


def main():
    name, arguments = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    if "torch" in name or name.startswith(("hf_", "mmpose_")) or os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        torch.set_num_threads(threads)
    result = TASKS[name](**arguments)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
