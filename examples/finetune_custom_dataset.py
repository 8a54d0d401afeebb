"""Fine-tune a pose model on your own COCO-format keypoint dataset.

The worked case is the AP-10K animal sample (tests/data/ap10k, 17
keypoints per animal), treated as a custom dataset: nothing about it is
taken from keras-pose's built-in specs. Run from the repository root:

    python examples/finetune_custom_dataset.py --output-dir /tmp/finetune_demo
    python examples/finetune_custom_dataset.py --preset DIR --epochs 20 --output-dir /tmp/finetune_demo

Steps:

1. The keypoint spec comes from the annotation file's category
   (`KeypointSpec.from_coco_category`: names, 1-based skeleton, left/right
   flip pairs inferred from the names), plus what the file cannot say: the
   OKS sigmas COCO AP needs and the upper/lower body split for half-body
   augmentation. It is saved as keypoints.yaml, reusable in configs.
2. A training config (the same schema as `keras-pose train CONFIG`, see
   examples/train_config.yaml) names the model, the spec, the data and the
   schedule; `train_from_config` builds the model, the tf.data pipeline,
   the optimizer and the callbacks (evaluation, best checkpoint, history)
   and writes a preset.
   Model: with --preset, that preset (a folder from `keras-pose convert` /
   `keras-pose train` / `save_to_preset`, or a registered name) keeps its
   backbone and gets a new head for the custom keypoints; without it, a
   small randomly initialised ViTPose -- an untrained demo model, which a
   few steps on two animals do not make useful.
3. The saved preset is reloaded and evaluated (COCO AP with the spec's
   sigmas), one image is drawn, and the training curves are plotted.

Writes to --output-dir: keypoints.yaml, train_config.yaml, run/ (history,
checkpoints, metrics.json, preset/), prediction.png, curves.png, summary.json.
"""

import argparse
import json
import os
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA_DIR = pathlib.Path(os.environ.get("KERAS_POSE_SHARED_DIR", REPO_ROOT / "tests")) / "data"

# Per-keypoint OKS sigmas of the AP-10K paper (in the category's keypoint
# order). For your own data: measure the spread of repeated annotations, or
# start from a similar dataset's values.
AP10K_SIGMAS = [0.025, 0.025, 0.026, 0.035, 0.035, 0.079, 0.072, 0.062, 0.079, 0.072, 0.062,
                0.107, 0.087, 0.089, 0.107, 0.087, 0.089]
UPPER_BODY = ["left_eye", "right_eye", "nose", "neck", "left_shoulder", "left_elbow", "left_front_paw",
              "right_shoulder", "right_elbow", "right_front_paw"]
LOWER_BODY = ["root_of_tail", "left_hip", "left_knee", "left_back_paw", "right_hip", "right_knee", "right_back_paw"]


