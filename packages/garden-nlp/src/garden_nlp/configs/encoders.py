"""Encoder configs (Model Garden's `nlp.configs.encoders`) and the `EncoderConfig` one-of.

`EncoderConfig.type` names a built-in encoder (`bert`, `bert_v2`, `albert`) or any encoder
another distribution registers in `garden.encoders`; `garden_nlp.modeling.encoders.
build_encoder` builds it. Field names and defaults are Model Garden's, so its YAML loads as
is. This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import dataclasses

from garden_core.config import Config, OneOfConfig
from garden_core.lazy_exports import lazy_exports as _lazy_exports


@dataclasses.dataclass
class BertEncoderConfig(Config):
    """BERT's encoder (Devlin et al., 2018); the defaults are BERT-base's.

    Attributes:
      vocab_size: Size of the token vocabulary.
      hidden_size: Width of the Transformer layers.
      num_layers: Number of Transformer layers.
      num_attention_heads: Attention heads per layer.
      hidden_activation: Activation of the feed-forward layers (`gelu`: the exact GELU).
      intermediate_size: Width of the feed-forward layers.
      dropout_rate: Dropout rate of the embeddings and layer outputs.
      attention_dropout_rate: Dropout rate of the attention probabilities.
      max_position_embeddings: The longest input the position embeddings cover.
      type_vocab_size: Number of segment (token type) ids.
      initializer_range: Standard deviation of the truncated-normal initializer.
      embedding_size: Width of the embeddings, projected to `hidden_size`; None is
        `hidden_size`.
      output_range: If set, the last layer computes only the first `output_range` tokens.
      return_all_encoder_outputs: Model Garden's switch for every layer's output; Garden's
        encoders always return them, under `encoder_outputs`.
      return_attention_scores: Also return every layer's attention probabilities.
      norm_first: Pre-norm layers instead of BERT's post-norm.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_attention_heads: int = 12
    hidden_activation: str = "gelu"
    intermediate_size: int = 3072
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    embedding_size: int | None = None
    output_range: int | None = None
    return_all_encoder_outputs: bool = False
    return_attention_scores: bool = False
    norm_first: bool = False

    restrictions = (
        "vocab_size > 0",
        "hidden_size > 0",
        "num_layers > 0",
        "num_attention_heads > 0",
        "intermediate_size > 0",
        "dropout_rate >= 0",
        "dropout_rate < 1",
        "attention_dropout_rate >= 0",
        "attention_dropout_rate < 1",
        "max_position_embeddings > 0",
        "type_vocab_size > 0",
        "initializer_range > 0",
    )
    unsupported_fields = {
        "return_word_embeddings": (
            False,
            "the word embeddings are not an encoder output; use `get_embedding_table()`",
        ),
    }


@dataclasses.dataclass
class AlbertEncoderConfig(Config):
    """ALBERT's encoder (Lan et al., 2019); the defaults are ALBERT-base's.

    Attributes:
      vocab_size: Size of the token vocabulary.
      embedding_width: Width of the factorized embeddings.
      hidden_size: Width of the shared Transformer layer.
      num_layers: How many times the shared layer is applied.
      num_attention_heads: Attention heads.
      hidden_activation: Activation of the feed-forward layer.
      intermediate_size: Width of the feed-forward layer.
      dropout_rate: Dropout rate of the embeddings and layer outputs.
      attention_dropout_rate: Dropout rate of the attention probabilities.
      max_position_embeddings: The longest input the position embeddings cover.
      type_vocab_size: Number of segment (token type) ids.
      initializer_range: Standard deviation of the truncated-normal initializer.
    """

    vocab_size: int = 30000
    embedding_width: int = 128
    hidden_size: int = 768
    num_layers: int = 12
    num_attention_heads: int = 12
    hidden_activation: str = "gelu"
    intermediate_size: int = 3072
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02

    restrictions = (
        "vocab_size > 0",
        "embedding_width > 0",
        "hidden_size > 0",
        "num_layers > 0",
        "num_attention_heads > 0",
        "intermediate_size > 0",
        "dropout_rate >= 0",
        "dropout_rate < 1",
        "attention_dropout_rate >= 0",
        "attention_dropout_rate < 1",
        "max_position_embeddings > 0",
        "type_vocab_size > 0",
        "initializer_range > 0",
    )


_NOT_YET = "not offered by garden-nlp yet"


@dataclasses.dataclass
class EncoderConfig(OneOfConfig):
    """Which encoder a model uses: `type` plus that encoder's settings.

    `bert_v2` is Model Garden's name for the same BERT encoder (its Keras-layer
    implementation, which is what Garden's `BertEncoder` is); both build `BertEncoder`.
    """

    type: str | None = "bert"
    albert: AlbertEncoderConfig = dataclasses.field(default_factory=AlbertEncoderConfig)
    bert: BertEncoderConfig = dataclasses.field(default_factory=BertEncoderConfig)
    bert_v2: BertEncoderConfig = dataclasses.field(default_factory=BertEncoderConfig)

    plugin_kind = "encoders"
    unsupported_branches = {
        "bigbird": _NOT_YET,
        "kernel": _NOT_YET,
        "mobilebert": _NOT_YET,
        "reuse": _NOT_YET,
        "xlnet": _NOT_YET,
        "query_bert": _NOT_YET,
        "fnet": _NOT_YET,
        "sparse_mixer": _NOT_YET,
        "any": "Garden builds custom encoders through `garden.encoders` plugins instead of a "
        "BUILDER attribute",
    }


# `build_encoder` lives with the models (it imports Keras); it is offered here too, imported on
# first use, as Model Garden offers `official.nlp.configs.encoders.build_encoder`.
__getattr__, __dir__, _lazy_names = _lazy_exports(
    __name__, {"build_encoder": "garden_nlp.modeling.encoders:build_encoder"}
)
