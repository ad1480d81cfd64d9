"""Building the Garden models a converted BERT checkpoint fills, as the tasks build them.

The second stage of the BERT checkpoint converters (after `bert_checkpoint_mapping`):
the encoder is built from its `EncoderConfig` through the `garden.encoders` registry, and
the pretrainer (encoder, masked-LM head and a `next_sentence` head) by the `bert_pretrainer`
builder of the `garden.models` registry, the model of the masked-LM task; both with their
variables created, ready for `assign_weights`.
"""

from __future__ import annotations

from typing import Any

from garden_nlp.configs.encoders import BertEncoderConfig, EncoderConfig


def dummy_inputs(batch: int = 1, seq_length: int = 2) -> dict[str, Any]:
    """Encoder inputs of zeros (with a full mask), for building variables."""
    import tensorflow as tf

    zeros = tf.zeros((batch, seq_length), tf.int32)
    return {"input_word_ids": zeros, "input_mask": tf.ones_like(zeros), "input_type_ids": zeros}


def build_bert_encoder(config: BertEncoderConfig) -> Any:
    """Builds the Garden BERT encoder of `config`, as a task builds it, with its variables."""
    from garden_nlp.modeling.encoders import build_encoder

    encoder = build_encoder(EncoderConfig(type="bert", bert=config))
    encoder(dummy_inputs(), training=False)
    return encoder


def build_bert_pretrainer(config: BertEncoderConfig) -> Any:
    """Builds the `BertPretrainer` of `config` as the masked-LM task builds it, with its
    variables: the `bert_pretrainer` model of the `garden.models` registry.

    The masked-LM head uses the encoder's activation (as original BERT's
    `cls/predictions/transform`), and the `next_sentence` head is the original pooler
    (`dense`, tanh) followed by `cls/seq_relationship` (`out_proj`). The encoder is
    `pretrainer.encoder`.
    """
    import tensorflow as tf

    from garden_core import plugins
    from garden_nlp.configs.bert import ClsHeadConfig

    next_sentence = ClsHeadConfig(
        inner_dim=config.hidden_size,
        num_classes=2,
        activation="tanh",
        dropout_rate=config.dropout_rate,
        name="next_sentence",
    )
    settings = {
        "encoder": EncoderConfig(type="bert", bert=config),
        "cls_heads": [next_sentence],
        "mlm_activation": config.hidden_activation,
        "mlm_initializer_range": config.initializer_range,
    }
    pretrainer = plugins.build_named("models", "bert_pretrainer", settings, "task.model")
    inputs = dummy_inputs()
    inputs["masked_lm_positions"] = tf.zeros((1, 1), tf.int32)
    pretrainer(inputs, training=False)
    return pretrainer
