"""A trainer for models with a single output, trained on a single dataset.

`SingleTaskTrainer` is the garden-orbit counterpart of Orbit's
`orbit.examples.single_task.single_task_trainer.SingleTaskTrainer`. Give it a dataset of
string-keyed dicts, the key of the label, a model, a loss function and an optimizer (Keras 3
objects work as they are); drive it with a `garden_orbit.Controller`:

```python
with strategy.scope():
    model = ...  # A built Keras model.
    optimizer = keras.optimizers.SGD(0.1)
    trainer = single_task_trainer.SingleTaskTrainer(
        train_dataset, label_key="label", model=model,
        loss_fn=keras.losses.sparse_categorical_crossentropy, optimizer=optimizer,
        metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")])
controller = garden_orbit.Controller(
    trainer=trainer, global_step=trainer.global_step, steps_per_loop=100)
controller.train(1000)
```

This module does not import Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import garden_orbit
from garden_orbit._tensorflow import tf
from garden_orbit.examples.single_task import _metrics

# The name the mean training loss is reported under (Orbit's name).
TRAINING_LOSS_NAME = "training_loss"


def _build_optimizer(optimizer: Any, model: Any) -> None:
    """Creates the optimizer's variables for the model now, if it has not done so yet.

    A Keras 3 optimizer creates its slot variables on the first `apply_gradients` unless it
    is built first; under a distribution strategy that would happen inside the replica
    function, where variables cannot be created. Building it here (as `Model.fit` does) puts
    the variables under the strategy in scope. Objects without Keras 3's `built` and
    `build` are left alone, as is a model that has no variables yet.

    Args:
      optimizer: The optimizer.
      model: The model whose trainable variables the optimizer will update.
    """
    if getattr(optimizer, "built", True):
        return
    build = getattr(optimizer, "build", None)
    variables = list(model.trainable_variables)
    if build is None or not variables:
        return
    build(variables)


class SingleTaskTrainer(garden_orbit.StandardTrainer):
    """Trains a model with a single output on a dataset of dicts.

    Each training step takes a batch (a dict of tensors) from the dataset, removes the label
    under `label_key`, runs the model on the remaining dict with `training=True`, averages
    `loss_fn(label, output)` over the batch, and applies the gradients with the optimizer.
    Under a distribution strategy the loss is divided by the number of replicas before the
    gradients are taken, because the optimizer sums gradients across replicas: the update
    is then the one for the mean loss over the global batch.

    Each block of steps (one `train` call from the Controller) reports the mean of the
    unscaled batch losses under "training_loss" and the result of each metric under its
    name; the loss mean and the metrics are reset at the start of each block.

    Attributes:
      label_key: The key of the label in each batch.
      model: The model being trained.
      loss_fn: The per-example loss function, called as `loss_fn(target, output)`.
      optimizer: The optimizer applying the gradients.
      metrics: The list of metrics updated with `(target, output)` at each step.
      strategy: The distribution strategy in scope when the trainer was created.
      train_loss: The running mean of the training loss (`name`, `result()`,
        `reset_state()`), reported as "training_loss".
    """

    def __init__(
        self,
        train_dataset: Any,
        label_key: str,
        model: Any,
        loss_fn: Callable[[Any, Any], Any],
        optimizer: Any,
        metrics: Any | Sequence[Any] | None = None,
        trainer_options: garden_orbit.StandardTrainerOptions | None = None,
    ):
        """Initializes the trainer.

        To train under a distribution strategy, create the model, the optimizer, the
        metrics and this trainer inside the strategy's scope, and pass a distributed
        dataset (e.g. from `garden_orbit.utils.make_distributed_dataset`) whose batches
        are the global batch split over the replicas.

        Args:
          train_dataset: A `tf.data.Dataset` or distributed dataset whose elements are
            string-keyed dicts of tensors, one of which is the label.
          label_key: The key of the label in each element. The label is taken out of the
            dict before the dict is passed to the model, so the model never sees it.
          model: A Keras model or `tf.Module` called as `model(features, training=True)`
            on the dict without the label; it has a `trainable_variables` property. Build
            a Keras model (e.g. give it an `Input`) before creating the trainer.
          loss_fn: A per-example loss function called as `loss_fn(target, output)`, such
            as `keras.losses.sparse_categorical_crossentropy`. Its result is averaged with
            `tf.reduce_mean`, so a loss object should not sum over the batch itself.
          optimizer: A Keras 3 optimizer (or any object with
            `apply_gradients(grads_and_vars)`). Its `iterations` counter is the trainer's
            `global_step`. An unbuilt Keras 3 optimizer is built here for the model's
            trainable variables.
          metrics: None, a metric, or a list of metrics, each updated with
            `update_state(target, output)` at every step and reported under its `name`
            (Keras 3 metrics, or any object with `update_state`, `result` and
            `reset_state` or `reset_states`).
          trainer_options: How to build the training loop; defaults to
            `garden_orbit.StandardTrainerOptions()`.
        """
        self.label_key = label_key
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.metrics = _metrics.as_metric_list(metrics)

        # The strategy in scope now is the one the steps run under.
        self.strategy = tf.distribute.get_strategy()
        with self.strategy.scope():
            self.train_loss = _metrics.RunningMean(TRAINING_LOSS_NAME)
            _build_optimizer(optimizer, model)

        super().__init__(train_dataset, options=trainer_options)

    @property
    def global_step(self) -> Any:
        """The optimizer's step counter (`optimizer.iterations`), for the Controller."""
        return self.optimizer.iterations

    def train_loop_begin(self) -> None:
        """Resets the loss mean and the metrics before each block of steps."""
        self.train_loss.reset_state()
        for metric in self.metrics:
            _metrics.reset_metric(metric)

    def train_step(self, iterator: Any) -> None:
        """Runs one training step on the next batch of `iterator`, on every replica.

        Args:
          iterator: The iterator over `train_dataset`.
        """

        def replica_step(inputs: dict[str, Any]) -> None:
            features = dict(inputs)
            target = features.pop(self.label_key)
            with tf.GradientTape() as tape:
                output = self.model(features, training=True)
                loss = tf.reduce_mean(self.loss_fn(target, output))
                # The optimizer sums the replicas' gradients, so scaling each replica's
                # loss by 1 / replicas makes the update that of the global-batch mean.
                scaled_loss = loss / self.strategy.num_replicas_in_sync
            variables = self.model.trainable_variables
            gradients = tape.gradient(scaled_loss, variables)
            self.optimizer.apply_gradients(list(zip(gradients, variables, strict=True)))
            self.train_loss.update_state(loss)
            for metric in self.metrics:
                metric.update_state(target, output)

        self.strategy.run(replica_step, args=(next(iterator),))

    def train_loop_end(self) -> dict[str, Any]:
        """Returns the results of the metrics and the mean loss of the block of steps."""
        with self.strategy.scope():
            results = _metrics.metric_results(self.metrics)
            results[self.train_loss.name] = self.train_loss.result()
        return results
