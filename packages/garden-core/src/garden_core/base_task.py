"""`Task`: what an experiment trains, with Model Garden's contract.

A task turns its config into a model, input pipelines, losses and metrics, and says what one
training, validation and inference step does. The `Trainer` drives these methods inside
`tf.function` and `strategy.run`; nothing here knows about loops, checkpoints or summaries.

    class MyTask(Task):
        def build_model(self): ...
        def build_inputs(self, params, input_context=None): ...
        def build_losses(self, labels, model_outputs, aux_losses=None): ...

    registry.tasks.register("MyTaskConfig", MyTask)

The default `train_step` and `validation_step` handle `(features, labels)` batches, loss
scaling for `float16` mixed precision and per-replica loss averaging; override them for
anything else.
"""

from __future__ import annotations

import abc
from typing import Any

import keras
import tensorflow as tf

from garden_core.checkpoint_utils import resolve_checkpoint
from garden_core.config import ConfigError, DataConfig, OptimizationConfig, RuntimeConfig
from garden_core.config.definitions import TaskConfig
from garden_core.optimization import build_optimizer

Logs = dict[str, Any]


class Task(tf.Module, metaclass=abc.ABCMeta):
    """The base class of every task.

    Attributes:
      loss: The key of the total loss in step logs.
      checkpoint_iterator: Whether checkpoints hold the training-data position (None: the
        trainer decides; see `Trainer`).
    """

    loss = "loss"
    # Whether the trainer saves the training-data position in checkpoints (None: yes, under
    # every strategy; see `Trainer`). A task whose pipeline holds large shuffle buffers
    # (images) or random augmentation ops, which tf.data cannot serialize, sets it to False.
    checkpoint_iterator: bool | None = None

    def __init__(self, params: TaskConfig, logging_dir: str | None = None, name: str | None = None):
        """Initializes the task.

        Args:
          params: The task config (`ExperimentConfig.task`).
          logging_dir: Where the task may write files (the experiment's `model_dir`).
          name: The task's name (by default the class name).
        """
        super().__init__(name=name or type(self).__name__)
        self._task_config = params
        self._logging_dir = logging_dir

    @property
    def task_config(self) -> TaskConfig:
        return self._task_config

    @property
    def logging_dir(self) -> str | None:
        return self._logging_dir

    # Optimizer.

    @classmethod
    def create_optimizer(
        cls,
        optimizer_config: OptimizationConfig,
        runtime_config: RuntimeConfig | None = None,
    ) -> keras.optimizers.Optimizer:
        """Builds the optimizer; wraps it for loss scaling when training in `float16`.

        Args:
          optimizer_config: The trainer's `optimizer_config`.
          runtime_config: The runtime config; its `mixed_precision_dtype` and `loss_scale`
            decide loss scaling.
        """
        optimizer = build_optimizer(optimizer_config, path="trainer.optimizer_config")
        if runtime_config is not None and runtime_config.mixed_precision_dtype == "float16":
            optimizer = loss_scale_optimizer(optimizer, runtime_config.loss_scale)
        return optimizer

    # Model.

    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """Returns the Keras model of this task (variables may be created lazily)."""

    def initialize(self, model: keras.Model) -> None:
        """Loads `task_config.init_checkpoint` into `model` (partially), if one is set.

        The checkpoint may be a checkpoint prefix or a directory (its latest checkpoint is
        used). The model is restored under the checkpoint key `model`, the layout the
        `Trainer` writes; variables missing on either side are left alone, so a backbone
        can be initialized from a checkpoint with another head.

        Raises:
          FileNotFoundError: If `init_checkpoint` names nothing readable.
        """
        path = self.task_config.init_checkpoint
        if not path:
            return
        resolved = resolve_checkpoint(path)
        if resolved is None:
            raise FileNotFoundError(
                f"task.init_checkpoint: no checkpoint at {path!r} (expected a checkpoint "
                "prefix or a directory holding one)"
            )
        status = tf.train.Checkpoint(model=model).read(resolved)
        status.expect_partial()

    # Data.

    @abc.abstractmethod
    def build_inputs(
        self, params: DataConfig, input_context: tf.distribute.InputContext | None = None
    ) -> tf.data.Dataset:
        """Returns the dataset `params` describes, batched per replica for `input_context`."""

    # Losses and metrics.

    @abc.abstractmethod
    def build_losses(
        self, labels: Any, model_outputs: Any, aux_losses: list[tf.Tensor] | None = None
    ) -> tf.Tensor:
        """Returns the scalar loss of a batch (mean over the replica's examples)."""

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        """Returns the metrics reported in training (`training=True`) or evaluation."""
        del training
        return []

    def process_metrics(
        self, metrics: list[keras.metrics.Metric], labels: Any, model_outputs: Any, **kwargs
    ) -> None:
        """Updates `metrics` with a batch."""
        for metric in metrics:
            metric.update_state(labels, model_outputs, **kwargs)

    # Steps.

    def train_step(
        self,
        inputs: Any,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        metrics: list[keras.metrics.Metric] | None = None,
    ) -> Logs:
        """Runs one training step on one replica; returns logs (`{self.loss: loss, ...}`).

        The loss is divided by the number of replicas before differentiation, because the
        optimizer sums gradients across replicas.
        """
        features, labels = inputs
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            loss = self.build_losses(labels, outputs, aux_losses=model.losses)
            scaled_loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                scaled_loss = optimizer.scale_loss(scaled_loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        if metrics:
            self.process_metrics(metrics, labels, outputs)
        return {self.loss: loss}

    def validation_step(
        self,
        inputs: Any,
        model: keras.Model,
        metrics: list[keras.metrics.Metric] | None = None,
    ) -> Logs:
        """Runs one evaluation step on one replica; returns logs (`{self.loss: loss, ...}`)."""
        features, labels = inputs
        outputs = self.inference_step(features, model)
        loss = self.build_losses(labels, outputs, aux_losses=model.losses)
        if metrics:
            self.process_metrics(metrics, labels, outputs)
        return {self.loss: loss}

    def inference_step(self, inputs: Any, model: keras.Model) -> Any:
        """Returns the model's outputs for `inputs` (used by evaluation and export)."""
        return model(inputs, training=False)

    def build_export_module(self, model: keras.Model, params: Any):
        """Returns the `ExportModule` that `garden export` writes for this task.

        The default serves a functional model with its own named inputs (input type
        `tensor`) through `inference_step`; tasks with richer serving inputs (image bytes,
        tf.Example, raw text) return their own module.
        """
        from garden_core.export_base import KerasModelExportModule

        return KerasModelExportModule(params, model, inference_step=self.inference_step)

    # Host-side accumulation of evaluation outputs.

    def aggregate_logs(self, state: Any = None, step_logs: Logs | None = None) -> Any:
        """Accumulates evaluation step outputs on the host (e.g. predictions for a metric
        computed over the whole dataset). `state` is None on the first call. The default
        keeps nothing."""
        del step_logs
        return state

    def reduce_aggregated_logs(
        self, aggregated_logs: Any, global_step: tf.Tensor | None = None
    ) -> Logs:
        """Turns the accumulated state into final evaluation metrics (a dict of scalars)."""
        del aggregated_logs, global_step
        return {}


def loss_scale_optimizer(
    optimizer: keras.optimizers.Optimizer, loss_scale: str | float | None
) -> keras.optimizers.LossScaleOptimizer:
    """Wraps `optimizer` for float16 training: dynamic loss scaling, or a fixed scale.

    Args:
      optimizer: The optimizer to wrap.
      loss_scale: None or "dynamic" for dynamic loss scaling; a number for a fixed scale.
    """
    if loss_scale in (None, "dynamic"):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    try:
        scale = float(loss_scale)
    except (TypeError, ValueError):
        raise ConfigError(
            f"`runtime.loss_scale` is {loss_scale!r}: expected 'dynamic' or a number"
        ) from None
    if scale <= 0:
        raise ConfigError(f"`runtime.loss_scale` is {loss_scale!r}: it must be positive")
    # A fixed scale: never grow it (its growth interval is effectively infinite) and start
    # from `scale`. A non-finite step still skips the update.
    return keras.optimizers.LossScaleOptimizer(
        optimizer, initial_scale=scale, dynamic_growth_steps=2**62
    )
