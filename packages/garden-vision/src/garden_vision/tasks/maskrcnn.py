"""`MaskRCNNTask`: trains and evaluates Faster R-CNN, Mask R-CNN and Cascade R-CNN.

Data: the same records as `RetinaNetTask` (Model Garden's detection tf.Examples, with
`image/object/mask` for masks, or a TFDS detection dataset such as `coco/2017` or
`garden_shapes/multi`), parsed by `dataloaders.maskrcnn_input.Parser` into images, RPN
targets, `image_info` and padded ground-truth boxes, classes and cropped masks.
Losses (Model Garden's): the RPN score and box losses, the Fast R-CNN class and box losses
(averaged over the stages of a cascade) and the mask loss, weighted by `task.losses`.
Metrics: in training `total_loss`, `rpn_score_loss`, `rpn_box_loss`, `frcnn_cls_loss`,
`frcnn_box_loss`, `mask_loss`, `model_loss`; in evaluation the COCO box metrics (`AP`, ...)
and, with masks, the mask metrics (`mask_AP`, ...) through pycocotools.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_vision.configs import maskrcnn as config_lib
from garden_vision.dataloaders import maskrcnn_input
from garden_vision.losses import maskrcnn_losses
from garden_vision.tasks import retinanet

#: The `garden.models` entry `MaskRCNNTask` builds its model with.
MODEL_BUILDER = "maskrcnn"

#: The training loss metrics, Model Garden's names.
LOSS_NAMES = (
    "total_loss",
    "rpn_score_loss",
    "rpn_box_loss",
    "frcnn_cls_loss",
    "frcnn_box_loss",
    "mask_loss",
    "model_loss",
)

_COCO_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def _suffixed(key: str, stage: int) -> str:
    return f"{key}_{stage}" if stage else key


def zero_out_disallowed_class_ids(classes: tf.Tensor, allowed_class_ids: list[int]) -> tf.Tensor:
    """Sets every class not in `allowed_class_ids` to 0 (background: no mask loss)."""
    allowed = tf.reduce_any(
        tf.equal(classes[..., None], tf.constant(allowed_class_ids, classes.dtype)), axis=-1
    )
    return tf.where(allowed, classes, tf.zeros_like(classes))


class MaskRCNNTask(retinanet.RetinaNetTask):
    """The Faster / Mask / Cascade R-CNN task (config: `MaskRCNNTask`).

    Model Garden's `RetinaNetTask` contract with its Mask R-CNN losses; the checks of the
    model's input size and `init_checkpoint_modules` are the RetinaNet task's.
    """

    model_builder = MODEL_BUILDER

    # Data.

    def build_inputs(self, params: config_lib.DataConfig, input_context=None) -> tf.data.Dataset:
        model = self.task_config.model
        parser_config = params.parser
        parser = maskrcnn_input.Parser(
            **retinanet.parser_kwargs(model, params),
            rpn_match_threshold=parser_config.rpn_match_threshold,
            rpn_unmatched_threshold=parser_config.rpn_unmatched_threshold,
            rpn_batch_size_per_im=parser_config.rpn_batch_size_per_im,
            rpn_fg_fraction=parser_config.rpn_fg_fraction,
            aug_rand_vflip=parser_config.aug_rand_vflip,
            include_mask=model.include_mask,
            outer_boxes_scale=model.outer_boxes_scale,
            mask_crop_size=parser_config.mask_crop_size,
        )
        decoder = retinanet.build_decoder(params, include_mask=model.include_mask)
        return self._read(params, parser, decoder, input_context)

    # Losses and metrics.

    def _losses(self, labels: Any, outputs: Any, aux_losses: Any = None) -> dict[str, tf.Tensor]:
        config = self.task_config
        losses = config.losses
        # Model Garden normalizes the RPN score loss by the number of sampled ROIs per image
        # (the second dimension of the detection head's box outputs).
        rpn_score_loss = tf.reduce_mean(
            maskrcnn_losses.RpnScoreLoss(tf.shape(outputs["box_outputs"])[1])(
                outputs["rpn_scores"], labels["rpn_score_targets"]
            )
        )
        rpn_box_loss = tf.reduce_mean(
            maskrcnn_losses.RpnBoxLoss(losses.rpn_huber_loss_delta)(
                outputs["rpn_boxes"], labels["rpn_box_targets"]
            )
        )
        class_loss_fn = maskrcnn_losses.FastrcnnClassLoss(
            use_binary_cross_entropy=losses.frcnn_class_use_binary_cross_entropy,
            top_k_percent=losses.frcnn_class_loss_top_k_percent,
        )
        box_loss_fn = maskrcnn_losses.FastrcnnBoxLoss(
            losses.frcnn_huber_loss_delta, config.model.detection_head.class_agnostic_bbox_pred
        )
        stages = 1 + len(config.model.roi_sampler.cascade_iou_thresholds or [])
        frcnn_cls_loss = frcnn_box_loss = 0.0
        for stage in range(stages):
            targets = outputs[_suffixed("class_targets", stage)]
            frcnn_cls_loss += tf.reduce_mean(
                class_loss_fn(
                    outputs[_suffixed("class_outputs", stage)], targets, losses.class_weights
                )
            )
            frcnn_box_loss += tf.reduce_mean(
                box_loss_fn(
                    outputs[_suffixed("box_outputs", stage)],
                    targets,
                    outputs[_suffixed("box_targets", stage)],
                )
            )
        frcnn_cls_loss /= stages
        frcnn_box_loss /= stages
        if config.model.include_mask:
            mask_classes = outputs["mask_class_targets"]
            if config.allowed_mask_class_ids is not None:
                mask_classes = zero_out_disallowed_class_ids(
                    mask_classes, config.allowed_mask_class_ids
                )
            mask_loss = tf.reduce_mean(
                maskrcnn_losses.MaskrcnnLoss()(
                    outputs["mask_outputs"], outputs["mask_targets"], mask_classes
                )
            )
        else:
            mask_loss = tf.constant(0.0)
        model_loss = (
            losses.rpn_score_weight * rpn_score_loss
            + losses.rpn_box_weight * rpn_box_loss
            + losses.frcnn_class_weight * frcnn_cls_loss
            + losses.frcnn_box_weight * frcnn_box_loss
            + losses.mask_weight * mask_loss
        )
        total_loss = model_loss
        if aux_losses:
            total_loss = model_loss + tf.add_n([tf.cast(x, tf.float32) for x in aux_losses])
        return {
            "total_loss": losses.loss_weight * total_loss,
            "rpn_score_loss": rpn_score_loss,
            "rpn_box_loss": rpn_box_loss,
            "frcnn_cls_loss": frcnn_cls_loss,
            "frcnn_box_loss": frcnn_box_loss,
            "mask_loss": mask_loss,
            "model_loss": model_loss,
        }

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        if training:
            return [keras.metrics.Mean(name, dtype="float32") for name in LOSS_NAMES]
        if self.task_config.use_coco_metrics:
            self.coco_metric = self._coco_evaluator(
                include_mask=self.task_config.model.include_mask
            )
        return []

    # Steps.

    def _call_model(self, model: keras.Model, features: Any, labels: Any, training: bool):
        extra = {}
        if training:
            extra = {"gt_boxes": labels["gt_boxes"], "gt_classes": labels["gt_classes"]}
            if self.task_config.model.include_mask:
                extra["gt_masks"] = labels["gt_masks"]
            if self.task_config.model.outer_boxes_scale > 1.0:
                extra["gt_outer_boxes"] = labels["gt_outer_boxes"]
        return model(
            features,
            image_shape=labels["image_info"][:, 1, :],
            anchor_boxes=labels["anchor_boxes"],
            training=training,
            **extra,
        )

    def validation_step(self, inputs, model, metrics=None):
        features, labels = inputs
        outputs = self._call_model(model, features, labels, training=False)
        # No loss (as in Model Garden): the model samples no ROIs against the ground truth
        # at inference, so there are no targets to compute one on.
        logs = {}
        if self.coco_metric is not None:
            keys = _COCO_OUTPUTS + (
                ("detection_masks",) if self.task_config.model.include_mask else ()
            )
            predictions = {key: outputs[key] for key in keys}
            predictions["source_id"] = labels["groundtruths"]["source_id"]
            predictions["image_info"] = labels["image_info"]
            logs["coco_metric"] = (labels["groundtruths"], predictions)
        return logs

    def build_export_module(self, model: keras.Model, params: Any):
        from garden_vision.serving.detection import MaskRCNNModule

        return MaskRCNNModule(params, model)
