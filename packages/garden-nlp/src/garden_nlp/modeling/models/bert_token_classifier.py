"""`BertTokenClassifier`: per-token classification (tagging, NER) on a BERT-style encoder.

Each token of the encoder's sequence output goes through dropout and a linear layer to
class logits.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_nlp.modeling.networks.bert_encoder import encoder_output_dict, truncated_normal

_OUTPUTS = ("logits", "predictions")


@keras.saving.register_keras_serializable(package="garden_nlp")
class BertTokenClassifier(keras.Model):
    """Token classifier on top of a Transformer encoder.

    Called on the encoder-inputs dict, returns float32 logits `[batch, seq, num_classes]`
    (log-probabilities with `output="predictions"`), or with `output_encoder_outputs` the
    dict `{"logits": ..., "encoder_outputs": sequence_output}`.

    Example:

        model = BertTokenClassifier(BertEncoder(vocab_size=30522), num_classes=9)

    Args:
      network: The encoder; it returns a dict with `sequence_output`.
      num_classes: Number of tag classes.
      initializer: Initializer of the classifier; None is `TruncatedNormal(stddev=0.02)`.
      output: `"logits"` or `"predictions"` (log-softmax over the classes).
      dropout_rate: Dropout rate of the sequence output before the classifier.
      output_encoder_outputs: Also return the encoder's sequence output.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Attributes:
      encoder: The encoder network.
      classifier: The `keras.layers.Dense(num_classes)` applied to every token.
    """

    def __init__(
        self,
        network: keras.layers.Layer,
        num_classes: int,
        initializer: Any = None,
        output: str = "logits",
        dropout_rate: float = 0.1,
        output_encoder_outputs: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if output not in _OUTPUTS:
            raise ValueError(
                f"BertTokenClassifier `{self.name}`: output must be one of {_OUTPUTS}, got "
                f"{output!r}"
            )
        if int(num_classes) < 1:
            raise ValueError(
                f"BertTokenClassifier `{self.name}` needs num_classes >= 1, got {num_classes}"
            )
        self.num_classes = int(num_classes)
        self.initializer = truncated_normal(initializer)
        self.output_type = output
        self.dropout_rate = float(dropout_rate)
        self.output_encoder_outputs = bool(output_encoder_outputs)
        self.encoder = network
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")
        self.classifier = keras.layers.Dense(
            self.num_classes,
            kernel_initializer=keras.initializers.get(self.initializer),
            name="predictions_transform_logits",
        )

    def call(self, inputs, training=None):
        outputs = encoder_output_dict(
            self.encoder(inputs, training=training), f"BertTokenClassifier `{self.name}`"
        )
        sequence_output = outputs["sequence_output"]
        features = self.dropout(sequence_output, training=training)
        logits = tf.cast(self.classifier(features), tf.float32)
        if self.output_type == "predictions":
            logits = tf.nn.log_softmax(logits, axis=-1)
        if self.output_encoder_outputs:
            return {"logits": logits, "encoder_outputs": sequence_output}
        return logits

    @property
    def checkpoint_items(self) -> dict[str, Any]:
        """What a checkpoint of this model holds: the `encoder`."""
        return {"encoder": self.encoder}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "network": keras.layers.serialize(self.encoder),
            "num_classes": self.num_classes,
            "initializer": self.initializer,
            "output": self.output_type,
            "dropout_rate": self.dropout_rate,
            "output_encoder_outputs": self.output_encoder_outputs,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BertTokenClassifier:
        config = dict(config)
        config["network"] = keras.layers.deserialize(config["network"])
        return cls(**config)
