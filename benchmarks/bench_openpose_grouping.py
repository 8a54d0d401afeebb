"""OpenPose grouping: keras-pose's fast parser against the reference parser, same maps, same run.

The maps are the golden case tests/golden/openpose/grouping_coco18 (COCO
image 197388, 5 people, network-resolution heatmaps + PAFs), as they are
and tiled ``n x n`` (``--tiles``: 4, 9, ... times the people). Timed, in one
process, interleaved, median of ``--repeats``:

- ``reference``: controlnet-aux's ``Body.__call__`` (the pytorch-openpose
  parser) after its network, the network replaced by a module returning the
  maps (the image resize patched to identity, so the maps are the padded
  image's, as the golden case): upsampling (per-channel LANCZOS4) + peaks +
  PAF scores + assembly. Needs ``pip install controlnet-aux --no-deps``; if
  it is missing, keras-pose's exact port (`openpose_grouping_reference`) on
  the same upsampled maps stands in (and the report says so).
- ``fast``: the same upsampling (keras-pose's `upsample_maps`: one cv2 call
  for all channels, bitwise the per-channel calls, kept as cv2's float32,
  the same values as the reference's float64 maps) + `group_people(method="fast")`.
- grouping alone (the same float64 maps, already upsampled): the exact port
  vs the fast parser.

Every run checks that both give the same people (parts, positions, scores
within 1e-5). Prints a table and writes JSON with ``--out``.

    python benchmarks/bench_openpose_grouping.py [--tiles 1 2 3] [--repeats 5] [--out results.json]
"""

import argparse
import importlib
import importlib.util
import json
import os
import pathlib
import statistics
import sys
import time
import types

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CASE = REPO / "tests" / "golden" / "openpose" / "grouping_coco18"

from keras_pose.models.bottom_up_pose_estimator import upsample_maps  # noqa: E402
from keras_pose.models.openpose import openpose_layers as L  # noqa: E402
from keras_pose.models.openpose.openpose_grouping import group_people  # noqa: E402


def load_controlnet_body():
    """controlnet_aux.open_pose.body without the package __init__ (which imports every annotator)."""
    spec = importlib.util.find_spec("controlnet_aux")
    if spec is None:
        return None
    root = pathlib.Path(spec.origin).parent
    for name, path in (("controlnet_aux", root), ("controlnet_aux.open_pose", root / "open_pose")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules.setdefault(name, module)
    importlib.import_module("controlnet_aux.open_pose.util")  # util first: util and body import each other
    return importlib.import_module("controlnet_aux.open_pose.body")


def reference_runner(body_module, heat, paf):
    """A callable running controlnet-aux's Body.__call__ on the maps; returns (candidate, subset)."""
    import torch

    util = body_module.util
    h, w = heat.shape[0] * 8, heat.shape[1] * 8
    image = np.zeros((h, w, 3), np.uint8)

    class Maps(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))  # Body.__call__ reads the device from a parameter

        def forward(self, x):
            return (torch.from_numpy(paf.transpose(2, 0, 1)[None].copy()),
                    torch.from_numpy(heat.transpose(2, 0, 1)[None].copy()))

    original = util.smart_resize_k

    def resize_k(x, fx, fy):  # the image at multiplier 1 (the golden case's setting); maps as shipped
        return x if x.dtype == np.uint8 else original(x, fx, fy)

    body = body_module.Body.__new__(body_module.Body)
    body.model = Maps()

    def run():
        util.smart_resize_k = resize_k
        try:
            return body(image)
        finally:
            util.smart_resize_k = original

    return run


def upsample_lanczos(maps, h, w, dtype=np.float64):
    """controlnet-aux's decode (x8 LANCZOS4, crop, LANCZOS4 to (h, w)): keras-pose's `upsample_maps`.

    One cv2 call for all channels, bitwise the per-channel calls (cv2 resizes
    channels independently); the same-size second resize is an identity in
    cv2 and skipped when the sizes agree. ``dtype=np.float32``: cv2's maps as
    they are (the fast path; the same values as the reference's float64).
    """
    return upsample_maps(maps, 8, (h, w), (h, w), "lanczos", dtype)


