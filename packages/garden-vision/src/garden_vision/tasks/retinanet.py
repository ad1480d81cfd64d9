"""`RetinaNetTask`: trains and evaluates one-stage detectors (RetinaNet, Lin et al., 2017).

Data: Model Garden's detection tf.Examples (`simple_decoder`, or `label_map_decoder` for text
labels) or a TFDS detection dataset (`coco/2017`, `garden_shapes/multi`), parsed by
`dataloaders.retinanet_input.Parser` into images, per-level anchor targets and `image_info`.
Losses: the sigmoid focal loss over every anchor and class plus the Huber box loss, both
divided by the batch's positive anchors (`losses.retinanet_losses`), as Model Garden's task.
Metrics: `total_loss`, `cls_loss`, `box_loss`, `model_loss` and, in evaluation, the COCO
metrics (`AP`, `AP50`, ..., `ARl`, and per category on request) through pycocotools, from the
`annotation_file` or from ground truth gathered from the validation data.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from garden_core import plugins
from garden_core.base_task import Task
from garden_core.checkpoint_utils import resolve_checkpoint
from garden_core.config import ConfigError
from garden_core.data import InputReader
from garden_vision.configs import retinanet as config_lib
from garden_vision.dataloaders import (
    classification_input,
    retinanet_input,
    tf_example_decoder,
    tf_example_label_map_decoder,
    tfds_detection_decoders,
)
from garden_vision.losses import retinanet_losses
from garden_vision.modeling import factory

#: The `garden.models` entry `RetinaNetTask` builds its model with.
MODEL_BUILDER = "retinanet"

#: The training and evaluation loss metrics, Model Garden's names.
LOSS_NAMES = ("total_loss", "cls_loss", "box_loss", "model_loss")

_COCO_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def _to_numpy(value: Any) -> Any:
    """Per-replica results (tuples of tensors) as one NumPy array, batch axes joined."""
    if isinstance(value, dict):
        return {key: _to_numpy(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        parts = [np.asarray(item) for item in value]
        return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    return np.asarray(value)


def parser_kwargs(model: Any, params: Any) -> dict[str, Any]:
    """The arguments RetinaNet's and Mask R-CNN's parsers share: the model's input size,
    levels, anchors and classes, and the data config's dtype, augmentation and instances."""
    parser = params.parser
    anchor = model.anchor
    return {
        "output_size": model.input_size[:2],
        "min_level": model.min_level,
        "max_level": model.max_level,
        "num_scales": anchor.num_scales,
        "aspect_ratios": anchor.aspect_ratios,
        "anchor_size": anchor.anchor_size,
        "dtype": params.dtype,
        "aug_type": parser.aug_type,
        "aug_rand_hflip": parser.aug_rand_hflip,
        "aug_scale_min": parser.aug_scale_min,
        "aug_scale_max": parser.aug_scale_max,
        "skip_crowd_during_training": parser.skip_crowd_during_training,
        "max_num_instances": parser.max_num_instances,
        "num_classes": model.num_classes,
        "box_outside_image": parser.box_outside_image,
    }


def build_decoder(params: config_lib.DataConfig, include_mask: bool = False) -> Any:
    """The record decoder `params` asks for: TFDS, `simple_decoder` or `label_map_decoder`.

    With `include_mask` the tf.Example decoders also decode `image/object/mask` (TFDS
    decoders give the masks their dataset has).

    Raises:
      ConfigError: For a TFDS dataset without a detection decoder, or an unknown decoder type.
    """
    if params.tfds_name:
        name = params.tfds_name
        decoders = tfds_detection_decoders.TFDS_ID_TO_DECODER_MAP
        decoder_class = decoders.get(name) or decoders.get(name.split("/")[0])
        if decoder_class is None:
            raise ConfigError(
                f"`tfds_name` = {name!r}: no detection decoder for this dataset; offered: "
                + ", ".join(sorted(decoders))
            )
        return decoder_class()
    decoder = params.decoder
    decoder_type = decoder.type if decoder is not None else "simple_decoder"
    if decoder_type == "simple_decoder":
        settings = decoder.simple_decoder if decoder is not None else None
        return tf_example_decoder.TfExampleDecoder(
            include_mask=include_mask,
            regenerate_source_id=bool(settings and settings.regenerate_source_id),
        )
    if decoder_type == "label_map_decoder":
        settings = decoder.label_map_decoder
        if not settings.label_map:
            raise ConfigError("`decoder.label_map_decoder.label_map` is empty: name the file")
        return tf_example_label_map_decoder.TfExampleDecoderLabelMap(
            label_map=settings.label_map,
            include_mask=include_mask,
            regenerate_source_id=settings.regenerate_source_id,
        )
    raise ConfigError(
        f"`decoder.type` = {decoder_type!r}: expected simple_decoder or label_map_decoder"
    )


