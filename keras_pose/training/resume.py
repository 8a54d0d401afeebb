"""Resuming a killed training run: the complete training state, saved atomically.

`TrainingStateCheckpoint` (a ``fit`` callback) writes the state at the end of
every epoch and every ``every_n_steps`` steps into
``directory/step-<global step, 9 digits>/``:

- ``model.weights.h5``: the model's weights and the optimizer's state
  (iteration count, hence the learning-rate schedule position; moments);
- ``rng.npz``: the states of the model's random-number generators (the
  ``SeedGenerator`` of dropout / drop-path layers, which Keras' weight files
  leave out);
- ``ema.npz``: with an `keras_pose.training.ema.ExpMomentumEMA` (``ema=``),
  the weight averages and their step count;
- ``state.json``: ``epoch`` (completed epochs), ``step`` (steps done in the
  next epoch), ``global_step``, ``steps_per_epoch`` and what other callbacks
  registered (the best metric so far, ...).

Each folder is built in a temporary sibling and renamed when complete
(`keras_pose.utils.file_utils.atomic_directory`), so a ``step-*`` folder
holding ``state.json`` is always whole; the last ``keep`` are kept. A kill
at any moment leaves the previous states intact.

`keras-pose train` resumes from the newest state when run again on the same
output folder (`keras_pose.training.trainer`): it restores the state and
skips the data the run had consumed (``global_step * batch_size`` elements of
the seeded pipeline), so with deterministic settings the final weights equal
an uninterrupted run's. With plain ``fit``::

    ckpt = TrainingStateCheckpoint("run/state", every_n_steps=500, restore=True)
    model.fit(train_ds, epochs=210, callbacks=[ckpt])   # resumes at the newest epoch end

``restore=True`` restores the newest state saved at an epoch end (Keras'
``fit`` starts epochs at their first step; the data position inside an epoch
is the pipeline's business, which ``keras-pose train`` handles).
"""

import json
import os
import re
import shutil

import numpy as np

import keras

from keras_pose.errors import TrainConfigError
from keras_pose.training.checkpoints import json_safe, non_finite_weights
from keras_pose.utils.file_utils import atomic_directory, atomic_write
from keras_pose.utils.json_files import read_json, read_json_dict

STATE_PREFIX = "step-"
_STATE_NAME = re.compile(r"^step-(\d{9})$")
WEIGHTS_FILE = "model.weights.h5"
RNG_FILE = "rng.npz"
STATE_FILE = "state.json"
# Beside the states of a run that diverged: resuming it would diverge again.
DIVERGED_FILE = "diverged.json"


def _rng_variables(model):
    """The model's SeedGenerator state variables, in a fixed order."""
    return [v for v in model.non_trainable_variables if "seed_generator" in (getattr(v, "path", "") or v.name)]


