"""Tiny RTMO networks and their weights exported in the mmpose 1.x checkpoint layout.

`export_state_dict(network)` is the inverse of `conversion.rtmo_converter`
written independently of it (torch names and layouts: Conv2d (O, I/g, kh, kw),
Linear (O, I)), plus the training-only tensors a released file holds
(`out_kpt_reg`, `dcc.sigma_fc`, `loss_oks.sigmas`), so the converter is
checked on sizes and seeds other than the golden case's.
"""

import keras
import numpy as np
from pose_testing.cpm_models import export_conv_module

from keras_pose.layers import ConvModule
from keras_pose.models.rtmo import RTMONetwork

TINY = dict(
    deepen_factor=0.33,
    widen_factor=0.125,
    hidden_dim=32,
    feedforward_channels=48,
    num_keypoints=5,
    dcc_feat_channels=16,
    dcc_num_bins=(12, 16),
    dcc_spe_channels=16,
    dcc_gau_s=8,
)


def tiny_rtmo(image_size=(64, 96), seed=0, **kwargs):
    """A tiny RTMO network with random weights and BatchNorm statistics (seeded).

    The convolution kernels are drawn he-normal (variance 2 / fan_in), not with
    RTMO's own initialisation (mmpose's Kaiming a=sqrt(5), variance 1 / (3 fan_in)),
    under which an untrained network's eval-mode outputs fade to ~0 and it scores
    every cell at the 0.01 prior: the decoding tests need a network that detects.
    """
    keras.utils.set_random_seed(seed)
    network = RTMONetwork(image_size=image_size, **{**TINY, **kwargs})
    rng = np.random.default_rng(seed)
    for layer in _all_layers(network):
        if isinstance(layer, keras.layers.Conv2D):
            fan_in = int(np.prod(layer.kernel.shape[:-1]))
            layer.kernel.assign(rng.normal(0, np.sqrt(2.0 / fan_in), layer.kernel.shape).astype("float32"))
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape).astype("float32"))
            layer.gamma.assign(rng.uniform(0.8, 1.2, layer.gamma.shape).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.1, layer.beta.shape).astype("float32"))
    dcc = network.dcc
    for variable in (dcc.gau_gamma, dcc.gau_beta, dcc.pos_enc, dcc.gau_res_scale):
        variable.assign(rng.normal(0, 0.5, variable.shape).astype("float32") + (1.0 if variable is dcc.gau_res_scale
                                                                                 else 0.0))
    return network


def _all_layers(model):
    for layer in model._flatten_layers(include_self=False, recursive=True):
        yield layer


def _np(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), np.float32)


def _linear(sd, prefix, dense):
    sd[f"{prefix}.weight"] = _np(dense.kernel).T
    if dense.use_bias:
        sd[f"{prefix}.bias"] = _np(dense.bias)


