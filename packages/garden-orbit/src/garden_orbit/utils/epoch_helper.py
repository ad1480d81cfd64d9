"""Turns a global step counter into epochs, for trainers that act at epoch boundaries."""

from __future__ import annotations

from garden_orbit._tensorflow import tf


class EpochHelper:
    """Tracks epoch boundaries from the global step.

    Typical use inside a `StandardTrainer`:

        def train_loop_begin(self):
            if self.epoch_helper.epoch_begin():
                ...  # e.g. reset per-epoch metrics

        def train_loop_end(self):
            if self.epoch_helper.epoch_end():
                ...  # e.g. report per-epoch metrics
    """

    def __init__(self, epoch_steps: int, global_step: tf.Variable):
        """Initializes the helper.

        Args:
          epoch_steps: The number of global steps in one epoch; must be positive.
          global_step: The global step variable that training increments.

        Raises:
          ValueError: If `epoch_steps` is not a positive integer.
        """
        if int(epoch_steps) != epoch_steps or epoch_steps <= 0:
            raise ValueError(
                f"EpochHelper: epoch_steps must be a positive integer, got {epoch_steps}."
            )
        self._epoch_steps = int(epoch_steps)
        self._global_step = global_step
        self._current_epoch: int | None = None
        self._epoch_start_step: int | None = None
        self._in_epoch = False

    def epoch_begin(self) -> bool:
        """Starts an epoch unless one is running; returns True if one was started."""
        if self._in_epoch:
            return False
        step = int(self._global_step.numpy())
        self._epoch_start_step = step
        self._current_epoch = step // self._epoch_steps
        self._in_epoch = True
        return True

    def epoch_end(self) -> bool:
        """Returns True (and ends the epoch) if the global step has left the current epoch.

        Raises:
          ValueError: If no epoch was started with `epoch_begin`.
        """
        if not self._in_epoch:
            raise ValueError(
                "EpochHelper.epoch_end was called outside an epoch: call epoch_begin first."
            )
        if int(self._global_step.numpy()) // self._epoch_steps > self._current_epoch:
            self._in_epoch = False
            return True
        return False

    @property
    def batch_index(self) -> int:
        """The number of steps taken since the current epoch began."""
        if self._epoch_start_step is None:
            return 0
        return int(self._global_step.numpy()) - self._epoch_start_step

    @property
    def current_epoch(self) -> int | None:
        """The index of the current (or last started) epoch; None before the first one."""
        return self._current_epoch
