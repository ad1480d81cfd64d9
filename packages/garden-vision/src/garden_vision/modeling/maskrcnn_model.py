"""`MaskRCNNModel`: Faster R-CNN, Mask R-CNN and Cascade R-CNN (Model Garden's).

A two-stage detector (Ren et al., 2015; He et al., 2017; Cai and Vasconcelos, 2018): a
backbone and a feature pyramid give features at levels `min_level` to `max_level`; a region
proposal network (the RPN head) scores and refines anchors, and the ROI generator keeps the
best proposals after non-maximum suppression. In training the ROI sampler mixes the ground
truth into the proposals and samples foreground and background ROIs with their targets.
ROIAlign crops a fixed-size feature for each ROI from the level its size belongs to, and the
detection head classifies it and refines its box (class-specific offsets, or one box for
every class). Cascade R-CNN repeats that last stage with more detection heads, each on the
boxes the previous one refined and sampled at a higher IoU. With a mask head (Mask R-CNN),
each foreground ROI also gets a mask of its class, trained against the ground-truth mask
cropped to the ROI (the mask sampler) and predicted at inference for every detection.

The model is built by `garden_vision.modeling.factory.build_maskrcnn` from a
`configs.maskrcnn.MaskRCNN` config (the `maskrcnn` entry of `garden.models`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from garden_vision.ops import box_ops
from garden_vision.ops.anchor import Anchor

#: Box-coder weights of the detection heads of a cascade, in order (Model Garden's): later
#: stages regress smaller offsets, so their targets are scaled up more.
CASCADE_REGRESSION_WEIGHTS = (
    (10.0, 10.0, 5.0, 5.0),
    (20.0, 20.0, 10.0, 10.0),
    (30.0, 30.0, 15.0, 15.0),
)


def _serialize(layer: Any) -> Any:
    if layer is None:
        return None
    if isinstance(layer, (list, tuple)):
        return [keras.saving.serialize_keras_object(item) for item in layer]
    return keras.saving.serialize_keras_object(layer)


def _deserialize(config: Any, custom_objects: Any) -> Any:
    if config is None:
        return None
    if isinstance(config, list):
        return [
            keras.saving.deserialize_keras_object(c, custom_objects=custom_objects) for c in config
        ]
    return keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)


def _suffixed(key: str, stage: int) -> str:
    """Model Garden's output names: `class_outputs`, then `class_outputs_1`, ..."""
    return f"{key}_{stage}" if stage else key


