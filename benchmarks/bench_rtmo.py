"""RTMO-s end to end: keras-pose's `RTMO` (TensorFlow, JAX, PyTorch backends) against mmpose 1.3.2's, one run.

    python benchmarks/bench_rtmo.py [--rounds 9] [--inner 5] [--backends tensorflow,jax,torch]
        [--mmpose-python /work/mmpose-venv/bin/python] [--image tests/data/coco/000000000785.jpg]
        [--markdown benchmarks/results/bench_rtmo.md] [--json benchmarks/results/bench_rtmo.json]

One image, end to end, from the decoded image to the people: 640x640
letterbox (aspect kept, centred, padded with 114), forward, decoding (score
threshold 0.1, NMS IoU 0.65, DCC keypoints) and boxes / keypoints mapped
back to image pixels. keras-pose: ``RTMO.predict_keypoints(rgb_array)``;
mmpose: its config's test pipeline + ``model.test_step``
(`reference_rtmo.py`, run by mmpose's own virtual environment's python:
mmpose is never a dependency of keras-pose).

Same weights on both sides: the synthetic RTMO-s checkpoint of the golden
case (tests/golden/rtmo/rtmo_s_coco: mmpose's state_dict names and shapes,
seeded values, saved as the released file is saved) is written once; mmpose
loads it with ``load_checkpoint(strict=True)``, keras-pose converts it with
``keras_pose.conversion.convert_checkpoint``. Synthetic weights find
synthetic "people" (86 instances on the sample image, most boxes
degenerate): enough to check both sides find the same instances with the
same scores, boxes and keypoints; speed does not depend on the values.

Timing: every contender is a persistent worker process (one per Keras
backend, ``KERAS_BACKEND`` set; one mmpose), loaded and warmed up before
timing. Round r asks every worker in turn (order rotated per round) for
``--inner`` timed calls; a contender's figure is the median over rounds of
its per-round medians, and the ratio is the median over rounds of
(keras-pose img/s / mmpose img/s) within the same round (> 1: keras-pose
faster). Only one worker computes at a time (the others wait on stdin).
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_IMAGE = os.path.join(REPO, "tests", "data", "coco", "000000000785.jpg")
DEFAULT_MMPOSE_PYTHON = "/work/mmpose-venv/bin/python"
# The golden case's tolerances (tests/golden/rtmo/rtmo_s_coco/meta.json "tolerance").
SCORE_ATOL, BOX_ATOL, BOX_RTOL, KEYPOINT_ATOL = 1e-4, 0.05, 1e-4, 0.05


# ------------------------------------------------------------------ keras-pose worker
def keras_worker(args):
    """Convert the checkpoint, predict once (the people), then answer `time N` lines (protocol of reference_rtmo)."""
    start = time.perf_counter()
    import keras
    import numpy as np

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras_pose
    from keras_pose.conversion import convert_checkpoint
    from keras_pose.utils.image_io import read_image

    with tempfile.TemporaryDirectory() as tmp:
        task = convert_checkpoint(args.checkpoint, output_dir=os.path.join(tmp, "preset"))
    image = read_image(args.image)  # RGB uint8 (the task's preprocessor makes the BGR input)

    result = task.predict_keypoints(image)  # warm-up (traces the end-to-end graph), and the people found
    boxes = np.asarray(result.boxes, np.float64)
    people = {
        "bboxes": np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], -1).tolist(),
        "bbox_scores": np.asarray(result.box_scores, np.float64).tolist(),
        "keypoints": np.asarray(result.keypoints, np.float64).tolist(),
        "keypoint_scores": np.asarray(result.scores, np.float64).tolist(),
    }
    print("READY " + json.dumps({
        "versions": {"keras": keras.__version__, "keras_pose": getattr(keras_pose, "__version__", "?"),
                     "backend": backend},
        "model": task.name, "load_s": time.perf_counter() - start, "people": people}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        times = []
        for _ in range(int(command[1])):
            t0 = time.perf_counter()
            task.predict_keypoints(image)
            times.append(time.perf_counter() - t0)
        print("TIMES " + json.dumps(times), flush=True)


# ------------------------------------------------------------------ driver
class Worker:
    def __init__(self, name, cmd, env):
        self.name = name
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.ready = None

    def read(self, prefix):
        for line in self.proc.stdout:
            if line.startswith(prefix + " "):
                return json.loads(line[len(prefix) + 1:])
        tail = "\n".join(self.proc.stderr.read().strip().splitlines()[-8:])
        raise RuntimeError(f"{self.name} exited {self.proc.wait()} before {prefix}:\n{tail}")

    def time(self, n):
        self.proc.stdin.write(f"time {n}\n")
        self.proc.stdin.flush()
        return self.read("TIMES")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except Exception:  # noqa: BLE001
                self.proc.kill()


def write_checkpoint(directory):
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from pose_testing.rtmo_golden import write_checkpoint as write

    return str(write(directory))


def compare_people(reference, port):
    """Same instances, in the same order (both sorted by score): counts and max|diff| per output."""
    import numpy as np

    n_ref, n_port = len(reference["bbox_scores"]), len(port["bbox_scores"])
    out = {"people_mmpose": n_ref, "people_keras_pose": n_port}
    if n_ref != n_port or n_ref == 0:
        out["same_people"] = False
        return out
    ref = {k: np.asarray(v) for k, v in reference.items()}
    got = {k: np.asarray(v) for k, v in port.items()}
    diffs = {k: float(np.abs(got[k] - ref[k]).max()) for k in ref}
    ok = (diffs["bbox_scores"] <= SCORE_ATOL and diffs["keypoint_scores"] <= SCORE_ATOL
          and bool(np.all(np.abs(got["bboxes"] - ref["bboxes"]) <= BOX_ATOL + BOX_RTOL * np.abs(ref["bboxes"])))
          and diffs["keypoints"] <= KEYPOINT_ATOL)
    out.update({f"max_abs_diff_{k}": v for k, v in diffs.items()})
    out["same_people"] = bool(ok)
    return out


def markdown(report, command):
    lines = [
        f"# RTMO-s end to end: keras-pose vs mmpose {report['mmpose']['versions'].get('mmpose', '?')}",
        "",
        f"Date: {report['date']}. Load average (1/5/15 min) at start {report['loadavg_start']}, at end "
        f"{report['loadavg_end']} (shared {os.cpu_count()}-core machine, other sessions running). "
        f"Threads per side: {report['threads']} (torch.set_num_threads, TensorFlow intra-op; JAX's XLA pool is "
        "not limited).",
        "",
        f"Command: `{command}`",
        "",
        f"One image ({os.path.relpath(report['image'], REPO)}, {report['image_shape']}), end to end: 640x640 "
        "letterbox, forward, decoding (score threshold 0.1, NMS 0.65, DCC keypoints), back to image pixels. "
        f"Medians over {report['rounds']} interleaved rounds of {report['inner']} calls each; ratio = median over "
        "rounds of keras-pose img/s / mmpose img/s in the same round (> 1: keras-pose faster).",
        "",
        "| Keras backend | keras-pose img/s | mmpose img/s (same run) | ratio keras-pose / mmpose | same people | "
        "people | max abs diff: box scores / boxes (px) / keypoints (px) / keypoint scores |",
        "| --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for backend, row in report["backends"].items():
        if "error" in row:
            lines.append(f"| {backend} | error: {row['error']} | | | | | |")
            continue
        a = row["agreement"]
        diffs = " / ".join(f"{a.get('max_abs_diff_' + k, float('nan')):.2e}"
                           for k in ("bbox_scores", "bboxes", "keypoints", "keypoint_scores"))
        lines.append(f"| {backend} | {row['img_per_s']:.2f} | {report['mmpose']['img_per_s']:.2f} | "
                     f"{row['ratio']:.2f}x | {'yes' if a['same_people'] else 'NO'} | "
                     f"{a['people_keras_pose']} vs {a['people_mmpose']} | {diffs} |")
    lines += [
        "",
        f"mmpose side: {json.dumps(report['mmpose']['versions'])}, config {report['mmpose']['config']}, "
        f"run by {report['mmpose_python']}; per-round img/s {report['mmpose']['per_round_img_per_s']}.",
        "",
        "Weights: the synthetic RTMO-s checkpoint of tests/golden/rtmo/rtmo_s_coco (mmpose names and shapes, "
        "seeded values), loaded by mmpose with load_checkpoint(strict=True) and converted by "
        "keras_pose.conversion.convert_checkpoint. With these weights the \"people\" are synthetic (most boxes "
        "degenerate); they are compared instance by instance, in score order, within the golden case's "
        "tolerances (scores 1e-4, boxes 0.05 px + 1e-4 rel, keypoints 0.05 px). Speed does not depend on the values.",
    ]
    for backend, row in report["backends"].items():
        if "error" not in row:
            lines.append(f"\n{backend}: per-round img/s {row['per_round_img_per_s']}, per-round ratios "
                         f"{row['per_round_ratio']}, worker load {row['load_s']:.1f} s.")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--mmpose-python", default=DEFAULT_MMPOSE_PYTHON)
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.worker:
        return keras_worker(args)

    command = "python " + " ".join([os.path.relpath(__file__, REPO)] + sys.argv[1:])
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    tmp = tempfile.mkdtemp(prefix="bench_rtmo_")
    checkpoint = write_checkpoint(pathlib.Path(tmp))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    env.pop("KERAS_BACKEND", None)
    workers = {"mmpose": Worker("mmpose", [args.mmpose_python, os.path.join(HERE, "reference_rtmo.py"),
                                           "--checkpoint", checkpoint, "--image", args.image,
                                           "--threads", str(args.threads)], env)}
    backends = [b for b in args.backends.split(",") if b]
    for backend in backends:
        workers[backend] = Worker(backend, [sys.executable, os.path.abspath(__file__), "--worker", "--checkpoint",
                                            checkpoint, "--image", args.image, "--threads", str(args.threads)],
                                  {**env, "KERAS_BACKEND": backend})
    errors = {}
    for name, worker in workers.items():
        try:
            worker.ready = worker.read("READY")
            print(f"[bench_rtmo] {name} ready ({worker.ready['load_s']:.1f} s, "
                  f"{len(worker.ready['people']['bbox_scores'])} people)", flush=True)
        except RuntimeError as error:
            errors[name] = str(error)
            print(f"[bench_rtmo] {name} failed: {error}", flush=True)
    if "mmpose" in errors:
        for worker in workers.values():
            worker.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit(f"mmpose reference did not run:\n{errors['mmpose']}")
    live = [name for name in workers if name not in errors]
    per_round = {name: [] for name in live}
    for r in range(args.rounds):
        order = live[r % len(live):] + live[:r % len(live)]
        for name in order:
            per_round[name].append(statistics.median(workers[name].time(args.inner)))
        print(f"[bench_rtmo] round {r + 1}: " + ", ".join(f"{n} {1 / per_round[n][-1]:.2f} img/s" for n in live),
              flush=True)
    for worker in workers.values():
        worker.close()
    shutil.rmtree(tmp, ignore_errors=True)

    import numpy as np
    from PIL import Image

    image_shape = list(np.asarray(Image.open(args.image)).shape)
    ref = workers["mmpose"].ready
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loadavg_start": loadavg_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()], "threads": args.threads, "rounds": args.rounds,
        "inner": args.inner, "image": os.path.abspath(args.image), "image_shape": image_shape,
        "mmpose_python": args.mmpose_python,
        "mmpose": {"versions": ref["versions"], "config": ref["config"], "load_s": ref["load_s"],
                   "img_per_s": 1 / statistics.median(per_round["mmpose"]),
                   "per_round_img_per_s": [round(1 / t, 3) for t in per_round["mmpose"]]},
        "backends": {},
    }
    for backend in backends:
        if backend in errors:
            report["backends"][backend] = {"error": errors[backend].splitlines()[-1][:200]}
            continue
        ratios = [m / k for k, m in zip(per_round[backend], per_round["mmpose"])]
        report["backends"][backend] = {
            "img_per_s": 1 / statistics.median(per_round[backend]), "ratio": statistics.median(ratios),
            "per_round_img_per_s": [round(1 / t, 3) for t in per_round[backend]],
            "per_round_ratio": [round(x, 3) for x in ratios], "load_s": workers[backend].ready["load_s"],
            "versions": workers[backend].ready["versions"],
            "agreement": compare_people(ref["people"], workers[backend].ready["people"]),
        }
    text = markdown(report, command)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
