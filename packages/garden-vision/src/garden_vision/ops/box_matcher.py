"""Threshold matcher turning a similarity matrix into matches (Model Garden's `box_matcher`).

Each row (an anchor or a proposal) is matched to the column (ground-truth box) it is most
similar to, and labelled by where that best similarity falls among sorted thresholds.
RetinaNet uses `thresholds=[unmatched, matched], indicators=[-1, -2, 1]` (negative, ignored,
positive); Faster R-CNN's proposal sampler uses three thresholds and four indicators.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

__all__ = ["BoxMatcher"]


class BoxMatcher:
    """Matches each row of a similarity matrix to its most similar column.

    With `thresholds=[t_1, ..., t_k]` (sorted) and `indicators=[v_0, ..., v_k]`, a row whose
    best similarity `s` satisfies `t_i <= s < t_{i+1}` (with `t_0 = -inf`, `t_{k+1} = +inf`)
    gets indicator `v_i`. For example `thresholds=[0.4, 0.5], indicators=[-1, -2, 1]` marks
    rows below 0.4 negative (-1), rows in [0.4, 0.5) ignored (-2) and the rest positive (1).

    With `force_match_for_each_col`, every column is also matched to its most similar row
    (the lowest column index wins when columns pick the same row), which then gets
    `indicators[-1]`: each ground-truth box gets at least one anchor however low its best
    IoU. Columns whose best similarity is negative (padding masked by `IouSimilarity`) are
    never forced.

    When there are no columns at all (an image without ground truth) every row is matched
    to column 0 with indicator -1, Model Garden's negative marker.

    Args:
      thresholds: Sorted thresholds.
      indicators: `len(thresholds) + 1` integer labels, one per interval.
      force_match_for_each_col: Whether to force a match for every column.

    Raises:
      ValueError: If `thresholds` is not sorted or `indicators` has the wrong length.
    """

    def __init__(
        self,
        thresholds: Sequence[float],
        indicators: Sequence[int],
        force_match_for_each_col: bool = False,
    ):
        thresholds = [float(value) for value in thresholds]
        if any(low > high for low, high in zip(thresholds, thresholds[1:], strict=False)):
            raise ValueError(f"BoxMatcher thresholds must be sorted, got {thresholds}")
        if len(indicators) != len(thresholds) + 1:
            raise ValueError(
                "BoxMatcher needs len(indicators) == len(thresholds) + 1, got indicators "
                f"{list(indicators)} for thresholds {thresholds}"
            )
        self.indicators = [int(value) for value in indicators]
        self.thresholds = [-float("inf"), *thresholds, float("inf")]
        self._force_match_for_each_col = force_match_for_each_col

    def __call__(
        self, similarity_matrix: tf.Tensor, transposed: bool = False
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Matches rows to columns.

        Args:
          similarity_matrix: `[num_rows, num_cols]` or `[batch, num_rows, num_cols]`; with
            `transposed`, `[num_cols, num_rows]` or `[batch, num_cols, num_rows]`.
          transposed: Whether the matrix holds one row per column (ground-truth box). With
            few columns and many rows (a handful of boxes against tens of thousands of
            anchors) that layout is several times faster to compute and to match, because
            every elementwise operation then runs along the long axis.

        Returns:
          `(matched_columns, match_indicators)`, both int32 `[num_rows]` or
          `[batch, num_rows]`: the best column of each row and its indicator.
        """
        similarity = tf.convert_to_tensor(similarity_matrix)
        rank = similarity.shape.rank
        if rank not in (2, 3):
            layout = "[cols, rows]" if transposed else "[rows, cols]"
            raise ValueError(
                f"similarity_matrix must be {layout} or [batch, {layout[1:]}, got shape "
                f"{similarity.shape}"
            )
        if rank == 2:
            similarity = similarity[None]
        if not transposed:
            similarity = tf.transpose(similarity, [0, 2, 1])
        # [batch, cols, rows] from here on. An image without columns gets one column of
        # -inf: every row falls below every threshold, and is then labelled -1 below.
        shape = tf.shape(similarity)
        num_cols = shape[1]
        padded = tf.cond(
            num_cols > 0,
            lambda: similarity,
            lambda: tf.fill([shape[0], 1, shape[2]], similarity.dtype.min),
        )
        padded.set_shape([similarity.shape[0], None, similarity.shape[2]])
        matched_columns, indicators = self._match(padded)
        indicators = tf.where(num_cols > 0, indicators, -tf.ones_like(indicators))
        if rank == 2:
            return matched_columns[0], indicators[0]
        return matched_columns, indicators

    def _match(self, similarity: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Matches a `[batch, cols, rows]` similarity; see `__call__`."""
        matched_columns = tf.argmax(similarity, axis=1, output_type=tf.int32)
        matched_values = tf.reduce_max(similarity, axis=1)
        indicators = tf.zeros_like(matched_columns)
        for indicator, low, high in zip(
            self.indicators, self.thresholds[:-1], self.thresholds[1:], strict=True
        ):
            inside = (matched_values >= tf.cast(low, similarity.dtype)) & (
                matched_values < tf.cast(high, similarity.dtype)
            )
            indicators = tf.where(inside, tf.constant(indicator, tf.int32), indicators)
        if not self._force_match_for_each_col:
            return matched_columns, indicators
        shape = tf.shape(similarity)
        batch, num_cols, num_rows = shape[0], shape[1], shape[2]
        # [batch, cols]: the best row of each column, and whether the column is real.
        best_rows = tf.argmax(similarity, axis=2, output_type=tf.int32)
        real_columns = tf.reduce_max(similarity, axis=2) >= 0.0
        # Each real column claims its best row; where several claim the same row the lowest
        # column index wins (a scatter-min), and `num_cols` marks rows nobody claimed.
        columns = tf.broadcast_to(tf.range(num_cols)[None, :], [batch, num_cols])
        claims = tf.where(real_columns, columns, num_cols)
        images = tf.broadcast_to(tf.range(batch)[:, None], [batch, num_cols])
        forced_columns = tf.tensor_scatter_nd_min(
            tf.fill([batch, num_rows], num_cols),
            tf.stack([images, best_rows], axis=-1),
            claims,
        )
        forced = forced_columns < num_cols
        matched_columns = tf.where(forced, forced_columns, matched_columns)
        indicators = tf.where(forced, tf.constant(self.indicators[-1], tf.int32), indicators)
        return matched_columns, indicators
