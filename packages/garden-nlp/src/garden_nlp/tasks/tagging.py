"""`TaggingTask`: token tagging (named-entity recognition, part-of-speech tagging).

Model: a `BertTokenClassifier` with one class per entry of `class_names`. Loss: softmax
cross-entropy over the scored positions (labels >= 0; padding and the non-initial pieces of
a word are labelled -1). Metrics: token `accuracy` over scored positions during training
and evaluation, and after evaluation the span `precision`, `recall` and `f1` (seqeval
style, over the IOB/BIO spans of the tag names) on the host.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from garden_core import plugins
from garden_core.base_task import Task
from garden_core.config import ConfigError
from garden_nlp import metrics as metrics_lib
from garden_nlp.configs import tagging as config_lib
from garden_nlp.tasks import utils

# The model's builder in the `garden.models` registry (called with `num_classes` added).
MODEL = "bert_token_classifier"


def _scored(labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Labels with ignored positions set to 0, and the weights (1 where scored)."""
    labels = tf.cast(labels, tf.int32)
    scored = labels >= 0
    return tf.where(scored, labels, 0), tf.cast(scored, tf.float32)


class TaggingTask(Task):
    """The tagging task (config: `TaggingConfig`)."""

    def __init__(self, params: config_lib.TaggingConfig, logging_dir=None, name=None):
        super().__init__(params, logging_dir=logging_dir, name=name)
        if not params.class_names:
            raise ConfigError(
                "`task.class_names` is not set: list the tag names in label-id order, e.g. "
                "[O, B-PER, I-PER]"
            )
        if len(set(params.class_names)) != len(params.class_names):
            raise ConfigError(f"`task.class_names` repeats names: {params.class_names}")

    def build_model(self) -> keras.Model:
        model = plugins.build_named(
            "models",
            MODEL,
            self.task_config.model,
            "task.model",
            num_classes=len(self.task_config.class_names),
        )
        return utils.build_variables(model)

    def initialize(self, model: keras.Model) -> None:
        if self.task_config.init_checkpoint:
            items = {"encoder": model.checkpoint_items["encoder"]}
            utils.restore_pretrained(self.task_config.init_checkpoint, items)

    def build_inputs(self, params, input_context=None) -> tf.data.Dataset:
        from garden_nlp.data import tagging_dataloader

        return tagging_dataloader.TaggingDataLoader(params).load(input_context)

    def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
        targets, weights = _scored(labels)
        per_token = keras.losses.sparse_categorical_crossentropy(
            targets, tf.cast(model_outputs, tf.float32), from_logits=True
        )
        loss = tf.math.divide_no_nan(tf.reduce_sum(per_token * weights), tf.reduce_sum(weights))
        if aux_losses:
            loss += tf.add_n([tf.cast(a, tf.float32) for a in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        del training
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def process_metrics(self, metrics, labels, model_outputs, **kwargs) -> None:
        targets, weights = _scored(labels)
        for metric in metrics:
            metric.update_state(targets, tf.cast(model_outputs, tf.float32), sample_weight=weights)

    def validation_step(self, inputs, model, metrics=None):
        features, labels = inputs
        outputs = self.inference_step(features, model)
        loss = self.build_losses(labels, outputs, aux_losses=model.losses)
        if metrics:
            self.process_metrics(metrics, labels, outputs)
        return {
            self.loss: loss,
            "predict_ids": tf.argmax(outputs, axis=-1, output_type=tf.int32),
            "label_ids": tf.cast(labels, tf.int32),
        }

    def aggregate_logs(self, state=None, step_logs=None):
        if step_logs is None:
            return state
        state = state or {"predict_ids": [], "label_ids": []}
        state["predict_ids"].append(utils.concat_replicas(step_logs["predict_ids"]))
        state["label_ids"].append(utils.concat_replicas(step_logs["label_ids"]))
        return state

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        if not aggregated_logs:
            return {}
        width = max(a.shape[1] for a in aggregated_logs["label_ids"])

        def stack(arrays):
            padded = [
                np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=-1) for a in arrays
            ]
            return np.concatenate(padded, axis=0)

        label_ids = stack(aggregated_logs["label_ids"])
        predict_ids = stack(aggregated_logs["predict_ids"])
        gold, predicted = metrics_lib.tag_sequences_from_ids(
            label_ids, predict_ids, self.task_config.class_names
        )
        scores = metrics_lib.span_precision_recall_f1(gold, predicted)
        return {"precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"]}

    def build_export_module(self, model: keras.Model, params: Any):
        from garden_nlp.serving.serving_modules import Tagging

        return Tagging(params, model, inference_step=self.inference_step)
