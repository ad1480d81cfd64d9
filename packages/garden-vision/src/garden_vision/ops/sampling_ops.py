"""Balanced positive/negative minibatch sampling (Model Garden's `ops.sampling_ops`).

Two-stage detectors train their second stage on a fixed number of proposals per image with
a bounded share of positives: `BalancedPositiveNegativeSampler` picks up to
`positive_fraction * batch_size` positives at random among the candidates, fills the rest
of the `batch_size` with random negatives, and returns fewer only when there are not
enough candidates. Model Garden's class came from the TensorFlow Object Detection API; its
interface (`subsample(indicator, batch_size, labels)` returning a boolean selection) is kept.

The selection here is one random permutation per row followed by running counts, so it
runs on fixed shapes (no `tf.where` with data-dependent sizes) for any `is_static`, on a
single `[N]` vector (`subsample`) or on a batch of rows at once (`subsample_batch`, which
`BoxSampler` uses, also with an unknown batch size). With `is_static=True`, as in Model
Garden, images with fewer than `batch_size` candidates first take extra non-candidate
entries (lowest indices first, with their labels) so that `batch_size` entries are chosen
whenever the labels allow.

The small tensor helpers of Model Garden's module are here too:
`combined_static_and_dynamic_shape`, `indices_to_dense_vector` and
`matmul_gather_on_zeroth_axis`.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = [
    "BalancedPositiveNegativeSampler",
    "combined_static_and_dynamic_shape",
    "indices_to_dense_vector",
    "matmul_gather_on_zeroth_axis",
]


def combined_static_and_dynamic_shape(tensor: tf.Tensor) -> list:
    """The shape of `tensor` as a list: static sizes as ints, unknown ones as scalar tensors."""
    tensor = tf.convert_to_tensor(tensor)
    dynamic = tf.shape(tensor)
    return [dynamic[i] if size is None else size for i, size in enumerate(tensor.shape.as_list())]


def indices_to_dense_vector(
    indices: tf.Tensor,
    size,
    indices_value: float = 1.0,
    default_value: float = 0.0,
    dtype: tf.DType = tf.float32,
) -> tf.Tensor:
    """A `[size]` vector holding `indices_value` at `indices` and `default_value` elsewhere.

    Args:
      indices: 1-D integer indices in `[0, size)` (repeats allowed, in any order).
      size: The vector length (an int or a scalar tensor).
      indices_value: The value written at `indices`.
      default_value: The value everywhere else.
      dtype: The result dtype.
    """
    indices = tf.reshape(tf.cast(indices, tf.int32), [-1, 1])
    dense = tf.fill(tf.reshape(tf.cast(size, tf.int32), [1]), tf.cast(default_value, dtype))
    updates = tf.fill(tf.shape(indices)[:1], tf.cast(indices_value, dtype))
    return tf.tensor_scatter_nd_update(dense, indices, updates)


def matmul_gather_on_zeroth_axis(params: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """`tf.gather(params, indices)` computed as a one-hot matrix product (TPU friendly).

    Args:
      params: float `[P, ...]`.
      indices: integer indices into the first axis, any shape.

    Returns:
      `indices.shape + params.shape[1:]`, in the dtype of `params`.
    """
    params = tf.convert_to_tensor(params)
    indices = tf.convert_to_tensor(indices)
    params_shape = combined_static_and_dynamic_shape(params)
    indices_shape = combined_static_and_dynamic_shape(indices)
    flat_params = tf.reshape(params, [params_shape[0], -1])
    one_hot = tf.one_hot(tf.reshape(indices, [-1]), params_shape[0], dtype=params.dtype)
    gathered = tf.matmul(one_hot, flat_params)
    return tf.reshape(gathered, tf.stack(indices_shape + params_shape[1:]))


def _first_in_order(selectable: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """Keeps the first `counts[b]` True entries of each row of `selectable` `[B, N]`."""
    running = tf.cumsum(tf.cast(selectable, tf.int32), axis=-1)
    return selectable & (running <= counts[:, None])


def _random_subsets(
    positives: tf.Tensor, negatives: tf.Tensor, num_positives: tf.Tensor, num_negatives: tf.Tensor
) -> tf.Tensor:
    """Per row, `num_positives` random positives and `num_negatives` random negatives.

    Args:
      positives, negatives: bool `[B, N]`, disjoint.
      num_positives, num_negatives: int32 `[B]` counts (capped by what each row holds).

    Returns:
      bool `[B, N]`: the chosen entries.
    """
    # One uniformly random permutation per row; the first entries in it are taken.
    order = tf.argsort(tf.random.uniform(tf.shape(positives)), axis=-1)
    chosen = _first_in_order(
        tf.gather(positives, order, batch_dims=1), num_positives
    ) | _first_in_order(tf.gather(negatives, order, batch_dims=1), num_negatives)
    return tf.gather(chosen, tf.argsort(order, axis=-1), batch_dims=1)


def _count(mask: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(mask, tf.int32), axis=-1)


class BalancedPositiveNegativeSampler:
    """Subsamples candidates to a batch with at most a given fraction of positives.

    Example:

        sampler = BalancedPositiveNegativeSampler(positive_fraction=0.25, is_static=True)
        chosen = sampler.subsample(candidates, 512, is_positive)  # bool [N]

    Args:
      positive_fraction: The largest share of positives in a batch, in [0, 1].
      is_static: Whether a batch is filled to `batch_size` with non-candidate entries when
        there are too few candidates (Model Garden's static-shape mode; `batch_size` must
        then be an int).

    Raises:
      ValueError: If `positive_fraction` is outside [0, 1].
    """

    def __init__(self, positive_fraction: float = 0.5, is_static: bool = False):
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        self._positive_fraction = float(positive_fraction)
        self._is_static = bool(is_static)

    @property
    def positive_fraction(self) -> float:
        return self._positive_fraction

    @property
    def is_static(self) -> bool:
        return self._is_static

    @staticmethod
    def subsample_indicator(indicator: tf.Tensor, num_samples) -> tf.Tensor:
        """Keeps `num_samples` random True entries of a bool `[N]` vector (all if fewer)."""
        indicator = tf.convert_to_tensor(indicator)
        _check_vector(indicator, "indicator")
        counts = tf.reshape(tf.cast(num_samples, tf.int32), [1])
        nothing = tf.zeros_like(indicator)[None]
        return _random_subsets(indicator[None], nothing, counts, tf.zeros_like(counts))[0]

    def subsample(
        self, indicator: tf.Tensor, batch_size: int | None, labels: tf.Tensor, scope=None
    ) -> tf.Tensor:
        """Chooses a balanced batch among the candidates of one vector.

        Args:
          indicator: bool `[N]`: the entries that may be chosen.
          batch_size: How many to choose. None (only with `is_static=False`) keeps every
            positive and adds `(1 - f) / f` times as many negatives, `f` being
            `positive_fraction`.
          labels: bool `[N]`: True for positives.
          scope: Optional name scope.

        Returns:
          bool `[N]`: True for the chosen entries.

        Raises:
          ValueError: For inputs that are not bool vectors, or a `batch_size` the mode
            does not accept.
        """
        indicator = tf.convert_to_tensor(indicator)
        labels = tf.convert_to_tensor(labels)
        _check_vector(indicator, "indicator")
        _check_vector(labels, "labels")
        with tf.name_scope(scope or "BalancedPositiveNegativeSampler"):
            return self.subsample_batch(indicator[None], batch_size, labels[None])[0]

    def subsample_batch(
        self, indicator: tf.Tensor, batch_size: int | None, labels: tf.Tensor
    ) -> tf.Tensor:
        """`subsample` for every row of bool `[batch, N]` inputs at once (independent rows).

        Returns:
          bool `[batch, N]`.
        """
        indicator = tf.convert_to_tensor(indicator)
        labels = tf.convert_to_tensor(labels)
        for name, value in (("indicator", indicator), ("labels", labels)):
            if value.dtype != tf.bool:
                raise ValueError(f"{name} must be a bool tensor, got {value.dtype.name}")
            if value.shape.rank != 2:
                raise ValueError(f"{name} must be [batch, N], got shape {value.shape}")
        if batch_size is None:
            if self._is_static:
                raise ValueError("batch_size must be an int when is_static is True, got None")
            if self._positive_fraction == 0.0:
                raise ValueError("batch_size=None needs a positive_fraction above 0, got 0")
        elif isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 0:
            raise ValueError(f"batch_size must be a non-negative integer, got {batch_size!r}")
        else:
            batch_size = int(batch_size)

        if self._is_static:
            # Too few candidates: the first non-candidates join, so that `batch_size`
            # entries can be chosen.
            shortfall = batch_size - _count(indicator)
            others = tf.logical_not(indicator)
            indicator = indicator | _first_in_order(others, shortfall)
        positives = indicator & labels
        negatives = indicator & tf.logical_not(labels)
        num_available = _count(positives)
        if batch_size is None:
            num_positives = num_available
            ratio = (1.0 - self._positive_fraction) / self._positive_fraction
            num_negatives = tf.cast(ratio * tf.cast(num_positives, tf.float32), tf.int32)
        else:
            cap = int(batch_size * self._positive_fraction)
            num_positives = tf.minimum(num_available, cap)
            num_negatives = batch_size - num_positives
        return _random_subsets(positives, negatives, num_positives, num_negatives)


def _check_vector(value: tf.Tensor, name: str) -> None:
    if value.dtype != tf.bool:
        raise ValueError(f"{name} must be a bool tensor, got {value.dtype.name}")
    if value.shape.rank != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {value.shape}")
