"""Size, CPU latency and accuracy of exported pose models: Keras (TF) vs LiteRT vs ONNX Runtime.

For ViTPose-S (256x192) (and, with ``--families``, the smallest configuration
of every other family: CPN-50 256x192, CPM 256x192, Hourglass-52 256x256),
built at full size from the preset config (no download), this measures in
one run on this CPU:

- heatmaps with peaks: the model is first fitted for ``--fit-steps`` steps on
  the 12 real COCO sample people (tests/data/coco; ViTPose: the head only,
  on the frozen backbone's features; the backbone keeps its random weights),
  so argmax decoding, and keypoint errors, can mean something (random-weight
  heatmaps have no peaks). The JSON records the median peak contrast
  (max - median) / std of the Keras heatmaps: on a 2-core machine 60 head
  steps on the random ViT-S features reach only ~2 (flat maps), and the
  keypoint columns then measure argmax flips between near-equal maxima, not
  the conversion; load trained weights with ``--weights`` for real keypoint
  errors (tests/test_export.py measures them on small fitted models);
- accuracy of each export against the Keras float32 model on the 24 real
  COCO sample crops (12 people + mirrors, cropped the inference way):
  keypoint error in input px (the codec's decode, mean / p95 / max),
  argmax-decode error, heatmap max abs / rms error as % of the Keras
  heatmap range;
- latency: median of ``--runs`` batch-1 calls after ``--warmup``, timed
  round-robin across every runtime (one call of each per round, so load from
  other processes on a shared machine falls on all of them alike), with
  ``--threads`` threads everywhere; reported as ratios vs Keras float32 and
  vs LiteRT float16 measured in the same run;
- file size, export time (each export in its own process under a memory
  guard, ``--memory-gb``, so a converter running out of memory fails its
  row only).

Variants (``--variants``, ``format:quantization``): ``tflite:float32``,
``tflite:float16``, ``tflite:int8`` (static int8, ``int8_float_ops="auto"``),
``tflite:int8_full`` (every op int8: ``int8_float_ops=()``, the previous
default), ``tflite:dynamic_int8``, ``onnx:float32``, ``onnx:int8``. int8 is
calibrated on the COCO and OCHuman sample crops. Writes JSON and Markdown.

    python benchmarks/bench_export.py [--families vitpose] [--runs 30] [--threads 2]
        [--variants tflite:float32,tflite:float16,tflite:int8,tflite:dynamic_int8]
        [--json bench_export.json] [--markdown bench_export.md]
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
OCHUMAN_JSON = os.path.join(SHARED, "data", "ochuman", "test_ochuman.json")

FAMILIES = {
    "vitpose": ("ViTPose-S", "vitpose_small_coco_256x192"),
    "cpn": ("CPN-50", "cpn50_coco_256x192"),
    "cpm": ("CPM", "cpm_coco_256x192"),
    "hourglass": ("Hourglass-52", "hourglass52_coco_256x256"),
}
DEFAULT_VARIANTS = "tflite:float32,tflite:float16,tflite:int8,tflite:int8_full,tflite:dynamic_int8"
# Variant quantization -> export_model keyword arguments.
QUANT_KWARGS = {
    "float32": {},
    "float16": {"quantization": "float16"},
    "int8": {"quantization": "int8"},
    "int8_full": {"quantization": "int8", "int8_float_ops": ()},
    "dynamic_int8": {"quantization": "dynamic_int8"},
}


def build(family):
    """A full-size model of the family's smallest preset, random weights."""
    import keras

    import keras_pose

    keras.utils.set_random_seed(0)
    entry = keras_pose.get_preset_entry(FAMILIES[family][1])
    cls = getattr(keras_pose, entry.task_class)
    return cls.from_checkpoint_config(**entry.config, preprocessing=entry.preprocessing, decoding=entry.decoding)


def fit_head(model, steps, learning_rate=5e-3):
    """Fit the head on the COCO sample people (backbone frozen) so the heatmaps have peaks.

    With a ``backbone`` / ``head`` pair (ViTPose) the backbone features of the
    12 crops are computed once and only the head is fitted on them (fast);
    other families are fitted whole for ``steps`` steps.
    """
    import keras

    from keras_pose.data import model_dataset
    from keras_pose.datasets import load_coco_keypoints

    if steps <= 0:
        return
    data = load_coco_keypoints(COCO_JSON)
    images, targets = next(
        iter(model_dataset(model, data, batch_size=len(data), training=True, augment=False, shuffle=False))
    )
    backbone, head = getattr(model, "backbone", None), getattr(model, "head", None)
    if backbone is None or head is None:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        model.fit(images, targets, batch_size=len(data), epochs=steps, verbose=0, shuffle=False)
        return
    features = backbone.predict(images, batch_size=4, verbose=0)
    inputs = keras.Input(features.shape[1:])
    outputs = head(inputs)
    if hasattr(model, "heatmap_output"):
        outputs = model.heatmap_output(outputs)
    head_model = keras.Model(inputs, outputs)
    head_model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    heatmaps = targets["heatmaps"] if isinstance(targets, dict) else targets
    head_model.fit(features, heatmaps, batch_size=len(data), epochs=steps, verbose=0, shuffle=False)


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