def custom_spec(annotation_file):
    """The keypoint spec of a COCO-format file's (first) category."""
    from keras_pose.keypoints import KeypointSpec

    with open(annotation_file) as f:
        category = json.load(f)["categories"][0]
    return KeypointSpec.from_coco_category(
        category,
        name="ap10k_custom",
        sigmas=AP10K_SIGMAS,
        upper_body_names=UPPER_BODY,
        lower_body_names=LOWER_BODY,
        description="AP-10K keypoints read from the annotation file's category",
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", metavar="NAME_OR_DIR",
                        help="preset to fine-tune (it gets a new head for the custom keypoints); default: an "
                        "untrained demo model (small ViTPose, random weights)")
    parser.add_argument("--annotations", default=str(DATA_DIR / "ap10k" / "test_ap10k.json"),
                        help="COCO-format keypoint file to train and evaluate on (default: the AP-10K sample)")
    parser.add_argument("--image-root", default=None, help="image folder (default: the annotation file's folder)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (default 4)")
    parser.add_argument("--steps-per-epoch", type=int, default=5, help="steps per epoch (default 5)")
    parser.add_argument("--batch-size", type=int, default=2, help="crops per step (default 2)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    parser.add_argument("--input-size", default="128x96", help="HxW crops of the demo model (default 128x96)")
    parser.add_argument("--augmentation", action="store_true", help="turn the mmpose augmentations on")
    parser.add_argument("--output-dir", default="finetune_demo", help="folder for everything written")
    args = parser.parse_args(argv)

    import cv2
    import yaml

    import keras_pose
    from keras_pose.datasets import load_coco_keypoints
    from keras_pose.training import evaluate_pose_model, train_from_config
    from keras_pose.utils.file_utils import atomic_write
    from keras_pose.utils.image_io import read_image
    from keras_pose.visualization_plots import plot_training_curves

    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)

    # 1. The custom keypoint spec, from the file.
    spec = custom_spec(args.annotations)
    spec_path = os.path.join(out, "keypoints.yaml")
    spec.save(spec_path)
    print(f"Keypoint spec {spec.name!r}: {spec.num_keypoints} keypoints, {len(spec.skeleton)} limbs, flip pairs "
          f"{len(spec.flip_pairs)} (inferred from the names) -> {spec_path}")

    # 2. The training config: the same schema as `keras-pose train CONFIG`.
    height, width = (int(v) for v in args.input_size.lower().split("x"))
    if args.preset:
        model_section = {"preset": args.preset}
        print(f"Model: preset {args.preset!r}, fine-tuned with a new head for {spec.name!r}.")
    else:
        model_section = {
            "architecture": "ViTPose",
            "backbone": {"hidden_dim": 64, "num_layers": 2, "num_heads": 4, "mlp_dim": 128},
            "head": {"decoder": "simple"},
            "input_size": [height, width],
        }
        print("Model: untrained demo model (small ViTPose, random weights) -- a few steps on the sample do not "
              "make it useful; pass --preset to fine-tune a real model.")
    split = {"annotation_file": os.path.abspath(args.annotations), "image_root": args.image_root}
    config = {
        "model": model_section,
        "keypoints": {"spec": spec_path},
        "data": {"format": "coco", "train": split, "val": dict(split), "cache_images": "decoded"},
        "train": {
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "steps_per_epoch": args.steps_per_epoch,
            "augmentation": bool(args.augmentation),
            "optimizer": {"type": "adamw", "weight_decay": 0.01},
            "learning_rate": {"base": args.learning_rate, "schedule": "cosine", "warmup_steps": 2,
                              "min_factor": 0.05},
            "seed": 0,
        },
        "evaluation": {"metric": "coco", "every_n_epochs": 1},
        "output": {"dir": os.path.join(out, "run"), "overwrite": True, "plot": False},
    }
    config_path = os.path.join(out, "train_config.yaml")
    with atomic_write(config_path, "w") as f:
        f.write("# Re-run with: keras-pose train " + config_path + "\n")
        yaml.safe_dump(config, f, sort_keys=False)
    result = train_from_config(config, verbose=2)

    # 3. Reload the preset, evaluate, draw, plot.
    model = keras_pose.from_preset(result.preset_dir)
    val = load_coco_keypoints(args.annotations, args.image_root, keypoint_spec=model.keypoint_spec, mode="eval")
    stats = evaluate_pose_model(model, val, metric="coco", verbose=0)
    first = val[0]
    prediction = model.predict_keypoints(first.image_path, [first.bbox])
    drawn = prediction.draw(read_image(first.image_path), keypoint_threshold=0.0)
    ok, data = cv2.imencode(".png", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    prediction_png = os.path.join(out, "prediction.png")
    with atomic_write(prediction_png) as f:
        f.write(data.tobytes())
    curves_png = plot_training_curves(result.files["history.csv"], os.path.join(out, "curves.png"),
                                      title=f"fine-tuning on {spec.name}")

    losses = [v for v in result.history["loss"] if v is not None]
    ap_per_epoch = [v for v in result.history.get("val_coco_AP", []) if v is not None]
    summary = {
        "model": args.preset or "untrained demo model",
        "keypoint_spec": spec.name,
        "epochs": args.epochs,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "val_coco_AP_per_epoch": ap_per_epoch,
        "best_epoch": result.metrics["best_epoch"],
        "preset_dir": result.preset_dir,
        "preset_weights": result.metrics["preset_weights"],
        "preset_coco_AP": stats["coco_AP"],
        "preset_coco_AR": stats["coco_AR"],
    }
    summary_path = os.path.join(out, "summary.json")
    with atomic_write(summary_path, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"loss {losses[0]:.5f} -> {losses[-1]:.5f}; val AP per epoch "
          f"{', '.join(f'{v:.3f}' for v in ap_per_epoch)}")
    print(f"Reloaded preset ({result.metrics['preset_weights']} weights, epoch {result.metrics['best_epoch']}): "
          f"COCO AP {stats['coco_AP']:.3f}, AR {stats['coco_AR']:.3f} on {len(val)} animals")
    print(f"Wrote {result.preset_dir}, {prediction_png}, {curves_png}, {summary_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
