"""Exceptions raised by keras-pose.

Every error names the problem and how to fix it. They subclass the built-in
exception a user would expect, so `except ValueError` keeps working.
"""


class KerasPoseError(Exception):
    """Base class of all keras-pose errors."""


class KeypointSpecError(KerasPoseError, ValueError):
    """A keypoint specification is inconsistent (names, flip pairs, sigmas)."""


class PresetError(KerasPoseError, ValueError):
    """A preset name, directory or URL cannot be resolved or loaded."""


class CheckpointError(KerasPoseError, ValueError):
    """A checkpoint does not match the model it is converted into.

    The message lists missing, unexpected and misshapen tensors.
    """


class DownloadError(KerasPoseError, OSError):
    """A download failed (network, HTTP status, or sha256 mismatch)."""


class AnnotationError(KerasPoseError, ValueError):
    """An annotation file is malformed; the message names file and record."""


class ImageReadError(KerasPoseError, ValueError):
    """An image is missing, does not decode, or has the wrong channel count."""


class BoxError(KerasPoseError, ValueError):
    """Person boxes given for inference are malformed (values per box, NaN / Inf, no area)."""


class ResultError(KerasPoseError, ValueError):
    """A result cannot be written: it holds NaN / Inf values, which JSON cannot carry."""


class TrainConfigError(KerasPoseError, ValueError):
    """A training config is malformed; the message names the key and the fix."""


class NonFiniteModelError(KerasPoseError, FloatingPointError):
    """A model's weights or outputs hold NaN or Inf; the message says where."""


class TrainingDivergedError(NonFiniteModelError):
    """Training stopped at a non-finite loss; the message gives the epoch, the step and what to try."""


class PlotError(KerasPoseError, ValueError):
    """A training history holds nothing to plot, or the plot cannot be written."""


class CLIError(KerasPoseError, ValueError):
    """A user error found by the command line itself (a flag combination, an output path); exit status 1."""


class VideoReadError(ImageReadError):
    """A video cannot be opened (missing, unsupported codec) or has no readable frame."""


class ImageWriteError(KerasPoseError, ValueError):
    """An image cannot be written: OpenCV has no encoder for the extension, or the file cannot be created."""


class GeometryError(KerasPoseError, ValueError):
    """A geometry argument (box, center, scale, size, matrix, warp) is malformed."""


class CodecError(KerasPoseError, ValueError):
    """A codec argument or a heatmap / keypoint array is malformed."""


class PreprocessingError(KerasPoseError, ValueError):
    """A preprocessor setting (mean / std, channel order, crop padding, border, warp, resize) is invalid."""


class PipelineError(KerasPoseError, ValueError):
    """A tf.data pipeline argument is inconsistent (sizes, spec, codec)."""


class ImageFileNotFoundError(ImageReadError, FileNotFoundError):
    """An image file of the dataset does not exist."""


class AnnotationFileNotFoundError(AnnotationError, FileNotFoundError):
    """An annotation (or detection/head-box) file does not exist.

    Subclasses both `AnnotationError` (a `ValueError`) and `FileNotFoundError`
    so either `except` clause catches it.
    """
