"""Builds heads through the `garden.heads` registry.

A head is found in the registry by name and called the one way `garden_core.plugins` calls
every component:

    builder(input_specs=..., num_classes=..., norm_activation_config=...,
            l2_regularizer=..., **settings)

`input_specs` is the shape of the features the head reads (batch first); the builder
returns a Keras layer. The name comes from the model factory (the classification model
uses `classification`) or from a one-of config's `type` (`head: {type: my_head,
my_head: {...}}`), the settings from the config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from garden_core import plugins
from garden_core.config import Config, ConfigError, OneOfConfig
from garden_vision.configs.common import NormActivation


def build_head(
    head: str | OneOfConfig,
    where: str,
    *,
    input_specs: Sequence[int | None],
    num_classes: int,
    norm_activation_config: NormActivation | None = None,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    settings: Config | Mapping[str, Any] | None = None,
) -> keras.layers.Layer:
    """Returns the head `head` names, built with its settings.

    Args:
      head: A registered head name (its settings in `settings`), or a one-of config whose
        `type` names it and whose chosen branch holds its settings.
      where: The dotted path of the settings in the experiment config, for messages.
      input_specs: The shape of the features the head reads, batch first.
      num_classes: The number of classes the head predicts.
      norm_activation_config: Normalization settings (defaults if None).
      l2_regularizer: Kernel regularizer for weight decay, or None.
      settings: With a head name, its settings (a config or a mapping); None for none.

    Raises:
      ConfigError: If the name is not registered, the builder rejects its settings, or it
        returns something other than a Keras layer.
    """
    context = {
        "input_specs": tuple(input_specs),
        "num_classes": num_classes,
        "norm_activation_config": norm_activation_config or NormActivation(),
        "l2_regularizer": l2_regularizer,
    }
    if isinstance(head, OneOfConfig):
        if settings is not None:
            raise ValueError("`settings` are given by the one-of config's branch, not apart")
        layer = plugins.build("heads", head, where, **context)
        name = head.type
    else:
        layer = plugins.build_named("heads", head, settings or {}, where, **context)
        name = head
    if not isinstance(layer, keras.layers.Layer):
        raise ConfigError(
            f"`{where}`: the head {name!r} returned {plugins.summarize(layer)}, not a Keras layer"
        )
    return layer
