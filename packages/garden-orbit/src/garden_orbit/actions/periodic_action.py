"""Provides `PeriodicAction`, which runs an action only every `interval` global steps.

The Controller calls train actions after every inner loop of `steps_per_loop` steps. Some
actions (an expensive export, a report to an external service) should run less often; this
wrapper runs its action only when the global step is a multiple of `interval`, so the
interval should be a multiple of `steps_per_loop` for the action to run at all.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from garden_orbit import runner
from garden_orbit._tensorflow import tf


class PeriodicAction:
    """Wraps an action so that it runs only when the global step is a multiple of `interval`.

    For example, with `steps_per_loop=100`, the following exports every 1000 steps:

        orbit.actions.PeriodicAction(export_action, interval=1000, global_step=step)
    """

    def __init__(
        self,
        action: Callable[[runner.Output], Any],
        interval: int,
        global_step: tf.Variable,
    ):
        """Initializes the instance.

        Args:
          action: The action (a callable taking the train or eval output) to wrap.
          interval: The period in global steps; the action runs when
            `global_step % interval == 0` at the time the wrapper is called (including
            at step 0). It must be a positive integer.
          global_step: The global step variable (anything with a `numpy()` method that
            returns an integer) that the Controller advances.

        Raises:
          TypeError: If `action` is not callable or `interval` is not an integer.
          ValueError: If `interval` is not positive.
        """
        if not callable(action):
            raise TypeError(
                f"PeriodicAction: action must be callable, got {type(action).__name__}."
            )
        if isinstance(interval, bool):
            raise TypeError(f"PeriodicAction: interval must be an integer, got {interval!r}.")
        try:
            interval = operator.index(interval)  # Accepts int and NumPy integers, not floats.
        except TypeError:
            raise TypeError(
                f"PeriodicAction: interval must be an integer, got {interval!r}."
            ) from None
        if interval <= 0:
            raise ValueError(
                f"PeriodicAction: interval must be a positive number of steps, got {interval}."
            )
        self._action = action
        self._interval = interval
        self._global_step = global_step

    @property
    def interval(self) -> int:
        """The period, in global steps, at which the wrapped action runs."""
        return self._interval

    @property
    def action(self) -> Callable[[runner.Output], Any]:
        """The wrapped action."""
        return self._action

    def __call__(self, output: runner.Output) -> None:
        """Runs the wrapped action on `output` if the global step is a multiple of `interval`.

        Args:
          output: The train or eval output to hand to the wrapped action.
        """
        if int(self._global_step.numpy()) % self._interval == 0:
            self._action(output)
