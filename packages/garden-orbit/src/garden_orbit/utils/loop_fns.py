"""Inner loops: functions that run a step function a number of times over an iterator.

Orbit's loop builders are here under their Orbit names (`create_loop_fn`,
`create_tf_while_loop_fn`, `create_tf_while_loop_fn_with_state`), plus guarded loops that
stop cleanly at the end of the data. A guarded loop reads each element with
`iterator.get_next_as_optional()` and runs the step only when an element was there, so no
part of a step (not even a data-independent `global_step.assign_add`) runs once the data is
exhausted, and the loop reports exactly how many steps it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from garden_orbit._tensorflow import tf

StepFn = Callable[[Any], Any]
_INT32_MAX = 2**31 - 1


def _as_python_int(num_steps: Any) -> int:
    if tf.is_tensor(num_steps):
        return int(num_steps.numpy())
    return int(num_steps)


def create_loop_fn(step_fn: StepFn) -> Callable[..., Any]:
    """Creates a Python loop that calls `step_fn(iterator)` repeatedly.

    Use it with an eager or `tf.function`-wrapped step; outputs can be reduced on the host.

    Args:
      step_fn: A function taking an iterator and running one step.

    Returns:
      `loop_fn(iterator, num_steps, state=None, reduce_fn=None)`, which runs `num_steps`
      steps (-1: until the iterator is exhausted), folds each step's output into `state`
      with `reduce_fn(state, output)` when `reduce_fn` is given, and returns `state`. The
      end of the data (`StopIteration` or `tf.errors.OutOfRangeError`) ends the loop early.
    """

    def loop_fn(iterator, num_steps, state=None, reduce_fn=None):
        num_steps = _as_python_int(num_steps)
        step = 0
        try:
            while num_steps == -1 or step < num_steps:
                outputs = step_fn(iterator)
                if reduce_fn is not None:
                    state = reduce_fn(state, outputs)
                step += 1
        except (StopIteration, tf.errors.OutOfRangeError):
            pass
        return state

    return loop_fn


def create_tf_while_loop_fn(step_fn: StepFn) -> Callable[[Any, tf.Tensor], None]:
    """Creates a loop for use inside `tf.function`, running `step_fn` `num_steps` times.

    The whole loop becomes one graph, so many steps run with a single host round trip.

    Args:
      step_fn: A function taking an iterator and running one step; its output is ignored.

    Returns:
      `loop_fn(iterator, num_steps)`. `num_steps` must be a tensor, so that the traced
      function is reused whatever the number of steps.
    """

    def loop_fn(iterator, num_steps):
        if not tf.is_tensor(num_steps):
            raise ValueError(
                "create_tf_while_loop_fn: `num_steps` must be a tf.Tensor (a Python int would "
                f"retrace the function for every value), got {num_steps!r}."
            )
        for _ in tf.range(num_steps):
            step_fn(iterator)

    return loop_fn


def _relaxed_shapes(state: Any) -> Any:
    return tf.nest.map_structure(lambda t: tf.TensorShape(None), state)


def create_tf_while_loop_fn_with_state(step_fn: StepFn) -> Callable[..., Any]:
    """Creates a `tf.function`-friendly loop that also folds step outputs into a state.

    Args:
      step_fn: A function taking an iterator and returning the step's outputs.

    Returns:
      `loop_fn(iterator, num_steps, state, reduce_fn)`: runs `num_steps` steps, updating
      `state = reduce_fn(state, outputs)` after each, and returns the final state. `state`
      must be a (nested) structure of tensors; their shapes may change between steps.
      `num_steps` must be a tensor. With a single `tf.data` or distributed iterator, -1
      runs until the data is exhausted.
    """

    def loop_fn(iterator, num_steps, state, reduce_fn):
        if not tf.is_tensor(num_steps):
            raise ValueError(
                "create_tf_while_loop_fn_with_state: `num_steps` must be a tf.Tensor, got "
                f"{num_steps!r}."
            )
        state = tf.nest.map_structure(tf.convert_to_tensor, state)
        if not hasattr(iterator, "get_next_as_optional"):

            def body(i, state):
                return i + 1, reduce_fn(state, step_fn(iterator))

            _, state = tf.while_loop(
                lambda i, _: i < num_steps,
                body,
                (tf.constant(0), state),
                shape_invariants=(tf.TensorShape([]), _relaxed_shapes(state)),
            )
            return state

        limit = tf.where(num_steps < 0, _INT32_MAX, num_steps)

        def guarded_body(i, running, state):
            optional = iterator.get_next_as_optional()

            def run():
                outputs = step_fn(PeekedIterator(optional.get_value(), iterator))
                return tf.constant(True), reduce_fn(state, outputs)

            def stop():
                return tf.constant(False), state

            ran, new_state = tf.cond(optional.has_value(), run, stop)
            return i + tf.cast(ran, tf.int32), ran, new_state

        _, _, state = tf.while_loop(
            lambda i, running, _: tf.logical_and(running, i < limit),
            guarded_body,
            (tf.constant(0), tf.constant(True), state),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([]), _relaxed_shapes(state)),
        )
        return state

    return loop_fn


class PeekedIterator:
    """An iterator that first yields an element already read, then reads from `iterator`.

    Guarded loops hand this to the step function, so a step written as `next(iterator)`
    receives the element whose presence the loop just checked.
    """

    def __init__(self, first: Any, iterator: Any):
        self._first = first
        self._iterator = iterator
        self._first_used = False

    def __iter__(self):
        return self

    def __next__(self):
        if not self._first_used:
            self._first_used = True
            return self._first
        return next(self._iterator)

    def get_next(self):
        """Returns the next element, like `tf.data.Iterator.get_next`."""
        return self.__next__()

    def get_next_as_optional(self):
        """Returns the next element wrapped in a `tf.experimental.Optional`."""
        if not self._first_used:
            self._first_used = True
            return tf.experimental.Optional.from_value(self._first)
        return self._iterator.get_next_as_optional()

    def __getattr__(self, name: str) -> Any:
        # element_spec, output_shapes and the like come from the real iterator.
        return getattr(self._iterator, name)


def is_infinite(dataset: Any) -> bool:
    """Whether `dataset` (a `tf.data` or distributed dataset) is known to never end."""
    cardinality = getattr(dataset, "cardinality", None)
    if cardinality is None:
        return False
    if callable(cardinality):
        cardinality = cardinality()
    try:
        return int(cardinality) == int(tf.data.INFINITE_CARDINALITY)
    except (TypeError, ValueError):  # A symbolic cardinality (graph mode).
        return False


def supports_guarded_loops(iterator: Any) -> bool:
    """Whether `iterator` can report the end of its data without raising (one iterator)."""
    return hasattr(iterator, "get_next_as_optional")


def _guarded_step(step_fn: StepFn, iterator: Any) -> tf.Tensor:
    """Runs `step_fn` only if `iterator` has an element; returns whether it ran (in graph)."""
    optional = iterator.get_next_as_optional()

    def run():
        step_fn(PeekedIterator(optional.get_value(), iterator))
        return tf.constant(True)

    return tf.cond(optional.has_value(), run, lambda: tf.constant(False))


def create_guarded_tf_while_loop_fn(step_fn: StepFn) -> Callable[[Any, tf.Tensor], tf.Tensor]:
    """Creates an in-graph loop that runs up to `num_steps` steps and stops when data ends.

    Wrap the result in `tf.function` (or `OptionalSummariesFunction`).

    Args:
      step_fn: A function taking an iterator and running one step; its output is ignored.

    Returns:
      `loop_fn(iterator, num_steps)` returning the number of steps it ran as an int32
      tensor: fewer than `num_steps` only when the data ran out. `num_steps=-1` runs until
      the data ends. `iterator` must be a single `tf.data` or distributed iterator.
    """

    def loop_fn(iterator, num_steps):
        limit = tf.where(num_steps < 0, _INT32_MAX, num_steps)

        def body(i, running):
            ran = _guarded_step(step_fn, iterator)
            return i + tf.cast(ran, tf.int32), ran

        steps, _ = tf.while_loop(
            lambda i, running: tf.logical_and(running, i < limit),
            body,
            (tf.constant(0), tf.constant(True)),
        )
        return steps

    return loop_fn


def create_guarded_loop_fn(
    step_fn: StepFn, *, use_tf_function: bool = True, collect_outputs: bool = False
) -> Callable[..., Any]:
    """Creates a Python loop over a (compiled) step that stops cleanly when data ends.

    Each step first checks with `iterator.get_next_as_optional()` that an element is there;
    the step then receives it through a `PeekedIterator`. Unlike catching `OutOfRangeError`
    after the fact, no part of a step runs once the data is exhausted.

    Args:
      step_fn: A function taking an iterator and running one step.
      use_tf_function: Compile the step with `tf.function` (traced once).
      collect_outputs: Whether the loop folds step outputs into a state with `reduce_fn`
        (evaluation). Without it (training), the check runs inside the compiled step, so a
        step costs one call, as in an unguarded loop. With it, the check runs eagerly before
        the step, which then returns its outputs to the host.

    Returns:
      `loop_fn(iterator, num_steps, state=None, reduce_fn=None)`, like `create_loop_fn`'s:
      runs up to `num_steps` steps (-1: until the data ends), folding outputs into `state`
      with `reduce_fn` when `collect_outputs`, and returns `state`. `iterator` must be a
      single `tf.data` or distributed iterator.
    """
    if not collect_outputs:

        def guarded_step(iterator):
            return _guarded_step(step_fn, iterator)

        if use_tf_function:
            guarded_step = tf.function(guarded_step)

        def loop_fn(iterator, num_steps, state=None, reduce_fn=None):
            num_steps = _as_python_int(num_steps)
            step = 0
            while (num_steps == -1 or step < num_steps) and bool(guarded_step(iterator)):
                step += 1
            return state

        return loop_fn

    def step_on_element(element, iterator):
        return step_fn(PeekedIterator(element, iterator))

    if use_tf_function:
        step_on_element = tf.function(step_on_element)

    def loop_fn_with_outputs(iterator, num_steps, state=None, reduce_fn=None):
        num_steps = _as_python_int(num_steps)
        step = 0
        while num_steps == -1 or step < num_steps:
            optional = iterator.get_next_as_optional()
            if not bool(optional.has_value()):
                break
            outputs = step_on_element(optional.get_value(), iterator)
            if reduce_fn is not None:
                state = reduce_fn(state, outputs)
            step += 1
        return state

    return loop_fn_with_outputs
