"""`run_experiment`: trains and evaluates a task as its `ExperimentConfig` says.

Modes (Model Garden's):

- `train`: train to `trainer.train_steps`, saving checkpoints.
- `eval`: evaluate the latest checkpoint in `model_dir` once.
- `train_and_eval`: train, evaluating every `trainer.validation_interval` steps and at the end.
- `continuous_eval`: evaluate each new checkpoint as it appears, until one reaches
  `train_steps` (or none comes for `trainer.continuous_eval_timeout` seconds).
- `train_and_post_eval`: train, then evaluate once.

`model_dir` receives `params.yaml`, checkpoints (`ckpt-<step>`), summaries under `train/`
and `validation/` (`trainer.validation_summary_subdir`), `metrics.jsonl` and, when asked
for, the best checkpoint. Running the same command again resumes from the latest checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import tensorflow as tf
from absl import logging

import garden_orbit as orbit
from garden_core import data, distribute_utils, train_utils
from garden_core.base_task import Task
from garden_core.base_trainer import Trainer
from garden_core.config import ConfigError, ExperimentConfig
from garden_core.train_modes import MODES


def _check_mode(mode: str, params: ExperimentConfig) -> None:
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r} is not one of: {', '.join(MODES)}")
    if mode != "eval" and mode != "continuous_eval" and params.trainer.train_steps <= 0:
        raise ConfigError(
            f"`trainer.train_steps` is {params.trainer.train_steps}; mode {mode!r} needs a "
            "positive number of training steps"
        )


def run_experiment(
    distribution_strategy: tf.distribute.Strategy,
    task: Task,
    mode: str,
    params: ExperimentConfig,
    model_dir: str,
    run_post_eval: bool = False,
    save_summary: bool = True,
    train_actions: Sequence[orbit.Action] | None = None,
    eval_actions: Sequence[orbit.Action] | None = None,
    trainer: Trainer | None = None,
    controller_cls: type[orbit.Controller] = orbit.Controller,
    show_progress: bool | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Runs `mode` of the experiment and returns the model and the last evaluation logs.

    Args:
      distribution_strategy: The strategy to run under (see
        `garden_core.distribute_utils.get_distribution_strategy`).
      task: The task (see `garden_core.task_factory.get_task`).
      mode: One of `MODES`.
      params: The experiment config (validated here).
      model_dir: Where checkpoints, summaries and `params.yaml` go.
      run_post_eval: Also evaluate once after training (as `train_and_post_eval` does).
      save_summary: Write summaries under `model_dir`.
      train_actions: Extra actions run after each training loop.
      eval_actions: Extra actions run after each evaluation.
      trainer: A ready trainer (built in the strategy's scope); built from `task` if None.
      controller_cls: The controller class.
      show_progress: Show a progress line; None shows it when stdout is a terminal.

    Returns:
      The model, and the last evaluation's logs as Python numbers (empty without one).

    Raises:
      ConfigError: For a bad mode or config.
      FileNotFoundError: For `eval` with nothing to evaluate.
      garden_core.base_trainer.LossBlowupError: When the loss blows up past recovery.
    """
    _check_mode(mode, params)
    params.validate()
    trainer_config = params.trainer
    is_training = mode in ("train", "train_and_eval", "train_and_post_eval")
    run_post_eval = run_post_eval or mode == "train_and_post_eval"
    evaluating = mode in ("eval", "train_and_eval", "continuous_eval") or run_post_eval
    strategy = distribution_strategy
    chief = train_utils.is_chief(strategy)
    if chief:
        tf.io.gfile.makedirs(model_dir)
        if is_training:
            train_utils.serialize_config(params, model_dir)
    write_dir = train_utils.worker_write_dir(model_dir, strategy)
    if write_dir != model_dir and tf.io.gfile.exists(write_dir):
        tf.io.gfile.rmtree(write_dir)  # A worker's leftovers from an earlier run.

    with strategy.scope():
        if trainer is None:
            distribute_utils.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
            if params.runtime.seed is not None:
                keras.utils.set_random_seed(params.runtime.seed)
            trainer = train_utils.create_trainer(
                params, task, train=is_training, evaluate=evaluating
            )
        checkpoint_manager = tf.train.CheckpointManager(
            trainer.checkpoint,
            directory=write_dir,
            max_to_keep=trainer_config.max_to_keep,
            step_counter=trainer.global_step,
            checkpoint_interval=trainer_config.checkpoint_interval,
            init_fn=lambda: _initialize(task, trainer),
        )
    if write_dir != model_dir:
        # Workers save privately but all resume from the chief's latest checkpoint.
        latest = tf.train.latest_checkpoint(model_dir)
        if latest:
            trainer.checkpoint.restore(latest).expect_partial()
    if mode == "eval" and not (
        tf.train.latest_checkpoint(model_dir) or params.task.init_checkpoint
    ):
        raise FileNotFoundError(
            f"mode 'eval': {model_dir} holds no checkpoint and task.init_checkpoint is empty; "
            "train first, or point --model_dir at a trained model"
        )

    actions = []
    if is_training:
        trainer.add_recovery(trainer_config, checkpoint_manager)
        actions.append(trainer.recover_if_blown_up)  # First: before anything saves.
        if trainer_config.preemption_on_demand_checkpoint:
            actions.append(
                orbit.actions.SaveCheckpointIfPreempted(
                    strategy.cluster_resolver,
                    checkpoint_manager,
                    checkpoint_number=trainer.global_step,
                )
            )
    actions += list(train_actions or [])
    all_eval_actions = list(eval_actions or [])
    exporter = train_utils.maybe_create_best_ckpt_exporter(params, trainer, model_dir)
    if exporter is not None and evaluating:
        all_eval_actions.append(exporter)

    summary_dir = os.path.join(model_dir, "train") if save_summary and chief else None
    eval_summary_dir = (
        os.path.join(model_dir, trainer_config.validation_summary_subdir)
        if save_summary and chief
        else None
    )
    controller = controller_cls(
        strategy=strategy,
        trainer=trainer if is_training else None,
        evaluator=trainer if evaluating else None,
        global_step=trainer.global_step,
        steps_per_loop=trainer_config.steps_per_loop if is_training else None,
        checkpoint_manager=checkpoint_manager,
        summary_interval=trainer_config.summary_interval if is_training else None,
        summary_dir=summary_dir,
        eval_summary_dir=eval_summary_dir,
        train_actions=actions,
        eval_actions=all_eval_actions,
        show_progress=show_progress,
        metrics_jsonl=bool(summary_dir),
    )

    with _naming_corrupt_files(params):
        eval_logs = _run_mode(controller, trainer, params, mode, model_dir, run_post_eval)
    if write_dir != model_dir and tf.io.gfile.exists(write_dir):
        shutil.rmtree(write_dir, ignore_errors=True)
    return trainer.model, train_utils.to_python(eval_logs or {})


