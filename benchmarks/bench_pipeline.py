"""Throughput of the top-down training pipeline: crops per second per core.

Measures, in the same run and on the same data (the COCO sample images,
256x192 crops, UDP heatmap targets 64x48, training augmentation on):

1. ``keras_pose.data.build_top_down_dataset`` (tf.data, graph decode, warp
   and ``encode_tf``) restricted to one core (intra/inter-op threads 1,
   ``num_parallel_calls=1``, private thread pool of 1);
2. the NumPy/OpenCV reference: mmpose-style per-sample ``cv2.imread`` +
   random flip / half-body / bbox transform in NumPy + ``cv2.warpAffine`` +
   the same colour jitter (one ``cv2.transform``) + ``codec.encode`` (NumPy)
   + normalisation + batch stacking, with
   ``cv2.setNumThreads(1)``;

and reports the ratio. ``--cores N`` (N > 1) also runs the tf.data pipeline
with N threads and AUTOTUNE parallelism in a subprocess and reports crops/s
divided by N.

    python benchmarks/bench_pipeline.py [--crops 960] [--cores 2]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get(
    "KERAS_POSE_SHARED_DIR", os.path.join(HERE, "..", "tests")
)
COCO_JSON = os.path.join(DATA, "data", "coco", "test_coco.json")
IMAGE_SIZE = (256, 192)
HEATMAP_SIZE = (64, 48)
BATCH = 32


def _configure_tf(threads):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def _dataset(repeats):
    from keras_pose.datasets import load_coco_keypoints

    base = load_coco_keypoints(COCO_JSON, keypoint_spec="coco")
    return base._copy(list(base.instances) * repeats), base


def bench_tf(num_crops, threads):
    """``(crops per wall second, crops per CPU second)`` of the tf.data pipeline."""
    tf = _configure_tf(threads)
    from keras_pose.codecs import UDPHeatmap
    from keras_pose.data import build_top_down_dataset
    from keras_pose.preprocessing import IMAGENET_PREPROCESSING

    base_len = len(_dataset(1)[1])
    dataset, _ = _dataset(max(1, -(-num_crops // base_len)))
    codec = UDPHeatmap(IMAGE_SIZE, HEATMAP_SIZE)
    ds = build_top_down_dataset(
        dataset,
        codec,
        preprocessing=IMAGENET_PREPROCESSING,
        batch_size=BATCH,
        seed=0,
        repeat=True,
        num_parallel_calls=1 if threads == 1 else tf.data.AUTOTUNE,
        prefetch=1 if threads == 1 else tf.data.AUTOTUNE,
    )
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(options)
    it = iter(ds)
    for _ in range(3):  # warm-up: tracing, file cache
        next(it)
    steps = max(1, num_crops // BATCH)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        images, targets = next(it)
    _ = images.numpy(), targets["heatmaps"].numpy()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return steps * BATCH / wall, steps * BATCH / cpu


def _truncnorm(rng, size):
    """Standard normal truncated to [-1, 1] (rejection sampling)."""
    out = rng.standard_normal(size)
    bad = np.abs(out) > 1
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 1
    return out


def bench_numpy(num_crops):
    """``(crops per wall second, crops per CPU second)`` of the NumPy/OpenCV reference."""
    import cv2

    cv2.setNumThreads(1)
    from keras_pose.codecs import UDPHeatmap
    from keras_pose.geometry import fix_aspect_ratio, get_warp_matrix, transform_points, warp_image
    from keras_pose.keypoints import get_keypoint_spec
    from keras_pose.preprocessing import IMAGENET_PREPROCESSING

    _, base = _dataset(1)
    spec = get_keypoint_spec("coco")
    flip_idx = np.asarray(spec.flip_indices)
    upper, lower = np.asarray(spec.upper_body_indices), np.asarray(spec.lower_body_indices)
    codec = UDPHeatmap(IMAGE_SIZE, HEATMAP_SIZE)
    mean = np.asarray(IMAGENET_PREPROCESSING["mean"], np.float32)
    std = np.asarray(IMAGENET_PREPROCESSING["std"], np.float32)
    rng = np.random.default_rng(0)
    instances = list(base.instances)
    h_in, w_in = IMAGE_SIZE

    def sample(inst):
        img = cv2.imread(inst.image_path, cv2.IMREAD_COLOR)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        x, y, w, h = inst.bbox
        center = np.array([x + w / 2, y + h / 2])
        scale = np.array([w, h]) * 1.25
        kps = inst.keypoints.astype(np.float64).copy()
        vis = np.minimum(inst.keypoints_visible, 1).astype(np.float32)
        if rng.random() < 0.5:  # RandomFlip
            img = img[:, ::-1]
            center[0] = img.shape[1] - 1 - center[0]
            kps[:, 0] = img.shape[1] - 1 - kps[:, 0]
            kps, vis = kps[flip_idx], vis[flip_idx]
        if vis.sum() >= 9 and rng.random() <= 0.3:  # RandomHalfBody
            up = [i for i in upper if vis[i] > 0]
            lo = [i for i in lower if vis[i] > 0]
            ids = up if (len(lo) < 3 or (len(up) >= 2 and rng.random() < 0.7)) else lo
            if len(ids) >= 2:
                sel = kps[ids]
                center = sel.mean(axis=0)
                scale = (sel.max(axis=0) - sel.min(axis=0)) * 1.5
        v = _truncnorm(rng, 4)  # RandomBBoxTransform
        u = rng.random(3)
        if u[0] < 0.3:
            center = center + v[:2] * 0.16 * scale
        scale = scale * (v[2] * 0.5 + 1.0)
        rot = v[3] * 80.0 if u[2] < 0.6 else 0.0
        scale = fix_aspect_ratio(scale, w_in / h_in)
        matrix = get_warp_matrix(center, scale, IMAGE_SIZE, rot=rot, udp=True)
        crop = warp_image(np.ascontiguousarray(img), matrix, IMAGE_SIZE)
        crop = color_jitter(crop.astype(np.float32))
        targets = codec.encode(transform_points(kps, matrix), vis)
        return (crop - mean) / std, targets["heatmaps"], targets["keypoint_weights"]

    gray = np.array([0.299, 0.587, 0.114], np.float32)
    yiq = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])

    def color_jitter(crop):
        """The pipeline's colour jitter (same formulas) with one cv2.transform."""
        on = rng.random(4) < 0.5
        r = rng.uniform(-1, 1, 4) * on
        delta, c, s, theta = r[0] * 0.1 * 255, 1 + r[1] * 0.1, 1 + r[2] * 0.1, r[3] * 0.02 * 2 * np.pi
        rot = np.array([[1, 0, 0], [0, np.cos(theta), -np.sin(theta)], [0, np.sin(theta), np.cos(theta)]])
        hs = np.linalg.inv(yiq) @ rot @ yiq @ (s * np.eye(3) + (1 - s) * np.outer(np.ones(3), gray))
        mean_gray = float(crop.reshape(-1, 3).mean(axis=0) @ gray) + delta
        m = np.concatenate([hs * c, (hs @ np.full(3, (1 - c) * mean_gray + c * delta))[:, None]], axis=1)
        return np.clip(cv2.transform(crop, m.astype(np.float32)), 0, 255)

    def batch(start):
        items = [sample(instances[(start + i) % len(instances)]) for i in range(BATCH)]
        return np.stack([i[0] for i in items]), np.stack([i[1] for i in items]), np.stack([i[2] for i in items])

    for i in range(2):
        batch(i * BATCH)
    steps = max(1, num_crops // BATCH)
    start, cpu_start = time.perf_counter(), time.process_time()
    for s in range(steps):
        batch(s * BATCH)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return steps * BATCH / wall, steps * BATCH / cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=960, help="crops timed per measurement")
    parser.add_argument("--cores", type=int, default=1, help="also time tf.data with this many threads")
    parser.add_argument("--tf-only-threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.tf_only_threads:
        wall, cpu = bench_tf(args.crops, args.tf_only_threads)
        print(json.dumps({"wall": wall, "cpu": cpu}))
        return

    tf_wall, tf_cpu = bench_tf(args.crops, 1)
    ref_wall, ref_cpu = bench_numpy(args.crops)
    report = {
        "crop": "256x192, UDP heatmaps 64x48, training augmentation, COCO sample JPEGs",
        "tf_data crops/s/core (per CPU second)": round(tf_cpu, 1),
        "numpy_opencv crops/s/core (per CPU second)": round(ref_cpu, 1),
        "ratio tf_data / numpy (CPU time)": round(tf_cpu / ref_cpu, 3),
        "tf_data crops/s, 1 thread (wall)": round(tf_wall, 1),
        "numpy_opencv crops/s, 1 thread (wall)": round(ref_wall, 1),
        "ratio tf_data / numpy (wall)": round(tf_wall / ref_wall, 3),
    }
    if args.cores > 1:
        out = subprocess.run(
            [sys.executable, __file__, "--crops", str(args.crops), "--tf-only-threads", str(args.cores)],
            capture_output=True,
            text=True,
            check=True,
        )
        multi = json.loads(out.stdout.strip().splitlines()[-1])
        report[f"tf_data crops/s, {args.cores} threads (wall)"] = round(multi["wall"], 1)
        report[f"tf_data crops/s/core, {args.cores} threads (per CPU second)"] = round(multi["cpu"], 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"cores: {os.cpu_count()}, load average {load:.2f}. Per-CPU-second rates are robust to "
        "other load on a shared machine; wall rates are not."
    )
    for key, value in report.items():
        print(f"{key:58s} {value}")


if __name__ == "__main__":
    main()
