"""`AlbertEncoder`: ALBERT's parameter-efficient Transformer encoder (Lan et al., 2019).

ALBERT differs from BERT in two ways that both save parameters: the embeddings are
factorized (`[vocab_size, embedding_width]` tables, with `embedding_width` much smaller
than the hidden size, and one `[embedding_width, hidden_size]` projection), and all layers
share one set of weights: a single `TransformerEncoderBlock` applied `num_layers` times. Its
parameter count therefore does not grow with depth.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_nlp.modeling.layers.on_device_embedding import OnDeviceEmbedding
from garden_nlp.modeling.layers.transformer_encoder_block import (
    TransformerEncoderBlock,
    serialize_activation,
)
from garden_nlp.modeling.networks.bert_encoder import (
    add_embedding_layers,
    embed,
    truncated_normal,
    unpack_encoder_inputs,
)


@keras.saving.register_keras_serializable(package="garden_nlp")
class AlbertEncoder(keras.layers.Layer):
    """ALBERT's encoder: factorized embeddings and one Transformer layer shared by depth.

    Called on `{"input_word_ids", "input_mask", "input_type_ids"}` (int `[batch, seq]`
    each), returns with `dict_outputs=True` a dict with `sequence_output` `[batch, seq,
    hidden_size]`, `pooled_output` `[batch, hidden_size]` and `encoder_outputs` (the output
    of each of the `num_layers` applications), and otherwise Model Garden's list
    `[sequence_output, pooled_output]`.

    Example (ALBERT-base):

        encoder = AlbertEncoder(vocab_size=30000, type_vocab_size=2, dict_outputs=True)

    Args:
      vocab_size: Size of the token vocabulary.
      embedding_width: Width of the embeddings (projected to `hidden_size` when it differs).
      hidden_size: Width of the Transformer layer.
      num_layers: How many times the shared Transformer layer is applied.
      num_attention_heads: Attention heads (`hidden_size` must be a multiple).
      max_sequence_length: The longest input the position embeddings cover.
      type_vocab_size: Number of segment (token type) ids.
      intermediate_size: Width of the feed-forward layer.
      activation: Activation of the feed-forward layer (`"gelu"`: the exact GELU).
      dropout_rate: Dropout rate of the embeddings and of the layer outputs.
      attention_dropout_rate: Dropout rate of the attention probabilities.
      initializer: Initializer of every weight; None is `TruncatedNormal(stddev=0.02)`.
      dict_outputs: Return a dict (Garden's encoder outputs) instead of a list.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Attributes (their variables exist once the encoder is built or called):
      hidden_size: The output width.
      word_embeddings, position_embedding, type_embeddings, embedding_norm: The embedding
        layers, as in `BertEncoder`.
      embedding_projection: The `[embedding_width, hidden_size]` `EinsumDense`, or None
        when the widths are equal.
      shared_layer: The one `TransformerEncoderBlock` applied `num_layers` times.
      pooler_layer: The tanh `Dense(hidden_size)` over the first token.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_width: int = 128,
        hidden_size: int = 768,
        num_layers: int = 12,
        num_attention_heads: int = 12,
        max_sequence_length: int = 512,
        type_vocab_size: int = 16,
        intermediate_size: int = 3072,
        activation: Any = "gelu",
        dropout_rate: float = 0.1,
        attention_dropout_rate: float = 0.1,
        initializer: Any = None,
        dict_outputs: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if int(num_layers) < 1:
            raise ValueError(f"AlbertEncoder `{self.name}` needs num_layers >= 1, got {num_layers}")
        if int(hidden_size) % int(num_attention_heads):
            raise ValueError(
                f"AlbertEncoder `{self.name}`: hidden_size={hidden_size} is not a multiple of "
                f"num_attention_heads={num_attention_heads}"
            )
        self.vocab_size = int(vocab_size)
        self.embedding_width = int(embedding_width or hidden_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.num_attention_heads = int(num_attention_heads)
        self.max_sequence_length = int(max_sequence_length)
        self.type_vocab_size = int(type_vocab_size)
        self.intermediate_size = int(intermediate_size)
        self.activation = serialize_activation(activation)
        self.dropout_rate = float(dropout_rate)
        self.attention_dropout_rate = float(attention_dropout_rate)
        self.initializer = truncated_normal(initializer)
        self.dict_outputs = bool(dict_outputs)

        def init():
            return keras.initializers.get(self.initializer)

        policy = self.dtype_policy
        self.word_embeddings = OnDeviceEmbedding(
            vocab_size=self.vocab_size,
            embedding_width=self.embedding_width,
            initializer=init(),
            dtype=policy,
            name="word_embeddings",
        )
        with keras.name_scope(self.name):
            self.word_embeddings.build((None, None))  # Heads may share the table.
        add_embedding_layers(self, self.dropout_rate, init)
        self.shared_layer = TransformerEncoderBlock(
            num_attention_heads=self.num_attention_heads,
            inner_dim=self.intermediate_size,
            inner_activation=self.activation,
            output_dropout=self.dropout_rate,
            attention_dropout=self.attention_dropout_rate,
            kernel_initializer=init(),
            dtype=policy,
            name="transformer",
        )
        self.pooler_layer = keras.layers.Dense(
            self.hidden_size,
            activation="tanh",
            kernel_initializer=init(),
            dtype=policy,
            name="pooler_transform",
        )

    def get_embedding_table(self):
        """The `[vocab_size, embedding_width]` word-embedding variable."""
        return self.word_embeddings.embeddings

    def get_embedding_layer(self) -> keras.layers.Layer:
        """The word-embedding layer."""
        return self.word_embeddings

    def build(self, input_shape=None):
        width, hidden = self.embedding_width, self.hidden_size
        self.position_embedding.build((None, None, width))
        self.type_embeddings.build((None, None))
        self.embedding_norm.build((None, None, width))
        if self.embedding_projection is not None:
            self.embedding_projection.build((None, None, width))
        self.shared_layer.build([(None, None, hidden), (None, None, None)])
        self.pooler_layer.build((None, hidden))

    def call(self, inputs, training=None):
        word_ids, mask, type_ids = unpack_encoder_inputs(inputs, f"AlbertEncoder `{self.name}`")
        embeddings, attention_mask = embed(self, word_ids, mask, type_ids, training)
        data = embeddings
        encoder_outputs = []
        for _ in range(self.num_layers):
            data = self.shared_layer([data, attention_mask], training=training)
            encoder_outputs.append(data)
        pooled_output = self.pooler_layer(data[:, 0, :])
        if self.dict_outputs:
            return {
                "sequence_output": data,
                "pooled_output": pooled_output,
                "encoder_outputs": encoder_outputs,
            }
        return [data, pooled_output]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_width": self.embedding_width,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_attention_heads": self.num_attention_heads,
            "max_sequence_length": self.max_sequence_length,
            "type_vocab_size": self.type_vocab_size,
            "intermediate_size": self.intermediate_size,
            "activation": self.activation,
            "dropout_rate": self.dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "initializer": self.initializer,
            "dict_outputs": self.dict_outputs,
        }
