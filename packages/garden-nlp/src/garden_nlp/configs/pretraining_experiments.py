"""BERT pretraining experiments, under Model Garden's names and with its defaults.

- `bert/pretraining`: masked LM and next-sentence prediction from pretraining TFRecords
  with static masks (`input_ids`, `masked_lm_positions`, ... as BERT's
  `create_pretraining_data.py` writes them).
- `bert/pretraining_dynamic`: the same from TFRecords of examples of varying lengths,
  batched by length buckets (`seq_bucket_lengths`) so short examples are not padded to the
  longest sequence length.
- `bert/text_wiki_pretraining`: from raw text, tokenized, paired and masked on the fly, so
  every epoch sees new masks: TFDS Wikipedia (`wikipedia/20201201.en`, prepared beforehand;
  nothing is downloaded) by default, or text files (`input_path`, `file_type: txt`: one
  sentence per line, documents separated by blank lines); set
  `task.train_data.vocab_file_path`.

All train BERT-base by default for 1M steps with AdamW (weight decay 0.01, polynomial decay
from 1e-4); set `task.model.encoder` and `trainer.*` for other sizes.
"""

from __future__ import annotations

from garden_core.config import ExperimentConfig, RuntimeConfig, TrainerConfig
from garden_nlp.configs import data, masked_lm
from garden_nlp.configs.optimization import bert_adamw


def _trainer() -> TrainerConfig:
    return TrainerConfig(train_steps=1000000, optimizer_config=bert_adamw(1e-4))


def bert_pretraining() -> ExperimentConfig:
    """BERT pretraining from TFRecords with static masks."""
    return ExperimentConfig(
        runtime=RuntimeConfig(enable_xla=True),
        task=masked_lm.MaskedLMConfig(
            train_data=data.BertPretrainDataConfig(),
            validation_data=data.BertPretrainDataConfig(is_training=False),
        ),
        trainer=_trainer(),
    )


def bert_pretraining_dynamic() -> ExperimentConfig:
    """BERT pretraining from TFRecords of varying lengths, batched by length buckets."""
    return ExperimentConfig(
        runtime=RuntimeConfig(enable_xla=True),
        task=masked_lm.MaskedLMConfig(
            train_data=data.BertPretrainDynamicDataConfig(),
            validation_data=data.BertPretrainDataConfig(is_training=False),
        ),
        trainer=_trainer(),
    )


def bert_text_wiki_pretraining() -> ExperimentConfig:
    """BERT pretraining from raw text (TFDS Wikipedia or text files), masked on the fly."""

    def wikipedia(is_training: bool) -> data.BertPretrainTextDataConfig:
        return data.BertPretrainTextDataConfig(
            tfds_name="wikipedia/20201201.en", tfds_split="train", is_training=is_training
        )

    return ExperimentConfig(
        task=masked_lm.MaskedLMConfig(
            train_data=wikipedia(True),
            validation_data=wikipedia(False),
        ),
        trainer=_trainer(),
    )
