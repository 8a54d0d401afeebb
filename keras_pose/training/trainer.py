"""The training run: `train_from_config` (used by ``keras-pose train``).

::

    from keras_pose.training import load_train_config, train_from_config

    config = load_train_config("examples/train_config.yaml", overrides=["train.epochs=2"])
    result = train_from_config(config)
    result.preset_dir        # keras_pose.from_preset(result.preset_dir)
    result.history["loss"]   # per epoch

It checks the config (`config_schema`), builds the model (`model_builder`),
the ``tf.data`` pipeline, the optimizer and its learning-rate schedule
(`optimizers`) and the callbacks (`callbacks`), trains, and writes the
results into ``output.dir`` (`run_folder`).

The output folder receives ``config.yaml`` (the resolved config),
``history.csv`` and ``history.json`` (per-epoch loss, learning rate and
validation metrics), ``checkpoints/best.weights.h5`` (best by ``monitor``;
``best.json`` says which epoch and value) and
``checkpoints/last.weights.h5`` (the last epoch's weights, rewritten after
every epoch; ``last.json``), ``preset/`` (load it with
``keras_pose.from_preset``), ``metrics.json`` (best and last evaluation)
and ``training_curves.png``. Every file is written atomically.

A killed run resumes: the complete training state (weights, optimizer,
RNG states, data position, best metric) is saved atomically into
``checkpoints/state/step-*/`` at every epoch end and every
``output.state_every_n_steps`` steps (the last ``output.keep_states`` kept;
`keras_pose.training.resume`), and running the same config on the same
folder again continues from the newest state; with a seed, the final
weights equal an uninterrupted run's.

The papers' recipes (`param_groups`, `ema`): ``train.optimizer.layer_decay``
(ViTPose layer-wise learning-rate decay), ``train.optimizer.no_weight_decay``
(norms, biases, position embeddings by default), ``train.freeze`` (partial
fine-tuning by variable-path pattern; what was frozen is logged) and
``train.ema`` (mmpose ``ExpMomentumEMA``: evaluation, the best checkpoint,
``last.weights.h5`` and the preset hold the averages; the training states
hold the raw weights and the averages, so resuming stays exact). With
``verbose`` each epoch logs images/s and the whole run's ETA.

Nothing is lost: a folder that holds an earlier run that cannot be resumed
(finished, no state saved yet, or another config) is refused with a message
that lists its checkpoints and preset, unless ``output.overwrite`` (moves it
aside) or ``output.discard_previous_run`` (deletes it) says what to do with
it.
Training stops at the first NaN / Inf loss (`TrainingDivergedError`: the
epoch and step, and what to try): the weights of the last finite epoch stay
in ``last.weights.h5``, the best checkpoint is kept, and no preset or
``metrics.json`` is written.
"""

import dataclasses
import json
import math
import os
import shutil
import tempfile

import keras

from keras_pose.errors import NonFiniteModelError, TrainingDivergedError
from keras_pose.training.callbacks import (
    BestWeightsCheckpoint,
    HistoryWriter,
    LearningRateLogger,
    PoseEvaluationCallback,
    TerminateOnNonFiniteLoss,
    ThroughputLogger,
)
from keras_pose.training.checkpoints import json_safe, non_finite_weights, save_weights_atomic
from keras_pose.training.config_io import load_train_config
from keras_pose.training.config_values import fail
from keras_pose.training.model_builder import (
    build_model_from_config,
    check_sigmas,
    resolve_train_keypoint_spec,
    training_loss,
)
from keras_pose.training.optimizers import make_optimizer, make_schedule
from keras_pose.training.param_groups import apply_recipes, idle_dataset_rows
from keras_pose.training.distribution import setup_distribution
from keras_pose.training.resume import TrainingStateCheckpoint, mark_diverged
from keras_pose.training.run_folder import STATE_DIR, check_output, history_rows, start_or_resume
from keras_pose.utils.file_utils import atomic_directory, atomic_write
from keras_pose.utils.console import isatty