def list_training_states(directory):
    """The complete states in ``directory``, oldest first: ``[(global_step, folder), ...]``."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _STATE_NAME.match(name)
        folder = os.path.join(directory, name)
        if match and os.path.isfile(os.path.join(folder, STATE_FILE)):
            found.append((int(match.group(1)), folder))
    return sorted(found)


def read_training_state(folder):
    """``state.json`` of a state folder, with ``folder`` added."""
    state = read_json(os.path.join(folder, STATE_FILE), TrainConfigError,
                      f"delete the folder {folder!r} to resume from the state before it.")
    state["folder"] = folder
    return state


def latest_training_state(directory, epoch_end_only=False):
    """The newest complete state of ``directory`` (a dict, see `read_training_state`), or None."""
    for _, folder in reversed(list_training_states(directory)):
        state = read_training_state(folder)
        if not epoch_end_only or state["step"] == 0:
            return state
    return None


def restore_training_state(model, state, ema=None):
    """Load a state's weights, optimizer state and RNG states into a compiled model.

    Args:
        model: the model, built and compiled as when the state was saved.
        state: a dict from `latest_training_state` (or its folder path).
        ema: None, or the run's `ExpMomentumEMA`: its averages and step count
            are restored too (a state saved without EMA leaves it to start
            from the next step's weights).

    Returns:
        The state dict.
    """
    if isinstance(state, (str, os.PathLike)):
        state = read_training_state(os.fspath(state))
    folder = state["folder"]
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(folder, WEIGHTS_FILE))
    rng_path = os.path.join(folder, RNG_FILE)
    if os.path.isfile(rng_path):
        variables = _rng_variables(model)
        with np.load(rng_path, allow_pickle=False) as saved:
            if len(saved.files) != len(variables):
                raise TrainConfigError(f"training state {folder!r} holds {len(saved.files)} random-generator states, "
                                       f"the model has {len(variables)}: it was saved by another model.")
            for i, variable in enumerate(variables):
                variable.assign(saved[f"rng_{i}"])
    if ema is not None:
        ema.restore_state(folder, model)
    return state


def mark_diverged(directory, message):
    """Record in a state folder that its run diverged (`diverged_message` reads it)."""
    os.makedirs(directory, exist_ok=True)
    with atomic_write(os.path.join(directory, DIVERGED_FILE), "w") as f:
        json.dump({"message": message}, f)
        f.write("\n")


def diverged_message(directory):
    """The message a diverged run recorded in its state folder, or None."""
    record = read_json_dict(os.path.join(directory, DIVERGED_FILE))
    return None if record is None else str(record.get("message") or "the run diverged")


class TrainingStateCheckpoint(keras.callbacks.Callback):
    """Save the complete training state atomically; keep the last ``keep``.

    Args:
        directory: where the ``step-*`` folders go.
        every_n_steps: also save every N global steps inside epochs (None:
            epoch ends only).
        keep: how many states to keep (>= 1).
        restore: restore the newest epoch-end state at the start of ``fit``
            and start at its epoch (plain ``fit`` use; see the module
            docstring).
        extra_state: None or a callable returning a JSON-able dict stored as
            ``state["extra"]`` (``keras-pose train`` stores the best metric).
        ema: None, or an `ExpMomentumEMA` whose averages are saved (and
            restored with ``restore``) with the state; put it before this
            callback in ``fit``'s list, and its epoch-end swap-out too.

    Attributes:
        step_offset: steps of the current epoch done before this ``fit``
            call started (a resumed partial epoch); set by the caller.
        last_saved: the folder of the newest state written, or None.
    """

    def __init__(self, directory, every_n_steps=None, keep=2, restore=False, extra_state=None, ema=None):
        super().__init__()
        if every_n_steps is not None and int(every_n_steps) < 1:
            raise ValueError(f"every_n_steps must be None or >= 1, got {every_n_steps!r}.")
        if int(keep) < 1:
            raise ValueError(f"keep must be >= 1, got {keep!r}.")
        self.directory = os.fspath(directory)
        self.every_n_steps = None if every_n_steps is None else int(every_n_steps)
        self.keep = int(keep)
        self.restore = restore
        self.extra_state = extra_state
        self.ema = ema
        self.step_offset = 0
        self.last_saved = None
        self._epoch = 0
        self._steps_per_epoch = None

    def on_train_begin(self, logs=None):
        self._steps_per_epoch = (self.params or {}).get("steps")
        if self.restore:
            state = latest_training_state(self.directory, epoch_end_only=True)
            if state is not None:
                restore_training_state(self.model, state, ema=self.ema)
                self.model._initial_epoch = state["epoch"]  # what keras.callbacks.BackupAndRestore sets too

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_steps is None:
            return
        step = self.step_offset + int(batch) + 1
        total = self._total_steps()
        if total is None:
            return
        global_step = self._epoch * total + step
        if global_step % self.every_n_steps == 0 and step < total:
            self.save(self._epoch, step, global_step)

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        total = self._total_steps()
        self.save(epoch + 1, 0, None if total is None else (epoch + 1) * total)

    def _total_steps(self):
        """Steps of a whole epoch: this fit's steps plus those done before it (a resumed partial epoch)."""
        if self._steps_per_epoch is None:
            return None
        return self._steps_per_epoch + self.step_offset

    def save(self, epoch, step, global_step):
        """Write one state folder (skipped when the weights hold NaN / Inf: a good state is never replaced)."""
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX: bring the training state into the variables first
            sync()
        if self.ema is not None and self.ema.swapped:
            raise RuntimeError("the model holds the EMA averages while its training state is saved; put the EMA "
                               "swap-out callback before TrainingStateCheckpoint in fit's callbacks.")
        if non_finite_weights(self.model):
            return None
        if global_step is None:
            global_step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        state = {"epoch": int(epoch), "step": int(step), "global_step": int(global_step),
                 "steps_per_epoch": self._total_steps(),
                 "optimizer_iterations": int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))}
        if self.extra_state is not None:
            state["extra"] = self.extra_state()
        folder = os.path.join(self.directory, f"{STATE_PREFIX}{global_step:09d}")
        with atomic_directory(folder) as tmp:
            self.model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
            rng = {f"rng_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(_rng_variables(self.model))}
            np.savez(os.path.join(tmp, RNG_FILE), **rng)
            if self.ema is not None:
                self.ema.save_state(tmp)
            with open(os.path.join(tmp, STATE_FILE), "w", encoding="utf-8") as f:
                json.dump(json_safe(state), f, indent=1, allow_nan=False)
                f.write("\n")
        self.last_saved = folder
        for _, old in list_training_states(self.directory)[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return folder


__all__ = [
    "TrainingStateCheckpoint",
    "diverged_message",
    "mark_diverged",
    "latest_training_state",
    "list_training_states",
    "read_training_state",
    "restore_training_state",
]
