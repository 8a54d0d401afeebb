"""The `keras-pose` command line: the parser, `main()` and the error handling.

    keras-pose presets [--family F] [--task-class T] [--json]
    keras-pose convert --checkpoint FILE --output DIR [--preset NAME] [--dataset D]
    keras-pose predict --preset NAME_OR_DIR [INPUT...] [--box X,Y,W,H] [--output PATH] [--json FILE] [--strict]
    keras-pose evaluate --preset NAME_OR_DIR --annotations FILE [--detections FILE] [--metric M] [--json FILE]
    keras-pose train CONFIG [--output-dir DIR] [--epochs N] [--set KEY=VALUE] [--dry-run]
    keras-pose export --preset NAME_OR_DIR --output PATH [--format tflite|onnx] [--quantization Q]

Each verb is a module of this package (listed in `VERBS`) with
``add_parser(subparsers)``, which adds its sub-parser and sets ``handler``
to the module's ``run(args)``; ``run`` returns the exit code. ``--verbose``
(before or after the verb) keeps the backend's start-up logging; without it
the backend starts quietly (`keras_pose.utils.console`). Nothing heavy is
imported before a verb needs it: ``--help``, ``presets`` and argument errors
import neither TensorFlow, Keras, JAX nor keras-hub.

User errors (`KerasPoseError`, `CLIError` among them, missing or unwritable
files, a full disk) print one line on stderr and exit with status 1; bad
arguments exit with status 2 (argparse); a closed stdout (`keras-pose
presets | head`) exits quietly with 141, as a process killed by SIGPIPE;
other exceptions are bugs and keep their traceback.
"""

import argparse
import errno
import importlib
import sys

from keras_pose.cli.common import PROG
from keras_pose.errors import CLIError, KerasPoseError

# The verbs, in --help order: modules of keras_pose.cli.
VERBS = ("presets", "convert", "predict", "evaluate", "train", "export")

_VERBOSE_HELP = "print the backend's start-up and log messages too (TensorFlow, absl); default: only keras-pose's"


def build_parser():
    """The argparse parser of every verb."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="keras-pose: pose-estimation model zoo for Keras 3.",
    )
    parser.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    subparsers.required = True
    for verb in VERBS:
        sub = importlib.import_module(f"keras_pose.cli.{verb}").add_parser(subparsers)
        # Also after the verb; SUPPRESS keeps a --verbose given before it.
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
    return parser


# OSError numbers that describe the user's files or machine, not a bug: the
# message (with the path) is the whole story.
_USER_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOENT", "EEXIST", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "ENOSPC", "EDQUOT", "EROFS",
                 "ENAMETOOLONG", "ELOOP", "EMFILE", "ENFILE", "EFBIG", "ENOTEMPTY", "EXDEV", "EBUSY", "ETXTBSY",
                 "EIO")
    if hasattr(errno, name)
)


def _is_user_error(error):
    """Expected failures (bad input, files, disk): one line, exit 1. Anything else is a bug: traceback."""
    if isinstance(error, KerasPoseError):
        return True
    if isinstance(error, (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)):
        return True
    return isinstance(error, OSError) and not isinstance(error, BrokenPipeError) and error.errno in _USER_ERRNOS


def _user_error_message(error):
    if isinstance(error, OSError) and error.errno is not None and error.strerror:
        # "[Errno 28] No space left on device: 'x'" -> "No space left on device: 'x'"
        names = [repr(n) for n in (error.filename, error.filename2) if n is not None]
        return error.strerror + (": " + " -> ".join(names) if names else "") + "."
    return " ".join(str(error).split()) or type(error).__name__


def _silence_stdout():
    """After a broken pipe: point stdout at /dev/null so the exit flush is quiet."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):  # no real file descriptor (captured in tests)
        pass


def main(argv=None):
    """Run the CLI; returns the exit status.

    0 ok; 1 a user error (bad input, missing or unwritable files: one line
    on stderr); 2 bad arguments (argparse); 130 interrupted; 141 (as a
    process killed by SIGPIPE) when stdout is closed early, e.g. by
    ``keras-pose presets | head``. Other exceptions are bugs and keep their
    traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        from keras_pose.utils.console import quiet_library_warnings, quiet_log_environment

        quiet_log_environment()  # before anything imports TensorFlow
        quiet_library_warnings()
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a broken pipe surfaces here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - re-raised unless a user error
        if not _is_user_error(e):
            raise
        print(f"{PROG}: error: {_user_error_message(e)}", file=sys.stderr)
        return 1


__all__ = ["CLIError", "VERBS", "build_parser", "main"]
