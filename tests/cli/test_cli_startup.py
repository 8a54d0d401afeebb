"""Issue 10: a quiet and quick command line, a light `import keras_pose`, the bundled sample image.

Process start-up is what these tests are about, so the import checks and the
noise check run the CLI in subprocesses; the rest runs in-process.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from pose_testing.paths import DATA_DIR, REPO_ROOT

from keras_pose.cli import build_parser, main
from keras_pose.utils import console

HEAVY = ("tensorflow", "keras", "jax", "keras_hub", "torch")
IMAGE = DATA_DIR / "coco" / "000000000785.jpg"

# Runs main(argv) and reports the heavy modules it imported.
_PROBE = """
import json, sys, time
start = time.perf_counter()
from keras_pose.cli import build_parser, main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
sys.__stderr__.write("PROBE " + json.dumps({{"heavy": heavy, "seconds": time.perf_counter() - start}}) + "\\n")
""".format(heavy=HEAVY)


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell: no log level set
    env.update(extra)
    return env


def _probe(*argv, backend="tensorflow"):
    """(heavy modules imported, wall seconds of the whole process, stdout, stderr without the probe line)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], env=_env(KERAS_BACKEND=backend),
                          capture_output=True, text=True, timeout=300, cwd=str(REPO_ROOT))
    wall = time.perf_counter() - start
    lines = proc.stderr.splitlines()
    report = json.loads(next(line for line in lines if line.startswith("PROBE "))[6:])
    return report["heavy"], wall, proc.stdout, "\n".join(line for line in lines if not line.startswith("PROBE "))


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["predict", "--help"],
    ["predict", "--preset", "x", "--box", "1,2"],  # argparse error
    ["export", "--preset", "x"],  # a required option missing
    ["train"],
])
def test_help_and_argument_errors_import_no_backend(argv):
    times = []
    for _ in range(2):
        heavy, wall, _, _ = _probe(*argv)
        assert heavy == [], f"`keras-pose {' '.join(argv)}` imported {heavy}"
        times.append(wall)
    print(f"keras-pose {' '.join(argv)}: {min(times):.2f} s (best of {len(times)})")


def test_presets_imports_no_backend():
    heavy, wall, out, err = _probe("presets")
    assert "vitpose_base_coco_256x192" in out and err == ""
    print(f"keras-pose presets: {wall:.2f} s")
    assert heavy == []


