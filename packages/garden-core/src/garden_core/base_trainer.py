"""`Trainer`: runs a `Task` with garden-orbit's standard training and evaluation loops.

The trainer owns the global step, the loss and metric means, the checkpoint (global step,
model, optimizer, EMA averages and the training-data position), and the loss blow-up
recovery. The `Controller` in `run_experiment` decides when to train, evaluate, save and
export.

The training-data position is saved in one of two ways:

- A plain `tf.data` iterator (the default strategy, `off`): its state, as TensorFlow
  serializes it (`train_iterator` in the checkpoint).
- A distributed iterator (`one_device`, `mirrored`, `multi_worker_mirrored`, `tpu`): the
  number of batches the training steps have drawn (`train_data_position`, one int64). In
  TensorFlow 2.21 a `DistributedIterator` and the `OwnedMultiDeviceIterator` of each worker
  beneath it cannot be saved (the host iterator and the per-device prefetch buffers live in
  one resource that has no save op), so a resumed run fast-forwards instead: the new
  iterator draws and discards that many batches before training continues. Every worker
  draws one batch a step in lockstep, so one count serves all workers, and the chief's
  checkpoint, from which every worker resumes, holds it. The resumed data are those of the
  uninterrupted run when the input pipeline is deterministic (a set `runtime.seed`, which
  seeds the shuffles, and tf.data's default deterministic order); the fast-forward costs
  reading that many batches once, at the first training loop.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf
from absl import logging

import garden_orbit as orbit
from garden_core.base_task import Task
from garden_core.config import ExperimentConfig, TrainerConfig


class LossBlowupError(RuntimeError):
    """The training loss became NaN or exceeded `loss_upper_bound` and could not recover."""


class Recovery:
    """Restores the last checkpoint when the training loss blows up, a bounded number of times.

    `run_experiment` runs it after each training loop through `Trainer.recover_if_blown_up`.

    The loss is checked after each loop of `steps_per_loop` steps (its mean over the loop).
    A NaN (or infinite) loss, or one above `loss_upper_bound` once `recovery_begin_steps`
    steps are done, restores the latest checkpoint; after `recovery_max_trials` restores
    (0: none) the next blow-up raises `LossBlowupError` naming the step.
    """

    def __init__(
        self,
        loss_upper_bound: float,
        checkpoint_manager: tf.train.CheckpointManager,
        recovery_begin_steps: int = 0,
        recovery_max_trials: int = 0,
    ):
        self.loss_upper_bound = loss_upper_bound
        self.checkpoint_manager = checkpoint_manager
        self.recovery_begin_steps = recovery_begin_steps
        self.recovery_max_trials = recovery_max_trials
        self.recover_counter = 0

    def should_recover(self, loss_value: float, global_step: int) -> bool:
        if not math.isfinite(loss_value):
            return True
        return global_step >= self.recovery_begin_steps and loss_value > self.loss_upper_bound

    def maybe_recover(self, loss_value: float, global_step: int, first_step: int) -> None:
        """Restores the latest checkpoint if the loss blew up.

        Args:
          loss_value: The mean training loss of the loop that just ended.
          global_step: The step the loop ended at.
          first_step: The first step of that loop.

        Raises:
          LossBlowupError: When the loss blew up and no recovery is left (or no checkpoint
            exists to recover from).
        """
        if not self.should_recover(loss_value, global_step):
            return
        what = (
            f"the training loss is {loss_value}"
            if not math.isfinite(loss_value)
            else f"the training loss {loss_value:.6g} exceeds loss_upper_bound "
            f"{self.loss_upper_bound:g}"
        )
        where = f"in the loop of steps {first_step + 1}-{global_step}"
        self.recover_counter += 1
        latest = self.checkpoint_manager.latest_checkpoint
        if self.recover_counter > self.recovery_max_trials or latest is None:
            reason = (
                "no checkpoint to recover from"
                if latest is None and self.recover_counter <= self.recovery_max_trials
                else f"recovery_max_trials is {self.recovery_max_trials}"
            )
            raise LossBlowupError(
                f"{what} {where} (blow-up {self.recover_counter}; {reason}); lower the "
                "learning rate, or raise trainer.recovery_max_trials to restore the last "
                "checkpoint and retry"
            )
        logging.warning(
            "%s %s: restoring %s (recovery %d of %d).",
            what,
            where,
            latest,
            self.recover_counter,
            self.recovery_max_trials,
        )
        self.checkpoint_manager.checkpoint.restore(latest).expect_partial()


@tf.function
def _draw_batches(iterator: Any, count: tf.Tensor) -> None:
    """Draws `count` batches from `iterator` and discards them."""
    for _ in tf.range(count):
        # Stateful: `tf.function` runs it although its value is unused.
        next(iterator)


class _EvaluationCheckpoint(tf.train.Checkpoint):
    """A checkpoint whose restores expect to read only part of a training checkpoint."""

    def restore(self, save_path, options=None):
        return super().restore(save_path, options=options).expect_partial()


def _make_ema(config: TrainerConfig, model: keras.Model):
    ema_config = config.optimizer_config.ema
    if ema_config is None:
        return None
    from garden_core.optimization.ema import ExponentialMovingAverage

    if not model.weights:
        raise ValueError(
            "trainer.optimizer_config.ema is set but the model has no variables yet; build "
            "the model (call it once, or give its Input shapes) in Task.build_model"
        )
    return ExponentialMovingAverage.from_config(ema_config, model)


class Trainer(orbit.StandardTrainer, orbit.StandardEvaluator):
    """Trains and evaluates a `Task` (Model Garden's `base_trainer.Trainer`).

    Create it inside the strategy's scope. Train outputs: `training_loss`, the task's
    training metrics and `learning_rate`; evaluation outputs: `validation_loss` (when the
    task's `validation_step` returns its loss; Mask R-CNN's, like Model Garden's, computes
    none), the task's evaluation metrics and whatever `Task.reduce_aggregated_logs` returns.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        task: Task,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        train: bool = True,
        evaluate: bool = True,
        train_dataset: Any = None,
        validation_dataset: Any = None,
        checkpoint_iterator: bool | None = None,
    ):
        """Initializes the trainer.

        Args:
          config: The experiment config.
          task: The task.
          model: The model `task.build_model()` returned (already initialized).
          optimizer: The optimizer `task.create_optimizer(...)` returned.
          train: Whether to set up training (data, metrics, optimizer variables).
          evaluate: Whether to set up evaluation.
          train_dataset: The training dataset; by default `task.build_inputs(train_data)`
            distributed with the strategy.
          validation_dataset: The validation dataset; by default built the same way.
          checkpoint_iterator: Save the training-data position in checkpoints, so a resumed
            run continues mid-epoch exactly: the iterator's state for a plain `tf.data`
            dataset, the number of batches drawn (fast-forwarded on resume) for a
            distributed one (see the module docstring). None (the default) and True: yes;
            False: no, a resumed run starts the data pipeline afresh. None defers to the
            task's `checkpoint_iterator` attribute.
        """
        self._config = config
        self._task = task
        self._model = model
        self._optimizer = optimizer
        self._strategy = tf.distribute.get_strategy()
        self._global_step = orbit.utils.create_global_step()
        self._recovery: Recovery | None = None
        self._loop_first_step = 0
        self._fused_train: tuple[Any, Any] | None = None
        # The number of batches drawn for training, saved when the data are distributed.
        self._data_position: tf.Variable | None = None
        self._data_started = False  # Whether the training iterator exists in this process.
        trainer_config = config.trainer

        if train:
            # Keras 3 optimizers create their slots lazily; under a distribution strategy that
            # must happen here, in the strategy's scope, not inside the first `strategy.run`.
            optimizer.build(model.trainable_variables)
        self._ema = _make_ema(trainer_config, model)

        self.train_loss = keras.metrics.Mean("training_loss", dtype="float32")
        self.validation_loss = keras.metrics.Mean("validation_loss", dtype="float32")
        # Set while the evaluation step is traced, if the task's step returns a loss.
        self._validation_step_has_loss = False
        self.train_metrics = task.build_metrics(training=True) if train else []
        self.validation_metrics = task.build_metrics(training=False) if evaluate else []

        checkpoint_items: dict[str, Any] = {"global_step": self._global_step, "model": model}
        if train:
            checkpoint_items["optimizer"] = optimizer
        if self._ema is not None:
            checkpoint_items["ema"] = self._ema

        if train:
            if train_dataset is None:
                train_dataset = self._distribute_inputs(config.task.train_data)
            orbit.StandardTrainer.__init__(
                self,
                train_dataset,
                options=orbit.StandardTrainerOptions(
                    use_tf_while_loop=trainer_config.train_tf_while_loop,
                    use_tf_function=trainer_config.train_tf_function,
                    use_tpu_summary_optimization=trainer_config.allow_tpu_summary,
                ),
            )
            if checkpoint_iterator is None:
                checkpoint_iterator = task.checkpoint_iterator
            if checkpoint_iterator is not False:
                # Only iterators of plain `tf.data` datasets are trackable:
                # `tf.train.Checkpoint` rejects the `DistributedIterator` of every real
                # strategy (MirroredStrategy and OneDeviceStrategy included, not only
                # multi-worker and TPU ones); those save the count of batches drawn.
                if all(
                    isinstance(dataset, tf.data.Dataset)
                    for dataset in tf.nest.flatten(self.train_dataset)
                ):
                    checkpoint_items["train_iterator"] = self.train_iterator
                else:
                    self._data_position = tf.Variable(
                        0,
                        dtype=tf.int64,
                        name="train_data_position",
                        trainable=False,
                        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                    )
                    checkpoint_items["train_data_position"] = self._data_position
        if evaluate:
            if validation_dataset is None:
                validation_dataset = self._distribute_inputs(config.task.validation_data)
            orbit.StandardEvaluator.__init__(
                self,
                validation_dataset,
                options=orbit.StandardEvaluatorOptions(
                    use_tf_function=trainer_config.eval_tf_function,
                    use_tf_while_loop=trainer_config.eval_tf_while_loop,
                ),
            )
        # Evaluation alone restores the model (and EMA) from training checkpoints and leaves
        # the optimizer state and data position in them unread, as expected.
        checkpoint_class = tf.train.Checkpoint if train else _EvaluationCheckpoint
        self._checkpoint = checkpoint_class(**checkpoint_items)

    def _distribute_inputs(self, data_config: Any) -> Any:
        """`task.build_inputs(data_config)` on every input pipeline of the strategy, with
        `runtime.dataset_num_private_threads` applied."""
        threads = self._config.runtime.dataset_num_private_threads

        def dataset_fn(input_context=None):
            dataset = self._task.build_inputs(data_config, input_context=input_context)
            if threads:
                options = tf.data.Options()
                options.threading.private_threadpool_size = threads
                dataset = dataset.with_options(options)
            return dataset

        return orbit.utils.make_distributed_dataset(self._strategy, dataset_fn)

    # Properties (Model Garden's names).

    @property
    def config(self) -> ExperimentConfig:
        return self._config

    @property
    def task(self) -> Task:
        return self._task

    @property
    def model(self) -> keras.Model:
        return self._model

    @property
    def optimizer(self) -> keras.optimizers.Optimizer:
        return self._optimizer

    @property
    def strategy(self) -> tf.distribute.Strategy:
        return self._strategy

    @property
    def global_step(self) -> tf.Variable:
        return self._global_step

    @property
    def checkpoint(self) -> tf.train.Checkpoint:
        """What a checkpoint holds: global_step, model, optimizer, ema and the data position
        (`train_iterator` or `train_data_position`)."""
        return self._checkpoint

    @property
    def train_data_position(self) -> tf.Variable | None:
        """The number of training batches drawn so far, counted across restarts; None when
        the data position is not saved this way (a plain `tf.data` iterator, or none)."""
        return self._data_position

    @property
    def train_iterator(self) -> Any:
        """The training iterator, created on first use; for distributed data it is then
        fast-forwarded to `train_data_position` (the position a restored checkpoint gave)."""
        if self._data_started or self._data_position is None:
            return orbit.StandardTrainer.train_iterator.fget(self)
        iterator = orbit.StandardTrainer.train_iterator.fget(self)
        self._data_started = True
        batches = int(self._data_position.numpy())
        if batches:
            logging.info("Fast-forwarding the training data by %d batches.", batches)
            _draw_batches(iterator, tf.constant(batches, dtype=tf.int64))
        return iterator

    @orbit.StandardTrainer.train_dataset.setter
    def train_dataset(self, dataset: Any) -> None:
        orbit.StandardTrainer.train_dataset.fset(self, dataset)
        if self._data_position is not None:  # A new dataset starts at its beginning.
            self._data_position.assign(0)
            self._data_started = False

    @property
    def ema(self):
        """The `ExponentialMovingAverage` of the weights, or None without `optimizer_config.ema`."""
        return self._ema

    def add_recovery(
        self, trainer_config: TrainerConfig, checkpoint_manager: tf.train.CheckpointManager
    ) -> None:
        """Turns on loss blow-up recovery (see `Recovery`)."""
        self._recovery = Recovery(
            loss_upper_bound=trainer_config.loss_upper_bound,
            checkpoint_manager=checkpoint_manager,
            recovery_begin_steps=trainer_config.recovery_begin_steps,
            recovery_max_trials=trainer_config.recovery_max_trials,
        )

    # Training.

    def train(self, num_steps: tf.Tensor) -> dict[str, Any]:
        """Runs a loop of `num_steps` training steps and returns the loop's logs.

        With a compiled `tf.while_loop` (the default), resetting the metrics, the steps and
        reading the logs are one graph call: done eagerly around the loop they cost an op
        dispatch per metric variable, which is measurable next to a loop of small steps.
        """
        options = self._train_options
        if not options.use_tf_while_loop or options.use_tpu_summary_optimization:
            return orbit.StandardTrainer.train(self, num_steps)
        self._loop_first_step = int(self._global_step.numpy())
        if self._train_loop_fn is None:
            self._train_loop_fn = self.create_train_loop_fn()
        if self._fused_train is None or self._fused_train[0] is not self._train_loop_fn:
            loop_fn = self._train_loop_fn  # A new dataset gets a new loop, and a new fusion.

            @tf.function
            def fused(iterator, num_steps):
                self._reset_train_metrics()
                loop_fn(iterator, num_steps)
                return self._train_logs()

            self._fused_train = (loop_fn, fused)
        return self._fused_train[1](self.train_iterator, num_steps)

    def train_loop_begin(self) -> None:
        self._reset_train_metrics()
        self._loop_first_step = int(self._global_step.numpy())

    def _reset_train_metrics(self) -> None:
        self.train_loss.reset_state()
        for metric in self.train_metrics:
            metric.reset_state()

    def _train_logs(self) -> dict[str, Any]:
        logs = {metric.name: metric.result() for metric in self.train_metrics}
        logs[self.train_loss.name] = self.train_loss.result()
        logs["learning_rate"] = self._current_learning_rate()
        return logs

    def next_train_batch(self, iterator: Any) -> Any:
        """`next(iterator)`, counted in `train_data_position` (a `train_step` override must
        draw its batches through this for a resumed run to fast-forward exactly)."""
        inputs = next(iterator)
        if self._data_position is not None:
            self._data_position.assign_add(1)
        return inputs

    def train_step(self, iterator: Any) -> None:
        def step_fn(inputs):
            logs = self._task.train_step(
                inputs, model=self._model, optimizer=self._optimizer, metrics=self.train_metrics
            )
            self.train_loss.update_state(logs[self._task.loss])
            if self._ema is not None:
                self._ema.update(self._global_step + 1)
            self._global_step.assign_add(1)

        self._strategy.run(step_fn, args=(self.next_train_batch(iterator),))

    def train_loop_end(self) -> dict[str, Any]:
        return self._train_logs()

    def recover_if_blown_up(self, output: dict[str, Any]) -> None:
        """A train action: restores the last checkpoint if the loop's loss blew up.

        Runs before checkpoints are saved (the Controller runs actions first), so blown-up
        weights are never saved. Does nothing until `add_recovery` is called.

        Raises:
          LossBlowupError: When no recovery is left (see `Recovery`).
        """
        if self._recovery is None:
            return
        step = int(self._global_step.numpy())
        if step > self._loop_first_step:
            loss = float(tf.convert_to_tensor(output[self.train_loss.name]).numpy())
            position = None if self._data_position is None else self._data_position.numpy()
            self._recovery.maybe_recover(loss, step, self._loop_first_step)
            if position is not None:
                # The iterator cannot rewind: training goes on with the next batches, and
                # later checkpoints count them.
                self._data_position.assign(position)

    def _current_learning_rate(self) -> tf.Tensor:
        optimizer = self._optimizer
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = optimizer.inner_optimizer
        rate = optimizer._learning_rate  # The float, variable or schedule it was built with.
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            return tf.convert_to_tensor(rate(optimizer.iterations), dtype=tf.float32)
        return tf.convert_to_tensor(optimizer.learning_rate, dtype=tf.float32)

    # Evaluation.

    def evaluate(self, num_steps: tf.Tensor) -> dict[str, Any]:
        """Evaluates `num_steps` steps (-1: all the data), with the EMA weights if any."""
        if self._ema is None:
            return orbit.StandardEvaluator.evaluate(self, num_steps)
        self._ema.swap_weights()
        try:
            return orbit.StandardEvaluator.evaluate(self, num_steps)
        finally:
            self._ema.swap_weights()

    def eval_begin(self) -> None:
        self.validation_loss.reset_state()
        for metric in self.validation_metrics:
            metric.reset_state()

    def eval_step(self, iterator: Any) -> Any:
        def step_fn(inputs):
            logs = self._task.validation_step(
                inputs, model=self._model, metrics=self.validation_metrics
            )
            if self._task.loss in logs:
                self._validation_step_has_loss = True
                self.validation_loss.update_state(logs[self._task.loss])
            return logs

        outputs = self._strategy.run(step_fn, args=(next(iterator),))
        return tf.nest.map_structure(self._strategy.experimental_local_results, outputs)

    def eval_reduce(self, state: Any = None, step_outputs: Any = None) -> Any:
        return self._task.aggregate_logs(state=state, step_logs=step_outputs)

    def eval_end(self, aggregated_logs: Any = None) -> dict[str, Any]:
        logs = {metric.name: metric.result() for metric in self.validation_metrics}
        if self._validation_step_has_loss:
            logs[self.validation_loss.name] = self.validation_loss.result()
        if aggregated_logs is not None:
            logs.update(
                self._task.reduce_aggregated_logs(aggregated_logs, global_step=self._global_step)
            )
        return logs
