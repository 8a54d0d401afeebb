"""Keypoint specifications: names, skeleton, flip pairs, OKS sigmas, colours.

```python
from keras_pose.keypoints import get_keypoint_spec

spec = get_keypoint_spec("coco")
spec.num_keypoints   # 17
spec.flip_indices    # [0, 2, 1, 4, 3, ...]
spec.sigmas          # (17,) float32 OKS sigmas
```
"""

from keras_pose.keypoints.builtin_specs import builtin_keypoint_spec
from keras_pose.keypoints.builtin_specs import get_keypoint_spec
from keras_pose.keypoints.builtin_specs import list_keypoint_specs
from keras_pose.keypoints.keypoint_spec import KeypointSpec
from keras_pose.keypoints.spec_defaults import infer_flip_pairs

__all__ = [
    "KeypointSpec",
    "builtin_keypoint_spec",
    "get_keypoint_spec",
    "infer_flip_pairs",
    "list_keypoint_specs",
]
