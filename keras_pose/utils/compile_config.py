"""The compile config of a task compiled with an optimizer and one loss object.

Keras saves ``model.get_compile_config()`` in ``.keras`` files and calls
``compile_from_config`` on loading; tasks whose loss lives in an attribute of
their own (not Keras' ``loss=``) save and restore it with these two.
"""

import keras


def loss_compile_config(model, loss_attribute):
    """``{"optimizer", "loss"}`` serialised (the loss is ``model.<loss_attribute>``), or None when not compiled."""
    if not model.compiled:
        return None
    return {"optimizer": keras.saving.serialize_keras_object(model.optimizer),
            "loss": keras.saving.serialize_keras_object(getattr(model, loss_attribute))}


def compile_from_loss_config(model, config):
    """Compile ``model`` again from `loss_compile_config`'s dict (nothing when empty)."""
    if not config:
        return
    model.compile(optimizer=keras.saving.deserialize_keras_object(config["optimizer"]),
                  loss=keras.saving.deserialize_keras_object(config["loss"]))
    if model.built:
        model.optimizer.build(model.trainable_variables)


__all__ = ["compile_from_loss_config", "loss_compile_config"]
