"""keras-pose: a pose-estimation model zoo for Keras 3.

Quick start::

    import keras_pose

    model = keras_pose.from_preset("vitpose_base_coco_256x192")
    result = model.predict_keypoints("image.jpg", boxes=[[x, y, w, h]])
    result.keypoints  # (people, K, 2) image pixels

`from_preset` accepts a registered preset name (`keras-pose presets`), a
local preset directory, or an https:// / file:// URL of a reference
checkpoint, and returns the right model class.
"""

from keras_pose.errors import (
    AnnotationError,
    CheckpointError,
    DownloadError,
    ImageReadError,
    KerasPoseError,
    KeypointSpecError,
    PresetError,
)
from keras_pose.keypoints import KeypointSpec, get_keypoint_spec, list_keypoint_specs
from keras_pose.losses import KeypointMSELoss
from keras_pose.models import (
    CPM,
    CPN,
    CPMBackbone,
    CPNBackbone,
    Hourglass,
    HourglassBackbone,
    TopDownPoseEstimator,
    ViTPose,
    ViTPoseBackbone,
    ViTPosePP,
)
from keras_pose.preset_registry import get_preset_entry, list_presets
from keras_pose.results import PoseResult
from keras_pose.preset_loading import load_preset as from_preset
from keras_pose.version import __version__

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
