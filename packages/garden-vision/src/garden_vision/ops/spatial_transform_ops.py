"""ROIAlign over feature pyramids and mask cropping (Model Garden's `spatial_transform_ops`).

Two-stage detectors crop a fixed-size feature patch for every region of interest:

- `multilevel_crop_and_resize`: ROIAlign (He et al., 2017, "Mask R-CNN") over FPN levels.
  Each box is assigned to the pyramid level `floor(log2(sqrt(h * w) / 224)) + 4` (clamped
  to the levels present; the FPN paper's rule, as Model Garden does it), projected onto
  that level (divided by `2**level`), split into `output_size x output_size` bins, and each
  bin takes the bilinear interpolation of the feature map at one point, offset
  `sample_offset` into the bin (0.5: its center).
- `crop_mask_in_target_box`: crops ground-truth instance masks, given relative to their own
  boxes, into other boxes (the sampled ROIs), giving Mask R-CNN's mask targets.
- `nearest_upsampling`: integer-factor nearest-neighbour upsampling.

Bilinear sampling follows Model Garden's conventions exactly: at a point `(y, x)` of a map
whose last row and column are `last_y` and `last_x`, the lower neighbour is `floor(y)`
clipped into `[0, last_y]` and the upper one the next row, clipped to `last_y`; the weights
are `y - lower` and `1 - (y - lower)`. Points past the last row or column therefore read
the edge value, and points before the first (negative coordinates) extrapolate linearly
from the first two. The last row and column of a level come from that level's own size
(for pyramids whose sizes halve exactly, as FPN's do, that is Model Garden's lowest-level
size divided by the stride). The neighbours are gathered from one flattened tensor of all
levels, so one call crops every box of every image at once, with static output shapes.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

__all__ = [
    "assign_box_levels",
    "crop_mask_in_target_box",
    "multilevel_crop_and_resize",
    "nearest_upsampling",
]

# Added to box sizes before dividing by them.
_EPSILON = 1e-8
# FPN's level assignment: a 224 x 224 box (ImageNet's size) goes to level 4.
_CANONICAL_SIZE = 224.0
_CANONICAL_LEVEL = 4


def _sample_positions(start: tf.Tensor, size: tf.Tensor, output_size: int, sample_offset):
    """Points `start + (i + sample_offset) * size / output_size`, `i < output_size`.

    Args:
      start, size: `[batch, num_boxes]` float32.

    Returns:
      `[batch, num_boxes, output_size]` float32.
    """
    steps = tf.range(output_size, dtype=tf.float32) + float(sample_offset)
    return start[..., None] + steps * size[..., None] / float(output_size)


def _neighbours(positions: tf.Tensor, last: tf.Tensor):
    """The two neighbour indices of each sample position and their bilinear weights.

    Args:
      positions: `[batch, num_boxes, S]` float32 positions along one axis.
      last: `[batch, num_boxes]` float32, the last valid index along that axis.

    Returns:
      `(indices, weights)`, both `[batch, num_boxes, S, 2]`: int32 lower and upper
      neighbours, and their float32 weights.
    """
    last = last[..., None]
    lower = tf.minimum(tf.maximum(tf.floor(positions), 0.0), last)
    upper = tf.minimum(lower + 1.0, last)
    fraction = positions - lower
    indices = tf.cast(tf.stack([lower, upper], axis=-1), tf.int32)
    weights = tf.stack([1.0 - fraction, fraction], axis=-1)
    return indices, weights


def _bilinear_crops(
    flat_values: tf.Tensor,
    base: tf.Tensor,
    row_stride: tf.Tensor,
    y: tf.Tensor,
    x: tf.Tensor,
    last_y: tf.Tensor,
    last_x: tf.Tensor,
) -> tf.Tensor:
    """Bilinear samples on a grid of points per box, by gathering the four neighbours.

    Args:
      flat_values: `[total, channels]`: every map, row-major, one after another.
      base: int32 `[batch, num_boxes]`, the row of `flat_values` holding pixel (0, 0) of
        the map each box samples.
      row_stride: int32 `[batch, num_boxes]`, the width of that map.
      y, x: float32 `[batch, num_boxes, S]` sample rows and columns in map pixels.
      last_y, last_x: float32 `[batch, num_boxes]`: the map's last row and column.

    Returns:
      `[batch, num_boxes, S, S, channels]` in the dtype of `flat_values`.
    """
    rows, row_weights = _neighbours(y, last_y)  # [B, N, S, 2]
    cols, col_weights = _neighbours(x, last_x)
    row_offsets = base[:, :, None, None] + rows * row_stride[:, :, None, None]
    # The four neighbours (top-left, top-right, ...) of every sample, gathered at once as
    # [4, B, N, S, S, C] and summed with their weights over the leading axis: elementwise
    # work along the channels.
    indices = tf.stack(
        [row_offsets[:, :, :, None, i] + cols[:, :, None, :, j] for i in (0, 1) for j in (0, 1)]
    )  # [4, B, N, S, S]
    weights = tf.stack(
        [
            row_weights[:, :, :, None, i] * col_weights[:, :, None, :, j]
            for i in (0, 1)
            for j in (0, 1)
        ]
    )
    values = tf.gather(flat_values, indices)  # [4, B, N, S, S, C]
    crops = tf.reduce_sum(values * tf.cast(weights, values.dtype)[..., None], axis=0)
    return crops


def _level_keys(features: Mapping[str, tf.Tensor]) -> list[int]:
    if not features:
        raise ValueError("multilevel_crop_and_resize needs at least one feature level")
    try:
        levels = sorted(int(level) for level in features)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"feature levels must be integers (as strings), got {sorted(features)}"
        ) from error
    missing = sorted(set(range(levels[0], levels[-1] + 1)) - set(levels))
    if missing:
        raise ValueError(
            f"feature levels must be consecutive; levels {missing} are missing from "
            f"{sorted(features)}"
        )
    return levels


def assign_box_levels(boxes: tf.Tensor, min_level: int, max_level: int) -> tf.Tensor:
    """FPN pyramid level of each box: `floor(log2(sqrt(h * w) / 224)) + 4`, clamped.

    Boxes without area (padding) go to `min_level`.

    Args:
      boxes: `[..., 4]` pixel boxes `[ymin, xmin, ymax, xmax]`.
      min_level, max_level: The levels present.

    Returns:
      int32 `[...]` levels in `[min_level, max_level]`.
    """
    boxes = tf.cast(boxes, tf.float32)
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    safe_area = tf.where(area > 0.0, area, 1.0)
    scale = tf.sqrt(safe_area) / _CANONICAL_SIZE
    level = tf.floor(tf.math.log(scale) / tf.math.log(2.0)) + _CANONICAL_LEVEL
    level = tf.where(area > 0.0, level, float(min_level))
    level = tf.clip_by_value(level, float(min_level), float(max_level))
    return tf.cast(level, tf.int32)


def multilevel_crop_and_resize(
    features: Mapping[str, tf.Tensor],
    boxes: tf.Tensor,
    output_size: int = 7,
    sample_offset: float = 0.5,
) -> tf.Tensor:
    """ROIAlign on a feature pyramid: an `output_size x output_size` crop per box.

    Example:

        features = {"2": p2, "3": p3, "4": p4, "5": p5}  # [batch, H_l, W_l, C], stride 2**l
        crops = multilevel_crop_and_resize(features, rois, output_size=7)
        # [batch, num_rois, 7, 7, C]

    Args:
      features: `{str(level): [batch, height_l, width_l, channels]}` with consecutive
        levels; level `l` has stride `2**l` relative to the image the boxes live in.
      boxes: `[batch, num_boxes, 4]` boxes `[ymin, xmin, ymax, xmax]` in image pixels.
      output_size: The crop size (bins per side).
      sample_offset: Where in each bin the sample lies, in [0, 1] (0.5: the center).

    Returns:
      `[batch, num_boxes, output_size, output_size, channels]`, in the features' dtype.

    Raises:
      ValueError: For missing levels, boxes not `[batch, num_boxes, 4]`, or a bad
        `output_size` / `sample_offset`.
    """
    if int(output_size) != output_size or output_size < 1:
        raise ValueError(f"output_size must be a positive integer, got {output_size!r}")
    if not 0.0 <= sample_offset <= 1.0:
        raise ValueError(f"sample_offset must be in [0, 1], got {sample_offset}")
    output_size = int(output_size)
    levels = _level_keys(features)
    min_level, max_level = levels[0], levels[-1]
    boxes = tf.convert_to_tensor(boxes)
    if boxes.shape.rank != 3 or boxes.shape[-1] not in (None, 4):
        raise ValueError(f"boxes must be [batch, num_boxes, 4], got shape {boxes.shape}")
    with tf.name_scope("multilevel_crop_and_resize"):
        maps = [tf.convert_to_tensor(features[str(level)]) for level in levels]
        dtype = maps[0].dtype
        channels = maps[0].shape[-1]
        batch = tf.shape(maps[0])[0]
        heights = tf.stack([tf.shape(level_map)[1] for level_map in maps])
        widths = tf.stack([tf.shape(level_map)[2] for level_map in maps])
        # [batch, sum of H_l * W_l, C] -> [batch * that, C]: one row per pixel.
        flat = tf.concat(
            [
                tf.reshape(tf.cast(level_map, dtype), [batch, -1, tf.shape(level_map)[3]])
                for level_map in maps
            ],
            axis=1,
        )
        pixels_per_image = tf.shape(flat)[1]
        flat = tf.reshape(flat, [-1, tf.shape(flat)[2]])
        if channels is not None:
            flat.set_shape([None, channels])
        sizes = heights * widths
        level_starts = tf.concat([[0], tf.cumsum(sizes)[:-1]], axis=0)

        boxes = tf.cast(boxes, tf.float32)
        box_levels = assign_box_levels(boxes, min_level, max_level) - min_level  # [B, N]
        scale = tf.pow(2.0, tf.cast(box_levels + min_level, tf.float32))
        ymin, xmin = boxes[..., 0] / scale, boxes[..., 1] / scale
        height = (boxes[..., 2] - boxes[..., 0]) / scale
        width = (boxes[..., 3] - boxes[..., 1]) / scale

        num_boxes = tf.shape(boxes)[1]
        image_index = tf.range(tf.shape(boxes)[0])[:, None] * tf.ones([1, num_boxes], tf.int32)
        base = image_index * pixels_per_image + tf.gather(level_starts, box_levels)
        last_y = tf.cast(tf.gather(heights, box_levels) - 1, tf.float32)
        last_x = tf.cast(tf.gather(widths, box_levels) - 1, tf.float32)
        crops = _bilinear_crops(
            flat,
            base,
            tf.gather(widths, box_levels),
            _sample_positions(ymin, height, output_size, sample_offset),
            _sample_positions(xmin, width, output_size, sample_offset),
            last_y,
            last_x,
        )
        return crops


def _one_hot_weights(indices: tf.Tensor, weights: tf.Tensor, depth) -> tf.Tensor:
    """`[..., S, depth]` interpolation matrices from `[..., S, 2]` neighbours and weights."""
    return tf.reduce_sum(tf.one_hot(indices, depth, dtype=weights.dtype) * weights[..., None], -2)


def crop_mask_in_target_box(
    masks: tf.Tensor,
    boxes: tf.Tensor,
    target_boxes: tf.Tensor,
    output_size: int,
    sample_offset: float = 0.0,
    use_einsum: bool = True,
) -> tf.Tensor:
    """Crops masks, each given relative to its own box, into target boxes.

    Mask `m` covers `boxes[m]` (its pixel grid stretched over the box: rows over the box
    height, columns over its width). The result samples it on an `output_size x
    output_size` grid over `target_boxes[m]` (bilinear, zero outside the mask: it is
    padded with two zero rows and columns on every side first). Mask R-CNN crops
    ground-truth masks into the sampled ROIs this way, giving its mask targets.

    Args:
      masks: `[batch, num_masks, height, width]` masks (cast to float32).
      boxes: `[batch, num_masks, 4]` the boxes the masks cover, in pixels.
      target_boxes: `[batch, num_masks, 4]` the boxes to crop, in the same pixels.
      output_size: The crop size (square).
      sample_offset: Where in each output bin the sample lies, in [0, 1].
      use_einsum: Whether to interpolate with one-hot matrix products (fast on TPUs and
        for small masks) rather than gathers; both give the same values.

    Returns:
      float32 `[batch, num_masks, output_size, output_size]`.

    Raises:
      ValueError: If `masks` is not `[batch, num_masks, height, width]` with a static mask
        size, or for a bad `output_size` / `sample_offset`.
    """
    if int(output_size) != output_size or output_size < 1:
        raise ValueError(f"output_size must be a positive integer, got {output_size!r}")
    if not 0.0 <= sample_offset <= 1.0:
        raise ValueError(f"sample_offset must be in [0, 1], got {sample_offset}")
    output_size = int(output_size)
    masks = tf.convert_to_tensor(masks)
    if masks.shape.rank != 4 or None in masks.shape[2:]:
        raise ValueError(
            f"masks must be [batch, num_masks, height, width] with a static mask size, got "
            f"shape {masks.shape}"
        )
    with tf.name_scope("crop_mask_in_target_box"):
        # float32 throughout: the coordinate transforms overflow float16.
        masks = tf.cast(masks, tf.float32)
        boxes = tf.cast(boxes, tf.float32)
        target_boxes = tf.cast(target_boxes, tf.float32)
        height, width = int(masks.shape[2]), int(masks.shape[3])
        padded = tf.pad(masks, [[0, 0], [0, 0], [2, 2], [2, 2]])
        padded_height, padded_width = height + 4, width + 4

        # Target boxes in padded-mask pixels.
        box_height = boxes[..., 2] - boxes[..., 0] + _EPSILON
        box_width = boxes[..., 3] - boxes[..., 1] + _EPSILON
        start_y = (target_boxes[..., 0] - boxes[..., 0]) * height / box_height + 2.0
        start_x = (target_boxes[..., 1] - boxes[..., 1]) * width / box_width + 2.0
        size_y = (target_boxes[..., 2] - target_boxes[..., 0]) * height / box_height
        size_x = (target_boxes[..., 3] - target_boxes[..., 1]) * width / box_width
        y = _sample_positions(start_y, size_y, output_size, sample_offset)
        x = _sample_positions(start_x, size_x, output_size, sample_offset)
        last_y = tf.fill(tf.shape(start_y), float(padded_height - 1))
        last_x = tf.fill(tf.shape(start_x), float(padded_width - 1))

        if use_einsum:
            rows, row_weights = _neighbours(y, last_y)
            cols, col_weights = _neighbours(x, last_x)
            row_matrix = _one_hot_weights(rows, row_weights, padded_height)  # [B, M, S, H]
            col_matrix = _one_hot_weights(cols, col_weights, padded_width)  # [B, M, S, W]
            return tf.einsum("bmhw,bmyh,bmxw->bmyx", padded, row_matrix, col_matrix)

        shape = tf.shape(masks)
        batch, num_masks = shape[0], shape[1]
        flat = tf.reshape(padded, [-1, 1])
        mask_index = tf.reshape(tf.range(batch * num_masks), [batch, num_masks])
        base = mask_index * (padded_height * padded_width)
        stride = tf.fill([batch, num_masks], padded_width)
        crops = _bilinear_crops(flat, base, stride, y, x, last_y, last_x)
        return crops[..., 0]


def nearest_upsampling(data: tf.Tensor, scale: int, use_keras_layer: bool = False) -> tf.Tensor:
    """Upsamples `[batch, height, width, channels]` by an integer factor (nearest neighbour).

    Output pixel `(y, x)` is input pixel `(y // scale, x // scale)`.

    Args:
      data: `[batch, height, width, channels]`.
      scale: The integer factor (>= 1).
      use_keras_layer: Whether to run `keras.layers.UpSampling2D` instead of a reshape and
        broadcast (same values).

    Returns:
      `[batch, height * scale, width * scale, channels]` in the dtype of `data`.

    Raises:
      ValueError: If `scale` is not a positive integer or `data` is not rank 4.
    """
    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise ValueError(f"nearest_upsampling scale must be a positive integer, got {scale!r}")
    scale = int(scale)
    data = tf.convert_to_tensor(data)
    if data.shape.rank != 4:
        raise ValueError(
            f"nearest_upsampling data must be [batch, height, width, channels], got shape "
            f"{data.shape}"
        )
    if use_keras_layer:
        return keras.layers.UpSampling2D(size=(scale, scale), interpolation="nearest")(data)
    with tf.name_scope("nearest_upsampling"):
        shape = tf.shape(data)
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
        tiled = tf.broadcast_to(
            data[:, :, None, :, None, :], [batch, height, scale, width, scale, channels]
        )
        upsampled = tf.reshape(tiled, [batch, height * scale, width * scale, channels])
        static = data.shape
        upsampled.set_shape(
            [
                static[0],
                None if static[1] is None else static[1] * scale,
                None if static[2] is None else static[2] * scale,
                static[3],
            ]
        )
        return upsampled
