"""`SpanLabeling`: the span head of extractive question answering (SQuAD).

One dense layer maps each token of the encoder's sequence output to two scores: how likely
the answer starts there and how likely it ends there. Training compares them, over the
sequence, with the true start and end positions.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_nlp.modeling.layers.transformer_encoder_block import serialize_activation

_OUTPUTS = ("logits", "predictions")


@keras.saving.register_keras_serializable(package="garden_nlp")
class SpanLabeling(keras.layers.Layer):
    """Scores every token as the start and the end of an answer span.

    Called on the sequence output `[batch, seq, hidden]`, returns the tuple
    `(start_logits, end_logits)`, each `[batch, seq]` (log-softmax over the sequence with
    `output="predictions"`).

    Args:
      input_width: The hidden width the head expects, checked against its input; None
        accepts any width.
      activation: Activation of the dense layer (None: linear logits).
      initializer: Initializer of the dense kernel.
      output: `"logits"` or `"predictions"`.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).

    Attributes:
      dense: The `keras.layers.Dense(2)` giving the start and end scores.
    """

    def __init__(
        self,
        input_width: int | None = None,
        activation: Any = None,
        initializer: Any = "glorot_uniform",
        output: str = "logits",
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "span_labeling")
        super().__init__(**kwargs)
        if output not in _OUTPUTS:
            raise ValueError(
                f"SpanLabeling `{self.name}`: output must be one of {_OUTPUTS}, got {output!r}"
            )
        self.input_width = None if input_width is None else int(input_width)
        self.activation = serialize_activation(activation)
        self.initializer = keras.initializers.serialize(keras.initializers.get(initializer))
        self.output_type = output
        self.dense = keras.layers.Dense(
            2,
            activation=self.activation,
            kernel_initializer=keras.initializers.get(self.initializer),
            dtype=self.dtype_policy,
            name="predictions_transform_logits",
        )

    def build(self, input_shape):
        width = input_shape[-1]
        if self.input_width is not None and width is not None and width != self.input_width:
            raise ValueError(
                f"SpanLabeling `{self.name}` was made for input_width={self.input_width}, got "
                f"inputs of shape {tuple(input_shape)}"
            )
        self.dense.build((None, None, width))

    def call(self, sequence_data):
        logits = self.dense(sequence_data)  # [batch, seq, 2]
        start_logits, end_logits = tf.unstack(logits, num=2, axis=-1)
        if self.output_type == "predictions":
            start_logits = tf.nn.log_softmax(tf.cast(start_logits, tf.float32), axis=-1)
            end_logits = tf.nn.log_softmax(tf.cast(end_logits, tf.float32), axis=-1)
        return start_logits, end_logits

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[:-1])
        return shape, shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_width": self.input_width,
            "activation": self.activation,
            "initializer": self.initializer,
            "output": self.output_type,
        }
