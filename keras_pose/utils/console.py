"""Terminal helpers: is the output a terminal, and a quiet backend start-up.

TensorFlow writes about eight lines of start-up noise to file descriptor 2
from C++ when it is imported (oneDNN, "Could not find cuda drivers", CPU
instructions, written twice, before absl logging is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` does not remove them), and one more (``failed call
to cuInit: ... UNKNOWN ERROR (303)``) when it first enumerates devices on a
machine without a GPU. keras-hub imports TensorFlow (through
tensorflow-text) on every backend, so a JAX or PyTorch run prints the same.

`quiet_library_warnings` hides the Python warnings the backend libraries
raise about themselves (deprecations in TensorFlow, tf2onnx, ...).
`start_backend_quietly` imports the backend with file descriptor 2 captured,
drops the lines recognised as start-up noise and writes every other line
back to stderr (a real error stays visible), and sets the log levels of the
TensorFlow / absl loggers. It runs once per process; the command line calls
it before it loads a model (`keras-pose ... --verbose` skips it), and so can
any tool that wants the same quiet start.

Only the standard library is imported here.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

# Lines TensorFlow / XLA / absl write while starting, recognised as noise.
_NOISE = re.compile(
    r"^(?:"
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] .*"  # absl INFO / WARNING records
    r"|E\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] .*"  # absl ERROR records about CUDA:
    r"(?:cuInit|CUDA|cuda|cuDNN|cuFFT|cuBLAS|TensorRT|computation placer|GPU will not be used).*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|INFO: Created TensorFlow Lite (?:XNNPACK )?delegate for CPU\."
    r"|\s*"
    r")$"
)

# Modules whose Python warnings (deprecations, ...) are for their own developers, not for a keras-pose user.
_LIBRARY_MODULES = (r"(?:keras|keras_hub|tensorflow|tensorflow_text|tf_keras|tf2onnx|onnx|onnxruntime|jax|jaxlib|"
                    r"torch|absl|google|h5py|ml_dtypes|flatbuffers|ai_edge_litert)(?:\.|$)")

_started = False


def isatty(stream=None):
    """Whether ``stream`` (default ``sys.stdout``) is an interactive terminal.

    False for pipes, files, closed streams and stand-ins without ``isatty``
    (captured output in tests).
    """
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def is_startup_noise(line):
    """Whether one line of stderr is backend start-up noise (see the module docstring)."""
    return bool(_NOISE.match(line.rstrip("\r\n")))


def quiet_log_environment():
    """Set the environment that quiets TensorFlow's C++ logging; call before it is imported.

    ``TF_CPP_MIN_LOG_LEVEL`` is raised to 2 (errors only) unless it is set
    higher; ``TF_CPP_MAX_VLOG_LEVEL`` is left alone. No import happens here.
    """
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    if level < 2:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def quiet_library_warnings():
    """Hide the Python warnings raised inside the backend libraries; keras-pose's own stay visible.

    Adds a ``warnings`` filter (process-wide, like ``-W``); call it where a
    program decides what its user sees (the command line does, unless
    ``--verbose``).
    """
    warnings.filterwarnings("ignore", module=_LIBRARY_MODULES)


@contextlib.contextmanager
def filtered_native_stderr():
    """Capture what is written to file descriptor 2; write back all but start-up noise.

    Python's own ``sys.stderr`` is flushed before and after, so the order of
    Python-level messages is kept. Does nothing when file descriptor 2 cannot
    be duplicated.
    """
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    capture = tempfile.TemporaryFile(mode="w+b")
    try:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:  # also when the block raises: what it wrote may explain why
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            capture.seek(0)
            _replay(capture.read().decode("utf-8", errors="replace"))
    finally:
        os.close(saved)
        capture.close()


def _replay(text):
    kept = [line for line in text.splitlines(keepends=True) if not is_startup_noise(line)]
    if kept:
        sys.stderr.write("".join(kept) + ("" if kept[-1].endswith("\n") else "\n"))
        sys.stderr.flush()


def _import_backend():
    import importlib
    import importlib.util

    import keras  # noqa: F401 - imports the backend (tensorflow, jax or torch)

    if importlib.util.find_spec("keras_hub") is not None:
        from keras_pose.utils.backend_imports import import_keras_hub

        import_keras_hub()  # without tensorflow(-text) on JAX / PyTorch
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        tf.config.list_physical_devices()  # device enumeration: the cuInit message, here


def start_backend_quietly(verbose=False):
    """Import Keras, its backend and keras-hub without the start-up noise (once per process).

    Args:
        verbose: True leaves TensorFlow's logging as it is (nothing is
            captured or filtered); the backend is imported all the same.
    """
    global _started
    if _started:
        return
    if verbose:
        _import_backend()
    else:
        quiet_log_environment()
        with filtered_native_stderr():
            _import_backend()
        for name in ("absl", "tensorflow", "jax._src.xla_bridge"):
            logging.getLogger(name).setLevel(logging.ERROR)
    _started = True
