"""Per-variable learning rates and weight decay: layer-wise decay (ViTPose), no decay on norms.

ViTPose's recipe (mmpose ``LayerDecayOptimWrapperConstructor``): with
``N`` transformer blocks, the patch / position embeddings (and the
knowledge token) are layer 0, block ``i`` is layer ``i + 1``, everything
else (final norm, heads) layer ``N + 1``; a variable of layer ``l`` trains
at ``lr * decay ** (N + 1 - l)`` (the heads at ``lr``, the embeddings at
``lr * decay ** (N + 1)``). Its weight decay (decoupled, Keras' and
PyTorch's ``AdamW``: ``w -= lr_var * wd * w``) uses the same scaled rate.
Norms, biases and position embeddings get no weight decay.

::

    multipliers = layer_decay_multipliers(model, decay=0.75)   # {variable path: factor}
    optimizer = make_param_group_optimizer("adamw", learning_rate=5e-4, weight_decay=0.1,
                                           lr_multipliers=multipliers,
                                           no_weight_decay=DEFAULT_NO_WEIGHT_DECAY)
    model.compile(optimizer=optimizer, ...)

How it works on every backend: the optimizer classes here override
``_backend_update_step`` (called by ``apply`` on TensorFlow, JAX and
PyTorch) to run the parent update once per group of variables with the
same multiplier, with ``learning_rate * multiplier``; and
``_apply_weight_decay`` to decay each variable with its own rate. (Keras'
``exclude_from_weight_decay(var_names=...)`` matches the variable *name*,
e.g. ``gamma`` or ``bias``, not its path, so "norm" could not select the
layer-norm scales; the patterns here are searched in ``variable.path``.)
On PyTorch these subclasses take Keras' generic per-variable update instead
of the fused ``torch._foreach`` one (same results, a little slower). Under a
``tf.distribute`` strategy the per-variable weight decay is applied in
replica context (not checked with more than one replica).

Multipliers are keyed by ``variable.path`` (e.g.
``transformer_layer_3/mlp/fc1/kernel``); a variable the mapping does not
name trains at the base rate.

Frozen rows (``frozen_rows={variable path: [row, ...]}``): rows along the
first axis that neither the update nor the weight decay may touch. ViTPose++
keeps all its experts in one stacked variable per block
(``experts_kernel`` (E, mlp_dim, P), ``experts_bias`` (E, P)) and all its
heads in the model; fine-tuning one dataset (or training some of them) gives
the other datasets' expert rows and heads no gradient, but AdamW's decoupled
decay (and Adam's momentum) would still move them. `inactive_dataset_rows`
names those rows; after each step they hold exactly their previous values.
"""

import math
import re

import keras
import numpy as np

# Searched (``re.search``) in variable paths: layer / batch norms, biases, position embeddings.
DEFAULT_NO_WEIGHT_DECAY = ("norm", "bias", "pos_embed", "position_embedding")
# ViTPose paper / mmpose configs: 0.75 for ViT-B, 0.8 for ViT-S and ViT-L, 0.85 for ViT-H (by hidden size).
LAYER_DECAY_BY_WIDTH = {384: 0.8, 768: 0.75, 1024: 0.8, 1280: 0.85}
_BLOCK = re.compile(r"(?:^|/)transformer_layer_(\d+)/")
_EMBEDDING = re.compile(r"(?:^|/)(patch_embedding|position_embedding|pos_embed|cls_token|knowledge_token)(?:/|$)")


def auto_layer_decay(backbone):
    """The paper's decay for a ViT backbone: the rate of the nearest standard width (S/B/L/H)."""
    width = int(backbone.hidden_dim)
    nearest = min(LAYER_DECAY_BY_WIDTH, key=lambda w: (abs(w - width), w))
    return LAYER_DECAY_BY_WIDTH[nearest]


def vit_layer_id(path, num_layers):
    """The layer id of a ViTPose variable path: 0 embeddings, ``i + 1`` block ``i``, ``num_layers + 1`` the rest."""
    block = _BLOCK.search(path)
    if block:
        return int(block.group(1)) + 1
    if _EMBEDDING.search(path):
        return 0
    return num_layers + 1


