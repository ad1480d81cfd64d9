"""Metric helpers shared by the single-task trainer and evaluator.

The trainer and evaluator accept metric objects from the user (typically Keras 3 metrics)
and use them only through `update_state(target, output)`, `result()` and `reset_state()`
(or `reset_states()`, the older Keras 2 name). The running mean of the training loss is
kept here in plain `tf.Variable`s, so that nothing in these examples imports Keras.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from garden_orbit._tensorflow import tf


class RunningMean(tf.Module):
    """The mean of all values seen since the last reset, safe to update on every replica.

    It keeps a total and a count in `tf.Variable`s that synchronize on read with `SUM`
    aggregation (as Keras metrics do): inside `strategy.run` each replica adds to its own
    copy, and reading the result in cross-replica context sums the copies, so the result is
    the mean over all replicas. Create it inside the strategy's scope.

    It offers the part of the Keras metric interface that the trainer uses: `name`,
    `update_state`, `result`, `reset_state` (and its alias `reset_states`). Being a
    `tf.Module`, it can be put in a `tf.train.Checkpoint`.
    """

    def __init__(self, name: str, dtype: tf.DType = tf.float32):
        """Creates the variables of the mean, under the current distribution strategy.

        Args:
          name: The name results are reported under, e.g. "training_loss".
          dtype: The dtype of the total, the count and the result.
        """
        super().__init__(name=name)
        self._dtype = tf.as_dtype(dtype)
        variable_args = {
            "dtype": self._dtype,
            "trainable": False,
            "synchronization": tf.VariableSynchronization.ON_READ,
            "aggregation": tf.VariableAggregation.SUM,
        }
        with self.name_scope:
            self.total = tf.Variable(0.0, name="total", **variable_args)
            self.count = tf.Variable(0.0, name="count", **variable_args)

    def update_state(self, values: Any) -> None:
        """Adds every element of `values` to the mean.

        Args:
          values: A tensor (usually a scalar such as a batch loss); each element counts once.
        """
        values = tf.cast(values, self._dtype)
        self.total.assign_add(tf.reduce_sum(values))
        self.count.assign_add(tf.cast(tf.size(values), self._dtype))

    def result(self) -> tf.Tensor:
        """Returns the mean of the values seen since the last reset (0 before any value)."""
        return tf.math.divide_no_nan(
            tf.convert_to_tensor(self.total), tf.convert_to_tensor(self.count)
        )

    def reset_state(self) -> None:
        """Forgets all values seen so far."""
        self.total.assign(tf.zeros([], self._dtype))
        self.count.assign(tf.zeros([], self._dtype))

    def reset_states(self) -> None:
        """Same as `reset_state` (the Keras 2 name)."""
        self.reset_state()


def as_metric_list(metrics: Any | Sequence[Any] | None) -> list[Any]:
    """Returns `metrics` as a list: None gives [], a single metric gives [metric].

    Args:
      metrics: None, one metric object, or a list or tuple of metric objects.

    Returns:
      A new list of the metric objects.
    """
    if metrics is None:
        return []
    if isinstance(metrics, (list, tuple)):
        return list(metrics)
    return [metrics]


def reset_metric(metric: Any) -> None:
    """Resets a metric with `reset_state()` (Keras 3) or else `reset_states()` (Keras 2).

    Args:
      metric: The metric object to reset.

    Raises:
      TypeError: If the object has neither method.
    """
    reset = getattr(metric, "reset_state", None)
    if reset is None:
        reset = getattr(metric, "reset_states", None)
    if reset is None:
        raise TypeError(
            f"Metric {metric!r} has neither `reset_state()` nor `reset_states()`; metrics must "
            "offer `update_state(target, output)`, `result()` and `reset_state()`."
        )
    reset()


def metric_results(metrics: Sequence[Any]) -> dict[str, Any]:
    """Returns `{metric.name: metric.result()}` for each metric, in order.

    Args:
      metrics: Metric objects with a `name` attribute and a `result()` method.

    Returns:
      A dict from metric name to result; a later metric with the same name wins.
    """
    return {metric.name: metric.result() for metric in metrics}