def same_people(a, b):
    (ca, sa), (cb, sb) = a, b
    return (ca.shape == cb.shape and sa.shape == sb.shape and np.array_equal(ca[:, [0, 1, 3]], cb[:, [0, 1, 3]])
            and np.array_equal(sa[:, :18], sb[:, :18]) and np.array_equal(sa[:, 19], sb[:, 19])
            and (not len(sa) or np.abs(sa[:, 18] - sb[:, 18]).max() <= 1e-5))


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out")
    args = parser.parse_args()
    body_module = load_controlnet_body()
    heat0, paf0 = np.load(CASE / "input_heatmap.npy"), np.load(CASE / "input_paf.npy")
    rows = []
    for n in args.tiles:
        heat, paf = np.tile(heat0, (n, n, 1)), np.tile(paf0, (n, n, 1))
        h, w = heat.shape[0] * 8, heat.shape[1] * 8

        def fast():
            up_h, up_p = upsample_lanczos(heat, h, w, np.float32), upsample_lanczos(paf, h, w, np.float32)
            return group_people(up_h, up_p, L.COCO18_LIMBS, L.COCO18_PAF_CHANNELS, h, method="fast")

        up_h, up_p = upsample_lanczos(heat, h, w), upsample_lanczos(paf, h, w)

        def port():
            return group_people(up_h, up_p, L.COCO18_LIMBS, L.COCO18_PAF_CHANNELS, h, method="reference")

        def fast_only():
            return group_people(up_h, up_p, L.COCO18_LIMBS, L.COCO18_PAF_CHANNELS, h, method="fast")

        if body_module is not None:
            reference, reference_name = reference_runner(body_module, heat, paf), "controlnet-aux Body.__call__"
        else:
            reference, reference_name = (lambda: (up_h, up_p) and port()), "keras-pose exact port (no controlnet-aux)"
        ref_out, fast_out = reference(), fast()
        agree = same_people(ref_out, fast_out) and same_people(port(), fast_only())
        t_ref = t_fast = t_port = t_fast_only = 0.0
        timings = {"ref": [], "fast": [], "port": [], "fast_only": []}
        for _ in range(args.repeats):  # interleaved
            timings["ref"].append(median_time(reference, 1))
            timings["fast"].append(median_time(fast, 1))
            timings["port"].append(median_time(port, 1))
            timings["fast_only"].append(median_time(fast_only, 1))
        t_ref, t_fast, t_port, t_fast_only = (statistics.median(timings[k]) for k in ("ref", "fast", "port", "fast_only"))
        row = {"tiles": f"{n}x{n}", "map_hw": [h, w], "people": int(len(fast_out[1])),
               "candidates": int(len(fast_out[0])), "reference": reference_name, "same_people": bool(agree),
               "reference_s": t_ref, "fast_s": t_fast, "ratio_end_to_end": t_ref / t_fast,
               "port_grouping_s": t_port, "fast_grouping_s": t_fast_only, "ratio_grouping": t_port / t_fast_only}
        rows.append(row)
        print(f"{row['tiles']:>4} {h}x{w}: {row['people']:3d} people, {row['candidates']:4d} candidates | "
              f"{reference_name}: {t_ref * 1e3:8.1f} ms, fast (same upsampling): {t_fast * 1e3:8.1f} ms, "
              f"x{row['ratio_end_to_end']:.1f} | grouping only: port {t_port * 1e3:8.1f} ms, fast "
              f"{t_fast_only * 1e3:7.1f} ms, x{row['ratio_grouping']:.1f} | same people: {agree}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"cpu_count": os.cpu_count(), "repeats": args.repeats, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