def export_one(family, fmt, quantization, path, calibration_file, memory_gb, weights):
    """Child process: build the model, load the parent's weights, export one variant."""
    _memory_guard(memory_gb)
    from keras_pose.export import export_model

    model = build(family)
    model.load_weights(weights)
    kwargs = dict(QUANT_KWARGS[quantization])
    if kwargs.get("quantization") == "int8":
        crops = np.load(calibration_file)
        kwargs.update(representative_dataset=crops, num_calibration_samples=len(crops))
    start = time.perf_counter()
    export_model(model, path, **kwargs)
    print(json.dumps({"export_s": time.perf_counter() - start}))


def _default_memory_gb():
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f}
        return 0.8 * info["MemAvailable"] / 1e6
    except (OSError, KeyError, ValueError):
        return 16.0


def _accuracy(model, heatmaps, reference, reference_keypoints):
    """Errors of exported heatmaps vs Keras on the evaluation crops (px: input pixels)."""
    span = float(np.ptp(reference)) or 1.0
    keypoints, _ = model.codec.decode(heatmaps)
    err = np.linalg.norm(keypoints - reference_keypoints, axis=-1)
    argmax = np.linalg.norm(model.codec.decode_argmax(heatmaps)[0] - model.codec.decode_argmax(reference)[0], axis=-1)
    return {
        "heatmap_max_err_pct": 100.0 * float(np.abs(heatmaps - reference).max()) / span,
        "heatmap_rms_err_pct": 100.0 * float(np.sqrt(np.mean((heatmaps - reference) ** 2))) / span,
        "keypoint_err_px_mean": float(err.mean()),
        "keypoint_err_px_p95": float(np.percentile(err, 95)),
        "keypoint_err_px_max": float(err.max()),
        "argmax_err_px_mean": float(argmax.mean()),
    }


def _export_variants(family, variants, args, workdir, weights, calibration_file):
    """Export every variant in its own process; returns ({key: (path, fmt, quantization, export_s)}, failures)."""
    import subprocess

    label, preset = FAMILIES[family]
    exported, failed = {}, []
    for fmt, quantization in variants:
        key = f"{fmt}_{quantization}"
        path = os.path.join(workdir, f"{family}_{key}.{fmt}")
        command = [sys.executable, os.path.abspath(__file__), "--export-one",
                   json.dumps([family, fmt, quantization, path, calibration_file, args.memory_gb, weights])]
        result = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if result.returncode != 0 or not lines:
            tail = (result.stdout + result.stderr).strip().splitlines()
            reason = next((line for line in reversed(tail) if "memory guard" in line or "Error" in line), None)
            if reason is None:
                killed = " (killed: out of memory?)" if result.returncode < 0 else ""
                reason = f"exit code {result.returncode}{killed}"
            print(f"  {label} {key}: export failed: {reason}", flush=True)
            failed.append({"family": label, "preset": preset, "variant": key, "format": fmt,
                           "quantization": quantization, "error": reason[:500]})
            continue
        exported[key] = (path, fmt, quantization, json.loads(lines[-1])["export_s"])
        print(f"  {label} {key}: {os.path.getsize(path) / 1e6:.1f} MB (export {exported[key][-1]:.0f} s)", flush=True)
    return exported, failed


