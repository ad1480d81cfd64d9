"""Sentence(-pair) classification and regression configs (Model Garden's `sentence_prediction`).

The task (`garden_nlp.tasks.sentence_prediction`) fine-tunes a `BertClassifier` on
`SentencePredictionDataConfig` (TFRecords of token ids) or `SentencePredictionTextDataConfig`
(raw text tokenized in the input pipeline). `model.num_classes: 1` is regression (mean
squared error) and reports the mean squared error; `metric_type` adds a whole-dataset metric
computed after evaluation: `matthews_corrcoef` (CoLA), `pearson_spearman_corr` (STS-B) or
`f1` (binary F1 of the positive class, MRPC/QQP).
"""

from __future__ import annotations

import dataclasses

from garden_core.config import Config, DataConfig, TaskConfig
from garden_nlp.configs import data
from garden_nlp.configs.encoders import EncoderConfig

METRIC_TYPES = ("accuracy", "f1", "matthews_corrcoef", "pearson_spearman_corr")


@dataclasses.dataclass
class ModelConfig(Config):
    """A classifier or regressor over an encoder.

    Attributes:
      num_classes: Number of classes; 1 for regression.
      use_encoder_pooler: Classify the encoder's pooled output (its own pooler); False
        puts a fresh dense layer over the `[CLS]` token (Model Garden's default).
      dropout_rate: Dropout before the classification layer.
      encoder: The encoder.
    """

    num_classes: int = 0
    use_encoder_pooler: bool = False
    dropout_rate: float = 0.1
    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)

    restrictions = ("dropout_rate >= 0", "dropout_rate < 1")


@dataclasses.dataclass
class SentencePredictionConfig(TaskConfig):
    """The sentence prediction task.

    Attributes:
      init_checkpoint: A pretrained encoder checkpoint (prefix or directory) written with
        the key `encoder` (a pretraining run's checkpoint, or a converted BERT checkpoint).
      init_cls_pooler: Also initialize the classifier's `[CLS]` dense layer from a
        pretraining checkpoint's `next_sentence` head (with `use_encoder_pooler: false`).
      metric_type: `accuracy`, `f1`, `matthews_corrcoef` or `pearson_spearman_corr`.
    """

    init_checkpoint: str = ""
    init_cls_pooler: bool = False
    metric_type: str = "accuracy"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train_data: DataConfig = dataclasses.field(default_factory=data.SentencePredictionDataConfig)
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: data.SentencePredictionDataConfig(
            is_training=False, drop_remainder=False
        )
    )

    unsupported_fields = {
        **TaskConfig.unsupported_fields,
        "hub_module_url": ("", "TF Hub modules are not loaded; convert the checkpoint instead"),
    }
