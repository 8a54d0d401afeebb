"""`keras-pose train`: train or fine-tune from a YAML/JSON config (`keras_pose.training`)."""

import sys

from keras_pose.cli.common import positive_int, start_backend

# Flags that override one config key each: (attribute, dotted key).
_FLAG_KEYS = (("epochs", "train.epochs"), ("batch_size", "train.batch_size"),
              ("steps_per_epoch", "train.steps_per_epoch"), ("output_dir", "output.dir"), ("preset", "model.preset"))


def _overrides(args):
    overrides = list(args.set or [])
    for flag, key in _FLAG_KEYS:
        value = getattr(args, flag)
        if value is not None:
            overrides.append((key, value))
    if args.preset is not None:
        # The preset brings its architecture and input size: drop the config's.
        overrides[:0] = [("model.backbone", {}), ("model.head", {}), ("model.input_size", None)]
    # One key each: what the config's train.distribution says otherwise (sync_batch_norm, mesh, ...) stays.
    for key in ("distribution", "mesh", "coordinator", "num_processes", "process_id"):
        if getattr(args, key) is not None:
            overrides.append((f"train.distribution.{'kind' if key == 'distribution' else key}", getattr(args, key)))
    if args.overwrite or args.restart:
        overrides.append(("output.overwrite", True))
    if args.discard_previous_run:
        overrides.append(("output.discard_previous_run", True))
    return overrides


def _dry_run(config):
    from keras_pose.errors import TrainConfigError
    from keras_pose.training.run_folder import check_output, describe_previous_run

    out = config["output"]
    sys.stdout.write(config.to_yaml())
    try:
        previous, refusal = check_output(out, config), None
    except TrainConfigError as error:
        previous, refusal = describe_previous_run(out["dir"]), str(error)
    if previous is not None:
        action = ("would delete it (--discard-previous-run)" if out["discard_previous_run"] else
                  "would move it to previous_runs/ (--restart)" if out["overwrite"] else
                  "would resume it" if previous.get("resume") else
                  "would refuse to start: give another --output-dir, --restart or --discard-previous-run")
        print(f"note: output.dir {out['dir']!r} holds {previous['summary']}; train {action}.", file=sys.stderr)
        if refusal and "cannot be resumed" in refusal:
            print(f"note: {refusal.split('. ', 1)[-1].split(', and a new run')[0]}.", file=sys.stderr)
    return 0


def run(args):
    start_backend(args)
    from keras_pose.training import load_train_config, train_from_config

    # Path values of flags and --set are relative to the working directory.
    config = load_train_config(args.config, overrides=_overrides(args))
    if args.dry_run:
        return _dry_run(config)
    result = train_from_config(config, verbose=0 if args.quiet else 1)
    if result.preset_dir is None:
        print(f"Process {result.process_id}: done; process 0 wrote the results into {result.output_dir}.")
        return 0
    metrics = result.metrics
    best = metrics.get("best") or {}
    monitor = metrics["monitor"]
    line = f"{monitor} {best[monitor]:.4f} (epoch {metrics['best_epoch']})" if monitor in best else "no evaluation"
    print(f"Trained {metrics['epochs']} epochs x {metrics['steps_per_epoch']} steps: best {line}.")
    print(f"Preset: {result.preset_dir} (load with keras_pose.from_preset); history: "
          f"{result.files['history.csv']}")
    if result.files.get("previous_run"):
        print(f"The earlier run in the output folder was moved to {result.files['previous_run']}.")
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train or fine-tune a model from a YAML/JSON config",
        description="Train a top-down model as a config file says (schema: keras_pose.training.config_schema; "
        "documented sample: examples/train_config.yaml): model (a preset to fine-tune, or an architecture to "
        "build), keypoint spec, datasets, batch size, epochs, learning-rate schedule, augmentation, validation "
        "metric and output folder. Writes history.csv/json, the best checkpoint, metrics.json, "
        "training_curves.png and a preset folder (keras_pose.from_preset(DIR)) into the output folder. "
        "Relative paths inside the config are relative to the config file. The complete training state is saved "
        "at every epoch end and every output.state_every_n_steps steps: running the same command again on a killed "
        "run resumes it from its newest state. An output folder that holds a run that cannot be resumed (finished, "
        "no state saved, or another config) is refused, listing its checkpoints, unless --restart (move it to "
        "previous_runs/) or --discard-previous-run (delete it) says what to do with it. Training stops with an "
        "error at the first NaN/Inf loss, keeping the last finite checkpoint and writing no preset.",
    )
    p.add_argument("config", metavar="CONFIG", help="training config, .yaml/.yml or .json")
    p.add_argument("--output-dir", dest="output_dir", metavar="DIR", help="override output.dir")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="override train.epochs")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, metavar="N", help="override train.batch_size")
    p.add_argument("--steps-per-epoch", dest="steps_per_epoch", type=positive_int, metavar="N",
                   help="override train.steps_per_epoch (default: one pass over the training set)")
    p.add_argument("--preset", metavar="NAME_OR_DIR",
                   help="fine-tune this preset (sets model.preset; the config's model.backbone, model.head and "
                   "model.input_size are dropped: the preset brings its own)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config key, dotted, value in YAML (repeatable), e.g. "
                   "--set train.learning_rate.base=1e-3 --set train.augmentation=false")
    p.add_argument("--distribution", choices=("data", "model"),
                   help="train on several devices (train.distribution.kind): data parallel (JAX: every device of "
                   "every process; TensorFlow: MirroredStrategy over the local GPUs) or model parallel (JAX: ViT "
                   "kernels split over --mesh); --batch-size is then the global batch")
    p.add_argument("--mesh", metavar="BATCH,MODEL", help="device-mesh shape for --distribution model (JAX)")
    p.add_argument("--coordinator", metavar="HOST:PORT",
                   help="process 0's address, for training over several processes or machines (JAX)")
    p.add_argument("--num-processes", dest="num_processes", type=positive_int, metavar="N",
                   help="processes taking part (JAX, with --coordinator)")
    p.add_argument("--process-id", dest="process_id", type=int, metavar="I",
                   help="this process's index, 0..N-1; process 0 writes the results (JAX, with --coordinator)")
    p.add_argument("--restart", action="store_true",
                   help="start over instead of resuming the run in the output folder: the earlier run is moved to "
                   "OUTPUT_DIR/previous_runs/<its start time>/, nothing is deleted (output.overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="the same as --restart: start over in an output folder that holds an earlier run: the earlier run (checkpoints, "
                   "preset, history) is moved to OUTPUT_DIR/previous_runs/<its start time>/, nothing is deleted "
                   "(output.overwrite)")
    p.add_argument("--discard-previous-run", dest="discard_previous_run", action="store_true",
                   help="start over in an output folder that holds an earlier run and DELETE the earlier run: its "
                   "best and last checkpoints and its preset are lost (output.discard_previous_run)")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="check the config and print it resolved (defaults filled, paths absolute); do not train")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch messages")
    p.set_defaults(handler=run)
    return p


__all__ = ["add_parser", "run"]