def bench_family(family, args, workdir):
    import tensorflow as tf

    from keras_pose.export import load_exported, representative_crops

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    label, preset = FAMILIES[family]
    variants = [tuple(v.split(":")) for v in args.variants.split(",") if v]

    model = build(family)
    if args.weights:
        model.load_weights(args.weights)  # e.g. saved from an earlier fit: fitting is the slow part on small CPUs
        print(f"  loaded {args.weights}", flush=True)
    else:
        start = time.perf_counter()
        fit_head(model, args.fit_steps)
        print(f"  fitted the head for {args.fit_steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
        if args.save_weights:
            model.save_weights(args.save_weights)
    params = int(model.count_params())
    weights = os.path.join(workdir, f"{family}.weights.h5")
    model.save_weights(weights)
    keras_size = os.path.getsize(weights)
    crops = representative_crops(model, COCO_JSON, num_samples=24)  # 12 people + mirrors
    calibration = np.concatenate([crops, representative_crops(model, OCHUMAN_JSON, num_samples=args.calibration)])
    calibration_file = os.path.join(workdir, "calibration.npy")
    np.save(calibration_file, calibration)
    reference = np.asarray(model.heatmaps_from_outputs(model.predict(crops, batch_size=1, verbose=0)), np.float32)
    reference_keypoints, _ = model.codec.decode(reference)
    flat = reference.reshape(len(reference), -1, reference.shape[-1])
    contrast = float(np.median((flat.max(1) - np.median(flat, 1)) / (flat.std(1) + 1e-9)))

    exported, failed = _export_variants(family, variants, args, workdir, weights, calibration_file)
    rows = {
        "keras": {"family": label, "preset": preset, "params": params, "variant": "keras_float32",
                  "runtime": "Keras (TF)", "format": "keras", "quantization": "float32", "size_bytes": keras_size,
                  "export_s": None, **_accuracy(model, reference, reference, reference_keypoints)}
    }
    calls = {"keras": lambda a: model.predict_on_batch(a)}
    for key, (path, fmt, quantization, export_s) in exported.items():
        runner = load_exported(path, num_threads=args.threads)
        heatmaps = np.concatenate([runner(crops[i : i + 1])[runner.metadata["heatmaps_output"]]
                                   for i in range(len(crops))])
        calls[key] = runner
        meta = runner.metadata
        rows[key] = {
            "family": label, "preset": preset, "params": params, "variant": key,
            "runtime": "ONNX Runtime" if fmt == "onnx" else "LiteRT", "format": fmt, "quantization": quantization,
            "size_bytes": os.path.getsize(path), "export_s": export_s,
            **_accuracy(model, heatmaps, reference, reference_keypoints),
            "quantization_details": meta.get(meta.get("quantization") or "", None),
        }
    latency = time_interleaved(calls, crops[:1], args.runs, args.warmup)
    fp16 = latency.get("tflite_float16")
    for key, row in rows.items():
        row["latency_ms"] = latency[key]
        row["size_vs_keras"] = row["size_bytes"] / keras_size
        row["speed_vs_keras"] = latency["keras"] / latency[key]
        row["speed_vs_tflite_fp16"] = None if fp16 is None else fp16 / latency[key]
        row["peak_contrast"] = contrast
        print(f"  {label} {key}: {latency[key]:.1f} ms, keypoints {row['keypoint_err_px_mean']:.2f} px", flush=True)
    for path in [p for p, *_ in exported.values()] + [weights, calibration_file]:
        for p in (path, path + ".json"):
            if os.path.exists(p):
                os.remove(p)
    return list(rows.values()) + failed


def markdown(rows, threads):
    lines = [
        f"| model | runtime | weights | size (MB) | latency (ms, batch 1, {threads} thr) | speed vs Keras fp32 "
        "| speed vs LiteRT fp16 | keypoint err px (mean / p95 / max) | argmax err px | heatmap err % of range "
        "(max / rms) | export (s) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['family']} | {r['format']} | {r['quantization']} | - | - | - | - | - | - | "
                         f"failed: {r['error'][:80]} | - |")
            continue
        export = "" if r["export_s"] is None else f"{r['export_s']:.0f}"
        vs16 = "-" if r["speed_vs_tflite_fp16"] is None else f"{r['speed_vs_tflite_fp16']:.2f}x"
        lines.append(
            f"| {r['family']} | {r['runtime']} | {r['quantization']} | {r['size_bytes'] / 1e6:.1f} | "
            f"{r['latency_ms']:.1f} | {r['speed_vs_keras']:.2f}x | {vs16} | "
            f"{r['keypoint_err_px_mean']:.2f} / {r['keypoint_err_px_p95']:.2f} / {r['keypoint_err_px_max']:.1f} | "
            f"{r['argmax_err_px_mean']:.2f} | {r['heatmap_max_err_pct']:.2f} / {r['heatmap_rms_err_pct']:.2f} | "
            f"{export} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="vitpose")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help=f"comma-separated format:quantization (quantization in {sorted(QUANT_KWARGS)})")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per runtime (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--fit-steps", dest="fit_steps", type=int, default=60,
                        help="head fitting steps on the COCO sample people (0: random weights)")
    parser.add_argument("--weights", default=None, help="load these .weights.h5 instead of fitting (one family)")
    parser.add_argument("--save-weights", dest="save_weights", default=None,
                        help="save the fitted weights here (reuse with --weights)")
    parser.add_argument("--calibration", type=int, default=10,
                        help="OCHuman sample crops added to the 24 COCO crops for int8 calibration")
    parser.add_argument("--json", default=os.path.join(HERE, "bench_export.json"))
    parser.add_argument("--markdown", default=None, help="also write the table here (default: <json>.md)")
    parser.add_argument("--memory-gb", type=float, default=_default_memory_gb(),
                        help="memory guard of each export process (default 80%% of available memory)")
    parser.add_argument("--export-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_one:
        export_one(*json.loads(args.export_one))
        return
    for variant in args.variants.split(","):
        fmt, _, quantization = variant.partition(":")
        if fmt not in ("tflite", "onnx") or quantization not in QUANT_KWARGS:
            sys.exit(f"unknown variant {variant!r}: use format:quantization, format tflite|onnx, quantization "
                     f"one of {sorted(QUANT_KWARGS)}")

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
        "fit_steps": args.fit_steps,
        "variants": args.variants,
        "rows": rows,
        "markdown": table,
    }
    with atomic_write(args.json, "w") as f:
        json.dump(result, f, indent=2)
    markdown_path = args.markdown or os.path.splitext(args.json)[0] + ".md"
    with atomic_write(markdown_path, "w") as f:
        f.write(f"Export benchmark ({args.threads} threads, median of {args.runs} interleaved batch-1 runs; "
                f"load average at end {os.getloadavg()[0]:.1f})\n\n{table}\n")
    print(f"\nwrote {args.json} and {markdown_path}")


if __name__ == "__main__":
    main()
