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

    def __call__(self, similarity_matrix: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Matches rows to columns.

        Args:
          similarity_matrix: `[num_rows, num_cols]` or `[batch, num_rows, num_cols]`.

        Returns:
          `(matched_columns, match_indicators)`, both int32 `[num_rows]` or
          `[batch, num_rows]`: the best column of each row and its indicator.
        """
        similarity = tf.convert_to_tensor(similarity_matrix)
        rank = similarity.shape.rank
        if rank not in (2, 3):
            raise ValueError(
                "similarity_matrix must be [rows, cols] or [batch, rows, cols], got shape "
                f"{similarity.shape}"
            )
        if rank == 2:
            similarity = similarity[None]
        # An image without columns gets one column of -inf: every row falls below every
        # threshold, and is then labelled -1 below.
        num_cols = tf.shape(similarity)[2]
        padded = tf.pad(
            similarity,
            [[0, 0], [0, 0], [0, tf.maximum(1 - num_cols, 0)]],
            constant_values=similarity.dtype.min,
        )
        matched_columns, indicators = self._match(padded)
        indicators = tf.where(num_cols > 0, indicators, -tf.ones_like(indicators))
        if rank == 2:
            return matched_columns[0], indicators[0]
        return matched_columns, indicators

    def _match(self, similarity: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        matched_columns = tf.argmax(similarity, axis=-1, output_type=tf.int32)
        matched_values = tf.reduce_max(similarity, axis=-1)
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
        num_rows = tf.shape(similarity)[1]
        # [batch, cols]: the best row of each column, and whether the column is real.
        best_rows = tf.argmax(similarity, axis=1, output_type=tf.int32)
        real_columns = tf.reduce_max(similarity, axis=1) >= 0.0
        # [batch, cols, rows]: column j claims row i.
        claims = tf.one_hot(best_rows, num_rows, dtype=tf.int32) * tf.cast(
            real_columns[..., None], tf.int32
        )
        forced = tf.reduce_max(claims, axis=1) > 0
        forced_columns = tf.argmax(claims, axis=1, output_type=tf.int32)
        matched_columns = tf.where(forced, forced_columns, matched_columns)
        indicators = tf.where(forced, tf.constant(self.indicators[-1], tf.int32), indicators)
        return matched_columns, indicators
