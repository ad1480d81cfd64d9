"""Train and evaluate a model with a single output on a single dataset.

The garden-orbit counterpart of `orbit.examples.single_task`:

- `SingleTaskTrainer` (module `single_task_trainer`) runs a model on dict-valued batches,
  takes the label out of each batch, applies a loss function and an optimizer, and reports
  the mean training loss (as "training_loss") and any metrics.
- `SingleTaskEvaluator` (module `single_task_evaluator`) runs the model on an evaluation
  dataset and reports its metrics.

Both work under any `tf.distribute` strategy: create them (and the model, optimizer and
metrics) inside the strategy's scope and give them a distributed dataset.
"""

from garden_orbit.examples.single_task.single_task_evaluator import SingleTaskEvaluator
from garden_orbit.examples.single_task.single_task_trainer import SingleTaskTrainer

__all__ = ["SingleTaskEvaluator", "SingleTaskTrainer"]
