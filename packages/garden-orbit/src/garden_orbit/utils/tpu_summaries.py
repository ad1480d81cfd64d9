"""Summaries inside compiled loops, without paying for them on every step.

Writing summaries from inside a `tf.function` loop costs time on every step even when the
recording condition is false (heavily so on TPUs). These wrappers trace a function twice,
once with summaries and once with them compiled out, and pick the version at call time from
`tf.summary.should_record_summaries()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from garden_orbit._tensorflow import tf


class OptionalSummariesFunction:
    """A `tf.function` with two traces: with and without summary ops."""

    def __init__(self, function: Callable[..., Any], **tf_function_kwargs: Any):
        """Initializes the wrapper.

        Args:
          function: The Python function to compile.
          **tf_function_kwargs: Keyword arguments for `tf.function`.
        """
        self._function = function
        self.with_summaries = tf.function(function, **tf_function_kwargs)
        self._without = tf.function(function, **tf_function_kwargs)

    def without_summaries(self, *args: Any, **kwargs: Any) -> Any:
        """Runs the trace in which every summary op is compiled out."""
        with tf.summary.record_if(False):
            return self._without(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if tf.summary.should_record_summaries():
            return self.with_summaries(*args, **kwargs)
        return self.without_summaries(*args, **kwargs)


class LoopFnWithSummaries(OptionalSummariesFunction):
    """Runs a loop function so that at most its first step records summaries.

    The wrapped function has the signature `loop_fn(iterator, num_steps)`. When summaries
    should be recorded, one step runs with summaries and the rest without; otherwise every
    step runs in the summary-free trace. If the loop function returns the number of steps
    it ran (as the guarded loops in `loop_fns` do), the total is returned.
    """

    def __call__(self, iterator: Any, num_steps: tf.Tensor) -> Any:
        if not tf.summary.should_record_summaries():
            return self.without_summaries(iterator, num_steps)
        first = self.with_summaries(iterator, tf.constant(1, dtype=num_steps.dtype))
        remaining = num_steps if int(num_steps) < 0 else num_steps - 1
        if int(remaining) == 0 or (first is not None and int(first) == 0):
            return first
        rest = self.without_summaries(iterator, remaining)
        if first is None or rest is None:
            return rest
        return first + rest
