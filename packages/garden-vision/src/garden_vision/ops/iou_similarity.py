"""Pairwise IoU between two box sets, with padding masks (Model Garden's `iou_similarity`).

`IouSimilarity` builds the similarity matrix that `BoxMatcher` turns into matches: one row
per box of the first set (anchors, proposals), one column per box of the second (ground
truth). Rows or columns flagged by a boolean mask (padding) get `mask_val` instead of an IoU,
so a matcher never picks them.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["IouSimilarity", "area", "intersection", "iou"]


def area(boxes: tf.Tensor) -> tf.Tensor:
    """Areas `[N]` or `[batch, N]` of `[N, 4]` or `[batch, N, 4]` yxyx boxes."""
    boxes = tf.convert_to_tensor(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def intersection(boxes_1: tf.Tensor, boxes_2: tf.Tensor) -> tf.Tensor:
    """Pairwise intersection areas `[N, M]` (or `[batch, N, M]`) of two box sets.

    Args:
      boxes_1: `[N, 4]` or `[batch, N, 4]`.
      boxes_2: `[M, 4]` or `[batch, M, 4]` (batched only if `boxes_1` is).
    """
    ymin1, xmin1, ymax1, xmax1 = (boxes_1[..., i : i + 1] for i in range(4))
    ymin2, xmin2, ymax2, xmax2 = (boxes_2[..., None, :, i] for i in range(4))
    heights = tf.minimum(ymax1, ymax2) - tf.maximum(ymin1, ymin2)
    widths = tf.minimum(xmax1, xmax2) - tf.maximum(xmin1, xmin2)
    return tf.maximum(heights, 0.0) * tf.maximum(widths, 0.0)


def iou(boxes_1: tf.Tensor, boxes_2: tf.Tensor) -> tf.Tensor:
    """Pairwise IoU `[N, M]` (or `[batch, N, M]`); 0 wherever boxes do not intersect."""
    intersections = intersection(boxes_1, boxes_2)
    unions = area(boxes_1)[..., :, None] + area(boxes_2)[..., None, :] - intersections
    # Boxes that do not intersect have an intersection of 0, hence an IoU of 0, and
    # `divide_no_nan` gives 0 for an empty union (padding), so no masking pass is needed.
    return tf.math.divide_no_nan(intersections, unions)


class IouSimilarity:
    """Computes the IoU similarity matrix between two box sets, masking padding.

    Example:

        similarity = IouSimilarity()(anchors, gt_boxes, boxes_2_masks=gt_is_padding)
        # [num_anchors, num_gt]; padded ground-truth columns are -1.

    Args:
      mask_val: The value written where a mask is True (default -1, below every IoU).
    """

    def __init__(self, mask_val: float = -1):
        self.mask_val = mask_val

    def __call__(
        self,
        boxes_1: tf.Tensor,
        boxes_2: tf.Tensor,
        boxes_1_masks: tf.Tensor | None = None,
        boxes_2_masks: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """Returns the similarity `[N, M]` or `[batch, N, M]` as float32.

        Args:
          boxes_1: `[N, 4]` or `[batch, N, 4]` boxes (one row each, e.g. anchors).
          boxes_2: `[M, 4]` or `[batch, M, 4]` boxes (one column each, e.g. ground truth);
            batched only if `boxes_1` is.
          boxes_1_masks: Optional bool `[N, 1]` / `[batch, N, 1]`: True rows become
            `mask_val`.
          boxes_2_masks: Optional bool `[M, 1]` / `[batch, M, 1]`: True columns become
            `mask_val`.

        Raises:
          ValueError: For ranks other than 2 or 3, or batched `boxes_2` with unbatched
            `boxes_1`.
        """
        boxes_1 = tf.cast(boxes_1, tf.float32)
        boxes_2 = tf.cast(boxes_2, tf.float32)
        rank_1, rank_2 = boxes_1.shape.rank, boxes_2.shape.rank
        if rank_1 not in (2, 3):
            raise ValueError(f"boxes_1 must be [N, 4] or [batch, N, 4], got {boxes_1.shape}")
        if rank_2 not in (2, 3):
            raise ValueError(f"boxes_2 must be [M, 4] or [batch, M, 4], got {boxes_2.shape}")
        if rank_1 < rank_2:
            raise ValueError(
                f"boxes_2 is batched ({boxes_2.shape}) but boxes_1 is not ({boxes_1.shape})"
            )
        result = iou(boxes_1, boxes_2)
        mask = None
        if boxes_1_masks is not None:
            mask = tf.broadcast_to(tf.cast(boxes_1_masks, tf.bool), tf.shape(result))
        if boxes_2_masks is not None:
            column_mask = tf.cast(boxes_2_masks, tf.bool)[..., 0][..., None, :]
            column_mask = tf.broadcast_to(column_mask, tf.shape(result))
            mask = column_mask if mask is None else mask | column_mask
        if mask is None:
            return result
        return tf.where(mask, tf.cast(self.mask_val, result.dtype) * tf.ones_like(result), result)
