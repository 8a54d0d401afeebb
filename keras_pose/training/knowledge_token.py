"""Knowledge-token distillation (ViTPose paper, "transferability").

1. Teacher phase: a learnable token is prepended to a frozen teacher's patch
   tokens (`with_knowledge_token(teacher)`) and only the token is trained with
   the pose loss (`fit_knowledge_token`).
2. Student phase: the trained token is copied into the student
   (`with_knowledge_token(student, token=...)`), where it is frozen while the
   student trains as usual. A student narrower than the teacher maps the
   frozen token to its width with a trainable linear projection.

    teacher_t = with_knowledge_token(teacher)
    token = fit_knowledge_token(teacher_t, x, y, epochs=5)
    student = with_knowledge_token(student, token=token)
    student.compile(...); student.fit(x, y, ...)

Both models must be ViTPose models with global attention in every block.
`keras-pose train` runs both phases with `distillation: {type: token}`
(`both`: the student also gets output distillation from the teacher).
"""

import numpy as np

import keras


def _backbone(model):
    backbone = getattr(model, "backbone", None)
    if backbone is None or not hasattr(backbone, "knowledge_token_dim"):
        raise ValueError(
            f"Knowledge-token distillation needs ViTPose models (a ViTPoseBackbone), got {type(model).__name__}."
        )
    return backbone


def with_knowledge_token(model, token=None):
    """`model` rebuilt with a knowledge token, all its weights copied.

    Args:
        model: a `ViTPose` (global attention).
        token: None: a new trainable token of the model's width (teacher
            phase); an array (1, 1, D) or (D,): a trained token, set and
            frozen (student phase; D != the model's width adds a trainable
            projection).

    Returns:
        A new model of the same class.
    """
    from keras_pose.models.vitpose.vitpose_transfer import rebuild

    backbone = _backbone(model)
    if token is None:
        return rebuild(model, knowledge_token_dim=backbone.hidden_dim, freeze_knowledge_token=False)
    token = np.asarray(keras.ops.convert_to_numpy(token), np.float32).reshape(1, 1, -1)
    clone = rebuild(model, knowledge_token_dim=token.shape[-1], freeze_knowledge_token=True)
    clone.backbone.knowledge_token.token.assign(token)
    return clone


def fit_knowledge_token(teacher, *fit_args, optimizer=None, **fit_kwargs):
    """Train only the knowledge token of a teacher (everything else frozen) and return it.

    Args:
        teacher: a model from `with_knowledge_token(teacher)`.
        *fit_args, **fit_kwargs: `teacher.fit` arguments (crops and target
            dicts, or a dataset; `epochs`, `batch_size`, ...).
        optimizer: default Adam(1e-3).

    Returns:
        The trained token, a float32 array (1, 1, C).
    """
    backbone = _backbone(teacher)
    layer = backbone.knowledge_token
    if layer is None or layer.freeze_token:
        raise ValueError("The teacher has no trainable knowledge token; pass with_knowledge_token(teacher).")
    teacher.trainable = True
    for sub in teacher._flatten_layers(include_self=False, recursive=True):
        if isinstance(sub, keras.layers.BatchNormalization):
            sub.trainable = False  # inference mode: the teacher's statistics stay fixed
    for w in teacher.weights:
        w.trainable = w is layer.token
    trainable = [w.path for w in teacher.trainable_weights]
    if trainable != [layer.token.path]:
        raise RuntimeError(f"Only the knowledge token should train; trainable weights: {trainable}.")
    teacher.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), jit_compile=False)
    teacher.fit(*fit_args, **fit_kwargs)
    return np.asarray(keras.ops.convert_to_numpy(layer.token), np.float32)
