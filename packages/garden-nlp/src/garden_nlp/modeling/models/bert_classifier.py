"""`BertClassifier`: sentence(-pair) classification or regression on a BERT-style encoder.

The model runs the encoder and classifies its sentence representation: by default the
encoder's pooled output (the tanh pooler over [CLS]) through dropout and a linear layer, as
in BERT's fine-tuning; with `use_encoder_pooler=False` a `ClassificationHead` pools the
[CLS] token of the sequence output itself. `num_classes=1` makes it a regressor (STS-B).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_nlp.modeling.layers.cls_head import ClassificationHead
from garden_nlp.modeling.networks.bert_encoder import encoder_output_dict, truncated_normal


@keras.saving.register_keras_serializable(package="garden_nlp")
class BertClassifier(keras.Model):
    """Classifier (or regressor) on top of a Transformer encoder.

    Called on the encoder-inputs dict, returns float32 logits `[batch, num_classes]`.

    Example:

        encoder = BertEncoder(vocab_size=30522, type_vocab_size=2)
        model = BertClassifier(encoder, num_classes=3)
        logits = model({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})

    Args:
      network: The encoder (e.g. `BertEncoder`); it returns a dict with `sequence_output`
        and `pooled_output` (or Model Garden's `[sequence_output, pooled_output]`).
      num_classes: Number of classes (1 for regression).
      initializer: Initializer of the head; None is `TruncatedNormal(stddev=0.02)`.
      dropout_rate: Dropout rate of the head. With the encoder's pooler, dropout is applied
        to the pooled output and again inside the head, as in Model Garden.
      use_encoder_pooler: Classify the encoder's `pooled_output` (BERT). False pools the
        first token of `sequence_output` with a `ClassificationHead` of the encoder's
        width.
      head_name: Name of the head layer.
      cls_head: A head layer to use instead; it receives the pooled output (with
        `use_encoder_pooler`) or the sequence output, and returns the logits.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Attributes:
      encoder: The encoder network.
      classifier: The head.
    """

    def __init__(
        self,
        network: keras.layers.Layer,
        num_classes: int,
        initializer: Any = None,
        dropout_rate: float = 0.1,
        use_encoder_pooler: bool = True,
        head_name: str = "sentence_prediction",
        cls_head: keras.layers.Layer | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.initializer = truncated_normal(initializer)
        self.dropout_rate = float(dropout_rate)
        self.use_encoder_pooler = bool(use_encoder_pooler)
        self.head_name = head_name
        self._custom_head = cls_head is not None
        self.encoder = network
        self.pooler_dropout = None
        if self.use_encoder_pooler:
            self.pooler_dropout = keras.layers.Dropout(self.dropout_rate, name="pooler_dropout")
        if cls_head is None:
            inner_dim = 0
            if not self.use_encoder_pooler:
                inner_dim = getattr(network, "hidden_size", None)
                if not inner_dim:
                    raise ValueError(
                        f"BertClassifier `{self.name}` with use_encoder_pooler=False needs an "
                        "encoder with a known `hidden_size`, or a `cls_head`"
                    )
            cls_head = ClassificationHead(
                inner_dim=inner_dim,
                num_classes=self.num_classes,
                initializer=keras.initializers.get(self.initializer),
                dropout_rate=self.dropout_rate,
                name=head_name,
            )
        self.classifier = cls_head

    def call(self, inputs, training=None):
        outputs = encoder_output_dict(
            self.encoder(inputs, training=training), f"BertClassifier `{self.name}`"
        )
        if self.use_encoder_pooler:
            features = self.pooler_dropout(outputs["pooled_output"], training=training)
        else:
            features = outputs["sequence_output"]
        logits = self.classifier(features, training=training)
        return tf.cast(logits, tf.float32)

    @property
    def checkpoint_items(self) -> dict[str, Any]:
        """What a checkpoint of this model holds: `encoder`, and the head by its name."""
        return {"encoder": self.encoder, self.classifier.name: self.classifier}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "network": keras.layers.serialize(self.encoder),
            "num_classes": self.num_classes,
            "initializer": self.initializer,
            "dropout_rate": self.dropout_rate,
            "use_encoder_pooler": self.use_encoder_pooler,
            "head_name": self.head_name,
            "cls_head": keras.layers.serialize(self.classifier) if self._custom_head else None,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BertClassifier:
        config = dict(config)
        config["network"] = keras.layers.deserialize(config["network"])
        if config.get("cls_head") is not None:
            config["cls_head"] = keras.layers.deserialize(config["cls_head"])
        return cls(**config)
