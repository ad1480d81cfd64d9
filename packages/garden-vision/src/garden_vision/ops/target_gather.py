"""Gathers per-anchor training targets from matched ground truth (Model Garden's
`target_gather`).

After `BoxMatcher` has given every anchor (or proposal) the index of its ground-truth box,
`TargetGather` picks that box's label, coordinates or attributes for each anchor, and writes
a fill value where a mask says the anchor is not positive. An image without ground truth
yields the fill value everywhere.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["TargetGather"]


class TargetGather:
    """Gathers targets `labels[match_indices]`, replacing masked entries by `mask_val`."""

    def __call__(
        self,
        labels: tf.Tensor,
        match_indices: tf.Tensor,
        mask: tf.Tensor | None = None,
        mask_val: float = 0.0,
    ) -> tf.Tensor:
        """Gathers targets.

        Args:
          labels: Ground truth `[N]`, `[N, dims]` or batched `[batch, N, dims]`.
          match_indices: int `[M]` (or `[batch, M]`): the ground-truth index of each anchor.
          mask: Optional bool, shaped like the result (`[M]`, `[M, dims]` or
            `[batch, M, dims]`) or broadcastable to it: True entries become `mask_val`.
          mask_val: The fill value for masked entries and for images without ground truth.

        Returns:
          Targets `[M]`, `[M, dims]` or `[batch, M, dims]` in the dtype of `labels`.

        Raises:
          ValueError: If `labels` has rank above 3.
        """
        labels = tf.convert_to_tensor(labels)
        match_indices = tf.convert_to_tensor(match_indices)
        rank = labels.shape.rank
        if rank is None or rank > 3:
            raise ValueError(f"TargetGather takes labels of rank 1 to 3, got shape {labels.shape}")
        batched = rank == 3
        fill = tf.cast(mask_val, labels.dtype)
        # One extra row of `mask_val` after the real ones: indices into an empty label set
        # (all 0) then read it instead of failing.
        axis = 1 if batched else 0
        extra_shape = tf.tensor_scatter_nd_update(tf.shape(labels), [[axis]], [1])
        padded = tf.concat([labels, tf.fill(extra_shape, fill)], axis=axis)
        num_labels = tf.shape(labels)[axis]
        indices = tf.where(num_labels > 0, match_indices, tf.zeros_like(match_indices))
        if batched:
            targets = tf.gather(padded, indices, axis=1, batch_dims=1)
        else:
            targets = tf.gather(padded, indices)
        if mask is None:
            return targets
        mask = tf.broadcast_to(tf.cast(mask, tf.bool), tf.shape(targets))
        return tf.where(mask, fill, targets)
