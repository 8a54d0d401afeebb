"""The output folder of a training run: what a run leaves, and nothing lost.

A folder that holds an earlier run (finished, killed or diverged) is refused
with a message that lists its checkpoints and preset (`check_output`),
unless ``output.overwrite`` (`make_room` moves it to
``previous_runs/<its start time>/``) or ``output.discard_previous_run``
(deletes it) says what to do with it. `describe_previous_run` is what
``keras-pose train --dry-run`` reports.
"""

import numbers
import os
import shutil
import time

from keras_pose.training.config_values import fail
from keras_pose.training.resume import diverged_message, latest_training_state, restore_training_state
from keras_pose.utils.file_utils import atomic_write
from keras_pose.utils.json_files import read_json_dict

# What a run writes into output.dir; `previous_runs/` holds earlier runs
# moved aside by output.overwrite.
_RUN_NAMES = ("config.yaml", "history.csv", "history.json", "metrics.json", "training_curves.png", "checkpoints",
              "preset")
PREVIOUS_RUNS_DIR = "previous_runs"
# The complete training states a resumed run continues from (keras_pose.training.resume).
STATE_DIR = os.path.join("checkpoints", "state")
# Config keys a resumed run may change: where and how results are written, not what is trained.
_RESUMABLE_CHANGES = ("output.",)
# The first line of a run's config.yaml: how a folder is recognised as a run's
# (runs written before the training package was split carry it too; keep it).
CONFIG_HEADER = "# The resolved training config of this run (keras_pose.training.train_config)."


def describe_previous_run(directory):
    """What an earlier `train_from_config` run left in ``directory``.

    Returns:
        None when the folder holds no run's files, else a dict: ``entries``
        (the run's files and folders there), ``finished`` (metrics.json and
        the preset were written), ``epochs`` (epochs logged in history.json,
        or None), ``best`` (None: no best checkpoint, else ``{monitor,
        value, epoch}`` as far as known), ``last`` (None, or ``{epoch}``),
        ``preset`` (bool), ``started`` (the run's start, seconds since the
        epoch) and ``summary`` / ``weights`` (text for messages).

    Raises:
        TrainConfigError: the folder holds a ``config.yaml`` that no run
            wrote (a run would replace it).
    """
    entries = [n for n in _RUN_NAMES if os.path.lexists(os.path.join(directory, n))]
    if not entries:
        return None
    config_path = os.path.join(directory, "config.yaml")
    if "config.yaml" in entries:
        try:
            with open(config_path, encoding="utf-8") as f:
                ours = f.readline().rstrip("\n") == CONFIG_HEADER
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            fail("output.dir", f"{directory!r} holds a config.yaml that no keras-pose run wrote (a run writes its "
                  "resolved config there and would replace it); choose another output folder.")
    ckpt = os.path.join(directory, "checkpoints")
    metrics = read_json_dict(os.path.join(directory, "metrics.json")) or {}
    history = read_json_dict(os.path.join(directory, "history.json")) or {}
    best = None
    if os.path.isfile(os.path.join(ckpt, "best.weights.h5")):
        best = read_json_dict(os.path.join(ckpt, "best.json")) or {}
        if not best and metrics.get("best_epoch"):
            monitor = metrics.get("monitor")
            best = {"monitor": monitor, "value": (metrics.get("best") or {}).get(monitor),
                    "epoch": metrics["best_epoch"]}
    last = None
    if os.path.isfile(os.path.join(ckpt, "last.weights.h5")):
        last = read_json_dict(os.path.join(ckpt, "last.json")) or {}
    preset = os.path.isdir(os.path.join(directory, "preset"))
    state = latest_training_state(os.path.join(directory, STATE_DIR))
    diverged = diverged_message(os.path.join(directory, STATE_DIR))
    epochs = history.get("epoch")
    epochs = len(epochs) if isinstance(epochs, list) else None
    times = [os.path.getmtime(os.path.join(directory, n)) for n in entries]
    started = os.path.getmtime(config_path) if "config.yaml" in entries else min(times)
    info = {"entries": entries, "finished": bool(metrics) and preset, "epochs": epochs, "best": best, "last": last,
            "preset": preset, "started": started, "state": state,
            "diverged": diverged}

    weights = []
    if best is not None:
        known = isinstance(best.get("value"), numbers.Real) and best.get("monitor") and best.get("epoch")
        weights.append("the best checkpoint checkpoints/best.weights.h5" + (
            f" ({best['monitor']} {best['value']:.4f} at epoch {best['epoch']})" if known else ""))
    if last is not None:
        weights.append("the last checkpoint checkpoints/last.weights.h5" + (
            f" (end of epoch {last['epoch']})" if last.get("epoch") else ""))
    if preset:
        weights.append("its preset (preset/)")
    status = "a finished run" if info["finished"] else "an unfinished run (killed, diverged or still running)"
    logged = f", {epochs} epoch{'s' if epochs != 1 else ''} logged" if epochs is not None else ""
    info["weights"] = (", ".join(weights[:-1]) + " and " + weights[-1] if len(weights) > 1 else weights[0]) if (
        weights) else "no weights (the run saved none)"
    if state is not None and not info["finished"] and not diverged:
        logged += f", resumable at epoch {state['epoch'] + 1} step {state['step'] + 1}"
    info["summary"] = f"{status}{logged}, started {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, " + (
        f"with {info['weights']}" if weights else "with no checkpoint or preset")
    return info


