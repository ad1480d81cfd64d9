"""Provides `NaNGuard`, a train action that stops (or rewinds) training on a NaN or Inf loss.

A diverged run otherwise keeps training on NaN weights and, worse, checkpoints them, so that
a restart resumes from garbage. The Controller runs train actions after each inner train
loop and before it saves a checkpoint, so a `NaNGuard` that raises `NaNLossError` keeps the
non-finite weights out of every checkpoint. Given a checkpoint manager and `max_retries`, it
can instead restore the latest (finite) checkpoint and let training go on from there a few
times before giving up, which helps with rare, data- or numerics-dependent blow-ups.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from absl import logging

from garden_orbit import runner
from garden_orbit._tensorflow import tf
from garden_orbit.actions import _values


class NaNLossError(RuntimeError):
    """Raised by `NaNGuard` when a watched metric is NaN or infinite and it cannot recover."""


def _describe_non_finite(value: Any) -> str | None:
    """Returns how `value` is non-finite (for example "nan"), or None if it is all finite."""
    array = _values.as_real_array(value)
    if array is None:
        return None
    array = array.astype(np.float64)
    finite = np.isfinite(array)
    if finite.all():
        return None
    if array.size == 1:
        return str(float(array.reshape(())))
    first = float(array[~finite][0])
    return f"non-finite ({array.size - int(finite.sum())} of {array.size} values, first {first})"


class NaNGuard:
    """A train action that raises, or restores the last checkpoint, on a NaN or Inf metric.

    Without a checkpoint manager, or once `max_retries` restores have been made, a non-finite
    value raises `NaNLossError` with a message like "loss is nan at global step 40 (in the
    train loop ending at that step)". Otherwise the latest checkpoint is restored (rewinding
    the variables, the global step and whatever else the checkpoint tracks, such as a
    dataset iterator) and training continues from it:

        nan_guard = orbit.actions.NaNGuard(
            trainer.global_step, checkpoint_manager=checkpoint_manager, max_retries=2)
        controller = orbit.Controller(..., train_actions=[nan_guard])

    Restoring replays the same steps; if the checkpoint also restores the input position,
    a blow-up caused by a particular batch repeats, and the retries are soon used up.
    """

    def __init__(
        self,
        global_step: tf.Variable,
        metric: str | None = "loss",
        checkpoint_manager: tf.train.CheckpointManager | None = None,
        max_retries: int = 0,
    ):
        """Initializes the instance.

        Args:
          global_step: The global step variable, used in messages (anything with a
            `numpy()` method returning an integer).
          metric: The key of the value to watch in the (dict) train output, which may be a
            scalar or an array (every element must be finite). If None, every scalar number
            in the output, nested dicts included, is watched.
          checkpoint_manager: An optional `tf.train.CheckpointManager` whose latest
            checkpoint is restored on a non-finite value, while retries remain.
          max_retries: How many times, in total, a non-finite value may be answered by
            restoring the latest checkpoint before `NaNLossError` is raised. Zero means
            always raise.

        Raises:
          TypeError: If `max_retries` is not an integer.
          ValueError: If `max_retries` is negative, or positive without a
            `checkpoint_manager` to restore from.
        """
        if isinstance(max_retries, bool):
            raise TypeError(f"NaNGuard: max_retries must be an integer, got {max_retries!r}.")
        try:
            max_retries = operator.index(max_retries)
        except TypeError:
            raise TypeError(
                f"NaNGuard: max_retries must be an integer, got {max_retries!r}."
            ) from None
        if max_retries < 0:
            raise ValueError(f"NaNGuard: max_retries must be >= 0, got {max_retries}.")
        if max_retries > 0 and checkpoint_manager is None:
            raise ValueError(
                f"NaNGuard: max_retries={max_retries} needs a checkpoint_manager to restore from."
            )
        self._global_step = global_step
        self._metric = metric
        self._checkpoint_manager = checkpoint_manager
        self._max_retries = max_retries
        self._retries = 0

    @property
    def metric(self) -> str | None:
        """The key of the watched value, or None when every scalar is watched."""
        return self._metric

    @property
    def max_retries(self) -> int:
        """How many restores, in total, are allowed before `NaNLossError` is raised."""
        return self._max_retries

    @property
    def retries(self) -> int:
        """How many times the latest checkpoint has been restored so far."""
        return self._retries

    def _find_non_finite(self, output: runner.Output | None) -> tuple[str, str] | None:
        """Returns `(name, description)` of the first non-finite watched value, or None."""
        if self._metric is None:
            for name, value in _values.iter_scalars(output):
                description = _describe_non_finite(value)
                if description is not None:
                    return name, description
            return None
        value = _values.lookup_metric(output, self._metric, "NaNGuard")
        if _values.as_real_array(value) is None:
            raise TypeError(
                f"NaNGuard: metric {self._metric!r} must be a number or an array of numbers, "
                f"got {value!r}."
            )
        description = _describe_non_finite(value)
        return None if description is None else (self._metric, description)

    def __call__(self, output: runner.Output) -> None:
        """Checks the watched values of a train output, reacting to NaN or Inf.

        Args:
          output: The output of the train loop that just finished.

        Raises:
          NaNLossError: If a watched value is NaN or infinite and there is no checkpoint
            manager, the retries are used up, there is no checkpoint yet, or restoring did
            not cover every variable.
          KeyError: If `metric` is not a key of `output` (the message lists the keys
            present).
          TypeError: If `metric` is set but `output` is not a dict or the value is not
            numeric.
        """
        found = self._find_non_finite(output)
        if found is None:
            return
        name, description = found
        step = int(self._global_step.numpy())
        problem = (
            f"{name} is {description} at global step {step} (in the train loop ending at that step)"
        )
        manager = self._checkpoint_manager
        if manager is None:
            raise NaNLossError(f"{problem}; training stopped before checkpointing it.")
        if self._retries >= self._max_retries:
            raise NaNLossError(
                f"{problem}; giving up after {self._retries} restore(s) of the latest "
                f"checkpoint (max_retries={self._max_retries})."
            )
        latest = manager.latest_checkpoint
        if latest is None:
            raise NaNLossError(
                f"{problem}, and there is no checkpoint in {manager.directory} to restore."
            )
        status = manager.checkpoint.restore(latest)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as error:
            raise NaNLossError(
                f"{problem}; restoring {latest} left some variables unrestored, so they may "
                f"still hold non-finite values: {error}"
            ) from error
        self._retries += 1
        logging.warning(
            "NaNGuard: %s; restored %s (global step is now %d), retry %d of %d.",
            problem,
            latest,
            int(self._global_step.numpy()),
            self._retries,
            self._max_retries,
        )
