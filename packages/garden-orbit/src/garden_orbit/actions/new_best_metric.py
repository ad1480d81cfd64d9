"""Provides the `NewBestMetric` condition and `JSONPersistedValue`, which backs it.

`NewBestMetric` remembers the best value a metric has reached and tells whether an output
improves on it; as a condition of a `ConditionalAction` it triggers actions (typically an
export) only on improvement. Given a filename, it keeps the best value in a small JSON file
through `JSONPersistedValue`, so that a job restarted after a preemption still knows it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

from absl import logging

from garden_orbit import runner
from garden_orbit._tensorflow import tf
from garden_orbit.actions import _values
from garden_orbit.utils import atomic_write

# A function computing a metric value from the output of a train loop or an evaluation.
MetricFn = Callable[[runner.Output], float | tf.Tensor]


class JSONPersistedValue:
    """A JSON-serializable value kept in a file, so that it survives restarts.

    The file is read once, on construction; after that `read` returns the value in memory
    and `write` updates both the memory and the file. Writes are atomic: the new content goes
    to a temporary file in the same directory, which is then renamed over the old one, so a
    crash leaves either the old or the new content, never a truncated file.
    """

    def __init__(self, initial_value: Any, filename: str | None, write_value: bool = True):
        """Initializes the instance, reading the value from `filename` if it exists.

        Args:
          initial_value: The value to use when `filename` is None or does not exist yet. It
            must be JSON-serializable (nested lists, dicts, strings, numbers, booleans,
            None).
          filename: The path of the JSON file (local or any `tf.io.gfile` file system), or
            None to keep the value in memory only. An empty file counts as absent.
          write_value: Whether this instance writes to `filename`: when the file does not
            exist yet (the initial value is written) and on every `write`. Setting it to
            False on all but one client of a multi-client job avoids redundant writes.
            Has no effect without a filename.

        Raises:
          ValueError: If `filename` exists but does not contain valid JSON.
          TypeError: If the value to write is not JSON-serializable.
        """
        self._filename = os.fspath(filename) if filename is not None else None
        self._write_value = write_value
        if self._filename is not None and tf.io.gfile.exists(self._filename):
            with tf.io.gfile.GFile(self._filename, "r") as f:
                content = f.read()
            if content.strip():
                try:
                    self._value = json.loads(content)
                except ValueError as error:
                    raise ValueError(
                        f"JSONPersistedValue: {self._filename} does not contain valid JSON "
                        f"({error}); fix or delete the file to start from the initial value."
                    ) from error
                return
            logging.warning(
                "JSONPersistedValue: %s is empty; starting from the initial value %r.",
                self._filename,
                initial_value,
            )
        self._value = None
        self.write(initial_value)

    @property
    def filename(self) -> str | None:
        """The path of the backing JSON file, or None."""
        return self._filename

    def read(self) -> Any:
        """Returns the current value."""
        return self._value

    def write(self, value: Any) -> None:
        """Sets the value and, if this instance writes, stores it in the file atomically.

        Args:
          value: The new, JSON-serializable value.

        Raises:
          TypeError: If `value` is not JSON-serializable; the current value is unchanged.
        """
        try:
            content = json.dumps(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"JSONPersistedValue: the value {value!r} is not JSON-serializable: {error}"
            ) from error
        if self._filename is not None and self._write_value:
            self._write_atomically(content)
        self._value = value

    def _write_atomically(self, content: str) -> None:
        """Replaces the file's content by writing a sibling file and renaming it over it."""
        atomic_write.write_text(self._filename, content)


