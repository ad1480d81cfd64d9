"""BERT fine-tuning experiments, under Model Garden's names and with its defaults.

- `bert/sentence_prediction`: GLUE-style classification or regression from TFRecords of
  token ids (`garden-create-finetuning-data --task_type=classification`).
- `bert/sentence_prediction_text`: the same from raw text (TSV, CSV or TFRecords of strings),
  tokenized in the input pipeline; set `vocab_file` and `text_fields`.
- `bert/squad`: SQuAD 1.1 / 2.0 question answering.
- `bert/tagging`: token tagging (named entities, part of speech).
- `bert/tiny_reviews`: a 2-layer BERT on the built-in generated `garden_reviews`
  sentiment dataset (`garden_nlp.datasets.reviews`); trains on a CPU in a few minutes.

Set `task.model.encoder` to the pretrained encoder's shape (for a converted checkpoint, from
the `encoder_config.yaml` written beside it) and `task.init_checkpoint` to its checkpoint.
"""

from __future__ import annotations

from garden_core.config import (
    ExperimentConfig,
    RuntimeConfig,
    TrainerConfig,
)
from garden_nlp.configs import data, encoders, question_answering, sentence_prediction, tagging
from garden_nlp.configs.optimization import bert_adamw


def _sentence_prediction(data_config: type) -> ExperimentConfig:
    return ExperimentConfig(
        task=sentence_prediction.SentencePredictionConfig(
            train_data=data_config(),
            validation_data=data_config(is_training=False, drop_remainder=False),
        ),
        trainer=TrainerConfig(optimizer_config=bert_adamw(3e-5)),
    )


def bert_sentence_prediction() -> ExperimentConfig:
    """BERT on GLUE-style sentence(-pair) classification or regression (TFRecords)."""
    return _sentence_prediction(data.SentencePredictionDataConfig)


def bert_sentence_prediction_text() -> ExperimentConfig:
    """BERT sentence prediction from raw text, tokenized in the input pipeline."""
    return _sentence_prediction(data.SentencePredictionTextDataConfig)


def bert_squad() -> ExperimentConfig:
    """BERT on SQuAD 1.1 / 2.0."""
    return ExperimentConfig(
        task=question_answering.QuestionAnsweringConfig(
            train_data=data.QADataConfig(),
            validation_data=data.QADataConfig(is_training=False),
        ),
        trainer=TrainerConfig(optimizer_config=bert_adamw(8e-5)),
    )


def bert_tagging() -> ExperimentConfig:
    """BERT token tagging."""
    return ExperimentConfig(
        task=tagging.TaggingConfig(
            train_data=data.TaggingDataConfig(),
            validation_data=data.TaggingDataConfig(is_training=False, drop_remainder=False),
        ),
        trainer=TrainerConfig(optimizer_config=bert_adamw(8e-5)),
    )


def bert_tiny_reviews() -> ExperimentConfig:
    """A 2-layer BERT (hidden 64) on the generated `garden_reviews` sentiment data.

    The dataset (8000 training and 1000 validation sentences, and its vocabulary) is
    written on first use to `garden_nlp.datasets.reviews.default_directory()`. Training
    from scratch (1500 steps) takes under a minute on 2 CPU cores and ends at about 100 %
    validation accuracy, against 50 % for chance; the label needs the adjective read
    together with its negation.
    """
    from garden_nlp.datasets import reviews

    files = reviews.paths()
    batch = 32
    epoch = reviews.TRAIN_EXAMPLES // batch
    epochs = 6

    def text_data(split: str, is_training: bool) -> data.SentencePredictionTextDataConfig:
        return data.SentencePredictionTextDataConfig(
            input_path=files[split],
            file_type="tsv",
            text_fields=["sentence"],
            label_field="label",
            vocab_file=files["vocab"],
            lower_case=True,
            seq_length=16,
            global_batch_size=batch,
            is_training=is_training,
            drop_remainder=is_training,
            shuffle_buffer_size=reviews.TRAIN_EXAMPLES,
            seed=1 if is_training else None,
        )

    return ExperimentConfig(
        runtime=RuntimeConfig(distribution_strategy="one_device", num_gpus=0, seed=1),
        task=sentence_prediction.SentencePredictionConfig(
            model=sentence_prediction.ModelConfig(
                num_classes=2,
                encoder=encoders.EncoderConfig(
                    type="bert",
                    bert=encoders.BertEncoderConfig(
                        vocab_size=len(reviews.vocabulary()),
                        hidden_size=64,
                        num_layers=2,
                        num_attention_heads=2,
                        intermediate_size=128,
                        max_position_embeddings=64,
                        type_vocab_size=2,
                    ),
                ),
            ),
            train_data=text_data("train", True),
            validation_data=text_data("validation", False),
        ),
        trainer=TrainerConfig(
            train_steps=epochs * epoch,
            steps_per_loop=epoch,
            summary_interval=epoch,
            checkpoint_interval=epoch,
            validation_interval=2 * epoch,
            validation_steps=-1,
            max_to_keep=2,
            best_checkpoint_export_subdir="best_ckpt",
            best_checkpoint_eval_metric="cls_accuracy",
            optimizer_config=bert_adamw(
                1e-3,
                decay_steps=epochs * epoch,
                warmup={"type": "linear", "linear": {"warmup_steps": epoch // 2}},
            ),
        ),
    )
