"""`ViTPosePP`: ViTPose++ (multi-dataset ViT with partially shared experts)."""

import copy

import keras
import numpy as np

from keras_pose.models.top_down_pose_estimator import TopDownPoseEstimator
from keras_pose.models.vitpose.vitpose_backbone import (
    VIT_SIZES,
    VITPOSE_PLUS_PART_FEATURES,
    ViTPoseBackbone,
    vit_backbone,
)
from keras_pose.models.vitpose.vitpose_layers import DECODERS
from keras_pose.models.vitpose.vitpose_multi_head import ViTPoseMultiDatasetHead

# ViTPose++ dataset_index order (the keypoint counts are the built-in specs').
VITPOSE_PLUS_DATASETS = ["coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody"]


def _numpy(variable):
    return keras.ops.convert_to_numpy(variable)


def _get_spec(spec):
    from keras_pose.keypoints import get_keypoint_spec

    return get_keypoint_spec(spec)


def _copy_layer(layer):
    return keras.layers.deserialize(keras.layers.serialize(layer))


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPosePP(TopDownPoseEstimator):
    """ViTPose++: one backbone with per-dataset experts, one head per dataset.

    Calling the model on normalised crops (B, H, W, 3) returns the *active*
    dataset's heatmaps (B, H/4, W/4, K_dataset) float32: the graph runs the
    active dataset's expert in every block and its head. All experts and all
    heads are weights of the model (saved, loaded, trained as one).

    Dataset selection: the active dataset is fixed per graph (`dataset=`).
    `with_dataset(name)` builds another `ViTPosePP` graph over the *same*
    layers and variables with another dataset active (no copy; training one
    trains the other). `predict_keypoints(..., dataset="ap10k")` uses such a
    view (cached). `fuse_experts(name)` returns a plain `ViTPose` with that
    dataset's expert folded into fc2 and its head.

    Args:
        backbone: a `ViTPoseBackbone` with `num_experts > 0`.
        datasets: dataset names in dataset-index order (default: coco, aic,
            mpii, ap10k, apt36k, coco_wholebody).
        num_keypoints: keypoints per dataset (defaults from the dataset
            names, or from `keypoint_specs`).
        dataset: the active dataset name (default: the first).
        decoder: "classic" or "simple" (every head).
        deconv_filters: widths of the classic heads' deconvolutions.
        keypoint_specs: per dataset a keypoint spec (name, dict or
            `KeypointSpec`); defaults to the dataset names.
        keypoint_spec: optional spec for the active dataset (replaces its
            entry of `keypoint_specs`); `get_config` stores None here and
            the specs in `keypoint_specs`.
        dataset_decodings: optional {dataset name: old-style decoding dict}
            for datasets whose published evaluation decodes differently (e.g.
            ViTPose++ AIC / AP-10K use MSRA heatmaps with the flip shift, COCO
            UDP); the active dataset's entry, when present, replaces the
            codec, test settings and crop (the image converter is kept).
        **kwargs: `preprocessor`, `codec`, `test_cfg`, `loss`, the old
            `preprocessing` / `decoding` dicts (see `TopDownPoseEstimator`),
            `name`, `dtype`.

    Layers: `backbone`, `heads` (`ViTPoseMultiDatasetHead`, one sub-head
    `head_<dataset>` per dataset), `heatmaps` (float32 cast).
    """

    backbone_cls = ViTPoseBackbone
    tf_train_jit_compile = True  # as ViTPose (same backbone and heads)

    def __init__(
        self,
        backbone,
        datasets=None,
        num_keypoints=None,
        dataset=None,
        decoder="classic",
        deconv_filters=(256, 256),
        keypoint_specs=None,
        keypoint_spec=None,
        dataset_decodings=None,
        **kwargs,
    ):
        shared_heads = kwargs.pop("_shared_heads", None)
        datasets = list(datasets or VITPOSE_PLUS_DATASETS)
        if len(set(datasets)) != len(datasets):
            raise ValueError(f"Dataset names must be unique, got {datasets}.")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
        if not backbone.num_experts:
            raise ValueError(
                "ViTPosePP needs a backbone with experts (num_experts > 0); use ViTPose for a plain ViT."
            )
        if len(datasets) > backbone.num_experts:
            raise ValueError(
                f"{len(datasets)} datasets but the backbone has only {backbone.num_experts} experts."
            )
        keypoint_specs = list(keypoint_specs) if keypoint_specs is not None else list(datasets)
        if len(keypoint_specs) != len(datasets):
            raise ValueError(f"{len(datasets)} datasets but {len(keypoint_specs)} keypoint specs.")
        if num_keypoints is None:
            num_keypoints = [_get_spec(spec).num_keypoints for spec in keypoint_specs]
        num_keypoints = [int(k) for k in num_keypoints]
        if len(num_keypoints) != len(datasets):
            raise ValueError(f"{len(datasets)} datasets but {len(num_keypoints)} keypoint counts.")
        dataset = dataset or datasets[0]
        if dataset not in datasets:
            raise ValueError(f"Unknown dataset {dataset!r}; this model has heads for {datasets}.")
        index = datasets.index(dataset)
        if keypoint_spec is not None:
            keypoint_specs[index] = keypoint_spec  # an explicit spec for the active dataset
        active_spec = keypoint_specs[index]
        spec_k = _get_spec(active_spec).num_keypoints
        if spec_k != num_keypoints[index]:
            raise ValueError(
                f"Dataset {dataset!r}: the head has {num_keypoints[index]} keypoints but its keypoint "
                f"spec has {spec_k}."
            )
        dataset_decodings = copy.deepcopy(dict(dataset_decodings or {}))
        unknown = sorted(set(dataset_decodings) - set(datasets))
        if unknown:
            raise ValueError(f"dataset_decodings names unknown datasets {unknown}; datasets are {datasets}.")
        if dataset in dataset_decodings:
            # The dataset's decoding replaces the codec, test settings and crop; the converter stays.
            preprocessor = kwargs.pop("preprocessor", None)
            kwargs.pop("codec", None)
            kwargs.pop("test_cfg", None)
            if preprocessor is not None and kwargs.get("preprocessing") is None:
                kwargs["preprocessing"] = preprocessor.image_converter.legacy_config()
            kwargs["decoding"] = copy.deepcopy(dataset_decodings[dataset])
        backbone = backbone.with_dataset_index(index)

        # === Layers ===
        self.backbone = backbone
        if shared_heads is not None:
            self.heads = shared_heads
        else:
            self.heads = ViTPoseMultiDatasetHead(
                datasets,
                num_keypoints,
                decoder=decoder,
                deconv_filters=deconv_filters,
                dtype=backbone.dtype_policy,
                name="heads",
            )
        self.heatmap_output = keras.layers.Activation("linear", dtype="float32", name="heatmaps")

        # === Functional model ===
        inputs = keras.Input(shape=(*backbone.image_size, 3), name="images")
        features = backbone(inputs)
        outputs = self.heatmap_output(self.heads(features, dataset_index=index))
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            keypoint_spec=active_spec,
            **kwargs,
        )

        # === Config ===
        self.datasets = datasets
        self.num_keypoints = num_keypoints
        self.dataset = dataset
        self.dataset_index = index
        self.decoder = decoder
        self.deconv_filters = [int(f) for f in deconv_filters]
        self.keypoint_specs = keypoint_specs
        self.dataset_decodings = dataset_decodings
        object.__setattr__(self, "_dataset_views", {})

    @classmethod
    def from_checkpoint_config(
        cls,
        *,
        image_size=(256, 192),
        keypoint_spec=None,
        datasets=None,
        dataset=None,
        dtype=None,
        name=None,
        preprocessing=None,
        decoding=None,
        decoder="classic",
        deconv_filters=(256, 256),
        num_keypoints=None,
        keypoint_specs=None,
        dataset_decodings=None,
        loss=None,
        **backbone_kwargs,
    ):
        """An untrained ViTPose++ from flat settings (a preset's `config`, see `keras_pose.preset_entry`).

        Args:
            image_size: (H, W) input, pixels.
            keypoint_spec: the keypoint spec of the active dataset. When it
                names one of `datasets` (a preset's `"keypoint_spec": "mpii"`)
                and `dataset` is None, that dataset is the active one.
            datasets: dataset names in dataset-index order (default: the six
                ViTPose++ datasets).
            dataset: the active dataset (default: see `keypoint_spec`, else
                the first).
            dtype, name: dtype policy and model name.
            preprocessing, decoding, dataset_decodings, loss: see `ViTPosePP`.
            decoder, deconv_filters, num_keypoints, keypoint_specs: the heads.
            **backbone_kwargs: `ViTPoseBackbone` arguments, or `size`;
                `num_experts` defaults to the number of datasets and
                `part_features` to the released width's (`VITPOSE_PLUS_PART_FEATURES`).
        """
        datasets = list(datasets or VITPOSE_PLUS_DATASETS)
        if isinstance(keypoint_spec, str) and keypoint_spec in datasets:
            dataset = dataset or keypoint_spec
            if keypoint_spec == dataset:
                keypoint_spec = None  # the dataset's own spec (keypoint_specs)
        hidden_dim = backbone_kwargs.get("hidden_dim", VIT_SIZES.get(backbone_kwargs.get("size"), {}).get("hidden_dim"))
        backbone_kwargs.setdefault("num_experts", len(datasets))
        if hidden_dim in VITPOSE_PLUS_PART_FEATURES:
            backbone_kwargs.setdefault("part_features", VITPOSE_PLUS_PART_FEATURES[hidden_dim])
        backbone = vit_backbone(image_size, dtype=dtype, **backbone_kwargs)
        return cls(
            backbone,
            datasets=datasets,
            num_keypoints=num_keypoints,
            dataset=dataset,
            decoder=decoder,
            deconv_filters=deconv_filters,
            keypoint_specs=keypoint_specs,
            keypoint_spec=keypoint_spec,
            preprocessing=preprocessing,
            decoding=decoding,
            dataset_decodings=dataset_decodings,
            loss=loss,
            **({"name": name} if name else {}),
        )

    # ------------------------------------------------------------- datasets
    def _dataset_index_of(self, dataset):
        if isinstance(dataset, int):
            if not 0 <= dataset < len(self.datasets):
                raise ValueError(f"dataset index {dataset} out of range for {self.datasets}.")
            return dataset
        if dataset not in self.datasets:
            raise ValueError(f"Unknown dataset {dataset!r}; this model has heads for {self.datasets}.")
        return self.datasets.index(dataset)

    def with_dataset(self, dataset):
        """This model with another dataset active, sharing every weight.

        Args:
            dataset: a dataset name (or index) of `datasets`.

        Returns:
            `self` for the active dataset, otherwise a `ViTPosePP` whose
            graph runs that dataset's expert and head over the same layers.
        """
        index = self._dataset_index_of(dataset)
        if index == self.dataset_index:
            return self
        views = self.__dict__.setdefault("_dataset_views", {})
        if index not in views:
            views[index] = ViTPosePP(
                backbone=self.backbone,
                datasets=self.datasets,
                num_keypoints=self.num_keypoints,
                dataset=self.datasets[index],
                decoder=self.decoder,
                deconv_filters=self.deconv_filters,
                keypoint_specs=self.keypoint_specs,
                preprocessor=self.preprocessor,
                codec=self.codec,
                test_cfg=self.test_cfg,
                dataset_decodings=self.dataset_decodings,
                loss=getattr(self, "_default_loss", None),
                name=self.name,
                _shared_heads=self.heads,
            )
        return views[index]

    def predict_keypoints(self, images, boxes=None, *args, dataset=None, **kwargs):
        """`TopDownPoseEstimator.predict_keypoints` for `dataset` (default: the active one)."""
        model = self if dataset is None else self.with_dataset(dataset)
        return TopDownPoseEstimator.predict_keypoints(model, images, boxes, *args, **kwargs)

    def predict_heatmaps(self, crops, *args, dataset=None, **kwargs):
        """`TopDownPoseEstimator.predict_heatmaps` for `dataset` (default: the active one)."""
        model = self if dataset is None else self.with_dataset(dataset)
        return TopDownPoseEstimator.predict_heatmaps(model, crops, *args, **kwargs)

    def add_dataset(self, name, keypoint_spec, init_from="coco", **kwargs):
        """A new `ViTPosePP` with one more dataset (expert and head copied from `init_from`'s).

        See `keras_pose.models.vitpose.vitpose_add_dataset.add_dataset` (and
        `freeze_for_dataset` to train it with the rest frozen).
        """
        from keras_pose.models.vitpose.vitpose_add_dataset import add_dataset

        return add_dataset(self, name, keypoint_spec, init_from=init_from, **kwargs)

    def fuse_experts(self, dataset=None):
        """A plain `ViTPose` computing this model's outputs for one dataset.

        Every block's fc2 becomes `concat([fc2, expert_d])` along its outputs
        (kernel (mlp_dim, C)), the dataset's head becomes the head, and the
        keypoint spec is the dataset's.

        Args:
            dataset: dataset name or index (default: the active one).
        """
        from keras_pose.models.vitpose.vitpose_pose_estimator import ViTPose

        index = self.dataset_index if dataset is None else self._dataset_index_of(dataset)
        src = self.backbone
        config = src.get_config()
        config.update({"num_experts": 0, "part_features": 0, "dataset_index": 0})
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.get(config["dtype"])
        config.pop("name", None)
        fused = ViTPoseBackbone(**config)
        fused.patch_embedding.set_weights(src.patch_embedding.get_weights())
        fused.final_layernorm.set_weights(src.final_layernorm.get_weights())
        for dst_block, src_block in zip(fused.transformer_layers, src.transformer_layers):
            for name in ("norm1", "attention", "norm2"):
                getattr(dst_block, name).set_weights(getattr(src_block, name).get_weights())
            dst_block.mlp.fc1.set_weights(src_block.mlp.fc1.get_weights())
            mlp = src_block.mlp
            kernel = np.concatenate([_numpy(mlp.fc2.kernel), _numpy(mlp.experts_kernel)[index]], axis=-1)
            bias = np.concatenate([_numpy(mlp.fc2.bias), _numpy(mlp.experts_bias)[index]], axis=-1)
            dst_block.mlp.fc2.set_weights([kernel, bias])
        name = self.datasets[index]
        if name in self.dataset_decodings:
            settings = {"preprocessing": self.preprocessing, "decoding": copy.deepcopy(self.dataset_decodings[name])}
        else:
            settings = {"preprocessor": _copy_layer(self.preprocessor), "codec": self.codec, "test_cfg": self.test_cfg}
        model = ViTPose(
            fused,
            num_keypoints=self.num_keypoints[index],
            decoder=self.decoder,
            deconv_filters=self.deconv_filters,
            keypoint_spec=self.keypoint_specs[index],
            **settings,
        )
        model.head.set_weights(self.heads.heads[index].get_weights())
        return model

    def get_config(self):
        config = super().get_config()
        specs = []
        for spec in self.keypoint_specs:
            specs.append(spec.get_config() if hasattr(spec, "get_config") else spec)
        config.update(
            {
                "datasets": list(self.datasets),
                "num_keypoints": list(self.num_keypoints),
                "dataset": self.dataset,
                "decoder": self.decoder,
                "deconv_filters": list(self.deconv_filters),
                "keypoint_specs": specs,
                "dataset_decodings": copy.deepcopy(self.dataset_decodings),
                "keypoint_spec": None,  # per dataset, in keypoint_specs
            }
        )
        return config
