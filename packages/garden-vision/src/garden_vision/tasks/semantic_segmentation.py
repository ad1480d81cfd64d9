"""`SemanticSegmentationTask`: trains and evaluates semantic segmentation models.

Data: tf.Examples with `image/encoded` and a PNG `image/segmentation/class/encoded` mask
(Model Garden's layout; `garden-images-to-tfrecords --masks_dir` writes them), or a TFDS
segmentation dataset (`garden_shapes/multi`, `oxford_iiit_pet`, ...), parsed by
`dataloaders.segmentation_input.Parser` into images and `{masks, valid_masks, image_info}`.
Loss: per-pixel softmax (or sigmoid) cross-entropy with `ignore_label`, label smoothing,
class weights and top-k pixel mining (`losses.segmentation_losses`), as Model Garden's task.
Metrics: in training `mean_iou` (on the training crops); in evaluation the IoU of every
class (`iou/<class>`) and `mean_iou`, computed at each image's original size when the
validation masks are not resized (`resize_eval_groundtruth: false`), as Model Garden does.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_core import plugins
from garden_core.base_task import Task
from garden_core.config import ConfigError
from garden_core.data import InputReader
from garden_vision.configs import semantic_segmentation as config_lib
from garden_vision.dataloaders import (
    classification_input,
    segmentation_input,
    tfds_segmentation_decoders,
)
from garden_vision.evaluation import segmentation_metrics
from garden_vision.losses import segmentation_losses
from garden_vision.modeling import factory
from garden_vision.tasks import retinanet

#: The `garden.models` entry `SemanticSegmentationTask` builds its model with.
MODEL_BUILDER = "semantic_segmentation"


def build_decoder(params: config_lib.DataConfig) -> Any:
    """The record decoder of `params`: a TFDS segmentation decoder or the tf.Example one.

    Raises:
      ConfigError: For a TFDS dataset without a segmentation decoder, or a decoder type
        other than `simple_decoder`.
    """
    if params.tfds_name:
        name = params.tfds_name
        decoders = tfds_segmentation_decoders.TFDS_ID_TO_DECODER_MAP
        decoder_class = decoders.get(name) or decoders.get(name.split("/")[0])
        if decoder_class is None:
            raise ConfigError(
                f"`tfds_name` = {name!r}: no segmentation decoder for this dataset; offered: "
                + ", ".join(sorted(decoders))
            )
        return decoder_class()
    decoder = params.decoder
    if decoder is not None and decoder.type not in (None, "simple_decoder"):
        raise ConfigError(
            f"`decoder.type` = {decoder.type!r}: segmentation records are read with simple_decoder"
        )
    return segmentation_input.Decoder(
        image_feature=params.image_feature,
        additional_dense_features=params.additional_dense_features,
    )


class SemanticSegmentationTask(Task):
    """The semantic segmentation task (config: `SemanticSegmentationTask`).

    Checkpoints do not hold the training-data position (random crops, flips and scale
    jitter are stateful, which tf.data cannot serialize): a resumed run continues from the
    checkpoint's weights and step with a freshly shuffled stream, as in Model Garden.
    """

    checkpoint_iterator = False

    #: The `garden.models` entry the model is built with.
    model_builder = MODEL_BUILDER

    def __init__(self, params: config_lib.SemanticSegmentationTask, logging_dir=None, name=None):
        super().__init__(params, logging_dir=logging_dir, name=name)
        model = params.model
        if model.num_classes < 1:
            raise ConfigError(
                f"`task.model.num_classes` is {model.num_classes}: set the number of classes "
                "(background included)"
            )
        if len(model.input_size) != 3:
            raise ConfigError(
                f"`task.model.input_size` is {model.input_size!r}: expected [height, width, "
                "channels] (height and width may be null)"
            )
        for where, data in (
            ("train_data", params.train_data),
            ("validation_data", params.validation_data),
        ):
            if not (data.output_size or data.crop_size) and None in model.input_size[:2]:
                raise ConfigError(
                    f"`task.{where}.output_size` is empty and `task.model.input_size` is "
                    f"{model.input_size!r}: batching needs one image size; set output_size"
                )
        modules = params.init_checkpoint_modules
        self._init_modules = [modules] if isinstance(modules, str) else list(modules)
        self.iou_metric: segmentation_metrics.PerClassIoU | None = None

    # Model.

    def build_model(self) -> keras.Model:
        config = self.task_config
        input_specs = keras.layers.InputSpec(shape=[None, *config.model.input_size])
        return plugins.build_named(
            "models",
            self.model_builder,
            config.model,
            "task.model",
            input_specs=input_specs,
            l2_regularizer=factory.l2_regularizer(config.losses.l2_weight_decay),
        )

    def initialize(self, model: keras.Model) -> None:
        """Restores `init_checkpoint`: the whole model, or its backbone and/or decoder."""
        if "all" in self._init_modules:
            super().initialize(model)
        else:
            retinanet.restore_modules(model, self.task_config.init_checkpoint, self._init_modules)

    # Data.

    def build_inputs(self, params: config_lib.DataConfig, input_context=None) -> tf.data.Dataset:
        config = self.task_config
        output_size = list(params.output_size or config.model.input_size[:2])
        parser = segmentation_input.Parser(
            output_size=output_size,
            crop_size=list(params.crop_size) or None,
            ignore_label=config.losses.ignore_label,
            resize_eval_groundtruth=params.resize_eval_groundtruth,
            gt_is_matting_map=config.losses.gt_is_matting_map,
            groundtruth_padded_size=list(params.groundtruth_padded_size) or None,
            aug_scale_min=params.aug_scale_min,
            aug_scale_max=params.aug_scale_max,
            aug_rand_hflip=params.aug_rand_hflip,
            preserve_aspect_ratio=params.preserve_aspect_ratio,
            dtype=params.dtype,
            image_feature=params.image_feature,
            additional_dense_features=params.additional_dense_features,
            centered_crop=params.centered_crop,
        )
        if params.tfds_name.split("/")[0] == "garden_shapes":
            from garden_vision.datasets import shapes

            shapes.prepare(params.tfds_name, params.tfds_data_dir or None)
        reader = InputReader(
            params,
            dataset_fn=classification_input.dataset_fn(params),
            decoder_fn=build_decoder(params).decode,
            parser_fn=parser.parse_fn(params.is_training),
        )
        return reader.read(input_context)

    # Losses and metrics.

    def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
        losses = self.task_config.losses
        loss_fn = segmentation_losses.SegmentationLoss(
            label_smoothing=losses.label_smoothing,
            class_weights=list(losses.class_weights),
            ignore_label=losses.ignore_label,
            use_groundtruth_dimension=losses.use_groundtruth_dimension,
            use_binary_cross_entropy=losses.use_binary_cross_entropy,
            top_k_percent_pixels=losses.top_k_percent_pixels,
            gt_is_matting_map=losses.gt_is_matting_map,
        )
        logits = model_outputs["logits"] if isinstance(model_outputs, dict) else model_outputs
        loss = loss_fn(tf.cast(logits, tf.float32), labels["masks"])
        if aux_losses:
            loss += tf.add_n([tf.cast(a, tf.float32) for a in aux_losses])
        return losses.loss_weight * loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        config = self.task_config
        num_classes = config.model.num_classes
        if training:
            if not config.evaluation.report_train_mean_iou:
                return []
            return [
                segmentation_metrics.MeanIoU(
                    name="mean_iou", num_classes=num_classes, rescale_predictions=False
                )
            ]
        self.iou_metric = segmentation_metrics.PerClassIoU(
            name="per_class_iou",
            num_classes=num_classes,
            rescale_predictions=not config.validation_data.resize_eval_groundtruth,
        )
        return []

    def process_metrics(self, metrics, labels, model_outputs, **kwargs) -> None:
        logits = model_outputs["logits"] if isinstance(model_outputs, dict) else model_outputs
        for metric in metrics or []:
            metric.update_state(labels, tf.cast(logits, tf.float32))

    # Steps.

    def train_step(self, inputs, model, optimizer, metrics=None):
        features, labels = inputs
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            outputs = tf.nest.map_structure(lambda x: tf.cast(x, tf.float32), outputs)
            loss = self.build_losses(labels, outputs, aux_losses=model.losses)
            scaled_loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                scaled_loss = optimizer.scale_loss(scaled_loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        if metrics:
            self.process_metrics(metrics, labels, outputs)
        return {self.loss: loss}

    def validation_step(self, inputs, model, metrics=None):
        features, labels = inputs
        outputs = self.inference_step(features, model)
        outputs = tf.nest.map_structure(lambda x: tf.cast(x, tf.float32), outputs)
        logs = {}
        if self.task_config.validation_data.resize_eval_groundtruth:
            # Masks at the logits' scale: the loss is defined (as in Model Garden).
            logs[self.loss] = self.build_losses(labels, outputs, aux_losses=model.losses)
        if self.iou_metric is not None:
            self.iou_metric.update_state(labels, outputs["logits"])
        if metrics:
            self.process_metrics(metrics, labels, outputs)
        return logs

    def inference_step(self, inputs: Any, model: keras.Model) -> Any:
        return model(inputs, training=False)

    def aggregate_logs(self, state=None, step_logs=None):
        # The evaluation steps accumulate into `iou_metric` themselves (its confusion
        # matrix is summed across replicas); it is read and reset once per evaluation.
        return True

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        if self.iou_metric is None:
            return {}
        ious = self.iou_metric.result().numpy()
        self.iou_metric.reset_state()
        logs = {}
        if self.task_config.evaluation.report_per_class_iou:
            logs.update({f"iou/{i}": float(value) for i, value in enumerate(ious)})
        logs["mean_iou"] = float(ious.mean())
        return logs

    def build_export_module(self, model: keras.Model, params: Any):
        from garden_vision.serving.semantic_segmentation import SegmentationModule

        return SegmentationModule(params, model, inference_step=self.inference_step)
