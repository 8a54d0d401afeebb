"""Distributed training step time against one device, on this CPU (simulated devices: overhead only).

    python benchmarks/bench_distribution.py            # runs each backend in a subprocess
    KERAS_BACKEND=jax python benchmarks/bench_distribution.py --child data

Two devices are made out of one CPU (JAX: --xla_force_host_platform_device_count=2;
TensorFlow: two logical CPUs), so they share the same cores: the ratio shows
the engine's overhead (sharding, all-reduce, per-replica graphs), not a
speed-up. A small ViT (hidden 192, 4 blocks: a loaded 2-core machine starves
one simulated JAX device's thread past XLA's 40 s all-reduce rendezvous
timeout with larger ones) at 256x192, global batch 8, Adam; medians of
interleaved steps after warm-up.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def child(kind, steps):
    from keras_pose.training.distribution import simulate_cpu_devices

    simulate_cpu_devices(2)
    import numpy as np
    import tensorflow as tf

    import keras

    from keras_pose.models.vitpose import ViTPose, ViTPoseBackbone
    from keras_pose.training.distribution import setup_distribution

    def build():
        keras.utils.set_random_seed(0)
        model = ViTPose(ViTPoseBackbone(image_size=(256, 192), hidden_dim=192, num_layers=4, num_heads=3,
                                        mlp_dim=768), decoder="simple")
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="keypoint_mse", jit_compile=False)
        return model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 256, 192, 3)).astype("float32")
    y = {"heatmaps": rng.uniform(size=(8, 64, 48, 17)).astype("float32"), "keypoint_weights": np.ones((8, 17),
                                                                                                      "float32")}
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    setup = setup_distribution(kind)
    if setup.distribution is not None:
        keras.distribution.set_distribution(None)
    single = build()
    if setup.distribution is not None:
        keras.distribution.set_distribution(setup.distribution)
    with setup.scope():
        distributed = build()

    def step_time(model):
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
        return (time.perf_counter() - start) / 2

    # Warm-up (tracing); the distribution must be the one each model was built under.
    timings = {"single": [], "distributed": []}
    for repeat in range(steps + 1):
        for name, model in (("single", single), ("distributed", distributed)):
            if setup.distribution is not None:
                keras.distribution.set_distribution(None if name == "single" else setup.distribution)
            t = step_time(model)
            if repeat:
                timings[name].append(t)
    med = {k: sorted(v)[len(v) // 2] for k, v in timings.items()}
    print(json.dumps({"backend": keras.backend.backend(), "kind": kind, "replicas": setup.num_replicas,
                      "single_s": med["single"], "distributed_s": med["distributed"],
                      "ratio": med["distributed"] / med["single"]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=("data", "model"))
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.steps)
    rows = []
    for backend, kind in (("tensorflow", "data"), ("jax", "data"), ("jax", "model")):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        out = subprocess.run([sys.executable, __file__, "--child", kind, "--steps", str(args.steps)], env=env,
                             capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-2000:], file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| backend | engine | replicas | one device s/step | distributed s/step | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['kind']} | {r['replicas']} | {r['single_s']:.3f} | {r['distributed_s']:.3f} | "
              f"{r['ratio']:.2f} |")


if __name__ == "__main__":
    main()
