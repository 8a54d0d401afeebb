"""keras-pose against its peers, in one command: HF transformers VitPose and mmpose 1.3.2.

Measured on this machine in one run (fp32, random weights, same architecture
on both sides; ``BENCH_THREADS`` threads, default 2):

- ViTPose-B forward, batch 1 and 8: keras-pose on TensorFlow, JAX and
  PyTorch (``predict_on_batch``) vs HF ``VitPoseForPoseEstimation``
  (``inference_mode``); cold start (process start -> first prediction),
  ``import`` time and peak RSS of that process (whole process, imports
  included; whether TensorFlow got imported);
- ViTPose-S training step, batch 8 (keras-pose ``train_on_batch`` with Adam
  and the codec's targets vs HF forward + MSE + backward + Adam), peak RSS;
- memory against the issue's bounds: each process's RSS right after its
  imports (keras_pose and the backend / torch and transformers) and its peak
  above that, as a ratio to HF's (inference: at most HF's plus the backend's
  own import cost, i.e. ratio <= 1; training: ratio <= 1.5);
- end to end on the sample image with N = 1 / 4 / 16 person boxes, no flip
  test: ``predict_keypoints`` (TensorFlow backend) vs HF
  ``VitPoseImageProcessor`` + model + ``post_process_pose_estimation``;
- GEMM peak: best float32 2048^3 matmul per library, and the TensorFlow
  forward's FLOP rate as a % of TensorFlow's GEMM peak;
- CPM and Hourglass-52 forward, batch 1 and 8: keras-pose (TensorFlow) vs
  mmpose 1.3.2 from its own virtual environment (``--mmpose-python``,
  default /work/mmpose-venv/bin/python; rows skipped with a message when it
  does not import).

Every measurement runs in a fresh subprocess (one backend per process; RSS
per process). Repeats are interleaved: round r runs every contender once
(each a warm-up plus ``--inner`` timed calls, median), and a figure is the
median over ``--rounds`` rounds. Ratios are "reference time / keras-pose
time" (> 1: keras-pose is faster).

    python benchmarks/bench_vs_reference.py [--quick] [--rounds 3] [--inner 3]
        [--out bench_results.json] [--markdown bench_results.md]

``--quick``: one round, one timed call, ViTPose-S forward at batch 1 and 2,
training batch 2, N = 1 / 4 boxes, 1024^3 GEMM: a sanity run of every path.
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
BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_MMPOSE_PYTHON = "/work/mmpose-venv/bin/python"


def run_task(python, task, arguments, backend=None, timeout=1800):
    """Run one `reference_tasks.py` task in a fresh process; its result dict or {"error": ...}."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    env.pop("KERAS_BACKEND", None)
    if backend:
        env["KERAS_BACKEND"] = backend
    cmd = [python, os.path.join(HERE, "reference_tasks.py"), task, json.dumps(arguments)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1][len("RESULT ") :])


def _median_results(rounds):
    """Per key, the median over rounds of numeric values (the first value otherwise)."""
    rounds = [r for r in rounds if "error" not in r]
    if not rounds:
        return None
    merged = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds if key in r]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        merged[key] = statistics.median(values) if numeric else values[0]
    return merged


def mmpose_available(python):
    if not os.path.isfile(python):
        return f"{python} not found (create the mmpose 1.3.2 venv, see the docstring)"
    proc = subprocess.run([python, "-c", "import mmpose, mmcv, torch; print(mmpose.__version__)"],
                          capture_output=True, text=True)
    if proc.returncode:
        return "mmpose does not import: " + proc.stderr.strip().splitlines()[-1]
    return None


