"""Interrupting a training run as a kill would, at a chosen global step (the resume tests)."""

import keras

from keras_pose.training.resume import TrainingStateCheckpoint


def interrupt_after_global_step(monkeypatch, step):
    """Make `fit` raise KeyboardInterrupt once the optimizer has taken ``step`` steps.

    The state checkpoint's own batch-end hook runs first, so the states saved
    up to that step are on disk as after a real kill.
    """
    original = TrainingStateCheckpoint.on_train_batch_end

    def on_train_batch_end(self, batch, logs=None):
        original(self, batch, logs)
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingStateCheckpoint, "on_train_batch_end", on_train_batch_end)
