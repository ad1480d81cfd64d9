"""Faster R-CNN, Mask R-CNN and Cascade R-CNN configs and experiments (`configs.maskrcnn`).

Field names and defaults are Model Garden's (tf-models-official 2.20), so its two-stage
detection experiment YAML loads as is. Experiments (Model Garden's names and recipes):

- `fasterrcnn_resnetfpn_coco`: Faster R-CNN, ResNet-50-FPN at 1024x1024 on COCO, boxes only,
  22,500 steps of SGD (batches of 64) from an ImageNet checkpoint.
- `maskrcnn_resnetfpn_coco`: the same with the mask branch (and XLA).
- `maskrcnn_spinenet_coco`: Mask R-CNN on SpineNet-49 at 640x640, 350 epochs from scratch.
- `maskrcnn_mobilenet_coco`: Mask R-CNN on MobileNetV2 with a separable 128-filter FPN and
  heads at 512x512, levels 3-6.
- `cascadercnn_spinenet_coco`: Cascade R-CNN (RS) on SpineNet-49 with swish at 640x640:
  three box heads at IoU 0.5, 0.6 and 0.7 with class-agnostic boxes.
- `shapes_instance_segmentation`: a small Mask R-CNN on the built-in, generated
  `garden_shapes/multi` dataset, sized to train on a CPU.

Point `task.train_data.input_path` / `task.validation_data.input_path` at COCO TFRecords
(Model Garden's layout: `coco/train*`, `coco/val*`, with instance masks for Mask R-CNN) and
`task.annotation_file` at `instances_val2017.json`.

Anchors, data decoders, backbones, decoders and `NormActivation` are RetinaNet's and
`common`'s configs (Mask R-CNN's `Anchor` only changes the defaults). This module defines
configs only (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import os

from garden_core.config import (
    Config,
    ConfigError,
    ExperimentConfig,
    RuntimeConfig,
    TaskConfig,
)
from garden_vision.configs import backbones, common, decoders, retinanet

COCO_INPUT_PATH_BASE = retinanet.COCO_INPUT_PATH_BASE
COCO_VAL_EXAMPLES = retinanet.COCO_VAL_EXAMPLES
_IMAGENET_RESNET50 = "gs://cloud-tpu-checkpoints/vision-2.0/resnet50_imagenet/ckpt-28080"

# Model Garden keeps these names in `configs.maskrcnn` too; they are `common`'s.
TfExampleDecoder = common.TfExampleDecoder
TfExampleDecoderLabelMap = common.TfExampleDecoderLabelMap
DataDecoder = common.DataDecoder

#: Parser augmentations Mask R-CNN supports (`aug_type.type`). They change pixel values
#: only: ops that move pixels (rotate, shear, translate) would leave masks behind and are
#: refused by the parser.
MASKRCNN_AUGMENTATIONS = ("autoaug", "randaug")
NMS_VERSIONS = ("batched", "v1", "v2")
INIT_CHECKPOINT_MODULES = ("all", "backbone", "decoder")

_RPN_THRESHOLDS = (
    "Mask R-CNN labels anchors with `rpn_match_threshold` and `rpn_unmatched_threshold`; "
    "Model Garden does not read this field either"
)


def _where(path: str, name: str) -> str:
    return f"`{path + '.' if path else ''}{name}`"


@dataclasses.dataclass
class Parser(Config):
    """How training and evaluation examples become Mask R-CNN inputs and RPN labels.

    Attributes:
      aug_rand_hflip: Random horizontal flips in training (image, boxes and masks).
      aug_rand_vflip: Random vertical flips in training.
      aug_scale_min, aug_scale_max: Random scale jitter of the output size in training
        (resize, then random crop or pad).
      aug_type: `autoaug` or `randaug` applied to the image alone (their ops must not move
        pixels, e.g. RandAugment with rotate, shear and translate in `exclude_ops`), or None.
      skip_crowd_during_training: Drop crowd objects from the training targets.
      max_num_instances: Ground truths (boxes, classes, masks) are padded to this many.
      rpn_match_threshold: Anchors with IoU >= this with a ground-truth box are RPN
        positives (every box also claims its best anchor).
      rpn_unmatched_threshold: Anchors with IoU < this with every box are RPN negatives;
        those in between are ignored.
      rpn_batch_size_per_im: Anchors sampled per image for the RPN score loss.
      rpn_fg_fraction: At most this fraction of them positive; negatives fill the rest.
      mask_crop_size: Ground-truth masks are cropped to their boxes and resized to this
        square size.
      box_outside_image: Garden: what a ground-truth box outside the image is: an
        `error` naming the record, or `clip`ped to the image.
    """

    aug_rand_hflip: bool = False
    aug_rand_vflip: bool = False
    aug_scale_min: float = 1.0
    aug_scale_max: float = 1.0
    aug_type: common.Augmentation | None = None
    skip_crowd_during_training: bool = True
    max_num_instances: int = 100
    rpn_match_threshold: float = 0.7
    rpn_unmatched_threshold: float = 0.3
    rpn_batch_size_per_im: int = 256
    rpn_fg_fraction: float = 0.5
    mask_crop_size: int = 112
    box_outside_image: str = "error"

    restrictions = (
        "aug_scale_min > 0",
        "aug_scale_min <= aug_scale_max",
        "max_num_instances > 0",
        "rpn_unmatched_threshold <= rpn_match_threshold",
        "rpn_batch_size_per_im > 0",
        "rpn_fg_fraction > 0",
        "rpn_fg_fraction <= 1",
        "mask_crop_size > 0",
    )
    unsupported_fields = {
        "num_channels": (3, "the detection parser reads 3-channel images"),
        "match_threshold": (0.5, _RPN_THRESHOLDS),
        "unmatched_threshold": (0.5, _RPN_THRESHOLDS),
        "pad": (True, "Mask R-CNN always pads its input to a multiple of 2**max_level"),
        "keep_aspect_ratio": (True, "resizing without keeping the aspect ratio is not offered"),
    }

    def validate(self, path: str = "") -> None:
        """Checks the restrictions, `box_outside_image` and the augmentation type.

        Raises:
          ConfigError: Naming the field that is wrong.
        """
        super().validate(path)
        if self.box_outside_image not in retinanet.BOX_OUTSIDE_IMAGE:
            raise ConfigError(
                f"{_where(path, 'box_outside_image')} is {self.box_outside_image!r}: expected "
                + " or ".join(repr(v) for v in retinanet.BOX_OUTSIDE_IMAGE)
            )
        kind = None if self.aug_type is None else self.aug_type.type
        if kind is not None and kind not in MASKRCNN_AUGMENTATIONS:
            raise ConfigError(
                f"{_where(path, 'aug_type.type')} is {kind!r}: Mask R-CNN supports "
                f"{' or '.join(MASKRCNN_AUGMENTATIONS)} (ops that do not move pixels)"
            )


@dataclasses.dataclass
class DataConfig(retinanet.DataConfig):
    """A Mask R-CNN input pipeline: COCO-style tf.Example records (with masks) or TFDS.

    Attributes:
      parser: Augmentation, resizing, RPN anchor labelling and mask cropping.
      num_examples: Model Garden reads it to write a COCO annotation file from the
        validation records; Garden's evaluator gathers the ground truth as the records are
        read and needs no count, so it is informative only.
    """

    parser: Parser = dataclasses.field(default_factory=Parser)
    num_examples: int = -1


@dataclasses.dataclass
class Anchor(retinanet.Anchor):
    """RetinaNet's anchor settings with Mask R-CNN's defaults: one scale of side `8 * 2**l`."""

    num_scales: int = 1
    anchor_size: float = 8.0


@dataclasses.dataclass
class RPNHead(Config):
    """The region proposal network head (`heads.RPNHead`).

    Attributes:
      num_convs: Shared 3x3 convolutions before the score and box outputs.
      num_filters: Their width.
      use_separable_conv: Depthwise-separable convolutions.
    """

    num_convs: int = 1
    num_filters: int = 256
    use_separable_conv: bool = False

    restrictions = ("num_convs >= 0", "num_filters > 0")


@dataclasses.dataclass
class DetectionHead(Config):
    """The second-stage box head (`heads.DetectionHead`) on ROI-aligned features.

    Attributes:
      num_convs: 3x3 convolutions on the ROI features.
      num_filters: Their width.
      use_separable_conv: Depthwise-separable convolutions.
      num_fcs: Fully connected layers after them.
      fc_dims: Their width.
      class_agnostic_bbox_pred: One box per ROI instead of one per class (Cascade R-CNN
        needs it).
      cascade_class_ensemble: With cascade stages, average the class probabilities of
        every stage's head.
    """

    num_convs: int = 4
    num_filters: int = 256
    use_separable_conv: bool = False
    num_fcs: int = 1
    fc_dims: int = 1024
    class_agnostic_bbox_pred: bool = False
    cascade_class_ensemble: bool = False

    restrictions = ("num_convs >= 0", "num_filters > 0", "num_fcs >= 0", "fc_dims > 0")


@dataclasses.dataclass
class ROIGenerator(Config):
    """Turns RPN outputs into proposals (`layers.MultilevelROIGenerator`).

    Training uses the plain settings and inference the `test_` ones.

    Attributes:
      pre_nms_top_k: Boxes per level kept by score before NMS.
      pre_nms_score_threshold: Boxes scoring below it are dropped.
      pre_nms_min_size_threshold: Boxes with a side below it (pixels) are dropped.
      nms_iou_threshold: The IoU above which NMS suppresses a box.
      num_proposals: Proposals kept per image.
      use_batched_nms: `tf.image.combined_non_max_suppression` instead of padded NMS.
    """

    pre_nms_top_k: int = 2000
    pre_nms_score_threshold: float = 0.0
    pre_nms_min_size_threshold: float = 0.0
    nms_iou_threshold: float = 0.7
    num_proposals: int = 1000
    test_pre_nms_top_k: int = 1000
    test_pre_nms_score_threshold: float = 0.0
    test_pre_nms_min_size_threshold: float = 0.0
    test_nms_iou_threshold: float = 0.7
    test_num_proposals: int = 1000
    use_batched_nms: bool = False

    restrictions = (
        "pre_nms_top_k > 0",
        "num_proposals > 0",
        "nms_iou_threshold >= 0",
        "nms_iou_threshold <= 1",
        "pre_nms_min_size_threshold >= 0",
        "test_pre_nms_top_k > 0",
        "test_num_proposals > 0",
        "test_nms_iou_threshold >= 0",
        "test_nms_iou_threshold <= 1",
        "test_pre_nms_min_size_threshold >= 0",
    )


@dataclasses.dataclass
class ROISampler(Config):
    """Samples the proposals the second stage trains on (`layers.ROISampler`).

    Attributes:
      mix_gt_boxes: Add the ground-truth boxes to the proposals.
      num_sampled_rois: ROIs sampled per image.
      foreground_fraction: At most this fraction of them foreground.
      foreground_iou_threshold: Proposals with IoU >= this with a box are foreground.
      background_iou_high_threshold, background_iou_low_threshold: Proposals with a best
        IoU in `[low, high)` are background.
      cascade_iou_thresholds: Foreground thresholds of further Cascade R-CNN stages (each
        adds a box head); None for one stage.
    """

    mix_gt_boxes: bool = True
    num_sampled_rois: int = 512
    foreground_fraction: float = 0.25
    foreground_iou_threshold: float = 0.5
    background_iou_high_threshold: float = 0.5
    background_iou_low_threshold: float = 0.0
    cascade_iou_thresholds: list[float] | None = None

    restrictions = (
        "num_sampled_rois > 0",
        "foreground_fraction >= 0",
        "foreground_fraction <= 1",
        "background_iou_low_threshold <= background_iou_high_threshold",
        "background_iou_high_threshold <= foreground_iou_threshold",
    )

    def validate(self, path: str = "") -> None:
        """Checks the restrictions and that cascade thresholds lie in (0, 1].

        Raises:
          ConfigError: Naming `cascade_iou_thresholds` and its values.
        """
        super().validate(path)
        thresholds = self.cascade_iou_thresholds
        if thresholds is not None and any(not 0.0 < value <= 1.0 for value in thresholds):
            raise ConfigError(
                f"{_where(path, 'cascade_iou_thresholds')} is {thresholds}: each threshold "
                "must lie in (0, 1]"
            )


@dataclasses.dataclass
class ROIAligner(Config):
    """ROIAlign of the box head's features (`layers.MultilevelROIAligner`).

    Attributes:
      crop_size: Output side of each ROI's features.
      sample_offset: Where in each bin the bilinear sample is taken.
    """

    crop_size: int = 7
    sample_offset: float = 0.5

    restrictions = ("crop_size > 0",)


@dataclasses.dataclass
class MaskROIAligner(ROIAligner):
    """ROIAlign of the mask head's features: 14x14 crops."""

    crop_size: int = 14