def plan(args):
    """[(label, python, task, arguments, backend)] in the order of one round."""
    quick = args.quick
    size = "small" if quick else "base"
    batches = [1, 2] if quick else [1, 8]
    train_batch = 2 if quick else 8
    boxes = [1, 4] if quick else [1, 4, 16]
    inner = {"repeats": args.inner}
    py = sys.executable
    jobs = []
    for backend in BACKENDS:
        jobs.append((f"gemm/{backend}", py, "gemm", {"n": 1024 if quick else 2048}, backend))
    for backend in BACKENDS:
        jobs.append((f"forward/{backend}", py, "keras_vitpose_forward", {"size": size, "batches": batches, **inner},
                     backend))
    jobs.append(("forward/hf", py, "hf_vitpose_forward", {"size": size, "batches": batches, **inner}, None))
    for backend in BACKENDS:
        jobs.append((f"train/{backend}", py, "keras_vitpose_train", {"batch": train_batch, **inner}, backend))
    jobs.append(("train/hf", py, "hf_vitpose_train", {"batch": train_batch, **inner}, None))
    jobs.append(("end_to_end/tensorflow", py, "keras_end_to_end", {"size": size, "boxes": boxes, **inner},
                 "tensorflow"))
    jobs.append(("end_to_end/hf", py, "hf_end_to_end", {"size": size, "boxes": boxes, **inner}, None))
    if args.mmpose_skip_reason is None:
        fam_batches = [1] if quick else [1, 8]
        for family in ("cpm", "hourglass"):
            jobs.append((f"{family}/tensorflow", py, "keras_family_forward",
                         {"family": family, "batches": fam_batches, **inner}, "tensorflow"))
            jobs.append((f"{family}/mmpose", args.mmpose_python, "mmpose_family_forward",
                         {"family": family, "batches": fam_batches, **inner}, None))
    return jobs, {"size": size, "batches": batches, "train_batch": train_batch, "boxes": boxes}


def _fmt(value, unit="s"):
    return "n/a" if value is None else f"{value:.3f} {unit}" if unit == "s" else f"{value:.0f} {unit}"


def _ratio(reference, ours):
    return None if reference is None or ours is None or ours == 0 else reference / ours


def _get(results, label, key):
    entry = results.get(label) or {}
    return entry.get(key) if isinstance(entry, dict) else None


def memory_row(lines, cols, results, title, group, bound):
    """Peak RSS minus the RSS right after the imports, per column, with the ratio to HF's.

    The issue's bounds: inference peak at most HF's plus the backend's own
    import cost (ratio <= 1.0 here), training peak at most 1.5x HF's (ratio
    <= 1.5 on this row; the whole-process peaks are the rows above).
    """

    def above(col):
        peak, base = _get(results, f"{group}/{col}", "peak_rss_mb"), _get(results, f"{group}/{col}", "import_rss_mb")
        return None if peak is None or base is None else peak - base

    ref = above("hf")
    cells = []
    for col, _ in cols:
        value = above(col)
        r = _ratio(value, ref) if col != "hf" else None  # ours / HF's: lower is better
        cells.append(_fmt(value, "MB") + (f" ({r:.2f}x HF, bound {bound}x)" if r else ""))
    lines.append(f"| {title} | {' | '.join(cells)} |")


