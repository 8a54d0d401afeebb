"""`model_dataset`: the tf.data pipeline a model trains on, whatever its paradigm.

Top-down models (`TopDownPoseEstimator`) get person crops
(`keras_pose.data.top_down_pipeline.model_dataset`); bottom-up and one-stage
models get whole images (`keras_pose.data.whole_image_pipeline.model_dataset`).
"""

from keras_pose.data import top_down_pipeline, whole_image_pipeline


def model_dataset(model, dataset, **kwargs):
    """The training / evaluation pipeline configured from ``model`` (see the two pipelines' `model_dataset`).

    Args:
        model: a `PoseEstimator`; its ``paradigm`` picks the pipeline.
        dataset: a `PoseDataset` (or what the chosen pipeline accepts).
        **kwargs: the pipeline's arguments (``batch_size``, ``training``,
            ``augment``, ``seed``, ``repeat``, ...).

    Returns:
        A ``tf.data.Dataset`` of ``(inputs, targets)`` batches.
    """
    if getattr(model, "paradigm", "top_down") in ("bottom_up", "one_stage"):
        return whole_image_pipeline.model_dataset(model, dataset, **kwargs)
    return top_down_pipeline.model_dataset(model, dataset, **kwargs)


__all__ = ["model_dataset"]