def restore_modules(model: keras.Model, init_checkpoint: str | None, modules: list[str]) -> None:
    """Restores the model's `backbone` and/or `decoder` (as `modules` names them) from
    `init_checkpoint`, a checkpoint prefix or directory; nothing when it is empty.

    Raises:
      FileNotFoundError: When there is no checkpoint there.
    """
    if not init_checkpoint:
        return
    resolved = resolve_checkpoint(init_checkpoint)
    if resolved is None:
        raise FileNotFoundError(f"task.init_checkpoint: no checkpoint at {init_checkpoint!r}")
    items = {}
    if "backbone" in modules:
        items["backbone"] = model.backbone
    if "decoder" in modules and model.decoder is not None:
        items["decoder"] = model.decoder
    partial = tf.train.Checkpoint(**items)
    tf.train.Checkpoint(model=partial).read(resolved).expect_partial()


class RetinaNetTask(Task):
    """The RetinaNet task (config: `RetinaNetTask`).

    Checkpoints do not hold the training-data position: the parser's random flips and
    scale jitter are stateful, which tf.data cannot serialize. A resumed run continues from
    the checkpoint's weights and step with a freshly shuffled stream, as in Model Garden.
    """

    checkpoint_iterator = False

    #: The `garden.models` entry the model is built with.
    model_builder = MODEL_BUILDER

    def __init__(self, params: config_lib.RetinaNetTask, logging_dir=None, name=None):
        super().__init__(params, logging_dir=logging_dir, name=name)
        model = params.model
        if model.num_classes < 2:
            raise ConfigError(
                f"`task.model.num_classes` is {model.num_classes}: detection needs the "
                "background class 0 and at least one object class"
            )
        if len(model.input_size) != 3:
            raise ConfigError(
                f"`task.model.input_size` is {model.input_size!r}: expected [height, width, "
                "channels]"
            )
        stride = 2**model.max_level
        if any(side is None or side % stride for side in model.input_size[:2]):
            raise ConfigError(
                f"`task.model.input_size` is {model.input_size!r}: height and width must be "
                f"multiples of 2**max_level = {stride} (max_level {model.max_level})"
            )
        modules = params.init_checkpoint_modules
        names = [modules] if isinstance(modules, str) else list(modules or [])
        unknown = sorted(set(names) - {"all", "backbone", "decoder"})
        if unknown:
            raise ConfigError(
                f"`task.init_checkpoint_modules` = {modules!r}: expected all, backbone, "
                "decoder or a list of backbone and decoder"
            )
        self._init_modules = names
        self.coco_metric = None

    # Model.

    def build_model(self) -> keras.Model:
        config = self.task_config
        input_specs = keras.layers.InputSpec(shape=[None, *config.model.input_size])
        model = plugins.build_named(
            "models",
            self.model_builder,
            config.model,
            "task.model",
            input_specs=input_specs,
            l2_regularizer=factory.l2_regularizer(config.losses.l2_weight_decay),
        )
        if config.freeze_backbone:
            model.backbone.trainable = False
        return model

    def initialize(self, model: keras.Model) -> None:
        """Restores `init_checkpoint`: the whole model, or its backbone and/or decoder."""
        if "all" in self._init_modules:
            super().initialize(model)
        else:
            restore_modules(model, self.task_config.init_checkpoint, self._init_modules)

    # Data.

    def _read(self, params: Any, parser: Any, decoder: Any, input_context=None) -> tf.data.Dataset:
        """Reads `params`' records (preparing `garden_shapes` first) through `parser`."""
        if params.tfds_name.split("/")[0] == "garden_shapes":
            from garden_vision.datasets import shapes

            shapes.prepare(params.tfds_name, params.tfds_data_dir or None)
        reader = InputReader(
            params,
            dataset_fn=classification_input.dataset_fn(params),
            decoder_fn=decoder.decode,
            parser_fn=parser.parse_fn(params.is_training),
        )
        return reader.read(input_context)

    def build_inputs(self, params: config_lib.DataConfig, input_context=None) -> tf.data.Dataset:
        model = self.task_config.model
        parser = retinanet_input.Parser(
            **parser_kwargs(model, params),
            match_threshold=params.parser.match_threshold,
            unmatched_threshold=params.parser.unmatched_threshold,
            box_coder_weights=model.detection_generator.box_coder_weights,
        )
        return self._read(params, parser, build_decoder(params), input_context)

    # Losses and metrics.

    def _losses(self, labels: Any, outputs: Any, aux_losses: Any = None) -> dict[str, tf.Tensor]:
        config = self.task_config
        losses = config.losses
        return retinanet_losses.retinanet_losses(
            outputs,
            labels,
            num_classes=config.model.num_classes,
            focal_loss_alpha=losses.focal_loss_alpha,
            focal_loss_gamma=losses.focal_loss_gamma,
            huber_loss_delta=losses.huber_loss_delta,
            box_loss_weight=losses.box_loss_weight,
            loss_weight=losses.loss_weight,
            attribute_heads=config.model.head.attribute_heads,
            aux_losses=aux_losses,
        )

    def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
        return self._losses(labels, model_outputs, aux_losses)["total_loss"]

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        metrics = [keras.metrics.Mean(name, dtype="float32") for name in LOSS_NAMES]
        config = self.task_config
        if not training and config.use_coco_metrics:
            self.coco_metric = self._coco_evaluator(
                include_mask=False, max_num_eval_detections=config.max_num_eval_detections
            )
        return metrics

    def _coco_evaluator(self, **settings: Any) -> Any:
        """The COCO evaluator of the validation data (ground truth from the annotation file
        or gathered from the data)."""
        config = self.task_config
        if config.validation_data.tfds_name and config.annotation_file:
            raise ConfigError(
                "`task.annotation_file` is set but `task.validation_data` reads TFDS "
                f"({config.validation_data.tfds_name!r}): ground truth comes from the "
                "dataset; clear one of them"
            )
        from garden_vision.evaluation import coco_evaluator

        return coco_evaluator.COCOEvaluator(
            annotation_file=config.annotation_file or None,
            per_category_metrics=config.per_category_metrics,
            **settings,
        )

    def _update_loss_metrics(self, metrics, losses: dict[str, tf.Tensor]) -> None:
        for metric in metrics or []:
            if metric.name in losses:
                metric.update_state(losses[metric.name])

    # Steps.

    def _call_model(self, model: keras.Model, features: Any, labels: Any, training: bool):
        return model(
            features,
            anchor_boxes=labels["anchor_boxes"],
            image_shape=labels["image_info"][:, 1, :],
            training=training,
        )

    def train_step(self, inputs, model, optimizer, metrics=None):
        features, labels = inputs
        with tf.GradientTape() as tape:
            outputs = self._call_model(model, features, labels, training=True)
            outputs = tf.nest.map_structure(lambda x: tf.cast(x, tf.float32), outputs)
            losses = self._losses(labels, outputs, aux_losses=model.losses)
            loss = losses["total_loss"]
            scaled_loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                scaled_loss = optimizer.scale_loss(scaled_loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        self._update_loss_metrics(metrics, losses)
        return {self.loss: loss}

    def validation_step(self, inputs, model, metrics=None):
        features, labels = inputs
        outputs = self._call_model(model, features, labels, training=False)
        losses = self._losses(labels, outputs, aux_losses=model.losses)
        self._update_loss_metrics(metrics, losses)
        logs = {self.loss: losses["total_loss"]}
        if self.coco_metric is not None:
            predictions = {key: outputs[key] for key in _COCO_OUTPUTS}
            predictions["source_id"] = labels["groundtruths"]["source_id"]
            predictions["image_info"] = labels["image_info"]
            logs["coco_metric"] = (labels["groundtruths"], predictions)
        return logs

    def inference_step(self, inputs: Any, model: keras.Model) -> Any:
        return model(inputs, training=False)

    # Host-side COCO evaluation.

    def aggregate_logs(self, state=None, step_logs=None):
        if self.coco_metric is None or step_logs is None:
            return state
        if state is None:
            self.coco_metric.reset_states()
            state = self.coco_metric
        groundtruths, predictions = step_logs["coco_metric"]
        state.update_state(_to_numpy(groundtruths), _to_numpy(predictions))
        return state

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        if self.coco_metric is None or aggregated_logs is None:
            return {}
        results = aggregated_logs.result()
        aggregated_logs.reset_states()
        return {key: float(value) for key, value in results.items()}

    def build_export_module(self, model: keras.Model, params: Any):
        from garden_vision.serving.detection import DetectionModule

        return DetectionModule(params, model)
