"""`BertEncoder`: the bidirectional Transformer encoder of BERT (Devlin et al., 2018).

Token, position and segment embeddings are summed, normalized and (optionally) projected to
the hidden size, then run through `num_layers` `TransformerEncoderBlock`s with a padding
attention mask computed once per call. A dense tanh "pooler" over the first token ([CLS])
gives the sentence representation. This is Model Garden's `BertEncoderV2` as a Keras 3
layer: it takes the encoder-inputs dict and returns a dict of outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from garden_nlp.modeling.layers.on_device_embedding import OnDeviceEmbedding
from garden_nlp.modeling.layers.position_embedding import PositionEmbedding
from garden_nlp.modeling.layers.self_attention_mask import SelfAttentionMask
from garden_nlp.modeling.layers.transformer_encoder_block import (
    TransformerEncoderBlock,
    serialize_activation,
)

INPUT_KEYS = ("input_word_ids", "input_mask", "input_type_ids")


def unpack_encoder_inputs(inputs: Any, where: str) -> tuple[Any, Any, Any]:
    """Returns `(word_ids, mask, type_ids)` from the encoder-inputs dict.

    Raises:
      ValueError: If `inputs` is not a mapping holding the three keys, naming `where`.
    """
    if not isinstance(inputs, Mapping):
        raise ValueError(
            f"{where} takes a dict with keys {', '.join(INPUT_KEYS)}, got {type(inputs).__name__}"
        )
    missing = [key for key in INPUT_KEYS if key not in inputs]
    if missing:
        raise ValueError(
            f"{where}: the inputs lack {', '.join(missing)} (got keys {', '.join(inputs)})"
        )
    return tuple(inputs[key] for key in INPUT_KEYS)


def encoder_output_dict(outputs: Any, where: str) -> dict[str, Any]:
    """The outputs of an encoder as Garden's dict.

    Accepts the dict of Garden's encoders and Model Garden's lists `[sequence_output,
    pooled_output]` / `[encoder_outputs, pooled_output]` (`dict_outputs=False`).

    Raises:
      ValueError: For any other structure, naming `where`.
    """
    if isinstance(outputs, Mapping):
        if "sequence_output" not in outputs or "pooled_output" not in outputs:
            raise ValueError(
                f"{where}: the encoder's outputs lack sequence_output or pooled_output (got "
                f"keys {', '.join(outputs)})"
            )
        return dict(outputs)
    if isinstance(outputs, (list, tuple)) and len(outputs) == 2:
        sequence, pooled = outputs
        if isinstance(sequence, (list, tuple)):
            return {
                "sequence_output": sequence[-1],
                "pooled_output": pooled,
                "encoder_outputs": list(sequence),
            }
        return {"sequence_output": sequence, "pooled_output": pooled}
    raise ValueError(
        f"{where}: an encoder returns a dict with sequence_output and pooled_output, or "
        f"[sequence_output, pooled_output]; got {type(outputs).__name__}"
    )


def truncated_normal(initializer: Any) -> Any:
    """`initializer` serialized, with None meaning BERT's `TruncatedNormal(stddev=0.02)`."""
    if initializer is None:
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
    return keras.initializers.serialize(keras.initializers.get(initializer))


def add_embedding_layers(encoder: keras.layers.Layer, dropout_rate: float, initializer) -> None:
    """Gives `encoder` BERT's embedding sublayers besides its word embeddings.

    Sets `position_embedding`, `type_embeddings` (one-hot, as the type vocabulary is
    small), `embedding_norm`, `embedding_dropout`, `embedding_projection` (None unless
    `encoder.embedding_width` differs from `encoder.hidden_size`) and `self_attention_mask`,
    from the encoder's `max_sequence_length`, `type_vocab_size`, `embedding_width`,
    `hidden_size` and dtype policy.

    Args:
      encoder: The encoder being constructed.
      dropout_rate: Dropout after the embedding layer normalization.
      initializer: A zero-argument function returning a fresh initializer.
    """
    policy = encoder.dtype_policy
    encoder.position_embedding = PositionEmbedding(
        max_length=encoder.max_sequence_length,
        initializer=initializer(),
        dtype=policy,
        name="position_embedding",
    )
    encoder.type_embeddings = OnDeviceEmbedding(
        vocab_size=encoder.type_vocab_size,
        embedding_width=encoder.embedding_width,
        initializer=initializer(),
        use_one_hot=True,
        dtype=policy,
        name="type_embeddings",
    )
    encoder.embedding_norm = keras.layers.LayerNormalization(
        axis=-1, epsilon=1e-12, dtype=policy, name="embeddings_layer_norm"
    )
    encoder.embedding_dropout = keras.layers.Dropout(
        dropout_rate, dtype=policy, name="embeddings_dropout"
    )
    encoder.embedding_projection = None
    if encoder.embedding_width != encoder.hidden_size:
        encoder.embedding_projection = keras.layers.EinsumDense(
            "...x,xy->...y",
            output_shape=encoder.hidden_size,
            bias_axes="y",
            kernel_initializer=initializer(),
            dtype=policy,
            name="embedding_projection",
        )
    encoder.self_attention_mask = SelfAttentionMask(dtype=policy, name="self_attention_mask")


