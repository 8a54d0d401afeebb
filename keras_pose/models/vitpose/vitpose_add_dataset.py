"""Fine-tuning ViTPose++ on a new keypoint set: a new expert and head, initialised from an existing one."""

import keras
import numpy as np

from keras_pose.models.vitpose.vitpose_backbone import ViTPoseBackbone


def _numpy(variable):
    return keras.ops.convert_to_numpy(variable)


def _copy_layer(layer):
    return keras.layers.deserialize(keras.layers.serialize(layer))


def add_dataset(pose_model, name, keypoint_spec, init_from="coco", num_keypoints=None, active=True):
    """A `ViTPosePP` with one more dataset: a new expert in every block and a new head.

    All existing weights are copied. The new expert (every block's
    `experts_kernel[e_new]`, `experts_bias[e_new]`) is a copy of
    `init_from`'s; the new head copies `init_from`'s head wherever the shapes
    agree (all of it when the keypoint counts are equal; otherwise every
    layer but the final 1x1 convolution, which keeps its fresh
    initialisation). The backbone gets one more expert slot unless it has
    an unused one.

    Args:
        pose_model: a `ViTPosePP`.
        name: the new dataset's name (not one of `pose_model.datasets`).
        keypoint_spec: its keypoint spec (built-in name, dict, file or
            `KeypointSpec`).
        init_from: the dataset (name or index) whose expert and head start
            the new ones.
        num_keypoints: the head's keypoints (default: the spec's).
        active: make the new dataset the active one of the returned model
            (its `predict_keypoints`, `keypoint_spec`).

    Returns:
        a new `ViTPosePP` (new variables; `pose_model` is unchanged).
    """
    from keras_pose.keypoints import get_keypoint_spec

    if not hasattr(pose_model, "fuse_experts"):  # a ViTPosePP (or subclass); not imported: it imports this module
        raise ValueError(f"add_dataset needs a ViTPosePP, got {type(pose_model).__name__}.")
    if name in pose_model.datasets:
        raise ValueError(f"Dataset {name!r} already exists ({pose_model.datasets}); choose another name.")
    source = pose_model._dataset_index_of(init_from)
    spec = get_keypoint_spec(keypoint_spec)
    num_keypoints = int(num_keypoints or spec.num_keypoints)
    datasets = list(pose_model.datasets) + [name]
    new_index = len(datasets) - 1

    src = pose_model.backbone
    config = src.get_config()
    config.pop("name", None)
    config["num_experts"] = max(src.num_experts, len(datasets))
    config["dataset_index"] = 0
    if isinstance(config.get("dtype"), dict):
        config["dtype"] = keras.dtype_policies.get(config["dtype"])
    backbone = ViTPoseBackbone(**config)
    model = type(pose_model)(
        backbone,
        datasets=datasets,
        num_keypoints=list(pose_model.num_keypoints) + [num_keypoints],
        dataset=name if active else pose_model.dataset,
        decoder=pose_model.decoder,
        deconv_filters=pose_model.deconv_filters,
        keypoint_specs=list(pose_model.keypoint_specs) + [spec],
        preprocessor=_copy_layer(pose_model.preprocessor),
        codec=pose_model.codec,
        test_cfg=pose_model.test_cfg,
        dataset_decodings=pose_model.dataset_decodings,
        loss=getattr(pose_model, "_default_loss", None),
    )

    # === Weights ===
    dst = model.backbone
    dst.patch_embedding.set_weights(src.patch_embedding.get_weights())
    if src.knowledge_token is not None:
        dst.knowledge_token.set_weights(src.knowledge_token.get_weights())
    dst.final_layernorm.set_weights(src.final_layernorm.get_weights())
    for dst_block, src_block in zip(dst.transformer_layers, src.transformer_layers):
        for layer in ("norm1", "attention", "norm2"):
            getattr(dst_block, layer).set_weights(getattr(src_block, layer).get_weights())
        dst_block.mlp.fc1.set_weights(src_block.mlp.fc1.get_weights())
        dst_block.mlp.fc2.set_weights(src_block.mlp.fc2.get_weights())
        for attr in ("experts_kernel", "experts_bias"):
            old = _numpy(getattr(src_block.mlp, attr))
            new = np.array(_numpy(getattr(dst_block.mlp, attr)))
            new[: old.shape[0]] = old
            new[new_index] = old[source]
            getattr(dst_block.mlp, attr).assign(new)
    for dst_head, src_head in zip(model.heads.heads, pose_model.heads.heads):
        dst_head.set_weights(src_head.get_weights())
    new_head, init_head = model.heads.heads[new_index], pose_model.heads.heads[source]
    for dst_var, src_var in zip(new_head.weights, init_head.weights):
        if tuple(dst_var.shape) == tuple(src_var.shape):
            dst_var.assign(src_var)
    return model


def freeze_for_dataset(pose_model, dataset, train_shared=False):
    """Set `trainable` flags to fine-tune one dataset's expert and head.

    Trainable afterwards: the dataset's head and every block's expert
    variables (`experts_kernel`, `experts_bias`: one variable holds every
    expert, so the other experts stay trainable variables; with batches of
    this dataset alone their gradients are exactly zero, so an optimizer
    without weight decay leaves them unchanged). With `train_shared`, also
    every shared backbone layer (the other heads stay frozen).

    Args:
        pose_model: a `ViTPosePP` (or a `ViTPosePPMultiDataset`'s `pose_model`).
        dataset: dataset name or index.
        train_shared: also train the shared backbone.

    Returns:
        `pose_model` (flags changed in place; compile after calling this).
    """
    index = pose_model._dataset_index_of(dataset)
    backbone = pose_model.backbone
    for layer in (backbone.patch_embedding, backbone.knowledge_token, backbone.final_layernorm):
        if layer is not None:
            layer.trainable = bool(train_shared)
    for block in backbone.transformer_layers:
        block.trainable = True
        for layer in (block.norm1, block.attention, block.norm2, block.mlp.fc1, block.mlp.fc2):
            layer.trainable = bool(train_shared)
    for i, head in enumerate(pose_model.heads.heads):
        head.trainable = i == index
    return pose_model
