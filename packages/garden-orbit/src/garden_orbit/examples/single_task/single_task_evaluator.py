"""An evaluator for models with a single output, evaluated on a single dataset.

`SingleTaskEvaluator` is the garden-orbit counterpart of Orbit's
`orbit.examples.single_task.single_task_evaluator.SingleTaskEvaluator`: it runs a model on
a dataset of string-keyed dicts, feeds `(label, output)` to its metrics, and reports each
metric's result under the metric's name. Use it with a `garden_orbit.Controller`, alone or
beside a `SingleTaskTrainer`. This module does not import Keras.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import garden_orbit
from garden_orbit._tensorflow import tf
from garden_orbit.examples.single_task import _metrics


class SingleTaskEvaluator(garden_orbit.StandardEvaluator):
    """Evaluates a model with a single output on a dataset of dicts.

    Each evaluation resets the metrics, then for each batch removes the label under
    `label_key`, runs the model on the remaining dict, and calls
    `metric.update_state(label, output)` for each metric; it returns
    `{metric.name: metric.result()}`.

    Attributes:
      label_key: The key of the label in each batch.
      model: The model being evaluated.
      metrics: The list of metrics reported.
      strategy: The distribution strategy in scope when the evaluator was created.
    """

    def __init__(
        self,
        eval_dataset: Any,
        label_key: str,
        model: Any,
        metrics: Any | Sequence[Any],
        evaluator_options: garden_orbit.StandardEvaluatorOptions | None = None,
    ):
        """Initializes the evaluator.

        To evaluate under a distribution strategy, create the metrics and this evaluator
        inside the strategy's scope and pass a distributed dataset.

        Args:
          eval_dataset: A `tf.data.Dataset` or distributed dataset whose elements are
            string-keyed dicts of tensors, one of which is the label.
          label_key: The key of the label in each element. The label is taken out of the
            dict before the dict is passed to the model.
          model: A Keras model or `tf.Module`, called as `model(features)` on the dict
            without the label (a Keras model then runs in inference mode).
          metrics: A metric or a list of metrics, each updated with
            `update_state(target, output)` and reported under its `name` (Keras 3
            metrics, or any object with `update_state`, `result` and `reset_state` or
            `reset_states`).
          evaluator_options: How to build the evaluation loop; defaults to
            `garden_orbit.StandardEvaluatorOptions()`.
        """
        self.label_key = label_key
        self.model = model
        self.metrics = _metrics.as_metric_list(metrics)

        # The strategy in scope now is the one the steps run under.
        self.strategy = tf.distribute.get_strategy()

        super().__init__(eval_dataset, options=evaluator_options)

    def eval_begin(self) -> None:
        """Resets the metrics before each evaluation."""
        for metric in self.metrics:
            _metrics.reset_metric(metric)

    def eval_step(self, iterator: Any) -> None:
        """Runs the model on the next batch of `iterator` and updates the metrics.

        Args:
          iterator: The iterator over `eval_dataset`.
        """

        def replica_step(inputs: dict[str, Any]) -> None:
            features = dict(inputs)
            target = features.pop(self.label_key)
            output = self.model(features)
            for metric in self.metrics:
                metric.update_state(target, output)

        self.strategy.run(replica_step, args=(next(iterator),))

    def eval_end(self, *args: Any) -> dict[str, Any]:
        """Returns `{metric.name: metric.result()}` for the evaluation just run.

        Args:
          *args: Unused (the base class passes a reduced state only when `eval_begin`
            returns one, which this evaluator does not).
        """
        with self.strategy.scope():
            return _metrics.metric_results(self.metrics)
