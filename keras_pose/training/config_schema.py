"""The schema of a training config, and its validation (`TrainConfig`).

A training run is described by a YAML (or JSON) file; `keras-pose train
CONFIG` and `keras_pose.training.train_from_config` read it
(`config_io.load_train_config`) and check every key here: an unknown key is
an error that names it with a did-you-mean and the valid keys, a malformed
value one that names the dotted key and the expected type.

Schema (defaults in brackets; ``examples/train_config.yaml`` documents a
complete file). Relative paths in a file are relative to the file's folder;
paths given as overrides (``--set``, ``--output-dir``) are relative to the
working directory::

    model:
      preset:       preset name or preset directory to start from (its
                    weights are loaded) [null]
      architecture: task class to build when preset is null: ViTPose,
                    Hourglass, CPM, CPN or any other registered top-down
                    task class (see training.model_builder) [ViTPose]
      backbone:     backbone constructor arguments (architecture only),
                    e.g. {hidden_dim: 64, num_layers: 2, num_heads: 4,
                    mlp_dim: 128} [{}; ViTPose: ViT-S]; every key is checked
                    against the real arguments of
                    keras_pose.<architecture>Backbone and every value
                    against the argument's type
      head:         task constructor arguments (architecture only), e.g.
                    {decoder: simple} [{}], checked likewise; ``loss`` (a
                    loss config) is the training loss ``compile`` gets
      dataset:      ViTPose++ presets only: the dataset whose expert and head
                    are kept (fused into a plain ViTPose) [null]
      input_size:   [height, width] of the crops; required with
                    architecture, must match a preset's (null: the preset's)
    keypoints:      the keypoint spec: a built-in name (coco, mpii, ap10k,
                    ...), a spec file (.json/.yaml), or a COCO annotation file
                    whose category lists the keypoints; or a mapping
                    {spec: <one of those>, sigmas: [K values] | one value}
                    adding OKS sigmas (COCO AP needs them). null: the
                    preset's spec, else the training annotation file's
                    category (COCO format) [null]
    data:
      format:       coco (any COCO-format keypoint json) | mpii [coco]
      train:        {annotation_file (required), image_root (default: the
                    annotation file's folder)}, or a list of datasets
                    {dataset, annotation_file, image_root, ratio, keypoints,
                    init_from, val (that dataset's validation split)} for
                    ViTPose++ (training.multi_dataset_training)
      val:          null, or {annotation_file, image_root, detections (COCO
                    results json of person boxes; default: ground-truth
                    boxes), min_detection_score [0.0]} [null]
      cache_images: false | encoded | decoded (keep the images in memory)
                    [false]
    train:
      batch_size:   crops per step [32]
      epochs:       [10]
      steps_per_epoch: null = one pass over the training set [null]
      augmentation: true (mmpose 1.x flip, half-body, scale/rotate, colour
                    jitter) | false | {stage: overrides or null} [true]
      optimizer:    {type: adam | adamw | sgd [adamw], weight_decay [0.1 for
                    adamw, else 0], momentum [0.9, sgd], clipnorm [null],
                    layer_decay: null | a float in (0, 1] | auto (ViTPose
                    layer-wise lr decay: lr * decay ** (N + 1 - layer),
                    embeddings layer 0, block i layer i + 1, heads N + 1;
                    auto: 0.75 ViT-B, 0.8 S/L, 0.85 H) [null],
                    no_weight_decay: regular expressions searched in
                    variable paths that get no weight decay [[norm, bias,
                    pos_embed, position_embedding]]}
      learning_rate:
                    a number, or {base [5e-4], schedule: constant | step |
                    cosine [cosine], warmup_steps [0] or warmup_epochs,
                    warmup_start_factor [0.001], milestones (epochs, step
                    schedule) [[]], gamma [0.1], min_factor (cosine end
                    fraction) [0.0]}
      seed:         int or null [0]
      distribution: null (one device) | data | model, or {kind: data |
                    model, mesh: "BATCH,MODEL" (model), coordinator:
                    HOST:PORT, num_processes, process_id} (several
                    processes, JAX), sync_batch_norm (TensorFlow: batch
                    norm over the global batch) [true]; batch_size is then
                    the global batch
                    (keras_pose.training.distribution) [null]
      ema:          null, or an EMA of the weights (mmpose ExpMomentumEMA:
                    momentum_s = (1 - momentum) exp(-(1 + s) / gamma) +
                    momentum) used for evaluation, the best checkpoint, the
                    preset and last.weights.h5: {momentum [0.0002], gamma
                    (steps) [2000]}; true: the defaults [null]
      freeze:       variable-path patterns to freeze (ViTPose partial
                    fine-tuning): e.g. [attention] (every block's
                    attention), [mlp] (the FFNs), [backbone] [[]]
    evaluation:     (used when data.val is set)
      metric:       auto | coco | pck | pckh [auto: pckh for MPII, coco for
                    COCO-format files]
      every_n_epochs: [1] (the last epoch is always evaluated)
      flip_test:    null (the model's setting) | true | false [null]
      batch_size:   crops per forward pass [32]
      monitor:      the log key that picks the best checkpoint [val_coco_AP,
                    val_pck or val_pckh; "loss" without validation]
    output:
      dir:          output folder (required)
      overwrite:    when dir holds an earlier run (finished or not): start
                    over and move the earlier run to
                    dir/previous_runs/<its start time>/ (nothing is
                    deleted) [false]
      discard_previous_run:
                    when dir holds an earlier run: delete it, its
                    checkpoints and preset included [false]
      save:         best | last: the weights written to the preset [best]
      plot:         write training_curves.png [true]
      resume:       when dir holds an unfinished run with a saved training
                    state and the same config: continue it from its newest
                    state [true]
      state_every_n_steps:
                    save the complete training state (weights, optimizer,
                    RNG, data position; checkpoints/state/) every N steps
                    as well as at every epoch end; null: epoch ends only
                    [500]
      keep_states:  how many training states to keep [2]
    distillation:   null, or output distillation from a frozen teacher
                    (keras_pose.training.distillation) [null]:
                    {teacher: preset name or directory (required; a
                    top-down model with the same keypoints), type: output
                    (heatmap MSE to the teacher) | token (knowledge token
                    trained on the frozen teacher for token_epochs [1],
                    then frozen in the student; ViTPose, global attention,
                    same input size) | both [output], weight: the
                    MSE-to-teacher term's weight [1.0]}

Numbers are read as YAML 1.2 and Python write them, in files and ``--set``
values alike: ``1e-3``, ``1E-4``, ``5.e-4``, ``.5``, ``1_000`` (PyYAML's
YAML 1.1 reads ``1e-3`` as a string); a quoted number ("1e-3", e.g. from
JSON) is accepted for a numeric key too.
"""

