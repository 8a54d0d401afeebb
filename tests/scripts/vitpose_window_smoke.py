"""ViTPose window-attention variants under one Keras backend: forward, mixed bfloat16 forward, 2-step fit;
then 2-step fits with output distillation and with a frozen knowledge token.

Weights come from a fixed seed (`backend_smoke._seed_weights`, relative bias
tables included), so forward outputs compare across backends.

    KERAS_BACKEND=jax python tests/scripts/vitpose_window_smoke.py OUT.npz
"""

import importlib.util
import os
import sys

import keras
import numpy as np

import keras_pose

_spec = importlib.util.spec_from_file_location(
    "backend_smoke", os.path.join(os.path.dirname(__file__), "backend_smoke.py")
)
backend_smoke = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(backend_smoke)

TINY = dict(hidden_dim=32, num_layers=2, num_heads=4, mlp_dim=64)
# XLA-compiled steps on JAX (cheaper there than op-by-op eager steps), eager elsewhere.
JIT = keras.backend.backend() == "jax"


def build_models(only=None):
    builders = {
        # 1/8 tokens (8 x 6), padded 3 x 4 windows, pooling + shift, minimal decoder.
        "stride8_shifted_pooling_minimal": lambda: keras_pose.ViTPose(
            keras_pose.ViTPoseBackbone(image_size=(64, 48), patch_stride=8, patch_padding=4,
                                       attention="shifted_pooling_window", window_size=(3, 4), **TINY),
            decoder="minimal",
        ),
        # 1/16 tokens (4 x 3), 2 x 2 windows then shifted ones, classic decoder.
        "stride16_shifted_classic": lambda: keras_pose.ViTPose(
            keras_pose.ViTPoseBackbone(image_size=(64, 48), attention="shifted_window", window_size=2, **TINY),
            deconv_filters=(16, 16),
        ),
    }
    return {name: build() for name, build in builders.items() if only in (None, name)}


def main(out_path):
    results = {}
    rng = np.random.default_rng(123)
    for name, model in build_models().items():
        backend_smoke._seed_weights(model)
        x = np.random.default_rng(7).normal(0.0, 1.0, (2, 64, 48, 3)).astype("float32")
        results[f"{name}/forward"] = keras.ops.convert_to_numpy(model(x, training=False))
        model.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=JIT)
        history = model.fit(x, backend_smoke._targets(model, 2, rng), batch_size=1, epochs=1, steps_per_epoch=2,
                            verbose=0)
        results[f"{name}/loss"] = np.asarray(history.history["loss"], np.float32)
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            mixed = build_models(name)[name]
            mixed.set_weights(model.get_weights())
            out = keras.ops.convert_to_numpy(mixed(x, training=False))
            results[f"{name}/mixed_dtype"] = np.array(str(out.dtype))
            results[f"{name}/mixed"] = out.astype("float32")
            results[f"{name}/after_fit"] = keras.ops.convert_to_numpy(model(x, training=False))
        finally:
            keras.config.set_dtype_policy("float32")
        print(name, "ok", flush=True)
    # Distillation in `fit`: output distillation from a frozen teacher, and a student with a frozen knowledge token.
    from keras_pose.training import OutputDistillation
    from keras_pose.training.knowledge_token import fit_knowledge_token, with_knowledge_token

    x = np.random.default_rng(7).normal(0.0, 1.0, (2, 64, 48, 3)).astype("float32")
    teacher = backend_smoke._seed_weights(
        keras_pose.ViTPose(keras_pose.ViTPoseBackbone(image_size=(64, 48), **TINY), deconv_filters=(16, 16))
    )
    student = keras_pose.ViTPose(keras_pose.ViTPoseBackbone(image_size=(64, 48), **{**TINY, "hidden_dim": 16}),
                                 decoder="minimal")
    student.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=JIT,
                    distillation=OutputDistillation(teacher, weight=1.0))
    history = student.fit(x, backend_smoke._targets(student, 2, rng), batch_size=1, epochs=2, verbose=0)
    results["distill_output/loss"] = np.asarray(history.history["loss"], np.float32)
    token = fit_knowledge_token(with_knowledge_token(teacher), x, backend_smoke._targets(teacher, 2, rng),
                                batch_size=1, epochs=1, verbose=0)
    student = with_knowledge_token(student, token=token)
    student.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=JIT)
    history = student.fit(x, backend_smoke._targets(student, 2, rng), batch_size=1, epochs=2, verbose=0)
    results["distill_token/loss"] = np.asarray(history.history["loss"], np.float32)
    results["distill_token/unchanged"] = np.array(
        np.array_equal(keras.ops.convert_to_numpy(student.backbone.knowledge_token.token), token)
    )
    print("distillation ok", flush=True)
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as backend_smoke.py: skip a teardown abort with TensorFlow and torch in one process
