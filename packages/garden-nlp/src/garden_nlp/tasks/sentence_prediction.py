"""`SentencePredictionTask`: sentence(-pair) classification and regression (GLUE-style).

Model: a `BertClassifier` over the configured encoder. Loss: sparse softmax cross-entropy,
or mean squared error for regression (`model.num_classes: 1`). Metrics: `cls_accuracy`
(and `auc` for two classes), or `mean_squared_error`; with `metric_type` also a metric over
the whole evaluation set, computed on the host after evaluation: `matthews_corrcoef`,
`pearson_spearman_corr` (the mean of Pearson's and Spearman's correlations) or `f1`.
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
from garden_nlp.configs import data as data_configs
from garden_nlp.configs import sentence_prediction as config_lib
from garden_nlp.tasks import utils

# The model's builder in the `garden.models` registry.
MODEL = "bert_classifier"


class SentencePredictionTask(Task):
    """The sentence prediction task (config: `SentencePredictionConfig`)."""

    def __init__(self, params: config_lib.SentencePredictionConfig, logging_dir=None, name=None):
        super().__init__(params, logging_dir=logging_dir, name=name)
        if params.metric_type not in config_lib.METRIC_TYPES:
            raise ConfigError(
                f"`task.metric_type` is {params.metric_type!r}: expected one of "
                + ", ".join(config_lib.METRIC_TYPES)
            )
        if params.model.num_classes <= 0:
            raise ConfigError(
                f"`task.model.num_classes` is {params.model.num_classes}: set the number of "
                "classes (1 for regression)"
            )
        if params.metric_type in ("f1", "matthews_corrcoef") and params.model.num_classes == 1:
            raise ConfigError(
                f"`task.metric_type` {params.metric_type} needs classes, but "
                "`task.model.num_classes` is 1 (regression); use pearson_spearman_corr"
            )
        self.metric_type = params.metric_type

    # Model.

    def build_model(self) -> keras.Model:
        model = plugins.build_named("models", MODEL, self.task_config.model, "task.model")
        return utils.build_variables(model)

    def initialize(self, model: keras.Model) -> None:
        """Restores the pretrained encoder (and optionally the pooler) of `init_checkpoint`."""
        config = self.task_config
        if not config.init_checkpoint:
            return
        items = {"encoder": model.checkpoint_items["encoder"]}
        utils.restore_pretrained(config.init_checkpoint, items)
        if config.init_cls_pooler:
            dense = getattr(model.classifier, "dense", None)
            if config.model.use_encoder_pooler or dense is None:
                raise ConfigError(
                    "`task.init_cls_pooler` needs the classifier's own [CLS] dense layer: set "
                    "`task.model.use_encoder_pooler: false`"
                )
            pooler = tf.train.Checkpoint(dense=dense)
            utils.restore_pretrained(config.init_checkpoint, {"next_sentence": pooler})

    # Data.

    def build_inputs(self, params, input_context=None) -> tf.data.Dataset:
        from garden_nlp.data import sentence_prediction_dataloader as loaders

        if isinstance(params, data_configs.SentencePredictionTextDataConfig):
            _prepare_builtin(params)
            return loaders.SentencePredictionTextDataLoader(params).load(input_context)
        return loaders.SentencePredictionDataLoader(params).load(input_context)

    # Losses and metrics.

    def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
        logits = tf.cast(model_outputs, tf.float32)
        if self.task_config.model.num_classes == 1:
            per_example = tf.square(tf.reshape(logits, [-1]) - tf.cast(labels, tf.float32))
        else:
            per_example = keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True
            )
        loss = tf.reduce_mean(per_example)
        if aux_losses:
            loss += tf.add_n([tf.cast(a, tf.float32) for a in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        del training
        num_classes = self.task_config.model.num_classes
        if num_classes == 1:
            return [keras.metrics.MeanSquaredError(name="mean_squared_error")]
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="cls_accuracy")]
        if num_classes == 2:
            metrics.append(keras.metrics.AUC(name="auc", curve="PR"))
        return metrics

    def process_metrics(self, metrics, labels, model_outputs, **kwargs) -> None:
        logits = tf.cast(model_outputs, tf.float32)
        for metric in metrics:
            if metric.name == "auc":
                metric.update_state(tf.reshape(labels, [-1, 1]), tf.nn.softmax(logits)[:, 1:2])
            elif metric.name == "mean_squared_error":
                metric.update_state(tf.reshape(labels, [-1]), tf.reshape(logits, [-1]))
            else:
                metric.update_state(labels, logits)

    def validation_step(self, inputs, model, metrics=None):
        features, labels = inputs
        outputs = self.inference_step(features, model)
        loss = self.build_losses(labels, outputs, aux_losses=model.losses)
        if metrics:
            self.process_metrics(metrics, labels, outputs)
        logs = {self.loss: loss}
        if self.metric_type != "accuracy":
            logs["sentence_prediction"] = tf.cast(outputs, tf.float32)
            logs["labels"] = labels
        return logs

    def aggregate_logs(self, state=None, step_logs=None):
        if self.metric_type == "accuracy" or step_logs is None:
            return state
        state = state or {"sentence_prediction": [], "labels": []}
        state["sentence_prediction"].append(utils.concat_replicas(step_logs["sentence_prediction"]))
        state["labels"].append(utils.concat_replicas(step_logs["labels"]))
        return state

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        if self.metric_type == "accuracy" or not aggregated_logs:
            return {}
        outputs = np.concatenate(aggregated_logs["sentence_prediction"], axis=0)
        labels = np.concatenate(aggregated_logs["labels"], axis=0).reshape(-1)
        if self.metric_type == "pearson_spearman_corr":
            scores = outputs.reshape(-1)
            value = (
                metrics_lib.pearson_correlation(labels, scores)
                + metrics_lib.spearman_correlation(labels, scores)
            ) / 2
        else:
            predictions = np.argmax(outputs, axis=-1)
            if self.metric_type == "f1":
                value = metrics_lib.f1_score(labels, predictions)
            else:
                value = metrics_lib.matthews_corrcoef(labels, predictions)
        return {self.metric_type: float(value)}

    def build_export_module(self, model: keras.Model, params: Any):
        from garden_nlp.serving.serving_modules import SentencePrediction

        return SentencePrediction(params, model, inference_step=self.inference_step)


def _prepare_builtin(params: data_configs.SentencePredictionTextDataConfig) -> None:
    """Generates the built-in `garden_reviews` data when a config reads it and it is missing."""
    from garden_nlp.datasets import reviews

    paths = params.input_path if isinstance(params.input_path, list) else [params.input_path]
    directory = reviews.default_directory()
    if any(isinstance(p, str) and p.startswith(directory) for p in paths):
        reviews.prepare(directory)
