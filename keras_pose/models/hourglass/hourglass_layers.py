"""Building blocks of the Stacked Hourglass network (Newell et al. ECCV 2016).

Written as functional-graph builders over `keras_pose.layers`
(`BasicResidualBlock`, `ConvModule`), following mmpose's `HourglassNet`
module for module so its checkpoints load:

- `res_layer`: mmpose `ResLayer(BasicBlock, n, in, out, stride,
  downsample_first)`: n residual blocks; with `downsample_first` the first
  block changes width / stride, otherwise the last one does.
- `hourglass_module`: recursive hourglass of depth d:
  `up1 = res(x)`, `low1 = res(x, stride 2, next width)`,
  `low2 = hourglass(low1, d - 1)` (or a residual layer at the bottom),
  `low3 = res(low2, back to this width)`, output `up1 + nearest_up2(low3)`.

Every builder registers the residual blocks / ConvModules it creates in
`paths` (layer name -> mmpose module path) for the converter.
"""

import keras


def _name(path):
    return path.replace(".", "_")


def res_layer(x, num_blocks, filters, *, path, paths, strides=1, downsample_first=True, dtype=None):
    """mmpose `ResLayer` of `BasicBlock`s; returns the output tensor.

    Args:
        x: input tensor (B, H, W, C_in).
        num_blocks: blocks (>= 1).
        filters: output width.
        path: module path, e.g. "hourglass_modules.0.up1"; block i is
            "<path>.<i>".
        paths: dict collecting layer name -> module path.
        strides: stride of the width-changing block.
        downsample_first: the first block changes width / stride (True) or
            the last one (False, as mmpose's `low3`).
        dtype: dtype policy.
    """
    from keras_pose.layers import BasicResidualBlock

    in_channels = int(x.shape[-1])
    num_blocks = int(num_blocks)
    if num_blocks < 1:
        raise ValueError(f"a residual layer needs at least one block, got {num_blocks} at {path}.")
    for i in range(num_blocks):
        if downsample_first:
            block_filters, block_strides = (filters, strides) if i == 0 else (filters, 1)
        else:
            last = i == num_blocks - 1
            block_filters, block_strides = (filters, strides) if last else (in_channels, 1)
        block_path = f"{path}.{i}"
        block = BasicResidualBlock(block_filters, strides=block_strides, dtype=dtype, name=_name(block_path))
        paths[block.name] = block_path
        x = block(x)
    return x


def hourglass_module(x, depth, stage_channels, stage_blocks, *, path, paths, dtype=None):
    """One recursive hourglass of `depth` halvings; output has x's shape.

    Args:
        x: (B, H, W, stage_channels[0]); H and W divisible by 2**depth.
        depth: number of stride-2 levels (>= 1).
        stage_channels: widths per level (len > depth), outermost first.
        stage_blocks: residual blocks per level (len > depth).
        path: module path ("hourglass_modules.0"); nested levels are
            "<path>.low2".
    """
    cur_blocks, next_blocks = int(stage_blocks[0]), int(stage_blocks[1])
    cur_channels, next_channels = int(stage_channels[0]), int(stage_channels[1])
    up1 = res_layer(x, cur_blocks, cur_channels, path=f"{path}.up1", paths=paths, dtype=dtype)
    low1 = res_layer(x, cur_blocks, next_channels, strides=2, path=f"{path}.low1", paths=paths, dtype=dtype)
    if depth > 1:
        low2 = hourglass_module(
            low1, depth - 1, stage_channels[1:], stage_blocks[1:], path=f"{path}.low2", paths=paths, dtype=dtype
        )
    else:
        low2 = res_layer(low1, next_blocks, next_channels, path=f"{path}.low2", paths=paths, dtype=dtype)
    low3 = res_layer(
        low2, cur_blocks, cur_channels, downsample_first=False, path=f"{path}.low3", paths=paths, dtype=dtype
    )
    up2 = keras.layers.UpSampling2D(2, interpolation="nearest", dtype=dtype, name=_name(f"{path}.up2"))(low3)
    return keras.layers.Add(dtype=dtype, name=_name(f"{path}.add"))([up1, up2])