@dataclasses.dataclass
class TrainResult:
    """What `train_from_config` produced.

    Attributes:
        model: the trained model (with the weights written to the preset).
        history: ``{key: [value or None per epoch]}``.
        output_dir: the run folder.
        preset_dir: ``output_dir/preset`` (None in the processes other
            than process 0 of a distributed run: process 0 writes the results).
        metrics: the ``metrics.json`` content (best / last evaluation).
        files: name -> path of every file written; ``"previous_run"``: the
            folder an earlier run in ``output_dir`` was moved to;
            ``"resumed_from"``: the training state a resumed run started
            from.
        process_id: this process's index in a distributed run (0: the one
            that wrote the results).
    """

    model: object
    history: dict
    output_dir: str
    preset_dir: str
    metrics: dict
    files: dict
    process_id: int = 0



def _load_datasets(config, spec, verbose):
    import warnings

    from keras_pose.datasets import dataset_from_detections, load_coco_detections, load_coco_keypoints, load_mpii

    data = config["data"]

    def load(split, mode):
        if data["format"] == "mpii":
            with warnings.catch_warnings():
                if not verbose:
                    warnings.simplefilter("ignore")
                return load_mpii(split["annotation_file"], split["image_root"], mode=mode, keypoint_spec=spec)
        return load_coco_keypoints(split["annotation_file"], split["image_root"], keypoint_spec=spec, mode=mode)

    train = load(data["train"], "train")
    if len(train) == 0:
        fail("data.train.annotation_file", f"{data['train']['annotation_file']!r} has no usable (labelled) instance "
              "to train on.")
    val = None
    if data["val"] is not None:
        val = load(data["val"], "eval")
        if data["val"]["detections"]:
            detections = load_coco_detections(data["val"]["detections"], min_score=data["val"]["min_detection_score"])
            val = dataset_from_detections(detections, val)
        if len(val) == 0:
            fail("data.val", "has no instance to evaluate (no labelled people, or no detection above "
                  "min_detection_score).")
    return train, val


def _augment_for(spec, augment, say):
    """Drop half-body when the spec has no upper/lower body split."""
    if not augment:
        return False
    from keras_pose.data.augmentations import resolve_augment

    stages = resolve_augment(augment)
    if "half_body" in stages and not (spec.upper_body_indices and spec.lower_body_indices):
        say(f"note: keypoint spec {spec.name!r} has no upper/lower body split; half-body augmentation is off.")
        stages.pop("half_body")
    if "flip" in stages and not spec.flip_pairs:
        say(f"note: keypoint spec {spec.name!r} has no left/right pairs; flipping keeps every keypoint's name.")
    return {name: (stages.get(name) or None) for name in resolve_augment(True)}