@dataclasses.dataclass
class DetectionGenerator(Config):
    """Second-stage post-processing (`layers.DetectionGenerator`).

    Attributes:
      apply_nms: Run non-maximum suppression; False returns every decoded box and score.
      pre_nms_top_k: Boxes per class kept before NMS.
      pre_nms_score_threshold: Boxes scoring below it are dropped before NMS.
      nms_iou_threshold: The IoU above which NMS suppresses a box.
      max_num_detections: Boxes kept per image.
      nms_version: `v2` (padded, per class), `v1` (per class, soft-NMS capable) or
        `batched` (`tf.image.combined_non_max_suppression`).
      use_cpu_nms: Run NMS on the CPU.
      soft_nms_sigma: Soft-NMS' Gaussian sigma (only with `v1`), or None for hard NMS.
      use_sigmoid_probability: Class scores by sigmoid instead of softmax (with a binary
        cross-entropy class loss).
    """

    apply_nms: bool = True
    pre_nms_top_k: int = 5000
    pre_nms_score_threshold: float = 0.05
    nms_iou_threshold: float = 0.5
    max_num_detections: int = 100
    nms_version: str = "v2"
    use_cpu_nms: bool = False
    soft_nms_sigma: float | None = None
    use_sigmoid_probability: bool = False

    restrictions = (
        "pre_nms_top_k > 0",
        "max_num_detections > 0",
        "nms_iou_threshold >= 0",
        "nms_iou_threshold <= 1",
    )

    def validate(self, path: str = "") -> None:
        """Checks the restrictions and the NMS version and options.

        Raises:
          ConfigError: Naming the field that is wrong.
        """
        super().validate(path)
        if self.nms_version not in NMS_VERSIONS:
            raise ConfigError(
                f"{_where(path, 'nms_version')} is {self.nms_version!r}: expected one of "
                + ", ".join(NMS_VERSIONS)
            )
        if self.soft_nms_sigma is not None and self.nms_version != "v1":
            raise ConfigError(
                f"{_where(path, 'soft_nms_sigma')} is {self.soft_nms_sigma}: soft-NMS needs "
                f"`nms_version: v1`, not {self.nms_version!r}"
            )


