"""Extractive question answering configs (Model Garden's `question_answering`, SQuAD).

The task (`garden_nlp.tasks.question_answering`) fine-tunes a `BertSpanLabeler` to predict
answer start and end tokens. Evaluation turns the logits back into answer text
(`n_best_size`, `max_answer_length`, and for SQuAD 2.0 `null_score_diff_threshold`) and
scores it against the gold answers with exact match and F1.
"""

from __future__ import annotations

import dataclasses

from garden_core.config import Config, DataConfig, TaskConfig
from garden_nlp.configs import data
from garden_nlp.configs.encoders import EncoderConfig


@dataclasses.dataclass
class ModelConfig(Config):
    """A span labeler over an encoder."""

    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)


@dataclasses.dataclass
class QuestionAnsweringConfig(TaskConfig):
    """The question answering task.

    Attributes:
      init_checkpoint: A pretrained encoder checkpoint (key `encoder`).
      n_best_size: Candidate start and end positions considered per feature.
      max_answer_length: Longest answer, in tokens.
      null_score_diff_threshold: SQuAD 2.0: predict "no answer" when the null score beats
        the best span's score by more than this.
    """

    init_checkpoint: str = ""
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train_data: DataConfig = dataclasses.field(default_factory=data.QADataConfig)
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: data.QADataConfig(is_training=False)
    )

    restrictions = ("n_best_size > 0", "max_answer_length > 0")
    unsupported_fields = {
        **TaskConfig.unsupported_fields,
        "hub_module_url": ("", "TF Hub modules are not loaded; convert the checkpoint instead"),
    }
