"""`keras-pose convert`: a reference checkpoint into a preset folder."""

import os

from keras_pose.cli.common import CLIError, start_backend


def run(args):
    if not os.path.exists(args.checkpoint):
        raise CLIError(f"Checkpoint {args.checkpoint!r} does not exist.")
    start_backend(args)
    from keras_pose.conversion import convert_checkpoint

    model = convert_checkpoint(args.checkpoint, preset=args.preset, output_dir=args.output, dataset=args.dataset,
                               license=args.license)
    print(f"Wrote {type(model).__name__} preset to {os.path.abspath(args.output)}; load it with "
          f"keras_pose.from_preset({os.path.abspath(args.output)!r}).")
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "convert",
        help="convert a reference checkpoint into a keras-pose preset directory",
        description="Convert a reference checkpoint (original ViTPose .pth, mmpose 1.x .pth, or HF "
        "model.safetensors with config.json beside it) into a Keras preset directory that "
        "keras_pose.from_preset(DIR) loads. The folder is written atomically with a "
        "keras_pose_preset.json record of the source, licence and published accuracy.",
    )
    p.add_argument("--checkpoint", required=True, metavar="FILE",
                   help="the downloaded reference checkpoint file (or an HF model folder)")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="preset folder to write: new, empty, or an earlier `keras-pose convert` output "
                   "(keras_pose_preset.json and only preset files), which is replaced; a folder holding "
                   "anything else, or the checkpoint itself, is refused")
    p.add_argument("--preset", metavar="NAME",
                   help="the registered preset the checkpoint was released as (see `keras-pose presets`); "
                   "omitted: the model family and layout are inferred from the checkpoint")
    p.add_argument("--dataset", metavar="D",
                   help="multi-dataset models (ViTPose++): the dataset whose expert and head to keep, "
                   "one of coco, aic, mpii, ap10k, apt36k, coco_wholebody")
    p.add_argument("--license", metavar="ID",
                   help="licence id recorded in the preset folder (SPDX id or LicenseRef-..., 'none' for none); "
                   "default: the preset's, or without --preset the licence every registered preset of the "
                   "family shares when it restricts use (CMU's non-commercial OpenPose weights)")
    p.set_defaults(handler=run)
    return p
