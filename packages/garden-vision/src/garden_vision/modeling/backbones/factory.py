"""Builds a backbone from its config through the `garden.backbones` registry.

A builder is any callable

    builder(input_specs, backbone_config, norm_activation_config, l2_regularizer=None)

that returns a backbone (see `garden_vision.modeling.backbones`). garden-vision registers its
own in its pyproject.toml; a research package adds one with

    [project.entry-points."garden.backbones"]
    my_net = "my_package.backbones:build_my_net"

after which `backbone.type: my_net` works in any config, with the settings under `my_net`
passed to the builder as a dict.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_core import registry
from garden_core.config import ConfigError
from garden_vision.configs.backbones import Backbone
from garden_vision.configs.common import NormActivation


def build_backbone(
    input_specs: keras.layers.InputSpec,
    backbone_config: Backbone,
    norm_activation_config: NormActivation | None = None,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
) -> keras.Model:
    """Returns the backbone `backbone_config` describes.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`
        (height and width may be None).
      backbone_config: The `Backbone` one-of; its `type` names the builder.
      norm_activation_config: Normalization and activation settings (defaults if None).
      l2_regularizer: Kernel regularizer for weight decay, or None.

    Raises:
      ConfigError: If `type` is unset or names no registered backbone.
    """
    if not backbone_config.type:
        raise ConfigError("`backbone.type` is not set: choose one of " + _choices())
    try:
        builder = registry.backbones.get(backbone_config.type)
    except registry.RegistryError as error:
        raise ConfigError(f"`backbone.type` = {backbone_config.type!r}: {error}") from None
    return builder(
        input_specs=input_specs,
        backbone_config=backbone_config.get(),
        norm_activation_config=norm_activation_config or NormActivation(),
        l2_regularizer=l2_regularizer,
    )


def _choices() -> str:
    names: list[Any] = sorted(registry.backbones.names())
    return ", ".join(names) or "(none registered)"
