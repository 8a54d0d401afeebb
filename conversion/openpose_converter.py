"""OpenPose body models -> `keras_pose.models.openpose.OpenPose`.

Two file kinds, both named after CMU's Caffe layers:

- the PyTorch port's ``body_pose_model.pth`` (Hzzone/pytorch-openpose,
  controlnet-aux, lllyasviel/Annotators): a flat dict ``<layer>.weight`` /
  ``<layer>.bias`` (no container, no prefix) of the COCO-18 model. The port
  applies a ReLU to the final heatmaps (its ``no_relu_layers`` names
  ``Mconv7_stage6_L1`` twice and misses ``Mconv7_stage6_L2``), so the model
  converted from it does too (``final_heatmap_relu``; a preset entry or
  override that sets it wins);
- CMU's binary Caffe ``.caffemodel`` (``pose_iter_440000`` COCO-18,
  ``pose_iter_584000`` BODY_25), read by `caffe_io.read_caffemodel`
  (``layer`` / legacy ``layers`` messages, both blob-shape forms): the same
  names, plus ``<prelu>.weight`` (per-channel slopes) for BODY_25; no ReLU
  on the final heatmaps.

The variant follows the names (PReLU slopes / ``_L2_0`` dense blocks: BODY_25),
and the stage counts and widths follow the tensor shapes. Every tensor is
consumed or reported (`KeyAccountant`).
"""

import re

from keras_pose.conversion.checkpoint_io import read_checkpoint
from keras_pose.conversion.families import check_family
from keras_pose.conversion.key_accountant import KeyAccountant, out_channels
from keras_pose.conversion.port import port_conv, port_tensor
from keras_pose.conversion.settings import check_agrees, check_overrides, entry_config, preset_label, require_tensor
from keras_pose.conversion.settings import task_settings

FAMILY = "openpose"
TASK_OVERRIDES = ("keypoint_spec", "preprocessing", "decoding", "dtype", "name")
OVERRIDES = TASK_OVERRIDES + ("final_heatmap_relu",)


def _dim(tensors, key, source, what):
    require_tensor(tensors, key, source, what, "an OpenPose body model")
    return out_channels(tensors, key)


def _stages(tensors, pattern):
    return sorted({int(m.group(1)) for k in tensors if (m := re.match(pattern, k))})


def is_body25(tensors):
    """True for the BODY_25 layout (dense blocks ``Mconv*_stage*_L*_0`` / PReLU slopes)."""
    return any(re.match(r"Mconv\d+_stage\d+_L\d_\d\.", k) or k.startswith("prelu") for k in tensors)


