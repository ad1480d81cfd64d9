"""Helpers the actions share for reading metric values out of a train or eval output.

Outputs reach actions as nested dicts whose leaves may be Python numbers, NumPy values,
tensors or variables. These helpers look a metric up by key with an error message that
names what is available, and turn a leaf into NumPy or a Python float.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from garden_orbit import runner
from garden_orbit._tensorflow import tf


def to_numpy(value: Any) -> Any:
    """Returns the NumPy value of a tensor or variable, and anything else unchanged."""
    if isinstance(value, tf.Variable) or tf.is_tensor(value):
        return value.numpy()
    return value


def as_real_array(value: Any) -> np.ndarray | None:
    """Returns `value` as a NumPy array of real numbers, or None if it is not one."""
    try:
        array = np.asarray(to_numpy(value))
    except (TypeError, ValueError):  # Ragged lists and other non-array objects.
        return None
    dtype = array.dtype
    if dtype == np.bool_ or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating):
        return array
    return None


def lookup_metric(output: runner.Output | None, key: str, owner: str) -> Any:
    """Returns `output[key]`, with errors that say what went wrong.

    Args:
      output: The train or eval output an action received.
      key: The metric name to look up (a top-level key; nested keys are not searched).
      owner: The name of the action looking the metric up, used in error messages.

    Returns:
      The value stored under `key`, as it was found (possibly a tensor).

    Raises:
      KeyError: If `output` is a mapping without `key`; the message lists the keys present.
      TypeError: If `output` is not a mapping (for example None or a bare scalar).
    """
    if not isinstance(output, Mapping):
        raise TypeError(
            f"{owner}: metric {key!r} must be looked up in a dict output, but the output is "
            f"{type(output).__name__}."
        )
    if key not in output:
        present = ", ".join(repr(k) for k in sorted(output, key=str)) or "none"
        raise KeyError(f"{owner}: metric {key!r} is not in the output; keys present: {present}.")
    return output[key]


def to_float(value: Any, name: str, owner: str) -> float:
    """Converts a scalar metric value (number, NumPy value or tensor) to a Python float.

    Args:
      value: The value to convert; it must hold exactly one number.
      name: The metric's name, used in error messages.
      owner: The name of the action converting it, used in error messages.

    Returns:
      The value as a float.

    Raises:
      ValueError: If the value is not a single number.
    """
    array = as_real_array(value)
    if array is None or array.size != 1:
        raise ValueError(f"{owner}: metric {name!r} must be a single real number, got {value!r}.")
    return float(array.reshape(()))


def iter_scalars(output: runner.Output | None, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Yields `(name, value)` for every numeric scalar in a (nested) output.

    Nested dict keys are joined with "/" to name a value; a bare scalar output is named
    "output". Values that are not a single real number are skipped.

    Args:
      output: The train or eval output to walk.
      prefix: The name of `output` itself within an enclosing dict ("" at the top).

    Yields:
      Pairs of the value's name and the value as a float.
    """
    if isinstance(output, Mapping):
        for key, value in output.items():
            yield from iter_scalars(value, f"{prefix}/{key}" if prefix else str(key))
        return
    if output is None:
        return
    array = as_real_array(output)
    if array is None or array.size != 1:
        return
    yield (prefix or "output"), float(array.reshape(()))
