"""The model of a training config: built from an architecture, or a preset.

``model.architecture`` names a task class; every task class a family
registers with Keras (``@keras.saving.register_keras_serializable``, as
every family in keras_pose/models does) is buildable, with no entry here:
`architectures()` finds them. The task is built by its classmethod
``from_checkpoint_config(image_size=..., keypoint_spec=..., **architecture)``
(the flat preset-config schema: the backbone's and the task's keyword
arguments in one mapping), so a new family that registers itself and has
that classmethod trains from a config without editing this module.

``model.backbone`` / ``model.head`` are checked against the real
constructors (``TaskClass.backbone_cls`` and ``TaskClass``): an unknown key
is refused with a did-you-mean and the list of valid names, a value of the
wrong type with the expected type.

A preset (``model.preset``) is loaded with `keras_pose.from_preset`; when
the config's keypoints differ it keeps its backbone and gets a new head,
unless its class says ``supports_new_keypoints = False`` (CPM: the stages of
its backbone predict the keypoints).
"""

import inspect

import keras

from keras_pose.errors import KerasPoseError, TrainConfigError
from keras_pose.training.config_values import as_choice, fail, typed_value, unknown_key

# Sizes of backbones whose constructor has no default for them, per backbone
# class: ViT-S (the ViTPose-S recipe).
def _backbone_defaults(backbone_cls):
    """Architecture defaults a config may leave out (ViTPose: the ViT-S widths, depth and heads)."""
    if backbone_cls.__name__ == "ViTPoseBackbone":
        from keras_pose.models.vitpose.vitpose_backbone import VIT_SIZES

        return dict(VIT_SIZES["small"])
    return {}


# ------------------------------------------------------------ the registry
def _is_multi_dataset(task):
    """A task (class or model) with one head per dataset (ViTPose++): trained from a preset, one dataset at a time."""
    return hasattr(task, "fuse_experts")


def architectures():
    """``{name: task class}`` of every architecture a config can build, by name.

    Every class registered with Keras (``keras.saving.get_custom_objects()``)
    that is a top-down task (the trainer's data pipeline is top-down) with a
    ``backbone_cls`` and one keypoint spec. Importing `keras_pose.models`
    registers the built-in families; a family defined elsewhere registers
    itself the same way.
    """
    # Importing keras_pose.models registers the built-in families.
    # The trainer's tf.data pipeline crops people: top-down tasks only (of the paradigm-neutral PoseEstimator).
    from keras_pose.models import TopDownPoseEstimator

    found = {}
    for obj in keras.saving.get_custom_objects().values():
        if (isinstance(obj, type) and issubclass(obj, TopDownPoseEstimator)
                and getattr(obj, "backbone_cls", None) is not None and not _is_multi_dataset(obj)):
            found.setdefault(obj.__name__, obj)
    return dict(sorted(found.items()))


def task_class(architecture):
    """The task class of an architecture name (see `architectures`)."""
    classes = architectures()
    if architecture not in classes:
        as_choice(architecture, "model.architecture", tuple(classes))  # raises, with a suggestion
    return classes[architecture]


def _display_name(cls):
    """``keras_pose.ViTPoseBackbone``: the name a user imports a class by."""
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


# ---------------------------------------------- constructor arguments
# Arguments the trainer sets itself: why they may not be given.
_RESERVED_ARGS = {
    "backbone": {
        "image_size": "is set from model.input_size; remove it.",
        "image_shape": "is set from model.input_size; remove it.",
        "num_keypoints": "is set from the keypoint spec (keypoints:); remove it.",
        "name": "would name the backbone, which its task names; name the model with model.head.name instead.",
    },
    "head": {
        "backbone": "is built from model.backbone; remove it.",
        "keypoint_spec": "is set by the trainer (keypoints: sets the spec); remove it.",
        "num_keypoints": "is set by the trainer (keypoints: sets the spec); remove it.",
        "preprocessor": "is unused by keras-pose tasks; remove it.",
    },
}
# Kinds of arguments whose default (None, or none at all) does not tell.
_ARG_KINDS = {
    "patch_stride": "int+?",
    "hidden_dim": "int+",
    "num_layers": "int+",
    "num_heads": "int+",
    "mlp_dim": "int+",
    "patch_size": "int+",
    "center_map_sigma": "float?",
    "stackwise_num_blocks": "ints?",
    "refine_num_blocks": "ints?",
    "heatmap_size": "ints?",
    "preprocessing": "mapping?",
    "decoding": "mapping?",
    "loss": "mapping?",
    "dtype": "dtype?",
    "name": "str",
}
# Arguments with a fixed set of values, per class name.
_ARG_CHOICES = {
    ("ViTPose", "decoder"): ("classic", "simple", "minimal"),
    ("ViTPoseBackbone", "pos_embed_cls_slot"): ("add", "none"),
    # Train configs take one attention kind for every block (per-block lists: the Python API).
    ("ViTPoseBackbone", "attention"): (
        "global", "window", "shifted_window", "pooling_window", "shifted_pooling_window"
    ),
}
# Modules of the framework base classes, where `constructor_arguments` stops.
_FRAMEWORK_MODULES = ("keras", "keras_hub", "keras_nlp", "builtins")


