"""The `Controller`: the outer loop of training and evaluation.

A trainer or evaluator (see `garden_orbit.runner`) knows how to run N steps. The Controller
decides when to run them and what happens around them: it restores and saves checkpoints,
interleaves evaluation with training, writes TensorBoard summaries and a `metrics.jsonl`
record, shows progress, and calls user actions after each block of training steps and each
evaluation.

The four outer loops are `train`, `evaluate`, `train_and_evaluate` and
`evaluate_continuously`. Each is short and readable on purpose: a program that needs a
different outer loop can subclass the Controller or write its own from the same parts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from absl import logging

from garden_orbit import runner
from garden_orbit._tensorflow import tf
from garden_orbit.utils.common import format_metrics, format_number, get_value
from garden_orbit.utils.metrics_log import MetricsJsonlWriter
from garden_orbit.utils.progress import ProgressReporter
from garden_orbit.utils.summary_manager import SummaryManager, scalar_summary
from garden_orbit.utils.summary_manager_interface import SummaryManagerInterface

# An action is any callable that takes the output of a block of training steps or of an
# evaluation; see `garden_orbit.actions`.
Action = Callable[[runner.Output], None]

METRICS_JSONL_FILENAME = "metrics.jsonl"


def _format_output(output: Any) -> str:
    """Formats a loop's output for a log line: `accuracy 0.121  loss 2.45` for a dict."""
    if isinstance(output, dict):
        return format_metrics(output)
    return format_number(output)


def _as_tf_variable(global_step: Any) -> tf.Variable:
    """Returns `global_step` as a `tf.Variable`, unwrapping a Keras 3 variable if needed."""
    if isinstance(global_step, tf.Variable):
        return global_step
    backing = getattr(global_step, "value", None)  # keras.Variable on the TensorFlow backend.
    if isinstance(backing, tf.Variable):
        return backing
    raise ValueError(
        "Controller: `global_step` must be a tf.Variable (or a Keras variable such as "
        f"`optimizer.iterations`), got {type(global_step).__name__}."
    )


class StepTimer:
    """Measures training speed in global steps per second between two readings."""

    def __init__(self, step: tf.Variable):
        self._step = step
        self.start()

    def start(self) -> None:
        """Starts a new measurement from the current step and time."""
        self.last_iteration = int(self._step.numpy())
        self.last_time = time.time()

    def steps_per_second(self, restart: bool = True) -> float:
        """Returns the speed since the last `start` (and restarts the measurement)."""
        elapsed = time.time() - self.last_time
        steps = int(self._step.numpy()) - self.last_iteration
        if restart:
            self.start()
        return steps / elapsed if elapsed > 0 else float("inf")