@dataclasses.dataclass
class MaskHead(Config):
    """The mask head (`heads.MaskHead`) on ROI-aligned features.

    Attributes:
      upsample_factor: The transposed convolution's upsampling (14x14 crops give 28x28
        masks).
      num_convs: 3x3 convolutions before it.
      num_filters: Their width.
      use_separable_conv: Depthwise-separable convolutions.
      class_agnostic: One mask per ROI instead of one per class.
    """

    upsample_factor: int = 2
    num_convs: int = 4
    num_filters: int = 256
    use_separable_conv: bool = False
    class_agnostic: bool = False

    restrictions = ("upsample_factor >= 1", "num_convs >= 0", "num_filters > 0")


@dataclasses.dataclass
class MaskSampler(Config):
    """How many foreground ROIs per image train the mask head (`layers.MaskSampler`)."""

    num_sampled_masks: int = 128

    restrictions = ("num_sampled_masks > 0",)


def _maskrcnn_norm_activation() -> common.NormActivation:
    return common.NormActivation(norm_momentum=0.997, norm_epsilon=0.0001, use_sync_bn=True)


def check_spinenet_levels(model: Config, path: str) -> None:
    """SpineNet (and SpineNet-Mobile) output the model's levels themselves.

    Model Garden pairs them with the identity decoder, so their `min_level` and `max_level`
    must be the model's.

    Raises:
      ConfigError: Naming the backbone's level that differs.
    """
    if model.backbone.type not in ("spinenet", "spinenet_mobile"):
        return
    branch = getattr(model.backbone, model.backbone.type)
    for name in ("min_level", "max_level"):
        if getattr(branch, name) != getattr(model, name):
            raise ConfigError(
                f"{_where(path, f'backbone.{model.backbone.type}.{name}')} is "
                f"{getattr(branch, name)} but {_where(path, name)} is {getattr(model, name)}: "
                f"the {model.backbone.type} backbone must output the levels the heads read"
            )


