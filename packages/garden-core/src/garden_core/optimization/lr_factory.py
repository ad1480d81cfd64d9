"""Builds the learning rate of an `OptimizationConfig`: its schedule, wrapped in its warmup.

Every `learning_rate.type`, built-in or not, is a `garden.schedules` entry in the registry
and is built through `garden_core.plugins`: `builder(**settings)`, the settings being the
chosen branch (the fields of a built-in branch, such as `cosine`, or a plugin's mapping).
The builder must return a `keras.optimizers.schedules.LearningRateSchedule`: a schedule
object rather than any callable of the step, because Keras optimizers call plain callables
without the step, and so that the schedule serializes with the optimizer. garden-core's own
schedules are in `garden_core.optimization.schedule_builders`.

Warmups are not a registry kind: `warmup.type` (linear, polynomial) wraps whichever schedule
was built.
"""

from __future__ import annotations

import keras

from garden_core import plugins
from garden_core.config import ConfigError, OptimizationConfig
from garden_core.config.errors import join_path
from garden_core.optimization import lr_schedules


def build_schedule(
    config: OptimizationConfig, path: str = "optimizer_config"
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Returns the learning-rate schedule that `config.learning_rate` describes.

    Args:
      config: The optimization config.
      path: Where `config` sits in the experiment config, for error messages.

    Raises:
      ConfigError: If no schedule type is chosen (the message lists the registered ones), a
        setting the schedule needs is unset or invalid, or the schedule cannot be loaded,
        rejects its settings or returns no `LearningRateSchedule`.
    """
    where = join_path(path, "learning_rate")
    schedule = plugins.build("schedules", config.learning_rate, where)
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        _, description = plugins.load("schedules", config.learning_rate.type, where)
        raise ConfigError(
            f"`{join_path(where, config.learning_rate.type)}`: {description} returned "
            f"{plugins.summarize(schedule)}, not a "
            "keras.optimizers.schedules.LearningRateSchedule"
        )
    return schedule


def build_learning_rate(
    config: OptimizationConfig, path: str = "optimizer_config"
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Returns the schedule of `config.learning_rate`, wrapped in `config.warmup` if set.

    Raises:
      ConfigError: As `build_schedule`, or if the warmup's `warmup_steps` is unset.
    """
    schedule = build_schedule(config, path)
    warmup = config.warmup.get()
    if warmup is None:
        return schedule
    where = join_path(path, f"warmup.{config.warmup.type}")
    if warmup.warmup_steps is None:
        raise ConfigError(f"`{where}.warmup_steps` must be set for this warmup")
    if config.warmup.type == "linear":
        return lr_schedules.LinearWarmup(schedule, warmup.warmup_steps, warmup.warmup_learning_rate)
    return lr_schedules.PolynomialWarmup(schedule, warmup.warmup_steps, warmup.power)
