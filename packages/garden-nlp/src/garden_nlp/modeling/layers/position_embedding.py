"""`PositionEmbedding`: BERT's learned absolute position embedding.

The layer owns a `[max_length, width]` table and returns its first `seq_length` rows,
broadcast to the input's shape, so that `inputs + position_embedding(inputs)` adds the
position vector of each token. Inputs shorter than `max_length` use the leading rows; inputs
longer than `max_length` are an error.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="garden_nlp")
class PositionEmbedding(keras.layers.Layer):
    """Learned position embeddings for sequences of up to `max_length` tokens.

    Called on a tensor `[batch, seq_length, width]` (the token embeddings), returns the
    position embeddings of the same shape (the first `seq_length` rows of the table,
    broadcast over the batch).

    Example:

        position_embedding = PositionEmbedding(max_length=512)
        embeddings = word_embeddings + position_embedding(word_embeddings)

    Args:
      max_length: The longest sequence the table covers (its number of rows).
      initializer: Initializer of the table.
      seq_axis: The sequence axis of the inputs.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Attributes:
      embeddings: The table, a variable of shape `[max_length, width]` (after the layer is
        built).
    """

    def __init__(
        self,
        max_length: int,
        initializer: str | keras.initializers.Initializer | dict = "glorot_uniform",
        seq_axis: int = 1,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if max_length is None or int(max_length) < 1:
            raise ValueError(
                f"PositionEmbedding `{self.name}` needs max_length >= 1, got {max_length}"
            )
        self.max_length = int(max_length)
        self.initializer = keras.initializers.serialize(keras.initializers.get(initializer))
        self.seq_axis = int(seq_axis)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        width = input_shape[-1]
        if width is None:
            raise ValueError(
                f"PositionEmbedding `{self.name}` needs a known last dimension, got shape "
                f"{input_shape}"
            )
        self._check_length(input_shape[self.seq_axis])
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_length, int(width)),
            initializer=keras.initializers.get(self.initializer),
        )

    def _check_length(self, seq_length: int | None) -> None:
        if seq_length is not None and seq_length > self.max_length:
            raise ValueError(
                f"PositionEmbedding `{self.name}`: the input has {seq_length} positions, more "
                f"than max_length={self.max_length}"
            )

    def call(self, inputs):
        shape = tf.shape(inputs)
        rank = inputs.shape.rank
        seq_axis = self.seq_axis % rank
        static_length = inputs.shape[seq_axis]
        self._check_length(static_length)
        seq_length = shape[seq_axis]
        table = self.embeddings
        if static_length is None:
            check = tf.debugging.assert_less_equal(
                seq_length,
                self.max_length,
                message=f"PositionEmbedding `{self.name}`: the input has more positions than "
                f"max_length={self.max_length}",
            )
            with tf.control_dependencies([check]):
                table = tf.identity(table)
        rows = table[:seq_length]
        new_shape = [1] * rank
        new_shape[seq_axis] = seq_length
        new_shape[-1] = self.embeddings.shape[-1]
        rows = tf.reshape(rows, new_shape)
        return tf.broadcast_to(rows, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_length": self.max_length,
            "initializer": self.initializer,
            "seq_axis": self.seq_axis,
        }
