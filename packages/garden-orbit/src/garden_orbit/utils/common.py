"""Small helpers shared by trainers, evaluators and the Controller."""

from __future__ import annotations

import inspect
from collections.abc import Callable
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


def to_python_scalar(x: Any) -> Any:
    """Converts a NumPy or tensor scalar to a plain Python number; other values unchanged."""
    x = get_value(x)
    if isinstance(x, np.ndarray) and x.ndim == 0 or isinstance(x, np.generic):
        x = x.item()
    return x
