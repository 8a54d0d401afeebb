"""Export a pose model to TFLite, run it with the LiteRT interpreter, compare with Keras.

Run from the repository root (the person crops come from tests/data/coco):

    python examples/export_tflite.py --output-dir /tmp/export_demo
    python examples/export_tflite.py --quantization float16 --output-dir /tmp/export_demo
    python examples/export_tflite.py --quantization int8 --output-dir /tmp/export_demo
    python examples/export_tflite.py --preset vitpose_small_coco_256x192 --output-dir /tmp/export_demo

What it does:

1. `keras_pose.export.export_model` writes pose.tflite and its metadata
   pose.tflite.json (input size, normalisation, keypoint names, skeleton,
   codec). int8 is calibrated on real person crops of the COCO sample.
2. The .tflite file is run the way an app without keras-pose would: the
   plain LiteRT `Interpreter` (ai_edge_litert), the crop normalised with the
   metadata's mean / std, the heatmaps decoded with an argmax.
3. The same crops through Keras: the largest heatmap difference and the
   keypoint differences (decoded with the model's codec, in input pixels)
   are printed, with the time per crop of each.

Without --preset the model is a small randomly initialised ViTPose -- an
untrained demo model: the export and the comparison are exact all the same,
but the keypoints mean nothing. Writes pose.tflite, pose.tflite.json and
export_report.json (the numbers printed) to --output-dir.
"""

import argparse
import json
import os
import pathlib
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA_DIR = pathlib.Path(os.environ.get("KERAS_POSE_SHARED_DIR", REPO_ROOT / "tests")) / "data"


def demo_model(image_size=(128, 96), seed=0):
    """A small randomly initialised ViTPose (COCO keypoints): NOT trained."""
    import keras

    import keras_pose

    keras.utils.set_random_seed(seed)
    backbone = keras_pose.ViTPoseBackbone(image_size=image_size, hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64)
    return keras_pose.ViTPose(backbone, decoder="simple", keypoint_spec="coco")


def person_crops(model, annotation_file):
    """Normalised crops (N, H, W, 3) of every labelled person of a COCO file."""
    import numpy as np

    from keras_pose.datasets import load_coco_keypoints
    from keras_pose.utils.image_io import read_image

    dataset = load_coco_keypoints(annotation_file, keypoint_spec=model.keypoint_spec)
    by_image = {}
    for inst in dataset:
        by_image.setdefault(inst.image_path, []).append(inst.bbox)
    crops = [model.crop_people(read_image(path), np.stack(boxes))[0] for path, boxes in by_image.items()]
    return np.concatenate(crops).astype(np.float32)