@dataclasses.dataclass
class MaskRCNN(Config):
    """The Faster / Mask / Cascade R-CNN model.

    Attributes:
      num_classes: Classes, background (0) included (COCO: 91).
      input_size: `[height, width, channels]`.
      min_level, max_level: The feature levels of the RPN and the ROI aligner.
      anchor: The RPN's anchors.
      include_mask: Mask R-CNN (True) or Faster R-CNN (False).
      outer_boxes_scale: Mask targets (and pasted masks) use boxes enlarged by this factor
        around their centers, to keep some context; at least 1.
      backbone: The backbone (`type` plus its settings).
      decoder: The decoder (`fpn`, `identity`, ...).
      rpn_head: The region proposal head.
      detection_head: The second-stage box head.
      roi_generator: Proposals from the RPN.
      roi_sampler: The proposals the box head trains on.
      roi_aligner: The box head's ROIAlign.
      detection_generator: Inference post-processing.
      mask_head, mask_sampler, mask_roi_aligner: The mask branch (None for Faster R-CNN).
      norm_activation: Normalization and activation of every part.
    """

    num_classes: int = 0
    input_size: list[int] = dataclasses.field(default_factory=list)
    min_level: int = 2
    max_level: int = 6
    anchor: Anchor = dataclasses.field(default_factory=Anchor)
    include_mask: bool = True
    outer_boxes_scale: float = 1.0
    backbone: backbones.Backbone = dataclasses.field(
        default_factory=lambda: backbones.Backbone(type="resnet", resnet=backbones.ResNet())
    )
    decoder: decoders.Decoder = dataclasses.field(
        default_factory=lambda: decoders.Decoder(type="fpn", fpn=decoders.FPN())
    )
    rpn_head: RPNHead = dataclasses.field(default_factory=RPNHead)
    detection_head: DetectionHead = dataclasses.field(default_factory=DetectionHead)
    roi_generator: ROIGenerator = dataclasses.field(default_factory=ROIGenerator)
    roi_sampler: ROISampler = dataclasses.field(default_factory=ROISampler)
    roi_aligner: ROIAligner = dataclasses.field(default_factory=ROIAligner)
    detection_generator: DetectionGenerator = dataclasses.field(default_factory=DetectionGenerator)
    mask_head: MaskHead | None = dataclasses.field(default_factory=MaskHead)
    mask_sampler: MaskSampler | None = dataclasses.field(default_factory=MaskSampler)
    mask_roi_aligner: MaskROIAligner | None = dataclasses.field(default_factory=MaskROIAligner)
    norm_activation: common.NormActivation = dataclasses.field(
        default_factory=_maskrcnn_norm_activation
    )

    restrictions = ("min_level <= max_level", "num_classes >= 0", "outer_boxes_scale >= 1")

    def validate(self, path: str = "") -> None:
        """Checks the restrictions, the mask branch, the cascade and SpineNet's levels.

        - `include_mask` needs `mask_head`, `mask_sampler` and `mask_roi_aligner`.
        - Cascade stages (`roi_sampler.cascade_iou_thresholds`) refine one box per ROI:
          they need `detection_head.class_agnostic_bbox_pred`; and
          `detection_head.cascade_class_ensemble` needs cascade stages.
        - SpineNet backbones must output the model's levels.

        Raises:
          ConfigError: Naming the fields that disagree.
        """
        super().validate(path)
        if self.include_mask:
            for name in ("mask_head", "mask_sampler", "mask_roi_aligner"):
                if getattr(self, name) is None:
                    raise ConfigError(
                        f"{_where(path, name)} is None but {_where(path, 'include_mask')} is "
                        "true: Mask R-CNN needs its mask head, sampler and ROI aligner"
                    )
        cascade = bool(self.roi_sampler.cascade_iou_thresholds)
        head = self.detection_head
        if cascade and not head.class_agnostic_bbox_pred:
            raise ConfigError(
                f"{_where(path, 'roi_sampler.cascade_iou_thresholds')} is "
                f"{self.roi_sampler.cascade_iou_thresholds}: Cascade R-CNN needs "
                f"{_where(path, 'detection_head.class_agnostic_bbox_pred')} true"
            )
        if head.cascade_class_ensemble and not cascade:
            raise ConfigError(
                f"{_where(path, 'detection_head.cascade_class_ensemble')} is true but "
                f"{_where(path, 'roi_sampler.cascade_iou_thresholds')} is empty: there are "
                "no cascade stages to ensemble"
            )
        check_spinenet_levels(self, path)


