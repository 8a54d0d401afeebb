"""`keras-pose train` with ``data.train`` as a list of datasets: ViTPose++ multi-dataset training.

Config (the other sections as usual)::

    model:
      preset: a ViTPose++ preset (required; every expert and head is kept)
    data:
      train:
        - {dataset: coco, annotation_file: A.json, image_root: DIR, ratio: 1}
        - {dataset: ap10k, annotation_file: B.json, ratio: 0.5,
           keypoints: SPEC, init_from: coco}

Each entry: ``dataset`` (required) names the model's dataset (its expert and
head); a name the model lacks gets a new expert and head copied from
``init_from`` (default: the model's first dataset) with the keypoint spec
``keypoints`` (default: the annotation file's category). ``ratio`` [1.0] is
the dataset's sampling weight in the mixed batches. The run trains
`ViTPosePPMultiDataset` and writes the `ViTPosePP` (all experts and heads) as
the preset, ``last.weights.h5``, ``history.csv`` / ``history.json`` and
``metrics.json``. Not supported with a list (each refused by name):
``data.val`` (evaluation), ``data.format: mpii``, ``train.distribution``,
``train.ema``, ``train.freeze``, ``train.optimizer.layer_decay``,
``distillation``, and resuming (a run in the output folder is moved aside or
refused as ``output`` says).
"""

import json
import math
import os

import keras

from keras_pose.training.config_values import fail

def _refuse_unsupported(config):
    why = "is not supported with data.train as a list of datasets (ViTPose++ multi-dataset training)"
    t = config["train"]
    checks = [
        ("data.val", config["data"]["val"] is not None, "remove it; evaluate the preset per dataset afterwards"),
        ("data.format", config["data"]["format"] != "coco", "use COCO-format annotation files"),
        ("train.distribution", bool(t["distribution"]), "train on one device"),
        ("train.ema", bool(t["ema"]), "remove it"),
        ("train.freeze", bool(t["freeze"]), "remove it"),
        ("train.optimizer.layer_decay", t["optimizer"]["layer_decay"] is not None, "remove it"),
        ("distillation", config.get("distillation") is not None, "remove it"),
        ("keypoints", config["keypoints"] is not None, "give keypoints per dataset (data.train[i].keypoints)"),
    ]
    for key, bad, fix in checks:
        if bad:
            fail(key, f"{why}: {fix}.")


def _multi_model(config, entries, say):
    import keras_pose
    from keras_pose.keypoints import get_keypoint_spec
    from keras_pose.models.vitpose.vitpose_add_dataset import add_dataset
    from keras_pose.models.vitpose.vitpose_plus_pose_estimator import ViTPosePP

    m = config["model"]
    if m["preset"] is None:
        fail("model.preset", "is required with data.train as a list: multi-dataset training starts from a ViTPose++ "
             "preset (a released one, or a ViTPosePP saved with save_to_preset).")
    if m["dataset"]:
        fail("model.dataset", "applies to one-dataset fine-tuning; with data.train as a list every dataset's expert "
             "and head is trained. Remove it.")
    model = keras_pose.from_preset(m["preset"])
    if not isinstance(model, ViTPosePP):
        fail("model.preset", f"must be a ViTPose++ preset for multi-dataset training, got {type(model).__name__}.")
    for e in entries:
        if e["dataset"] not in model.datasets:
            spec = get_keypoint_spec(e["keypoints"] or e["annotation_file"])
            init_from = e["init_from"] or model.datasets[0]
            say(f"New dataset {e['dataset']!r} ({spec.num_keypoints} keypoints): expert and head from {init_from!r}.")
            model = add_dataset(model, e["dataset"], spec, init_from=init_from, active=False)
    return model


