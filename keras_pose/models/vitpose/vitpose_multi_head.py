"""`ViTPoseMultiDatasetHead`: the per-dataset heads of ViTPose++."""

import keras

from keras_pose.models.vitpose.vitpose_layers import make_head


@keras.saving.register_keras_serializable(package="keras_pose")
class ViTPoseMultiDatasetHead(keras.layers.Layer):
    """One heatmap head per dataset (ViTPose++); `dataset_index` picks one.

    Holds every dataset's head (all built, all saved, in a fixed order
    `heads[i]` named `head_{dataset name}`), so a graph built for any dataset
    has the same weights. `call(features, dataset_index=i)` runs head i;
    `dataset_index` is a Python int fixed when the graph is built.

    Args:
        datasets: dataset names, in dataset-index order.
        num_keypoints: keypoint count per dataset.
        decoder: "classic" or "simple" (the same for every dataset).
        deconv_filters: classic heads' deconvolution widths.
    """

    def __init__(self, datasets, num_keypoints, decoder="classic", deconv_filters=(256, 256), **kwargs):
        super().__init__(**kwargs)
        self.datasets = [str(d) for d in datasets]
        self.num_keypoints = [int(k) for k in num_keypoints]
        if len(self.datasets) != len(self.num_keypoints):
            raise ValueError(
                f"{len(self.datasets)} datasets but {len(self.num_keypoints)} keypoint counts."
            )
        self.decoder = decoder
        self.deconv_filters = [int(f) for f in deconv_filters]
        self.heads = [
            make_head(decoder, k, self.deconv_filters, dtype=self.dtype_policy, name=f"head_{d}")
            for d, k in zip(self.datasets, self.num_keypoints)
        ]

    def build(self, input_shape):
        for head in self.heads:
            head.build(input_shape)

    def call(self, x, dataset_index=0, training=None):
        return self.heads[int(dataset_index)](x, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "datasets": list(self.datasets),
                "num_keypoints": list(self.num_keypoints),
                "decoder": self.decoder,
                "deconv_filters": list(self.deconv_filters),
            }
        )
        return config


__all__ = ["ViTPoseMultiDatasetHead"]
