"""keras-pose: a pose-estimation model zoo for Keras 3.

Quick start::

    import keras_pose

    model = keras_pose.from_preset("vitpose_base_coco_256x192")
    result = model.predict_keypoints("image.jpg", boxes=[[x, y, w, h]])
    result.keypoints  # (people, K, 2) image pixels

`from_preset` accepts a registered preset name (`keras-pose presets`), a
local preset directory, or an https:// / file:// URL of a reference
checkpoint, and returns the right model class.

Importing the package is cheap: the public names below are loaded on first
use (PEP 562), so ``import keras_pose`` imports neither Keras nor a backend
(on JAX or PyTorch it does not import TensorFlow); touching a model class
does. Submodules (``keras_pose.datasets``, ``keras_pose.utils``, ...) load
on first attribute access too.
"""

import importlib
import importlib.util

from keras_pose.errors import (
    AnnotationError,
    CheckpointError,
    DownloadError,
    ImageReadError,
    KerasPoseError,
    KeypointSpecError,
    PresetError,
)
from keras_pose.version import __version__

# Public name -> (module, attribute), imported on first access.
_LAZY = {
    "KeypointSpec": ("keras_pose.keypoints", "KeypointSpec"),
    "get_keypoint_spec": ("keras_pose.keypoints", "get_keypoint_spec"),
    "list_keypoint_specs": ("keras_pose.keypoints", "list_keypoint_specs"),
    "KeypointMSELoss": ("keras_pose.losses", "KeypointMSELoss"),
    "CPM": ("keras_pose.models", "CPM"),
    "CPMBackbone": ("keras_pose.models", "CPMBackbone"),
    "CPN": ("keras_pose.models", "CPN"),
    "CPNBackbone": ("keras_pose.models", "CPNBackbone"),
    "Hourglass": ("keras_pose.models", "Hourglass"),
    "HourglassBackbone": ("keras_pose.models", "HourglassBackbone"),
    "PoseEstimator": ("keras_pose.models", "PoseEstimator"),
    "OneStagePoseEstimator": ("keras_pose.models", "OneStagePoseEstimator"),
    "RTMO": ("keras_pose.models", "RTMO"),
    "RTMONetwork": ("keras_pose.models", "RTMONetwork"),
    "OpenPose": ("keras_pose.models", "OpenPose"),
    "OpenPoseBackbone": ("keras_pose.models", "OpenPoseBackbone"),
    "BottomUpPoseEstimator": ("keras_pose.models.bottom_up_pose_estimator", "BottomUpPoseEstimator"),
    "TopDownPoseEstimator": ("keras_pose.models", "TopDownPoseEstimator"),
    "ViTPose": ("keras_pose.models", "ViTPose"),
    "ViTPoseBackbone": ("keras_pose.models", "ViTPoseBackbone"),
    "ViTPosePP": ("keras_pose.models", "ViTPosePP"),
    "get_preset_entry": ("keras_pose.preset_registry", "get_preset_entry"),
    "list_presets": ("keras_pose.preset_registry", "list_presets"),
    "PoseResult": ("keras_pose.results", "PoseResult"),
    "from_preset": ("keras_pose.preset_loading", "load_preset"),
}


def __getattr__(name):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # the next access is a plain attribute
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AnnotationError",
    "CPM",
    "CPMBackbone",
    "CPN",
    "CPNBackbone",
    "CheckpointError",
    "DownloadError",
    "Hourglass",
    "HourglassBackbone",
    "ImageReadError",
    "KerasPoseError",
    "KeypointMSELoss",
    "KeypointSpec",
    "KeypointSpecError",
    "PoseResult",
    "PresetError",
    "OpenPose",
    "OpenPoseBackbone",
    "BottomUpPoseEstimator",
    "PoseEstimator",
    "OneStagePoseEstimator",
    "RTMO",
    "RTMONetwork",
    "TopDownPoseEstimator",
    "ViTPose",
    "ViTPoseBackbone",
    "ViTPosePP",
    "__version__",
    "from_preset",
    "get_keypoint_spec",
    "get_preset_entry",
    "list_keypoint_specs",
    "list_presets",
]
