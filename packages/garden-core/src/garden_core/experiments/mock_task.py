"""`MockTask`: the task of the `mock` experiment (see `garden_core.experiments.mock`)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from garden_core import plugins
from garden_core.base_task import Task
from garden_core.data import InputReader
from garden_core.experiments.mock import MockDataConfig

# The labelling map is fixed, so the training and validation data agree on it.
_TEACHER_SEED = 20261122


def generate_examples(params: MockDataConfig, input_size: int, num_classes: int):
    """Returns the (features, labels) arrays `params` describes."""
    teacher = np.random.default_rng(_TEACHER_SEED).normal(size=(input_size, num_classes))
    rng = np.random.default_rng(params.data_seed)
    features = rng.normal(size=(params.num_examples, input_size)).astype(np.float32)
    labels = np.argmax(features @ teacher, axis=1).astype(np.int32)
    return features, labels


class MockTask(Task):
    """Classifies generated feature vectors with a small multilayer perceptron.

    Evaluation also counts the examples it saw on the host (`aggregate_logs`), reported as
    `num_examples_evaluated`.
    """

    def build_model(self) -> keras.Model:
        """The `mock_mlp` model (`garden.models`), built with `task.model`'s fields."""
        return plugins.build_named("models", "mock_mlp", self.task_config.model, "task.model")

    def build_inputs(
        self, params: MockDataConfig, input_context: tf.distribute.InputContext | None = None
    ) -> tf.data.Dataset:
        config = self.task_config.model
        if params.input_path or params.tfds_name:
            return self._read_records(params, input_context)
        features, labels = generate_examples(params, config.input_size, config.num_classes)
        dataset = tf.data.Dataset.from_tensor_slices((features, labels))
        batch_size = params.global_batch_size
        if params.is_training:
            # Shuffle before sharding, with one seed on every worker: the workers' batches
            # then make up exactly the batches of a single-process run.
            dataset = dataset.shuffle(
                params.num_examples, seed=params.seed, reshuffle_each_iteration=True
            ).repeat()
        if input_context is not None:
            batch_size = input_context.get_per_replica_batch_size(batch_size)
            if params.sharding and input_context.num_input_pipelines > 1:
                dataset = dataset.shard(
                    input_context.num_input_pipelines, input_context.input_pipeline_id
                )
        dataset = dataset.batch(batch_size, drop_remainder=params.drop_remainder)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def _read_records(self, params, input_context):
        spec = {
            "features": tf.io.FixedLenFeature([self.task_config.model.input_size], tf.float32),
            "label": tf.io.FixedLenFeature([], tf.int64),
        }

        def decode(record):
            example = tf.io.parse_single_example(record, spec)
            return example["features"], tf.cast(example["label"], tf.int32)

        return InputReader(params, decoder_fn=decode).read(input_context)

    def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(labels, model_outputs, from_logits=True)
        )
        if aux_losses:
            loss += tf.add_n(aux_losses)
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        del training
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def build_export_module(self, model, params):
        from garden_core.export_base import KerasModelExportModule

        def postprocess(logits):
            return {
                "logits": logits,
                "probabilities": tf.nn.softmax(logits),
                "classes": tf.argmax(logits, axis=-1, output_type=tf.int32),
            }

        return KerasModelExportModule(
            params, model, inference_step=self.inference_step, postprocessor=postprocess
        )

    def validation_step(self, inputs, model, metrics=None) -> dict[str, Any]:
        logs = super().validation_step(inputs, model, metrics=metrics)
        logs["batch_examples"] = tf.shape(inputs[1])[0]
        return logs

    def aggregate_logs(self, state=None, step_logs=None):
        seen = sum(int(np.sum(count)) for count in step_logs["batch_examples"])
        return (state or 0) + seen

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None) -> dict[str, Any]:
        return {"num_examples_evaluated": aggregated_logs}
