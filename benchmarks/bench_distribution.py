"""Distributed training step time against one device, on this CPU (simulated devices: overhead only).

    python benchmarks/bench_distribution.py                      # JAX data and model parallel
    python benchmarks/bench_distribution.py --runs tensorflow:data,jax:data --rounds 3
    KERAS_BACKEND=jax python benchmarks/bench_distribution.py --child distributed --kind data

Each side runs in its own process: the one-device side sees one device, the
distributed side two made out of the same CPU (JAX:
``--xla_force_host_platform_device_count=2``; TensorFlow: two logical CPUs).
Interleaving both in one JAX process stalls XLA:CPU's all-reduce
rendezvous, so they are never mixed. The processes alternate, single then
distributed, for ``--rounds`` rounds (so a change in the machine's load hits
both sides alike); each times ``--steps`` fits of 2 steps after a warm-up fit
and reports the median step; the table gives the medians over rounds and
the median of the rounds' ratios (each round's two processes ran back to
back, under about the same load). Both devices share the same cores: the ratio is the engine's overhead
(sharding, all-reduce, per-replica graphs), not a speed-up.

A small ViT (hidden 192, 4 blocks: a loaded 2-core machine can starve one
simulated JAX device's thread past XLA's 40 s all-reduce rendezvous timeout
with larger ones) at 256x192, global batch 8, Adam. JAX steps are
XLA-compiled (its normal path); TensorFlow runs without XLA on both sides
(XLA fails under MirroredStrategy on CPU).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def child(side, kind, steps):
    import keras

    from keras_pose.training.distribution import setup_distribution, simulate_cpu_devices

    if side == "distributed":
        simulate_cpu_devices(2)
    import numpy as np
    import tensorflow as tf

    from keras_pose.models.vitpose import ViTPose, ViTPoseBackbone

    setup = setup_distribution(kind, mesh="1,2" if kind == "model" else None) if side == "distributed" else (
        setup_distribution(None))
    jit = keras.backend.backend() == "jax"
    with setup.scope():
        keras.utils.set_random_seed(0)
        model = ViTPose(ViTPoseBackbone(image_size=(256, 192), hidden_dim=192, num_layers=4, num_heads=3,
                                        mlp_dim=768), decoder="simple")
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="keypoint_mse", jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 256, 192, 3)).astype("float32")
    y = {"heatmaps": rng.uniform(size=(8, 64, 48, 17)).astype("float32"),
         "keypoint_weights": np.ones((8, 17), "float32")}
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    def step_time():
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
        return (time.perf_counter() - start) / 2

    step_time()  # warm-up: tracing and compilation
    times = sorted(step_time() for _ in range(steps))
    print(json.dumps({"backend": keras.backend.backend(), "side": side, "kind": kind,
                      "replicas": setup.num_replicas, "step_s": times[len(times) // 2]}))


def _side(backend, side, kind, steps):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)  # the one-device side must see one device
    out = subprocess.run([sys.executable, __file__, "--child", side, "--kind", kind, "--steps", str(steps)],
                         env=env, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"{backend} {side} {kind} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=("single", "distributed"))
    parser.add_argument("--kind", choices=("data", "model"), default="data")
    parser.add_argument("--steps", type=int, default=3, help="timed fits of 2 steps per process")
    parser.add_argument("--rounds", type=int, default=2, help="single/distributed process pairs per run")
    parser.add_argument("--runs", default="jax:data,jax:model", help="BACKEND:KIND,... (tensorflow:data too)")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.kind, args.steps)
    print("| backend | engine | replicas | one device s/step | distributed s/step | ratio | per-round ratios |")
    print("|---|---|---|---|---|---|---|")
    for run in args.runs.split(","):
        backend, kind = run.split(":")
        pairs = []
        for i in range(args.rounds):
            one = _side(backend, "single", kind, args.steps)
            two = _side(backend, "distributed", kind, args.steps)
            pairs.append((one["step_s"], two["step_s"], two["replicas"]))
            print(f"round {i + 1}: {backend} {kind} one device {one['step_s']:.3f} s/step, {two['replicas']} devices "
                  f"{two['step_s']:.3f} s/step", file=sys.stderr, flush=True)
        single, dist = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        ratio = statistics.median(b / a for a, b, _ in pairs)  # each round's pair ran back to back
        print(f"| {backend} | {kind} | {pairs[0][2]} | {single:.3f} | {dist:.3f} | {ratio:.2f} | "
              + ", ".join(f"{b / a:.2f}" for a, b, _ in pairs) + " |", flush=True)


if __name__ == "__main__":
    main()
