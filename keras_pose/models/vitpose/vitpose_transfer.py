"""Weights of a global-attention ViTPose in a window-attention one (and back).

The window blocks (`vitpose_window_attention`) keep every weight of the
global blocks under the same names and shapes; they add one
`relative_position_bias_table` per window block. `with_attention` rebuilds a
backbone or a ViTPose / ViTPose++ task model with other attention types and
copies all weights across; the new bias tables keep their zero
initialisation, so a pretrained checkpoint (through `convert` or a preset)
becomes a window-attention model ready to fine-tune.
"""


NEW_WEIGHTS = ("relative_position_bias_table",)
NEW_LAYERS = ("knowledge_token/",)  # weights under these may be new too (`with_knowledge_token`)


def _is_new(path, new_weights=NEW_WEIGHTS):
    return path.rsplit("/", 1)[-1] in new_weights or path.startswith(NEW_LAYERS)


def _is_backbone(model):
    return hasattr(model, "transformer_layers")  # a ViTPoseBackbone (duck-typed: no import cycle with it)


def _backbone_of(model):
    return model if _is_backbone(model) else model.backbone


def _relative_paths(model):
    """{path with the backbone's own name replaced by "backbone": variable}."""
    prefix = _backbone_of(model).name + "/"
    out = {}
    for w in model.weights:
        path = "backbone/" + w.path[len(prefix):] if w.path.startswith(prefix) else w.path
        if path in out:
            raise ValueError(f"Two weights of {model.name} share the path {path!r}; cannot match them by name.")
        out[path] = w
    return out


def transfer_weights(source, target, new_weights=NEW_WEIGHTS):
    """Copy every weight of `source` into the weight of `target` with the same path.

    Args:
        source, target: ViTPose backbones or task models of the same
            architecture except the attention types.
        new_weights: names (last path component) of target weights allowed
            to have no source (they keep their initial values).

    Returns:
        The list of target paths that kept their initial values.

    Raises:
        ValueError: a source weight without a target, a target weight
            without a source that is not in `new_weights`, or a shape
            mismatch (all listed).
    """
    src, dst = _relative_paths(source), _relative_paths(target)
    problems = [f"{p}: not in the target" for p in src if p not in dst]
    kept = [p for p in dst if p not in src]
    problems += [f"{p}: not in the source" for p in kept if not _is_new(p, new_weights)]
    problems += [
        f"{p}: shape {tuple(w.shape)} in the source, {tuple(dst[p].shape)} in the target"
        for p, w in src.items()
        if p in dst and tuple(w.shape) != tuple(dst[p].shape)
    ]
    if problems:
        raise ValueError(
            "The models differ in more than the attention types (same sizes, image size and patch settings "
            "needed):\n  " + "\n  ".join(problems)
        )
    for p, w in src.items():
        dst[p].assign(w)
    return kept


def rebuild(model, **backbone_changes):
    """`model` (backbone or task) rebuilt with changed backbone arguments and all its weights copied.

    Weights the rebuilt model has and `model` lacks (bias tables, a
    knowledge token) keep their initial values; those both have are copied
    when their shapes agree.

    Raises:
        ValueError: a weight of `model` (other than those) has no
            counterpart of the same shape.
    """
    config = model.get_config()
    backbone_config = config if _is_backbone(model) else config["backbone"]["config"]
    backbone_config.update(backbone_changes)
    clone = type(model).from_config(config)
    src, dst = _relative_paths(model), _relative_paths(clone)
    for path, w in src.items():
        fits = path in dst and tuple(dst[path].shape) == tuple(w.shape)
        if fits:
            dst[path].assign(w)
        elif not _is_new(path):
            raise ValueError(f"{path} has no counterpart of shape {tuple(w.shape)} in the rebuilt model.")
    return clone


def with_attention(model, attention, window_size=None):
    """`model` rebuilt with other attention types, all its weights copied.

    Args:
        model: a `ViTPoseBackbone`, `ViTPose` or `ViTPosePP`.
        attention: the backbone's new `attention` ("window",
            "shifted_window", ... or a per-block list; see `ViTPoseBackbone`).
        window_size: new window size in tokens (None: keep the current).

    Returns:
        A new model of the same class; the relative position bias tables of
        the window blocks are new (zeros unless `model` had them already).
    """
    changes = {"attention": attention}
    if window_size is not None:
        changes["window_size"] = window_size
    return rebuild(model, **changes)