def markdown(results, settings, notes):
    cols = [("tensorflow", "keras-pose TF"), ("jax", "keras-pose JAX"), ("torch", "keras-pose PyTorch"),
            ("hf", "HF transformers")]
    size = "ViTPose-B" if settings["size"] == "base" else "ViTPose-S"
    lines = [f"| what | {' | '.join(c[1] for c in cols)} |", "|---|" + "---|" * len(cols)]

    def row(title, group, key, unit="s", ratio=True):
        cells = []
        ref = _get(results, f"{group}/hf", key)
        for col, _ in cols:
            value = _get(results, f"{group}/{col}", key)
            cell = _fmt(value, unit)
            r = _ratio(ref, value) if col != "hf" and ratio else None
            cells.append(cell + (f" ({r:.2f}x)" if r else ""))
        lines.append(f"| {title} | {' | '.join(cells)} |")

    for batch in reversed(settings["batches"]):
        row(f"{size} forward, batch {batch}", "forward", f"forward_b{batch}_s")
    row(f"ViTPose-S training step, batch {settings['train_batch']}", "train", "train_step_s")
    row(f"peak RSS, inference (process, batches {settings['batches']})", "forward", "peak_rss_mb", "MB", False)
    row(f"peak RSS, training ViTPose-S batch {settings['train_batch']}", "train", "peak_rss_mb", "MB", False)
    row("RSS after the imports, inference process", "forward", "import_rss_mb", "MB", False)
    row("RSS after the imports, training process", "train", "import_rss_mb", "MB", False)
    memory_row(lines, cols, results, "inference peak above the imports (ratio to HF)", "forward", 1.0)
    memory_row(lines, cols, results, "training peak above the imports (ratio to HF)", "train", 1.5)
    row("import (keras_pose / transformers)", "forward", "import_s", "s", False)
    row("cold process to first prediction", "forward", "cold_start_to_first_prediction_s", "s", False)
    tf_imported = {b: _get(results, f"forward/{b}", "tensorflow_imported") for b in BACKENDS}
    lines.append("| TensorFlow imported by the inference process | "
                 + " | ".join(str(tf_imported.get(c)) if c in BACKENDS else "-" for c, _ in cols) + " |")
    lines += ["", "| end to end (sample image, no flip test) | keras-pose TF | HF transformers | ratio |", "|---|---|---|---|"]
    for n in settings["boxes"]:
        ours = _get(results, "end_to_end/tensorflow", f"end_to_end_n{n}_s")
        ref = _get(results, "end_to_end/hf", f"end_to_end_n{n}_s")
        r = _ratio(ref, ours)
        lines.append(f"| N = {n} boxes | {_fmt(ours)} | {_fmt(ref)} | {f'{r:.2f}x' if r else 'n/a'} |")
    lines += ["", "| GEMM float32 peak | GFLOP/s |", "|---|---|"]
    for backend in BACKENDS:
        lines.append(f"| {backend} | {_fmt(_get(results, f'gemm/{backend}', 'gflops'), 'GFLOP/s')} |")
    peak = _get(results, "gemm/tensorflow", "gflops")
    for backend in BACKENDS:
        flops = _get(results, f"forward/{backend}", "flops_per_image")
        batch = settings["batches"][-1]
        t = _get(results, f"forward/{backend}", f"forward_b{batch}_s")
        if flops and t and peak:
            rate = flops * batch / t / 1e9
            lines.append(f"| {size} forward batch {batch} on {backend}: {rate:.0f} GFLOP/s = "
                         f"{100 * rate / peak:.0f} % of the TF GEMM peak | |")
    if "mmpose" not in notes:
        lines += ["", "| forward (TF) vs mmpose 1.3.2 | batch | keras-pose TF | mmpose | ratio |", "|---|---|---|---|---|"]
        for family in ("cpm", "hourglass"):
            for key in sorted(k for k in (results.get(f"{family}/tensorflow") or {}) if k.startswith("forward_b")):
                ours, ref = _get(results, f"{family}/tensorflow", key), _get(results, f"{family}/mmpose", key)
                r = _ratio(ref, ours)
                lines.append(f"| {family} | {key[9:-2]} | {_fmt(ours)} | {_fmt(ref)} | {f'{r:.2f}x' if r else 'n/a'} |")
    if notes:
        lines += [""] + [f"- {k}: {v}" for k, v in notes.items()]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short sanity run of every path")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median over rounds)")
    parser.add_argument("--inner", type=int, default=3, help="timed calls per process (median)")
    parser.add_argument("--mmpose-python", default=DEFAULT_MMPOSE_PYTHON)
    parser.add_argument("--out", default="bench_vs_reference.json")
    parser.add_argument("--markdown", default="bench_vs_reference.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.inner = 1, 1
    notes = {}
    args.mmpose_skip_reason = mmpose_available(args.mmpose_python)
    if args.mmpose_skip_reason:
        notes["mmpose"] = "rows skipped: " + args.mmpose_skip_reason
        print("mmpose rows skipped: " + args.mmpose_skip_reason, flush=True)
    try:
        import transformers  # noqa: F401
    except ImportError:
        notes["hf"] = "HF transformers is not installed (pip install keras-pose[bench]); its columns are n/a"
    jobs, settings = plan(args)
    per_round = {label: [] for label, *_ in jobs}
    started = time.time()
    for r in range(args.rounds):
        for label, python, task, arguments, backend in jobs:
            t0 = time.perf_counter()
            result = run_task(python, task, arguments, backend)
            per_round[label].append(result)
            status = result.get("error", "ok")
            print(f"round {r + 1}/{args.rounds} {label}: {status} ({time.perf_counter() - t0:.0f} s)", flush=True)
    results = {}
    for label, rounds in per_round.items():
        merged = _median_results(rounds)
        results[label] = merged if merged is not None else {"error": rounds[-1].get("error")}
        if merged is None:
            notes[label] = "failed: " + str(rounds[-1].get("error"))[:300]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    notes["machine"] = (f"{os.cpu_count()} CPUs, load average at the end {load}, {args.rounds} rounds x "
                        f"{args.inner} timed calls, BENCH_THREADS={os.environ.get('BENCH_THREADS', '2')}, "
                        f"{time.time() - started:.0f} s in all")
    table = markdown(results, settings, notes)
    from keras_pose.utils.file_utils import atomic_write

    with atomic_write(args.out, "w") as f:
        json.dump({"settings": settings, "results": results, "notes": notes}, f, indent=1)
    with atomic_write(args.markdown, "w") as f:
        f.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