def infer_config(tensors, source="checkpoint"):
    """`OpenPoseBackbone` arguments determined by the file's tensors."""
    d = lambda key, what: _dim(tensors, key, source, what)  # noqa: E731
    config = {
        "vgg_channels": [d(f"conv{i}_1.weight", f"VGG block {i} width") for i in range(1, 5)],
        "cpm_channels": [d("conv4_3_CPM.weight", "conv4_3_CPM width"), d("conv4_4_CPM.weight", "feature width")],
    }
    if is_body25(tensors):
        paf = _stages(tensors, r"Mconv7_stage(\d+)_L2\.")
        heat = _stages(tensors, r"Mconv7_stage(\d+)_L1\.")
        if not paf or not heat:
            require_tensor(tensors, "Mconv7_stage0_L2.weight" if not paf else "Mconv7_stage0_L1.weight", source,
                           "BODY_25 stage outputs", "an OpenPose BODY_25 model")
        config.update(
            variant="body25",
            num_paf_stages=max(paf) + 1,
            num_heatmap_stages=max(heat) + 1,
            num_pafs=d("Mconv7_stage0_L2.weight", "PAF channels"),
            num_heatmaps=d("Mconv7_stage0_L1.weight", "heatmap channels"),
            first_stage_channels=d("Mconv1_stage0_L2_0.weight", "stage-0 width"),
            first_head_channels=d("Mconv6_stage0_L2.weight", "stage-0 1x1 width"),
        )
        if max(paf) >= 1 or max(heat) >= 1:
            branch = "L2" if max(paf) >= 1 else "L1"
            config["stage_channels"] = d(f"Mconv1_stage1_{branch}_0.weight", "stage width")
            config["head_channels"] = d(f"Mconv6_stage1_{branch}.weight", "stage 1x1 width")
        return config
    stages = _stages(tensors, r"Mconv\d+_stage(\d+)_L1\.")
    config.update(
        variant="coco18",
        num_stages=max(stages) if stages else 1,
        num_pafs=d("conv5_5_CPM_L1.weight", "PAF channels"),
        num_heatmaps=d("conv5_5_CPM_L2.weight", "heatmap channels"),
        stage_channels=d("conv5_1_CPM_L1.weight", "stage width"),
        head_channels=d("conv5_4_CPM_L1.weight", "stage-1 1x1 width"),
    )
    if stages:
        config["refine_head_channels"] = d("Mconv6_stage2_L1.weight", "stage 1x1 width")
        require_tensor(tensors, "Mconv1_stage2_L1.weight", source, "refinement kernel size", "an OpenPose model")
        config["refine_kernel_size"] = int(tensors["Mconv1_stage2_L1.weight"].shape[-1])
    return config


def openpose_config(ckpt, entry, overrides):
    """The flat `OpenPose.from_checkpoint_config` arguments for a file and its preset entry."""
    check_overrides(overrides, OVERRIDES, FAMILY)
    inferred = infer_config(ckpt.tensors, ckpt.path)
    # The PyTorch port's final-heatmap ReLU (see the module docstring); CMU's Caffe model has none.
    inferred["final_heatmap_relu"] = inferred["variant"] == "coco18" and ckpt.format != "caffe"
    config = entry_config(entry)
    relu = inferred.pop("final_heatmap_relu")
    check_agrees(inferred, config, ckpt.path, preset_label(entry))
    config.update(inferred)
    if config.get("final_heatmap_relu") is None:  # a preset's (or override's) choice wins over the file kind
        config["final_heatmap_relu"] = relu
    config.update({k: v for k, v in overrides.items() if k not in ("preprocessing", "decoding")})
    config.update(task_settings(entry, overrides))
    return config


def port_openpose(acc, backbone):
    """Pop every Conv2D / PReLU of `backbone` by its Caffe layer name."""
    import keras

    for layer in backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            port_conv(acc, layer.name, layer)
        elif isinstance(layer, keras.layers.PReLU):
            channels = int(layer.alpha.shape[-1])
            port_tensor(acc, f"{layer.name}.weight", layer.alpha, (channels,), lambda a: a.reshape(1, 1, -1))


def convert(checkpoint, entry=None, dataset=None, **overrides):
    """Convert an OpenPose body model (`.pth` port or Caffe `.caffemodel`) into an `OpenPose` task.

    Args:
        checkpoint: the file, a mapping name -> tensor, or a `Checkpoint`.
        entry: the `PresetEntry` it was released as, or None.
        dataset: unused (single-dataset models).
        **overrides: `keypoint_spec`, `preprocessing`, `decoding`, `dtype`,
            `name`, `final_heatmap_relu`.

    Raises:
        CheckpointError: every missing, unexpected, misshapen and non-finite
            tensor, or a conflict with the preset.
    """
    from keras_pose.models.openpose import OpenPose

    ckpt = read_checkpoint(checkpoint)
    check_family(ckpt, ckpt.path, (FAMILY,), "an OpenPose")
    config = openpose_config(ckpt, entry, overrides)
    model = OpenPose.from_checkpoint_config(**config)
    acc = KeyAccountant(ckpt.tensors, source=ckpt.path, family=FAMILY)
    port_openpose(acc, model.backbone)
    acc.finish(what=f"OpenPose {config['variant']} model")
    return model