@dataclasses.dataclass
class Losses(Config):
    """Mask R-CNN's losses (see `garden_vision.losses.maskrcnn_losses`).

    Attributes:
      loss_weight: Multiplies the total loss.
      rpn_huber_loss_delta: The RPN box regression's Huber delta.
      frcnn_huber_loss_delta: The second stage's box Huber delta.
      frcnn_class_use_binary_cross_entropy: Sigmoid binary cross-entropy per class instead
        of softmax cross-entropy.
      frcnn_class_loss_top_k_percent: Average the class loss over this fraction of the
        hardest ROIs (1: all).
      l2_weight_decay: L2 weight decay, as kernel regularization `l2(decay / 2)`.
      rpn_score_weight, rpn_box_weight, frcnn_class_weight, frcnn_box_weight, mask_weight:
        The weights of the five losses.
      class_weights: Per-class weights of the class loss (`num_classes` values), or None.
    """

    loss_weight: float = 1.0
    rpn_huber_loss_delta: float = 1.0 / 9.0
    frcnn_huber_loss_delta: float = 1.0
    frcnn_class_use_binary_cross_entropy: bool = False
    frcnn_class_loss_top_k_percent: float = 1.0
    l2_weight_decay: float = 0.0
    rpn_score_weight: float = 1.0
    rpn_box_weight: float = 1.0
    frcnn_class_weight: float = 1.0
    frcnn_box_weight: float = 1.0
    mask_weight: float = 1.0
    class_weights: list[float] | None = None

    restrictions = (
        "rpn_huber_loss_delta > 0",
        "frcnn_huber_loss_delta > 0",
        "frcnn_class_loss_top_k_percent > 0",
        "frcnn_class_loss_top_k_percent <= 1",
        "l2_weight_decay >= 0",
        "rpn_score_weight >= 0",
        "rpn_box_weight >= 0",
        "frcnn_class_weight >= 0",
        "frcnn_box_weight >= 0",
        "mask_weight >= 0",
    )


