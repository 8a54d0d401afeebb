"""OpenPose COCO-18 network forward: keras-pose (per backend) against the PyTorch port, same weights.

The reference is controlnet-aux's ``bodypose_model`` (= Hzzone/pytorch-openpose;
``pip install controlnet-aux --no-deps``), loaded with the golden case's
synthetic weights (tests/golden/openpose/body_coco18, `make_state_dict`);
keras-pose's model is converted from the same ``body_pose_model.pth``.
For each Keras backend (a subprocess each) and the PyTorch port: median
forward time of one image ``(1, 3, H, W)`` after a warm-up, img/s, the
ratio to the port, and the max abs difference of the outputs to the port's.

    python benchmarks/bench_openpose_network.py [--size 184 280] [--repeats 5]
        [--backends tensorflow jax torch] [--out results.json]
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
CASE = REPO / "tests" / "golden" / "openpose" / "body_coco18"


def state_dict():
    import importlib.util

    spec = importlib.util.spec_from_file_location("msd", REPO / "tests" / "golden" / "make_state_dict.py")
    msd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(msd)
    meta = json.loads((CASE / "meta.json").read_text())
    return msd.make_state_dict(msd.load_keys(CASE / "keys.json"), meta["seed"])


def timed(fn, repeats):
    fn()  # warm-up (tracing / compilation not counted)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_reference(path, x, repeats):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import torch

    from bench_openpose_grouping import load_controlnet_body

    body = load_controlnet_body()
    if body is None:
        raise SystemExit("controlnet-aux is not installed: pip install controlnet-aux --no-deps")
    model = body.bodypose_model()
    weights = torch.load(path, weights_only=True)
    model.load_state_dict(body.util.transfer(model, weights))
    model.eval()
    data = torch.from_numpy(x)
    with torch.no_grad():
        paf, heat = model(data)
        seconds = timed(lambda: model(data), repeats)
    return seconds, heat.numpy(), paf.numpy()


def run_keras(path, x, repeats):
    sys.path.insert(0, str(REPO))
    import keras

    from keras_pose.conversion import convert_checkpoint

    model = convert_checkpoint(path, preset="openpose_coco18_coco_368x368")
    nhwc = x.transpose(0, 2, 3, 1)
    seconds = timed(lambda: model.predict_on_batch(nhwc), repeats)
    heat, paf = model.final_maps(model.predict_on_batch(nhwc))
    to_nchw = lambda a: np.asarray(keras.ops.convert_to_numpy(a)).transpose(0, 3, 1, 2)  # noqa: E731
    return seconds, to_nchw(heat), to_nchw(paf)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=2, default=[184, 280])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--out")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, (1, 3, *args.size)).astype(np.float32) / 256 - 0.5).astype(np.float32)
    if args.worker:
        path, out = args.worker.split(",")
        fn = run_reference if os.environ.get("BENCH_REFERENCE") else run_keras
        seconds, heat, paf = fn(path, x, args.repeats)
        np.savez(out, seconds=seconds, heat=heat, paf=paf)
        return
    import torch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "body_pose_model.pth")
        torch.save({k: torch.from_numpy(v) for k, v in state_dict().items()}, path)
        results = {}
        for name in ["pytorch-port"] + args.backends:
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            if name == "pytorch-port":
                env["BENCH_REFERENCE"] = "1"
            else:
                env["KERAS_BACKEND"] = name
            out = os.path.join(tmp, f"{name}.npz")
            subprocess.run([sys.executable, __file__, "--size", *map(str, args.size), "--repeats",
                            str(args.repeats), "--worker", f"{path},{out}"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            results[name] = np.load(out)
        ref = results["pytorch-port"]
        for name, r in results.items():
            row = {"runner": name, "seconds": float(r["seconds"]), "img_per_s": 1.0 / float(r["seconds"]),
                   "speed_vs_port": float(ref["seconds"]) / float(r["seconds"]),
                   "max_abs_diff_heatmap": float(np.abs(r["heat"] - ref["heat"]).max()),
                   "max_abs_diff_paf": float(np.abs(r["paf"] - ref["paf"]).max())}
            rows.append(row)
            print(f"{name:>13}: {row['seconds'] * 1e3:8.1f} ms/img, {row['img_per_s']:6.2f} img/s, "
                  f"x{row['speed_vs_port']:.2f} vs the port; max|diff| heatmap {row['max_abs_diff_heatmap']:.2e}, "
                  f"paf {row['max_abs_diff_paf']:.2e}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"input_hw": args.size, "cpu_count": os.cpu_count(), "repeats": args.repeats, "rows": rows},
                      f, indent=1)


if __name__ == "__main__":
    main()
