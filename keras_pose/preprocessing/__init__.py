"""Preprocessing: images -> a pose network's input, one implementation for inference, tf.data and export.

```python
from keras_pose.preprocessing import PoseImageConverter, TopDownCropper, TopDownPreprocessor

preprocessor = TopDownPreprocessor(
    cropper=TopDownCropper(image_size=(256, 192), padding=1.25, warp="udp"),
    image_converter=PoseImageConverter(),          # ImageNet mean / std, RGB
)
crops, centers, scales = preprocessor.crop_people(image, boxes)
```

- `PoseImageConverter`: mean / std (0..255 units) and channel order; NumPy
  `normalize` and TensorFlow `normalize_tf` twins.
- `TopDownCropper`: box padding (one factor or per axis), border fill, the
  standard or UDP warp (`keras_pose.geometry`).
- `WholeImageResizer`: resize keeping the aspect ratio + pad (letterbox) for
  bottom-up and one-stage models, with the inverse point mapping.
- `TopDownPreprocessor` / `WholeImagePreprocessor`: keras-hub
  `Preprocessor` layers holding a converter and a cropper / resizer; saved in
  presets as ``preprocessor.json``.
- `resolve_top_down_settings` / `legacy_decoding`: the one translation of the
  old ``preprocessing`` / ``decoding`` dicts of presets saved before.
"""

from keras_pose.preprocessing.boxes import BOX_FORMATS
from keras_pose.preprocessing.boxes import check_box_scores
from keras_pose.preprocessing.boxes import check_boxes
from keras_pose.preprocessing.image_converter import PoseImageConverter
from keras_pose.preprocessing.legacy_settings import default_warp
from keras_pose.preprocessing.legacy_settings import legacy_decoding
from keras_pose.preprocessing.legacy_settings import resolve_top_down_settings
from keras_pose.preprocessing.preprocessors import PosePreprocessor
from keras_pose.preprocessing.preprocessors import TopDownPreprocessor
from keras_pose.preprocessing.preprocessors import WholeImagePreprocessor
from keras_pose.preprocessing.top_down_cropper import TopDownCropper
from keras_pose.preprocessing.whole_image_resizer import WholeImageResizer
from keras_pose.preprocessing.warp_letterbox import WarpLetterboxResizer
from keras_pose.reference_constants import IMAGENET_MEAN, IMAGENET_PREPROCESSING, IMAGENET_STD

__all__ = [
    "BOX_FORMATS",
    "IMAGENET_MEAN",
    "IMAGENET_PREPROCESSING",
    "IMAGENET_STD",
    "PoseImageConverter",
    "PosePreprocessor",
    "TopDownCropper",
    "TopDownPreprocessor",
    "WholeImagePreprocessor",
    "WholeImageResizer",
    "WarpLetterboxResizer",
    "check_box_scores",
    "check_boxes",
    "default_warp",
    "legacy_decoding",
    "resolve_top_down_settings",
]
