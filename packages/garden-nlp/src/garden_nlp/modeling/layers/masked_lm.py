"""`MaskedLM`: BERT's masked-language-model head.

For the positions a pretraining example masked, the head predicts the original tokens:
`logits = LayerNorm(act(Dense(x))) @ embedding_table^T + bias`. The output projection is
the encoder's own word-embedding table (tied weights, as in BERT), so the head owns only
the transform (`dense`, `layer_norm`) and the per-token `bias`.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_nlp.modeling.layers.transformer_encoder_block import serialize_activation

_OUTPUTS = ("logits", "predictions")


@keras.saving.register_keras_serializable(package="garden_nlp")
class MaskedLM(keras.layers.Layer):
    """Predicts the tokens at masked positions from an encoder's sequence output.

    Call it as `masked_lm(sequence_output, masked_positions=positions)` with the sequence
    output `[batch, seq, hidden]` and int positions `[batch, num_predictions]`; it returns
    `[batch, num_predictions, vocab_size]` logits (or log-probabilities with
    `output="predictions"`).

    Example:

        masked_lm = MaskedLM(embedding_table=encoder.get_embedding_table())
        logits = masked_lm(outputs["sequence_output"], masked_positions=positions)

    Args:
      embedding_table: The `[vocab_size, embedding_width]` word-embedding variable of the
        encoder; the head's output projection (shared, not copied).
      activation: Activation of the transform layer (BERT: `"gelu"`).
      initializer: Initializer of the transform kernel.
      output: `"logits"` or `"predictions"` (log-softmax over the vocabulary).
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).

    Attributes (after the head is built):
      dense: The transform, `keras.layers.Dense(embedding_width, activation)`.
      layer_norm: Layer normalization of the transform (epsilon 1e-12).
      bias: The output bias, a variable of shape `[vocab_size]`.
    """

    def __init__(
        self,
        embedding_table: Any,
        activation: Any = None,
        initializer: Any = "glorot_uniform",
        output: str = "logits",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if output not in _OUTPUTS:
            raise ValueError(
                f"MaskedLM `{self.name}`: output must be one of {_OUTPUTS}, got {output!r}"
            )
        if embedding_table is None or len(embedding_table.shape) != 2:
            raise ValueError(
                f"MaskedLM `{self.name}` needs the [vocab_size, width] embedding table of its "
                f"encoder, got {embedding_table!r}"
            )
        self.embedding_table = embedding_table
        self.vocab_size, self.embedding_width = (int(d) for d in embedding_table.shape)
        self.activation = serialize_activation(activation)
        self.initializer = keras.initializers.serialize(keras.initializers.get(initializer))
        self.output_type = output

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.dense = keras.layers.Dense(
            self.embedding_width,
            activation=self.activation,
            kernel_initializer=keras.initializers.get(self.initializer),
            dtype=self.dtype_policy,
            name="transform_dense",
        )
        self.dense.build((None, input_shape[-1]))
        self.layer_norm = keras.layers.LayerNormalization(
            axis=-1, epsilon=1e-12, dtype=self.dtype_policy, name="transform_layer_norm"
        )
        self.layer_norm.build((None, self.embedding_width))
        self.bias = self.add_weight(
            name="output_bias", shape=(self.vocab_size,), initializer="zeros"
        )

    def call(self, sequence_data, masked_positions):
        """Returns `[batch, num_predictions, vocab_size]` logits or log-probabilities."""
        masked_positions = tf.convert_to_tensor(masked_positions)
        if not masked_positions.dtype.is_integer:  # E.g. Keras' float default signatures.
            masked_positions = tf.cast(masked_positions, tf.int32)
        selected = tf.gather(sequence_data, masked_positions, batch_dims=1)  # [B, P, H]
        batch_size = tf.shape(masked_positions)[0]
        num_predictions = tf.shape(masked_positions)[1]
        flat = tf.reshape(selected, [-1, selected.shape[-1]])
        flat = self.layer_norm(self.dense(flat))
        table = tf.cast(self.embedding_table, flat.dtype)
        logits = tf.matmul(flat, table, transpose_b=True)
        logits = tf.nn.bias_add(logits, tf.cast(self.bias, logits.dtype))
        logits = tf.reshape(logits, [batch_size, num_predictions, self.vocab_size])
        if self.output_type == "predictions":
            return tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        return logits

    def compute_output_shape(self, input_shape, masked_positions_shape):
        return (input_shape[0], masked_positions_shape[1], self.vocab_size)

    def get_config(self) -> dict[str, Any]:
        """The head's settings; its embedding table comes from the model that owns it."""
        return {
            **super().get_config(),
            "activation": self.activation,
            "initializer": self.initializer,
            "output": self.output_type,
        }