def train_from_config(config, overrides=None, verbose=1):
    """Train a model as a config says and write the run's results.

    Args:
        config: a `TrainConfig`, a config file path, or a raw dict (see the
            module docstring for the schema).
        overrides: ``["train.epochs=2", ...]`` applied before validation.
        verbose: 0 silent, 1 progress bars (Keras ``fit``) and messages,
            2 one line per epoch.

    Returns:
        `TrainResult`.

    Raises:
        TrainConfigError: a bad config value (names the key), or an output
            folder that holds an earlier run (see ``output.overwrite``),
            found before any training starts.
        TrainingDivergedError: the loss (or the weights) became NaN / Inf;
            the last finite weights are kept in ``checkpoints/``.
    """
    config = load_train_config(config, overrides)
    if isinstance(config["data"]["train"], list):  # several datasets at once (ViTPose++)
        from keras_pose.training.multi_dataset_training import train_multi_dataset_from_config

        return train_multi_dataset_from_config(config, TrainResult, verbose)
    say = print if verbose else (lambda *a, **k: None)
    out = config["output"]
    d = config["train"]["distribution"] or {}
    setup = setup_distribution(d.get("kind"), mesh=d.get("mesh"), coordinator=d.get("coordinator"),
                               num_processes=d.get("num_processes"), process_id=d.get("process_id"),
                               sync_batch_norm=d.get("sync_batch_norm", True))
    if not setup.is_chief:
        # Checkpoints, logs, evaluation results and the preset come from process 0 only.
        say = lambda *a, **k: None  # noqa: E731
        out = dict(out, dir=tempfile.mkdtemp(prefix=f"keras-pose-process-{setup.process_id}-"))
    previous = check_output(out, config)
    resume = previous["state"] if previous and previous.get("resume") else None
    if config["train"]["seed"] is not None:
        keras.utils.set_random_seed(config["train"]["seed"])

    spec = resolve_train_keypoint_spec(config)
    with setup.scope():
        model = build_model_from_config(config, spec)
    spec = model.keypoint_spec
    check_sigmas(spec, config)
    train_set, val_set = _load_datasets(config, spec, verbose)
    source = f"preset {config['model']['preset']!r}" if config["model"]["preset"] else (
        f"a new {config['model']['architecture']} (random initialisation)")
    say(f"Training {type(model).__name__} from {source}: {model.count_params():,} parameters, input "
        f"{model.image_size[0]}x{model.image_size[1]}, keypoints {spec.name!r} ({spec.num_keypoints}); "
        f"{len(train_set)} training instances" + (f", {len(val_set)} validation instances" if val_set else "") + ".")

    from keras_pose.data import model_dataset

    t = config["train"]
    steps = t["steps_per_epoch"] or max(1, math.ceil(len(train_set) / t["batch_size"]))
    augment = _augment_for(spec, t["augmentation"], say)

    def training_data(global_step):
        # The seeded stream from `global_step` batches on: a resumed run sees
        # exactly the batches the killed run would have seen next.
        return model_dataset(model, train_set, batch_size=t["batch_size"], training=True, augment=augment,
                             seed=t["seed"], repeat=True, cache_images=config["data"]["cache_images"],
                             skip_elements=global_step * t["batch_size"], drop_remainder=True)

    schedule = make_schedule(t["learning_rate"], steps, t["epochs"])
    lr_multipliers = apply_recipes(model, t, say)
    frozen_rows = idle_dataset_rows(model, say)
    from keras_pose.training.distillation import apply_distillation_config

    model, distillation = apply_distillation_config(
        config.get("distillation"), model, keras_pose_from_preset, token_fit_args=(training_data(0),),
        token_fit_kwargs={"steps_per_epoch": steps, "verbose": 0}, say=say,
    )
    say(f"Distribution: {setup.describe(t['batch_size'])}.")
    compile_args = {} if setup.jit_compile is None else {"jit_compile": setup.jit_compile}
    with setup.scope():
        model.compile(optimizer=make_optimizer(t["optimizer"], schedule, lr_multipliers, frozen_rows),
                      loss=training_loss(config), distillation=distillation, **compile_args)

    ema = None
    if t["ema"]:
        from keras_pose.training.ema import ExpMomentumEMA

        ema = ExpMomentumEMA(momentum=t["ema"]["momentum"], gamma=t["ema"]["gamma"])
        say(f"EMA of the weights (mmpose ExpMomentumEMA, momentum {ema.momentum:g}, gamma {ema.gamma:g} steps): "
            "used for evaluation, the best checkpoint, last.weights.h5 and the preset.")
    out_dir = out["dir"]
    ckpt_dir = os.path.join(out_dir, "checkpoints")
    files = start_or_resume(out, previous, resume, config, steps, model, ema, say)

    e = config["evaluation"]
    files["last_weights"] = os.path.join(ckpt_dir, "last.weights.h5")
    # First, so that nothing after it sees NaN weights: it restores the last
    # finite weights (saved as last.weights.h5 after every finite epoch).
    guard = TerminateOnNonFiniteLoss(snapshot_path=files["last_weights"], raise_error=True, verbose=0)
    callbacks = [guard, LearningRateLogger(schedule)]
    evaluation_callbacks = []
    if val_set is not None:
        evaluation_callbacks.append(
            PoseEvaluationCallback(
                val_set,
                metric=e["metric"],
                every_n_epochs=e["every_n_epochs"],
                batch_size=e["batch_size"],
                flip_test=e["flip_test"],
                # Progress bar and result line on a terminal; in logs the
                # epoch line of fit carries the values.
                verbose=1 if verbose and isatty() else 0,
            )
        )
    files["history.csv"] = os.path.join(out_dir, "history.csv")
    files["history.json"] = os.path.join(out_dir, "history.json")
    history_writer = HistoryWriter(files["history.csv"], files["history.json"])
    mode = "min" if "loss" in e["monitor"] or "epe" in e["monitor"] else "max"
    best_path = os.path.join(ckpt_dir, "best.weights.h5")
    checkpoint = BestWeightsCheckpoint(best_path, e["monitor"], mode=mode, verbose=1 if verbose else 0)
    # Last: the state it saves includes this epoch's history and best value.
    state_saver = TrainingStateCheckpoint(
        os.path.join(out_dir, STATE_DIR), every_n_steps=out["state_every_n_steps"], keep=out["keep_states"],
        extra_state=lambda: {"best": checkpoint.best, "best_epoch": checkpoint.best_epoch,
                             "last_finite_epoch": guard.last_finite_epoch}, ema=ema)
    evaluation_callbacks += [history_writer, checkpoint]
    # With EMA: evaluation, history and the best checkpoint see the averages;
    # the state is saved with the raw weights (and the averages beside them).
    callbacks += ([ema, *ema.evaluation_callbacks(*evaluation_callbacks)] if ema else evaluation_callbacks)
    if verbose:
        callbacks.append(ThroughputLogger(t["batch_size"], t["epochs"], print_fn=say))
    callbacks.append(state_saver)
    epoch, step = 0, 0
    if resume is not None:
        epoch, step = resume["epoch"], resume["step"]
        extra = resume.get("extra") or {}
        checkpoint.best, checkpoint.best_epoch = extra.get("best"), extra.get("best_epoch")
        guard.start_epoch = extra.get("last_finite_epoch") or epoch
        history_writer.rows = history_rows(files["history.json"], epoch)

    # Keras progress bars on a terminal, one line per epoch in logs.
    fit_verbose = 0 if not verbose else 1 if verbose == 1 and isatty() else 2
    try:
        # Batch norm over the global batch under MirroredStrategy (switched back after fit).
        with setup.batch_norm_sync(model):
            if step:
                # The rest of the epoch the killed run was in (its history row
                # averages the loss over these steps only), then whole epochs.
                state_saver.step_offset = step
                model.fit(training_data(epoch * steps + step), steps_per_epoch=steps - step, initial_epoch=epoch,
                          epochs=epoch + 1, callbacks=callbacks, verbose=fit_verbose, shuffle=False)
                epoch += 1
                guard.start_epoch = guard.last_finite_epoch
            if epoch < t["epochs"] and not model.stop_training:
                model.fit(training_data(epoch * steps), steps_per_epoch=steps, initial_epoch=epoch, epochs=t["epochs"],
                          callbacks=callbacks, verbose=fit_verbose, shuffle=False)
    except NonFiniteModelError as e:  # the guard's TrainingDivergedError included
        error = TrainingDivergedError(_diverged_message(guard, checkpoint, config, schedule, steps, e))
        mark_diverged(os.path.join(out_dir, STATE_DIR), str(error))
        raise error from e
    history = history_writer.history()
    if ema is not None:
        ema.swap_in()  # from here on the model holds the averages (last.weights.h5, preset)
    if non_finite_weights(model):  # the guard checks every epoch; never write a preset with NaN weights
        error = TrainingDivergedError(_diverged_message(guard, checkpoint, config, schedule, steps, None))
        mark_diverged(os.path.join(out_dir, STATE_DIR), str(error))
        raise error

    save_weights_atomic(model, files["last_weights"], info={"epoch": t["epochs"]})
    if checkpoint.best_epoch is not None:
        files["best_weights"] = best_path
    saved = "last"
    if out["save"] == "best" and checkpoint.best_epoch is not None:
        if checkpoint.best_epoch != t["epochs"]:
            model.load_weights(best_path)
        saved = "best"

    preset_dir = os.path.join(out_dir, "preset")
    with atomic_directory(preset_dir) as tmp:
        _uncompiled_copy(model).save_to_preset(tmp)
    files["preset"] = preset_dir

    def epoch_values(epoch):
        if epoch is None:
            return None
        return {k: v[epoch - 1] for k, v in history.items() if v[epoch - 1] is not None}

    metrics = {
        "monitor": e["monitor"],
        "mode": mode,
        "best_epoch": checkpoint.best_epoch,
        "best": epoch_values(checkpoint.best_epoch),
        "last": epoch_values(len(history["epoch"])),
        "preset_weights": saved,
        "epochs": t["epochs"],
        "steps_per_epoch": steps,
        "train_instances": len(train_set),
        "val_instances": len(val_set) if val_set is not None else 0,
        "initialisation": "preset" if config["model"]["preset"] else "random",
    }
    files["metrics.json"] = os.path.join(out_dir, "metrics.json")
    with atomic_write(files["metrics.json"], "w") as f:
        json.dump(json_safe(metrics), f, indent=1, allow_nan=False)
        f.write("\n")
    if out["plot"]:
        from keras_pose.visualization_plots import plot_training_curves

        files["training_curves.png"] = plot_training_curves(history, os.path.join(out_dir, "training_curves.png"),
                                                            title=f"{type(model).__name__} - {spec.name}")
    best_text = (f"best {e['monitor']} {checkpoint.best:.4f} at epoch {checkpoint.best_epoch}"
                 if checkpoint.best_epoch is not None else f"{e['monitor']} never improved")
    say(f"Done: {best_text}; preset ({saved} weights) in {preset_dir}.")
    if not setup.is_chief:  # process 0 wrote the results; this one's copies go
        shutil.rmtree(out_dir, ignore_errors=True)
        return TrainResult(model=model, history=history, output_dir=config["output"]["dir"], preset_dir=None,
                           metrics=metrics, files={}, process_id=setup.process_id)
    return TrainResult(model=model, history=history, output_dir=out_dir, preset_dir=preset_dir, metrics=metrics,
                       files=files)