def check_output(out, config=None):
    """Refuse to start in a folder that holds an earlier run, unless told what to do with it.

    An unfinished run with a saved training state is resumed (``output.resume``,
    the default) when ``config`` is the config it was started with (except
    ``output.*``); the returned dict then has ``"resume": True``.

    Returns the `describe_previous_run` dict (None: the folder holds no run).
    """
    info = describe_previous_run(out["dir"])
    if info is None or out["overwrite"] or out["discard_previous_run"]:
        return info
    if info["finished"]:
        why = "It finished, so there is nothing to resume"
    elif info["diverged"]:
        why = ("It diverged, and resuming it with the same config would diverge again (" +
               info["diverged"].rstrip(".") + ")")
    elif info["state"] is None:
        why = "It saved no training state to resume from (it stopped before its first epoch end or state step)"
    elif not out["resume"]:
        why = "Resuming is off (output.resume: false)"
    else:
        changed = _config_changes(os.path.join(out["dir"], "config.yaml"), config)
        if not changed:
            info["resume"] = True
            return info
        why = (f"It cannot be resumed with this config: {', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''} "
               "differ from the run's config.yaml (give the same config and flags to resume)")
    fail("output.dir", f"{out['dir']!r} holds {info['summary']}. {why}, and a new run here would replace its files. "
          "Choose one: another output folder (--output-dir / output.dir); --restart or --overwrite (output.overwrite: "
          "true) to "
          f"start over here and move the earlier run to {_backup_dir(out['dir'], info)} (nothing is deleted); or "
          "--discard-previous-run (output.discard_previous_run: true) to delete the earlier run, losing "
          f"{info['weights']}.")


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value}


def _config_changes(path, config):
    """Dotted keys whose values differ between a run's ``config.yaml`` and ``config`` (None: no config given)."""
    if config is None:
        return []
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            saved = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as error:
        return [f"config.yaml (unreadable: {error})"]
    old, new = _flatten(saved if isinstance(saved, dict) else {}), _flatten(config.to_dict())
    keys = [k for k in new if k not in old] + [k for k in old if k not in new] + [
        k for k in new if k in old and old[k] != new[k]]
    return [k for k in keys if not k.startswith(_RESUMABLE_CHANGES)]


def _backup_dir(directory, info):
    """``directory/previous_runs/<start time of the run>`` (a free name)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(info["started"]))
    backup = os.path.join(directory, PREVIOUS_RUNS_DIR, stamp)
    suffix = 1
    while os.path.lexists(backup):
        suffix += 1
        backup = os.path.join(directory, PREVIOUS_RUNS_DIR, f"{stamp}-{suffix}")
    return backup


def make_room(out, info, say):
    """Move the earlier run aside (overwrite) or delete it (discard_previous_run).

    Returns the folder the earlier run was moved to (None: deleted or none).
    """
    os.makedirs(out["dir"], exist_ok=True)
    if info is None:
        return None
    directory = out["dir"]
    if out["discard_previous_run"]:
        for name in info["entries"]:
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        say(f"Deleted the earlier run in {directory} (output.discard_previous_run), with {info['weights']}.")
        return None
    backup = _backup_dir(directory, info)
    os.makedirs(backup)
    for name in info["entries"]:
        os.replace(os.path.join(directory, name), os.path.join(backup, name))
    say(f"Moved the earlier run in {directory} to {backup} (output.overwrite; delete it when you no longer need "
        f"{info['weights']}).")
    return backup



def write_run_config(path, config):
    """``config.yaml``: the run's resolved config under the header that marks it as a run's (atomic)."""
    with atomic_write(path, "w") as f:
        f.write(CONFIG_HEADER + "\n")
        f.write(config.to_yaml())


def history_rows(path, epochs):
    """The first ``epochs`` rows of a run's ``history.json`` (a resumed run continues them)."""
    history = read_json_dict(path) or {}
    keys = [k for k, v in history.items() if isinstance(v, list)]
    count = min([epochs] + [len(history[k]) for k in keys])
    return [{k: history[k][i] for k in keys if history[k][i] is not None} for i in range(count)]



def start_or_resume(out, previous, resume, config, steps, model, ema, say):
    """Begin a run in ``out["dir"]`` or pick up the killed one; the run-folder entries it made.

    A new run: only now (everything that can fail on the config has run) is
    an earlier run in the folder moved aside or deleted as asked
    (`make_room`), and the config written. A resumed run: the training state
    ``resume`` (`latest_training_state`) is restored into ``model`` / ``ema``
    after checking it has ``steps`` steps per epoch.

    Returns:
        ``{"config": path[, "previous_run": path][, "resumed_from": folder]}``.
    """
    files = {"config": os.path.join(out["dir"], "config.yaml")}
    if resume is None:
        backup = make_room(out, previous, say)
        if backup:
            files["previous_run"] = backup
        write_run_config(files["config"], config)
        return files
    if resume["steps_per_epoch"] != steps:
        fail("train.steps_per_epoch", f"the run in {out['dir']!r} has {resume['steps_per_epoch']} steps per epoch, "
             f"this config {steps} (the training set changed?); resume needs the same, or --restart.")
    restore_training_state(model, resume, ema=ema)
    files["resumed_from"] = resume["folder"]
    say(f"Resuming the run in {out['dir']} at epoch {resume['epoch'] + 1}, step {resume['step'] + 1} (global step "
        f"{resume['global_step']}) from {resume['folder']}.")
    return files

__all__ = ["PREVIOUS_RUNS_DIR", "STATE_DIR", "check_output", "describe_previous_run", "history_rows", "make_room",
           "start_or_resume", "write_run_config"]
