"""Target codecs: heatmap encoding, decoding, refinements and flip test."""

from keras_pose.codecs.cpn_codec import CPNHeatmap
from keras_pose.codecs.flip import flip_heatmaps
from keras_pose.codecs.flip import flip_keypoints
from keras_pose.codecs.flip import flip_test_average
from keras_pose.codecs.heatmap_codecs import CODECS
from keras_pose.codecs.heatmap_codecs import MSRAHeatmap
from keras_pose.codecs.heatmap_codecs import UDPHeatmap
from keras_pose.codecs.heatmap_codecs import get_codec
from keras_pose.codecs.heatmap_codecs import serialize_codec
from keras_pose.codecs.refinement import CodecError
from keras_pose.codecs.refinement import gaussian_blur_hf
from keras_pose.codecs.refinement import gaussian_blur_mmpose
from keras_pose.codecs.refinement import get_heatmap_maximum
from keras_pose.codecs.refinement import refine_keypoints
from keras_pose.codecs.refinement import refine_keypoints_dark
from keras_pose.codecs.refinement import refine_keypoints_dark_udp

CODECS.setdefault("CPNHeatmap", CPNHeatmap)  # get_codec({"type": "CPNHeatmap", ...})

__all__ = [
    "CODECS",
    "CPNHeatmap",
    "CodecError",
    "MSRAHeatmap",
    "UDPHeatmap",
    "flip_heatmaps",
    "flip_keypoints",
    "flip_test_average",
    "gaussian_blur_hf",
    "gaussian_blur_mmpose",
    "get_codec",
    "get_heatmap_maximum",
    "refine_keypoints",
    "refine_keypoints_dark",
    "refine_keypoints_dark_udp",
    "serialize_codec",
]