def embed(encoder: keras.layers.Layer, word_ids, mask, type_ids, training=None):
    """The embedded sequence and its `[batch, seq, seq]` attention mask (see
    `add_embedding_layers`): word + position + type embeddings, normalized, dropped out and
    projected to the hidden size."""
    word_embeddings = encoder.word_embeddings(word_ids)
    embeddings = (
        word_embeddings
        + encoder.position_embedding(word_embeddings)
        + encoder.type_embeddings(type_ids)
    )
    embeddings = encoder.embedding_norm(embeddings)
    embeddings = encoder.embedding_dropout(embeddings, training=training)
    if encoder.embedding_projection is not None:
        embeddings = encoder.embedding_projection(embeddings)
    return embeddings, encoder.self_attention_mask(embeddings, mask)


@keras.saving.register_keras_serializable(package="garden_nlp")
class BertEncoder(keras.layers.Layer):
    """BERT's Transformer encoder.

    Called on `{"input_word_ids", "input_mask", "input_type_ids"}` (int `[batch, seq]`
    each; the mask is 1 for real tokens, 0 for padding), returns a dict:

    - `sequence_output`: `[batch, seq, hidden_size]` (`[batch, output_range, hidden_size]`
      with `output_range`), the last layer's output;
    - `pooled_output`: `[batch, hidden_size]`, the pooler over the first token;
    - `encoder_outputs`: the output of every layer, a list of `num_layers` tensors;
    - `attention_scores` (with `return_attention_scores`): every layer's attention
      probabilities, `[batch, num_attention_heads, seq, seq]` each.

    Example (BERT-base, 110M parameters):

        encoder = BertEncoder(vocab_size=30522, type_vocab_size=2)
        outputs = encoder({"input_word_ids": ids, "input_mask": mask,
                           "input_type_ids": type_ids})

    Args:
      vocab_size: Size of the token vocabulary.
      hidden_size: Width of the Transformer layers.
      num_layers: Number of Transformer layers.
      num_attention_heads: Attention heads per layer (`hidden_size` must be a multiple).
      max_sequence_length: The longest input the position embeddings cover.
      type_vocab_size: Number of segment (token type) ids.
      inner_dim: Width of the feed-forward layers (BERT's intermediate size).
      inner_activation: Activation of the feed-forward layers (`"gelu"`: the exact GELU).
      output_dropout: Dropout rate of the embeddings and of each layer's outputs.
      attention_dropout: Dropout rate of the attention probabilities.
      initializer: Initializer of every weight; None is `TruncatedNormal(stddev=0.02)`.
      output_range: If set, the last layer computes only the first `output_range`
        positions (enough for a classifier, which reads only [CLS]).
      embedding_width: Width of the embeddings; None is `hidden_size`. When it differs,
        the embeddings are factorized: `[vocab_size, embedding_width]` tables and an
        `[embedding_width, hidden_size]` projection (ALBERT-style).
      embedding_layer: A word-embedding layer to use (and share, e.g. ELECTRA's generator
        and discriminator) instead of a new `OnDeviceEmbedding`.
      norm_first: Pre-norm Transformer layers instead of BERT's post-norm.
      return_attention_scores: Also return every layer's attention probabilities.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Attributes (their variables exist once the encoder is built or called):
      hidden_size: The output width.
      word_embeddings: The `OnDeviceEmbedding` (`.embeddings`: `[vocab_size,
        embedding_width]`), or `embedding_layer`.
      position_embedding: The `PositionEmbedding` (`[max_sequence_length, embedding_width]`).
      type_embeddings: The `OnDeviceEmbedding` of segment ids.
      embedding_norm: The embeddings' `LayerNormalization` (epsilon 1e-12).
      embedding_projection: The `EinsumDense` projection to `hidden_size`, or None.
      transformer_layers: The `TransformerEncoderBlock`s, in order.
      pooler_layer: The tanh `Dense(hidden_size)` over the first token.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 768,
        num_layers: int = 12,
        num_attention_heads: int = 12,
        max_sequence_length: int = 512,
        type_vocab_size: int = 16,
        inner_dim: int = 3072,
        inner_activation: Any = "gelu",
        output_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        initializer: Any = None,
        output_range: int | None = None,
        embedding_width: int | None = None,
        embedding_layer: keras.layers.Layer | None = None,
        norm_first: bool = False,
        return_attention_scores: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if int(num_layers) < 1:
            raise ValueError(f"BertEncoder `{self.name}` needs num_layers >= 1, got {num_layers}")
        if int(hidden_size) % int(num_attention_heads):
            raise ValueError(
                f"BertEncoder `{self.name}`: hidden_size={hidden_size} is not a multiple of "
                f"num_attention_heads={num_attention_heads}"
            )
        if output_range is not None and int(output_range) < 1:
            raise ValueError(
                f"BertEncoder `{self.name}`: output_range must be None or >= 1, got {output_range}"
            )
        self.vocab_size = int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.num_attention_heads = int(num_attention_heads)
        self.max_sequence_length = int(max_sequence_length)
        self.type_vocab_size = int(type_vocab_size)
        self.inner_dim = int(inner_dim)
        self.inner_activation = serialize_activation(inner_activation)
        self.output_dropout = float(output_dropout)
        self.attention_dropout = float(attention_dropout)
        self.initializer = truncated_normal(initializer)
        self.output_range = None if output_range is None else int(output_range)
        self.embedding_width = int(embedding_width or hidden_size)
        self.norm_first = bool(norm_first)
        self.return_attention_scores = bool(return_attention_scores)
        self._custom_embedding_layer = embedding_layer is not None

        def init():
            return keras.initializers.get(self.initializer)

        policy = self.dtype_policy
        if embedding_layer is None:
            embedding_layer = OnDeviceEmbedding(
                vocab_size=self.vocab_size,
                embedding_width=self.embedding_width,
                initializer=init(),
                dtype=policy,
                name="word_embeddings",
            )
        self.word_embeddings = embedding_layer
        if not self.word_embeddings.built:
            # The table exists from the start, so that heads can share it (`MaskedLM`).
            with keras.name_scope(self.name):
                self.word_embeddings.build((None, None))
        add_embedding_layers(self, self.output_dropout, init)
        self._layer_names = []
        for i in range(self.num_layers):
            layer = TransformerEncoderBlock(
                num_attention_heads=self.num_attention_heads,
                inner_dim=self.inner_dim,
                inner_activation=self.inner_activation,
                output_dropout=self.output_dropout,
                attention_dropout=self.attention_dropout,
                norm_first=self.norm_first,
                kernel_initializer=init(),
                return_attention_scores=self.return_attention_scores,
                dtype=policy,
                name=f"transformer_layer_{i}",
            )
            # One attribute per layer: `tf.train.Checkpoint` does not see into lists.
            setattr(self, f"transformer_layer_{i}", layer)
            self._layer_names.append(f"transformer_layer_{i}")
        self.pooler_layer = keras.layers.Dense(
            self.hidden_size,
            activation="tanh",
            kernel_initializer=init(),
            dtype=policy,
            name="pooler_transform",
        )

    @property
    def transformer_layers(self) -> list[TransformerEncoderBlock]:
        """The Transformer layers, first to last."""
        return [getattr(self, name) for name in self._layer_names]

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
        for layer in self.transformer_layers:
            layer.build([(None, None, hidden), (None, None, None)])
        self.pooler_layer.build((None, hidden))

    def call(self, inputs, training=None):
        word_ids, mask, type_ids = unpack_encoder_inputs(inputs, f"BertEncoder `{self.name}`")
        embeddings, attention_mask = embed(self, word_ids, mask, type_ids, training)
        data = embeddings
        encoder_outputs, attention_scores = [], []
        for i, layer in enumerate(self.transformer_layers):
            output_range = self.output_range if i == self.num_layers - 1 else None
            data = layer([data, attention_mask], output_range=output_range, training=training)
            if self.return_attention_scores:
                data, scores = data
                attention_scores.append(scores)
            encoder_outputs.append(data)

        pooled_output = self.pooler_layer(data[:, 0, :])
        outputs = {
            "sequence_output": data,
            "pooled_output": pooled_output,
            "encoder_outputs": encoder_outputs,
        }
        if self.return_attention_scores:
            outputs["attention_scores"] = attention_scores
        return outputs

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_attention_heads": self.num_attention_heads,
            "max_sequence_length": self.max_sequence_length,
            "type_vocab_size": self.type_vocab_size,
            "inner_dim": self.inner_dim,
            "inner_activation": self.inner_activation,
            "output_dropout": self.output_dropout,
            "attention_dropout": self.attention_dropout,
            "initializer": self.initializer,
            "output_range": self.output_range,
            "embedding_width": self.embedding_width,
            "embedding_layer": (
                keras.layers.serialize(self.word_embeddings)
                if self._custom_embedding_layer
                else None
            ),
            "norm_first": self.norm_first,
            "return_attention_scores": self.return_attention_scores,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BertEncoder:
        """Rebuilds the encoder; a custom `embedding_layer` comes back as a new, unshared copy."""
        config = dict(config)
        if isinstance(config.get("embedding_layer"), dict):
            config["embedding_layer"] = keras.layers.deserialize(config["embedding_layer"])
        return cls(**config)