class Controller:
    """Runs training and evaluation loops, with checkpoints, summaries and actions.

    Example:

        controller = garden_orbit.Controller(
            trainer=trainer,
            evaluator=evaluator,
            global_step=trainer.global_step,
            steps_per_loop=100,
            checkpoint_manager=tf.train.CheckpointManager(
                checkpoint, model_dir, max_to_keep=3, step_counter=trainer.global_step,
                checkpoint_interval=1000),
            summary_dir=os.path.join(model_dir, "train"),
            eval_summary_dir=os.path.join(model_dir, "validation"),
        )
        controller.train_and_evaluate(train_steps=10_000, eval_interval=1000)

    If `checkpoint_manager` is given and its directory holds a checkpoint, the constructor
    restores the latest one, so running the same program again resumes training.
    """

    def __init__(
        self,
        *,
        global_step: tf.Variable,
        trainer: runner.AbstractTrainer | None = None,
        evaluator: runner.AbstractEvaluator | None = None,
        strategy: tf.distribute.Strategy | None = None,
        # Actions
        train_actions: Iterable[Action] | None = None,
        eval_actions: Iterable[Action] | None = None,
        # Training
        steps_per_loop: int | Callable[[int], int] | None = None,
        checkpoint_manager: tf.train.CheckpointManager | None = None,
        enable_async_checkpointing: bool = False,
        # Summaries
        summary_interval: int | None = None,
        summary_dir: str | None = None,
        eval_summary_dir: str | None = None,
        summary_manager: SummaryManagerInterface | None = None,
        eval_summary_manager: SummaryManagerInterface | None = None,
        # Reporting
        show_progress: bool | None = None,
        metrics_jsonl: bool | str = True,
    ):
        """Initializes the Controller (and restores the latest checkpoint, if any).

        Args:
          global_step: The integer variable counting training steps: a `tf.Variable` such
            as `garden_orbit.utils.create_global_step()`, or a Keras 3 variable such as
            `optimizer.iterations` (its backing `tf.Variable` is used).
          trainer: The `AbstractTrainer` that runs training steps.
          evaluator: The `AbstractEvaluator` that runs evaluation.
          strategy: The distribution strategy; defaults to the one in scope.
          train_actions: Callables run with the output of each block of training steps,
            before its summaries are written and before any checkpoint is saved.
          eval_actions: Callables run with the output of each evaluation.
          steps_per_loop: Training steps per call of `trainer.train`: a positive int, or a
            function of the current global step returning one. Required with a trainer.
          checkpoint_manager: Saves and restores checkpoints. Its `checkpoint_interval`
            (with `step_counter`) sets how often `train` saves; a checkpoint is always saved
            when `train` completes. None disables checkpointing.
          enable_async_checkpointing: Write checkpoints in a background thread; training
            continues meanwhile and the Controller waits for pending writes before it
            restores, finishes a loop, or saves again.
          summary_interval: Record `tf.summary` calls made inside `trainer.train` only every
            this many steps; a multiple of an int `steps_per_loop`. None records none of
            them. The Controller's own summaries are written after every loop.
          summary_dir: Where training summaries go (None: no training summaries).
          eval_summary_dir: Where evaluation summaries go; defaults to `summary_dir`.
          summary_manager: A custom writer for training summaries (replaces `summary_dir`).
          eval_summary_manager: A custom writer for evaluation summaries.
          show_progress: Show a self-updating progress line (step, steps/s, ETA, metrics)
            instead of one log line per loop. None shows it when stdout is a terminal.
          metrics_jsonl: Append every training and evaluation output to a JSON-lines
            file: True writes `metrics.jsonl` in the parent directory of `summary_dir` when
            `summary_dir` ends in `train` (the Model Garden layout `model_dir/train`),
            otherwise in `summary_dir` itself; a string is the file's path; False turns it off.
            Under multi-worker training only the chief writes it.

        Raises:
          ValueError: If the arguments are inconsistent (no trainer and no evaluator, a
            missing or non-positive `steps_per_loop`, a `summary_interval` that is not a
            multiple of `steps_per_loop`, or a `global_step` that is not a variable).
        """
        if trainer is None and evaluator is None:
            raise ValueError("Controller: `trainer` and `evaluator` cannot both be None.")
        if trainer is not None:
            if steps_per_loop is None:
                raise ValueError("Controller: `steps_per_loop` is required with a `trainer`.")
            if not callable(steps_per_loop) and (
                not isinstance(steps_per_loop, int) or steps_per_loop < 1
            ):
                raise ValueError(
                    f"Controller: `steps_per_loop` ({steps_per_loop!r}) must be a positive "
                    "integer or a function of the global step returning one."
                )
            if summary_interval is not None:
                if summary_interval <= 0:
                    raise ValueError(
                        f"Controller: `summary_interval` ({summary_interval}) must be positive."
                    )
                if not callable(steps_per_loop) and summary_interval % steps_per_loop != 0:
                    raise ValueError(
                        f"Controller: `summary_interval` ({summary_interval}) must be a "
                        f"multiple of `steps_per_loop` ({steps_per_loop})."
                    )
        global_step = _as_tf_variable(global_step)

        self.trainer = trainer
        self.evaluator = evaluator
        self.strategy = strategy or tf.distribute.get_strategy()
        self.train_actions = tuple(train_actions or ())
        self.eval_actions = tuple(eval_actions or ())
        self.global_step = global_step
        self.checkpoint_manager = checkpoint_manager
        self._checkpoint_options = tf.train.CheckpointOptions(
            experimental_enable_async_checkpoint=enable_async_checkpointing
        )
        self._enable_async_checkpointing = enable_async_checkpointing

        self.steps_per_loop = steps_per_loop
        self.summary_interval = summary_interval
        self.step_timer: StepTimer | None = None
        self.summary_manager = summary_manager or SummaryManager(
            summary_dir, scalar_summary, global_step=self.global_step
        )
        if eval_summary_manager is not None:
            self.eval_summary_manager = eval_summary_manager
        elif (eval_summary_dir or summary_dir) == summary_dir and summary_manager is None:
            self.eval_summary_manager = self.summary_manager
        else:
            self.eval_summary_manager = SummaryManager(
                eval_summary_dir or summary_dir, scalar_summary, global_step=self.global_step
            )
        self.progress = ProgressReporter(enabled=show_progress)
        self.metrics_writer = self._create_metrics_writer(metrics_jsonl, summary_dir)
        self._target_step: int | None = None

        tf.summary.experimental.set_step(self.global_step)
        if self.checkpoint_manager is not None:
            restored = self.restore_checkpoint()
            if restored:
                self._log(f"restored from checkpoint: {restored}")

    # Outer loops.

    def train(self, steps: int | None = None, checkpoint_at_completion: bool = True) -> None:
        """Trains until the global step reaches `steps`, or until the data ends.

        Args:
          steps: The global step to train up to. None trains until the training data is
            exhausted (the trainer runs fewer steps than asked).
          checkpoint_at_completion: Save a checkpoint when training stops, whatever the
            checkpoint interval.

        Raises:
          RuntimeError: If `steps` is given and a block of training makes no progress
            (the training data ran out, or the trainer does not advance `global_step`).
        """
        self._require("trainer", for_method="train")
        current_step = int(self.global_step.numpy())
        target = "the end of the data" if steps is None else f"step {steps}"
        self._log(f"train | step: {current_step: 6d} | training until {target}...")
        self._target_step = steps
        try:
            while steps is None or current_step < steps:
                num_steps = self._next_loop_size(current_step)
                if steps is not None:
                    num_steps = min(steps - current_step, num_steps)
                if self._train_n_steps(num_steps):
                    self._maybe_save_checkpoint()
                    current_step = int(self.global_step.numpy())
                else:
                    if steps is None:
                        self._log(f"train | step: {current_step: 6d} | training data exhausted")
                        break
                    raise RuntimeError(
                        f"Controller.train: `trainer.train({num_steps})` left `global_step` at "
                        f"{current_step}, short of the target step {steps}: the training data "
                        "is exhausted (repeat the dataset, or call train(steps=None) to train "
                        "until the data ends), or the trainer does not increment `global_step`."
                    )
        finally:
            self.progress.finish()
            self._target_step = None
        if checkpoint_at_completion:
            self._maybe_save_checkpoint(check_interval=False)
        self._sync_async_checkpoint()

    def evaluate(self, steps: int = -1) -> runner.Output | None:
        """Runs one evaluation and returns its results as NumPy values.

        Args:
          steps: The number of evaluation steps; -1 evaluates the whole dataset.

        Returns:
          The evaluator's output, converted to NumPy (an empty dict if it returned None).

        Raises:
          ValueError: If there is no evaluator, or `steps` is neither positive nor -1.
        """
        self._require("evaluator", for_method="evaluate")
        if steps > 0:
            steps_message = f"running {steps} steps of evaluation..."
        elif steps == -1:
            steps_message = "running complete evaluation..."
        else:
            raise ValueError(f"Controller.evaluate: `steps` ({steps}) must be > 0 or -1.")

        current_step = int(self.global_step.numpy())
        self._log(f" eval | step: {current_step: 6d} | {steps_message}")
        start = time.time()
        with self.eval_summary_manager.summary_writer().as_default():
            output = self.evaluator.evaluate(tf.convert_to_tensor(steps, dtype=tf.int32))
        elapsed = time.time() - start

        output = output or {}
        for action in self.eval_actions:
            action(output)
        output = tf.nest.map_structure(get_value, output)
        self._log(
            f" eval | step: {current_step: 6d} | eval time: {elapsed: 6.1f} sec | "
            f"{_format_output(output)}"
        )
        self.eval_summary_manager.write_summaries(output)
        self.eval_summary_manager.flush()
        if self.metrics_writer is not None and isinstance(output, dict):
            self.metrics_writer.write("eval", current_step, output)
        return output

    def train_and_evaluate(
        self, train_steps: int, eval_steps: int = -1, eval_interval: int | None = None
    ) -> runner.Output | None:
        """Trains to `train_steps`, evaluating every `eval_interval` steps and at the end.

        Args:
          train_steps: The global step to train up to.
          eval_steps: Steps per evaluation; -1 evaluates the whole dataset.
          eval_interval: Training steps between evaluations. Training stops at each
            multiple of it even mid-loop. None evaluates only when training is done.

        Returns:
          The output of the last evaluation (None if no training step was left to run).
        """
        self._require("trainer", for_method="train_and_evaluate")
        self._require("evaluator", for_method="train_and_evaluate")
        if eval_interval is not None and eval_interval <= 0:
            raise ValueError(
                f"Controller.train_and_evaluate: `eval_interval` ({eval_interval}) must be "
                "positive or None."
            )
        current_step = int(self.global_step.numpy())
        eval_interval = eval_interval or max(train_steps - current_step, 1)
        output = None
        while current_step < train_steps:
            interval = min(train_steps - current_step, eval_interval)
            self.train(steps=current_step + interval, checkpoint_at_completion=False)
            output = self.evaluate(steps=eval_steps)
            current_step = int(self.global_step.numpy())
        self._maybe_save_checkpoint(check_interval=False)
        self._sync_async_checkpoint()
        return output

    def evaluate_continuously(
        self,
        steps: int = -1,
        timeout: float | None = None,
        timeout_fn: Callable[[], bool] | None = None,
    ) -> runner.Output | None:
        """Evaluates each new checkpoint that appears in the checkpoint directory.

        Args:
          steps: Steps per evaluation; -1 evaluates the whole dataset.
          timeout: Seconds to wait for a new checkpoint before calling `timeout_fn`
            (None waits forever).
          timeout_fn: Called after a timeout; returning True stops the loop.

        Returns:
          The output of the last evaluation, or None if no checkpoint appeared.
        """
        self._require("evaluator", for_method="evaluate_continuously")
        self._require("checkpoint_manager", for_method="evaluate_continuously")
        output = None
        for checkpoint_path in tf.train.checkpoints_iterator(
            self.checkpoint_manager.directory, timeout=timeout, timeout_fn=timeout_fn
        ):
            self.restore_checkpoint(checkpoint_path)
            output = self.evaluate(steps)
        return output

    # Checkpoints.

    def restore_checkpoint(self, checkpoint_path: str | None = None) -> str | None:
        """Restores a checkpoint (the latest one by default); returns its path or None.

        With no checkpoint to restore, the checkpoint manager's `init_fn` (if any) runs.

        Raises:
          ValueError: If there is no checkpoint manager.
        """
        self._require("checkpoint_manager", for_method="restore_checkpoint")
        self._sync_async_checkpoint()
        with self.strategy.scope():
            if checkpoint_path is not None:
                self.checkpoint_manager.checkpoint.restore(checkpoint_path)
                return checkpoint_path
            return self.checkpoint_manager.restore_or_initialize()

    def save_checkpoint(self) -> None:
        """Saves a checkpoint now, whatever the checkpoint interval."""
        self._require("checkpoint_manager", for_method="save_checkpoint")
        self._maybe_save_checkpoint(check_interval=False)

    # Internals.

    def _next_loop_size(self, current_step: int) -> int:
        if callable(self.steps_per_loop):
            size = self.steps_per_loop(current_step)
            if not isinstance(size, int) or size < 1:
                raise ValueError(
                    f"Controller: steps_per_loop({current_step}) returned {size!r}; it must "
                    "return a positive integer."
                )
            return size
        return self.steps_per_loop

    def _train_n_steps(self, num_steps: int) -> bool:
        """Runs one block of training steps; returns False if no step ran."""
        if self.step_timer is None:
            self.step_timer = StepTimer(self.global_step)
        current_step = int(self.global_step.numpy())
        should_record = False  # A constant lets tf.function drop summary ops entirely.
        if self.summary_interval:
            interval = self.summary_interval
            should_record = lambda: tf.equal(self.global_step % interval, 0)  # noqa: E731
        with (
            self.summary_manager.summary_writer().as_default(),
            tf.summary.record_if(should_record),
        ):
            output = self.trainer.train(tf.convert_to_tensor(num_steps, dtype=tf.int32))
        new_step = int(self.global_step.numpy())
        if new_step == current_step:
            return False
        if new_step != current_step + num_steps:
            logging.info(
                "trainer.train(%d) advanced global_step from %d to %d (the data ended, or a "
                "step does not count one global step).",
                num_steps,
                current_step,
                new_step,
            )
        steps_per_second = self.step_timer.steps_per_second()
        output = output or {}
        for action in self.train_actions:
            action(output)
        output = tf.nest.map_structure(get_value, output)
        step_now = int(self.global_step.numpy())
        if step_now != new_step:  # An action restored an earlier checkpoint.
            self.step_timer.start()
        line = (
            f"train | step: {step_now: 6d} | steps/sec: {steps_per_second: 6.1f} | "
            f"{_format_output(output)}"
        )
        if self.progress.enabled:
            logging.info(line)
            self.progress.update(step_now, self._target_step, steps_per_second, output)
        else:
            self._log(line)
        if isinstance(output, dict):
            output["steps_per_second"] = steps_per_second
            self.summary_manager.write_summaries(output)
            if self.metrics_writer is not None:
                self.metrics_writer.write("train", step_now, output)
        self.summary_manager.flush()
        return True

    def _maybe_save_checkpoint(self, check_interval: bool = True) -> bool:
        """Saves a checkpoint if there is a manager (and, with `check_interval`, it is due).

        A manager without a `checkpoint_interval` saves only when asked to regardless of the
        interval (at the end of `train`, or through `save_checkpoint`).
        """
        if self.checkpoint_manager is None:
            return False
        if check_interval and not self.checkpoint_manager.checkpoint_interval:
            return False
        step = int(self.global_step.numpy())
        latest = self.checkpoint_manager.latest_checkpoint
        if latest is not None and latest.endswith(f"-{step}"):
            return False  # This step is already saved.
        self._sync_async_checkpoint()
        path = self.checkpoint_manager.save(
            checkpoint_number=step,
            check_interval=check_interval,
            options=self._checkpoint_options,
        )
        if path is not None:
            logging.info("saved checkpoint %s", path)
        return path is not None

    def _sync_async_checkpoint(self) -> None:
        if self._enable_async_checkpointing and self.checkpoint_manager is not None:
            self.checkpoint_manager.sync()

    def _create_metrics_writer(
        self, metrics_jsonl: bool | str, summary_dir: str | None
    ) -> MetricsJsonlWriter | None:
        if not metrics_jsonl:
            return None
        if not getattr(self.strategy.extended, "should_save_summary", True):
            return None  # A non-chief worker of a multi-worker job.
        if isinstance(metrics_jsonl, str):
            return MetricsJsonlWriter(metrics_jsonl)
        if summary_dir is None:
            return None
        directory = summary_dir.rstrip("/")
        if os.path.basename(directory) == "train":
            directory = os.path.dirname(directory)
        return MetricsJsonlWriter(os.path.join(directory, METRICS_JSONL_FILENAME))

    def _log(self, message: str) -> None:
        """Logs `message` and prints it (below the progress line, if one is shown)."""
        logging.info(message)
        if self.progress.enabled:
            self.progress.message(message)
        else:
            print(message)

    def _require(self, attribute: str, for_method: str) -> None:
        if getattr(self, attribute, None) is None:
            raise ValueError(
                f"Controller.{for_method} needs `{attribute}`, which was not given to the "
                "Controller."
            )
