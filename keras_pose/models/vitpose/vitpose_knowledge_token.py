"""The ViTPose knowledge token (ViTPose paper, "transferability": knowledge-token distillation).

A learnable token prepended to the patch tokens after the patch embedding:
it goes through every (global-attention) block and is dropped before the
final reshape to the feature grid. It is first trained on a frozen teacher
with the pose loss, then copied into the student, where it stays frozen
(`keras_pose.training.knowledge_token`). When the teacher is wider than the
student, the student maps the frozen token to its width with a trainable
linear projection (`token_dim` != `hidden_dim`).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseKnowledgeToken(keras.layers.Layer):
    """Prepend one knowledge token: (B, N, C) -> (B, 1 + N, C).

    Weights: `token` (1, 1, token_dim), trainable unless `freeze_token`;
    with token_dim != C also `projection` (Dense token_dim -> C, trainable).

    Args:
        hidden_dim: C, the backbone width.
        token_dim: the token's width (a teacher's C; default C).
        freeze_token: the token is a non-trainable weight (student phase).
    """

    def __init__(self, hidden_dim, token_dim=None, freeze_token=False, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.token_dim = int(token_dim or hidden_dim)
        self.freeze_token = bool(freeze_token)
        self.projection = (
            keras.layers.Dense(self.hidden_dim, dtype=self.dtype_policy, name="projection")
            if self.token_dim != self.hidden_dim
            else None
        )

    def build(self, input_shape):
        self.token = self.add_weight(
            shape=(1, 1, self.token_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            trainable=not self.freeze_token,
            name="token",
        )
        if self.projection is not None:
            self.projection.build((None, 1, self.token_dim))

    def call(self, x):
        token = ops.cast(self.token, x.dtype)
        if self.projection is not None:
            token = self.projection(token)
        token = ops.zeros_like(x[:, :1]) + token  # (B, 1, C), batch-size agnostic (exportable)
        return ops.concatenate([token, x], axis=1)

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], n, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim, "token_dim": self.token_dim, "freeze_token": self.freeze_token})
        return config
