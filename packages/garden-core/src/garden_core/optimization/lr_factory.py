"""Builds the learning rate of an `OptimizationConfig`: its schedule, wrapped in its warmup.

A `learning_rate.type` that is not a built-in schedule names a `garden.schedules` plugin:
`registry.schedules.get(type)` must be a callable (a `LearningRateSchedule` subclass or a
factory function) that, called with the plugin's settings as keyword arguments, returns a
`keras.optimizers.schedules.LearningRateSchedule`. A schedule object is required (not any
callable of the step) because Keras optimizers call plain callables without the step, and
so that the schedule serializes with the optimizer. Warmups wrap plugin schedules as any
other.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras

from garden_core import registry as registry_lib
from garden_core.config import ConfigError, OptimizationConfig
from garden_core.optimization import lr_schedules

_KERAS = keras.optimizers.schedules


def load_plugin(kind: str, name: str, where: str) -> tuple[Callable[..., Any], str]:
    """Imports the plugin registered as `name` in the `kind` registry.

    Args:
      kind: The registry kind, "optimizers" or "schedules".
      name: The plugin's registered name (the config's `type`).
      where: The dotted path of the one-of config choosing it, for error messages.

    Returns:
      The plugin's callable, and a description of it for error messages: its name, target
      and providing distribution.

    Raises:
      ConfigError: If the name cannot be resolved or imported (the registry's message is
        kept), or the registered object is not callable.
    """
    plugins = registry_lib.registry(kind)
    try:
        factory = plugins.get(name)
        entry = plugins.entry(name)
    except registry_lib.RegistryError as error:
        raise ConfigError(f"`{where}.type` is {name!r}: {error}") from error
    source = (
        "registered in-process"
        if entry.distribution == registry_lib.IN_PROCESS
        else f"from {entry.distribution} {entry.version}".strip()
    )
    description = f"{kind[:-1]} plugin `{name}` ({entry.target}, {source})"
    if not callable(factory):
        raise ConfigError(
            f"`{where}.type` is {name!r}, but {description} is a {type(factory).__name__}, "
            "not a class or function"
        )
    return factory, description


def call_plugin(
    factory: Callable[..., Any], description: str, where: str, kwargs: dict[str, Any]
) -> Any:
    """Calls a plugin with keyword arguments; settings it rejects become `ConfigError`s.

    Args:
      factory: The plugin's callable (see `load_plugin`).
      description: The plugin's description, for error messages.
      where: The dotted path of the plugin's settings, for error messages.
      kwargs: The keyword arguments: the plugin's settings (and anything the caller adds).

    Raises:
      ConfigError: If the arguments do not fit the plugin's signature, or the plugin raises
        `TypeError` or `ValueError` (how Python and Keras reject arguments).
    """
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as error:
        raise ConfigError(
            f"`{where}`: {description} cannot take these settings ({error}); "
            f"given: {', '.join(sorted(kwargs)) or 'none'}"
        ) from error
    except ValueError:  # No signature to check (some builtins); the call will tell.
        pass
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"`{where}`: {description} rejected its settings: {type(error).__name__}: {error}"
        ) from error


def _require(config: Any, field: str, path: str) -> Any:
    value = getattr(config, field)
    if value is None:
        raise ConfigError(f"`{path}.{field}` must be set for this learning-rate schedule")
    return value


def summarize(value: Any) -> str:
    """`a dict ({'a': 1})`: what a plugin returned, briefly."""
    text = repr(value)
    return f"a {type(value).__name__} ({text[:60] + '...' if len(text) > 60 else text})"


def _with_offset(schedule: lr_schedules.Schedule, offset: int) -> lr_schedules.Schedule:
    return lr_schedules.Offset(schedule, offset) if offset else schedule


def build_schedule(config: OptimizationConfig, path: str = "optimizer_config"):
    """Returns the learning-rate schedule that `config.learning_rate` describes.

    Raises:
      ConfigError: If no schedule type is chosen, a field it needs is unset or invalid, or a
        plugin schedule cannot be loaded, rejects its settings or returns no schedule.
    """
    kind = config.learning_rate.type
    where = f"{path}.learning_rate.{kind}"
    lr = config.learning_rate.get()
    if kind is None:
        raise ConfigError(f"`{path}.learning_rate.type` must name a learning-rate schedule")
    if config.learning_rate.uses_plugin:
        factory, description = load_plugin("schedules", kind, f"{path}.learning_rate")
        schedule = call_plugin(factory, description, where, lr)
        if not isinstance(schedule, _KERAS.LearningRateSchedule):
            raise ConfigError(
                f"`{where}`: {description} returned {summarize(schedule)}, not a "
                "keras.optimizers.schedules.LearningRateSchedule"
            )
        return schedule
    if kind == "constant":
        return lr_schedules.Constant(lr.learning_rate)
    if kind == "stepwise":
        boundaries, values = _require(lr, "boundaries", where), _require(lr, "values", where)
        if len(values) != len(boundaries) + 1:
            raise ConfigError(
                f"`{where}.values` needs one more entry than `boundaries` "
                f"(got {len(values)} values for {len(boundaries)} boundaries)"
            )
        return _with_offset(_KERAS.PiecewiseConstantDecay(boundaries, values), lr.offset)
    if kind == "exponential":
        schedule = _KERAS.ExponentialDecay(
            _require(lr, "initial_learning_rate", where),
            _require(lr, "decay_steps", where),
            _require(lr, "decay_rate", where),
            staircase=bool(lr.staircase),
        )
        return _with_offset(schedule, lr.offset)
    if kind == "polynomial":
        schedule = _KERAS.PolynomialDecay(
            _require(lr, "initial_learning_rate", where),
            _require(lr, "decay_steps", where),
            end_learning_rate=lr.end_learning_rate,
            power=lr.power,
            cycle=lr.cycle,
        )
        return _with_offset(schedule, lr.offset)
    if kind == "cosine":
        schedule = _KERAS.CosineDecay(
            _require(lr, "initial_learning_rate", where),
            _require(lr, "decay_steps", where),
            alpha=lr.alpha,
        )
        return _with_offset(schedule, lr.offset)
    if kind == "power":
        return lr_schedules.DirectPowerDecay(
            _require(lr, "initial_learning_rate", where), power=lr.power
        )
    if kind == "power_linear":
        return lr_schedules.PowerAndLinearDecay(
            _require(lr, "initial_learning_rate", where),
            _require(lr, "total_decay_steps", where),
            power=lr.power,
            linear_decay_fraction=lr.linear_decay_fraction,
            offset=lr.offset,
        )
    if kind == "power_with_offset":
        return lr_schedules.PowerDecayWithOffset(
            _require(lr, "initial_learning_rate", where),
            power=lr.power,
            offset=lr.offset,
            pre_offset_learning_rate=lr.pre_offset_learning_rate,
        )
    if kind == "step_cosine_with_offset":
        try:
            return lr_schedules.StepCosineDecayWithOffset(
                _require(lr, "boundaries", where), _require(lr, "values", where), lr.offset
            )
        except ValueError as error:
            raise ConfigError(f"`{where}`: {error}") from error
    raise ConfigError(f"`{path}.learning_rate.type` {kind!r} has no builder")


def build_learning_rate(config: OptimizationConfig, path: str = "optimizer_config"):
    """Returns the schedule of `config.learning_rate`, wrapped in `config.warmup` if set."""
    schedule = build_schedule(config, path)
    warmup = config.warmup.get()
    if warmup is None:
        return schedule
    where = f"{path}.warmup.{config.warmup.type}"
    steps = _require(warmup, "warmup_steps", where)
    if config.warmup.type == "linear":
        return lr_schedules.LinearWarmup(schedule, steps, warmup.warmup_learning_rate)
    return lr_schedules.PolynomialWarmup(schedule, steps, warmup.power)
