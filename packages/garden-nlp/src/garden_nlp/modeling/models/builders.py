"""The task models' builders, registered in `garden.models` (garden-nlp's `pyproject.toml`).

Each NLP task builds its model through the registry,

    plugins.build_named("models", "bert_classifier", task_config.model, "task.model")

which calls the builder with the fields of the task's model config as keywords. The
`encoder` field (an `EncoderConfig` one-of) is built through the `garden.encoders` registry,
so any registered encoder, built-in or plugin, serves every task. A research package can
register its own model builders the same way, for its own tasks.

| name                    | task                | model                 |
|-------------------------|---------------------|-----------------------|
| `bert_classifier`       | sentence_prediction | `BertClassifier`      |
| `bert_pretrainer`       | masked_lm           | `BertPretrainer`      |
| `bert_span_labeler`     | question_answering  | `BertSpanLabeler`     |
| `bert_token_classifier` | tagging             | `BertTokenClassifier` |

The tagging task also passes `num_classes`, the number of its `class_names` (its model
config has no such field, as in Model Garden).

Heads are initialized as in Model Garden: truncated normal with the encoder's
`initializer_range`. A model whose heads do not read the encoder's pooled output leaves the
encoder's pooler out of training (it stays in checkpoints). The builders return the model
unbuilt; the task creates its variables.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from garden_nlp.configs.bert import ClsHeadConfig
from garden_nlp.configs.encoders import EncoderConfig
from garden_nlp.modeling import encoders
from garden_nlp.modeling.layers.cls_head import ClassificationHead
from garden_nlp.modeling.models.bert_classifier import BertClassifier
from garden_nlp.modeling.models.bert_pretrainer import BertPretrainer
from garden_nlp.modeling.models.bert_span_labeler import BertSpanLabeler
from garden_nlp.modeling.models.bert_token_classifier import BertTokenClassifier

# Where a task's model config sits; the builders name their encoder's path from it.
ENCODER_PATH = "task.model.encoder"


def _encoder_initializer(encoder: EncoderConfig) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=encoders.initializer_range(encoder))


def _freeze_unused_pooler(encoder: keras.layers.Layer) -> None:
    """Takes the encoder's pooler out of training (it would get no gradient)."""
    pooler = getattr(encoder, "pooler_layer", None)
    if pooler is not None:
        pooler.trainable = False


def build_bert_classifier(
    encoder: EncoderConfig,
    num_classes: int,
    use_encoder_pooler: bool = False,
    dropout_rate: float = 0.1,
) -> BertClassifier:
    """The sentence prediction model (`task.model` of `SentencePredictionConfig`).

    Args:
      encoder: The encoder config.
      num_classes: Number of classes; 1 for regression.
      use_encoder_pooler: Classify the encoder's pooled output; False pools `[CLS]` with a
        fresh dense layer and leaves the encoder's pooler out of training.
      dropout_rate: Dropout of the head.
    """
    network = encoders.build_encoder(encoder, where=ENCODER_PATH)
    model = BertClassifier(
        network=network,
        num_classes=num_classes,
        initializer=_encoder_initializer(encoder),
        dropout_rate=dropout_rate,
        use_encoder_pooler=use_encoder_pooler,
    )
    if not use_encoder_pooler:
        _freeze_unused_pooler(network)
    return model


def build_bert_pretrainer(
    encoder: EncoderConfig,
    cls_heads: Sequence[ClsHeadConfig] = (),
    mlm_activation: str = "gelu",
    mlm_initializer_range: float = 0.02,
) -> BertPretrainer:
    """The masked-LM pretraining model (`task.model` of `MaskedLMConfig`).

    Args:
      encoder: The encoder config.
      cls_heads: Sentence-level heads over the sequence output (e.g. `next_sentence`), each
        a `ClassificationHead` named by its config.
      mlm_activation: Activation of the masked-LM transform.
      mlm_initializer_range: Standard deviation of the masked-LM head's initializer.
    """
    network = encoders.build_encoder(encoder, where=ENCODER_PATH)
    heads = [
        ClassificationHead(
            inner_dim=head.inner_dim,
            num_classes=head.num_classes,
            cls_token_idx=head.cls_token_idx,
            activation=head.activation,
            dropout_rate=head.dropout_rate,
            initializer=_encoder_initializer(encoder),
            name=head.name,
        )
        for head in cls_heads
    ]
    model = BertPretrainer(
        encoder_network=network,
        mlm_activation=mlm_activation,
        mlm_initializer=keras.initializers.TruncatedNormal(stddev=mlm_initializer_range),
        classification_heads=heads,
    )
    _freeze_unused_pooler(network)  # The heads pool their own token.
    return model


def build_bert_span_labeler(encoder: EncoderConfig) -> BertSpanLabeler:
    """The question answering model (`task.model` of `QuestionAnsweringConfig`)."""
    network = encoders.build_encoder(encoder, where=ENCODER_PATH)
    model = BertSpanLabeler(network=network, initializer=_encoder_initializer(encoder))
    _freeze_unused_pooler(network)
    return model


def build_bert_token_classifier(
    encoder: EncoderConfig,
    num_classes: int,
    head_dropout: float = 0.1,
    head_initializer_range: float = 0.02,
) -> BertTokenClassifier:
    """The tagging model (`task.model` of `TaggingConfig`; the task adds `num_classes`).

    Args:
      encoder: The encoder config.
      num_classes: Number of tag classes.
      head_dropout: Dropout before the classification layer.
      head_initializer_range: Standard deviation of its initializer.
    """
    network = encoders.build_encoder(encoder, where=ENCODER_PATH)
    model = BertTokenClassifier(
        network=network,
        num_classes=num_classes,
        initializer=keras.initializers.TruncatedNormal(stddev=head_initializer_range),
        dropout_rate=head_dropout,
    )
    _freeze_unused_pooler(network)
    return model
