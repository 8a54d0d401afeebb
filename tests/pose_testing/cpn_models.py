"""CPN weights exported in the GengDavid/pytorch-cpn layout (the inverse of the converter).

Module names from pytorch-cpn's networks (resnet.py, globalNet.py, refineNet.py):

| Keras layers                               | pytorch-cpn                                    |
| ------------------------------------------ | ---------------------------------------------- |
| resnet conv1_conv / conv1_bn               | resnet.conv1 / resnet.bn1                      |
| resnet stack{s}_block{b}_{k}_conv / _bn    | resnet.layer{s+1}.{b}.conv{k} / bn{k}          |
| resnet stack{s}_block{b}_0_conv / _bn      | resnet.layer{s+1}.{b}.downsample.0 / .1        |
| global_lateral{i}_conv / _bn               | global_net.laterals.{i}.0 / .1                 |
| global_upsample{i}_conv / _bn              | global_net.upsamples.{i}.1 / .2                |
| global_predict{i}_1_conv / _bn, _2_conv / _bn | global_net.predict.{i}.0 / .1, .3 / .5      |
| refine_cascade{i}_block{j}_{k}_conv / _bn  | refine_net.cascade.{i}.{j}.conv{k} / bn{k} (0: downsample) |
| refine_final_block_*, refine_final_conv / _bn | refine_net.final_predict.0.*, .1, .2        |

The release file (`save_pytorch_cpn`) is `{'epoch', 'state_dict', 'optimizer'}`
of a `torch.nn.DataParallel` model: every key starts with `module.`.
"""

import keras
import numpy as np


def _np(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), np.float32)


def _conv_bn(sd, get, keras_name, conv_prefix, bn_prefix):
    conv = get(f"{keras_name}_conv")
    sd[f"{conv_prefix}.weight"] = _np(conv.kernel).transpose(3, 2, 0, 1)
    if conv.use_bias:
        sd[f"{conv_prefix}.bias"] = _np(conv.bias)
    bn = get(f"{keras_name}_bn")
    for leaf, var in (("weight", bn.gamma), ("bias", bn.beta), ("running_mean", bn.moving_mean),
                      ("running_var", bn.moving_variance)):
        sd[f"{bn_prefix}.{leaf}"] = _np(var)
    sd[f"{bn_prefix}.num_batches_tracked"] = np.array(0, np.int64)


def _bottleneck(sd, get, keras_name, prefix, shortcut=True):
    for k in (1, 2, 3):
        _conv_bn(sd, get, f"{keras_name}_{k}", f"{prefix}.conv{k}", f"{prefix}.bn{k}")
    if shortcut:
        _conv_bn(sd, get, f"{keras_name}_0", f"{prefix}.downsample.0", f"{prefix}.downsample.1")


def export_state_dict(model):
    """{name: array} (no `module.` prefix) of a `CPN` in the pytorch-cpn layout."""
    sd = {}
    resnet = model.backbone.resnet
    _conv_bn(sd, resnet.get_layer, "conv1", "resnet.conv1", "resnet.bn1")
    for s, blocks in enumerate(model.backbone.stackwise_num_blocks):
        for b in range(blocks):
            _bottleneck(sd, resnet.get_layer, f"stack{s}_block{b}", f"resnet.layer{s + 1}.{b}", b == 0)
    get = model.get_layer
    names = {layer.name for layer in model.layers}
    for i in range(4):
        _conv_bn(sd, get, f"global_lateral{i}", f"global_net.laterals.{i}.0", f"global_net.laterals.{i}.1")
        if i < 3:
            _conv_bn(sd, get, f"global_upsample{i}", f"global_net.upsamples.{i}.1", f"global_net.upsamples.{i}.2")
        _conv_bn(sd, get, f"global_predict{i}_1", f"global_net.predict.{i}.0", f"global_net.predict.{i}.1")
        _conv_bn(sd, get, f"global_predict{i}_2", f"global_net.predict.{i}.3", f"global_net.predict.{i}.5")
        j = 0
        while f"refine_cascade{i}_block{j}_1_conv" in names:
            _bottleneck(sd, get, f"refine_cascade{i}_block{j}", f"refine_net.cascade.{i}.{j}")
            j += 1
    _bottleneck(sd, get, "refine_final_block", "refine_net.final_predict.0")
    _conv_bn(sd, get, "refine_final", "refine_net.final_predict.1", "refine_net.final_predict.2")
    return sd
