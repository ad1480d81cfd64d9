"""Helpers around a training run: the trainer, `params.yaml`, best-checkpoint export.

Every file written here appears complete or not at all: it is written to a temporary name
and renamed into place.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

import garden_orbit as orbit
from garden_core.base_task import Task
from garden_core.base_trainer import Trainer
from garden_core.config import ConfigError, ExperimentConfig
from garden_orbit.utils import atomic_write

PARAMS_FILENAME = "params.yaml"
BEST_CHECKPOINT_INFO = "info.json"


def write_file_atomically(path: str, content: str) -> None:
    """Writes `content` to `path` through a temporary file in the same directory."""
    atomic_write.write_text(path, content)


def serialize_config(params: ExperimentConfig, model_dir: str) -> str:
    """Writes the experiment config to `model_dir/params.yaml`; returns the file's path."""
    path = os.path.join(model_dir, PARAMS_FILENAME)
    write_file_atomically(path, params.as_yaml())
    return path


def to_python(logs: Any) -> Any:
    """Converts tensors and NumPy values in (nested) logs to Python numbers and lists."""
    if isinstance(logs, dict):
        return {key: to_python(value) for key, value in logs.items()}
    if isinstance(logs, (list, tuple)):
        return [to_python(value) for value in logs]
    if isinstance(logs, (tf.Tensor, tf.Variable)):
        logs = logs.numpy()
    if isinstance(logs, np.ndarray):
        return logs.item() if logs.ndim == 0 else logs.tolist()
    if isinstance(logs, np.generic):
        return logs.item()
    return logs


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the shared outputs (always true without multi-worker)."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def worker_write_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """Where this worker writes checkpoints: `model_dir` on the chief, a private folder else.

    Under `multi_worker_mirrored` every worker must take part in saving a checkpoint, but
    only the chief's copy is kept; the others write to `model_dir/.worker-<id>` (removed by
    `run_experiment` when it ends).
    """
    if is_chief(strategy):
        return model_dir
    resolver = strategy.cluster_resolver
    return os.path.join(model_dir, f".worker-{resolver.task_type}-{resolver.task_id}")


class BestCheckpointExporter:
    """An eval action keeping the checkpoint with the best evaluation metric so far.

    The checkpoint goes to `export_dir` (one kept) and `export_dir/info.json` records the
    metric, its value, the step and the full evaluation logs. The best value survives
    restarts (it is read back from `info.json`).
    """

    def __init__(
        self,
        export_dir: str,
        metric_name: str,
        metric_comp: str,
        checkpoint: tf.train.Checkpoint,
        global_step: tf.Variable,
        write: bool = True,
    ):
        """Initializes the exporter.

        Args:
          export_dir: The directory of the best checkpoint.
          metric_name: The evaluation log key to compare (for example `accuracy`).
          metric_comp: `higher` or `lower`: which values are better.
          checkpoint: What to save (the trainer's checkpoint).
          global_step: The global step, saved in `info.json` and numbering the checkpoint.
          write: False on non-chief workers (they save to a private folder, write no info).
        """
        if metric_comp not in ("higher", "lower"):
            raise ConfigError(
                f"`trainer.best_checkpoint_metric_comp` is {metric_comp!r}; choose higher or lower"
            )
        self._export_dir = export_dir
        self._metric_name = metric_name
        self._global_step = global_step
        self._write = write
        self._info_path = os.path.join(export_dir, BEST_CHECKPOINT_INFO)
        # garden-orbit's condition compares (NaN is never a best); the record lives in
        # info.json, Model Garden's layout, so the condition starts from its best value.
        self._new_best = orbit.actions.NewBestMetric(
            metric_name, higher_is_better=metric_comp == "higher"
        )
        previous = self._read_best_value(self._info_path)
        if previous is not None:
            self._new_best.commit({metric_name: previous})
        self._manager = tf.train.CheckpointManager(checkpoint, export_dir, max_to_keep=1)

    @staticmethod
    def _read_best_value(info_path: str) -> float | None:
        if not tf.io.gfile.exists(info_path):
            return None
        try:
            with tf.io.gfile.GFile(info_path) as f:
                value = json.load(f).get("best_value")
        except (json.JSONDecodeError, AttributeError) as error:
            raise ValueError(f"{info_path} is not a best-checkpoint record ({error})") from None
        return None if value is None else float(value)

    def _read_metric(self, logs: dict[str, Any]) -> float:
        if self._metric_name not in logs:
            raise ConfigError(
                f"`trainer.best_checkpoint_eval_metric` is {self._metric_name!r}, which the "
                "evaluation does not report; it reports: " + ", ".join(sorted(logs))
            )
        return float(np.asarray(to_python(logs[self._metric_name])))

    @property
    def best_value(self) -> float | None:
        return self._new_best.best_value

    @property
    def export_dir(self) -> str:
        return self._export_dir

    def __call__(self, logs: dict[str, Any]) -> bool:
        """Saves the checkpoint if `logs` holds a new best value; returns whether it did."""
        value = self._read_metric(logs)
        if not self._new_best.test({self._metric_name: value}):
            return False
        step = int(self._global_step.numpy())
        path = self._manager.save(checkpoint_number=step)
        if self._write:
            record = {
                "best_metric_name": self._metric_name,
                "best_value": value,
                "best_ckpt_global_step": step,
                "best_ckpt_path": os.path.basename(path),
                "eval_logs": to_python(logs),
            }
            write_file_atomically(self._info_path, json.dumps(record, indent=2))
        logging.info(
            "New best %s = %s at step %d: %s",
            self._metric_name,
            orbit.utils.format_number(value),
            step,
            path,
        )
        self._new_best.commit({self._metric_name: value})
        return True


def maybe_create_best_ckpt_exporter(
    params: ExperimentConfig, trainer: Trainer, model_dir: str
) -> BestCheckpointExporter | None:
    """The best-checkpoint exporter `params.trainer` asks for, or None."""
    config = params.trainer
    if not (config.best_checkpoint_export_subdir and config.best_checkpoint_eval_metric):
        return None
    strategy = trainer.strategy
    directory = os.path.join(
        worker_write_dir(model_dir, strategy), config.best_checkpoint_export_subdir
    )
    return BestCheckpointExporter(
        directory,
        config.best_checkpoint_eval_metric,
        config.best_checkpoint_metric_comp,
        trainer.checkpoint,
        trainer.global_step,
        write=is_chief(strategy),
    )


def create_trainer(
    params: ExperimentConfig,
    task: Task,
    train: bool,
    evaluate: bool,
) -> Trainer:
    """Builds the model, the optimizer and the `Trainer`; call it in the strategy's scope."""
    model = task.build_model()
    optimizer = task.create_optimizer(params.trainer.optimizer_config, params.runtime)
    return Trainer(params, task, model=model, optimizer=optimizer, train=train, evaluate=evaluate)
