"""Exponential moving average (EMA) of model weights, swapped in for evaluation and export.

Model Garden keeps the average inside an optimizer wrapper
(`official/modeling/optimization/ema_optimizer.py`). Garden's trainer drives a plain Keras 3
optimizer, so here the average is a separate trackable object that the trainer creates next
to the optimizer, updates after every optimizer step, checkpoints beside the model and swaps
in for evaluation.

The update rule is Model Garden's. With `step` the number of optimizer steps done so far
(the optimizer's `iterations` after `apply_gradients`) and `s = step - start_step`:

- `s < 0` (before `start_step`): `decay = 0`, so each average is set to its variable;
- `dynamic_decay`: `decay = min(average_decay, (1 + s) / (10 + s))`, which starts at 0.1
  and ramps up to `average_decay` (as `tf.compat.v1.train.ExponentialMovingAverage` does
  with `num_updates`);
- otherwise `decay = average_decay`;

then `average = decay * average + (1 - decay) * variable` for every averaged variable.

Two deliberate differences from Model Garden, both about initial state rather than the
rule: averages start equal to the variables (Model Garden's optimizer slots start at zero,
which pulls the early average towards zero), and `swap_weights` swaps through a copy, so
swapping twice restores the weights bit for bit (Model Garden's add-and-subtract swap can
round).

Typical use in a custom training loop::

    with strategy.scope():
        model = build_model()
        optimizer.build(model.trainable_variables)
        ema = ExponentialMovingAverage.from_config(ema_config, model)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, ema=ema)

    @tf.function
    def train_step(inputs):
        def step_fn(inputs):
            ...
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            ema.update(optimizer.iterations)

        strategy.run(step_fn, args=(inputs,))

    with ema.averaged_weights():  # Cross-replica context: outside `strategy.run`.
        evaluate(model)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import tensorflow as tf

if TYPE_CHECKING:
    import keras

    from garden_core.config.optimization import EMAConfig

__all__ = ["ExponentialMovingAverage"]


class _Untracked:
    """Holds the model's variables out of checkpoint dependency tracking.

    `tf.Module` tracks lists, tuples and dicts assigned to its attributes, so keeping the
    model's variables in one would save them a second time under the EMA object. The model
    owns those variables; the EMA object owns only the averages.
    """

    __slots__ = ("variables",)

    def __init__(self, variables: Sequence[tf.Variable]):
        self.variables = tuple(variables)


def _as_tf_variable(variable: Any) -> tf.Variable:
    """Returns the `tf.Variable` behind a Keras 3 variable, or a `tf.Variable` as is."""
    if isinstance(variable, tf.Variable):
        return variable
    value = getattr(variable, "value", None)  # keras.Variable on the TensorFlow backend.
    if isinstance(value, tf.Variable):
        return value
    raise TypeError(
        "ExponentialMovingAverage averages tf.Variable or keras.Variable objects (TensorFlow "
        f"backend); got {type(variable).__name__}."
    )


def _variable_name(variable: Any, tf_variable: tf.Variable) -> str:
    path = getattr(variable, "path", None)  # Keras 3 names variables by layer path.
    if isinstance(path, str) and path:
        return path
    return tf_variable.name.split(":")[0]


class ExponentialMovingAverage(tf.Module):
    """Keeps an exponential moving average of a set of variables (usually a model's weights).

    One average variable is created per averaged variable, with the same shape and dtype,
    initialised to the variable's current value, in the distribution strategy scope the
    caller is in (create it under `strategy.scope()` next to the model). Averages are
    `ON_WRITE` variables with `ONLY_FIRST_REPLICA` aggregation: the model's variables hold
    the same value on every replica, so `update` may run in replica context (inside
    `strategy.run`) and the first replica's result is written to all of them.

    Only floating-point variables are averaged; integer state (counters, seeds) is left out.

    The object is a `tf.Module`: `tf.train.Checkpoint(ema=ema)` saves and restores the
    averages (and only them) under `ema/_averages/<i>`, `<i>` being the position of the
    variable in the list given at construction, which is stable for a given model
    definition.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    ema = ExponentialMovingAverage(model.trainable_weights, average_decay=0.999)
    for step in range(1, 101):
        train_one_step(model, optimizer)
        ema.update(step)  # Or ema.update(optimizer.iterations).
    with ema.averaged_weights():
        predictions = model.predict(data)  # Uses the averaged weights.
    ```
    """

    def __init__(
        self,
        variables: Sequence[Any],
        average_decay: float = 0.99,
        start_step: int = 0,
        dynamic_decay: bool = True,
        name: str = "ExponentialMovingAverage",
    ):
        """Creates one average per floating-point variable.

        Args:
            variables: The variables to average: `keras.Variable` (TensorFlow backend) or
                `tf.Variable` objects, e.g. `model.trainable_weights`. Duplicates are
                averaged once; non-floating-point variables are skipped.
            average_decay: Weight of the old average in each update, in [0, 1]; with
                `dynamic_decay` it is the ceiling the decay ramps up to.
            start_step: The optimizer step at which averaging starts. Before it the averages
                simply follow the variables.
            dynamic_decay: Whether to ramp the decay up as `(1 + s) / (10 + s)`, `s` being
                the number of steps since `start_step`, capped at `average_decay`.
            name: Name of the module; prefixes the names of the average variables.

        Raises:
            ValueError: If `average_decay` is outside [0, 1], or there is no
                floating-point variable to average (e.g. the model is not built yet).
            TypeError: If a variable is neither a `tf.Variable` nor a `keras.Variable`.
        """
        super().__init__(name=name)
        if not 0.0 <= float(average_decay) <= 1.0:
            raise ValueError(f"average_decay must be in [0, 1]; got {average_decay}.")
        self.average_decay = float(average_decay)
        self.start_step = int(start_step)
        self.dynamic_decay = bool(dynamic_decay)

        # The variables to average, each once, floating point only.
        seen = set()
        selected = []
        for variable in variables:
            tf_variable = _as_tf_variable(variable)
            if tf_variable.ref() in seen or not tf_variable.dtype.is_floating:
                continue
            seen.add(tf_variable.ref())
            selected.append((_variable_name(variable, tf_variable), tf_variable))
        if not selected:
            raise ValueError(
                "ExponentialMovingAverage got no floating-point variable to average; build "
                "the model (call it once or `model.build(shape)`) before creating it."
            )
        self._model_variables = _Untracked([tf_variable for _, tf_variable in selected])

        # One average per variable, created in the caller's distribution strategy scope.
        averages = []
        with self.name_scope:
            for variable_name, tf_variable in selected:
                averages.append(
                    tf.Variable(
                        tf_variable.read_value(),
                        trainable=False,
                        name=f"{variable_name}/average",
                        dtype=tf_variable.dtype,
                        synchronization=tf.VariableSynchronization.ON_WRITE,
                        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                    )
                )
        self._averages = averages

    @classmethod
    def from_config(cls, config: EMAConfig, model: keras.Model) -> ExponentialMovingAverage:
        """Averages a built Keras model's weights as an `EMAConfig` says.

        Call it where the model's variables were created (under the same
        `strategy.scope()`). The config's clipping fields, inherited from the optimizer
        configs, do not apply to an average and are ignored.

        Args:
            config: The `EMAConfig` (`OptimizationConfig.ema`).
            model: A built Keras 3 model. With `config.trainable_weights_only` its
                `trainable_weights` are averaged, otherwise all its `weights` (so also
                BatchNormalization moving statistics).

        Returns:
            The `ExponentialMovingAverage`.
        """
        weights = model.trainable_weights if config.trainable_weights_only else model.weights
        return cls(
            weights,
            average_decay=config.average_decay,
            start_step=config.start_step,
            dynamic_decay=config.dynamic_decay,
            name=config.name,
        )

    @property
    def averages(self) -> tuple[tf.Variable, ...]:
        """The average variables, in the order of `model_variables`."""
        return tuple(self._averages)

    @property
    def model_variables(self) -> tuple[tf.Variable, ...]:
        """The averaged variables (the `tf.Variable` behind each Keras variable)."""
        return self._model_variables.variables

    def decay(self, step: Any) -> tf.Tensor:
        """The decay `update(step)` uses, as a float32 scalar tensor.

        Args:
            step: The number of optimizer steps done: a Python int, an integer tensor or
                variable (e.g. `optimizer.iterations`).

        Returns:
            0 before `start_step`; else `average_decay`, capped by `(1 + s) / (10 + s)`
            with `dynamic_decay`, where `s = step - start_step`.
        """
        steps_since_start = tf.cast(tf.convert_to_tensor(step), tf.float32) - float(self.start_step)
        decay = tf.constant(self.average_decay, tf.float32)
        if self.dynamic_decay:
            # Meaningless (even infinite) for s < 0, where tf.where below picks 0 instead.
            ramp = (1.0 + steps_since_start) / (10.0 + steps_since_start)
            decay = tf.minimum(decay, ramp)
        return tf.where(steps_since_start < 0.0, tf.constant(0.0, tf.float32), decay)

    def update(self, step: Any) -> tf.Tensor:
        """Moves every average towards its variable's current value.

        Call it after each optimizer step, with the step count after that step. Works
        eagerly, inside `tf.function`, and in replica context (inside `strategy.run`) or
        cross-replica context.

        Args:
            step: The number of optimizer steps done, e.g. `optimizer.iterations` read after
                `apply_gradients` (1 after the first step).

        Returns:
            The decay used, a float32 scalar tensor (handy for logging).
        """
        decay = self.decay(step)
        for average, variable in zip(self._averages, self.model_variables, strict=True):
            average_decay = tf.cast(decay, average.dtype)
            average.assign(average_decay * average + (1.0 - average_decay) * variable)
        return decay

    def _check_cross_replica(self, action: str) -> None:
        if tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context():
            raise RuntimeError(
                f"ExponentialMovingAverage.{action} writes the model's variables and must be "
                "called in cross-replica context (under `strategy.scope()` or outside any "
                "strategy), not inside `strategy.run`."
            )

    def swap_weights(self) -> None:
        """Swaps the model's variables with their averages; swapping twice undoes it.

        Exact: the values travel through a copy, so a double swap restores every bit.
        Callable eagerly or inside `tf.function`, in cross-replica context.

        Raises:
            RuntimeError: If called in replica context (inside `strategy.run`).
        """
        self._check_cross_replica("swap_weights")
        for average, variable in zip(self._averages, self.model_variables, strict=True):
            trained = variable.read_value()
            variable.assign(average)
            average.assign(trained)

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Context manager: the model holds the averaged weights inside, its own outside.

        The weights are swapped back on exit, also when the body raises. Do not train
        inside: whatever the model's variables hold at exit becomes the averages.

        Yields:
            None.
        """
        self.swap_weights()
        try:
            yield
        finally:
            self.swap_weights()

    def assign_average_to_model(self) -> None:
        """Overwrites the model's variables with the averages (for export); not undoable.

        Raises:
            RuntimeError: If called in replica context (inside `strategy.run`).
        """
        self._check_cross_replica("assign_average_to_model")
        for average, variable in zip(self._averages, self.model_variables, strict=True):
            variable.assign(average)

    def reset(self) -> None:
        """Sets every average to its variable's current value.

        Useful after loading pretrained weights into the model (e.g. Model Garden's
        `init_checkpoint`) when no averages were restored, so the average starts from
        them instead of from the initialisation.

        Raises:
            RuntimeError: If called in replica context (inside `strategy.run`).
        """
        self._check_cross_replica("reset")
        for average, variable in zip(self._averages, self.model_variables, strict=True):
            average.assign(variable.read_value())
