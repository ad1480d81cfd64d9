"""Builds a backbone from its config through the `garden.backbones` registry.

Every backbone, built in or from another distribution, is found in the registry by its
`backbone.type` and called the one way `garden_core.plugins` calls every component:

    builder(input_specs=..., norm_activation_config=..., l2_regularizer=..., **settings)

where `settings` are the keyword settings of the chosen branch (`backbone.resnet`'s fields,
or the plain mapping a plugin's branch holds in YAML). garden-vision registers its own in
its pyproject.toml; a research package adds one with

    [project.entry-points."garden.backbones"]
    my_net = "my_package.backbones:build_my_net"

after which `backbone: {type: my_net, my_net: {width: 32}}` works in any config and calls
`build_my_net(input_specs=..., norm_activation_config=..., l2_regularizer=..., width=32)`.
The builder returns a `keras.Model` mapping the image to a dict of features keyed by level,
with `output_specs` (level -> shape), like `garden_vision.modeling.backbones.Backbone`.
"""

from __future__ import annotations

import keras

from garden_core import plugins
from garden_core.config import ConfigError
from garden_vision.configs.backbones import Backbone
from garden_vision.configs.common import NormActivation


def build_backbone(
    input_specs: keras.layers.InputSpec,
    backbone_config: Backbone,
    norm_activation_config: NormActivation | None = None,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    where: str = "task.model.backbone",
) -> keras.Model:
    """Returns the backbone `backbone_config` describes.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`
        (height and width may be None).
      backbone_config: The `Backbone` one-of; its `type` names the builder.
      norm_activation_config: Normalization and activation settings (defaults if None).
      l2_regularizer: Kernel regularizer for weight decay, or None.
      where: The dotted path of `backbone_config` in the experiment config, for messages.

    Raises:
      ConfigError: If `type` is unset or names no registered backbone, the builder rejects
        its settings, or it returns something other than a Keras model.
    """
    backbone = plugins.build(
        "backbones",
        backbone_config,
        where,
        input_specs=input_specs,
        norm_activation_config=norm_activation_config or NormActivation(),
        l2_regularizer=l2_regularizer,
    )
    if not isinstance(backbone, keras.Model):
        raise ConfigError(
            f"`{where}.type` is {backbone_config.type!r}, whose builder returned "
            f"{plugins.summarize(backbone)}, not a keras.Model"
        )
    return backbone