def run_with_litert(path, crop):
    """One crop through the plain LiteRT interpreter; returns {output name: array}."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    x = crop[None].astype(np.float32)
    if inp["dtype"] != np.float32:  # int8 I/O: quantise with the tensor's scale / zero point
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(inp["dtype"])
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", metavar="NAME_OR_DIR",
                        help="preset name or folder; default: an untrained demo model (random weights)")
    parser.add_argument("--quantization", choices=("none", "float16", "int8", "dynamic_int8"), default="none",
                        help="none (float32), float16 weights, int8 (calibrated on COCO sample crops) or "
                        "dynamic_int8 (int8 weights, no calibration)")
    parser.add_argument("--annotations", default=str(DATA_DIR / "coco" / "test_coco.json"),
                        help="COCO keypoint file whose people are the test (and calibration) crops")
    parser.add_argument("--output-dir", default="export_demo", help="folder for pose.tflite and the reports")
    args = parser.parse_args(argv)

    import numpy as np

    import keras_pose
    from keras_pose.export import export_model, load_exported, read_metadata
    from keras_pose.utils.file_utils import atomic_write

    if args.preset:
        model = keras_pose.from_preset(args.preset)
        print(f"Model: {type(model).__name__} from preset {args.preset!r}.")
    else:
        model = demo_model()
        print("Model: untrained demo model (small ViTPose, random weights) -- the export is checked exactly, "
              "but its keypoints mean nothing; pass --preset for a trained model.")
    quantization = None if args.quantization == "none" else args.quantization
    crops = person_crops(model, args.annotations)

    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "pose.tflite")
    start = time.perf_counter()
    export_model(model, path, quantization=quantization,
                 representative_dataset=np.concatenate([crops, crops[:, :, ::-1]]) if quantization == "int8" else None)
    export_seconds = time.perf_counter() - start
    metadata = read_metadata(path)
    print(f"Exported {path} ({os.path.getsize(path) / 1e6:.2f} MB, quantization {quantization or 'none'}) in "
          f"{export_seconds:.1f}s; metadata {path}.json: input {metadata['input']['shape']}, "
          f"{metadata['keypoints']['num_keypoints']} keypoints, codec {metadata['decoding']['codec']['type']}.")

    # 1. The plain LiteRT interpreter, as an app would use it: one crop.
    single = run_with_litert(path, crops[0])
    litert_heatmaps = next(v for v in single.values() if v.ndim == 4)

    # 2. keras-pose's runner over every crop (batches, (de)quantisation, decode).
    runner = load_exported(path)
    start = time.perf_counter()
    exported = runner.heatmaps(crops)
    litert_ms = 1000 * (time.perf_counter() - start) / len(crops)
    model.predict_heatmaps(crops, flip_test=False)  # warm-up (traces the batch shape)
    start = time.perf_counter()
    reference = model.predict_heatmaps(crops, flip_test=False)
    keras_ms = 1000 * (time.perf_counter() - start) / len(crops)

    peak = float(np.abs(reference).max()) or 1.0
    heatmap_diff = float(np.abs(exported - reference).max())
    interpreter_diff = float(np.abs(litert_heatmaps[0] - exported[0]).max())
    keypoints_keras, scores_keras = model.codec.decode(reference)
    keypoints_lite, scores_lite = model.codec.decode(exported)
    # Keypoints both found (a heatmap maximum > 0); others decode to a placeholder.
    found = (scores_keras > 0) & (scores_lite > 0)
    distance = np.linalg.norm(keypoints_keras - keypoints_lite, axis=-1)[found]
    if not distance.size:
        distance = np.zeros(1)
    report = {
        "model": args.preset or "untrained demo model",
        "quantization": quantization,
        "file": path,
        "file_size_bytes": os.path.getsize(path),
        "crops": int(len(crops)),
        "max_heatmap_abs_diff": heatmap_diff,
        "max_heatmap_rel_diff": heatmap_diff / peak,
        "interpreter_vs_runner_max_diff": interpreter_diff,
        "keypoints_compared": int(found.sum()),
        "keypoint_diff_px_mean": float(distance.mean()),
        "keypoint_diff_px_max": float(distance.max()),
        "keypoints_identical_fraction": float((distance < 1e-3).mean()),
        "ms_per_crop_litert": litert_ms,
        "ms_per_crop_keras": keras_ms,
    }
    print(f"LiteRT vs Keras on {len(crops)} person crops of {os.path.basename(args.annotations)}:")
    print(f"  max |heatmap difference|     {heatmap_diff:.3g} ({100 * heatmap_diff / peak:.2g}% of the peak)")
    print(f"  keypoints (input px)         mean {distance.mean():.3f}, max {distance.max():.3f}; "
          f"{100 * report['keypoints_identical_fraction']:.0f}% identical ({found.sum()} keypoints found by both)")
    if not args.preset and quantization == "int8":
        print("  (an untrained model's heatmaps are nearly flat, so int8 rounding moves their maxima far; a trained "
              "model's peaks are sharp)")
    print(f"  plain Interpreter vs runner  {interpreter_diff:.3g}")
    print(f"  time per crop                LiteRT {litert_ms:.2f} ms, Keras {keras_ms:.2f} ms")
    report_path = os.path.join(args.output_dir, "export_report.json")
    with atomic_write(report_path, "w") as f:
        json.dump(report, f, indent=1)
    print(f"Wrote {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