def export_state_dict(network, rng=None):
    """An mmpose-layout RTMO state dict holding `network`'s weights (+ training-only tensors)."""
    rng = rng or np.random.default_rng(1)
    sd = {}
    for model, prefix in ((network.backbone, "backbone."), (network.neck, "neck."),
                          (network.head, "head.head_module.")):
        for name, path in model.torch_layer_paths.items():
            layer = model.get_layer(name)
            if isinstance(layer, ConvModule):
                export_conv_module(sd, layer, f"{prefix}{path}.conv", f"{prefix}{path}.bn")
            elif isinstance(layer, keras.layers.Conv2D):
                sd[f"{prefix}{path}.weight"] = np.transpose(_np(layer.kernel), (3, 2, 0, 1))
                sd[f"{prefix}{path}.bias"] = _np(layer.bias)
            else:  # the encoder layer
                p = f"{prefix}{path}"
                sd[f"{p}.self_attn.attn.in_proj_weight"] = _np(layer.in_proj.kernel).T
                sd[f"{p}.self_attn.attn.in_proj_bias"] = _np(layer.in_proj.bias)
                _linear(sd, f"{p}.self_attn.attn.out_proj", layer.out_proj)
                _linear(sd, f"{p}.ffn.layers.0.0", layer.ffn_fc1)
                _linear(sd, f"{p}.ffn.layers.1", layer.ffn_fc2)
                for i, norm in enumerate((layer.norm1, layer.norm2)):
                    sd[f"{p}.norms.{i}.weight"] = _np(norm.gamma)
                    sd[f"{p}.norms.{i}.bias"] = _np(norm.beta)
                sd["neck.sincos_pos_enc.dim_t"] = _np(layer.dim_t)
    dcc, d = network.dcc, "head.dcc"
    _linear(sd, f"{d}.pose_to_kpts.0", dcc.pose_to_kpts)
    bn = dcc.pose_to_kpts_bn
    for key, var in (("weight", bn.gamma), ("bias", bn.beta), ("running_mean", bn.moving_mean),
                     ("running_var", bn.moving_variance)):
        sd[f"{d}.pose_to_kpts.1.{key}"] = _np(var)
    sd[f"{d}.pose_to_kpts.1.num_batches_tracked"] = np.array(0, np.int64)
    _linear(sd, f"{d}.gau.uv", dcc.gau_uv)
    _linear(sd, f"{d}.gau.o", dcc.gau_o)
    _linear(sd, f"{d}.x_fc", dcc.x_fc)
    _linear(sd, f"{d}.y_fc", dcc.y_fc)
    sd[f"{d}.gau.gamma"], sd[f"{d}.gau.beta"] = _np(dcc.gau_gamma), _np(dcc.gau_beta)
    sd[f"{d}.gau.ln.g"], sd[f"{d}.gau.res_scale.scale"] = _np(dcc.gau_ln_g), _np(dcc.gau_res_scale)
    sd[f"{d}.pos_enc"], sd[f"{d}.x_bins"], sd[f"{d}.y_bins"] = _np(dcc.pos_enc), _np(dcc.x_bins), _np(dcc.y_bins)
    sd[f"{d}.spe.dim_t"] = _np(dcc.spe_dim_t)
    # Training-only tensors of a released file.
    k, pose_ch = network.num_keypoints, network.head.num_groups * network.head.channels_per_group
    for i in range(len(network.featmap_strides)):
        sd[f"head.head_module.out_kpt_reg.{i}.weight"] = rng.normal(0, 0.1, (2 * k, pose_ch, 1, 1)).astype("float32")
        sd[f"head.head_module.out_kpt_reg.{i}.bias"] = np.zeros((2 * k,), np.float32)
    sd[f"{d}.sigma_fc.0.weight"] = rng.normal(0, 0.1, (k, dcc.in_channels)).astype("float32")
    sd[f"{d}.sigma_fc.0.bias"] = np.zeros((k,), np.float32)
    sd[f"{d}.sigma_fc.2.scale"] = np.array(0.1, np.float32)
    sd["head.loss_oks.sigmas"] = np.full((k,), 0.05, np.float32)
    return sd


def export_task_state_dict(model, rng=None):
    """`export_state_dict` of an `RTMO` task's network (the harness's exporter)."""
    return export_state_dict(model.backbone, rng)


def tame_outputs(network, seed=0):
    """Give a random network's head sensible outputs on 0..255 images (in place; returns it).

    Random weights on raw pixels give box log-sizes in the hundreds (exp ->
    inf, as the reference would); with these output convs the boxes are a
    few strides wide around their priors, the scores spread over (0, 1) and
    the pose vectors stay O(1), so the decoded keypoints are finite.
    """
    rng = np.random.default_rng(seed)
    for i in range(len(network.featmap_strides)):
        for kind, bias in (("bbox", None), ("cls", "cls"), ("pose", "zero"), ("kpt_vis", "zero")):
            layer = network.head.get_layer(f"out_{kind}_{i}")
            kernel = _np(layer.kernel)
            scale = 1e-6 if kind == "bbox" else 1e-4
            layer.kernel.assign(rng.normal(0, scale, kernel.shape).astype("float32"))
            if kind == "bbox":
                values = np.array([0.1, -0.1, np.log(2.5), np.log(4.0)], np.float32)
            elif kind == "cls":
                values = rng.normal(0, 2, layer.bias.shape).astype("float32")
            else:
                values = rng.normal(0, 0.5, layer.bias.shape).astype("float32")
            layer.bias.assign(values)
    return network
