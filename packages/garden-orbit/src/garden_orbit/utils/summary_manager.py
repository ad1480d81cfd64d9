"""Writes the Controller's outputs as TensorBoard summaries.

TensorFlow no longer ships TensorBoard, and `tf.summary.scalar` needs it installed.
`scalar_summary` writes the same scalar records with TensorFlow alone, so garden-orbit
writes summaries that TensorBoard reads without depending on it.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from garden_orbit._tensorflow import tf
from garden_orbit.utils.summary_manager_interface import SummaryManagerInterface

_SCALAR_METADATA = None


def _scalar_metadata():
    global _SCALAR_METADATA
    if _SCALAR_METADATA is None:
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata()
        metadata.plugin_data.plugin_name = "scalars"  # TensorBoard's scalar dashboard.
        _SCALAR_METADATA = metadata.SerializeToString()
    return _SCALAR_METADATA


def scalar_summary(name: str, data: Any, step: Any = None, description: str | None = None):
    """Writes a scalar summary that TensorBoard shows, without needing TensorBoard installed.

    Same contract as `tf.summary.scalar`: it writes to the default summary writer, obeys
    `tf.summary.record_if`, and returns whether it wrote.

    Args:
      name: The summary tag.
      data: A real-valued scalar (converted to float32).
      step: The step; None uses `tf.summary.experimental.get_step()`.
      description: Ignored unless TensorBoard is installed; kept for signature parity.
    """
    del description
    with tf.name_scope("scalar_summary"):
        value = tf.cast(tf.convert_to_tensor(data), tf.float32)
        return tf.summary.write(name, value, step=step, metadata=_scalar_metadata())


def _is_real_scalar(value: Any) -> bool:
    """Whether `value` is a host-side real number (Python, NumPy scalar or 0-d array)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    return (
        isinstance(value, np.ndarray)
        and value.ndim == 0
        and np.issubdtype(value.dtype, np.number)
        and not np.issubdtype(value.dtype, np.complexfloating)
    )


class SummaryManager(SummaryManagerInterface):
    """Keeps one `tf.summary` file writer per sub-directory and writes dicts of values.

    With `summary_dir=None` the manager is disabled: writers are no-op writers and nothing
    is written, so code can use it unconditionally.

    With `scalar_summary` as the summary function, the host-side real numbers of one
    `write_summaries` call that go to one writer are written by a single compiled function
    (one per set of names), rather than by several eager ops per value: after each loop of
    small training steps, that is most of the Controller's own cost.
    """

    def __init__(
        self,
        summary_dir: str | None,
        summary_fn: Callable[..., Any],
        global_step: tf.Variable | None = None,
    ):
        """Initializes the manager.

        Args:
          summary_dir: The directory to write event files to, or None to disable writing.
          summary_fn: The function writing one value, called as
            `summary_fn(name, value, step=global_step)`; usually `tf.summary.scalar`.
          global_step: The step to attach to written values. None uses
            `tf.summary.experimental.get_step()`.
        """
        self._enabled = summary_dir is not None
        self._summary_dir = summary_dir
        self._summary_fn = summary_fn
        self._global_step = global_step
        self._writers: dict[str, Any] = {}
        self._scalar_writers: dict[tuple[str, tuple[str, ...]], Any] = {}

    @property
    def enabled(self) -> bool:
        """Whether summaries are written at all."""
        return self._enabled

    def summary_writer(self, relative_path: str = ""):
        """Returns the writer for `summary_dir/relative_path`, creating it on first use."""
        if relative_path not in self._writers:
            if self._enabled:
                self._writers[relative_path] = tf.summary.create_file_writer(
                    os.path.join(self._summary_dir, relative_path)
                )
            else:
                self._writers[relative_path] = tf.summary.create_noop_writer()
        return self._writers[relative_path]

    def flush(self) -> None:
        """Flushes every writer created so far."""
        if self._enabled:
            for writer in self._writers.values():
                writer.flush()

    def write_summaries(self, summary_dict: dict[str, Any]) -> None:
        """Writes each value; a nested dict is written to the sub-directory of its key.

        Args:
          summary_dict: Values keyed by summary name. None values are skipped.
        """
        if self._enabled:
            self._write(summary_dict, relative_path="")

    def _write(self, summary_dict: dict[str, Any], relative_path: str) -> None:
        step = self._global_step
        if step is None:
            step = tf.summary.experimental.get_step()
        batched = self._summary_fn is scalar_summary and step is not None
        scalars = {}
        for name, value in summary_dict.items():
            if isinstance(value, dict):
                self._write(value, os.path.join(relative_path, name))
            elif batched and _is_real_scalar(value):
                scalars[name] = value
            elif value is not None:
                with self.summary_writer(relative_path).as_default():
                    self._summary_fn(name, value, step=step)
        if scalars:
            self._write_scalars(relative_path, scalars, step)

    def _write_scalars(self, relative_path: str, scalars: dict[str, Any], step: Any) -> None:
        """Writes real numbers to one writer with one call of a compiled function."""
        names = tuple(scalars)
        key = (relative_path, names)
        writer = self.summary_writer(relative_path)
        write = self._scalar_writers.get(key)
        if write is None:

            @tf.function
            def write(values, step, recording):
                with writer.as_default(), tf.summary.record_if(recording):
                    for i, name in enumerate(names):
                        scalar_summary(name, values[i], step=step)

            self._scalar_writers[key] = write
        values = np.asarray([float(value) for value in scalars.values()], dtype=np.float32)
        with writer.as_default():  # Without a default writer, nothing is ever recorded.
            recording = tf.summary.should_record_summaries()
        write(values, tf.cast(step, tf.int64), recording)
