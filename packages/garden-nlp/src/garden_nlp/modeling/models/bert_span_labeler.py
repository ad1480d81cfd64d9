"""`BertSpanLabeler`: extractive question answering (SQuAD) on a BERT-style encoder.

The encoder reads the question and the passage together; a `SpanLabeling` head scores each
token as the start and as the end of the answer.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_nlp.modeling.networks.bert_encoder import encoder_output_dict, truncated_normal
from garden_nlp.modeling.networks.span_labeling import SpanLabeling


@keras.saving.register_keras_serializable(package="garden_nlp")
class BertSpanLabeler(keras.Model):
    """Span labeler (start and end of an answer) on top of a Transformer encoder.

    Called on the encoder-inputs dict, returns a dict of float32 `start_logits` and
    `end_logits`, each `[batch, seq]`.

    Example:

        model = BertSpanLabeler(BertEncoder(vocab_size=30522, type_vocab_size=2))
        outputs = model(inputs)  # {"start_logits": ..., "end_logits": ...}

    Args:
      network: The encoder; it returns a dict with `sequence_output`.
      initializer: Initializer of the head; None is `TruncatedNormal(stddev=0.02)`.
      output: `"logits"` or `"predictions"` (log-softmax over the sequence).
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Attributes:
      encoder: The encoder network.
      span_labeling: The `SpanLabeling` head.
    """

    def __init__(
        self,
        network: keras.layers.Layer,
        initializer: Any = None,
        output: str = "logits",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.initializer = truncated_normal(initializer)
        self.output_type = output
        self.encoder = network
        self.span_labeling = SpanLabeling(
            input_width=getattr(network, "hidden_size", None),
            initializer=keras.initializers.get(self.initializer),
            output=output,
            name="span_labeling",
        )

    def call(self, inputs, training=None):
        outputs = encoder_output_dict(
            self.encoder(inputs, training=training), f"BertSpanLabeler `{self.name}`"
        )
        start_logits, end_logits = self.span_labeling(outputs["sequence_output"])
        return {
            "start_logits": tf.cast(start_logits, tf.float32),
            "end_logits": tf.cast(end_logits, tf.float32),
        }

    @property
    def checkpoint_items(self) -> dict[str, Any]:
        """What a checkpoint of this model holds: the `encoder`."""
        return {"encoder": self.encoder}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "network": keras.layers.serialize(self.encoder),
            "initializer": self.initializer,
            "output": self.output_type,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BertSpanLabeler:
        config = dict(config)
        config["network"] = keras.layers.deserialize(config["network"])
        return cls(**config)