class NewBestMetric:
    """A condition that holds when an output holds a new best value of a metric.

    `test(output)` only checks; `commit(output)` checks and, on a new best, records it;
    calling the instance is the same as `commit`. Both satisfy the action protocol, so they
    can serve as a `ConditionalAction` condition or be run as actions. Keeping them apart
    makes exports failure-safe: record the new best only after the export succeeded.

        new_best = orbit.actions.NewBestMetric("accuracy", filename=f"{model_dir}/best.json")
        export_on_best = orbit.actions.ConditionalAction(
            condition=new_best.test,
            action=[orbit.actions.ExportSavedModel(...), new_best.commit])

    The first value seen (when nothing was recorded before) is always a new best; a NaN is
    never one. In multi-client jobs, all clients must compute the same metric; set
    `write_metric=False` on all but one of them to avoid redundant writes.

    Attributes:
      metric: The metric key or function passed to `__init__`.
      higher_is_better: Whether larger values are better.
    """

    def __init__(
        self,
        metric: str | MetricFn,
        higher_is_better: bool = True,
        filename: str | None = None,
        write_metric: bool = True,
    ):
        """Initializes the instance.

        Args:
          metric: The key of the metric in the (dict) output, or a function computing the
            metric value (a scalar number or tensor) from the output.
          higher_is_better: If True, a value is a new best when it is strictly greater than
            the best so far; if False, when it is strictly smaller.
          filename: Optional path of a JSON file that stores the best value, so that it
            persists across restarts. If it exists, the best value is read from it.
          write_metric: Whether this instance writes new best values to `filename` (it
            always reads it). Has no effect without a filename.

        Raises:
          TypeError: If `metric` is neither a string nor callable.
          ValueError: If `filename` exists but does not contain valid JSON, or holds
            something other than a number or null.
        """
        if not (isinstance(metric, str) or callable(metric)):
            raise TypeError(
                "NewBestMetric: metric must be an output key or a function of the output, got "
                f"{type(metric).__name__}."
            )
        self.metric = metric
        self.higher_is_better = higher_is_better
        self._best = JSONPersistedValue(
            initial_value=None, filename=filename, write_value=write_metric
        )
        stored = self._best.read()
        if stored is not None and (
            isinstance(stored, bool) or not isinstance(stored, (int, float)) or math.isnan(stored)
        ):
            raise ValueError(
                f"NewBestMetric: {filename} holds {stored!r}, which is not a best metric value "
                "(a number, or null for none yet)."
            )

    @property
    def _metric_name(self) -> str:
        if isinstance(self.metric, str):
            return self.metric
        return getattr(self.metric, "__name__", repr(self.metric))

    @property
    def best_value(self) -> float | None:
        """The best value recorded so far, or None if none has been recorded."""
        value = self._best.read()
        return None if value is None else float(value)

    def metric_value(self, output: runner.Output) -> float:
        """Returns the metric's value for `output` as a float.

        Args:
          output: The train or eval output.

        Returns:
          The metric value.

        Raises:
          KeyError: If `metric` is a key missing from `output` (the message lists the keys
            present).
          TypeError: If `metric` is a key but `output` is not a dict.
          ValueError: If the value is not a single real number.
        """
        if callable(self.metric):
            value = self.metric(output)
        else:
            value = _values.lookup_metric(output, self.metric, "NewBestMetric")
        return _values.to_float(value, self._metric_name, "NewBestMetric")

    def _is_better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        best = self.best_value
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best

    def test(self, output: runner.Output) -> bool:
        """Returns whether `output` holds a new best value, without recording it.

        Args:
          output: The train or eval output to test.

        Returns:
          True if the metric value in `output` beats the best value so far.
        """
        return self._is_better(self.metric_value(output))

    def commit(self, output: runner.Output) -> bool:
        """Returns whether `output` holds a new best value, and records it if so.

        Args:
          output: The train or eval output to test.

        Returns:
          True if the metric value in `output` beat the best value so far; it is then the
          new best value (and is written to the file, if any).
        """
        value = self.metric_value(output)
        if not self._is_better(value):
            return False
        previous = self.best_value
        self._best.write(value)
        logging.info(
            "NewBestMetric: new best %s %s (previous best: %s)", self._metric_name, value, previous
        )
        return True

    def __call__(self, output: runner.Output) -> bool:
        """Same as `commit`: tests `output` and records a new best value.

        Args:
          output: The train or eval output to test.

        Returns:
          True if `output` held a new best value.
        """
        return self.commit(output)
