"""Tiny OpenPose models and their export to the PyTorch port's / Caffe's tensor names."""

import keras
import numpy as np

# narrow widths and 3x3 refinement kernels: a forward pass in milliseconds
TINY = {"vgg_channels": [8, 8, 8, 8], "cpm_channels": [8, 8], "stage_channels": 8, "head_channels": 8,
        "refine_head_channels": 8, "refine_kernel_size": 3}


def export_state_dict(model):
    """`{<caffe layer>.weight|bias: array}` (PyTorch layouts) of an `OpenPose` model: body_pose_model.pth's keys.

    Written from the reference's layer names (conv{b}_{i}, conv4_3_CPM, conv5_{i}_CPM_L{b},
    Mconv{i}_stage{s}_L{b}; BODY_25's PReLU slopes `<prelu>.weight`), independent of the converter.
    """
    out = {}
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            out[f"{layer.name}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            out[f"{layer.name}.bias"] = keras.ops.convert_to_numpy(layer.bias)
        elif isinstance(layer, keras.layers.PReLU):
            out[f"{layer.name}.weight"] = keras.ops.convert_to_numpy(layer.alpha).reshape(-1)
    return out
