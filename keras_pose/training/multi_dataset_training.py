"""`keras-pose train` with ``data.train`` as a list of datasets: ViTPose++ multi-dataset training.

Config (the other sections as usual)::

    model:
      preset: a ViTPose++ preset (required; every expert and head is kept)
    data:
      train:
        - {dataset: coco, annotation_file: A.json, image_root: DIR, ratio: 1,
           val: {annotation_file: A_val.json, image_root: DIR}}
        - {dataset: ap10k, annotation_file: B.json, ratio: 0.5,
           keypoints: SPEC, init_from: coco, val: B_val.json}

Each entry: ``dataset`` (required) names the model's dataset (its expert and
head); a name the model lacks gets a new expert and head copied from
``init_from`` (default: the model's first dataset) with the keypoint spec
``keypoints`` (default: the annotation file's category). ``ratio`` [1.0] is
the dataset's sampling weight in the mixed batches. ``val`` [null]: that
dataset's validation split, evaluated with its own head, keypoint spec and
OKS sigmas every ``evaluation.every_n_epochs`` epochs with
``evaluation.metric`` (auto: COCO AP); the history gets
``val_<dataset>_<metric>`` (``val_ap10k_coco_AP``), ``metrics.json`` the last
values per dataset under ``"val"``.

The run trains `ViTPosePPMultiDataset` and writes the `ViTPosePP` (all
experts and heads) as the preset, ``last.weights.h5``, ``history.csv`` /
``history.json`` and ``metrics.json``. The experts and heads of the model's
datasets that are not in the list get no update and no weight decay
(`param_groups.inactive_dataset_rows`). As the one-dataset trainer:
``train.ema`` (evaluation, ``last.weights.h5`` and the preset hold the
averages), ``train.freeze``, ``train.optimizer.layer_decay``, and resuming a
killed run (the training state in ``checkpoints/state/`` every epoch and
every ``output.state_every_n_steps`` steps; the same config on the same
folder continues it, the mixed batches included).

Not supported with a list (each refused by name, with what to do):
``data.val`` (give each dataset's ``val``), ``data.format: mpii``,
``train.distribution``, ``distillation`` and a top-level ``keypoints``.
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
        ("data.val", config["data"]["val"] is not None,
         "give each dataset its own validation split instead (data.train[i].val: {annotation_file, image_root})"),
        ("data.format", config["data"]["format"] != "coco", "use COCO-format annotation files"),
        ("train.distribution", bool(t["distribution"]), "train on one device (per-sample expert routing is not "
         "checked against one-device training under a distribution engine yet)"),
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



def _load_splits(entries, pose, say):
    """Each dataset's training instances and (with ``val``) evaluation instances, read with its keypoint spec."""
    from keras_pose.datasets import load_coco_keypoints

    train, val = {}, {}
    for i, e in enumerate(entries):
        spec = pose.with_dataset(e["dataset"]).keypoint_spec
        train[e["dataset"]] = load_coco_keypoints(e["annotation_file"], e["image_root"], keypoint_spec=spec)
        if len(train[e["dataset"]]) == 0:
            fail(f"data.train[{i}].annotation_file", f"{e['annotation_file']!r} has no usable instance to train on.")
        if e["val"] is not None:
            val[e["dataset"]] = load_coco_keypoints(e["val"]["annotation_file"], e["val"]["image_root"],
                                                    keypoint_spec=spec, mode="eval")
            if len(val[e["dataset"]]) == 0:
                fail(f"data.train[{i}].val", f"{e['val']['annotation_file']!r} has no instance to evaluate.")
    say(f"Training ViTPosePP on {len(entries)} datasets at once: " + ", ".join(
        f"{e['dataset']} ({len(train[e['dataset']])} instances, ratio {e['ratio']:g}"
        + (f", {len(val[e['dataset']])} validation" if e["dataset"] in val else "") + ")" for e in entries) + ".")
    return train, val


