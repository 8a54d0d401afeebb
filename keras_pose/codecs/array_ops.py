"""One array vocabulary for NumPy and TensorFlow, so a target is written once.

The codecs build their training targets with the functions of an ``xp``
namespace: `NUMPY_OPS` on the host (``encode``) and `tensorflow_ops()` in
``tf.data`` graphs (``encode_tf``). Both namespaces offer the same names with
the same semantics (float64 math where the caller casts to it), so the NumPy
and TensorFlow targets come from one definition and agree to float rounding.
TensorFlow is imported only when `tensorflow_ops` is called.
"""

import types

import numpy as np

NUMPY_OPS = types.SimpleNamespace(
    name="numpy",
    float32=np.float32,
    float64=np.float64,
    trunc=np.trunc,
    floor=np.floor,
    exp=np.exp,
    sqrt=np.sqrt,
    minimum=np.minimum,
    isfinite=np.isfinite,
    where=np.where,
    clip=np.clip,
    zeros_like=np.zeros_like,
    ones_like=np.ones_like,
    arange=lambda n: np.arange(n, dtype=np.float64),
    cast=lambda x, dtype: np.asarray(x).astype(dtype),
    reduce_max=lambda x, axis: np.max(x, axis=axis),
    all=lambda x, axis: np.all(x, axis=axis),
    transpose=np.transpose,
    gather=lambda table, index: np.asarray(table)[np.asarray(index).astype(np.int64)],
)

_TF_OPS = None


def tensorflow_ops():
    """The TensorFlow twin of `NUMPY_OPS` (graph compatible)."""
    global _TF_OPS
    if _TF_OPS is None:
        import tensorflow as tf

        _TF_OPS = types.SimpleNamespace(
            name="tensorflow",
            float32=tf.float32,
            float64=tf.float64,
            trunc=lambda v: tf.sign(v) * tf.floor(tf.abs(v)),  # toward zero, like np.trunc
            floor=tf.floor,
            exp=tf.exp,
            sqrt=tf.sqrt,
            minimum=tf.minimum,
            isfinite=tf.math.is_finite,
            where=tf.where,
            clip=tf.clip_by_value,
            zeros_like=tf.zeros_like,
            ones_like=tf.ones_like,
            arange=lambda n: tf.range(n, dtype=tf.float64),
            cast=tf.cast,
            reduce_max=lambda x, axis: tf.reduce_max(x, axis=axis),
            all=lambda x, axis: tf.reduce_all(x, axis=axis),
            transpose=lambda x, axes: tf.transpose(x, perm=axes),
            gather=lambda table, index: tf.gather(tf.constant(np.asarray(table)), tf.cast(index, tf.int32)),
        )
    return _TF_OPS
