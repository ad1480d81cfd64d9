"""BERT pretraining experiments, under Model Garden's names and with its defaults.

- `bert/pretraining`: masked LM and next-sentence prediction from pretraining TFRecords
  with static masks (`input_ids`, `masked_lm_positions`, ... as BERT's
  `create_pretraining_data.py` writes them).
- `bert/pretraining_dynamic`: the same from raw text (one sentence per line, documents
  separated by blank lines), tokenized, paired and masked on the fly, so every epoch sees
  new masks; set `task.train_data.vocab_file_path`.

Both train BERT-base by default for 1M steps with AdamW (weight decay 0.01, polynomial decay
from 1e-4); set `task.model.encoder` and `trainer.*` for other sizes.
"""

from __future__ import annotations

from garden_core.config import ExperimentConfig, OptimizationConfig, RuntimeConfig, TrainerConfig
from garden_nlp.configs import data, masked_lm


def _trainer() -> TrainerConfig:
    return TrainerConfig(
        train_steps=1000000,
        optimizer_config=OptimizationConfig.from_dict(
            {
                "optimizer": {
                    "type": "adamw",
                    "adamw": {
                        "weight_decay_rate": 0.01,
                        "exclude_from_weight_decay": ["LayerNorm", "layer_norm", "bias"],
                    },
                },
                "learning_rate": {
                    "type": "polynomial",
                    "polynomial": {"initial_learning_rate": 1e-4, "end_learning_rate": 0.0},
                },
                "warmup": {"type": "polynomial"},
            }
        ),
    )


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
    """BERT pretraining from raw text with dynamic masking."""
    return ExperimentConfig(
        task=masked_lm.MaskedLMConfig(
            train_data=data.BertPretrainTextDataConfig(),
            validation_data=data.BertPretrainTextDataConfig(is_training=False),
        ),
        trainer=_trainer(),
    )