@dataclasses.dataclass
class MaskRCNNTask(TaskConfig):
    """The two-stage detection (and instance segmentation) task.

    Attributes:
      init_checkpoint: A checkpoint (prefix or directory) to initialize from.
      init_checkpoint_modules: `all`, or the parts to restore: `backbone` and/or
        `decoder` (a name or a list).
      annotation_file: COCO annotations of the validation data (`instances_val2017.json`);
        None builds the ground truth from the validation records.
      per_category_metrics: Also report AP per category.
      allowed_mask_class_ids: Train the mask head on these classes only (partially
        supervised Mask R-CNN); None for every class.
      use_coco_metrics: Compute COCO AP / AR (and mask AP) in evaluation.
      freeze_backbone: Train everything but the backbone.
    """

    model: MaskRCNN = dataclasses.field(default_factory=MaskRCNN)
    train_data: DataConfig = dataclasses.field(default_factory=lambda: DataConfig(is_training=True))
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(is_training=False, drop_remainder=False)
    )
    losses: Losses = dataclasses.field(default_factory=Losses)
    init_checkpoint: str | None = None
    init_checkpoint_modules: str | list[str] = "all"
    annotation_file: str | None = None
    per_category_metrics: bool = False
    allowed_mask_class_ids: list[int] | None = None
    use_coco_metrics: bool = True
    freeze_backbone: bool = False

    restrictions = (
        "train_data.is_training != None",
        "validation_data.is_training != None",
    )
    unsupported_fields = {
        **TaskConfig.unsupported_fields,
        "use_wod_metrics": (False, "Waymo Open Dataset metrics are not offered"),
        "use_approx_instance_metrics": (
            False,
            "the approximate (TPU) instance metrics are not offered; use the COCO metrics",
        ),
    }

    def validate(self, path: str = "") -> None:
        """Checks the restrictions, `init_checkpoint_modules` and the mask class ids.

        Raises:
          ConfigError: For a module other than `all`, `backbone` or `decoder`, or mask
            class ids outside `[1, num_classes)`.
        """
        super().validate(path)
        modules = self.init_checkpoint_modules
        names = [modules] if isinstance(modules, str) else list(modules)
        unknown = [name for name in names if name not in INIT_CHECKPOINT_MODULES]
        if unknown or ("all" in names and len(names) > 1):
            raise ConfigError(
                f"{_where(path, 'init_checkpoint_modules')} is {modules!r}: give `all`, or "
                "`backbone` and/or `decoder`"
            )
        allowed = self.allowed_mask_class_ids
        num_classes = self.model.num_classes
        if allowed is not None and any(not 0 < i < max(num_classes, 1) for i in allowed):
            raise ConfigError(
                f"{_where(path, 'allowed_mask_class_ids')} is {allowed}: class ids must lie "
                f"in [1, {num_classes}) (`model.num_classes` is {num_classes})"
            )
        if allowed is not None and not self.model.include_mask:
            raise ConfigError(
                f"{_where(path, 'allowed_mask_class_ids')} is set but "
                f"{_where(path, 'model.include_mask')} is false: there is no mask head"
            )


def _coco_experiment(
    model: MaskRCNN,
    *,
    train_batch_size: int,
    eval_batch_size: int,
    aug_scale: tuple[float, float],
    steps_per_epoch: int,
    train_steps: int,
    boundaries: tuple[int, int],
    learning_rates: tuple[float, float, float],
    warmup_steps: int,
    runtime: RuntimeConfig,
    **task_fields,
) -> ExperimentConfig:
    """A COCO two-stage recipe: 91 classes, flips and scale jitter in `aug_scale`, SGD with
    momentum 0.9, linear warmup from 0.0067 and two tenfold decays, L2 decay 4e-5, and
    evaluation against `instances_val2017.json` every `steps_per_epoch` steps."""
    train, validation = retinanet.coco_data(
        DataConfig,
        Parser(aug_rand_hflip=True, aug_scale_min=aug_scale[0], aug_scale_max=aug_scale[1]),
        train_batch_size,
        eval_batch_size,
        drop_remainder=False,
    )
    model.num_classes = 91
    return ExperimentConfig(
        runtime=runtime,
        task=MaskRCNNTask(
            annotation_file=os.path.join(COCO_INPUT_PATH_BASE, "instances_val2017.json"),
            model=model,
            losses=Losses(l2_weight_decay=0.00004),
            train_data=train,
            validation_data=validation,
            **task_fields,
        ),
        trainer=retinanet.coco_trainer(
            steps_per_epoch=steps_per_epoch,
            train_steps=train_steps,
            eval_batch_size=eval_batch_size,
            boundaries=list(boundaries),
            learning_rates=list(learning_rates),
            warmup_steps=warmup_steps,
        ),
    )


