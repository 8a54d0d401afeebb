"""The codec's argmax decode in TensorFlow ops, for exported graphs.

`export_model(..., include_decode=True)` appends this to the exported graph
so a mobile or server runtime gets keypoints without any NumPy / OpenCV
post-processing. It is the codec's own decode without sub-pixel refinement,
`HeatmapCodec.decode_argmax` (NumPy), written again in TensorFlow ops only
because it has to run *inside* the graph the converters trace; everything
it depends on comes from the codec:

- the location is the first maximum of each ``(h, w)`` map in row-major
  ``(y, x)`` order (``tf.argmax``, TFLite ``ARG_MAX`` and ONNX ``ArgMax``
  all return the first maximum, as `keras_pose.codecs.get_heatmap_maximum`);
- a map whose maximum is ``<= 0`` gets heatmap location ``(-1, -1)``, as in
  mmpose (its score says the keypoint is missing);
- heatmap px -> input px: ``u = (x + offset) * scale`` with the codec's
  `argmax_to_input` (MSRA ``W / w``; UDP ``W / (w - 1)``; CPN the stride,
  offset 0.5), the box frame the codecs decode into.

`argmax_decode_numpy` is the codec's ``decode_argmax``; the tests check the
TensorFlow form against it on fitted models' heatmaps (to 1e-4 px).
The refinements (quarter-pixel shift, DARK, DARK-UDP) are left out: they move
a keypoint by at most one heatmap pixel (the DARK Newton step is bounded, see
``keras_pose.codecs.refinement``), and run host-side with ``codec.decode`` on
the heatmaps when wanted (``runner.decode``).
"""

from keras_pose.codecs import get_codec

DECODE_SCOPE = "keypoint_decode"
FLOAT_TAIL = ("x_scaled", "y_scaled", "x_px", "y_px", "keypoints_px")


def decode_scale(codec):
    """Heatmap px -> input px factor ``(sx, sy)`` of a codec (float64): its `argmax_to_input` scale.

    Args:
        codec: a heatmap codec or its config dict.

    Returns:
        ``(sx, sy)``: ``(W / w, H / h)`` for standard codecs,
        ``(W / (w - 1), H / (h - 1))`` for UDP codecs, the stride for CPN.
    """
    return tuple(float(v) for v in get_codec(codec).argmax_to_input()[0])


def decode_offset(codec):
    """Heatmap px offset ``(ox, oy)`` added before `decode_scale` (CPN: 0.5; others 0)."""
    return tuple(float(v) for v in get_codec(codec).argmax_to_input()[1])


def argmax_decode_numpy(heatmaps, codec):
    """The NumPy reference of :func:`argmax_decode_tf`: ``codec.decode_argmax``.

    Args:
        heatmaps: ``(N, h, w, K)`` heatmaps.
        codec: a heatmap codec or its config dict.

    Returns:
        ``(keypoints, scores)``: float32 ``(N, K, 2)`` ``(x, y)`` input px in
        the box frame, float32 ``(N, K)`` maxima.
    """
    return get_codec(codec).decode_argmax(heatmaps)


def argmax_decode_tf(heatmaps, codec):
    """Keypoints and scores from heatmaps, in TensorFlow ops (``codec.decode_argmax`` in the graph).

    Args:
        heatmaps: ``(B, h, w, K)`` tensor (B may be dynamic).
        codec: a heatmap codec or its config dict; its ``heatmap_size``
            must be ``(h, w)``.

    Returns:
        ``(keypoints, scores)``: float32 ``(B, K, 2)`` ``(x, y)`` input
        pixels (box frame) and float32 ``(B, K)`` heatmap maxima.
    """
    import tensorflow as tf

    codec = get_codec(codec)
    h, w = codec.heatmap_size
    shape = heatmaps.shape
    if shape.rank != 4 or (shape[1] is not None and (int(shape[1]), int(shape[2])) != (h, w)):
        raise ValueError(
            f"argmax_decode_tf expects (B, {h}, {w}, K) heatmaps for this codec, got {shape}; "
            "build the codec with the model's heatmap_size."
        )
    k = int(shape[-1])
    (sx, sy), (ox, oy) = codec.argmax_to_input()
    with tf.name_scope(DECODE_SCOPE):
        heatmaps = tf.cast(heatmaps, tf.float32)
        # (B, h*w, K): flat index y * w + x, so the first maximum along axis 1
        # is the first in row-major (y, x) order, as np.argmax on (K, h*w).
        flat = tf.reshape(heatmaps, [-1, h * w, k])
        index = tf.argmax(flat, axis=1, output_type=tf.int32)
        scores = tf.reduce_max(flat, axis=1)
        x = tf.cast(tf.math.floormod(index, w), tf.float32)
        y = tf.cast(tf.math.floordiv(index, w), tf.float32)
        missing = scores <= 0.0
        x = tf.where(missing, tf.fill(tf.shape(x), -1.0), x)
        y = tf.where(missing, tf.fill(tf.shape(y), -1.0), y)
        # The ops named in FLOAT_TAIL run in float32 in every export: ONNX
        # float16 keeps them out of the conversion, TFLite / ONNX int8 out of
        # quantisation. (TFLite float16 stores the folded scale constant in
        # float16: a relative error of at most 2**-11.)
        keypoints = tf.stack(
            [
                tf.math.multiply(tf.math.add(x, ox, name="x_px"), sx, name="x_scaled"),
                tf.math.multiply(tf.math.add(y, oy, name="y_px"), sy, name="y_scaled"),
            ],
            axis=-1,
            name="keypoints_px",
        )
    return keypoints, scores