def train_multi_dataset_from_config(config, result_cls, verbose=1):
    """`train_from_config` for a config whose ``data.train`` is a list (see the module docstring).

    ``result_cls``: the result class (`trainer.TrainResult`, passed in by
    `train_from_config`: this module does not import the trainer).
    """
    from keras_pose.data.multi_dataset_pipeline import build_multi_dataset_pipeline
    from keras_pose.models.vitpose.vitpose_multi_dataset import ViTPosePPMultiDataset
    from keras_pose.training.callbacks import (
        HistoryWriter,
        LearningRateLogger,
        PoseEvaluationCallback,
        TerminateOnNonFiniteLoss,
    )
    from keras_pose.training.checkpoints import json_safe, save_weights_atomic
    from keras_pose.training.optimizers import make_optimizer, make_schedule
    from keras_pose.training.param_groups import apply_recipes, idle_dataset_rows
    from keras_pose.training.resume import TrainingStateCheckpoint
    from keras_pose.training.run_folder import STATE_DIR, check_output, history_rows, start_or_resume
    from keras_pose.utils.file_utils import atomic_directory, atomic_write

    say = print if verbose else (lambda *a, **k: None)
    _refuse_unsupported(config)
    entries, out, t, e = config["data"]["train"], config["output"], config["train"], config["evaluation"]
    previous = check_output(out, config)
    resume = previous["state"] if previous and previous.get("resume") else None
    if t["seed"] is not None:
        keras.utils.set_random_seed(t["seed"])
    pose = _multi_model(config, entries, say)
    data, val = _load_splits(entries, pose, say)
    model = ViTPosePPMultiDataset(pose)
    total = sum(len(v) for v in data.values())
    steps = t["steps_per_epoch"] or max(1, math.ceil(total / t["batch_size"]))

    def training_data(global_step):
        # The seeded mixed stream from batch `global_step` on: a resumed run sees the batches the killed one would.
        batches = build_multi_dataset_pipeline(
            model, data, ratios={e["dataset"]: e["ratio"] for e in entries}, batch_size=t["batch_size"],
            seed=t["seed"], augment=t["augmentation"], repeat=True, drop_remainder=True,
            cache_images=config["data"]["cache_images"])
        return batches.skip(global_step) if global_step else batches

    schedule = make_schedule(t["learning_rate"], steps, t["epochs"])
    lr_multipliers = apply_recipes(pose, t, say)
    frozen_rows = idle_dataset_rows(pose, say, trained=[e["dataset"] for e in entries])
    model.compile(optimizer=make_optimizer(t["optimizer"], schedule, lr_multipliers, frozen_rows))
    ema = None
    if t["ema"]:
        from keras_pose.training.ema import ExpMomentumEMA

        ema = ExpMomentumEMA(momentum=t["ema"]["momentum"], gamma=t["ema"]["gamma"])
        say(f"EMA of the weights (momentum {ema.momentum:g}, gamma {ema.gamma:g} steps): used for evaluation, "
            "last.weights.h5 and the preset.")

    out_dir = out["dir"]
    files = start_or_resume(out, previous, resume, config, steps, model, ema, say)
    files["history.csv"] = os.path.join(out_dir, "history.csv")
    files["history.json"] = os.path.join(out_dir, "history.json")
    writer = HistoryWriter(files["history.csv"], files["history.json"])
    # Each dataset evaluated through its own head and keypoint spec (a ViTPosePP view sharing the weights).
    evaluations = [PoseEvaluationCallback(val[name], metric=e["metric"], every_n_epochs=e["every_n_epochs"],
                                          batch_size=e["batch_size"], flip_test=e["flip_test"],
                                          prefix=f"val_{name}_", verbose=0, model=pose.with_dataset(name))
                   for name in val]
    state_saver = TrainingStateCheckpoint(os.path.join(out_dir, STATE_DIR), every_n_steps=out["state_every_n_steps"],
                                          keep=out["keep_states"], ema=ema)
    callbacks = [TerminateOnNonFiniteLoss(raise_error=True, verbose=0), LearningRateLogger(schedule)]
    callbacks += [ema, *ema.evaluation_callbacks(*evaluations, writer)] if ema else [*evaluations, writer]
    callbacks.append(state_saver)  # last: the state it saves includes this epoch's history
    epoch, step = (resume["epoch"], resume["step"]) if resume is not None else (0, 0)
    if resume is not None:
        writer.rows = history_rows(files["history.json"], epoch)
    fit_verbose = 0 if not verbose else 2
    if step:  # the rest of the epoch the killed run was in, then whole epochs
        state_saver.step_offset = step
        model.fit(training_data(epoch * steps + step), steps_per_epoch=steps - step, initial_epoch=epoch,
                  epochs=epoch + 1, callbacks=callbacks, verbose=fit_verbose, shuffle=False)
        epoch += 1
    if epoch < t["epochs"]:
        model.fit(training_data(epoch * steps), steps_per_epoch=steps, initial_epoch=epoch, epochs=t["epochs"],
                  callbacks=callbacks, verbose=fit_verbose, shuffle=False)
    history = writer.history()
    if ema is not None:
        ema.swap_in()  # from here on the model holds the averages (last.weights.h5, preset)

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
               "val_instances": {k: len(v) for k, v in val.items()},
               # The training loss is what `keras-pose train` reports as the best value of a multi-dataset run.
               "monitor": "loss", "best_epoch": (int(min(range(len(losses)), key=losses.__getitem__)) + 1
                                                 if losses else None)}
    metrics["best"] = {"loss": losses[metrics["best_epoch"] - 1]} if losses else None
    # Each dataset's mean per-sample training loss, first and last epoch (ViTPosePPMultiDataset's loss_<dataset>).
    metrics["dataset_losses"] = {e["dataset"]: [(history.get(f"loss_{e['dataset']}") or [None])[0],
                                                (history.get(f"loss_{e['dataset']}") or [None])[-1]] for e in entries}
    # Each dataset's last evaluation ({dataset: {metric: value}}; EMA averages when train.ema).
    metrics["val"] = {name: {k[len(f"val_{name}_"):]: next((x for x in reversed(v) if x is not None), None)
                             for k, v in history.items() if k.startswith(f"val_{name}_")} for name in val}
    files["metrics.json"] = os.path.join(out_dir, "metrics.json")
    with atomic_write(files["metrics.json"], "w") as f:
        json.dump(json_safe(metrics), f, indent=1, allow_nan=False)
        f.write("\n")
    say(f"Done: loss {metrics['first_loss']:.4g} -> {metrics['last_loss']:.4g} (" + ", ".join(
        f"{name} {v[0]:.4g} -> {v[1]:.4g}" for name, v in metrics["dataset_losses"].items() if None not in v)
        + f"); preset (all datasets) in {preset_dir}.")
    return result_cls(model=pose, history=history, output_dir=out_dir, preset_dir=preset_dir, metrics=metrics,
                      files=files)