import copy
import dataclasses
import numbers
import os

from keras_pose.errors import TrainConfigError
from keras_pose.training.config_sections import validate_distillation, validate_distribution, validate_recipes
from keras_pose.training.config_values import (
    REQUIRED,
    as_bool,
    as_choice,
    as_float,
    as_int,
    as_str,
    check_keys,
    fail,
    looks_like_path,
    merge_defaults,
    number_from_text,
    optional_section,
    require,
    resolve_path,
    suggest,
    typed_value,
)
from keras_pose.training.model_builder import architectures, validate_architecture_args
from keras_pose.training.optimizers import OPTIMIZERS, SCHEDULES
from keras_pose.training.param_groups import DEFAULT_NO_WEIGHT_DECAY

FORMATS = ("coco", "mpii")
METRICS = ("auto", "coco", "pck", "pckh")
CACHE_MODES = (False, "encoded", "decoded")

# The schema: section -> {key: default}. `REQUIRED` marks required keys.
SCHEMA = {
    "model": {
        "preset": None,
        "architecture": "ViTPose",
        "backbone": {},
        "head": {},
        "dataset": None,
        "input_size": None,
    },
    "keypoints": None,
    "data": {
        "format": "coco",
        "train": {"annotation_file": REQUIRED, "image_root": None},
        "val": None,
        "cache_images": False,
    },
    "train": {
        "batch_size": 32,
        "epochs": 10,
        "steps_per_epoch": None,
        "augmentation": True,
        "optimizer": {"type": "adamw", "weight_decay": None, "momentum": 0.9, "clipnorm": None,
                      "layer_decay": None, "no_weight_decay": list(DEFAULT_NO_WEIGHT_DECAY)},
        "learning_rate": {
            "base": 5e-4,
            "schedule": "cosine",
            "warmup_steps": 0,
            "warmup_epochs": None,
            "warmup_start_factor": 0.001,
            "milestones": [],
            "gamma": 0.1,
            "min_factor": 0.0,
        },
        "seed": 0,
        "distribution": None,
        "ema": None,
        "freeze": [],
    },
    "evaluation": {
        "metric": "auto",
        "every_n_epochs": 1,
        "flip_test": None,
        "batch_size": 32,
        "monitor": None,
    },
    "output": {"dir": REQUIRED, "overwrite": False, "discard_previous_run": False, "save": "best", "plot": True,
               "resume": True, "state_every_n_steps": 500, "keep_states": 2},
    "distillation": None,
}
_VAL_KEYS = {"annotation_file": REQUIRED, "image_root": None, "detections": None, "min_detection_score": 0.0}
_KEYPOINT_KEYS = {"spec": REQUIRED, "sigmas": None}