def keras_pose_from_preset(preset):
    """A distillation teacher: `keras_pose.from_preset` (weights loaded)."""
    import keras_pose

    return keras_pose.from_preset(preset)


def _diverged_message(guard, checkpoint, config, schedule, steps, error):
    """The one-paragraph report of a diverged run: where, what was kept, what to try."""
    d = guard.diverged
    if d is not None:
        global_step = (d["epoch"] - 1) * steps + (d["step"] or steps) - 1
        rate = float(keras.ops.convert_to_numpy(schedule(global_step)))
        where = f"{guard.describe()} (learning rate {rate:.3g})"
    elif error is not None:
        where = " ".join(str(error).split())
    else:
        where = "the weights hold NaN or Inf after the last epoch"
    kept = []
    if guard.last_finite_epoch:
        kept.append(f"the last finite weights (end of epoch {guard.last_finite_epoch}) in {guard.snapshot_path}")
    if checkpoint.best_epoch is not None:
        kept.append(f"the best checkpoint ({checkpoint.monitor} {checkpoint.best:.4f} at epoch "
                    f"{checkpoint.best_epoch}) in {checkpoint.path}")
    kept = "; kept " + " and ".join(kept) if kept else "; no epoch finished with finite weights, so no checkpoint"
    t = config["train"]
    lr, opt = t["learning_rate"], t["optimizer"]
    clip = f"train.optimizer.clipnorm, now {opt['clipnorm']:g}: lower it" if opt["clipnorm"] else (
        "train.optimizer.clipnorm: 1.0")
    warmup = lr["warmup_epochs"] if lr["warmup_epochs"] is not None else lr["warmup_steps"]
    warm = "train.learning_rate.warmup_epochs: 1" if not warmup else "a longer train.learning_rate warm-up"
    return (f"Training diverged: {where}; stopped{kept}; no preset or metrics.json was written. Try a lower "
            f"train.learning_rate.base (now {lr['base']:g}), gradient clipping ({clip}) or a warm-up ({warm}).")


def _uncompiled_copy(model):
    """The model without its optimizer: presets hold weights, not training state.

    (A compiled task saves its optimizer variables and schedule; loading such
    a preset warns about optimizer variables it cannot restore.)
    """
    copy_ = type(model).from_config(model.get_config())
    copy_.set_weights(model.get_weights())
    return copy_


__all__ = ["TrainResult", "train_from_config"]
