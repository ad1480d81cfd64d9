"""Builds the learning rate of an `OptimizationConfig`: its schedule, wrapped in its warmup."""

from __future__ import annotations

from typing import Any

import keras

from garden_core.config import ConfigError, OptimizationConfig
from garden_core.optimization import lr_schedules

_KERAS = keras.optimizers.schedules


def _require(config: Any, field: str, path: str) -> Any:
    value = getattr(config, field)
    if value is None:
        raise ConfigError(f"`{path}.{field}` must be set for this learning-rate schedule")
    return value


def _with_offset(schedule: lr_schedules.Schedule, offset: int) -> lr_schedules.Schedule:
    return lr_schedules.Offset(schedule, offset) if offset else schedule


def build_schedule(config: OptimizationConfig, path: str = "optimizer_config"):
    """Returns the learning-rate schedule that `config.learning_rate` describes.

    Raises:
      ConfigError: If no schedule type is chosen, or a field it needs is unset or invalid.
    """
    kind = config.learning_rate.type
    where = f"{path}.learning_rate.{kind}"
    lr = config.learning_rate.get()
    if kind is None:
        raise ConfigError(f"`{path}.learning_rate.type` must name a learning-rate schedule")
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