def constructor_arguments(cls):
    """``{name: default}`` of the keyword arguments ``cls(...)`` really takes.

    Walks ``cls.__init__`` and those of its base classes up to the Keras /
    keras-hub ones (whose ``**kwargs`` it receives); ``name`` (Keras) is
    added. A required argument's default is ``inspect.Parameter.empty``.
    Keras models swallow unknown ``**kwargs`` silently, so this is the list
    to check keys against.
    """
    args = {}
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in _FRAMEWORK_MODULES:
            break
        if "__init__" not in vars(klass):
            continue
        for param in inspect.signature(klass.__init__).parameters.values():
            if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            args.setdefault(param.name, param.default)
    args.setdefault("name", None)
    return args


def validate_architecture_args(args, architecture, part):
    """``model.backbone`` / ``model.head`` checked against the real constructor.

    Args:
        args: the given mapping (string keys).
        architecture: the task class name (see `architectures`).
        part: "backbone" (checked against ``TaskClass.backbone_cls``) or
            "head" (against ``TaskClass``).

    Returns:
        The mapping with its values converted (``"1e-3"`` -> 0.001, ...).

    Raises:
        TrainConfigError: a key that is not an argument of the class
            (did-you-mean and the list of valid names), one the trainer sets
            itself, or a value of the wrong type.
    """
    cls = task_class(architecture)
    cls = cls.backbone_cls if part == "backbone" else cls
    accepted = constructor_arguments(cls)
    reserved = _RESERVED_ARGS[part]
    allowed = [a for a in accepted if a not in reserved and not a.startswith("_")]
    where = f"model.{part}"
    out = {}
    for key, value in args.items():
        if key in reserved:
            fail(f"{where}.{key}", reserved[key])
        if key not in allowed:
            raise unknown_key(key, allowed, where, takes=f"the arguments of {_display_name(cls)}: "
                              f"{', '.join(sorted(allowed))}")
        default = accepted[key]
        default = None if default is inspect.Parameter.empty else default
        value = typed_value(value, default, f"{where}.{key}", _ARG_KINDS.get(key))
        choices = _ARG_CHOICES.get((cls.__name__, key))
        if choices:
            value = as_choice(value, f"{where}.{key}", choices)
        out[key] = value
    return out


# ------------------------------------------------------ keypoint spec
def resolve_train_keypoint_spec(config):
    """The `KeypointSpec` a config trains on (or None: take the preset's)."""
    from keras_pose.keypoints import KeypointSpec, get_keypoint_spec

    entry = config["keypoints"]
    if entry is None:
        if config["model"]["preset"] is not None:
            return None
        if config["data"]["format"] == "mpii":
            return get_keypoint_spec("mpii")
        entry = {"spec": config["data"]["train"]["annotation_file"], "sigmas": None}
    spec = get_keypoint_spec(entry["spec"])
    sigmas = entry["sigmas"]
    if sigmas is not None:
        if not isinstance(sigmas, list):
            sigmas = [sigmas] * spec.num_keypoints
        if len(sigmas) != spec.num_keypoints:
            fail("keypoints.sigmas", f"has {len(sigmas)} values but the spec {spec.name!r} has "
                  f"{spec.num_keypoints} keypoints.")
        spec = KeypointSpec.from_config(dict(spec.get_config(), sigmas=sigmas))
    return spec


