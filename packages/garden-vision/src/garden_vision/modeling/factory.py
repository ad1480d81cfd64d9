"""Builds task models from their configs: `build_classification_model`, `build_retinanet`,
`build_maskrcnn`, `build_segmentation_model`.

Models are built from their parts' registries: the backbone from `garden.backbones`
(`backbone.type`), the decoder from `garden.decoders` (`decoder.type`), the head from
`garden.heads` (`classification`, `retinanet`, `segmentation`, ...). The model builders
themselves are entries of `garden.models` (`image_classification`:
`build_image_classification_model`; `retinanet`: `build_retinanet_model`; `maskrcnn`:
`build_maskrcnn_model`; `semantic_segmentation`: `build_semantic_segmentation_model`),
which the tasks build through `garden_core.plugins`:

    builder(input_specs=..., l2_regularizer=..., **fields of task.model)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from garden_core import plugins
from garden_core.config import ConfigError
from garden_vision.configs import backbones as backbone_configs
from garden_vision.configs import common
from garden_vision.configs import decoders as decoder_configs
from garden_vision.configs import retinanet as retinanet_configs
from garden_vision.configs.image_classification import ImageClassificationModel
from garden_vision.configs.retinanet import RetinaNet
from garden_vision.modeling import regularizers
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.classification_model import ClassificationModel, _head_features
from garden_vision.modeling.decoders.factory import build_decoder
from garden_vision.modeling.heads.factory import build_head
from garden_vision.modeling.layers.detection_generator import MultilevelDetectionGenerator
from garden_vision.modeling.maskrcnn_model import MaskRCNNModel
from garden_vision.modeling.retinanet_model import RetinaNetModel
from garden_vision.modeling.segmentation_model import SegmentationModel

#: The registered head the classification model is built with.
CLASSIFICATION_HEAD = "classification"


def l2_regularizer(l2_weight_decay: float) -> keras.regularizers.Regularizer | None:
    """Kernel regularization for an L2 weight decay (Model Garden: `l2(decay / 2)`)."""
    return regularizers.L2(l2_weight_decay / 2.0) if l2_weight_decay else None


def build_classification_model(
    input_specs: keras.layers.InputSpec,
    model_config: ImageClassificationModel,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    skip_logits_layer: bool = False,
    backbone: keras.Model | None = None,
    where: str = "task.model",
) -> ClassificationModel:
    """Returns the `ClassificationModel` `model_config` describes.

    The backbone comes from the `garden.backbones` registry (`model_config.backbone`), the
    head (and DeiT's distillation head) from `garden.heads` (`classification`, with the
    config's `dropout_rate`, `add_head_batch_norm`, `kernel_initializer` and
    `output_softmax`).

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`.
      model_config: The model config.
      l2_regularizer: Kernel regularizer of the backbone and head, or None.
      skip_logits_layer: Return pooled features instead of logits.
      backbone: A backbone to use instead of building the configured one.
      where: The dotted path of `model_config` in the experiment config, for messages.

    Raises:
      ConfigError: If a component cannot be built from its settings.
    """
    norm_activation = model_config.norm_activation
    if backbone is None:
        backbone = build_backbone(
            input_specs=input_specs,
            backbone_config=model_config.backbone,
            norm_activation_config=norm_activation,
            l2_regularizer=l2_regularizer,
            where=f"{where}.backbone",
        )
    endpoints = getattr(backbone, "output_specs", None)
    if endpoints is None:
        outputs = backbone.output
        endpoints = {
            key: tuple(value.shape)
            for key, value in (outputs.items() if isinstance(outputs, dict) else [("", outputs)])
        }
    try:
        features = _head_features(endpoints)
    except ValueError as error:
        raise ConfigError(f"`{where}.backbone`: {error}") from None
    head_settings: dict[str, Any] = {
        "dropout_rate": model_config.dropout_rate,
        "add_head_batch_norm": model_config.add_head_batch_norm,
        "kernel_initializer": model_config.kernel_initializer,
        "output_softmax": model_config.output_softmax,
    }
    if skip_logits_layer:
        head_settings["skip_logits_layer"] = True

    def head(features_spec):
        return build_head(
            CLASSIFICATION_HEAD,
            where,
            input_specs=features_spec,
            num_classes=model_config.num_classes,
            norm_activation_config=norm_activation,
            l2_regularizer=l2_regularizer,
            settings=head_settings,
        )

    distillation = "distilled" in endpoints and not skip_logits_layer
    return ClassificationModel(
        backbone=backbone,
        num_classes=model_config.num_classes,
        input_specs=input_specs,
        dropout_rate=model_config.dropout_rate,
        kernel_initializer=model_config.kernel_initializer,
        kernel_regularizer=l2_regularizer,
        add_head_batch_norm=model_config.add_head_batch_norm,
        use_sync_bn=norm_activation.use_sync_bn,
        norm_momentum=norm_activation.norm_momentum,
        norm_epsilon=norm_activation.norm_epsilon,
        skip_logits_layer=skip_logits_layer,
        output_softmax=model_config.output_softmax,
        head=head(features),
        distillation_head=head(endpoints["distilled"]) if distillation else None,
    )


def build_image_classification_model(
    input_specs: keras.layers.InputSpec,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    num_classes: int,
    backbone: backbone_configs.Backbone,
    norm_activation: common.NormActivation,
    input_size: list[int | None] | None = None,
    dropout_rate: float = 0.0,
    add_head_batch_norm: bool = False,
    kernel_initializer: str = "random_uniform",
    output_softmax: bool = False,
) -> ClassificationModel:
    """Builds a `ClassificationModel` (the `image_classification` entry of `garden.models`).

    The keyword settings are the fields of `ImageClassificationModel` (`task.model`).

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`;
        it is what `input_size` describes.
      l2_regularizer: Kernel regularizer of the backbone and head, or None.
      num_classes, backbone, norm_activation, input_size, dropout_rate, add_head_batch_norm,
        kernel_initializer, output_softmax: As in `ImageClassificationModel`.

    Raises:
      ConfigError: If a component cannot be built from its settings.
    """
    config = ImageClassificationModel(
        num_classes=num_classes,
        input_size=list(input_size or input_specs.shape[1:]),
        backbone=backbone,
        dropout_rate=dropout_rate,
        norm_activation=norm_activation,
        add_head_batch_norm=add_head_batch_norm,
        kernel_initializer=kernel_initializer,
        output_softmax=output_softmax,
    )
    return build_classification_model(input_specs, config, l2_regularizer)


#: The registered head the RetinaNet model is built with.
RETINANET_HEAD = "retinanet"


def _feature_levels(specs: Any, model_config: RetinaNet, source: str, where: str) -> list[Any]:
    """The feature shapes of levels `min_level` to `max_level`, in order."""
    levels = [str(level) for level in range(model_config.min_level, model_config.max_level + 1)]
    specs = dict(specs or {})
    missing = [level for level in levels if level not in specs]
    if missing:
        raise ConfigError(
            f"`{where}`: the head reads levels {levels} (`min_level` to `max_level`), but the "
            f"{source} gives {sorted(specs, key=lambda key: (not key.isdigit(), key))}; "
            f"levels {missing} are missing"
        )
    return [tuple(specs[level]) for level in levels]


def _backbone_and_decoder(
    input_specs: keras.layers.InputSpec,
    model_config: Any,
    l2_regularizer: keras.regularizers.Regularizer | None,
    backbone: keras.Model | None,
    decoder: keras.layers.Layer | None,
    where: str,
) -> tuple[keras.Model, keras.layers.Layer | None, list[Any]]:
    """A detector's backbone and decoder (the given ones, or built from `model_config`) and
    the feature shapes of levels `min_level` to `max_level` its heads read."""
    if backbone is None:
        backbone = build_backbone(
            input_specs=input_specs,
            backbone_config=model_config.backbone,
            norm_activation_config=model_config.norm_activation,
            l2_regularizer=l2_regularizer,
            where=f"{where}.backbone",
        )
    if decoder is None:
        decoder = build_decoder(
            input_specs=backbone.output_specs,
            model_config=model_config,
            l2_regularizer=l2_regularizer,
            where=f"{where}.decoder",
        )
    source, specs = (
        ("decoder", decoder.output_specs)
        if decoder is not None
        else ("backbone", backbone.output_specs)
    )
    return backbone, decoder, _feature_levels(specs, model_config, source, where)


def build_retinanet(
    input_specs: keras.layers.InputSpec,
    model_config: RetinaNet,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    backbone: keras.Model | None = None,
    decoder: keras.layers.Layer | None = None,
    num_anchors_per_location: int | dict[str, int] | None = None,
    anchor_boxes: Mapping[str, Any] | None = None,
    where: str = "task.model",
) -> RetinaNetModel:
    """Returns the `RetinaNetModel` `model_config` describes, with every weight built.

    The backbone comes from `garden.backbones` (`model_config.backbone`), the decoder from
    `garden.decoders` (`model_config.decoder`; none when its `type` is None), the head from
    `garden.heads` (`retinanet`, with the fields of `model_config.head` plus `min_level`,
    `max_level` and `num_anchors_per_location`), and the detection generator is a
    `MultilevelDetectionGenerator` with `model_config.detection_generator`'s settings.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`.
      model_config: The model config.
      l2_regularizer: Kernel regularizer of the backbone, decoder and head, or None.
      backbone: A backbone to use instead of building the configured one.
      decoder: A decoder to use instead of building the configured one.
      num_anchors_per_location: Anchors per position (an int, or level -> int); by
        default `num_scales * len(aspect_ratios)` of `model_config.anchor`.
      anchor_boxes: Fixed inference anchors (level -> `[H_l, W_l, A * 4]`); by default
        the model makes them from the image size and `model_config.anchor`.
      where: The dotted path of `model_config` in the experiment config, for messages.

    Raises:
      ConfigError: If a component cannot be built from its settings, or the decoder (or
        backbone) does not give every level the head reads.
    """
    norm_activation = model_config.norm_activation
    backbone, decoder, feature_specs = _backbone_and_decoder(
        input_specs, model_config, l2_regularizer, backbone, decoder, where
    )

    anchor = model_config.anchor
    head_settings = {
        **plugins.fields_of(model_config.head),
        "min_level": model_config.min_level,
        "max_level": model_config.max_level,
        "num_anchors_per_location": (
            num_anchors_per_location or anchor.num_scales * len(anchor.aspect_ratios)
        ),
    }
    head = build_head(
        RETINANET_HEAD,
        f"{where}.head",
        input_specs=feature_specs,
        num_classes=model_config.num_classes,
        norm_activation_config=norm_activation,
        l2_regularizer=l2_regularizer,
        settings=head_settings,
    )

    generator = model_config.detection_generator
    tflite_post_processing = generator.tflite_post_processing.as_dict()
    tflite_post_processing["input_image_size"] = tuple(input_specs.shape[1:3])
    detection_generator = MultilevelDetectionGenerator(
        apply_nms=generator.apply_nms,
        pre_nms_top_k=generator.pre_nms_top_k,
        pre_nms_score_threshold=generator.pre_nms_score_threshold,
        nms_iou_threshold=generator.nms_iou_threshold,
        max_num_detections=generator.max_num_detections,
        nms_version=generator.nms_version,
        use_cpu_nms=generator.use_cpu_nms,
        soft_nms_sigma=generator.soft_nms_sigma,
        tflite_post_processing_config=tflite_post_processing,
        return_decoded=generator.return_decoded,
        use_class_agnostic_nms=generator.use_class_agnostic_nms,
        box_coder_weights=generator.box_coder_weights,
    )

    fixed = anchor_boxes is not None
    model = RetinaNetModel(
        backbone,
        decoder,
        head,
        detection_generator,
        anchor_boxes=anchor_boxes,
        min_level=model_config.min_level,
        max_level=model_config.max_level,
        num_scales=None if fixed else anchor.num_scales,
        aspect_ratios=None if fixed else list(anchor.aspect_ratios),
        anchor_size=None if fixed else anchor.anchor_size,
    )
    model.build(tuple(input_specs.shape))
    return model


def build_retinanet_model(
    input_specs: keras.layers.InputSpec,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    num_classes: int,
    input_size: list[int],
    min_level: int,
    max_level: int,
    anchor: retinanet_configs.Anchor,
    backbone: backbone_configs.Backbone,
    decoder: decoder_configs.Decoder,
    head: retinanet_configs.RetinaNetHead,
    detection_generator: retinanet_configs.DetectionGenerator,
    norm_activation: common.NormActivation,
) -> RetinaNetModel:
    """Builds a `RetinaNetModel` (the `retinanet` entry of `garden.models`).

    The keyword settings are the fields of `configs.retinanet.RetinaNet` (`task.model`);
    see `build_retinanet`.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`;
        it is what `input_size` describes.
      l2_regularizer: Kernel regularizer of the backbone, decoder and head, or None.
      num_classes, input_size, min_level, max_level, anchor, backbone, decoder, head,
        detection_generator, norm_activation: As in `RetinaNet`.

    Raises:
      ConfigError: If a component cannot be built from its settings.
    """
    config = RetinaNet(
        num_classes=num_classes,
        input_size=list(input_size or input_specs.shape[1:]),
        min_level=min_level,
        max_level=max_level,
        anchor=anchor,
        backbone=backbone,
        decoder=decoder,
        head=head,
        detection_generator=detection_generator,
        norm_activation=norm_activation,
    )
    return build_retinanet(input_specs, config, l2_regularizer)


#: The registered heads a Mask R-CNN model is built with.
RPN_HEAD, DETECTION_HEAD, MASK_HEAD = "rpn", "detection", "mask"


def build_maskrcnn(
    input_specs: keras.layers.InputSpec,
    model_config: Any,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    backbone: keras.Model | None = None,
    decoder: keras.layers.Layer | None = None,
    where: str = "task.model",
) -> MaskRCNNModel:
    """Returns the `MaskRCNNModel` a `configs.maskrcnn.MaskRCNN` describes, every weight built.

    The backbone and decoder come from `garden.backbones` and `garden.decoders`; the RPN,
    detection and mask heads from `garden.heads` (`rpn`, `detection`, `mask`, with the
    fields of `model_config.rpn_head`, `.detection_head` and `.mask_head`); the ROI
    generator, sampler and aligner, the mask sampler and the detection generator are
    built from their configs as Model Garden does. With
    `roi_sampler.cascade_iou_thresholds` (Cascade R-CNN) each threshold adds a detection
    stage: a detection head and an ROI sampler at that IoU that keeps every proposal
    (`skip_subsampling`). Without `include_mask` the model is Faster R-CNN.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`.
      model_config: The `configs.maskrcnn.MaskRCNN` config.
      l2_regularizer: Kernel regularizer of the backbone, decoder and heads, or None.
      backbone: A backbone to use instead of building the configured one.
      decoder: A decoder to use instead of building the configured one.
      where: The dotted path of `model_config` in the experiment config, for messages.

    Raises:
      ConfigError: If a component cannot be built from its settings, or the decoder (or
        backbone) does not give every level the heads read.
    """
    from garden_vision.modeling.layers.detection_generator import DetectionGenerator
    from garden_vision.modeling.layers.mask_sampler import MaskSampler
    from garden_vision.modeling.layers.roi_aligner import MultilevelROIAligner
    from garden_vision.modeling.layers.roi_generator import MultilevelROIGenerator
    from garden_vision.modeling.layers.roi_sampler import ROISampler

    norm_activation = model_config.norm_activation
    backbone, decoder, feature_specs = _backbone_and_decoder(
        input_specs, model_config, l2_regularizer, backbone, decoder, where
    )
    channels = feature_specs[0][-1]

    anchor = model_config.anchor
    rpn_head = build_head(
        RPN_HEAD,
        f"{where}.rpn_head",
        input_specs=feature_specs,
        num_classes=model_config.num_classes,
        norm_activation_config=norm_activation,
        l2_regularizer=l2_regularizer,
        settings={
            **plugins.fields_of(model_config.rpn_head),
            "min_level": model_config.min_level,
            "max_level": model_config.max_level,
            "num_anchors_per_location": anchor.num_scales * len(anchor.aspect_ratios),
        },
    )

    sampler = model_config.roi_sampler
    aligner = model_config.roi_aligner
    cascade = list(sampler.cascade_iou_thresholds or [])
    roi_specs = (None, sampler.num_sampled_rois, aligner.crop_size, aligner.crop_size, channels)
    detection_heads = [
        build_head(
            DETECTION_HEAD,
            f"{where}.detection_head",
            input_specs=roi_specs,
            num_classes=model_config.num_classes,
            norm_activation_config=norm_activation,
            l2_regularizer=l2_regularizer,
            settings=plugins.fields_of(model_config.detection_head),
        )
        for _ in range(1 + len(cascade))
    ]
    roi_samplers = [
        ROISampler(
            mix_gt_boxes=sampler.mix_gt_boxes,
            num_sampled_rois=sampler.num_sampled_rois,
            foreground_fraction=sampler.foreground_fraction,
            foreground_iou_threshold=sampler.foreground_iou_threshold,
            background_iou_high_threshold=sampler.background_iou_high_threshold,
            background_iou_low_threshold=sampler.background_iou_low_threshold,
        )
    ] + [
        ROISampler(
            mix_gt_boxes=False,
            num_sampled_rois=sampler.num_sampled_rois,
            foreground_iou_threshold=iou,
            background_iou_high_threshold=iou,
            background_iou_low_threshold=0.0,
            skip_subsampling=True,
        )
        for iou in cascade
    ]

    generator = model_config.roi_generator
    roi_generator = MultilevelROIGenerator(
        pre_nms_top_k=generator.pre_nms_top_k,
        pre_nms_score_threshold=generator.pre_nms_score_threshold,
        pre_nms_min_size_threshold=generator.pre_nms_min_size_threshold,
        nms_iou_threshold=generator.nms_iou_threshold,
        num_proposals=generator.num_proposals,
        test_pre_nms_top_k=generator.test_pre_nms_top_k,
        test_pre_nms_score_threshold=generator.test_pre_nms_score_threshold,
        test_pre_nms_min_size_threshold=generator.test_pre_nms_min_size_threshold,
        test_nms_iou_threshold=generator.test_nms_iou_threshold,
        test_num_proposals=generator.test_num_proposals,
        use_batched_nms=generator.use_batched_nms,
    )
    detection = model_config.detection_generator
    detection_generator = DetectionGenerator(
        apply_nms=detection.apply_nms,
        pre_nms_top_k=detection.pre_nms_top_k,
        pre_nms_score_threshold=detection.pre_nms_score_threshold,
        nms_iou_threshold=detection.nms_iou_threshold,
        max_num_detections=detection.max_num_detections,
        nms_version=detection.nms_version,
        use_cpu_nms=detection.use_cpu_nms,
        soft_nms_sigma=detection.soft_nms_sigma,
        use_sigmoid_probability=detection.use_sigmoid_probability,
    )

    mask_head = mask_sampler = mask_roi_aligner = None
    if model_config.include_mask:
        mask_aligner = model_config.mask_roi_aligner
        mask_head = build_head(
            MASK_HEAD,
            f"{where}.mask_head",
            input_specs=(
                None,
                model_config.mask_sampler.num_sampled_masks,
                mask_aligner.crop_size,
                mask_aligner.crop_size,
                channels,
            ),
            num_classes=model_config.num_classes,
            norm_activation_config=norm_activation,
            l2_regularizer=l2_regularizer,
            settings=plugins.fields_of(model_config.mask_head),
        )
        mask_sampler = MaskSampler(
            mask_target_size=mask_aligner.crop_size * model_config.mask_head.upsample_factor,
            num_sampled_masks=model_config.mask_sampler.num_sampled_masks,
        )
        mask_roi_aligner = MultilevelROIAligner(
            crop_size=mask_aligner.crop_size, sample_offset=mask_aligner.sample_offset
        )

    model = MaskRCNNModel(
        backbone=backbone,
        decoder=decoder,
        rpn_head=rpn_head,
        detection_head=detection_heads if cascade else detection_heads[0],
        roi_generator=roi_generator,
        roi_sampler=roi_samplers if cascade else roi_samplers[0],
        roi_aligner=MultilevelROIAligner(
            crop_size=aligner.crop_size, sample_offset=aligner.sample_offset
        ),
        detection_generator=detection_generator,
        mask_head=mask_head,
        mask_sampler=mask_sampler,
        mask_roi_aligner=mask_roi_aligner,
        class_agnostic_bbox_pred=model_config.detection_head.class_agnostic_bbox_pred,
        cascade_class_ensemble=model_config.detection_head.cascade_class_ensemble,
        min_level=model_config.min_level,
        max_level=model_config.max_level,
        num_scales=anchor.num_scales,
        aspect_ratios=list(anchor.aspect_ratios),
        anchor_size=anchor.anchor_size,
        outer_boxes_scale=model_config.outer_boxes_scale,
    )
    model.build(tuple(input_specs.shape))
    return model


def build_maskrcnn_model(
    input_specs: keras.layers.InputSpec,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    **settings: Any,
) -> MaskRCNNModel:
    """Builds a `MaskRCNNModel` (the `maskrcnn` entry of `garden.models`).

    The keyword settings are the fields of `configs.maskrcnn.MaskRCNN` (`task.model`); see
    `build_maskrcnn`.

    Raises:
      ConfigError: If a component cannot be built from its settings.
    """
    from garden_vision.configs.maskrcnn import MaskRCNN

    config = MaskRCNN(**settings)
    if not config.input_size:
        config.input_size = list(input_specs.shape[1:])
    return build_maskrcnn(input_specs, config, l2_regularizer)


#: The registered head the segmentation model is built with.
SEGMENTATION_HEAD = "segmentation"

_DEEPLABV3PLUS_FUSIONS = ("deeplabv3plus", "deeplabv3plus_sum_to_merge")


def _endpoint_names(specs: Mapping[str, Any]) -> list[str]:
    """Endpoint names, levels first in numeric order, for messages."""
    return sorted((str(key) for key in specs), key=lambda key: (not key.isdigit(), len(key), key))


def _check_segmentation_endpoints(
    head_config: Any,
    backbone_specs: Mapping[str, Any],
    decoder: keras.layers.Layer | None,
    where: str,
) -> None:
    """Raises a `ConfigError` unless the head's `level`, `low_level` and (Panoptic FPN)
    decoder levels are endpoints of the decoder (or backbone) and backbone.

    A decoder that returns one tensor (ASPP's `output_tensor`) gives the head that tensor
    whatever its `level`, so the level is not checked then.
    """
    if decoder is None:
        source, specs = "backbone", backbone_specs
    else:
        source, specs = "decoder", getattr(decoder, "output_specs", None)
    fusion = head_config.feature_fusion
    if specs is None or getattr(decoder, "output_tensor", False):
        pass
    elif fusion == "panoptic_fpn_fusion":
        bounds = (head_config.decoder_min_level, head_config.decoder_max_level)
        if all(str(bound).isdigit() for bound in bounds):
            for level in range(int(bounds[0]), int(bounds[1]) + 1):
                if str(level) not in specs:
                    raise ConfigError(
                        f"`{where}.head.decoder_min_level` .. `decoder_max_level` read "
                        f"{source} level {level}, but the {source} gives endpoints "
                        f"{_endpoint_names(specs)}"
                    )
    elif fusion != "pyramid_fusion" and str(head_config.level) not in specs:
        raise ConfigError(
            f"`{where}.head.level` is {head_config.level!r}, but the {source} gives endpoints "
            f"{_endpoint_names(specs)}"
        )
    if fusion in _DEEPLABV3PLUS_FUSIONS and str(head_config.low_level) not in backbone_specs:
        raise ConfigError(
            f"`{where}.head.low_level` is {head_config.low_level!r}, but the backbone gives "
            f"endpoints {_endpoint_names(backbone_specs)}"
        )


def build_segmentation_model(
    input_specs: keras.layers.InputSpec,
    model_config: Any,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    backbone: keras.Model | None = None,
    decoder: keras.layers.Layer | None = None,
    where: str = "task.model",
) -> SegmentationModel:
    """Returns the `SegmentationModel` a `SemanticSegmentationModel` config describes, built.

    The backbone comes from `garden.backbones` (`model_config.backbone`), the decoder from
    `garden.decoders` (`model_config.decoder`; none when its `type` is None), the head from
    `garden.heads` (`segmentation`, with the fields of `model_config.head`), as Model
    Garden's `build_segmentation_model` does.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`
        (height and width may be None).
      model_config: The `configs.semantic_segmentation.SemanticSegmentationModel` config.
      l2_regularizer: Kernel regularizer of the backbone, decoder and head, or None.
      backbone: A backbone to use instead of building the configured one.
      decoder: A decoder to use instead of building the configured one.
      where: The dotted path of `model_config` in the experiment config, for messages.

    Raises:
      ConfigError: If a component cannot be built from its settings, or the head's
        `level` (or Panoptic FPN's decoder levels) is not an endpoint of the decoder (the
        backbone without one) or its `low_level` not an endpoint of the backbone.
    """
    if backbone is None:
        backbone = build_backbone(
            input_specs=input_specs,
            backbone_config=model_config.backbone,
            norm_activation_config=model_config.norm_activation,
            l2_regularizer=l2_regularizer,
            where=f"{where}.backbone",
        )
    backbone_specs = dict(backbone.output_specs)
    if decoder is None:
        decoder = build_decoder(
            input_specs=backbone_specs,
            model_config=model_config,
            l2_regularizer=l2_regularizer,
            where=f"{where}.decoder",
        )
    _check_segmentation_endpoints(model_config.head, backbone_specs, decoder, where)
    decoder_specs = backbone_specs if decoder is None else getattr(decoder, "output_specs", {})
    head = build_head(
        SEGMENTATION_HEAD,
        f"{where}.head",
        input_specs=(backbone_specs, dict(decoder_specs or {})),
        num_classes=model_config.num_classes,
        norm_activation_config=model_config.norm_activation,
        l2_regularizer=l2_regularizer,
        settings=plugins.fields_of(model_config.head),
    )
    model = SegmentationModel(backbone, decoder, head)
    model.build(tuple(input_specs.shape))
    return model


def build_semantic_segmentation_model(
    input_specs: keras.layers.InputSpec,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    **settings: Any,
) -> SegmentationModel:
    """Builds a `SegmentationModel` (the `semantic_segmentation` entry of `garden.models`).

    The keyword settings are the fields of
    `configs.semantic_segmentation.SemanticSegmentationModel` (`task.model`); see
    `build_segmentation_model`.

    Raises:
      ConfigError: If a component cannot be built from its settings.
    """
    from garden_vision.configs.semantic_segmentation import SemanticSegmentationModel

    config = SemanticSegmentationModel(**settings)
    if not config.input_size:
        config.input_size = list(input_specs.shape[1:])
    return build_segmentation_model(input_specs, config, l2_regularizer)