def test_import_keras_pose_imports_no_backend_on_jax():
    code = ("import sys, keras_pose, keras_pose.cli, keras_pose.datasets, keras_pose.video\n"
            "assert keras_pose.get_keypoint_spec('coco').num_keypoints == 17\n"
            "assert 'ViTPose' in dir(keras_pose) and keras_pose.KerasPoseError\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(KERAS_BACKEND="jax"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


def test_lazy_public_names_are_the_real_objects():
    import keras_pose
    from keras_pose.models import ViTPose
    from keras_pose.preset_loading import load_preset

    assert keras_pose.ViTPose is ViTPose and keras_pose.from_preset is load_preset
    assert set(keras_pose.__all__) <= set(dir(keras_pose))
    assert keras_pose.utils.image_io.read_image  # submodules load on attribute access
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        keras_pose.NoSuchThing  # noqa: B018


def test_predict_prints_only_its_own_lines(tiny_preset_dir, tmp_path):
    out_png, out_json = tmp_path / "out.png", tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "keras_pose.cli", "predict", "--preset", tiny_preset_dir, str(IMAGE),
                           "--output", str(out_png), "--json", str(out_json)],
                          env=_env(KERAS_BACKEND="tensorflow"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines == [f"keras-pose: wrote the drawing to {out_png}",
                     f"keras-pose: wrote 1 keypoint result (COCO results JSON) to {out_json}"], proc.stderr
    assert out_png.is_file() and len(json.loads(out_json.read_text())) == 1


def test_predict_without_input_uses_the_bundled_sample(tiny_preset_dir, tmp_path, capsys):
    from keras_pose.assets import SAMPLE_IMAGE_BOX, sample_image_path

    assert open(sample_image_path(), "rb").read() == IMAGE.read_bytes()
    out_json = tmp_path / "r.json"
    box = ",".join(map(str, SAMPLE_IMAGE_BOX))
    code = main(["predict", "--preset", tiny_preset_dir, "--box", box, "--json", str(out_json)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "no INPUT given" in err and "bundled sample image" in err and sample_image_path() in err
    assert "CC BY 2.0" in err
    records = json.loads(out_json.read_text())
    assert len(records) == 1 and records[0]["image_id"] == 785
    assert records[0]["bbox"] == pytest.approx(list(SAMPLE_IMAGE_BOX), abs=0.01)


def test_predict_folder_output_says_where(tiny_preset_dir, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("000000000785.jpg", "000000040083.jpg"):
        (folder / name).write_bytes((DATA_DIR / "coco" / name).read_bytes())
    code = main(["predict", "--preset", tiny_preset_dir, str(folder), "--output", str(tmp_path / "drawn")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err.strip() == f"keras-pose: wrote 2 drawings to {tmp_path / 'drawn'}"
    assert len(json.loads(out)) == 2  # no --json: the results go to stdout, nothing said about them


def test_verbose_is_accepted_before_and_after_the_verb():
    parser = build_parser()
    assert parser.parse_args(["--verbose", "presets"]).verbose is True
    assert parser.parse_args(["presets", "--verbose"]).verbose is True
    assert parser.parse_args(["presets"]).verbose is False


# ------------------------------------------------------------ the filter
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796187446.937863   27320 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1796187446.938230   27320 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "E0000 00:00:1796187450.825262   27320 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
    "W0000 00:00:1796187450.825262   27320 gpu_device.cc:2344] Cannot dlopen some GPU libraries.",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
REAL = [
    "E0000 00:00:1796187450.825262   27320 op_kernel.cc:1830] OP_REQUIRES failed at save_restore_v2_ops.cc:234 : "
    "NOT_FOUND: weights.h5",
    "Traceback (most recent call last):",
    "UserWarning: something the user should read",
]


def test_noise_filter_keeps_real_errors():
    assert all(console.is_startup_noise(line) for line in NOISE)
    assert not any(console.is_startup_noise(line) for line in REAL)


def test_filtered_native_stderr_drops_noise_and_replays_the_rest(capfd):
    with console.filtered_native_stderr():
        os.write(2, ("\n".join(NOISE[:3] + REAL[:1] + NOISE[3:]) + "\n").encode())
    err = capfd.readouterr().err
    assert err == REAL[0] + "\n"
    # A block that raises still shows what it wrote.
    with pytest.raises(RuntimeError, match="conversion failed"):
        with console.filtered_native_stderr():
            os.write(2, (NOISE[0] + "\n" + REAL[0]).encode())
            raise RuntimeError("conversion failed")
    assert capfd.readouterr().err == REAL[0] + "\n"


def test_quiet_log_environment_raises_the_level_only(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    console.quiet_log_environment()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    console.quiet_log_environment()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


def test_isatty():
    class Terminal:
        def isatty(self):
            return True

    class Closed:
        def isatty(self):
            raise ValueError("I/O operation on closed file")

    assert console.isatty(Terminal()) is True
    assert console.isatty(Closed()) is False and console.isatty(object()) is False


def test_readme_quick_start_command_runs_as_written(tiny_preset_dir, tmp_path, monkeypatch, capsys):
    """The README's command, verbatim, with the preset download replaced by a tiny local preset."""
    import re
    import shlex

    import keras_pose
    from keras_pose.assets import SAMPLE_IMAGE_BOX

    readme = (REPO_ROOT / "README.md").read_text()
    command = re.search(r"```bash\n(keras-pose predict [^\n]*)\n```", readme).group(1)
    argv = shlex.split(command)[1:]
    args = build_parser().parse_args(argv)
    assert args.inputs == [] and args.output == "out.png"  # no image named: the bundled sample
    preset = args.preset
    assert keras_pose.get_preset_entry(preset).config["keypoint_spec"] == "coco"
    assert args.box == [pytest.approx(list(SAMPLE_IMAGE_BOX), abs=1.0)]  # the skier's box

    tiny = keras_pose.from_preset(tiny_preset_dir)
    monkeypatch.setattr(keras_pose, "from_preset", lambda name, **kwargs: tiny if name == preset else None)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "out.png").is_file() and "wrote the drawing to out.png" in err
    assert len(json.loads(out)) == 1


def test_library_warnings_are_hidden_ours_are_not():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        console.quiet_library_warnings()
        warnings.warn_explicit("np.object", FutureWarning, "tf2onnx_lib.py", 21, module="keras.src.export.tf2onnx_lib")
        warnings.warn_explicit("deprecated", DeprecationWarning, "x.py", 1, module="tensorflow.python.x")
        warnings.warn_explicit("boxes outside the image", UserWarning, "d.py", 1, module="keras_pose.datasets.d")
    assert [str(w.message) for w in caught] == ["boxes outside the image"]
