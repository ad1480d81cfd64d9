"""Learning-rate schedules and warmups, as Keras 3 `LearningRateSchedule`s.

The Model Garden schedules Keras does not have are written here with `keras.ops`, so they
run eagerly, inside `tf.function` and on any Keras backend. Each is serializable through
`get_config`. Formulas (with `s` the step, after subtracting `offset` where there is one):

- `DirectPowerDecay`: `initial_learning_rate * max(s, 1) ** power`.
- `PowerAndLinearDecay`: `initial_learning_rate * max(s, 1) ** power`, multiplied in the last
  `linear_decay_fraction` of `total_decay_steps` by `(total - s) / (total * fraction)`;
  `initial_learning_rate` for `s < 0`, and 0 from `total_decay_steps` on.
- `PowerDecayWithOffset`: `pre_offset_learning_rate` for `s < offset`, then
  `initial_learning_rate * max(s - offset, 1) ** power`.
- `StepCosineDecayWithOffset`: between successive boundaries (the first segment starts at
  0), a half cosine from `values[i]` down to `values[i + 1]` (to 0 in the last segment);
  0 after the last boundary.
- `LinearWarmup`: for `s < warmup_steps`,
  `warmup_learning_rate + s / warmup_steps * (after(warmup_steps) - warmup_learning_rate)`,
  then `after(s)`.
- `PolynomialWarmup`: for `s < warmup_steps`, `after(warmup_steps) * (s / warmup_steps) **
  power`, then `after(s)`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

Schedule = keras.optimizers.schedules.LearningRateSchedule
_register = keras.saving.register_keras_serializable(package="garden")


def _after_warmup_from_config(config: dict[str, Any]) -> dict[str, Any]:
    config = dict(config)
    if isinstance(config["after_warmup"], dict):
        config["after_warmup"] = keras.optimizers.schedules.deserialize(config["after_warmup"])
    return config


def _value(schedule_or_value: Any, step: Any) -> Any:
    if isinstance(schedule_or_value, Schedule):
        return ops.cast(schedule_or_value(step), "float32")
    return ops.cast(schedule_or_value, "float32")


@_register
class Offset(Schedule):
    """Runs `schedule` on `step - offset` (Model Garden's `offset` field)."""

    def __init__(self, schedule: Schedule, offset: int):
        self.schedule = schedule
        self.offset = int(offset)

    def __call__(self, step):
        return self.schedule(ops.cast(step, "float32") - float(self.offset))

    def get_config(self) -> dict[str, Any]:
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "offset": self.offset,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(**config)


@_register
class Constant(Schedule):
    """A constant learning rate (a schedule, so it can be warmed up like the others)."""

    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)

    def __call__(self, step):
        del step
        return ops.convert_to_tensor(self.learning_rate, "float32")

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate}


@_register
class DirectPowerDecay(Schedule):
    """`initial_learning_rate * max(step, 1) ** power`."""

    def __init__(self, initial_learning_rate: float, power: float = -0.5):
        self.initial_learning_rate = float(initial_learning_rate)
        self.power = float(power)

    def __call__(self, step):
        step = ops.maximum(ops.cast(step, "float32"), 1.0)
        return self.initial_learning_rate * ops.power(step, self.power)

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate, "power": self.power}


@_register
class PowerAndLinearDecay(Schedule):
    """Power decay, then a linear ramp to 0 over the last `linear_decay_fraction` steps."""

    def __init__(
        self,
        initial_learning_rate: float,
        total_decay_steps: int,
        power: float = -0.5,
        linear_decay_fraction: float = 0.1,
        offset: int = 0,
    ):
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_decay_steps = int(total_decay_steps)
        self.power = float(power)
        self.linear_decay_fraction = float(linear_decay_fraction)
        self.offset = int(offset)

    def __call__(self, step):
        step = ops.cast(step, "float32") - float(self.offset)
        total = float(self.total_decay_steps)
        decayed = self.initial_learning_rate * ops.power(ops.maximum(step, 1.0), self.power)
        if self.linear_decay_fraction > 0:
            linear = (total - step) / (total * self.linear_decay_fraction)
            decayed = decayed * ops.minimum(linear, 1.0)
        learning_rate = ops.where(step < 0, self.initial_learning_rate, decayed)
        return ops.where(step >= total, 0.0, learning_rate)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_decay_steps": self.total_decay_steps,
            "power": self.power,
            "linear_decay_fraction": self.linear_decay_fraction,
            "offset": self.offset,
        }


