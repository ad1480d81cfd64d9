"""`ImageClassificationTask`: trains and evaluates image classifiers.

Losses: sparse or one-hot cross-entropy with label smoothing, soft labels (Mixup/CutMix),
or sigmoid cross-entropy for multilabel data; L2 weight decay as kernel regularization.
Metrics: top-1 and top-k accuracy, or for multilabel data AUC, and optionally precision and
recall at thresholds (overall and per class). EMA evaluation, checkpoints and export come
from garden-core's `Trainer` and `garden export`.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_core import plugins
from garden_core.base_task import Task
from garden_core.checkpoint_utils import resolve_checkpoint
from garden_core.config import ConfigError
from garden_core.data import InputReader
from garden_vision.configs import image_classification as config_lib
from garden_vision.dataloaders import classification_input
from garden_vision.modeling import factory

#: The `garden.models` entry `ImageClassificationTask` builds its model with.
MODEL_BUILDER = "image_classification"


def _sparse_labels(labels: tf.Tensor) -> tf.Tensor:
    """Class ids from integer labels or from one-hot / soft label vectors."""
    if labels.dtype.is_floating:
        return tf.argmax(labels, axis=-1, output_type=tf.int32)
    return tf.cast(labels, tf.int32)


class ImageClassificationTask(Task):
    """The image classification task (config: `ImageClassificationTask`).

    Checkpoints do not hold the training-data position: the shuffle buffer holds thousands
    of encoded images (it would be saved in every checkpoint) and random augmentation is
    stateful, which tf.data cannot serialize. A resumed run continues from the checkpoint's
    weights and step with a freshly shuffled stream, as in Model Garden.
    """

    checkpoint_iterator = False

    def __init__(self, params: config_lib.ImageClassificationTask, logging_dir=None, name=None):
        super().__init__(params, logging_dir=logging_dir, name=name)
        model = params.model
        if model.num_classes <= 0:
            raise ConfigError(
                f"`task.model.num_classes` is {model.num_classes}: set the number of classes"
            )
        if len(model.input_size) != 3:
            raise ConfigError(
                f"`task.model.input_size` is {model.input_size!r}: expected [height, width, "
                "channels]"
            )
        if params.init_checkpoint_modules not in ("all", "backbone"):
            raise ConfigError(
                f"`task.init_checkpoint_modules` = {params.init_checkpoint_modules!r}: expected "
                "all or backbone"
            )
        if model.output_softmax and (
            params.train_data.is_multilabel or params.losses.use_binary_cross_entropy
        ):
            raise ConfigError(
                "`task.model.output_softmax` is True, but the loss is a per-class sigmoid "
                "cross-entropy (`task.train_data.is_multilabel` or "
                "`task.losses.use_binary_cross_entropy`), which needs logits: softmax "
                "probabilities sum to one across classes. Set `output_softmax: false` (served "
                "`probs` are sigmoids for multilabel models)"
            )

    # Model.

    def build_model(self) -> keras.Model:
        config = self.task_config
        input_specs = keras.layers.InputSpec(shape=[None, *config.model.input_size])
        model = plugins.build_named(
            "models",
            MODEL_BUILDER,
            config.model,
            "task.model",
            input_specs=input_specs,
            l2_regularizer=factory.l2_regularizer(config.losses.l2_weight_decay),
        )
        if config.freeze_backbone:
            model.backbone.trainable = False
        return model

    def initialize(self, model: keras.Model) -> None:
        """Restores `init_checkpoint`: the whole model, or only its backbone."""
        config = self.task_config
        if not config.init_checkpoint:
            return
        if config.init_checkpoint_modules == "all":
            super().initialize(model)
            return
        resolved = resolve_checkpoint(config.init_checkpoint)
        if resolved is None:
            raise FileNotFoundError(
                f"task.init_checkpoint: no checkpoint at {config.init_checkpoint!r}"
            )
        backbone_only = tf.train.Checkpoint(backbone=model.backbone)
        tf.train.Checkpoint(model=backbone_only).read(resolved).expect_partial()

    # Data.

    def build_inputs(self, params: config_lib.DataConfig, input_context=None) -> tf.data.Dataset:
        model = self.task_config.model
        if params.tfds_name.split("/")[0] == "garden_shapes":
            from garden_vision.datasets import shapes

            shapes.prepare(params.tfds_name, params.tfds_data_dir or None)
        reader = InputReader(
            params,
            dataset_fn=classification_input.dataset_fn(params),
            decoder_fn=classification_input.build_decoder(params),
            sample_fn=classification_input.repeated_augment_fn(params),
            parser_fn=classification_input.Parser(model.input_size[:2], model.num_classes, params),
            postprocess_fn=classification_input.mixup_and_cutmix_fn(params, model.num_classes),
        )
        return reader.read(input_context)

    # Losses and metrics.

    def _loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        """The loss of one head's outputs: logits, or probabilities with `output_softmax`."""
        losses = self.task_config.losses
        num_classes = self.task_config.model.num_classes
        logits = tf.cast(logits, tf.float32)
        # With `output_softmax` the model emits probabilities: the loss reads them as such.
        from_logits = not self.task_config.model.output_softmax
        multilabel = self.task_config.train_data.is_multilabel
        if losses.use_binary_cross_entropy or multilabel:
            if labels.dtype.is_floating or multilabel:
                targets = tf.cast(labels, tf.float32)
            else:
                targets = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
            per_example = keras.losses.binary_crossentropy(
                targets, logits, from_logits=True, label_smoothing=losses.label_smoothing
            )
        elif losses.soft_labels or labels.dtype.is_floating:
            per_example = keras.losses.categorical_crossentropy(
                tf.cast(labels, tf.float32), logits, from_logits=from_logits
            )
        elif losses.one_hot:
            per_example = keras.losses.categorical_crossentropy(
                tf.one_hot(tf.cast(labels, tf.int32), num_classes),
                logits,
                from_logits=from_logits,
                label_smoothing=losses.label_smoothing,
            )
        else:
            per_example = keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=from_logits
            )
        return tf.reduce_mean(per_example) * losses.loss_weight

    def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
        if isinstance(model_outputs, dict):  # DeiT in training: class and distillation heads.
            loss = (
                self._loss(labels, model_outputs["logits"])
                + self._loss(labels, model_outputs["distill_logits"])
            ) / 2
        else:
            loss = self._loss(labels, model_outputs)
        if aux_losses:
            loss += tf.add_n([tf.cast(a, tf.float32) for a in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        config = self.task_config
        evaluation = config.evaluation
        num_classes = config.model.num_classes
        thresholds = evaluation.precision_and_recall_thresholds or []
        if config.train_data.is_multilabel:
            metrics: list[keras.metrics.Metric] = [
                keras.metrics.AUC(name="globalPR-AUC", curve="PR", multi_label=False),
                keras.metrics.AUC(name="meanPR-AUC", curve="PR", multi_label=True),
            ]
        else:
            k = min(evaluation.top_k, num_classes)
            metrics = [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(k=k, name=f"top_{k}_accuracy"),
            ]
        if not training:
            for t in thresholds:
                metrics.append(keras.metrics.Precision(thresholds=t, name=f"precision_at_{t}"))
                metrics.append(keras.metrics.Recall(thresholds=t, name=f"recall_at_{t}"))
                if evaluation.report_per_class_precision_and_recall:
                    for i in range(num_classes):
                        metrics.append(
                            keras.metrics.Precision(
                                thresholds=t, class_id=i, name=f"precision_at_{t}/{i}"
                            )
                        )
                        metrics.append(
                            keras.metrics.Recall(
                                thresholds=t, class_id=i, name=f"recall_at_{t}/{i}"
                            )
                        )
        return metrics

    def process_metrics(self, metrics, labels, model_outputs, **kwargs) -> None:
        """Updates `metrics`: AUC, precision and recall from per-class probabilities (and
        multi-hot targets), the others from class ids and the model's outputs."""
        outputs = model_outputs["logits"] if isinstance(model_outputs, dict) else model_outputs
        outputs = tf.cast(outputs, tf.float32)
        config = self.task_config
        if config.train_data.is_multilabel:
            probabilities = tf.sigmoid(outputs)
            targets = tf.cast(labels, tf.float32)
        else:
            probabilities = outputs if config.model.output_softmax else tf.nn.softmax(outputs)
            targets = tf.one_hot(_sparse_labels(labels), config.model.num_classes)
        for metric in metrics:
            if isinstance(
                metric, (keras.metrics.AUC, keras.metrics.Precision, keras.metrics.Recall)
            ):
                metric.update_state(targets, probabilities)
            elif config.train_data.is_multilabel:
                metric.update_state(targets, outputs)
            else:
                metric.update_state(_sparse_labels(labels), outputs)

    def build_export_module(self, model: keras.Model, params: Any):
        from garden_vision.serving.image_classification import ClassificationModule

        return ClassificationModule(params, model, inference_step=self.inference_step)
