"""`BertPretrainer`: BERT's pretraining model (Model Garden's `BertPretrainerV2`).

An encoder, a masked-language-model head (`MaskedLM`, tied to the encoder's word
embeddings) predicting the tokens at `masked_lm_positions`, and sentence-level heads on the
sequence output (by default BERT's next-sentence head). Fine-tuning reuses only the
encoder: a checkpoint of `checkpoint_items` restores the encoder of any downstream model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from garden_nlp.modeling.layers.cls_head import ClassificationHead
from garden_nlp.modeling.layers.masked_lm import MaskedLM
from garden_nlp.modeling.layers.transformer_encoder_block import serialize_activation
from garden_nlp.modeling.networks.bert_encoder import encoder_output_dict, truncated_normal

POSITIONS_KEY = "masked_lm_positions"


@keras.saving.register_keras_serializable(package="garden_nlp")
class BertPretrainer(keras.Model):
    """Masked-LM and sentence-level heads over a Transformer encoder, for pretraining.

    Called on the encoder-inputs dict plus `masked_lm_positions` (int `[batch,
    num_predictions]`), returns a dict with the encoder's outputs (`sequence_output`,
    `pooled_output`, `encoder_outputs`), `mlm_logits` `[batch, num_predictions,
    vocab_size]` (only when `masked_lm_positions` is given) and one entry per
    classification head, by the head's name (`next_sentence`: `[batch, 2]`). Logits are
    float32.

    Example:

        pretrainer = BertPretrainer(BertEncoder(vocab_size=30522, type_vocab_size=2))
        outputs = pretrainer({**encoder_inputs, "masked_lm_positions": positions})
        outputs["mlm_logits"], outputs["next_sentence"]

    Args:
      encoder_network: The encoder; it exposes `get_embedding_table()`.
      mlm_activation: Activation of the masked-LM transform.
      mlm_initializer: Initializer of the heads; None is `TruncatedNormal(stddev=0.02)`.
      classification_heads: Heads applied to the sequence output, each with a unique name
        that is a Python identifier (the head is an attribute and an output of that name).
        None is BERT's next-sentence head, `ClassificationHead(inner_dim=hidden_size,
        num_classes=2, dropout_rate=0.1, name="next_sentence")`; pass `()` for none.
      customized_masked_lm: A masked-LM layer to use instead of `MaskedLM`; it is called
        as `layer(sequence_output, masked_positions=positions)`.
      **kwargs: Passed to `keras.Model` (e.g. `name`, default `"bert"`).

    Attributes:
      encoder: The encoder network (also `encoder_network`).
      masked_lm: The masked-LM head.
      classification_heads: The sentence-level heads; each is also the attribute of its
        name (`pretrainer.next_sentence`), so training checkpoints hold it at
        `model/<name>/`.
    """

    def __init__(
        self,
        encoder_network: keras.layers.Layer,
        mlm_activation: Any = "gelu",
        mlm_initializer: Any = None,
        classification_heads: Sequence[keras.layers.Layer] | None = None,
        customized_masked_lm: keras.layers.Layer | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "bert")
        super().__init__(**kwargs)
        self.mlm_activation = serialize_activation(mlm_activation)
        self.mlm_initializer = truncated_normal(mlm_initializer)
        self.encoder = encoder_network
        if classification_heads is None:
            hidden_size = getattr(encoder_network, "hidden_size", None)
            if not hidden_size:
                raise ValueError(
                    f"BertPretrainer `{self.name}`: the default next-sentence head needs an "
                    "encoder with a known `hidden_size`; pass classification_heads"
                )
            classification_heads = [
                ClassificationHead(
                    inner_dim=hidden_size,
                    num_classes=2,
                    dropout_rate=0.1,
                    initializer=keras.initializers.get(self.mlm_initializer),
                    name="next_sentence",
                )
            ]
        heads = list(classification_heads)
        names = [head.name for head in heads]
        if len(set(names)) != len(names):
            raise ValueError(
                f"BertPretrainer `{self.name}`: classification heads need unique names, got {names}"
            )
        reserved = {
            "masked_lm",
            "masked_lm_positions",
            "mlm_logits",
            "sequence_output",
            "pooled_output",
            "encoder_outputs",
        }
        self._head_names = []
        for head in heads:
            name = head.name
            if not name.isidentifier() or name in reserved or hasattr(self, name):
                raise ValueError(
                    f"BertPretrainer `{self.name}`: a classification head is an attribute (and "
                    f"an output) of its name, and {name!r} is not usable: it clashes with the "
                    "model's own attributes or outputs, or is not a Python identifier"
                )
            # One attribute per head, by name: training checkpoints hold it at
            # `model/<name>/...`, and `tf.train.Checkpoint` does not see into lists.
            setattr(self, name, head)
            self._head_names.append(name)
        self._custom_masked_lm = customized_masked_lm is not None
        self.masked_lm = customized_masked_lm or MaskedLM(
            embedding_table=encoder_network.get_embedding_table(),
            activation=self.mlm_activation,
            initializer=keras.initializers.get(self.mlm_initializer),
            name="masked_lm",
        )

    @property
    def encoder_network(self) -> keras.layers.Layer:
        """The encoder (Model Garden's name for it)."""
        return self.encoder

    @property
    def classification_heads(self) -> list[keras.layers.Layer]:
        """The sentence-level heads, in order."""
        return [getattr(self, name) for name in self._head_names]

    def build(self, input_shape):
        # Trace one symbolic call with masked positions, so that the masked-LM head is
        # built (and checkpointed) even when the first call has none.
        shapes = dict(input_shape)
        batch_size = next(iter(shapes.values()))[0]
        shapes.setdefault(POSITIONS_KEY, (batch_size, None))
        inputs = {key: keras.KerasTensor(shape, dtype="int32") for key, shape in shapes.items()}
        self.compute_output_spec(inputs)

    def call(self, inputs, training=None):
        encoder_inputs = {key: value for key, value in inputs.items() if key != POSITIONS_KEY}
        outputs = encoder_output_dict(
            self.encoder(encoder_inputs, training=training), f"BertPretrainer `{self.name}`"
        )
        sequence_output = outputs["sequence_output"]
        if POSITIONS_KEY in inputs:
            mlm_logits = self.masked_lm(sequence_output, masked_positions=inputs[POSITIONS_KEY])
            outputs["mlm_logits"] = tf.cast(mlm_logits, tf.float32)
        for head in self.classification_heads:
            head_outputs = head(sequence_output, training=training)
            if isinstance(head_outputs, dict):
                outputs.update({k: tf.cast(v, tf.float32) for k, v in head_outputs.items()})
            else:
                outputs[head.name] = tf.cast(head_outputs, tf.float32)
        return outputs

    @property
    def checkpoint_items(self) -> dict[str, Any]:
        """What a checkpoint of this model holds: `encoder`, `masked_lm` and each head by
        name."""
        items = {"encoder": self.encoder, "masked_lm": self.masked_lm}
        items.update({head.name: head for head in self.classification_heads})
        return items

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "encoder_network": keras.layers.serialize(self.encoder),
            "mlm_activation": self.mlm_activation,
            "mlm_initializer": self.mlm_initializer,
            "classification_heads": [
                keras.layers.serialize(head) for head in self.classification_heads
            ],
            "customized_masked_lm": (
                keras.layers.serialize(self.masked_lm) if self._custom_masked_lm else None
            ),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BertPretrainer:
        """Rebuilds the model; a `MaskedLM` is re-tied to the rebuilt encoder's embeddings."""
        config = dict(config)
        encoder = keras.layers.deserialize(config.pop("encoder_network"))
        config["classification_heads"] = [
            keras.layers.deserialize(head) for head in config.get("classification_heads") or []
        ]
        masked_lm = config.get("customized_masked_lm")
        if masked_lm is not None:
            if masked_lm.get("class_name") == "MaskedLM":
                settings = dict(masked_lm["config"])
                config["customized_masked_lm"] = MaskedLM(
                    embedding_table=encoder.get_embedding_table(), **settings
                )
            else:
                config["customized_masked_lm"] = keras.layers.deserialize(masked_lm)
        return cls(encoder, **config)