def _run_mode(controller, trainer, params, mode, model_dir, run_post_eval) -> Any:
    trainer_config = params.trainer
    validation_steps = trainer_config.validation_steps
    eval_logs = None
    if mode == "train" or mode == "train_and_post_eval":
        controller.train(steps=trainer_config.train_steps)
    elif mode == "train_and_eval":
        eval_logs = controller.train_and_evaluate(
            train_steps=trainer_config.train_steps,
            eval_steps=validation_steps,
            eval_interval=trainer_config.validation_interval,
        )
    elif mode == "eval":
        eval_logs = controller.evaluate(steps=validation_steps)
    elif mode == "continuous_eval":
        eval_logs = _evaluate_continuously(controller, trainer, params, model_dir)
    if run_post_eval:
        eval_logs = controller.evaluate(steps=validation_steps)
    return eval_logs


@contextlib.contextmanager
def _naming_corrupt_files(params: ExperimentConfig) -> Iterator[None]:
    """Re-raises a `DataLossError` as a `CorruptRecordError` naming the corrupt input files."""
    try:
        yield
    except tf.errors.DataLossError as error:
        if isinstance(error, data.CorruptRecordError):
            raise
        files = []
        for data_config in (params.task.train_data, params.task.validation_data):
            paths = data_config.input_path
            for pattern in paths.values() if isinstance(paths, dict) else [paths]:
                if pattern:
                    with contextlib.suppress(data.InputNotFoundError):
                        files += data.match_files(pattern)
        raise data.explain_data_error(
            error, files, source="task.train_data / task.validation_data input_path"
        ) from error


def _initialize(task: Task, trainer: Trainer) -> None:
    """Starts a fresh run: loads `init_checkpoint`, then restarts the EMA from those weights."""
    task.initialize(trainer.model)
    if trainer.ema is not None:
        trainer.ema.reset()


def _evaluate_continuously(
    controller: orbit.Controller, trainer: Trainer, params: ExperimentConfig, model_dir: str
) -> Any:
    """Evaluates each new checkpoint; stops after the one at `train_steps` or on timeout."""
    train_steps = params.trainer.train_steps
    output = None

    def finished() -> bool:
        return train_steps > 0 and int(trainer.global_step.numpy()) >= train_steps

    for path in tf.train.checkpoints_iterator(
        model_dir, timeout=params.trainer.continuous_eval_timeout, timeout_fn=finished
    ):
        controller.restore_checkpoint(path)
        logging.info("continuous_eval: evaluating %s", path)
        output = controller.evaluate(steps=params.trainer.validation_steps)
        if finished():
            break
    return output
