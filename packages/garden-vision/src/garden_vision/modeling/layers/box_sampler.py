"""Balanced sampling of matched boxes (Model Garden's `modeling.layers.BoxSampler`).

`BoxSampler` turns per-box match flags (positive, negative, ignored) into the indices of a
fixed number of boxes per image, at most `foreground_fraction` of them positive, chosen at
random by `ops.sampling_ops.BalancedPositiveNegativeSampler` in its static mode.
`ROISampler` uses it to pick the proposals Faster R-CNN's second stage trains on.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_vision.ops import sampling_ops

__all__ = ["BoxSampler"]


@keras.saving.register_keras_serializable(package="garden_vision")
class BoxSampler(keras.layers.Layer):
    """Samples `num_samples` box indices per image, balancing positives and negatives.

    Example:

        sampler = BoxSampler(num_samples=512, foreground_fraction=0.25)
        indices = sampler(positive, negative, ignored)  # int32 [batch, 512]

    Args:
      num_samples: How many boxes to sample per image.
      foreground_fraction: The largest share of positives among them, in [0, 1].
      **kwargs: Layer arguments (`name`, ...).

    Raises:
      ValueError: For a non-positive `num_samples` or a fraction outside [0, 1].
    """

    def __init__(self, num_samples: int = 512, foreground_fraction: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        if not 0.0 <= foreground_fraction <= 1.0:
            raise ValueError(f"foreground_fraction must be in [0, 1], got {foreground_fraction}")
        self.num_samples = int(num_samples)
        self.foreground_fraction = float(foreground_fraction)
        self._sampler = sampling_ops.BalancedPositiveNegativeSampler(
            positive_fraction=self.foreground_fraction, is_static=True
        )
        self.built = True  # No weights.

    def call(
        self, positive_matches: tf.Tensor, negative_matches: tf.Tensor, ignored_matches: tf.Tensor
    ) -> tf.Tensor:
        """Samples boxes.

        Args:
          positive_matches: bool `[batch, N]`: True for positive boxes.
          negative_matches: bool `[batch, N]`: True for negative boxes.
          ignored_matches: bool `[batch, N]`: True for boxes never sampled as candidates.

        Returns:
          int32 `[batch, num_samples]` indices into the N boxes: the sampled boxes in
          increasing index order, then (only when an image has fewer than `num_samples`
          usable boxes) the lowest unsampled indices.

        Raises:
          ValueError: If a statically known N is below `num_samples`.
        """
        positive_matches = tf.cast(positive_matches, tf.bool)
        negative_matches = tf.cast(negative_matches, tf.bool)
        ignored_matches = tf.cast(ignored_matches, tf.bool)
        num_boxes = positive_matches.shape[-1]
        if num_boxes is not None and num_boxes < self.num_samples:
            raise ValueError(
                f"BoxSampler needs at least num_samples={self.num_samples} boxes per image, "
                f"got {num_boxes}"
            )
        candidates = (positive_matches | negative_matches) & tf.logical_not(ignored_matches)
        sampled = self._sampler.subsample_batch(candidates, self.num_samples, positive_matches)
        # top_k keeps the lower index first among equal values: sampled boxes in index
        # order, then unsampled ones.
        _, indices = tf.math.top_k(tf.cast(sampled, tf.int32), k=self.num_samples, sorted=True)
        return indices

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"num_samples": self.num_samples, "foreground_fraction": self.foreground_fraction}
        )
        return config