def _resnetfpn_coco(include_mask: bool, runtime: RuntimeConfig) -> ExperimentConfig:
    """ResNet-50-FPN at 1024x1024: 22,500 steps of 64 images from an ImageNet checkpoint."""
    model = MaskRCNN(input_size=[1024, 1024, 3], include_mask=include_mask)
    if not include_mask:
        model.mask_head = model.mask_sampler = model.mask_roi_aligner = None
    return _coco_experiment(
        model,
        train_batch_size=64,
        eval_batch_size=8,
        aug_scale=(0.8, 1.25),
        steps_per_epoch=500,
        train_steps=22500,
        boundaries=(15000, 20000),
        learning_rates=(0.12, 0.012, 0.0012),
        warmup_steps=500,
        runtime=runtime,
        init_checkpoint=_IMAGENET_RESNET50,
        init_checkpoint_modules="backbone",
    )


def fasterrcnn_resnetfpn_coco() -> ExperimentConfig:
    """Faster R-CNN ResNet-50-FPN on COCO (Ren et al., 2015; Model Garden's recipe)."""
    return _resnetfpn_coco(False, RuntimeConfig(mixed_precision_dtype="bfloat16"))


def maskrcnn_resnetfpn_coco() -> ExperimentConfig:
    """Mask R-CNN ResNet-50-FPN on COCO (He et al., 2017; Model Garden's recipe)."""
    return _resnetfpn_coco(True, RuntimeConfig(mixed_precision_dtype="bfloat16", enable_xla=True))


def _spinenet49_model(activation: str = "relu", **fields) -> MaskRCNN:
    """SpineNet-49 on levels 3-7 at 640x640 with the identity decoder and 3-stride anchors."""
    return MaskRCNN(
        backbone=backbones.Backbone(
            type="spinenet",
            spinenet=backbones.SpineNet(model_id="49", min_level=3, max_level=7),
        ),
        decoder=decoders.Decoder(type="identity", identity=decoders.Identity()),
        anchor=Anchor(anchor_size=3),
        norm_activation=common.NormActivation(use_sync_bn=True, activation=activation),
        input_size=[640, 640, 3],
        min_level=3,
        max_level=7,
        include_mask=True,
        **fields,
    )


def maskrcnn_spinenet_coco() -> ExperimentConfig:
    """Mask R-CNN SpineNet-49 on COCO at 640x640 (Du et al., 2020; Model Garden's recipe)."""
    steps_per_epoch = 463
    return _coco_experiment(
        _spinenet49_model(),
        train_batch_size=256,
        eval_batch_size=8,
        aug_scale=(0.5, 2.0),
        steps_per_epoch=steps_per_epoch,
        train_steps=350 * steps_per_epoch,
        boundaries=(320 * steps_per_epoch, 340 * steps_per_epoch),
        learning_rates=(0.32, 0.032, 0.0032),
        warmup_steps=2000,
        runtime=RuntimeConfig(mixed_precision_dtype="bfloat16"),
    )


def cascadercnn_spinenet_coco() -> ExperimentConfig:
    """Cascade R-CNN-RS SpineNet-49 on COCO (Cai and Vasconcelos, 2018; Du et al., 2021)."""
    steps_per_epoch = 463
    return _coco_experiment(
        _spinenet49_model(
            activation="swish",
            roi_sampler=ROISampler(cascade_iou_thresholds=[0.6, 0.7]),
            detection_head=DetectionHead(
                class_agnostic_bbox_pred=True, cascade_class_ensemble=True
            ),
        ),
        train_batch_size=256,
        eval_batch_size=8,
        aug_scale=(0.1, 2.5),
        steps_per_epoch=steps_per_epoch,
        train_steps=500 * steps_per_epoch,
        boundaries=(475 * steps_per_epoch, 490 * steps_per_epoch),
        learning_rates=(0.32, 0.032, 0.0032),
        warmup_steps=2000,
        runtime=RuntimeConfig(mixed_precision_dtype="bfloat16"),
    )


