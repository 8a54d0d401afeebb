"""Output (heatmap) knowledge distillation (ViTPose paper, "transferability").

A student top-down model is trained with its usual ground-truth loss plus
`weight` x the mean squared difference between its heatmaps and those of a
frozen teacher on the same crops:

    loss = pose_loss(targets, student(x)) + weight * mean((student(x) - teacher(x))^2)

    model.compile(optimizer, distillation=OutputDistillation(teacher, weight=1.0))
    model.fit(...)

The teacher is any top-down pose model with the student's keypoints (any
ViTPose size, another family too). Its weights are frozen and it runs in
inference mode (BatchNorm statistics fixed); it is not part of the student
(not saved with it, not in its weights). When the teacher's input size
differs, the crops are resized (bilinear) for it; when its heatmaps' size
differs, they are resized to the student's.

`keras-pose train` reads it from the config key
`distillation: {teacher: PRESET_OR_DIR, type: output | token | both, weight: 1.0,
token_epochs: 1}` (`apply_distillation_config`; knowledge-token distillation:
`keras_pose.training.knowledge_token`).
"""

from keras import ops

DISTILLATION_TYPES = ("output", "token", "both")


class OutputDistillation:
    """MSE between the student's heatmaps and a frozen teacher's, times `weight`.

    Args:
        teacher: a top-down pose task (`keras_pose.ViTPose`, `CPN`, ...;
            anything with `heatmaps_from_outputs`, `image_size` and a
            keypoint spec). Frozen here (`trainable = False`).
        weight: the distillation term's weight (>= 0), added to the
            ground-truth loss.
    """

    def __init__(self, teacher, weight=1.0):
        if not hasattr(teacher, "heatmaps_from_outputs") or not hasattr(teacher, "image_size"):
            raise ValueError(
                f"The distillation teacher must be a top-down pose model (e.g. keras_pose.ViTPose), "
                f"got {type(teacher).__name__}."
            )
        weight = float(weight)
        if not weight >= 0:
            raise ValueError(f"The distillation weight must be >= 0, got {weight}.")
        self.teacher = teacher
        self.weight = weight
        teacher.trainable = False

    def check_student(self, student):
        """Raise if the student is not a top-down heatmap model or its keypoints differ from the teacher's."""
        if not hasattr(student, "heatmaps_from_outputs"):
            raise ValueError(f"Output distillation needs a top-down heatmap student, got {type(student).__name__}.")
        k_student = student.keypoint_spec.num_keypoints
        k_teacher = self.teacher.keypoint_spec.num_keypoints
        if k_student != k_teacher:
            raise ValueError(
                f"The distillation teacher predicts {k_teacher} keypoints but the student {k_student}; "
                "use a teacher with the student's keypoint spec."
            )

    def teacher_heatmaps(self, x, size):
        """Teacher heatmaps (B, h, w, K) float32 for student crops `x`, resized to `size` = (h, w)."""
        t_size = tuple(self.teacher.image_size)
        if tuple(x.shape[1:3]) != t_size:
            x = ops.image.resize(ops.cast(x, "float32"), t_size, interpolation="bilinear")
        heatmaps = ops.cast(self.teacher.heatmaps_from_outputs(self.teacher(x, training=False)), "float32")
        if tuple(heatmaps.shape[1:3]) != tuple(size):
            heatmaps = ops.image.resize(heatmaps, tuple(size), interpolation="bilinear")
        return ops.stop_gradient(heatmaps)

    def __call__(self, x, student_heatmaps):
        """`weight * mean((student - teacher)^2)`, a float32 scalar."""
        student_heatmaps = ops.cast(student_heatmaps, "float32")
        teacher = self.teacher_heatmaps(x, student_heatmaps.shape[1:3])
        return self.weight * ops.mean(ops.square(student_heatmaps - teacher))

    def __repr__(self):
        return f"OutputDistillation(teacher={self.teacher.name!r}, weight={self.weight})"


def apply_distillation_config(section, student, load_model, token_fit_args=(), token_fit_kwargs=None, say=print):
    """What a train config's `distillation` section does to the student before `compile`.

    Args:
        section: {teacher, type, weight, token_epochs} (validated by the
            config schema), or None.
        student: the model to train.
        load_model: callable(preset name or directory) -> teacher model.
        token_fit_args, token_fit_kwargs: `fit` arguments of the teacher
            phase of token distillation (the training data; its `epochs` is
            `token_epochs`).
        say: progress messages.

    Returns:
        (student, output distillation or None): type "token" / "both"
        returns the student rebuilt with the teacher's trained knowledge
        token (frozen); "output" / "both" an `OutputDistillation` for
        `compile`.
    """
    if not section:
        return student, None
    kind = section["type"]
    if kind not in DISTILLATION_TYPES:
        raise ValueError(f"distillation.type must be one of {DISTILLATION_TYPES}, got {kind!r}.")
    teacher = load_model(section["teacher"])
    if kind in ("token", "both"):
        from keras_pose.training.knowledge_token import fit_knowledge_token, with_knowledge_token

        if tuple(teacher.image_size) != tuple(student.image_size):
            raise ValueError(
                f"Token distillation trains the teacher's token on the student's crops: the teacher's input size "
                f"{tuple(teacher.image_size)} must equal the student's {tuple(student.image_size)}."
            )
        say(f"Knowledge-token distillation: training a token on the frozen teacher for "
            f"{section['token_epochs']} epoch(s).")
        token = fit_knowledge_token(with_knowledge_token(teacher), *token_fit_args,
                                    **{**(token_fit_kwargs or {}), "epochs": section["token_epochs"]})
        student = with_knowledge_token(student, token=token)
    output = OutputDistillation(teacher, weight=section["weight"]) if kind in ("output", "both") else None
    if output is not None:
        say(f"Output distillation, weight {output.weight:g}.")
    return student, output
