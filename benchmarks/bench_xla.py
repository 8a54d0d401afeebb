"""XLA (`jit_compile=True`) against the plain TensorFlow graph, per model family.

For each family (ViTPose, CPM, Hourglass, CPN; random weights, the
architecture of a released preset, optionally at a smaller input) this
builds two copies with the same weights, one compiled with
``jit_compile=False`` and one with ``jit_compile=True``, and times, in one
process, interleaved (A B A B ...), after a warm-up (XLA compilation not
counted):

- ``predict_on_batch`` of a batch of crops;
- ``train_on_batch`` with the codec's target dict (Adam).

It prints and writes (``--out``, JSON) the medians and the ratio
``speed-up = time without XLA / time with XLA`` (> 1: XLA helps). Each
family runs in its own subprocess (TensorFlow backend).

    python benchmarks/bench_xla.py [--families vitpose cpm hourglass cpn] [--batch 4] [--repeats 3]
        [--quick] [--out results.json]

The per-family defaults in `keras_pose.models` (`TF_JIT_COMPILE_DEFAULT`) come
from this benchmark; see the report in the class docstrings.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# family -> (preset whose architecture is used, input (H, W) override or None)
FAMILIES = {
    "vitpose": ("vitpose_small_coco_256x192", None),
    "cpm": ("cpm_coco_256x192", None),
    "hourglass": ("hourglass52_coco_256x256", None),
    "cpn": ("cpn50_coco_256x192", None),
}
QUICK_SIZES = {"vitpose": (128, 96), "cpm": (128, 96), "hourglass": (128, 128), "cpn": (128, 96)}


def build_family_model(family, image_size=None, seed=0):
    """An untrained model of `family` with the architecture of its reference preset."""
    import keras

    from keras_pose.preset_registry import get_preset_entry
    from keras_pose.models import CPM, CPN, Hourglass, ViTPose

    preset, _ = FAMILIES[family]
    config = dict(get_preset_entry(preset).config)
    if image_size is not None:
        config["image_size"] = list(image_size)
        config.pop("heatmap_size", None)
    keras.utils.set_random_seed(seed)
    cls = {"vitpose": ViTPose, "cpm": CPM, "hourglass": Hourglass, "cpn": CPN}[family]
    return cls.from_checkpoint_config(**config)


def random_batch(model, batch, seed=0):
    """(crops (B, H, W, 3) float32, target dict from the model's codec)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    h, w = model.input_shape[1:3]
    x = rng.standard_normal((batch, h, w, 3)).astype("float32")
    keypoints = rng.uniform([0, 0], [w - 1, h - 1], (batch, model.keypoint_spec.num_keypoints, 2))
    y = model.codec.encode(keypoints, np.ones((batch, model.keypoint_spec.num_keypoints)))
    return x, {k: np.asarray(v, np.float32) for k, v in y.items()}


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_family(family, batch, repeats, image_size):
    import keras

    models = {}
    for jit in (False, True):
        model = build_family_model(family, image_size)
        model.compile(jit_compile=jit)
        models[jit] = model
    models[True].set_weights(models[False].get_weights())
    x, y = random_batch(models[False], batch)
    times = {(kind, jit): [] for kind in ("predict", "train") for jit in (False, True)}
    for jit, model in models.items():  # warm-up: tracing and XLA compilation
        model.predict_on_batch(x)
        model.train_on_batch(x, y)
    for _ in range(repeats):
        for jit, model in models.items():
            times[("predict", jit)].append(_time(lambda: model.predict_on_batch(x)))
        for jit, model in models.items():
            times[("train", jit)].append(_time(lambda: model.train_on_batch(x, y)))
    out = {"family": family, "backend": keras.backend.backend(), "batch": batch,
           "input_size": list(models[False].input_shape[1:3])}
    for kind in ("predict", "train"):
        plain = statistics.median(times[(kind, False)])
        xla = statistics.median(times[(kind, True)])
        out[kind] = {"no_xla_s": plain, "xla_s": xla, "xla_speedup": plain / xla}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small inputs, batch 2, 2 repeats")
    parser.add_argument("--out", default=None, help="JSON results file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats = 2, 2
    if args.child:
        size = QUICK_SIZES[args.child] if args.quick else FAMILIES[args.child][1]
        print("RESULT " + json.dumps(run_family(args.child, args.batch, args.repeats, size)), flush=True)
        return 0
    results = []
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for family in args.families:
        cmd = [sys.executable, __file__, "--child", family, "--batch", str(args.batch), "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd + (["--quick"] if args.quick else []), env=env, capture_output=True, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{family}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        result = json.loads(lines[-1][7:])
        results.append(result)
        print(f"{family:9s} {tuple(result['input_size'])} batch {result['batch']}: "
              f"predict {result['predict']['no_xla_s']:.3f} s / XLA {result['predict']['xla_s']:.3f} s "
              f"(XLA speed-up {result['predict']['xla_speedup']:.2f}x); "
              f"train step {result['train']['no_xla_s']:.3f} s / XLA {result['train']['xla_s']:.3f} s "
              f"(XLA speed-up {result['train']['xla_speedup']:.2f}x)", flush=True)
    if args.out:
        from keras_pose.utils.file_utils import atomic_write

        with atomic_write(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
