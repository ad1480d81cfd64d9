"""Provides `ConditionalAction`, which runs actions only when a condition holds.

Separating "when" (a condition) from "what" (one or more actions) lets small, reusable
predicates such as `NewBestMetric` be combined with any action, for example exporting a
SavedModel only when the evaluation accuracy improves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from garden_orbit import runner
from garden_orbit._tensorflow import tf

# A callable applied to the output of a train loop or an evaluation.
Action = Callable[[runner.Output], Any]

# A predicate on the output of a train loop or an evaluation; a scalar boolean tensor is
# accepted as well as a Python bool.
Condition = Callable[[runner.Output], bool | tf.Tensor]


def _as_bool(value: Any) -> bool:
    """Interprets a condition's result (bool, NumPy or tensor scalar) as a Python bool."""
    if isinstance(value, tf.Variable) or tf.is_tensor(value):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(
                "ConditionalAction: the condition must return a single boolean, got an array "
                f"of shape {value.shape}."
            )
        value = value.reshape(())
    return bool(value)


class ConditionalAction:
    """An action that runs other actions only when a condition holds.

    `ConditionalAction` is itself an action, so it can be given to a `Controller` as a
    train or eval action. For example, to export a SavedModel whenever the evaluation
    accuracy is above 0.9:

        export_if_good = orbit.actions.ConditionalAction(
            condition=lambda output: output["accuracy"] > 0.9,
            action=orbit.actions.ExportSavedModel(model, file_manager, signatures))

    Attributes:
      condition: The condition passed to `__init__`.
      action: The action, or iterable of actions, passed to `__init__`.
    """

    def __init__(self, condition: Condition, action: Action | Iterable[Action]):
        """Initializes the instance.

        Args:
          condition: A callable taking the train or eval output and returning whether the
            actions should run (a bool, or a scalar boolean tensor).
          action: An action (a callable taking the output), or an iterable of actions to
            run in order. An iterable is read once, here.

        Raises:
          TypeError: If `condition` is not callable, or `action` is neither callable nor an
            iterable of callables.
        """
        if not callable(condition):
            raise TypeError(
                f"ConditionalAction: condition must be callable, got {type(condition).__name__}."
            )
        if callable(action):
            actions = (action,)
        elif isinstance(action, Iterable) and not isinstance(action, (str, bytes)):
            actions = tuple(action)
        else:
            raise TypeError(
                "ConditionalAction: action must be a callable or an iterable of callables, got "
                f"{type(action).__name__}."
            )
        for index, item in enumerate(actions):
            if not callable(item):
                raise TypeError(
                    f"ConditionalAction: action {index} is not callable ({type(item).__name__})."
                )
        self.condition = condition
        self.action = action
        self._actions = actions

    @property
    def actions(self) -> tuple[Action, ...]:
        """The actions run, in order, when the condition holds."""
        return self._actions

    def __call__(self, output: runner.Output) -> None:
        """Runs every action on `output`, in order, if `condition(output)` holds.

        Args:
          output: The train or eval output to test and hand to the actions.
        """
        if _as_bool(self.condition(output)):
            for action in self._actions:
                action(output)