def layer_decay_multipliers(model, decay):
    """``{variable path: decay ** (N + 1 - layer id)}`` for the trainable variables of a ViTPose model.

    Args:
        model: a task model whose ``backbone`` has ``num_layers`` transformer
            blocks named ``transformer_layer_<i>`` (ViTPose, ViTPose++), or
            such a backbone.
        decay: float in (0, 1].

    Raises:
        ValueError: a model without such a backbone, a bad ``decay``, or two
            variables sharing a path.
    """
    decay = float(decay)
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"layer decay must be in (0, 1], got {decay!r}.")
    backbone = getattr(model, "backbone", model)
    num_layers = getattr(backbone, "num_layers", None)
    if num_layers is None:
        raise ValueError(f"layer-wise learning-rate decay needs a ViT backbone with `num_layers` blocks; "
                         f"{type(model).__name__} has none. Set train.optimizer.layer_decay: null.")
    multipliers = {}
    for variable in model.trainable_variables:
        layer_id = vit_layer_id(variable.path, int(num_layers))
        factor = decay ** (int(num_layers) + 1 - layer_id)
        if variable.path in multipliers and multipliers[variable.path] != factor:
            raise ValueError(f"two variables share the path {variable.path!r}; layer decay cannot tell them apart.")
        multipliers[variable.path] = factor
    return multipliers


def inactive_dataset_rows(model, trained):
    """The expert rows and head variables of a ViTPose++ model's datasets that are not trained.

    Args:
        model: a `ViTPosePP` (or a model without experts: returns ``{}``).
        trained: the dataset names being trained (one when fine-tuning the
            active dataset).

    Returns:
        ``{variable path: [row, ...]}`` for `ParamGroupMixin`'s
        ``frozen_rows``: the rows of the other datasets in every block's
        ``experts_kernel`` / ``experts_bias`` (row = dataset index), and
        every row of their heads' trainable variables.
    """
    datasets = list(getattr(model, "datasets", None) or [])
    heads = getattr(getattr(model, "heads", None), "heads", None)
    if not datasets or heads is None:
        return {}
    unknown = [d for d in trained if d not in datasets]
    if unknown:
        raise ValueError(f"datasets {unknown} are not in the model (its datasets: {datasets}).")
    idle = [i for i, d in enumerate(datasets) if d not in trained]
    if not idle:
        return {}
    rows = {}
    for variable in model.trainable_variables:
        if variable.path.endswith(("mlp/experts_kernel", "mlp/experts_bias")):
            rows[variable.path] = [i for i in idle if i < variable.shape[0]]
    for i in idle:
        for variable in heads[i].trainable_weights:
            rows[variable.path] = list(range(variable.shape[0]))
    return rows