@_register
class PowerDecayWithOffset(Schedule):
    """`pre_offset_learning_rate` before `offset`, then power decay from the offset."""

    def __init__(
        self,
        initial_learning_rate: float,
        power: float = -0.5,
        offset: int = 0,
        pre_offset_learning_rate: float = 1.0e6,
    ):
        self.initial_learning_rate = float(initial_learning_rate)
        self.power = float(power)
        self.offset = int(offset)
        self.pre_offset_learning_rate = float(pre_offset_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decayed = self.initial_learning_rate * ops.power(
            ops.maximum(step - float(self.offset), 1.0), self.power
        )
        return ops.where(step < float(self.offset), self.pre_offset_learning_rate, decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "power": self.power,
            "offset": self.offset,
            "pre_offset_learning_rate": self.pre_offset_learning_rate,
        }


@_register
class StepCosineDecayWithOffset(Schedule):
    """Half-cosine segments between boundaries, from `values[i]` down to `values[i + 1]`."""

    def __init__(self, boundaries: list[int], values: list[float], offset: int = 0):
        if len(boundaries) != len(values) or not boundaries:
            raise ValueError(
                "StepCosineDecayWithOffset: `boundaries` and `values` need the same, non-zero "
                f"length (got {len(boundaries)} and {len(values)})"
            )
        if any(b <= a for a, b in zip(boundaries, boundaries[1:], strict=False)):
            raise ValueError(f"StepCosineDecayWithOffset: boundaries {boundaries} must increase")
        self.boundaries = [int(b) for b in boundaries]
        self.values = [float(v) for v in values]
        self.offset = int(offset)

    def __call__(self, step):
        step = ops.cast(step, "float32") - float(self.offset)
        learning_rate = ops.convert_to_tensor(0.0, "float32")
        starts = [0, *self.boundaries[:-1]]
        ends = [*self.values[1:], 0.0]
        # Later segments first, so the segment containing `step` decides the value.
        for start, end_step, begin_value, end_value in reversed(
            list(zip(starts, self.boundaries, self.values, ends, strict=True))
        ):
            fraction = ops.clip((step - start) / float(end_step - start), 0.0, 1.0)
            cosine = end_value + 0.5 * (begin_value - end_value) * (
                1.0 + ops.cos(math.pi * fraction)
            )
            inside = ops.logical_and(step >= start, step < end_step)
            learning_rate = ops.where(inside, cosine, learning_rate)
        return ops.where(step < 0, self.values[0], learning_rate)

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "offset": self.offset}


@_register
class LinearWarmup(Schedule):
    """Linear ramp to the wrapped schedule's value at `warmup_steps`, then the schedule."""

    def __init__(
        self,
        after_warmup: Schedule | float,
        warmup_steps: int,
        warmup_learning_rate: float = 0.0,
    ):
        self.after_warmup = after_warmup
        self.warmup_steps = int(warmup_steps)
        self.warmup_learning_rate = float(warmup_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        target = _value(self.after_warmup, float(self.warmup_steps))
        ramp = self.warmup_learning_rate + step / float(max(self.warmup_steps, 1)) * (
            target - self.warmup_learning_rate
        )
        return ops.where(step < self.warmup_steps, ramp, _value(self.after_warmup, step))

    def get_config(self) -> dict[str, Any]:
        after = self.after_warmup
        if isinstance(after, Schedule):
            after = keras.optimizers.schedules.serialize(after)
        return {
            "after_warmup": after,
            "warmup_steps": self.warmup_steps,
            "warmup_learning_rate": self.warmup_learning_rate,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**_after_warmup_from_config(config))


@_register
class PolynomialWarmup(Schedule):
    """`after(warmup_steps) * (step / warmup_steps) ** power` during warmup, then `after`."""

    def __init__(self, after_warmup: Schedule | float, warmup_steps: int, power: float = 1.0):
        self.after_warmup = after_warmup
        self.warmup_steps = int(warmup_steps)
        self.power = float(power)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        target = _value(self.after_warmup, float(self.warmup_steps))
        fraction = step / float(max(self.warmup_steps, 1))
        ramp = target * ops.power(ops.maximum(fraction, 0.0), self.power)
        return ops.where(step < self.warmup_steps, ramp, _value(self.after_warmup, step))

    def get_config(self) -> dict[str, Any]:
        after = self.after_warmup
        if isinstance(after, Schedule):
            after = keras.optimizers.schedules.serialize(after)
        return {"after_warmup": after, "warmup_steps": self.warmup_steps, "power": self.power}

    @classmethod
    def from_config(cls, config):
        return cls(**_after_warmup_from_config(config))