@keras.saving.register_keras_serializable(package="garden_vision")
class MaskRCNNModel(keras.Model):
    """The Faster R-CNN, Mask R-CNN and Cascade R-CNN detector.

    Called as `model(images, image_shape, anchor_boxes=None, gt_boxes=None,
    gt_classes=None, gt_masks=None, gt_outer_boxes=None, training=None)` on
    `[batch, height, width, 3]` images with `image_shape` `[batch, 2]` (each image's height
    and width without padding), it returns a dict with Model Garden's keys:

    - always `backbone_features`, `decoder_features` (level -> features), `rpn_scores` and
      `rpn_boxes` (level -> `[batch, H_l, W_l, A]` logits and `[batch, H_l, W_l, A * 4]`
      offsets), and per detection stage `class_outputs` and `box_outputs` (`_1`, `_2`
      suffixes for later cascade stages);
    - in training, per stage the sampled ROIs' `class_targets` and `box_targets`, and with
      masks `mask_outputs` (logits), `mask_targets` and `mask_class_targets`: the inputs of
      `losses.maskrcnn_losses`;
    - at inference `detection_boxes` (`[batch, M, 4]` pixel yxyx), `detection_scores`,
      `detection_classes`, `num_detections` (or `decoded_boxes` and `decoded_box_scores`
      when the generator applies no NMS), `cls_outputs` and `box_outputs` of the last
      stage, and with masks `detection_masks` (`[batch, M, mask_h, mask_w]`
      probabilities, to be pasted into each detection's box).

    Anchors are those given to the call, or made from the images' static height and width
    with `min_level`, `max_level`, `num_scales`, `aspect_ratios` and `anchor_size`.

    Args:
      backbone: A backbone returning a dict of features by level.
      decoder: A decoder mapping those to the heads' levels (e.g. FPN), or None.
      rpn_head: The region proposal head (`heads.RPNHead`).
      detection_head: The detection head (`heads.DetectionHead`), or one per cascade stage.
      roi_generator: Turns RPN outputs into proposals (`layers.MultilevelROIGenerator`).
      roi_sampler: Samples training ROIs (`layers.ROISampler`), or one per cascade stage.
      roi_aligner: Crops ROI features (`layers.MultilevelROIAligner`).
      detection_generator: Inference post-processing (`layers.DetectionGenerator`).
      mask_head: The mask head (`heads.MaskHead`), or None for Faster R-CNN.
      mask_sampler: Mask targets of the sampled ROIs (`layers.MaskSampler`); needed with a
        mask head.
      mask_roi_aligner: Crops the mask head's ROI features; needed with a mask head.
      class_agnostic_bbox_pred: Whether the detection heads predict one box for all
        classes (required by cascades).
      cascade_class_ensemble: Whether inference averages the class scores of all stages.
      min_level, max_level: The levels of the pyramid.
      num_scales: Anchor scales per octave.
      aspect_ratios: Anchor width / height ratios.
      anchor_size: The base anchor side in strides.
      outer_boxes_scale: Masks are predicted in boxes enlarged by this factor (at least 1).
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ValueError: For several ROI samplers without `class_agnostic_bbox_pred`, a mask head
        without a mask sampler or mask ROI aligner, a number of detection heads other than
        the number of ROI samplers, more stages than `CASCADE_REGRESSION_WEIGHTS`, or an
        `outer_boxes_scale` below 1.
    """

    def __init__(
        self,
        backbone: keras.Model,
        decoder: keras.layers.Layer | None,
        rpn_head: keras.layers.Layer,
        detection_head: keras.layers.Layer | Sequence[keras.layers.Layer],
        roi_generator: keras.layers.Layer,
        roi_sampler: keras.layers.Layer | Sequence[keras.layers.Layer],
        roi_aligner: keras.layers.Layer,
        detection_generator: keras.layers.Layer,
        mask_head: keras.layers.Layer | None = None,
        mask_sampler: keras.layers.Layer | None = None,
        mask_roi_aligner: keras.layers.Layer | None = None,
        class_agnostic_bbox_pred: bool = False,
        cascade_class_ensemble: bool = False,
        min_level: int | None = None,
        max_level: int | None = None,
        num_scales: int | None = None,
        aspect_ratios: Sequence[float] | None = None,
        anchor_size: float | None = None,
        outer_boxes_scale: float = 1.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        heads = (
            list(detection_head) if isinstance(detection_head, (list, tuple)) else [detection_head]
        )
        samplers = list(roi_sampler) if isinstance(roi_sampler, (list, tuple)) else [roi_sampler]
        if len(samplers) > 1 and not class_agnostic_bbox_pred:
            raise ValueError(
                "MaskRCNNModel: a cascade (several ROI samplers) needs "
                "class_agnostic_bbox_pred=True"
            )
        if len(heads) != len(samplers):
            raise ValueError(
                f"MaskRCNNModel: {len(heads)} detection heads for {len(samplers)} ROI "
                "samplers; a cascade needs one head per stage"
            )
        if len(samplers) > len(CASCADE_REGRESSION_WEIGHTS):
            raise ValueError(
                f"MaskRCNNModel: {len(samplers)} cascade stages; at most "
                f"{len(CASCADE_REGRESSION_WEIGHTS)} are supported"
            )
        if mask_head is not None and (mask_sampler is None or mask_roi_aligner is None):
            raise ValueError(
                "MaskRCNNModel: a mask head needs a mask_sampler and a mask_roi_aligner"
            )
        if outer_boxes_scale < 1.0:
            raise ValueError(
                f"MaskRCNNModel: outer_boxes_scale must be >= 1.0, got {outer_boxes_scale}"
            )
        self.backbone = backbone
        self.decoder = decoder
        self.rpn_head = rpn_head
        # Each stage's head is an attribute of its own (`detection_head`, `detection_head_1`,
        # ...): `tf.train.Checkpoint` does not see layers a Keras 3 model holds in a list, so
        # their weights would be missing from training checkpoints.
        self._detection_head_names = [_suffixed("detection_head", i) for i in range(len(heads))]
        for name, head in zip(self._detection_head_names, heads, strict=True):
            setattr(self, name, head)
        self.roi_generator = roi_generator
        self.roi_sampler = samplers
        self.roi_aligner = roi_aligner
        self.detection_generator = detection_generator
        self.mask_head = mask_head
        self.mask_sampler = mask_sampler
        self.mask_roi_aligner = mask_roi_aligner
        self.class_agnostic_bbox_pred = bool(class_agnostic_bbox_pred)
        self.cascade_class_ensemble = bool(cascade_class_ensemble)
        self.min_level = min_level
        self.max_level = max_level
        self.num_scales = num_scales
        self.aspect_ratios = None if aspect_ratios is None else [float(r) for r in aspect_ratios]
        self.anchor_size = anchor_size
        self.outer_boxes_scale = float(outer_boxes_scale)

    @property
    def include_mask(self) -> bool:
        return self.mask_head is not None

    @property
    def detection_heads(self) -> list[keras.layers.Layer]:
        """The detection head of each stage (one without a cascade)."""
        return [getattr(self, name) for name in self._detection_head_names]

    @property
    def checkpoint_items(self) -> dict[str, Any]:
        """Sub-modules a partial checkpoint restore can name (`init_checkpoint_modules`)."""
        items: dict[str, Any] = {
            "backbone": self.backbone,
            "rpn_head": self.rpn_head,
            **{name: getattr(self, name) for name in self._detection_head_names},
        }
        if self.decoder is not None:
            items["decoder"] = self.decoder
        if self.mask_head is not None:
            items["mask_head"] = self.mask_head
        return items

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Creates every weight: the backbone, decoder and RPN head run symbolically, the
        detection and mask heads are built for the ROI features the aligners give."""
        images = keras.KerasTensor(tuple(input_shape), dtype=self.compute_dtype)
        features = self.backbone(images)
        if self.decoder is not None:
            features = self.decoder(features)
        self.rpn_head(features)
        channels = next(iter(features.values())).shape[-1]
        crop = self.roi_aligner.get_config()["crop_size"]
        for head in self.detection_heads:
            if not head.built:
                head.build((None, None, crop, crop, channels))
        if self.mask_head is not None and not self.mask_head.built:
            crop = self.mask_roi_aligner.get_config()["crop_size"]
            self.mask_head.build([(None, None, crop, crop, channels), (None, None)])
        self.built = True

    # Building blocks.

    def _features(self, images: tf.Tensor, training: bool | None):
        backbone_features = self.backbone(images, training=training)
        if self.decoder is None:
            return backbone_features, backbone_features
        return backbone_features, self.decoder(backbone_features, training=training)

    def _make_anchors(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        missing = [
            name
            for name in ("min_level", "max_level", "num_scales", "aspect_ratios", "anchor_size")
            if getattr(self, name) is None
        ]
        if missing:
            raise ValueError(
                f"MaskRCNNModel: to make anchors it needs {missing} (or `anchor_boxes` in the call)"
            )
        height, width = images.shape[1], images.shape[2]
        if height is None or width is None:
            raise ValueError(
                f"MaskRCNNModel: images of unknown height or width (shape "
                f"{tuple(images.shape)}) need `anchor_boxes`"
            )
        anchors = Anchor(
            min_level=self.min_level,
            max_level=self.max_level,
            num_scales=self.num_scales,
            aspect_ratios=self.aspect_ratios,
            anchor_size=self.anchor_size,
            image_size=(height, width),
        ).multilevel_boxes
        batch_size = tf.shape(images)[0]
        return {
            level: tf.tile(boxes[None], [batch_size, 1, 1, 1]) for level, boxes in anchors.items()
        }

    def _run_detection_stage(
        self,
        stage: int,
        features: Mapping[str, tf.Tensor],
        rois: tf.Tensor,
        gt_boxes: tf.Tensor | None,
        gt_classes: tf.Tensor | None,
        gt_outer_boxes: tf.Tensor | None,
        outputs: dict[str, Any],
        training: bool | None,
    ):
        """One detection stage: sample (training), align, classify and regress."""
        matched = {}
        if training and gt_boxes is not None:
            rois = tf.stop_gradient(rois)
            sampler = self.roi_sampler[stage]
            if self.outer_boxes_scale > 1.0:
                sampled = sampler(rois, gt_boxes, gt_classes, gt_outer_boxes)
                rois, boxes, outer_boxes, classes, indices = sampled
                matched["outer_boxes"] = outer_boxes
            else:
                rois, boxes, classes, indices = sampler(rois, gt_boxes, gt_classes)
            matched.update(boxes=boxes, classes=classes, indices=indices)
            box_targets = box_ops.encode_boxes(
                boxes, rois, weights=list(CASCADE_REGRESSION_WEIGHTS[stage])
            )
            # Background ROIs (class 0) regress nothing.
            box_targets = tf.where(
                tf.equal(classes, 0)[..., None], tf.zeros_like(box_targets), box_targets
            )
            outputs[_suffixed("class_targets", stage)] = classes
            outputs[_suffixed("box_targets", stage)] = box_targets
        roi_features = self.roi_aligner(features, rois, training=training)
        head = getattr(self, self._detection_head_names[stage])
        class_outputs, box_outputs = head(roi_features, training=training)
        outputs[_suffixed("class_outputs", stage)] = class_outputs
        outputs[_suffixed("box_outputs", stage)] = box_outputs
        return class_outputs, box_outputs, rois, matched

    def _mask_logits(self, features, rois, roi_classes, training):
        roi_features = self.mask_roi_aligner(features, rois, training=training)
        return self.mask_head([roi_features, roi_classes], training=training)

    # Call.

    def call(
        self,
        images: tf.Tensor,
        image_shape: tf.Tensor | None = None,
        anchor_boxes: Mapping[str, tf.Tensor] | None = None,
        gt_boxes: tf.Tensor | None = None,
        gt_classes: tf.Tensor | None = None,
        gt_masks: tf.Tensor | None = None,
        gt_outer_boxes: tf.Tensor | None = None,
        training: bool | None = None,
    ) -> dict[str, Any]:
        """Runs the detector (see the class docstring for the outputs).

        Args:
          images: `[batch, height, width, channels]` images.
          image_shape: `[batch, 2]` height and width of each image without padding (None:
            the whole image).
          anchor_boxes: Level -> `[batch, H_l, W_l, A * 4]` (or unbatched) pixel anchors,
            or None to make them from the images' size.
          gt_boxes: Training: `[batch, max_instances, 4]` pixel boxes, padded with -1.
          gt_classes: Training: `[batch, max_instances]` classes, padded with -1.
          gt_masks: Training with masks: `[batch, max_instances, mask_h, mask_w]` masks
            cropped to each ground-truth box (the parser's `gt_masks`).
          gt_outer_boxes: Training with `outer_boxes_scale > 1`: the enlarged gt boxes.
          training: Training mode.
        """
        batch_size = tf.shape(images)[0]
        if image_shape is None:
            size = tf.cast(tf.shape(images)[1:3], tf.float32)
            image_shape = tf.tile(size[None], [batch_size, 1])
        image_shape = tf.cast(image_shape, tf.float32)
        backbone_features, features = self._features(images, training)
        rpn_scores, rpn_boxes = self.rpn_head(features, training=training)
        outputs: dict[str, Any] = {
            "backbone_features": backbone_features,
            "decoder_features": features,
            "rpn_boxes": rpn_boxes,
            "rpn_scores": rpn_scores,
        }
        if anchor_boxes is None:
            anchor_boxes = self._make_anchors(images)
        else:
            anchor_boxes = {
                str(level): boxes
                if len(boxes.shape) == 4
                else tf.tile(tf.convert_to_tensor(boxes)[None], [batch_size, 1, 1, 1])
                for level, boxes in anchor_boxes.items()
            }
        rois, _ = self.roi_generator(
            rpn_boxes, rpn_scores, anchor_boxes, image_shape, training=training
        )

        all_class_outputs = []
        stages = len(self.roi_sampler)
        matched: dict[str, tf.Tensor] = {}
        for stage in range(stages):
            class_outputs, box_outputs, rois, matched = self._run_detection_stage(
                stage, features, rois, gt_boxes, gt_classes, gt_outer_boxes, outputs, training
            )
            all_class_outputs.append(class_outputs)
            if stage < stages - 1:
                rois = box_ops.decode_boxes(
                    tf.cast(box_outputs, tf.float32),
                    rois,
                    weights=list(CASCADE_REGRESSION_WEIGHTS[stage]),
                )
                rois = box_ops.clip_boxes(rois, image_shape[:, None, :])

        if not training:
            if self.cascade_class_ensemble:
                class_outputs = tf.add_n(all_class_outputs) / len(all_class_outputs)
            detections = self.detection_generator(
                box_outputs,
                class_outputs,
                rois,
                image_shape,
                regression_weights=list(CASCADE_REGRESSION_WEIGHTS[stages - 1]),
                bbox_per_class=not self.class_agnostic_bbox_pred,
            )
            outputs["cls_outputs"] = class_outputs
            outputs["box_outputs"] = box_outputs
            if self.detection_generator.get_config().get("apply_nms", True):
                for key in ("detection_boxes", "detection_scores", "detection_classes"):
                    outputs[key] = detections[key]
                outputs["num_detections"] = detections["num_detections"]
                if self.outer_boxes_scale > 1.0:
                    outputs["detection_outer_boxes"] = box_ops.compute_outer_boxes(
                        detections["detection_boxes"],
                        image_shape[:, None, :],
                        self.outer_boxes_scale,
                    )
            else:
                outputs["decoded_boxes"] = detections["decoded_boxes"]
                outputs["decoded_box_scores"] = detections["decoded_box_scores"]

        if not self.include_mask:
            return outputs
        if training:
            mask_rois = rois
            matched_boxes = matched.get("boxes")
            if self.outer_boxes_scale > 1.0:
                mask_rois = box_ops.compute_outer_boxes(
                    rois, image_shape[:, None, :], self.outer_boxes_scale
                )
                matched_boxes = matched.get("outer_boxes")
            mask_rois, roi_classes, roi_masks = self.mask_sampler(
                mask_rois,
                matched_boxes,
                matched.get("classes"),
                matched.get("indices"),
                gt_masks,
            )
            outputs["mask_class_targets"] = roi_classes
            outputs["mask_targets"] = tf.stop_gradient(roi_masks)
            outputs["mask_outputs"] = self._mask_logits(features, mask_rois, roi_classes, training)
        else:
            if "detection_boxes" not in outputs:
                raise ValueError(
                    "MaskRCNNModel: mask prediction needs the detection generator to apply NMS"
                )
            mask_rois = outputs.get("detection_outer_boxes", outputs["detection_boxes"])
            logits = self._mask_logits(features, mask_rois, outputs["detection_classes"], training)
            outputs["detection_masks"] = tf.sigmoid(logits)
        return outputs

    # Serialization.

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "backbone": _serialize(self.backbone),
            "decoder": _serialize(self.decoder),
            "rpn_head": _serialize(self.rpn_head),
            "detection_head": _serialize(self.detection_heads),
            "roi_generator": _serialize(self.roi_generator),
            "roi_sampler": _serialize(self.roi_sampler),
            "roi_aligner": _serialize(self.roi_aligner),
            "detection_generator": _serialize(self.detection_generator),
            "mask_head": _serialize(self.mask_head),
            "mask_sampler": _serialize(self.mask_sampler),
            "mask_roi_aligner": _serialize(self.mask_roi_aligner),
            "class_agnostic_bbox_pred": self.class_agnostic_bbox_pred,
            "cascade_class_ensemble": self.cascade_class_ensemble,
            "min_level": self.min_level,
            "max_level": self.max_level,
            "num_scales": self.num_scales,
            "aspect_ratios": self.aspect_ratios,
            "anchor_size": self.anchor_size,
            "outer_boxes_scale": self.outer_boxes_scale,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> MaskRCNNModel:
        config = dict(config)
        for key in (
            "backbone",
            "decoder",
            "rpn_head",
            "detection_head",
            "roi_generator",
            "roi_sampler",
            "roi_aligner",
            "detection_generator",
            "mask_head",
            "mask_sampler",
            "mask_roi_aligner",
        ):
            config[key] = _deserialize(config.get(key), custom_objects)
        return cls(**config)
