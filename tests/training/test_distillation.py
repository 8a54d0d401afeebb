"""Distillation: output (a student fitted with a frozen teacher's heatmap MSE added gets closer to the
teacher) and knowledge-token (the token trains alone on the teacher, then stays frozen in the student)."""

import numpy as np
import pytest

import keras

import keras_pose
from keras_pose.training import OutputDistillation
from keras_pose.training.knowledge_token import fit_knowledge_token, with_knowledge_token

TEACHER = {"hidden_dim": 64, "num_layers": 2, "num_heads": 4, "mlp_dim": 128}
STUDENT = {"hidden_dim": 32, "num_layers": 1, "num_heads": 4, "mlp_dim": 64}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


def _model(sizes, decoder, seed, scale=0.1, image_size=(64, 48)):
    model = keras_pose.ViTPose(keras_pose.ViTPoseBackbone(image_size=image_size, **sizes), decoder=decoder,
                               deconv_filters=(16, 16))
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "moving_variance" in w.path or "gamma" in w.path:
            w.assign(np.ones(w.shape, np.float32))
        elif "moving_mean" not in w.path:
            w.assign((scale * rng.standard_normal(w.shape)).astype(np.float32))
    return model


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 64, 48, 3)).astype(np.float32)
    y = {"heatmaps": rng.uniform(0, 1, (n, 16, 12, 17)).astype(np.float32),
         "keypoint_weights": np.ones((n, 17), np.float32)}
    return x, y


