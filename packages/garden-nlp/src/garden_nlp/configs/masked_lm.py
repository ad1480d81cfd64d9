"""Masked language model pretraining configs (Model Garden's `masked_lm`).

The task (`garden_nlp.tasks.masked_lm`) trains a `BertPretrainer` on masked-LM and, when a
`next_sentence` head is configured (the default), next-sentence prediction; data comes from
pretraining TFRecords (`BertPretrainDataConfig`) or from raw text masked on the fly
(`BertPretrainTextDataConfig`).
"""

from __future__ import annotations

import dataclasses

from garden_core.config import DataConfig, TaskConfig
from garden_nlp.configs import bert, data


def _next_sentence_head() -> list[bert.ClsHeadConfig]:
    return [
        bert.ClsHeadConfig(inner_dim=768, num_classes=2, dropout_rate=0.1, name="next_sentence")
    ]


@dataclasses.dataclass
class MaskedLMConfig(TaskConfig):
    """The masked-LM pretraining task.

    Attributes:
      init_checkpoint: A checkpoint of the pretrainer to start from, e.g. to continue
        pretraining: a converted BERT checkpoint with its pretraining heads
        (`--include_pretraining_heads`), or a Garden training run's checkpoint.
      model: The pretrainer (encoder, masked-LM head, classification heads).
      scale_loss: Divide the loss by the number of replicas' steps; kept for Model Garden
        compatibility (the trainer already averages per replica).
    """

    init_checkpoint: str = ""
    model: bert.PretrainerConfig = dataclasses.field(
        default_factory=lambda: bert.PretrainerConfig(cls_heads=_next_sentence_head())
    )
    scale_loss: bool = False
    train_data: DataConfig = dataclasses.field(default_factory=data.BertPretrainDataConfig)
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: data.BertPretrainDataConfig(is_training=False)
    )
