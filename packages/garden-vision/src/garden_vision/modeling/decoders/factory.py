"""Builds a decoder from its config through the `garden.decoders` registry.

Every decoder, built in or from another distribution, is found in the registry by its
`decoder.type` and called the one way `garden_core.plugins` calls every component:

    builder(input_specs=..., min_level=..., max_level=..., norm_activation_config=...,
            l2_regularizer=..., **settings)

`input_specs` are the backbone's `output_specs` (level -> shape); `min_level` and
`max_level` are the model config's output levels (RetinaNet's `min_level` / `max_level`),
or None when the model config has none (the decoder then picks its own, e.g. the
backbone's levels). The builder returns a Keras layer or model mapping the backbone's dict
of features to a dict of features, with `output_specs`. A research package adds one with

    [project.entry-points."garden.decoders"]
    my_fpn = "my_package.decoders:build_my_fpn"

after which `decoder: {type: my_fpn, my_fpn: {num_filters: 128}}` works in a model config
and calls `build_my_fpn(input_specs=..., min_level=..., max_level=..., norm_activation_config=...,
l2_regularizer=..., num_filters=128)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from garden_core import plugins
from garden_core.config import ConfigError
from garden_vision.configs.common import NormActivation


def build_decoder(
    input_specs: Mapping[str, Any],
    model_config: Any,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    where: str = "task.model.decoder",
) -> keras.layers.Layer | None:
    """Returns the decoder a model config describes, or None when `decoder.type` is None.

    Args:
      input_specs: The backbone's `output_specs` (level -> shape).
      model_config: A model config with a `decoder` (a `configs.decoders.Decoder`), a
        `norm_activation` (a `configs.common.NormActivation`) and optionally `min_level`
        and `max_level`, as Model Garden's detection and segmentation model configs have;
        or a `Decoder` itself (the levels are then None).
      l2_regularizer: Kernel regularizer for weight decay, or None.
      where: The dotted path of the decoder config in the experiment config, for messages.

    Raises:
      ConfigError: If `type` names no registered decoder, the builder rejects its settings,
        or it returns something other than a Keras layer.
    """
    decoder_config = getattr(model_config, "decoder", model_config)
    norm_activation = getattr(model_config, "norm_activation", None) or NormActivation()
    if decoder_config.type is None:
        return None
    decoder = plugins.build(
        "decoders",
        decoder_config,
        where,
        input_specs=dict(input_specs),
        min_level=getattr(model_config, "min_level", None),
        max_level=getattr(model_config, "max_level", None),
        norm_activation_config=norm_activation,
        l2_regularizer=l2_regularizer,
    )
    if not isinstance(decoder, keras.layers.Layer):
        raise ConfigError(
            f"`{where}.type` is {decoder_config.type!r}, whose builder returned "
            f"{plugins.summarize(decoder)}, not a Keras layer"
        )
    return decoder