def check_sigmas(spec, config):
    """Refuse a spec without OKS sigmas when COCO AP evaluates the run."""
    if config["data"]["val"] is not None and config["evaluation"]["metric"] == "coco" and spec.sigmas is None:
        fail("keypoints.sigmas", f"is needed: the keypoint spec {spec.name!r} has no OKS sigmas and COCO AP "
              f"(evaluation.metric: coco) needs them. Add keypoints: {{spec: ..., sigmas: [{spec.num_keypoints} "
              "values]}} (or one value for every keypoint, e.g. 0.05), or use evaluation.metric: pck.")

# ------------------------------------------------------------- building
def build_model_from_config(config, spec):
    """Build (architecture) or load (preset) the model of a config.

    A preset whose keypoints differ from ``spec`` keeps its backbone and gets
    a new head for ``spec`` (not possible for a class with
    ``supports_new_keypoints = False``, e.g. CPM, whose stages predict the
    keypoints). ``model.head.loss`` is not part of the model: the trainer
    compiles with it (`training_loss`). Returns the `TopDownPoseEstimator`.
    """
    m = config["model"]
    if m["preset"] is None:
        return _build_architecture(m, spec)
    import keras_pose

    kwargs = {"dataset": m["dataset"]} if m["dataset"] else {}
    model = keras_pose.from_preset(m["preset"], **kwargs)
    if _is_multi_dataset(model):
        if not m["dataset"]:
            fail("model.dataset", f"is required for the multi-dataset preset {m['preset']!r} (ViTPose++): name the "
                 f"dataset whose expert and head to fine-tune, one of {', '.join(model.datasets)}.")
        model = model.fuse_experts(m["dataset"])
    elif m["dataset"]:
        fail("model.dataset", f"applies to ViTPose++ presets only; {m['preset']!r} is a {type(model).__name__}.")
    if m["input_size"] is not None and list(model.image_size) != list(m["input_size"]):
        fail("model.input_size", f"is {m['input_size']} but the preset {m['preset']!r} takes "
             f"{list(model.image_size)} crops; remove model.input_size or set it to the preset's size.")
    if spec is not None and spec != model.keypoint_spec:
        model = _rehead(model, spec, same_keypoints=list(spec.keypoint_names) == list(
            model.keypoint_spec.keypoint_names))
    return model


def training_loss(config):
    """The loss ``compile`` gets: ``model.head.loss`` (a loss config) or "auto" (the model's default)."""
    loss = config["model"]["head"].get("loss")
    return "auto" if loss is None else loss


def _build_architecture(m, spec):
    """``TaskClass.from_checkpoint_config(image_size, keypoint_spec, **backbone args, **head args)``."""
    cls = task_class(m["architecture"])
    size = tuple(m["input_size"])
    backbone_args = {**_backbone_defaults(cls.backbone_cls), **m["backbone"]}
    head_args = {k: v for k, v in m["head"].items() if k != "loss"}
    name, backbone_name = _display_name(cls), _display_name(cls.backbone_cls)
    try:
        return cls.from_checkpoint_config(image_size=size, keypoint_spec=spec, **{**backbone_args, **head_args})
    except TypeError as e:
        raise TrainConfigError(
            f"train config: 'model.backbone' / 'model.head' do not fit {cls.__name__}: {e}. See the constructor "
            f"arguments of {name} and {backbone_name}."
        ) from e
    except KerasPoseError:
        raise
    except ValueError as e:
        raise TrainConfigError(f"train config: 'model' cannot build {cls.__name__}: {e}") from e


def _rehead(model, spec, same_keypoints):
    """The same task class and backbone with a head for ``spec``."""
    cls = type(model)
    if not same_keypoints and not getattr(cls, "supports_new_keypoints", True):
        fail("keypoints", f"({spec.num_keypoints} keypoints {spec.name!r}) differ from the {cls.__name__} preset's "
             f"{model.keypoint_spec.name!r}; {cls.__name__} predicts the keypoints inside its backbone, so it is "
             f"fine-tuned on its own keypoint spec only. Build model.architecture: {cls.__name__} instead.")
    config = model.get_config()
    for key in ("backbone", "name", "num_keypoints", "preprocessor"):
        config.pop(key, None)
    config["keypoint_spec"] = spec.get_config()
    new = cls(backbone=model.backbone, **config)
    if same_keypoints:
        new.set_weights(model.get_weights())
    return new


__all__ = [
    "architectures",
    "build_model_from_config",
    "check_sigmas",
    "constructor_arguments",
    "resolve_train_keypoint_spec",
    "task_class",
    "training_loss",
    "validate_architecture_args",
]
