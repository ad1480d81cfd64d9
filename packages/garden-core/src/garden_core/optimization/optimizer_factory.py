"""Builds the Keras 3 optimizer an `OptimizationConfig` describes.

Every `optimizer.type`, built-in or not, is a `garden.optimizers` entry in the registry and
is built through `garden_core.plugins`:

    builder(learning_rate=<float or schedule>, **settings)

The settings are the chosen branch (the fields of a built-in branch such as `adam`, or a
plugin's mapping: `optimizer: {type: my_opt, my_opt: {beta: 0.5}}`); the learning rate
comes from `learning_rate` and `warmup`, so it cannot be one of the settings. Clipping, if
wanted, is a setting (`clipnorm: 1.0`), as Keras optimizers take it. The builder must return
a `keras.optimizers.Optimizer`. garden-core's own optimizers are in
`garden_core.optimization.optimizer_builders`.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_core import plugins, registry
from garden_core.config import ConfigError, OptimizationConfig
from garden_core.config.errors import join_path
from garden_core.optimization.lr_factory import build_learning_rate


def build_optimizer(
    config: OptimizationConfig,
    learning_rate: Any = None,
    path: str = "optimizer_config",
) -> keras.optimizers.Optimizer:
    """Returns the optimizer of `config.optimizer`, with its learning rate and clipping.

    Args:
      config: The optimization config.
      learning_rate: A float or schedule; by default the one `config` describes (see
        `build_learning_rate`).
      path: Where `config` sits in the experiment config, for error messages.

    Raises:
      ConfigError: If no optimizer is chosen (the message lists the registered ones), a
        setting cannot be honoured, or the optimizer cannot be loaded, rejects its settings
        or returns no Keras optimizer.
    """
    where = join_path(path, "optimizer")
    if config.optimizer.type is None:  # Checked before the schedule is built.
        raise ConfigError(
            f"`{where}.type` is not set: choose one of " + ", ".join(registry.optimizers.names())
        )
    if learning_rate is None:
        learning_rate = build_learning_rate(config, path)
    optimizer = plugins.build("optimizers", config.optimizer, where, learning_rate=learning_rate)
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        _, description = plugins.load("optimizers", config.optimizer.type, where)
        raise ConfigError(
            f"`{join_path(where, config.optimizer.type)}`: {description} returned "
            f"{plugins.summarize(optimizer)}, not a keras.optimizers.Optimizer"
        )
    return optimizer
