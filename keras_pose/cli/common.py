"""What the verbs share: the program name, argument types, notes on stderr, the model load.

Imports only the standard library and `keras_pose.errors` at module level,
so that `--help`, `presets` and argument errors stay fast.
"""

import argparse
import sys

from keras_pose.errors import CLIError

PROG = "keras-pose"


def note(message):
    """One line for the user on stderr: ``keras-pose: MESSAGE``."""
    print(f"{PROG}: {message}", file=sys.stderr)


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_preset_argument(parser):
    """The ``--preset NAME_OR_DIR`` option of the verbs that load a model."""
    parser.add_argument("--preset", required=True, metavar="NAME_OR_DIR",
                        help="registered preset name (`keras-pose presets`), preset directory, or checkpoint URL")


def start_backend(args):
    """Import Keras and its backend, quietly unless ``--verbose`` (before any model code)."""
    from keras_pose.utils.console import start_backend_quietly

    start_backend_quietly(verbose=getattr(args, "verbose", False))


def quiet_native_output(args):
    """Context: the backend's native log lines in the block are filtered unless ``--verbose`` (see console)."""
    import contextlib

    from keras_pose.utils.console import filtered_native_stderr

    return contextlib.nullcontext() if getattr(args, "verbose", False) else filtered_native_stderr()


def load_model(args, **kwargs):
    """``keras_pose.from_preset(args.preset, **kwargs)`` after a quiet backend start."""
    start_backend(args)
    import keras_pose

    return keras_pose.from_preset(args.preset, **kwargs)


def dataset_kwargs(args):
    """``{"dataset": D}`` when ``--dataset D`` was given (multi-dataset presets), else ``{}``."""
    return {"dataset": args.dataset} if getattr(args, "dataset", None) else {}


__all__ = ["CLIError", "PROG", "add_preset_argument", "dataset_kwargs", "load_model", "note", "positive_int",
           "quiet_native_output", "start_backend"]
