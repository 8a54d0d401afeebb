"""Memory and time of ViTPose attention types at 1/8 feature resolution (ViTPose paper, sec. 4.4).

ViTPose-B at 256 x 192, random weights, batch 1 (`--batch`) forward (`predict_on_batch`,
a compiled predict function) on this CPU, in one run:

- global attention at the usual 1/16 tokens (16 x 12, patch stride 16) for
  reference,
- at 1/8 tokens (32 x 24 = 768, patch 16 with stride 8 and padding 4):
  global, window, shifted window (alternating blocks) and shifted + pooling
  window attention, windows `--window` tokens (8 x 8: 4 x 3 windows).

Memory: each variant is built and run in its own process (so peaks do not
mix); "forward peak" is the process's peak RSS during two forwards minus its
RSS just before them (activations and workspace; the weights are already
there), "process peak" the whole process's. The attention-score tensor of
one block (float32, whole batch) is also given analytically:
heads x N x N (global) or heads x windows x Nw x (Nw [+ windows]).

Time: median of `--runs` forwards per variant, all variants built in one
process and timed round-robin (one call of each per round), so load from
other processes on a shared machine falls on every variant alike.

    python benchmarks/bench_vit_attention.py [--runs 5] [--threads 2] [--window 8] [--batch 1]
        [--json benchmarks/results/bench_vit_attention.json] [--markdown ...md]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

IMAGE_SIZE = (256, 192)
VARIANTS = {
    # name: (patch_stride, patch_padding, attention)
    "global 1/16": (16, 2, "global"),
    "global 1/8": (8, 4, "global"),
    "window 1/8": (8, 4, "window"),
    "shifted window 1/8": (8, 4, "shifted_window"),
    "shifted + pooling window 1/8": (8, 4, "shifted_pooling_window"),
}


def build(name, window):
    import keras_pose

    stride, padding, attention = VARIANTS[name]
    backbone = keras_pose.ViTPoseBackbone(
        image_size=IMAGE_SIZE, patch_stride=stride, patch_padding=padding, attention=attention,
        window_size=window, **keras_pose.models.vitpose.VIT_SIZES["base"],
    )
    # Heatmaps at 1/4: the classic head has one deconvolution on 1/8 tokens, two on 1/16.
    return keras_pose.ViTPose(backbone, deconv_filters=(256,) * (2 if stride == 16 else 1))


def score_bytes(model):
    """Float32 bytes of one block's attention scores (batch 1), the largest intermediate of attention."""
    from keras_pose.models.vitpose import ViTPoseWindowAttention

    backbone = model.backbone
    n, heads = backbone.grid_size[0] * backbone.grid_size[1], backbone.num_heads
    sizes = []
    for block in backbone.transformer_layers:
        attn = block.attention
        if isinstance(attn, ViTPoseWindowAttention):
            nw = attn.window[0] * attn.window[1]
            sizes.append(heads * attn.num_windows * nw * (nw + (attn.num_windows if attn.pooling else 0)) * 4)
        else:
            sizes.append(heads * n * n * 4)
    return max(sizes)


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(name, window, threads, batch):
    """Build one variant, run two forwards, print its memory figures as JSON."""
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    model = build(name, window)
    x = np.random.default_rng(0).standard_normal((batch, *IMAGE_SIZE, 3)).astype(np.float32)
    before = _rss_mb()
    base_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for _ in range(2):
        out = model.predict_on_batch(x)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "variant": name, "tokens": list(model.backbone.grid_size), "heatmaps": list(out.shape[1:3]),
        "params_m": model.count_params() / 1e6, "rss_before_forward_mb": before,
        "peak_before_forward_mb": base_peak, "process_peak_mb": peak,
        "forward_peak_mb": peak - before, "attention_scores_mb": batch * score_bytes(model) / 2**20,
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--json", default=os.path.join(HERE, "results", "bench_vit_attention.json"))
    parser.add_argument("--markdown", default=os.path.join(HERE, "results", "bench_vit_attention.md"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.window, args.threads, args.batch)

    rows = {}
    for name in VARIANTS:  # memory: one process per variant
        proc = subprocess.run([sys.executable, __file__, "--child", name, "--window", str(args.window),
                               "--threads", str(args.threads), "--batch", str(args.batch)],
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
        rows[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"[memory] {name}: forward peak {rows[name]['forward_peak_mb']:.0f} MB", flush=True)

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    models = {name: build(name, args.window) for name in VARIANTS}
    x = np.random.default_rng(0).standard_normal((args.batch, *IMAGE_SIZE, 3)).astype(np.float32)
    times = {name: [] for name in VARIANTS}
    for model in models.values():  # warm-up (tracing)
        model.predict_on_batch(x)
    for _ in range(args.runs):
        for name, model in models.items():
            start = time.perf_counter()
            model.predict_on_batch(x)
            times[name].append(time.perf_counter() - start)
    for name in VARIANTS:
        rows[name]["latency_ms_median"] = 1000 * statistics.median(times[name])
        rows[name]["latency_ms_all"] = [1000 * t for t in times[name]]
        print(f"[time] {name}: {rows[name]['latency_ms_median']:.0f} ms", flush=True)
    meta = {"image_size": list(IMAGE_SIZE), "model": "ViTPose-B", "batch": args.batch, "threads": args.threads,
            "window": args.window, "runs": args.runs, "backend": os.environ["KERAS_BACKEND"],
            "load_average_end": os.getloadavg()[0]}
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json + ".tmp", "w") as f:
        json.dump({"meta": meta, "rows": list(rows.values())}, f, indent=1)
    os.replace(args.json + ".tmp", args.json)
    base = rows["global 1/8"]
    lines = [
        f"ViTPose-B {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, batch {args.batch} forward, {args.threads} threads, "
        f"{meta['backend']} backend, window {args.window}x{args.window}; "
        f"load average at end {meta['load_average_end']:.1f}",
        "",
        "| attention | tokens | forward peak RSS (MB) | vs global 1/8 | attention scores / block, whole batch (MB) | "
        "latency (ms, median) | vs global 1/8 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['tokens'][0]}x{r['tokens'][1]} | {r['forward_peak_mb']:.0f} | "
            f"{r['forward_peak_mb'] / base['forward_peak_mb']:.2f}x | {r['attention_scores_mb']:.1f} | "
            f"{r['latency_ms_median']:.0f} | {r['latency_ms_median'] / base['latency_ms_median']:.2f}x |"
        )
    with open(args.markdown + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(args.markdown + ".tmp", args.markdown)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
