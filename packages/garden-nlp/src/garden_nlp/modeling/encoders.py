"""Builds encoders through the `garden.encoders` registry (Model Garden's `build_encoder`).

Every encoder type, built-in or third-party, is registered in `garden.encoders` and built
one way, by `garden_core.plugins.build`: the builder `EncoderConfig.type` names is called
with the chosen branch's settings as keywords,

    builder(**settings)                              # or, when a task shares embeddings,
    builder(**settings, embedding_layer=<layer>)

and returns a Keras layer that takes the encoder-inputs dict (`input_word_ids`,
`input_mask`, `input_type_ids`) and returns Garden's encoder-outputs dict
(`sequence_output`, `pooled_output`, `encoder_outputs`). garden-nlp registers its own
`bert`, `bert_v2` and `albert` in its `pyproject.toml` exactly as a research package
registers one:

    [project.entry-points."garden.encoders"]
    my_encoder = "my_package.encoders:build_my_encoder"

after which `encoder: {type: my_encoder, my_encoder: {...}}` works in any config. The
built-in builders declare their settings class (`config_class`), so their settings get
the config's defaults, types and restrictions checked, and an unknown activation name is
reported as a `plugins.SettingError`; either way the error names the dotted path
(`task.model.encoder.bert.hidden_activation`).
"""

from __future__ import annotations

from typing import Any

import keras

from garden_core import plugins
from garden_core.config import ConfigError
from garden_core.config.errors import join_path
from garden_nlp.configs.encoders import AlbertEncoderConfig, BertEncoderConfig, EncoderConfig
from garden_nlp.modeling.networks.albert_encoder import AlbertEncoder
from garden_nlp.modeling.networks.bert_encoder import BertEncoder

# Model Garden activation names that Keras spells differently.
_ACTIVATION_ALIASES = {"identity": "linear", "simple_swish": "silu", "swish": "silu"}


def keras_activation(name: str, setting: str = "hidden_activation") -> str:
    """The Keras name of the activation `name` (Model Garden's names accepted).

    Raises:
      plugins.SettingError: If Keras knows no such activation; called through the registry,
        it becomes a `ConfigError` naming the setting's dotted path.
    """
    key = _ACTIVATION_ALIASES.get(name.lower(), name.lower())
    try:
        keras.activations.get(key)
    except (ValueError, TypeError):
        raise plugins.SettingError(
            setting, f"is {name!r}, which is not a known activation"
        ) from None
    return key


def _read_settings(config_class: type, settings: dict[str, Any]) -> Any:
    """The builder's settings as a config, checked (for direct calls of a builder; through
    the registry, `plugins.call` has checked them under their dotted path already)."""
    config = config_class.from_dict(settings)
    config.validate()
    return config


def build_bert_encoder(
    embedding_layer: keras.layers.Layer | None = None, **settings: Any
) -> BertEncoder:
    """Builds the `BertEncoder` of the `bert` (and `bert_v2`) encoder type.

    Example:

        encoder = build_bert_encoder(vocab_size=100, hidden_size=16, num_layers=2,
                                     num_attention_heads=2, intermediate_size=32)

    Args:
      embedding_layer: A word-embedding layer to share (e.g. between ELECTRA's generator
        and discriminator), or None for a new one.
      **settings: The fields of `BertEncoderConfig` (`vocab_size`, `hidden_size`,
        `num_layers`, ...); unset ones take its defaults (BERT-base).

    Raises:
      ConfigError: If a setting is unknown, of the wrong type or breaks a restriction.
      plugins.SettingError: If `hidden_activation` names an unknown activation.
    """
    config = _read_settings(BertEncoderConfig, settings)
    return BertEncoder(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        inner_dim=config.intermediate_size,
        inner_activation=keras_activation(config.hidden_activation),
        output_dropout=config.dropout_rate,
        attention_dropout=config.attention_dropout_rate,
        initializer=keras.initializers.TruncatedNormal(stddev=config.initializer_range),
        output_range=config.output_range,
        embedding_width=config.embedding_size,
        embedding_layer=embedding_layer,
        norm_first=config.norm_first,
        return_attention_scores=config.return_attention_scores,
    )


build_bert_encoder.config_class = BertEncoderConfig


def build_albert_encoder(
    embedding_layer: keras.layers.Layer | None = None, **settings: Any
) -> AlbertEncoder:
    """Builds the `AlbertEncoder` (with dict outputs) of the `albert` encoder type.

    Args:
      embedding_layer: Must be None: ALBERT builds its own factorized embeddings, so a task
        that shares an embedding layer cannot use it.
      **settings: The fields of `AlbertEncoderConfig`; unset ones take its defaults
        (ALBERT-base).

    Raises:
      ConfigError: If a setting is unknown, of the wrong type or breaks a restriction.
      plugins.SettingError: If `hidden_activation` names an unknown activation.
      ValueError: If an embedding layer is given.
    """
    if embedding_layer is not None:
        raise ValueError(
            "the `albert` encoder builds its own factorized embeddings and cannot share an "
            f"embedding layer (got {type(embedding_layer).__name__}); use `bert` for a task "
            "that shares one"
        )
    config = _read_settings(AlbertEncoderConfig, settings)
    return AlbertEncoder(
        vocab_size=config.vocab_size,
        embedding_width=config.embedding_width,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        intermediate_size=config.intermediate_size,
        activation=keras_activation(config.hidden_activation),
        dropout_rate=config.dropout_rate,
        attention_dropout_rate=config.attention_dropout_rate,
        initializer=keras.initializers.TruncatedNormal(stddev=config.initializer_range),
        dict_outputs=True,
    )


build_albert_encoder.config_class = AlbertEncoderConfig


def build_encoder(
    config: EncoderConfig,
    embedding_layer: keras.layers.Layer | None = None,
    where: str = "encoder",
) -> keras.layers.Layer:
    """Returns the encoder `config` chooses, built through the `garden.encoders` registry.

    Example:

        config = EncoderConfig.from_dict({"type": "bert", "bert": {"num_layers": 2}})
        encoder = build_encoder(config)

    Args:
      config: The `EncoderConfig` one-of; `type` names the encoder.
      embedding_layer: A word-embedding layer to share (e.g. ELECTRA's generator and
        discriminator), passed to the builder as `embedding_layer`; None passes nothing.
      where: The dotted path of `config` in the experiment config, for error messages
        (a task's encoder is `task.model.encoder`).

    Raises:
      ConfigError: If `type` is unset or names no registered encoder, the settings do not
        fit its builder (unknown keys, types, restrictions, activation names; the message
        names the dotted path), it cannot take `embedding_layer`, or it does not return a
        Keras layer.
    """
    if not isinstance(config, EncoderConfig):
        raise TypeError(f"build_encoder takes an EncoderConfig, got {type(config).__name__}")
    context = {} if embedding_layer is None else {"embedding_layer": embedding_layer}
    encoder = plugins.build("encoders", config, where, **context)
    if not isinstance(encoder, keras.layers.Layer):
        raise ConfigError(
            f"`{join_path(where, 'type')}` is {config.type!r}: its builder returned "
            f"{plugins.summarize(encoder)}, not a keras.layers.Layer"
        )
    return encoder


def initializer_range(config: EncoderConfig) -> float:
    """The encoder's `initializer_range` (0.02, BERT's, when its settings have none).

    Model Garden initializes task heads with the encoder's range; a plugin encoder whose
    settings do not set one gets BERT's.
    """
    settings = plugins.settings_of(config)
    return float(settings.get("initializer_range", 0.02))
