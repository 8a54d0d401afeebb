"""The record streams under the tf.data pipelines: seeded, resumable, deterministic.

`stateless_stream` repeats a table of records forever in a per-epoch order
drawn from ``(seed, epoch)`` (so element ``n`` is the same in every process
and after a resume); `finish_stream` pairs records with random seeds, skips,
maps, batches and prefetches. Shared by the top-down and the whole-image
pipelines.
"""

import tensorflow as tf


def finish_stream(ds, rand, make_element, *, skip_elements, num_parallel_calls, batch_size, drop_remainder,
                  prefetch):
    """Pair each record of ``ds`` with its random seed from ``rand``, skip, map, batch and prefetch.

    The skip comes before the map: skipped elements are neither read nor
    augmented, and the rest keep the order and random seeds they would have
    had (resuming a stream). The map is deterministic.
    """
    ds = tf.data.Dataset.zip((ds, rand))
    if skip_elements:
        ds = ds.skip(int(skip_elements))
    if num_parallel_calls:
        ds = ds.map(make_element, num_parallel_calls=num_parallel_calls, deterministic=True)
    else:  # sequential: `deterministic` has no meaning (tf.data warns)
        ds = ds.map(make_element)
    if batch_size:
        ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if prefetch:
        ds = ds.prefetch(prefetch)
    else:  # none means none: tf.data would inject a prefetch of its own (made ahead of a `MixingSwitch` flip)
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        ds = ds.with_options(options)
    return ds


def stateless_stream(records, count, seed, shuffle):
    """``records`` repeated forever; epoch ``e`` in the order of ``argsort(uniform(seed, e))`` when shuffling."""
    table = {key: tf.constant(value) for key, value in records.items()}

    def epoch(e):
        if not shuffle:
            return tf.data.Dataset.range(count)
        keys = tf.random.stateless_uniform([count], tf.stack([tf.constant(seed, tf.int64), e]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys))

    order = tf.data.Dataset.counter().flat_map(epoch)
    return order.map(lambda i: {key: tf.gather(value, i) for key, value in table.items()})


__all__ = ["finish_stream", "stateless_stream"]