# ----------------------------------------------------------- the config
@dataclasses.dataclass
class TrainConfig:
    """A validated training config: plain nested dicts, paths absolute.

    Build it with :func:`load_train_config` (file) or
    :meth:`TrainConfig.from_dict`; every value is checked and every default
    filled in. ``config.data["model"]["input_size"]`` and so on hold the
    validated values; ``to_dict()`` returns a copy (JSON/YAML-plain).
    """

    data: dict
    source: str = None
    raw: dict = dataclasses.field(default=None, repr=False)  # as given, for re-validation with overrides
    base_dir: str = None

    def __getitem__(self, key):
        return self.data[key]

    def get(self, dotted, default=None):
        """A value by dotted key (``config.get("train.epochs")``)."""
        node = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def to_dict(self):
        return copy.deepcopy(self.data)

    def to_yaml(self):
        """The config as YAML text (paths absolute)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_dict(cls, raw, base_dir=None, source=None):
        """Validate a raw config dict.

        Args:
            raw: the parsed YAML/JSON mapping.
            base_dir: folder relative paths are resolved against (default:
                the working directory).
            source: a label for messages (the file name).

        Raises:
            TrainConfigError: naming the first bad key.
        """
        base_dir = os.path.abspath(base_dir or os.getcwd())
        if not isinstance(raw, dict):
            raise TrainConfigError(
                f"train config{f' {source!r}' if source else ''} must be a mapping with sections "
                f"{', '.join(SCHEMA)}; got {type(raw).__name__}."
            )
        check_keys(raw, SCHEMA, "")
        cfg = {
            "model": _validate_model(raw.get("model") or {}, base_dir),
            "keypoints": _validate_keypoints(raw.get("keypoints"), base_dir),
            "data": _validate_data(raw.get("data"), base_dir),
            "train": _validate_train(raw.get("train") or {}),
            "evaluation": None,
            "output": _validate_output(raw.get("output"), base_dir),
            "distillation": validate_distillation(raw.get("distillation"), base_dir),
        }
        cfg["evaluation"] = _validate_evaluation(raw.get("evaluation") or {}, cfg["data"])
        model = cfg["model"]
        if model["preset"] is None:
            if model["input_size"] is None:
                fail("model.input_size", f"is required when building model.architecture {model['architecture']!r} "
                      "(no preset): give [height, width], e.g. [256, 192].")
        else:
            for key in ("backbone", "head"):
                if model[key]:
                    fail(f"model.{key}", "applies only when building model.architecture; a preset brings its own "
                          "architecture. Remove it, or set model.preset: null.")
        if cfg["keypoints"] is None and model["preset"] is None and cfg["data"]["format"] == "mpii":
            cfg["keypoints"] = {"spec": "mpii", "sigmas": None}
        return cls(cfg, source=source, raw=copy.deepcopy(raw), base_dir=base_dir)


def _validate_model(raw, base_dir):
    check_keys(raw, SCHEMA["model"], "model")
    m = merge_defaults(SCHEMA["model"], raw)
    preset = m["preset"]
    if preset is not None:
        preset = as_str(preset, "model.preset")
        candidate = os.path.abspath(os.path.join(base_dir, os.path.expanduser(preset)))
        if os.path.isdir(candidate):
            preset = candidate
        elif looks_like_path(preset):
            fail("model.preset", f"names a folder that does not exist: {candidate!r} (give a preset directory or "
                  "a registered preset name; `keras-pose presets` lists them).")
    m["preset"] = preset
    m["architecture"] = as_choice(m["architecture"], "model.architecture", tuple(architectures()))
    for key in ("backbone", "head"):
        if m[key] is None:
            m[key] = {}
        if not isinstance(m[key], dict):
            fail(f"model.{key}", f"must be a mapping of constructor arguments, got {m[key]!r}.")
        bad = [k for k in m[key] if not isinstance(k, str)]
        if bad:
            fail(f"model.{key}", f"has non-string argument names {bad}.")
    if preset is None:
        # With a preset, `from_dict` refuses any backbone/head arguments.
        for key in ("backbone", "head"):
            m[key] = validate_architecture_args(m[key], m["architecture"], key)
    m["dataset"] = as_str(m["dataset"], "model.dataset", allow_none=True)
    size = m["input_size"]
    if size is not None:
        if isinstance(size, (list, tuple)):
            size = [number_from_text(v) for v in size]
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 16 for v in size)
        ):
            fail("model.input_size", f"must be [height, width] in pixels (integers >= 16), got {size!r}.")
        m["input_size"] = [int(v) for v in size]
    return m


def _validate_keypoints(raw, base_dir):
    k = optional_section(raw, _KEYPOINT_KEYS, "keypoints", "spec",
                         "a spec name, a spec/annotation file, or {spec, sigmas}")
    if k is None:
        return None
    spec = k["spec"]
    if isinstance(spec, dict):
        pass  # an inline KeypointSpec config
    else:
        spec = as_str(spec, "keypoints.spec")
        if looks_like_path(spec):
            spec = resolve_path(spec, base_dir, True, "keypoints.spec")
    sigmas = number_from_text(k["sigmas"])
    if sigmas is not None:
        if isinstance(sigmas, numbers.Real) and not isinstance(sigmas, bool):
            sigmas = as_float(sigmas, "keypoints.sigmas", minimum=0, strict_min=True)
        elif isinstance(sigmas, (list, tuple)) and sigmas:
            sigmas = [as_float(s, f"keypoints.sigmas[{i}]", minimum=0, strict_min=True) for i, s in enumerate(sigmas)]
        else:
            fail("keypoints.sigmas", f"must be a positive number or a list of K positive numbers, got {sigmas!r}.")
    return {"spec": spec, "sigmas": sigmas}


def _validate_split(raw, base_dir, where, allowed):
    if isinstance(raw, str):
        raw = {"annotation_file": raw}
    check_keys(raw, allowed, where)
    s = merge_defaults(allowed, raw)
    require(s, where)
    s["annotation_file"] = resolve_path(s["annotation_file"], base_dir, True, f"{where}.annotation_file")
    if s["image_root"] is None:
        s["image_root"] = os.path.dirname(s["annotation_file"])
    else:
        s["image_root"] = resolve_path(s["image_root"], base_dir, True, f"{where}.image_root", kind="folder")
    return s


def _validate_data(raw, base_dir):
    if raw is None:
        fail("data", "is required: give data.train.annotation_file (and data.val for evaluation).")
    check_keys(raw, SCHEMA["data"], "data")
    d = merge_defaults(SCHEMA["data"], raw)
    d["format"] = as_choice(d["format"], "data.format", FORMATS)
    if d["train"] is REQUIRED or d["train"] is None:
        fail("data.train", "is required: {annotation_file: FILE, image_root: FOLDER}.")
    if isinstance(d["train"], list):  # several datasets: ViTPose++ multi-dataset training
        from keras_pose.training.multi_dataset_config import validate_multi_dataset_train

        d["train"] = validate_multi_dataset_train(d["train"], base_dir, _validate_split)
    else:
        d["train"] = _validate_split(d["train"], base_dir, "data.train", SCHEMA["data"]["train"])
    if d["val"] is not None:
        d["val"] = _validate_split(d["val"], base_dir, "data.val", _VAL_KEYS)
        d["val"]["detections"] = resolve_path(d["val"]["detections"], base_dir, True, "data.val.detections")
        d["val"]["min_detection_score"] = as_float(d["val"]["min_detection_score"], "data.val.min_detection_score", 0.0)
        if d["val"]["detections"] and d["format"] != "coco":
            fail("data.val.detections", "applies to COCO-format data only (data.format: coco).")
    cache = d["cache_images"]
    if cache is True:
        cache = "decoded"
    if cache not in CACHE_MODES:
        fail("data.cache_images", f"must be false, encoded or decoded, got {cache!r}.")
    d["cache_images"] = cache
    return d


def _validate_train(raw):
    check_keys(raw, SCHEMA["train"], "train")
    t = merge_defaults(SCHEMA["train"], raw)
    t["batch_size"] = as_int(t["batch_size"], "train.batch_size")
    t["epochs"] = as_int(t["epochs"], "train.epochs")
    t["steps_per_epoch"] = as_int(t["steps_per_epoch"], "train.steps_per_epoch", allow_none=True)
    aug = t["augmentation"]
    if not isinstance(aug, (bool, dict)) and aug is not None:
        fail("train.augmentation", f"must be true, false or a mapping of stage overrides, got {aug!r}.")
    if isinstance(aug, dict):
        from keras_pose.data.augmentations import DEFAULT_AUGMENT

        check_keys(aug, DEFAULT_AUGMENT, "train.augmentation")
        aug = dict(aug)
        for stage, value in list(aug.items()):
            if value is not None and not isinstance(value, (bool, dict)):
                fail(f"train.augmentation.{stage}", f"must be true, false/null or a mapping, got {value!r}.")
            if isinstance(value, dict):
                check_keys(value, DEFAULT_AUGMENT[stage], f"train.augmentation.{stage}")
                aug[stage] = {name: typed_value(v, DEFAULT_AUGMENT[stage][name], f"train.augmentation.{stage}.{name}")
                              for name, v in value.items()}
    t["augmentation"] = bool(aug) if not isinstance(aug, dict) else aug

    opt = t["optimizer"]
    if isinstance(opt, str):
        opt = {"type": opt}
    opt_defaults = SCHEMA["train"]["optimizer"]
    check_keys(opt, opt_defaults, "train.optimizer")
    opt = merge_defaults(opt_defaults, opt)
    opt["type"] = as_choice(opt["type"], "train.optimizer.type", OPTIMIZERS)
    if opt["weight_decay"] is None:
        opt["weight_decay"] = 0.1 if opt["type"] == "adamw" else 0.0
    opt["weight_decay"] = as_float(opt["weight_decay"], "train.optimizer.weight_decay", 0.0)
    opt["momentum"] = as_float(opt["momentum"], "train.optimizer.momentum", 0.0, 1.0)
    opt["clipnorm"] = as_float(opt["clipnorm"], "train.optimizer.clipnorm", 0.0, allow_none=True, strict_min=True)
    validate_recipes(t, opt)
    t["optimizer"] = opt

    t["distribution"] = validate_distribution(t["distribution"])

    lr = number_from_text(t["learning_rate"])
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        lr = {"base": lr, "schedule": "constant"}
    lr_defaults = SCHEMA["train"]["learning_rate"]
    check_keys(lr, lr_defaults, "train.learning_rate")
    lr = merge_defaults(lr_defaults, lr)
    lr["base"] = as_float(lr["base"], "train.learning_rate.base", 0.0, strict_min=True)
    lr["schedule"] = as_choice(lr["schedule"], "train.learning_rate.schedule", SCHEDULES)
    lr["warmup_steps"] = as_int(lr["warmup_steps"], "train.learning_rate.warmup_steps", minimum=0)
    lr["warmup_epochs"] = as_float(lr["warmup_epochs"], "train.learning_rate.warmup_epochs", 0.0, allow_none=True)
    if lr["warmup_epochs"] is not None and lr["warmup_steps"]:
        fail("train.learning_rate.warmup_epochs", "and warmup_steps are both set; give one of them.")
    lr["warmup_start_factor"] = as_float(lr["warmup_start_factor"], "train.learning_rate.warmup_start_factor", 0.0, 1.0)
    milestones = lr["milestones"] or []
    if not isinstance(milestones, (list, tuple)):
        fail("train.learning_rate.milestones", f"must be a list of epochs, got {milestones!r}.")
    milestones = [as_int(m, f"train.learning_rate.milestones[{i}]") for i, m in enumerate(milestones)]
    if milestones != sorted(set(milestones)):
        fail("train.learning_rate.milestones", f"must be increasing epochs, got {milestones}.")
    if lr["schedule"] == "step" and not milestones:
        fail("train.learning_rate.milestones", "is required with schedule: step (epochs where the rate is "
              "multiplied by gamma, e.g. [170, 200]).")
    lr["milestones"] = milestones
    lr["gamma"] = as_float(lr["gamma"], "train.learning_rate.gamma", 0.0, 1.0, strict_min=True)
    lr["min_factor"] = as_float(lr["min_factor"], "train.learning_rate.min_factor", 0.0, 1.0)
    t["learning_rate"] = lr
    t["seed"] = as_int(t["seed"], "train.seed", minimum=0, allow_none=True)
    return t


def _validate_evaluation(raw, data):
    check_keys(raw, SCHEMA["evaluation"], "evaluation")
    e = merge_defaults(SCHEMA["evaluation"], raw)
    e["metric"] = as_choice(e["metric"], "evaluation.metric", METRICS)
    if e["metric"] == "auto":
        e["metric"] = "pckh" if data["format"] == "mpii" else "coco"
    if e["metric"] == "coco" and data["format"] == "mpii":
        fail("evaluation.metric", "coco needs a COCO-format annotation file; use pckh or pck for MPII data.")
    if e["metric"] == "pckh" and data["format"] != "mpii":
        fail("evaluation.metric", "pckh needs MPII head sizes (data.format: mpii); use coco or pck.")
    e["every_n_epochs"] = as_int(e["every_n_epochs"], "evaluation.every_n_epochs")
    e["flip_test"] = as_bool(e["flip_test"], "evaluation.flip_test", allow_none=True)
    e["batch_size"] = as_int(e["batch_size"], "evaluation.batch_size")
    monitor = as_str(e["monitor"], "evaluation.monitor", allow_none=True)
    if monitor is None:
        if data["val"] is None:
            monitor = "loss"
        else:
            monitor = {"coco": "val_coco_AP", "pck": "val_pck", "pckh": "val_pckh"}[e["metric"]]
    else:
        from keras_pose.metrics import CROWD_STAT_NAMES, STAT_NAMES

        coco_names = list(STAT_NAMES) + [name for name in CROWD_STAT_NAMES if name not in STAT_NAMES]  # CrowdPose
        logged = ["loss"]
        if data["val"] is not None:
            logged += {"coco": [f"val_coco_{name}" for name in coco_names], "pck": ["val_pck", "val_epe"],
                       "pckh": ["val_pckh", "val_pckh@0.1"]}[e["metric"]]
        if monitor not in logged:
            why = "" if data["val"] is not None else " (there is no data.val to evaluate)"
            fail("evaluation.monitor", f"is {monitor!r}, which is not logged{why}{suggest(monitor, logged)}; "
                  f"choose one of {', '.join(logged)}.")
    e["monitor"] = monitor
    return e


def _validate_output(raw, base_dir):
    if raw is None:
        fail("output", "is required: output: {dir: FOLDER}.")
    if isinstance(raw, str):
        raw = {"dir": raw}
    check_keys(raw, SCHEMA["output"], "output")
    o = merge_defaults(SCHEMA["output"], raw)
    require(o, "output")
    o["dir"] = resolve_path(o["dir"], base_dir, False, "output.dir")
    if os.path.isfile(o["dir"]):
        fail("output.dir", f"is a file: {o['dir']!r}; give a folder.")
    o["overwrite"] = as_bool(o["overwrite"], "output.overwrite")
    o["discard_previous_run"] = as_bool(o["discard_previous_run"], "output.discard_previous_run")
    o["save"] = as_choice(o["save"], "output.save", ("best", "last"))
    o["plot"] = as_bool(o["plot"], "output.plot")
    o["resume"] = as_bool(o["resume"], "output.resume")
    o["state_every_n_steps"] = as_int(o["state_every_n_steps"], "output.state_every_n_steps", allow_none=True)
    o["keep_states"] = as_int(o["keep_states"], "output.keep_states", minimum=1)
    return o


__all__ = ["CACHE_MODES", "FORMATS", "METRICS", "SCHEMA", "TrainConfig"]