def train_multi_dataset_from_config(config, result_cls, verbose=1):
    """`train_from_config` for a config whose ``data.train`` is a list (see the module docstring).

    ``result_cls``: the result class (`trainer.TrainResult`, passed in by
    `train_from_config`: this module does not import the trainer).
    """
    from keras_pose.data.multi_dataset_pipeline import build_multi_dataset_pipeline
    from keras_pose.datasets import load_coco_keypoints
    from keras_pose.models.vitpose.vitpose_multi_dataset import ViTPosePPMultiDataset
    from keras_pose.training.callbacks import HistoryWriter, LearningRateLogger, TerminateOnNonFiniteLoss
    from keras_pose.training.checkpoints import json_safe, save_weights_atomic
    from keras_pose.training.optimizers import make_optimizer, make_schedule
    from keras_pose.training.run_folder import check_output, make_room, write_run_config
    from keras_pose.utils.file_utils import atomic_directory, atomic_write

    say = print if verbose else (lambda *a, **k: None)
    _refuse_unsupported(config)
    entries, out, t = config["data"]["train"], config["output"], config["train"]
    previous = check_output(out, config)
    if previous and previous.get("resume"):
        fail("output.resume", "multi-dataset runs cannot resume yet; give --restart (output.resume: false).")
    if t["seed"] is not None:
        keras.utils.set_random_seed(t["seed"])
    pose = _multi_model(config, entries, say)
    data = {}
    for i, e in enumerate(entries):
        spec = pose.with_dataset(e["dataset"]).keypoint_spec
        data[e["dataset"]] = load_coco_keypoints(e["annotation_file"], e["image_root"], keypoint_spec=spec)
        if len(data[e["dataset"]]) == 0:
            fail(f"data.train[{i}].annotation_file", f"{e['annotation_file']!r} has no usable instance to train on.")
    total = sum(len(v) for v in data.values())
    say(f"Training ViTPosePP on {len(entries)} datasets at once: " + ", ".join(
        f"{name} ({len(v)} instances, ratio {e['ratio']:g})" for (name, v), e in zip(data.items(), entries)) + ".")
    model = ViTPosePPMultiDataset(pose)
    steps = t["steps_per_epoch"] or max(1, math.ceil(total / t["batch_size"]))
    train_data = build_multi_dataset_pipeline(
        model, data, ratios={e["dataset"]: e["ratio"] for e in entries}, batch_size=t["batch_size"],
        seed=t["seed"], augment=t["augmentation"], repeat=True, drop_remainder=True,
        cache_images=config["data"]["cache_images"])
    schedule = make_schedule(t["learning_rate"], steps, t["epochs"])
    model.compile(optimizer=make_optimizer(t["optimizer"], schedule))

    files = {}
    out_dir = out["dir"]
    backup = make_room(out, previous, say)
    if backup:
        files["previous_run"] = backup
    files["config"] = os.path.join(out_dir, "config.yaml")
    write_run_config(files["config"], config)
    files["history.csv"] = os.path.join(out_dir, "history.csv")
    files["history.json"] = os.path.join(out_dir, "history.json")
    writer = HistoryWriter(files["history.csv"], files["history.json"])
    callbacks = [TerminateOnNonFiniteLoss(raise_error=True, verbose=0), LearningRateLogger(schedule), writer]
    model.fit(train_data, steps_per_epoch=steps, epochs=t["epochs"], callbacks=callbacks,
              verbose=0 if not verbose else 2, shuffle=False)
    history = writer.history()

    files["last_weights"] = os.path.join(out_dir, "checkpoints", "last.weights.h5")
    os.makedirs(os.path.dirname(files["last_weights"]), exist_ok=True)
    save_weights_atomic(pose, files["last_weights"], info={"epoch": t["epochs"]})
    preset_dir = os.path.join(out_dir, "preset")
    with atomic_directory(preset_dir) as tmp:
        copy_ = type(pose).from_config(pose.get_config())  # no optimizer state in the preset
        copy_.set_weights(pose.get_weights())
        copy_.save_to_preset(tmp)
    files["preset"] = preset_dir
    losses = history.get("loss") or []
    metrics = {"datasets": [e["dataset"] for e in entries], "ratios": [e["ratio"] for e in entries],
               "train_instances": {k: len(v) for k, v in data.items()}, "epochs": t["epochs"],
               "steps_per_epoch": steps, "first_loss": losses[0] if losses else None,
               "last_loss": losses[-1] if losses else None,
               "initialisation": "preset" if config["model"]["preset"] else "random",
               # No evaluation: the training loss is what `keras-pose train` reports as the best value.
               "monitor": "loss", "best_epoch": (int(min(range(len(losses)), key=losses.__getitem__)) + 1
                                                 if losses else None)}
    metrics["best"] = {"loss": losses[metrics["best_epoch"] - 1]} if losses else None
    # Each dataset's mean per-sample training loss, first and last epoch (ViTPosePPMultiDataset's loss_<dataset>).
    metrics["dataset_losses"] = {e["dataset"]: [(history.get(f"loss_{e['dataset']}") or [None])[0],
                                                (history.get(f"loss_{e['dataset']}") or [None])[-1]] for e in entries}
    files["metrics.json"] = os.path.join(out_dir, "metrics.json")
    with atomic_write(files["metrics.json"], "w") as f:
        json.dump(json_safe(metrics), f, indent=1, allow_nan=False)
        f.write("\n")
    say(f"Done: loss {metrics['first_loss']:.4g} -> {metrics['last_loss']:.4g} (" + ", ".join(
        f"{name} {v[0]:.4g} -> {v[1]:.4g}" for name, v in metrics["dataset_losses"].items() if None not in v)
        + f"); preset (all datasets) in {preset_dir}.")
    return result_cls(model=pose, history=history, output_dir=out_dir, preset_dir=preset_dir, metrics=metrics,
                       files=files)
