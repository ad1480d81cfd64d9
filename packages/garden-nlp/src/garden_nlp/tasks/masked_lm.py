"""`MaskedLMTask`: BERT pretraining with masked language modelling and next-sentence prediction.

Model: a `BertPretrainer` (encoder, masked-LM head tied to the word embeddings, and the
configured classification heads). Loss: the masked-LM cross-entropy averaged over the real
(weighted) predictions, plus, with a `next_sentence` head and labels, the next-sentence
cross-entropy. Metrics: `masked_lm_accuracy`, `lm_example_loss`, and `next_sentence_accuracy`
and `next_sentence_loss`.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_core import plugins
from garden_core.base_task import Task
from garden_nlp.configs import data as data_configs
from garden_nlp.configs import masked_lm as config_lib
from garden_nlp.tasks import utils

# The model's builder in the `garden.models` registry.
MODEL = "bert_pretrainer"

NEXT_SENTENCE = "next_sentence"


class MaskedLMTask(Task):
    """The masked-LM pretraining task (config: `MaskedLMConfig`)."""

    def __init__(self, params: config_lib.MaskedLMConfig, logging_dir=None, name=None):
        super().__init__(params, logging_dir=logging_dir, name=name)
        names = [head.name for head in params.model.cls_heads]
        if len(set(names)) != len(names) or None in names:
            raise ValueError(
                f"`task.model.cls_heads` names are {names}: every head needs its own name"
            )
        if isinstance(params.train_data, data_configs.BertPretrainTextDataConfig):
            # Dynamic masking draws random numbers in the pipeline, which tf.data cannot
            # save: a resumed run continues from the checkpoint's step with new masks.
            self.checkpoint_iterator = False

    @property
    def _has_next_sentence(self) -> bool:
        return any(head.name == NEXT_SENTENCE for head in self.task_config.model.cls_heads)

    # Model.

    def build_model(self) -> keras.Model:
        model = plugins.build_named("models", MODEL, self.task_config.model, "task.model")
        return utils.build_variables(model, {"masked_lm_positions": tf.zeros([1, 1], tf.int32)})

    def initialize(self, model: keras.Model) -> None:
        """Restores `init_checkpoint`: a converted BERT checkpoint or a pretraining run's.

        A converted checkpoint (`garden-convert-tf1-bert --include_pretraining_heads`) holds
        the pretrainer's items (`encoder`, `masked_lm`, `next_sentence`); a Garden training
        run holds them under `model`. Both are read.
        """
        if self.task_config.init_checkpoint:
            utils.restore_pretrained(
                self.task_config.init_checkpoint, model.checkpoint_items, model=model
            )

    # Data.

    def build_inputs(self, params, input_context=None) -> tf.data.Dataset:
        if isinstance(params, data_configs.BertPretrainTextDataConfig):
            from garden_nlp.data import pretrain_text_dataloader

            return pretrain_text_dataloader.BertPretrainTextDataLoader(params).load(input_context)
        if isinstance(params, data_configs.BertPretrainDynamicDataConfig):
            from garden_nlp.data import pretrain_dynamic_dataloader

            loader = pretrain_dynamic_dataloader.BertPretrainDynamicDataLoader(params)
            return loader.load(input_context)
        from garden_nlp.data import pretrain_dataloader

        return pretrain_dataloader.BertPretrainDataLoader(params).load(input_context)

    # Losses and metrics.

    def _losses(self, labels, outputs) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
        """The total, masked-LM and next-sentence (None without that head) losses."""
        per_prediction = keras.losses.sparse_categorical_crossentropy(
            labels["masked_lm_ids"], tf.cast(outputs["mlm_logits"], tf.float32), from_logits=True
        )
        weights = tf.cast(labels["masked_lm_weights"], tf.float32)
        mlm_loss = tf.math.divide_no_nan(
            tf.reduce_sum(per_prediction * weights), tf.reduce_sum(weights)
        )
        if self._has_next_sentence and "next_sentence_labels" in labels:
            sentence_loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    tf.reshape(labels["next_sentence_labels"], [-1]),
                    tf.cast(outputs[NEXT_SENTENCE], tf.float32),
                    from_logits=True,
                )
            )
            return mlm_loss + sentence_loss, mlm_loss, sentence_loss
        return mlm_loss, mlm_loss, None

    def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
        loss = self._losses(labels, model_outputs)[0]
        if aux_losses:
            loss += tf.add_n([tf.cast(a, tf.float32) for a in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        del training
        metrics = [
            keras.metrics.SparseCategoricalAccuracy(name="masked_lm_accuracy"),
            keras.metrics.Mean(name="lm_example_loss"),
        ]
        if self._has_next_sentence:
            metrics += [
                keras.metrics.SparseCategoricalAccuracy(name="next_sentence_accuracy"),
                keras.metrics.Mean(name="next_sentence_loss"),
            ]
        return metrics

    def process_metrics(self, metrics, labels, model_outputs, **kwargs) -> None:
        _, mlm_loss, sentence_loss = self._losses(labels, model_outputs)
        by_name = {metric.name: metric for metric in metrics}
        by_name["masked_lm_accuracy"].update_state(
            labels["masked_lm_ids"],
            tf.cast(model_outputs["mlm_logits"], tf.float32),
            sample_weight=labels["masked_lm_weights"],
        )
        by_name["lm_example_loss"].update_state(mlm_loss)
        if sentence_loss is not None and "next_sentence_accuracy" in by_name:
            by_name["next_sentence_accuracy"].update_state(
                tf.reshape(labels["next_sentence_labels"], [-1]),
                tf.cast(model_outputs[NEXT_SENTENCE], tf.float32),
            )
            by_name["next_sentence_loss"].update_state(sentence_loss)

    def build_export_module(self, model: keras.Model, params: Any):
        from garden_nlp.serving.serving_modules import MaskedLM

        return MaskedLM(params, model, inference_step=self.inference_step)
