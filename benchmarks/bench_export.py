"""Size and CPU latency of exported pose models: Keras (TF) vs ONNX Runtime vs LiteRT.

For ViTPose-S (256x192) and the smallest configuration of every other family
(CPN-50 256x192, CPM 256x192, Hourglass-52 256x256), built at full size with
random weights (`from_checkpoint_config` / the preset configs, no download;
the export processes load the timed model's weights),
this measures in one run on this CPU:

- file size: Keras weights (``.weights.h5``), ONNX float32, LiteRT float32 /
  float16 / int8 (int8 calibrated on real COCO sample crops via
  `keras_pose.export.representative_crops`; optionally ONNX int8);
- latency: median of ``--runs`` batch-1 calls after ``--warmup`` calls,
  timed round-robin across the runtimes (so other load on a shared machine
  falls on all of them alike), with ``--threads`` threads everywhere (Keras: ``predict_on_batch``, the path of
  ``predict_keypoints``; LiteRT: ``ai_edge_litert`` interpreter with XNNPACK;
  ONNX: onnxruntime CPU provider);
- parity: max |exported - Keras| / Keras output range on one real crop;
- export time (each export runs in its own process under a memory guard,
  ``--memory-gb``, so a converter running out of memory fails its row only);

and prints a markdown table with size and speed ratios against Keras measured
in the same run, and writes the rows as JSON.

    python benchmarks/bench_export.py [--families vitpose,cpn,cpm,hourglass] [--runs 20]
        [--threads 2] [--calibration 16] [--onnx-int8] [--json bench_export.json]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("KERAS_POSE_SHARED_DIR", os.path.join(HERE, "..", "tests"))
COCO_JSON = os.path.join(SHARED, "data", "coco", "test_coco.json")

FAMILIES = {
    "vitpose": ("ViTPose-S", "vitpose_small_coco_256x192"),
    "cpn": ("CPN-50", "cpn50_coco_256x192"),
    "cpm": ("CPM", "cpm_coco_256x192"),
    "hourglass": ("Hourglass-52", "hourglass52_coco_256x256"),
}


def build(family):
    """A full-size model of the family's smallest preset, random weights."""
    import keras

    import keras_pose

    keras.utils.set_random_seed(0)
    entry = keras_pose.get_preset_entry(FAMILIES[family][1])
    cls = getattr(keras_pose, entry.task_class)
    return cls.from_checkpoint_config(**entry.config, preprocessing=entry.preprocessing, decoding=entry.decoding)


def time_interleaved(calls, x, runs, warmup):
    """Median latency (ms) of each callable, timed round-robin.

    One call of each per round, so load from other processes on a shared
    machine falls on every runtime alike.
    """
    for fn in calls.values():
        for _ in range(warmup):
            fn(x)
    times = {name: [] for name in calls}
    for _ in range(runs):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn(x)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000.0 for name, t in times.items()}


def _memory_guard(limit_gb):
    """Exit the process (code 3) when its resident memory passes ``limit_gb``."""
    import threading

    def watch():
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page / 1e9
            if rss > limit_gb:
                print(f"memory guard: {rss:.1f} GB resident > {limit_gb:.1f} GB", flush=True)
                os._exit(3)
            time.sleep(0.2)

    if os.path.exists("/proc/self/statm"):
        threading.Thread(target=watch, daemon=True).start()


def export_one(family, fmt, quantization, path, calibration, memory_gb, weights):
    """Child process: build the model, load the parent's weights, export one variant."""
    _memory_guard(memory_gb)
    from keras_pose.export import export_model, representative_crops

    model = build(family)
    model.load_weights(weights)
    crops = representative_crops(model, COCO_JSON, num_samples=calibration) if quantization == "int8" else None
    start = time.perf_counter()
    export_model(model, path, quantization=quantization, representative_dataset=crops,
                 num_calibration_samples=calibration)
    print(json.dumps({"export_s": time.perf_counter() - start}))


def _default_memory_gb():
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f}
        return 0.8 * info["MemAvailable"] / 1e6
    except (OSError, KeyError, ValueError):
        return 16.0


