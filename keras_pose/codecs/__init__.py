"""Codecs: training targets <-> model outputs (`PoseCodec`), flip test, refinements.

```python
from keras_pose.codecs import get_codec

codec = get_codec({"type": "UDPHeatmap", "input_size": (256, 192), "heatmap_size": (64, 48)})
targets = codec.encode(keypoints, visible)      # (N, K, 2), (N, K) -> {"heatmaps", "keypoint_weights"}
keypoints, scores = codec.decode(heatmaps)      # (N, h, w, K) -> (N, K, 2), (N, K)
```

A new codec subclasses `PoseCodec` and registers itself with
`@register_codec("Name")`; `get_codec({"type": "Name", ...})` builds it.
"""

from keras_pose.codecs.base import CODECS
from keras_pose.codecs.base import VISIBLE_THRESHOLD
from keras_pose.codecs.base import PoseCodec
from keras_pose.codecs.base import get_codec
from keras_pose.codecs.base import register_codec
from keras_pose.codecs.base import serialize_codec
from keras_pose.codecs.cpn_codec import CPNHeatmap
from keras_pose.codecs.flip import flip_heatmaps
from keras_pose.codecs.flip import flip_keypoints
from keras_pose.codecs.flip import flip_test_average
from keras_pose.codecs.heatmap_codecs import GaussianHeatmapCodec
from keras_pose.codecs.heatmap_codecs import HeatmapCodec
from keras_pose.codecs.heatmap_codecs import MSRAHeatmap
from keras_pose.codecs.heatmap_codecs import UDPHeatmap
from keras_pose.codecs.heatmap_codecs import gaussian_heatmaps
from keras_pose.codecs.refinement import gaussian_blur_hf
from keras_pose.codecs.refinement import gaussian_blur_mmpose
from keras_pose.codecs.refinement import get_heatmap_maximum
from keras_pose.codecs.refinement import refine_keypoints
from keras_pose.codecs.refinement import refine_keypoints_dark
from keras_pose.codecs.refinement import refine_keypoints_dark_udp
from keras_pose.errors import CodecError

__all__ = [
    "CODECS",
    "CPNHeatmap",
    "CodecError",
    "GaussianHeatmapCodec",
    "HeatmapCodec",
    "MSRAHeatmap",
    "PoseCodec",
    "UDPHeatmap",
    "VISIBLE_THRESHOLD",
    "flip_heatmaps",
    "flip_keypoints",
    "flip_test_average",
    "gaussian_blur_hf",
    "gaussian_blur_mmpose",
    "gaussian_heatmaps",
    "get_codec",
    "get_heatmap_maximum",
    "refine_keypoints",
    "refine_keypoints_dark",
    "refine_keypoints_dark_udp",
    "register_codec",
    "serialize_codec",
]
