"""Builds an encoder from its `EncoderConfig` (Model Garden's `encoders.build_encoder`).

The built-in types `bert`, `bert_v2` and `albert` are built here directly. Any other
`type` is looked up in the `garden.encoders` registry, so a research package can add one
with

    [project.entry-points."garden.encoders"]
    my_encoder = "my_package.encoders:build_my_encoder"

after which `encoder.type: my_encoder` works in any config; the settings under
`my_encoder` are passed to the builder as keyword arguments, and it returns a Keras layer
that takes the encoder-inputs dict and returns Garden's encoder-outputs dict.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras

from garden_core import registry
from garden_core.config import ConfigError
from garden_nlp.configs.encoders import AlbertEncoderConfig, BertEncoderConfig, EncoderConfig
from garden_nlp.modeling.networks.albert_encoder import AlbertEncoder
from garden_nlp.modeling.networks.bert_encoder import BertEncoder

# Model Garden activation names that Keras spells differently.
_ACTIVATION_ALIASES = {"identity": "linear", "simple_swish": "silu", "swish": "silu"}


def _activation(name: str, where: str) -> str:
    key = _ACTIVATION_ALIASES.get(name.lower(), name.lower())
    try:
        keras.activations.get(key)
    except (ValueError, TypeError):
        raise ConfigError(f"`{where}` is {name!r}, which is not a known activation") from None
    return key


def _initializer(stddev: float) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=stddev)


def build_bert_encoder(
    config: BertEncoderConfig, embedding_layer: keras.layers.Layer | None = None
) -> BertEncoder:
    """Returns the `BertEncoder` a `BertEncoderConfig` describes.

    Args:
      config: The encoder's settings.
      embedding_layer: A word-embedding layer to share, or None for a new one.

    Raises:
      ConfigError: If the config breaks a restriction or names an unknown activation.
    """
    config.validate()
    return BertEncoder(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        inner_dim=config.intermediate_size,
        inner_activation=_activation(config.hidden_activation, "hidden_activation"),
        output_dropout=config.dropout_rate,
        attention_dropout=config.attention_dropout_rate,
        initializer=_initializer(config.initializer_range),
        output_range=config.output_range,
        embedding_width=config.embedding_size,
        embedding_layer=embedding_layer,
        norm_first=config.norm_first,
        return_attention_scores=config.return_attention_scores,
    )


def build_albert_encoder(config: AlbertEncoderConfig) -> AlbertEncoder:
    """Returns the `AlbertEncoder` (with dict outputs) an `AlbertEncoderConfig` describes.

    Raises:
      ConfigError: If the config breaks a restriction or names an unknown activation.
    """
    config.validate()
    return AlbertEncoder(
        vocab_size=config.vocab_size,
        embedding_width=config.embedding_width,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        intermediate_size=config.intermediate_size,
        activation=_activation(config.hidden_activation, "hidden_activation"),
        dropout_rate=config.dropout_rate,
        attention_dropout_rate=config.attention_dropout_rate,
        initializer=_initializer(config.initializer_range),
        dict_outputs=True,
    )


_BUILT_IN: dict[str, Callable[..., keras.layers.Layer]] = {
    "bert": build_bert_encoder,
    "bert_v2": build_bert_encoder,
    "albert": build_albert_encoder,
}


def build_encoder(
    config: EncoderConfig, embedding_layer: keras.layers.Layer | None = None
) -> keras.layers.Layer:
    """Returns the encoder `config` chooses.

    Args:
      config: The `EncoderConfig` one-of; `type` names the encoder.
      embedding_layer: A word-embedding layer to share (e.g. ELECTRA's generator and
        discriminator); for `bert`, `bert_v2`, and plugins, which receive it as the
        `embedding_layer` keyword.

    Raises:
      ConfigError: If `type` is unset or names no built-in or registered encoder, or the
        chosen settings are invalid.
      ValueError: If `embedding_layer` is given for an encoder that cannot take one.
    """
    if not isinstance(config, EncoderConfig):
        raise TypeError(f"build_encoder takes an EncoderConfig, got {type(config).__name__}")
    if not config.type:
        raise ConfigError("`encoder.type` is not set: choose one of " + _choices())
    if config.type in _BUILT_IN:
        branch = config.get()
        where = f"encoder.{config.type}"
        branch.validate(where)  # Errors name the full path.
        _activation(branch.hidden_activation, f"{where}.hidden_activation")
        if config.type == "albert":
            if embedding_layer is not None:
                raise ValueError("the `albert` encoder builds its own embeddings")
            return build_albert_encoder(branch)
        return _BUILT_IN[config.type](branch, embedding_layer=embedding_layer)
    try:
        builder = registry.encoders.get(config.type)
    except registry.RegistryError as error:
        raise ConfigError(f"`encoder.type` = {config.type!r}: {error}") from None
    settings: dict[str, Any] = config.get()  # A plugin's settings, as keyword arguments.
    if embedding_layer is not None:
        settings["embedding_layer"] = embedding_layer
    try:
        inspect.signature(builder).bind(**settings)
    except TypeError as error:
        raise ConfigError(
            f"`encoder.{config.type}`: the settings do not fit the `{config.type}` builder: {error}"
        ) from None
    except ValueError:  # No signature to check (some built-in callables).
        pass
    encoder = builder(**settings)
    if not isinstance(encoder, keras.layers.Layer):
        raise ConfigError(
            f"`encoder.type` = {config.type!r}: its builder returned "
            f"{type(encoder).__name__}, not a keras.layers.Layer"
        )
    return encoder


def _choices() -> str:
    names = sorted({*_BUILT_IN, *EncoderConfig.plugin_names()})
    return ", ".join(names)
