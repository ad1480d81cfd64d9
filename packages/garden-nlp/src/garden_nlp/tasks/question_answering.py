"""`QuestionAnsweringTask`: extractive question answering on SQuAD 1.1 / 2.0.

Training reads TFRecords of window features (`garden-create-finetuning-data
--task_type=squad`); the loss is the mean of the start and end positions' cross-entropies,
with `start_position_accuracy` and `end_position_accuracy` as metrics. Evaluation reads the
SQuAD JSON file itself (`validation_data.input_path`): the task converts it into window
features once (into `validation_data.input_preprocessed_data_path`, or the model directory),
collects the start and end logits of every window, turns them into answer text and scores
that against the gold answers: `exact_match` and `final_f1` (fractions in [0, 1]). The
predicted answers are written to `predictions.json` in the model directory.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from garden_core import plugins
from garden_core.base_task import Task
from garden_core.config import ConfigError
from garden_nlp.configs import question_answering as config_lib
from garden_nlp.tasks import utils

# The model's builder in the `garden.models` registry.
MODEL = "bert_span_labeler"

EVAL_FEATURES_FILE = "eval_features.tf_record"


class QuestionAnsweringTask(Task):
    """The question answering task (config: `QuestionAnsweringConfig`)."""

    # Evaluation features (examples, features and their TFRecord), made on first use.
    _eval_data: tuple[list, list, str] | None = None

    def __init__(self, params: config_lib.QuestionAnsweringConfig, logging_dir=None, name=None):
        super().__init__(params, logging_dir=logging_dir, name=name)

    # Model.

    def build_model(self) -> keras.Model:
        model = plugins.build_named("models", MODEL, self.task_config.model, "task.model")
        return utils.build_variables(model)

    def initialize(self, model: keras.Model) -> None:
        if self.task_config.init_checkpoint:
            items = {"encoder": model.checkpoint_items["encoder"]}
            utils.restore_pretrained(self.task_config.init_checkpoint, items)

    # Data.

    def _evaluation_data(self, params) -> tuple[list, list, str]:
        """Converts the SQuAD evaluation file into window features (once per task)."""
        if self._eval_data is not None:
            return self._eval_data
        from garden_nlp.data import squad_features
        from garden_nlp.data.tokenization import FullTokenizer

        if not params.vocab_file:
            raise ConfigError(
                "`task.validation_data.vocab_file` is not set: evaluation converts the SQuAD "
                "file with the model's vocabulary"
            )
        directory = params.input_preprocessed_data_path or self.logging_dir
        if not directory:
            raise ConfigError(
                "`task.validation_data.input_preprocessed_data_path` is not set and the task "
                "has no model directory: name a directory for the evaluation features"
            )
        tf.io.gfile.makedirs(directory)
        path = os.path.join(directory, EVAL_FEATURES_FILE)
        tokenizer = FullTokenizer(params.vocab_file, params.do_lower_case, params.tokenization)
        examples, features = squad_features.prepare_eval_features(
            params.input_path,
            tokenizer,
            path,
            max_seq_length=params.seq_length,
            doc_stride=params.doc_stride,
            max_query_length=params.query_length,
            version_2_with_negative=params.version_2_with_negative,
        )
        self._eval_data = (examples, features, path)
        self._tokenizer = tokenizer
        return self._eval_data

    def build_inputs(self, params, input_context=None) -> tf.data.Dataset:
        from garden_nlp.data import question_answering_dataloader

        if not params.is_training:
            *_, path = self._evaluation_data(params)
            params = params.replace(input_path=path)
        return question_answering_dataloader.QuestionAnsweringDataLoader(params).load(input_context)

    # Losses and metrics.

    def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
        losses = [
            tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    labels[f"{side}_positions"],
                    tf.cast(model_outputs[f"{side}_logits"], tf.float32),
                    from_logits=True,
                )
            )
            for side in ("start", "end")
        ]
        loss = (losses[0] + losses[1]) / 2
        if aux_losses:
            loss += tf.add_n([tf.cast(a, tf.float32) for a in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        if not training:  # Evaluation scores answer text on the host instead.
            return []
        return [
            keras.metrics.SparseCategoricalAccuracy(name="start_position_accuracy"),
            keras.metrics.SparseCategoricalAccuracy(name="end_position_accuracy"),
        ]

    def process_metrics(self, metrics, labels, model_outputs, **kwargs) -> None:
        for metric in metrics:
            side = metric.name.split("_")[0]
            metric.update_state(
                labels[f"{side}_positions"], tf.cast(model_outputs[f"{side}_logits"], tf.float32)
            )

    def validation_step(self, inputs, model, metrics=None):
        features, _ = inputs
        features = dict(features)
        unique_ids = features.pop("unique_ids")
        outputs = self.inference_step(features, model)
        return {
            # Evaluation data has no labels; its score is the answers' exact match and F1.
            self.loss: tf.constant(0.0),
            "unique_ids": unique_ids,
            "start_logits": tf.cast(outputs["start_logits"], tf.float32),
            "end_logits": tf.cast(outputs["end_logits"], tf.float32),
        }

    def aggregate_logs(self, state=None, step_logs=None):
        from garden_nlp.data.squad_postprocess import RawResult

        state = state if state is not None else []
        if step_logs is None:
            return state
        ids = utils.concat_replicas(step_logs["unique_ids"])
        starts = utils.concat_replicas(step_logs["start_logits"])
        ends = utils.concat_replicas(step_logs["end_logits"])
        for unique_id, start, end in zip(ids, starts, ends, strict=True):
            state.append(RawResult(int(unique_id), start.tolist(), end.tolist()))
        return state

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        from garden_nlp.data import squad_postprocess
        from garden_nlp.metrics import squad_evaluate

        params = self.task_config.validation_data
        examples, features, _ = self._evaluation_data(params)
        predictions, _, _ = squad_postprocess.postprocess_output(
            examples,
            features,
            aggregated_logs or [],
            n_best_size=self.task_config.n_best_size,
            max_answer_length=self.task_config.max_answer_length,
            do_lower_case=params.do_lower_case,
            version_2_with_negative=params.version_2_with_negative,
            null_score_diff_threshold=self.task_config.null_score_diff_threshold,
            tokenizer=self._tokenizer,
        )
        if self.logging_dir:
            squad_postprocess.write_json(
                predictions, os.path.join(self.logging_dir, "predictions.json")
            )
        scores = squad_evaluate(params.input_path, predictions)
        return {key: float(np.float64(value)) for key, value in scores.items()}

    def build_export_module(self, model: keras.Model, params: Any):
        from garden_nlp.serving.serving_modules import QuestionAnswering

        return QuestionAnswering(params, model, inference_step=self.inference_step)