def bench_family(family, args, workdir):
    import subprocess

    import tensorflow as tf

    from keras_pose.export import load_exported, representative_crops

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    label, preset = FAMILIES[family]
    variants = [("onnx", None), ("tflite", None), ("tflite", "float16"), ("tflite", "int8")]
    if args.onnx_int8:
        variants.append(("onnx", "int8"))

    model = build(family)
    params = int(model.count_params())
    weights = os.path.join(workdir, f"{family}.weights.h5")
    model.save_weights(weights)
    keras_size = os.path.getsize(weights)
    x = representative_crops(model, COCO_JSON, num_samples=1)
    reference = np.asarray(model.heatmaps_from_outputs(model.predict_on_batch(x)), np.float32)
    span = float(np.ptp(reference)) or 1.0

    # Exports first, each in its own process: a converter that runs out of
    # memory (tf2onnx on a 375 MB model) fails its row, not the benchmark.
    exported, failed = {}, []
    for fmt, quantization in variants:
        key = f"{fmt}_{quantization or 'float32'}"
        path = os.path.join(workdir, f"{family}_{key}.{fmt}")
        runtime = "ONNX Runtime" if fmt == "onnx" else "LiteRT"
        command = [sys.executable, os.path.abspath(__file__), "--export-one",
                   json.dumps([family, fmt, quantization, path, args.calibration, args.memory_gb, weights])]
        result = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if result.returncode != 0 or not lines:
            tail = (result.stdout + result.stderr).strip().splitlines()
            reason = next((line for line in reversed(tail) if "memory guard" in line or "Error" in line), None)
            if reason is None:
                killed = " (killed: out of memory?)" if result.returncode < 0 else ""
                reason = f"exit code {result.returncode}{killed}"
            print(f"  {label} {runtime} {quantization or 'float32'}: export failed: {reason}", flush=True)
            failed.append({"family": label, "preset": preset, "runtime": runtime, "format": fmt,
                           "quantization": quantization, "error": reason[:500]})
            continue
        exported[key] = (path, runtime, fmt, quantization, json.loads(lines[-1])["export_s"])
        print(f"  {label} {runtime} {quantization or 'float32'}: {os.path.getsize(path) / 1e6:.1f} MB "
              f"(export {exported[key][-1]:.0f} s)", flush=True)

    rows = {
        "keras": {
            "family": label, "preset": preset, "params": params, "runtime": "Keras (TF)", "format": "keras",
            "quantization": None, "size_bytes": keras_size, "max_diff_rel": 0.0, "export_s": None,
        }
    }
    calls = {"keras": lambda a: model.predict_on_batch(a)}
    for key, (path, runtime, fmt, quantization, export_s) in exported.items():
        runner = load_exported(path, num_threads=args.threads)
        out = runner(x)[runner.metadata["heatmaps_output"]]
        calls[key] = runner
        rows[key] = {
            "family": label, "preset": preset, "params": params, "runtime": runtime, "format": fmt,
            "quantization": quantization, "size_bytes": os.path.getsize(path),
            "max_diff_rel": float(np.abs(out - reference).max() / span), "export_s": export_s,
            "int8": runner.metadata.get("int8"),
        }
    latency = time_interleaved(calls, x, args.runs, args.warmup)
    for key, row in rows.items():
        row["latency_ms"] = latency[key]
        row["size_vs_keras"] = row["size_bytes"] / keras_size
        row["speedup_vs_keras"] = latency["keras"] / latency[key]
        print(f"  {label} {row['runtime']} {row['quantization'] or 'float32'}: {latency[key]:.1f} ms", flush=True)
    for path in [p for p, *_ in exported.values()] + [weights]:
        for p in (path, path + ".json"):
            if os.path.exists(p):
                os.remove(p)
    return list(rows.values()) + failed


def markdown(rows, threads):
    lines = [
        f"| model | runtime | weights | size (MB) | size / Keras | latency (ms, batch 1, {threads} thr) "
        "| speed-up vs Keras | max abs diff / range | export (s) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['family']} | {r['runtime']} | {r['quantization'] or 'float32'} | - | - | - | - | "
                         f"failed: {r['error'][:80]} | - |")
            continue
        export = "" if r["export_s"] is None else f"{r['export_s']:.0f}"
        lines.append(
            f"| {r['family']} | {r['runtime']} | {r['quantization'] or 'float32'} | {r['size_bytes'] / 1e6:.1f} | "
            f"{r['size_vs_keras']:.2f} | {r['latency_ms']:.1f} | {r['speedup_vs_keras']:.2f}x | "
            f"{r['max_diff_rel']:.1e} | {export} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="vitpose,cpn,cpm,hourglass")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per runtime (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--calibration", type=int, default=16, help="int8 calibration crops (COCO samples)")
    parser.add_argument("--onnx-int8", action="store_true", help="also ONNX int8 (QDQ)")
    parser.add_argument("--json", default=os.path.join(HERE, "bench_export.json"))
    parser.add_argument("--memory-gb", type=float, default=_default_memory_gb(),
                        help="memory guard of each export process (default 80%% of available memory)")
    parser.add_argument("--export-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_one:
        export_one(*json.loads(args.export_one))
        return

    import keras

    if keras.backend.backend() != "tensorflow":
        sys.exit("bench_export needs KERAS_BACKEND=tensorflow")
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for family in args.families.split(","):
            print(f"{family}:", flush=True)
            rows.extend(bench_family(family.strip(), args, workdir))
            keras.backend.clear_session()
    table = markdown(rows, args.threads)
    print()
    print(table)
    import platform

    from keras_pose.utils.file_utils import atomic_write

    result = {
        "memory_guard_gb": args.memory_gb,
        "machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "platform": platform.platform(),
                    "processor": platform.processor(), "load_average_at_end": list(os.getloadavg())},
        "runs": args.runs,
        "warmup": args.warmup,
        "calibration_samples": args.calibration,
        "rows": rows,
        "markdown": table,
    }
    with atomic_write(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
