"""Top-down crop geometry: box <-> (center, scale), standard and UDP warps."""

from keras_pose.errors import GeometryError
from keras_pose.geometry.affine import WARPS
from keras_pose.geometry.affine import as_size
from keras_pose.geometry.affine import box_xywh_to_center_scale
from keras_pose.geometry.affine import check_warp
from keras_pose.geometry.affine import crop_to_image
from keras_pose.geometry.affine import fix_aspect_ratio
from keras_pose.geometry.affine import get_warp_matrix
from keras_pose.geometry.affine import invert_affine
from keras_pose.geometry.affine import transform_points
from keras_pose.geometry.affine import warp_image

__all__ = [
    "GeometryError",
    "WARPS",
    "as_size",
    "box_xywh_to_center_scale",
    "check_warp",
    "crop_to_image",
    "fix_aspect_ratio",
    "get_warp_matrix",
    "invert_affine",
    "transform_points",
    "warp_image",
]
