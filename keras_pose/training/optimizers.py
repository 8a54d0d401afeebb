"""Optimizers and learning-rate schedules of a training config.

``make_optimizer(config["train"]["optimizer"], make_schedule(config["train"]["learning_rate"],
steps_per_epoch, epochs))``: AdamW / Adam / SGD (weight decay, momentum,
clipnorm) on a `WarmupSchedule` (linear warm-up, then constant, step or
cosine), the mmpose ``LinearLR`` + ``MultiStepLR`` / ``CosineAnnealingLR``
recipes. Steps are optimizer updates (batches), not epochs.
"""

import math

import keras

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine")


@keras.saving.register_keras_serializable(package="keras_pose")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then a constant, step or cosine learning rate.

    ``lr(step)``: during the first ``warmup_steps`` steps it rises linearly
    from ``base * warmup_start_factor`` to ``base`` (mmpose ``LinearLR``);
    then "constant" keeps ``base``, "step" multiplies it by ``gamma`` at each
    of ``milestones`` (steps, mmpose ``MultiStepLR``), "cosine" decays it to
    ``base * min_factor`` at ``total_steps``.
    """

    def __init__(
        self,
        base_learning_rate,
        total_steps,
        schedule="cosine",
        warmup_steps=0,
        warmup_start_factor=0.001,
        milestones=(),
        gamma=0.1,
        min_factor=0.0,
    ):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
        self.base_learning_rate = float(base_learning_rate)
        self.total_steps = max(1, int(total_steps))
        self.schedule = schedule
        self.warmup_steps = max(0, int(warmup_steps))
        self.warmup_start_factor = float(warmup_start_factor)
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)
        self.min_factor = float(min_factor)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        base = self.base_learning_rate
        if self.schedule == "constant":
            lr = ops.ones_like(step) * base
        elif self.schedule == "step":
            passed = ops.zeros_like(step)
            for milestone in self.milestones:
                passed = passed + ops.cast(step >= milestone, "float32")
            lr = base * ops.power(ops.cast(self.gamma, "float32"), passed)
        else:
            span = float(max(1, self.total_steps - self.warmup_steps))
            progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
            lr = base * (self.min_factor + (1.0 - self.min_factor) * cosine)
        if self.warmup_steps:
            ramp = self.warmup_start_factor + (1.0 - self.warmup_start_factor) * ops.minimum(
                step / float(self.warmup_steps), 1.0
            )
            lr = lr * ramp
        return lr

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "total_steps": self.total_steps,
            "schedule": self.schedule,
            "warmup_steps": self.warmup_steps,
            "warmup_start_factor": self.warmup_start_factor,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
            "min_factor": self.min_factor,
        }


def make_schedule(lr_config, steps_per_epoch, epochs):
    """The `WarmupSchedule` of a validated ``train.learning_rate`` section."""
    warmup = lr_config["warmup_steps"]
    if lr_config.get("warmup_epochs") is not None:
        warmup = int(round(lr_config["warmup_epochs"] * steps_per_epoch))
    return WarmupSchedule(
        lr_config["base"],
        total_steps=steps_per_epoch * epochs,
        schedule=lr_config["schedule"],
        warmup_steps=warmup,
        warmup_start_factor=lr_config["warmup_start_factor"],
        milestones=[m * steps_per_epoch for m in lr_config["milestones"]],
        gamma=lr_config["gamma"],
        min_factor=lr_config["min_factor"],
    )


def make_optimizer(opt_config, schedule, lr_multipliers=None, frozen_rows=None):
    """A Keras optimizer from a validated ``train.optimizer`` section.

    With ``lr_multipliers`` (``{variable path: factor}``, layer-wise decay),
    ``frozen_rows`` (``{variable path: [row, ...]}``, rows left untouched:
    the experts and heads of ViTPose++ datasets not trained) or
    ``no_weight_decay`` patterns in the section, a
    `keras_pose.training.param_groups` optimizer of the same type.
    """
    kwargs = {"learning_rate": schedule}
    if opt_config["clipnorm"]:
        kwargs["clipnorm"] = opt_config["clipnorm"]
    kind = opt_config["type"]
    if lr_multipliers or frozen_rows or opt_config.get("no_weight_decay"):
        from keras_pose.training.param_groups import make_param_group_optimizer

        if kind == "sgd":
            kwargs["momentum"] = opt_config["momentum"]
        return make_param_group_optimizer(kind, lr_multipliers=lr_multipliers, frozen_rows=frozen_rows,
                                          no_weight_decay=opt_config.get("no_weight_decay") or (),
                                          weight_decay=opt_config["weight_decay"] if kind == "adamw" else (
                                              opt_config["weight_decay"] or None), **kwargs)
    if kind == "adamw":
        return keras.optimizers.AdamW(weight_decay=opt_config["weight_decay"], **kwargs)
    if opt_config["weight_decay"]:
        kwargs["weight_decay"] = opt_config["weight_decay"]
    if kind == "adam":
        return keras.optimizers.Adam(**kwargs)
    return keras.optimizers.SGD(momentum=opt_config["momentum"], **kwargs)


__all__ = ["OPTIMIZERS", "SCHEDULES", "WarmupSchedule", "make_optimizer", "make_schedule"]
