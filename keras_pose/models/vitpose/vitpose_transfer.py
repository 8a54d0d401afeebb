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


def _backbone_of(model):
    from keras_pose.models.vitpose.vitpose_backbone import ViTPoseBackbone

    return model if isinstance(model, ViTPoseBackbone) else model.backbone


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
    problems += [f"{p}: not in the source" for p in kept if p.rsplit("/", 1)[-1] not in new_weights]
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
    from keras_pose.models.vitpose.vitpose_backbone import ViTPoseBackbone

    config = model.get_config()
    backbone_config = config if isinstance(model, ViTPoseBackbone) else config["backbone"]["config"]
    backbone_config["attention"] = attention
    if window_size is not None:
        backbone_config["window_size"] = window_size
    clone = type(model).from_config(config)
    clone_backbone = _backbone_of(clone)
    if not clone_backbone.built:
        clone_backbone.build((None, *clone_backbone.image_size, 3))
    # Bias tables the model already had (window -> other window sizes keep none: shapes differ).
    src, dst = _relative_paths(model), _relative_paths(clone)
    for path, w in src.items():
        if path.rsplit("/", 1)[-1] in NEW_WEIGHTS and path in dst and tuple(dst[path].shape) == tuple(w.shape):
            dst[path].assign(w)
    common = {p: w for p, w in src.items() if p.rsplit("/", 1)[-1] not in NEW_WEIGHTS}
    for path, w in common.items():
        if path not in dst or tuple(dst[path].shape) != tuple(w.shape):
            raise ValueError(f"{path} has no counterpart of shape {tuple(w.shape)} in the rebuilt model.")
        dst[path].assign(w)
    return clone
