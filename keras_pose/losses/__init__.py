"""Training losses: `keras.losses.Loss` subclasses on the codecs' target dicts.

```python
from keras_pose.losses import KeypointMSELoss, get_loss

model.compile(loss=KeypointMSELoss())           # or loss="keypoint_mse", or "auto"
```

Targets are the dict a codec encodes (``{"heatmaps", "keypoint_weights"}``,
plus ``"heatmaps_levels"`` for `CPNHeatmap`); predictions are the model's raw
outputs. Each loss returns per-sample values (batch mean after reduction).
"""

import keras

from keras_pose.losses.cpn_loss import CPNLoss
from keras_pose.losses.heatmap_losses import HEATMAP_LOSSES
from keras_pose.losses.heatmap_losses import HeatmapLoss
from keras_pose.losses.heatmap_losses import KeypointMSELoss
from keras_pose.losses.heatmap_losses import KeypointOHKMMSELoss
from keras_pose.losses.heatmap_losses import MultiOutputHeatmapLoss

LOSSES = {**HEATMAP_LOSSES, "multi_output_heatmap": MultiOutputHeatmapLoss, "cpn": CPNLoss}


def get_loss(loss):
    """A loss object from an instance, a config, a name, or None.

    Args:
        loss: a `keras.losses.Loss` (returned as is); a serialized loss
            (`keras.saving.serialize_keras_object` output); a name: a key of
            `LOSSES` ("keypoint_mse", "keypoint_ohkm_mse", "cpn") or a class
            name ("KeypointMSELoss", ...); None for `KeypointMSELoss()`.

    Returns:
        a `keras.losses.Loss`.

    Raises:
        ValueError: an unknown name or an object that is not a Keras loss.
    """
    if loss is None:
        return KeypointMSELoss()
    if isinstance(loss, keras.losses.Loss):
        return loss
    if isinstance(loss, dict):
        loss = keras.saving.deserialize_keras_object(loss)
    elif isinstance(loss, str):
        by_class = {cls.__name__: cls for cls in LOSSES.values()}
        cls = LOSSES.get(loss) or by_class.get(loss)
        if cls is None:
            raise ValueError(
                f"Unknown loss {loss!r}; use one of {sorted(LOSSES)} (or the class names "
                f"{sorted(by_class)}), or pass a keras.losses.Loss object."
            )
        loss = cls()
    if not isinstance(loss, keras.losses.Loss):
        raise ValueError(
            f"A pose loss must be a keras.losses.Loss (e.g. keras_pose.losses.KeypointMSELoss()), got "
            f"{type(loss).__name__}; subclass keras.losses.Loss and implement call(y_true, y_pred) -> (B,)."
        )
    return loss


__all__ = [
    "CPNLoss",
    "HeatmapLoss",
    "KeypointMSELoss",
    "KeypointOHKMMSELoss",
    "LOSSES",
    "MultiOutputHeatmapLoss",
    "get_loss",
]
