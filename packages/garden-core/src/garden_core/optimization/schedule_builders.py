"""The built-in learning-rate schedules, registered as `garden.schedules` entry points.

Each builder is what a third-party schedule plugin is: it is called as `builder(**settings)`
with the fields of its branch of `OptimizationConfig.learning_rate` (e.g.
`learning_rate: {type: cosine, cosine: {initial_learning_rate: 0.1, decay_steps: 1000}}`)
and returns a `keras.optimizers.schedules.LearningRateSchedule`: Keras' own where it has
one, else one of `garden_core.optimization.lr_schedules`, run on `step - offset` where the
branch has an `offset`. Each declares its branch's config class as `config_class`. The
`name` field is Model Garden's label for the schedule and is kept for its YAML.

A setting a schedule needs but that is unset, or that is inconsistent, raises
`plugins.SettingError`, reported under the setting's dotted path.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_core.config.optimization import (
    ConstantLrConfig,
    CosineLrConfig,
    DirectPowerLrConfig,
    ExponentialLrConfig,
    PolynomialLrConfig,
    PowerAndLinearDecayLrConfig,
    PowerDecayWithOffsetLrConfig,
    StepCosineLrConfig,
    StepwiseLrConfig,
)
from garden_core.optimization import lr_schedules
from garden_core.plugins import SettingError

Schedule = keras.optimizers.schedules.LearningRateSchedule
_KERAS = keras.optimizers.schedules


def _required(**settings: Any) -> None:
    for setting, value in settings.items():
        if value is None:
            raise SettingError(setting, "must be set for this learning-rate schedule")


def _with_offset(schedule: Schedule, offset: int) -> Schedule:
    return lr_schedules.Offset(schedule, offset) if offset else schedule


def constant(*, name: str, learning_rate: float) -> Schedule:
    """A constant learning rate."""
    del name
    return lr_schedules.Constant(learning_rate)


constant.config_class = ConstantLrConfig


def stepwise(
    *, name: str, boundaries: list[int] | None, values: list[float] | None, offset: int
) -> Schedule:
    """Piecewise constant: `values[i]` until `boundaries[i]`, then the next value."""
    del name
    _required(boundaries=boundaries, values=values)
    if len(values) != len(boundaries) + 1:
        raise SettingError(
            "values",
            f"needs one more entry than `boundaries` (got {len(values)} values for "
            f"{len(boundaries)} boundaries)",
        )
    return _with_offset(_KERAS.PiecewiseConstantDecay(boundaries, values), offset)


stepwise.config_class = StepwiseLrConfig


def exponential(
    *,
    name: str,
    initial_learning_rate: float | None,
    decay_steps: int | None,
    decay_rate: float | None,
    staircase: bool | None,
    offset: int,
) -> Schedule:
    """`initial_learning_rate * decay_rate ** (step / decay_steps)`, optionally stepped."""
    del name
    _required(
        initial_learning_rate=initial_learning_rate,
        decay_steps=decay_steps,
        decay_rate=decay_rate,
    )
    schedule = _KERAS.ExponentialDecay(
        initial_learning_rate, decay_steps, decay_rate, staircase=bool(staircase)
    )
    return _with_offset(schedule, offset)


exponential.config_class = ExponentialLrConfig


def polynomial(
    *,
    name: str,
    initial_learning_rate: float | None,
    decay_steps: int | None,
    end_learning_rate: float,
    power: float,
    cycle: bool,
    offset: int,
) -> Schedule:
    """Polynomial decay from `initial_learning_rate` to `end_learning_rate`."""
    del name
    _required(initial_learning_rate=initial_learning_rate, decay_steps=decay_steps)
    schedule = _KERAS.PolynomialDecay(
        initial_learning_rate,
        decay_steps,
        end_learning_rate=end_learning_rate,
        power=power,
        cycle=cycle,
    )
    return _with_offset(schedule, offset)


polynomial.config_class = PolynomialLrConfig


def cosine(
    *,
    name: str,
    initial_learning_rate: float | None,
    decay_steps: int | None,
    alpha: float,
    offset: int,
) -> Schedule:
    """Cosine decay to `alpha * initial_learning_rate` over `decay_steps`."""
    del name
    _required(initial_learning_rate=initial_learning_rate, decay_steps=decay_steps)
    schedule = _KERAS.CosineDecay(initial_learning_rate, decay_steps, alpha=alpha)
    return _with_offset(schedule, offset)


cosine.config_class = CosineLrConfig


def power(*, name: str, initial_learning_rate: float | None, power: float) -> Schedule:
    """`initial_learning_rate * max(step, 1) ** power`."""
    del name
    _required(initial_learning_rate=initial_learning_rate)
    return lr_schedules.DirectPowerDecay(initial_learning_rate, power=power)


power.config_class = DirectPowerLrConfig


def power_linear(
    *,
    name: str,
    initial_learning_rate: float | None,
    total_decay_steps: int | None,
    power: float,
    linear_decay_fraction: float,
    offset: int,
) -> Schedule:
    """Power decay, then a linear ramp to 0 over the last `linear_decay_fraction`."""
    del name
    _required(initial_learning_rate=initial_learning_rate, total_decay_steps=total_decay_steps)
    return lr_schedules.PowerAndLinearDecay(
        initial_learning_rate,
        total_decay_steps,
        power=power,
        linear_decay_fraction=linear_decay_fraction,
        offset=offset,
    )


power_linear.config_class = PowerAndLinearDecayLrConfig


def power_with_offset(
    *,
    name: str,
    initial_learning_rate: float | None,
    power: float,
    offset: int,
    pre_offset_learning_rate: float,
) -> Schedule:
    """`pre_offset_learning_rate` before `offset`, then power decay from the offset."""
    del name
    _required(initial_learning_rate=initial_learning_rate)
    return lr_schedules.PowerDecayWithOffset(
        initial_learning_rate,
        power=power,
        offset=offset,
        pre_offset_learning_rate=pre_offset_learning_rate,
    )


power_with_offset.config_class = PowerDecayWithOffsetLrConfig


def step_cosine_with_offset(
    *, name: str, boundaries: list[int] | None, values: list[float] | None, offset: int
) -> Schedule:
    """Half-cosine segments from `values[i]` down to `values[i + 1]` between boundaries."""
    del name
    _required(boundaries=boundaries, values=values)
    return lr_schedules.StepCosineDecayWithOffset(boundaries, values, offset)


step_cosine_with_offset.config_class = StepCosineLrConfig