def maskrcnn_mobilenet_coco() -> ExperimentConfig:
    """Mask R-CNN MobileNetV2 on COCO at 512x512, half-width separable FPN and heads."""
    steps_per_epoch = 232
    return _coco_experiment(
        MaskRCNN(
            backbone=backbones.Backbone(
                type="mobilenet", mobilenet=backbones.MobileNet(model_id="MobileNetV2")
            ),
            decoder=decoders.Decoder(
                type="fpn", fpn=decoders.FPN(num_filters=128, use_separable_conv=True)
            ),
            rpn_head=RPNHead(use_separable_conv=True, num_filters=128),
            detection_head=DetectionHead(use_separable_conv=True, num_filters=128, fc_dims=512),
            mask_head=MaskHead(use_separable_conv=True, num_filters=128),
            anchor=Anchor(anchor_size=3),
            norm_activation=common.NormActivation(
                activation="relu6", norm_momentum=0.99, norm_epsilon=0.001, use_sync_bn=True
            ),
            input_size=[512, 512, 3],
            min_level=3,
            max_level=6,
            include_mask=True,
        ),
        train_batch_size=512,
        eval_batch_size=512,
        aug_scale=(0.5, 2.0),
        steps_per_epoch=steps_per_epoch,
        train_steps=350 * steps_per_epoch,
        boundaries=(320 * steps_per_epoch, 340 * steps_per_epoch),
        learning_rates=(0.32, 0.032, 0.0032),
        warmup_steps=2000,
        runtime=RuntimeConfig(mixed_precision_dtype="bfloat16"),
    )


SHAPES_MULTI_TRAIN_EXAMPLES = retinanet.SHAPES_MULTI_TRAIN_EXAMPLES
SHAPES_MULTI_VAL_EXAMPLES = retinanet.SHAPES_MULTI_VAL_EXAMPLES
#: The 9 shape classes of `garden_shapes` plus background (class 0).
SHAPES_NUM_CLASSES = retinanet.SHAPES_DETECTION_NUM_CLASSES


def shapes_instance_segmentation() -> ExperimentConfig:
    """A small Mask R-CNN on the built-in `garden_shapes/multi` dataset (128x128, 1-4 shapes).

    A half-width ResNet-18 with a 64-filter FPN on levels 2-5, two anchor scales per
    octave (the shapes are about 20 to 60 pixels across), a 64-filter RPN head, a box head of one
    256-wide fully connected layer on 7x7 crops, and a two-convolution mask head giving
    28x28 masks; 64 ROIs and 16 masks are sampled per image from 100 proposals. Trained
    from scratch with SGD and a cosine schedule, it is sized for 2 CPU cores.
    Evaluation reports the COCO box and mask metrics against the ground truth gathered from
    the validation split (no annotation file). The dataset is generated into
    `tfds_data_dir` (TFDS's default directory when empty) the first time it is read, and
    reused afterwards.
    """
    batch = 16
    epoch = SHAPES_MULTI_TRAIN_EXAMPLES // batch
    epochs = 12
    image_size = 128

    def data(split: str, is_training: bool) -> DataConfig:
        parser = Parser(
            aug_rand_hflip=is_training,
            aug_scale_min=0.8 if is_training else 1.0,
            aug_scale_max=1.2 if is_training else 1.0,
            max_num_instances=8,
            rpn_batch_size_per_im=128,
            mask_crop_size=56,
        )
        return retinanet.shapes_data(DataConfig, parser, split, is_training, batch)

    return ExperimentConfig(
        runtime=RuntimeConfig(distribution_strategy="one_device", num_gpus=0, seed=1),
        task=MaskRCNNTask(
            model=MaskRCNN(
                num_classes=SHAPES_NUM_CLASSES,
                input_size=[image_size, image_size, 3],
                min_level=2,
                max_level=5,
                anchor=Anchor(num_scales=2, aspect_ratios=[0.5, 1.0, 2.0], anchor_size=3.0),
                include_mask=True,
                backbone=backbones.Backbone(
                    type="resnet", resnet=backbones.ResNet(model_id=18, depth_multiplier=0.5)
                ),
                decoder=decoders.Decoder(type="fpn", fpn=decoders.FPN(num_filters=64)),
                rpn_head=RPNHead(num_convs=1, num_filters=64),
                detection_head=DetectionHead(num_convs=0, num_filters=64, num_fcs=1, fc_dims=256),
                roi_generator=ROIGenerator(
                    pre_nms_top_k=500,
                    num_proposals=100,
                    test_pre_nms_top_k=500,
                    test_num_proposals=100,
                ),
                roi_sampler=ROISampler(num_sampled_rois=64),
                detection_generator=DetectionGenerator(
                    nms_version="batched", pre_nms_top_k=500, max_num_detections=50
                ),
                mask_head=MaskHead(num_convs=2, num_filters=64),
                mask_sampler=MaskSampler(num_sampled_masks=16),
                norm_activation=common.NormActivation(
                    norm_momentum=0.9, norm_epsilon=1e-5, use_sync_bn=False
                ),
            ),
            losses=Losses(l2_weight_decay=1e-4),
            train_data=data("train", True),
            validation_data=data("validation", False),
        ),
        trainer=retinanet.shapes_trainer(epochs, epoch, "mask_AP", 0.02),
    )
