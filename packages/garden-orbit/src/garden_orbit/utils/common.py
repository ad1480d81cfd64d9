"""Small helpers shared by trainers, evaluators and the Controller.

Besides step counters and dataset distribution, this module holds the one place where
metric values are turned into what people and programs read: `format_metrics` writes a
dict of metrics as a short aligned line (`accuracy 0.121   training_loss 2.45`) for progress
lines and logs, and `to_plain` turns tensors and NumPy values into plain Python numbers for
JSON records.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from garden_orbit._tensorflow import tf


def create_global_step() -> tf.Variable:
    """Creates the int64 step counter that a Controller measures progress with.

    The variable uses `ONLY_FIRST_REPLICA` aggregation, so incrementing it inside
    `strategy.run` counts one step per global step rather than one per replica. Create it
    inside the strategy scope when training with a distribution strategy.

    Returns:
      A scalar, non-trainable `tf.Variable` named "global_step", initialized to 0.
    """
    return tf.Variable(
        0,
        dtype=tf.int64,
        name="global_step",
        trainable=False,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )


def make_distributed_dataset(
    strategy: tf.distribute.Strategy | None,
    dataset_or_fn: tf.data.Dataset | Callable[..., tf.data.Dataset],
    *args: Any,
    **kwargs: Any,
):
    """Distributes a dataset, or a function that builds one, over a strategy.

    Args:
      strategy: The strategy to distribute over; None means the current strategy
        (`tf.distribute.get_strategy()`).
      dataset_or_fn: A `tf.data.Dataset`, which is distributed with
        `strategy.experimental_distribute_dataset`, or a function returning one, which is
        called once per input pipeline through `strategy.distribute_datasets_from_function`.
        If the function has an `input_context` parameter it receives the
        `tf.distribute.InputContext` (use it to shard and to size per-replica batches).
      *args: Positional arguments for `dataset_or_fn` when it is a function.
      **kwargs: Keyword arguments for `dataset_or_fn` when it is a function.

    Returns:
      A distributed dataset.

    Raises:
      ValueError: If `dataset_or_fn` is neither a dataset nor callable, or if arguments are
        given together with a dataset.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(dataset_or_fn, tf.data.Dataset):
        if args or kwargs:
            raise ValueError(
                "make_distributed_dataset: extra arguments are only used when `dataset_or_fn` "
                f"is a function, but a tf.data.Dataset was given with args={args}, "
                f"kwargs={sorted(kwargs)}."
            )
        return strategy.experimental_distribute_dataset(dataset_or_fn)
    if not callable(dataset_or_fn):
        raise ValueError(
            "make_distributed_dataset: `dataset_or_fn` must be a tf.data.Dataset or a function "
            f"returning one, got {type(dataset_or_fn).__name__}."
        )
    try:
        wants_context = "input_context" in inspect.signature(dataset_or_fn).parameters
    except (TypeError, ValueError):  # Builtins and some C callables have no signature.
        wants_context = False

    def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        call_kwargs = dict(kwargs)
        if wants_context:
            call_kwargs["input_context"] = input_context
        return dataset_or_fn(*args, **call_kwargs)

    return strategy.distribute_datasets_from_function(dataset_fn)


def get_value(x: Any) -> Any:
    """Returns the NumPy value of a tensor or variable, and anything else unchanged."""
    if isinstance(x, tf.Variable) or tf.is_tensor(x):
        return x.numpy()
    return x


def to_plain(value: Any) -> Any:
    """Converts tensors and NumPy values to plain Python values, keeping the structure.

    Scalars become `int`, `float` or `bool`; arrays become (nested) lists; dicts stay dicts
    (with string keys), lists and tuples become lists, and `bytes` become `str`. Anything
    else is returned unchanged.

    Args:
      value: A metric value or a nested structure of them.
    """
    value = get_value(value)
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, (np.ndarray, np.generic)):
        value = value.tolist()  # Python scalars, or nested lists of them.
        return to_plain(value) if isinstance(value, (list, bytes)) else value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


# Values are padded to this width, so that lines of the same metrics line up.
_VALUE_WIDTH = 6
# An array with more elements than this is shown by its shape, not its values.
_MAX_ARRAY_ELEMENTS = 8


def format_number(value: Any) -> str:
    """Formats one number short and readable: 3 significant digits, no NumPy wrapper.

    Integers are written whole (`1200`); floats with three significant digits (`0.121`,
    `2.45`, `12.3`), whole from 100 up (`4312`), and in scientific notation when very
    small or large (`1.00e-04`); `nan`, `inf` and `-inf` as such. Small arrays are written
    as `[0.1 0.2]`, larger ones by their shape; strings and bytes as text.

    Args:
      value: A Python, NumPy or tensor scalar (or array, string, bytes).

    Returns:
      The text, without padding.
    """
    value = get_value(value)
    if isinstance(value, np.ndarray) and value.ndim > 0:
        if value.size > _MAX_ARRAY_ELEMENTS:
            return f"<array {value.dtype.name} {'x'.join(map(str, value.shape))}>"
        return "[" + " ".join(format_number(item) for item in value.tolist()) + "]"
    value = to_plain(value)
    if isinstance(value, list):
        return format_number(np.asarray(value, dtype=object).ravel())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf".
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude < 1e-3 or magnitude >= 1e6:
        return f"{value:.2e}"
    if magnitude >= 100:
        return f"{value:.0f}"
    # '#' keeps trailing zeros (0.5 is 0.500, like its neighbours); 99.96 gives "100.".
    return f"{value:#.3g}".rstrip(".")


def format_metrics(metrics: Mapping[str, Any], separator: str = "  ") -> str:
    """Formats metrics as one aligned line of `name value` pairs.

    Example: `{"accuracy": np.float32(0.12099359), "loss": tf.constant(2.4518)}` gives
    `"accuracy 0.121   loss 2.45"`. Nested dicts become `outer/inner` names; values are
    padded to a common width so that successive lines of the same metrics line up. This
    is the format of the Controller's log lines and the progress line.

    Args:
      metrics: Metric names to values (Python, NumPy or tensor scalars, or nested dicts).
      separator: What goes between two `name value` pairs.

    Returns:
      The line, without trailing spaces; empty for no metrics.
    """
    parts = [
        f"{name} {format_number(value):<{_VALUE_WIDTH}}"
        for name, value in _flatten(metrics, prefix="")
    ]
    return separator.join(parts).rstrip()


def _flatten(metrics: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for name, value in metrics.items():
        if isinstance(value, Mapping):
            items += _flatten(value, prefix=f"{prefix}{name}/")
        else:
            items.append((f"{prefix}{name}", value))
    return items
