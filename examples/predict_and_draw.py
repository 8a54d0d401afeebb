"""Estimate poses in an image, draw the skeletons and a heatmap overlay.

Run from the repository root (the sample image and its boxes come from
tests/data/coco):

    python examples/predict_and_draw.py --output-dir /tmp/predict_demo
    python examples/predict_and_draw.py --preset vitpose_base_coco_256x192 --output-dir /tmp/predict_demo
    python examples/predict_and_draw.py --preset DIR --image photo.jpg --box 280,44,218,346 --output-dir out

Without --preset it builds a small, randomly initialised ViTPose -- an
untrained demo model: the whole pipeline runs (crop, network, decode,
drawing), but the keypoints it finds are meaningless. Pass a preset (a
registered name, downloaded and converted on first use, or a preset folder
from `keras-pose convert` / `keras-pose train`) for real poses.

Writes to --output-dir: poses.png (the image with boxes and skeletons),
heatmaps.png (the first person's crop with the max-over-keypoints heatmap
blended in, next to the crop with its keypoints) and poses.json (COCO
keypoint results).
"""

import argparse
import json
import os
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA_DIR = pathlib.Path(os.environ.get("KERAS_POSE_SHARED_DIR", REPO_ROOT / "tests")) / "data"


def demo_model(image_size=(128, 96), seed=0):
    """A small randomly initialised ViTPose (COCO keypoints): NOT trained."""
    import keras

    import keras_pose

    keras.utils.set_random_seed(seed)
    backbone = keras_pose.ViTPoseBackbone(image_size=image_size, hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64)
    return keras_pose.ViTPose(backbone, decoder="simple", keypoint_spec="coco")


def parse_box(text):
    values = [float(v) for v in text.split(",")]
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H with W, H > 0, got {text!r}")
    return values


def ground_truth_boxes(annotation_file, image_path):
    """The annotated person boxes of an image in a COCO keypoint file, or None."""
    if not annotation_file or not os.path.isfile(annotation_file):
        return None
    with open(annotation_file) as f:
        data = json.load(f)
    name = os.path.basename(image_path)
    ids = [img["id"] for img in data.get("images", []) if img.get("file_name") == name]
    if not ids:
        return None
    boxes = [a["bbox"] for a in data["annotations"] if a["image_id"] == ids[0] and not a.get("iscrowd")]
    return boxes or None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", metavar="NAME_OR_DIR",
                        help="preset name or folder; default: an untrained demo model (random weights)")
    parser.add_argument("--image", default=str(DATA_DIR / "coco" / "000000000785.jpg"),
                        help="image file (default: a COCO sample image)")
    parser.add_argument("--box", action="append", type=parse_box, metavar="X,Y,W,H",
                        help="person box in image pixels (repeatable); default: the boxes annotated for the "
                        "image in --annotations, else the whole image")
    parser.add_argument("--annotations", default=str(DATA_DIR / "coco" / "test_coco.json"),
                        help="COCO keypoint file to take the image's person boxes from when no --box is given")
    parser.add_argument("--threshold", type=float, default=None,
                        help="keypoint score threshold for drawing (default 0.3; 0 for the demo model, whose "
                        "scores are all small)")
    parser.add_argument("--output-dir", default="predict_demo", help="folder for poses.png, heatmaps.png, poses.json")
    args = parser.parse_args(argv)

    import cv2
    import numpy as np

    import keras_pose
    from keras_pose.utils.file_utils import atomic_write
    from keras_pose.utils.image_io import read_image
    from keras_pose.visualization import draw_poses, overlay_heatmaps

    if args.preset:
        model = keras_pose.from_preset(args.preset)
        print(f"Model: {type(model).__name__} from preset {args.preset!r}.")
    else:
        model = demo_model()
        print("Model: untrained demo model (small ViTPose, random weights) -- the keypoints below are NOT "
              "meaningful; pass --preset for a trained model.")
    threshold = args.threshold if args.threshold is not None else (0.3 if args.preset else 0.0)

    image = read_image(args.image)
    boxes = args.box or ground_truth_boxes(args.annotations, args.image)
    box_source = "given" if args.box else ("annotated" if boxes else "whole image")
    if boxes is None:
        boxes = [[0.0, 0.0, float(image.shape[1]), float(image.shape[0])]]
    boxes = np.asarray(boxes, np.float32)

    # Whole image + person boxes in, keypoints in image pixels out.
    result = model.predict_keypoints(image, boxes)
    os.makedirs(args.output_dir, exist_ok=True)

    def write_png(name, rgb):
        ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        path = os.path.join(args.output_dir, name)
        with atomic_write(path) as f:
            f.write(data.tobytes())
        return path

    poses_png = write_png("poses.png", result.draw(image, keypoint_threshold=threshold))

    # The network's view of the first person: its crop and heatmaps.
    crops, _, _ = model.crop_people(image, boxes[:1])
    heatmaps = model.predict_heatmaps(crops)
    mean = np.asarray(model.preprocessing["mean"], np.float32)
    std = np.asarray(model.preprocessing["std"], np.float32)
    crop = np.clip(crops[0] * std + mean, 0, 255).astype(np.uint8)
    if model.preprocessing["channel_order"] == "bgr":
        crop = crop[..., ::-1]
    crop_keypoints, crop_scores = model.codec.decode(heatmaps)
    with_keypoints = draw_poses(crop, crop_keypoints, crop_scores, model.keypoint_spec, keypoint_threshold=threshold)
    panel = np.concatenate([overlay_heatmaps(crop, heatmaps[0]), with_keypoints], axis=1)
    scale = max(1, 256 // panel.shape[0])
    panel = cv2.resize(panel, (panel.shape[1] * scale, panel.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    heatmaps_png = write_png("heatmaps.png", panel)

    stem = os.path.splitext(os.path.basename(args.image))[0]
    image_id = int(stem) if stem.isdigit() else stem
    records = result.to_coco(image_id=image_id)
    poses_json = os.path.join(args.output_dir, "poses.json")
    with atomic_write(poses_json, "w") as f:
        json.dump(records, f, indent=1)

    print(f"Image {args.image} ({image.shape[0]}x{image.shape[1]}), {len(boxes)} {box_source} box(es).")
    for i in range(len(result)):
        visible = int((result.scores[i] > threshold).sum())
        print(f"  person {i}: mean keypoint score {result.scores[i].mean():.3f}, {visible}/"
              f"{model.keypoint_spec.num_keypoints} keypoints above {threshold}, instance score "
              f"{result.instance_scores[i]:.3f}")
    print(f"Wrote {poses_png}, {heatmaps_png}, {poses_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