class ParamGroupMixin:
    """Per-variable learning-rate multipliers, weight-decay exclusion and frozen rows for a Keras optimizer.

    Args:
        lr_multipliers: ``{variable path: factor}``; missing paths: 1.0.
        no_weight_decay: regular expressions searched in variable paths;
            a match gets no weight decay.
        frozen_rows: ``{variable path: [row index, ...]}``: rows (first
            axis) that keep their values bit for bit (no update, no decay);
            see `inactive_dataset_rows`.
        **kwargs: the parent optimizer's arguments.
    """

    def __init__(self, *args, lr_multipliers=None, no_weight_decay=(), frozen_rows=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_multipliers = {str(k): float(v) for k, v in (lr_multipliers or {}).items()}
        self.no_weight_decay = [str(p) for p in (no_weight_decay or ())]
        self._no_wd = re.compile("|".join(f"(?:{p})" for p in self.no_weight_decay)) if self.no_weight_decay else None
        self.frozen_rows = {str(k): sorted(int(r) for r in v) for k, v in (frozen_rows or {}).items() if v}

    def _frozen_mask(self, variable):
        """Bool array broadcastable to the variable, True on its frozen rows; None when it has none."""
        rows = self.frozen_rows.get(variable.path)
        if not rows:
            return None
        shape = tuple(variable.shape)
        if max(rows) >= shape[0]:
            raise ValueError(f"frozen row {max(rows)} of {variable.path!r} is out of range: it has {shape[0]} rows.")
        mask = np.zeros((shape[0],) + (1,) * (len(shape) - 1), bool)
        mask[rows] = True
        return mask

    def lr_multiplier(self, variable):
        """The factor of a variable's learning rate (1.0 when not named)."""
        return self.lr_multipliers.get(variable.path, 1.0)

    def _use_weight_decay(self, variable):
        if self._no_wd is not None and self._no_wd.search(variable.path):
            return False
        return super()._use_weight_decay(variable)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        kept = []
        for variable in trainable_variables:
            mask = self._frozen_mask(variable)
            if mask is not None:
                kept.append((variable, mask, keras.ops.copy(variable.value)))
        groups = {}
        for grad, variable in zip(grads, trainable_variables):
            groups.setdefault(self.lr_multiplier(variable), ([], []))
            groups[self.lr_multiplier(variable)][0].append(grad)
            groups[self.lr_multiplier(variable)][1].append(variable)
        for factor, (group_grads, group_variables) in groups.items():
            rate = learning_rate if factor == 1.0 else learning_rate * factor
            super()._backend_update_step(group_grads, group_variables, rate)
        for variable, mask, old in kept:  # the frozen rows get their values back, bit for bit
            variable.assign(keras.ops.where(mask, old, variable.value))

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                rate = keras.ops.cast(self.learning_rate, variable.dtype) * self.lr_multiplier(variable)
                decay = keras.ops.cast(self.weight_decay, variable.dtype)
                mask = self._frozen_mask(variable)
                decayed = variable - variable * decay * rate
                variable.assign(decayed if mask is None else keras.ops.where(mask, variable.value, decayed))

    def get_config(self):
        config = super().get_config()
        config["lr_multipliers"] = dict(self.lr_multipliers)
        config["no_weight_decay"] = list(self.no_weight_decay)
        config["frozen_rows"] = {k: list(v) for k, v in self.frozen_rows.items()}
        return config


@keras.saving.register_keras_serializable(package="keras_pose")
class ParamGroupAdamW(ParamGroupMixin, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with per-variable learning-rate multipliers and no-decay patterns."""


@keras.saving.register_keras_serializable(package="keras_pose")
class ParamGroupAdam(ParamGroupMixin, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with per-variable learning-rate multipliers and no-decay patterns."""


@keras.saving.register_keras_serializable(package="keras_pose")
class ParamGroupSGD(ParamGroupMixin, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with per-variable learning-rate multipliers and no-decay patterns."""


PARAM_GROUP_OPTIMIZERS = {"adamw": ParamGroupAdamW, "adam": ParamGroupAdam, "sgd": ParamGroupSGD}


def make_param_group_optimizer(kind, lr_multipliers=None, no_weight_decay=(), frozen_rows=None, **kwargs):
    """``ParamGroup<Kind>(**kwargs)`` for kind adam | adamw | sgd."""
    if kind not in PARAM_GROUP_OPTIMIZERS:
        raise ValueError(f"optimizer type must be one of {sorted(PARAM_GROUP_OPTIMIZERS)}, got {kind!r}.")
    return PARAM_GROUP_OPTIMIZERS[kind](lr_multipliers=lr_multipliers, no_weight_decay=no_weight_decay,
                                        frozen_rows=frozen_rows, **kwargs)


def describe_multipliers(multipliers):
    """One log phrase: the range of the learning-rate factors, e.g. ``"0.178 (embeddings) .. 1 (heads)"``."""
    if not multipliers:
        return "none"
    low, high = min(multipliers.values()), max(multipliers.values())
    return f"{low:.3g} (embeddings) .. {high:.3g} (heads), {len(set(multipliers.values()))} groups"


def freeze_by_patterns(model, patterns):
    """Make the variables whose path matches a pattern non-trainable (ViTPose's partial fine-tuning).

    Args:
        model: a built model.
        patterns: regular expressions searched in ``variable.path``
            (``attention``: every block's attention, ``mlp``: the FFNs);
            ``backbone`` / ``head`` select the model's ``backbone`` and
            everything else (variable paths do not name the backbone).

    Returns:
        ``{pattern: number of variables it froze}`` and the total parameter
        count frozen, as ``(counts, parameters)``.

    Raises:
        ValueError: a pattern matches no trainable variable (a typo).
    """
    backbone = getattr(model, "backbone", None)
    backbone_ids = {id(v) for v in backbone.weights} if backbone is not None else set()
    counts, frozen = {}, {}
    for pattern in patterns:
        matched = 0
        for variable in model.trainable_variables:
            if pattern == "backbone":
                hit = id(variable) in backbone_ids
            elif pattern == "head" and backbone is not None:
                hit = id(variable) not in backbone_ids
            else:
                hit = re.search(pattern, variable.path) is not None
            if hit:
                frozen[id(variable)] = variable
                matched += 1
        counts[pattern] = matched
    for pattern, matched in counts.items():
        if not matched and not any(re.search(pattern, v.path) for v in frozen.values()):
            raise ValueError(f"train.freeze pattern {pattern!r} matches no trainable variable of "
                             f"{type(model).__name__}; variable paths look like "
                             f"{[v.path for v in model.trainable_variables[:3]]}.")
    for variable in frozen.values():
        variable.trainable = False
    parameters = sum(math.prod(v.shape) for v in frozen.values())
    return counts, parameters


def apply_recipes(model, t, say):
    """``train.freeze`` and ``train.optimizer.layer_decay`` of a validated ``train`` section.

    Freezes ``model``'s variables as ``train.freeze`` says and returns the
    layer-decay learning-rate multipliers (None without layer decay);
    ``say`` logs what was done. A bad value raises `TrainConfigError`
    naming the key.
    """
    from keras_pose.training.config_values import fail

    if t["freeze"]:
        try:
            counts, parameters = freeze_by_patterns(model, t["freeze"])
        except ValueError as error:
            fail("train.freeze", str(error))
        say(f"Frozen: {', '.join(f'{p!r} ({n} variables)' for p, n in counts.items())}; {parameters:,} "
            f"parameters, {model.count_params() - parameters:,} left to train.")
    decay = t["optimizer"]["layer_decay"]
    if decay is None:
        return None
    backbone = getattr(model, "backbone", None)
    if backbone is None or not hasattr(backbone, "num_layers"):
        fail("train.optimizer.layer_decay", f"needs a ViT backbone (ViTPose, ViTPose++); {type(model).__name__} "
              "has none. Set it to null.")
    if decay == "auto":
        decay = auto_layer_decay(backbone)
    multipliers = layer_decay_multipliers(model, decay)
    say(f"Layer-wise lr decay {decay:g} over {backbone.num_layers} blocks: lr x {describe_multipliers(multipliers)}.")
    return multipliers


def idle_dataset_rows(model, say, trained=None):
    """`inactive_dataset_rows` of a ViTPose++ model (the active dataset, or ``trained``), logged; ``{}`` otherwise."""
    if not getattr(model, "datasets", None) or not hasattr(model, "heads"):
        return {}
    trained = list(trained) if trained is not None else [model.dataset]
    rows = inactive_dataset_rows(model, trained)
    if rows:
        idle = [d for d in model.datasets if d not in trained]
        say(f"Untouched (no update, no weight decay): the experts and heads of {', '.join(map(repr, idle))}.")
    return rows


__all__ = [
    "DEFAULT_NO_WEIGHT_DECAY",
    "LAYER_DECAY_BY_WIDTH",
    "ParamGroupAdam",
    "ParamGroupAdamW",
    "ParamGroupSGD",
    "apply_recipes",
    "auto_layer_decay",
    "describe_multipliers",
    "freeze_by_patterns",
    "idle_dataset_rows",
    "inactive_dataset_rows",
    "layer_decay_multipliers",
    "make_param_group_optimizer",
    "vit_layer_id",
]