def _fit(distillation, teacher, steps=12):
    student = _model(STUDENT, "simple", seed=1)
    x, y = _data()
    kwargs = {"distillation": OutputDistillation(teacher, weight=distillation)} if distillation else {}
    student.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False, **kwargs)
    student.fit(x, y, batch_size=4, epochs=steps // 2, verbose=0)
    held_out = _data(seed=5)[0]
    return float(np.mean((_np(student(held_out)) - _np(teacher(held_out))) ** 2)), student


@pytest.mark.slow  # two 12-step fits, ~10 s
def test_output_distillation_moves_the_student_toward_the_teacher():
    teacher = _model(TEACHER, "classic", seed=2, scale=0.15)
    before = [_np(w) for w in teacher.weights]
    plain, _ = _fit(0.0, teacher)
    distilled, student = _fit(10.0, teacher)
    print(f"student-teacher heatmap MSE on held-out crops: without distillation {plain:.4g}, with {distilled:.4g}")
    assert distilled < 0.75 * plain  # measured 0.674 vs 1.163 (0.58x)
    for b, w in zip(before, teacher.weights):  # frozen teacher, not part of the student
        np.testing.assert_array_equal(b, _np(w))
    assert not any(w is t for w in student.weights for t in teacher.weights)
    assert len(student.weights) == len(_model(STUDENT, "simple", seed=1).weights)


def test_distillation_term_value_and_resizing():
    teacher = _model(TEACHER, "classic", seed=2, scale=0.3, image_size=(128, 96))  # heatmaps 32 x 24
    distillation = OutputDistillation(teacher, weight=2.0)
    x = _data(2)[0]
    student_heatmaps = np.zeros((2, 16, 12, 17), np.float32)
    expected = keras.ops.image.resize(teacher(keras.ops.image.resize(x, (128, 96))), (16, 12))
    value = float(_np(distillation(x, student_heatmaps)))
    np.testing.assert_allclose(value, 2.0 * float(np.mean(_np(expected) ** 2)), rtol=1e-5)


def test_distillation_errors_name_the_fix():
    teacher = _model(TEACHER, "classic", seed=2)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        OutputDistillation(teacher, weight=-1)
    with pytest.raises(ValueError, match="top-down pose model"):
        OutputDistillation(keras.Sequential([keras.layers.Dense(1)]))
    mpii = keras_pose.ViTPose(keras_pose.ViTPoseBackbone(image_size=(64, 48), **STUDENT), keypoint_spec="mpii")
    with pytest.raises(ValueError, match="17 keypoints but the student 16"):
        mpii.compile(distillation=OutputDistillation(teacher))


# ------------------------------------------------------------- keras-pose train
def _tiny_preset(directory, hidden=32):
    backbone = keras_pose.ViTPoseBackbone(image_size=(64, 48), hidden_dim=hidden, num_layers=1, num_heads=2,
                                          mlp_dim=64)
    keras_pose.ViTPose(backbone, decoder="simple").save_to_preset(str(directory))
    return str(directory)


def test_train_config_distillation_section(tmp_path):
    from pose_testing.paths import REPO_ROOT

    from keras_pose.errors import TrainConfigError
    from keras_pose.training import load_train_config

    sample = REPO_ROOT / "examples" / "train_config.yaml"
    teacher = _tiny_preset(tmp_path / "teacher")
    config = load_train_config(sample, overrides=[f"distillation={{teacher: {teacher}, weight: 0.5}}"])
    assert config["distillation"] == {"teacher": teacher, "type": "output", "weight": 0.5, "token_epochs": 1}
    assert load_train_config(sample)["distillation"] is None
    token = load_train_config(sample, overrides=[f"distillation={{teacher: {teacher}, type: both, token_epochs: 2}}"])
    assert token["distillation"]["type"] == "both" and token["distillation"]["token_epochs"] == 2
    with pytest.raises(TrainConfigError, match="distillation.type"):
        load_train_config(sample, overrides=[f"distillation={{teacher: {teacher}, type: features}}"])
    with pytest.raises(TrainConfigError, match="distillation.token_epochs"):
        load_train_config(sample, overrides=[f"distillation={{teacher: {teacher}, token_epochs: 0}}"])
    with pytest.raises(TrainConfigError, match="distillation.teacher"):
        load_train_config(sample, overrides=["distillation={weight: 1.0}"])
    with pytest.raises(TrainConfigError, match="distillation.weight"):
        load_train_config(sample, overrides=[f"distillation={{teacher: {teacher}, weight: -1}}"])


@pytest.mark.slow  # a CLI training run
def test_keras_pose_train_with_distillation(tmp_path, capsys):
    from pose_testing.paths import REPO_ROOT

    from keras_pose.cli import main

    teacher = _tiny_preset(tmp_path / "teacher", hidden=64)
    code = main([
        "train", str(REPO_ROOT / "examples" / "train_config.yaml"), "--output-dir", str(tmp_path / "run"),
        "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4",
        "--set", "model.input_size=[64, 48]",
        "--set", "model.backbone={hidden_dim: 32, num_layers: 1, num_heads: 2, mlp_dim: 64}",
        "--set", f"distillation={{teacher: {teacher}, type: both, weight: 2.0}}",
    ])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Knowledge-token distillation" in out and "Output distillation, weight 2" in out
    student = keras_pose.from_preset(str(tmp_path / "run" / "preset"))
    assert student.backbone.knowledge_token_dim == 64 and student.backbone.freeze_knowledge_token


# ------------------------------------------------------------ knowledge token
@pytest.mark.slow  # two fits, ~8 s
def test_knowledge_token_trains_alone_then_stays_frozen_in_the_student(tmp_path):
    teacher = _model(TEACHER, "classic", seed=2)
    x, y = _data(4)
    with_token = with_knowledge_token(teacher)
    np.testing.assert_array_equal(_np(with_token.backbone.knowledge_token.token).shape, (1, 1, 64))
    before = {w.path: _np(w) for w in with_token.weights}
    token = fit_knowledge_token(with_token, x, y, epochs=1, batch_size=2, verbose=0)
    changed = [w.path for w in with_token.weights if not np.array_equal(before[w.path], _np(w))]
    assert changed == ["knowledge_token/token"]  # the teacher (BN statistics included) is frozen
    for w in teacher.weights:  # the original teacher is untouched
        np.testing.assert_array_equal(_np(w), before[w.path])

    student = with_knowledge_token(_model(STUDENT, "simple", seed=1), token=token)  # 64-wide token, 32-wide student
    layer = student.backbone.knowledge_token
    assert not layer.token.trainable and layer.projection is not None
    projection = _np(layer.projection.kernel)
    student.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    student.fit(x, y, epochs=1, batch_size=2, verbose=0)
    np.testing.assert_array_equal(_np(layer.token), token)  # frozen
    assert not np.array_equal(_np(layer.projection.kernel), projection)  # the projection trains
    path = tmp_path / "student.keras"
    student.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(_np(loaded(x)), _np(student(x)))
    assert not loaded.backbone.knowledge_token.token.trainable


def test_knowledge_token_needs_global_attention():
    with pytest.raises(ValueError, match="knowledge token needs global attention"):
        keras_pose.ViTPoseBackbone(image_size=(64, 48), attention="window", knowledge_token_dim=32, **STUDENT)
    with pytest.raises(ValueError, match="no trainable knowledge token"):
        fit_knowledge_token(_model(STUDENT, "simple", seed=1), *_data(2))


@pytest.mark.slow  # four fits on the COCO sample crops, ~40 s
def test_output_distillation_on_the_coco_samples():
    """A 1-layer student fitted with output distillation from a fitted 2-layer teacher (12 COCO sample people)."""
    from pose_testing.paths import DATA_DIR

    from keras_pose.data import model_dataset
    from keras_pose.datasets import load_coco_keypoints

    coco = load_coco_keypoints(DATA_DIR / "coco" / "test_coco.json", keypoint_spec="coco")
    keras.utils.set_random_seed(0)
    teacher = keras_pose.ViTPose(keras_pose.ViTPoseBackbone(image_size=(64, 48), **TEACHER), decoder="simple")
    ds = model_dataset(teacher, coco, batch_size=len(coco), augment=False, seed=0, repeat=False)
    x, y = next(iter(ds))
    x, y = np.asarray(x), {k: np.asarray(v) for k, v in y.items()}
    teacher.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    history = teacher.fit(x, y, batch_size=12, epochs=60, verbose=0).history["loss"]

    def student_mse(weight):
        keras.utils.set_random_seed(1)
        student = keras_pose.ViTPose(keras_pose.ViTPoseBackbone(image_size=(64, 48), **STUDENT), decoder="simple")
        kwargs = {"distillation": OutputDistillation(teacher, weight=weight)} if weight else {}
        student.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False, **kwargs)
        student.fit(x, y, batch_size=12, epochs=30, verbose=0)
        return float(np.mean((_np(student(x)) - _np(teacher(x))) ** 2))

    plain, distilled, strong = student_mse(0.0), student_mse(1.0), student_mse(10.0)
    print(f"\n[COCO samples] teacher loss {history[0]:.3g} -> {history[-1]:.3g}; student-teacher heatmap MSE: "
          f"without distillation {plain:.3g}, weight 1 {distilled:.3g}, weight 10 {strong:.3g}")
    assert history[-1] < history[0]
    assert distilled < plain and strong < plain  # measured 0.00914 -> 0.00847 (w 1), 0.00856 (w 10)
