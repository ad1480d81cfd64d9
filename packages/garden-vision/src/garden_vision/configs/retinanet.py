"""RetinaNet configs and experiments (Model Garden's `configs.retinanet`).

Field names and defaults are Model Garden's (tf-models-official 2.20), so its RetinaNet
experiment YAML loads as is. Experiments (Model Garden's names and recipes):

- `retinanet`: the bare task, every setting at its default.
- `retinanet_resnetfpn_coco`: ResNet-50-FPN at 640x640 on COCO, 72 epochs of SGD from an
  ImageNet checkpoint.
- `retinanet_spinenet_coco`: SpineNet-49 at 640x640, 500 epochs from scratch.
- `retinanet_mobile_coco`: SpineNet-Mobile-49 with a separable 48-filter head at 384x384,
  600 epochs from scratch.
- `shapes_detection`: a small RetinaNet on the built-in, generated `garden_shapes/multi`
  dataset; it trains on a CPU in minutes.

Point `task.train_data.input_path` / `task.validation_data.input_path` at COCO TFRecords
(Model Garden's layout: `coco/train*`, `coco/val*`) and `task.annotation_file` at
`instances_val2017.json`.

This module defines configs only (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import os

from garden_core.config import (
    Config,
    ConfigError,
    ExperimentConfig,
    OptimizationConfig,
    RuntimeConfig,
    TaskConfig,
    TrainerConfig,
)
from garden_core.config import (
    DataConfig as BaseDataConfig,
)
from garden_vision.configs import backbones, common, decoders

COCO_INPUT_PATH_BASE = "coco"
COCO_TRAIN_EXAMPLES = 118287
COCO_VAL_EXAMPLES = 5000

# Model Garden keeps these names here for backward compatibility; they are `common`'s.
TfExampleDecoder = common.TfExampleDecoder
TfExampleDecoderLabelMap = common.TfExampleDecoderLabelMap
DataDecoder = common.DataDecoder

#: Parser augmentations RetinaNet supports (`aug_type.type`): box-aware AutoAugment.
DETECTION_AUGMENTATIONS = ("autoaug",)
BOX_OUTSIDE_IMAGE = ("error", "clip")
NMS_VERSIONS = ("batched", "v1", "v2", "tflite")
ATTRIBUTE_HEAD_TYPES = ("regression", "classification")


def _where(path: str, name: str) -> str:
    return f"`{path + '.' if path else ''}{name}`"


@dataclasses.dataclass
class Parser(Config):
    """How training and evaluation examples become model inputs and anchor labels.

    Attributes:
      match_threshold: Anchors with IoU >= this with a ground-truth box are positives.
      unmatched_threshold: Anchors with IoU < this with every box are negatives; those in
        between are ignored (class weight 0).
      aug_rand_hflip: Random horizontal flips in training.
      aug_scale_min, aug_scale_max: Random scale jitter of the output size in training
        (resize, then random crop or pad).
      skip_crowd_during_training: Drop crowd boxes from the training targets.
      max_num_instances: Evaluation ground truths are padded to this many boxes.
      aug_type: Box-aware AutoAugment (`type: autoaug`, e.g. policy `detection_v0`), or
        None.
      pad: Pad the image to a multiple of `2**max_level`.
      box_outside_image: Garden: what a ground-truth box outside the image is: an
        `error` naming the record, or `clip`ped to the image.
    """

    match_threshold: float = 0.5
    unmatched_threshold: float = 0.5
    aug_rand_hflip: bool = False
    aug_scale_min: float = 1.0
    aug_scale_max: float = 1.0
    skip_crowd_during_training: bool = True
    max_num_instances: int = 100
    aug_type: common.Augmentation | None = None
    pad: bool = True
    box_outside_image: str = "error"

    restrictions = (
        "aug_scale_min > 0",
        "aug_scale_min <= aug_scale_max",
        "unmatched_threshold <= match_threshold",
        "max_num_instances > 0",
    )
    unsupported_fields = {
        "num_channels": (3, "the detection parser reads 3-channel images"),
        "aug_rand_jpeg": (None, "random JPEG-quality augmentation is not implemented"),
        "keep_aspect_ratio": (True, "resizing without keeping the aspect ratio is not offered"),
        "aug_policy": (None, "Model Garden no longer reads it; use `aug_type`"),
    }

    def validate(self, path: str = "") -> None:
        """Checks the restrictions, `box_outside_image` and the augmentation type.

        Raises:
          ConfigError: Naming the field that is wrong.
        """
        super().validate(path)
        if self.box_outside_image not in BOX_OUTSIDE_IMAGE:
            raise ConfigError(
                f"{_where(path, 'box_outside_image')} is {self.box_outside_image!r}: expected "
                + " or ".join(repr(v) for v in BOX_OUTSIDE_IMAGE)
            )
        kind = None if self.aug_type is None else self.aug_type.type
        if kind is not None and kind not in DETECTION_AUGMENTATIONS:
            raise ConfigError(
                f"{_where(path, 'aug_type.type')} is {kind!r}: detection supports "
                f"{', '.join(DETECTION_AUGMENTATIONS)} (box-aware AutoAugment, e.g. "
                "`detection_v0`)"
            )


@dataclasses.dataclass
class DataConfig(BaseDataConfig):
    """A detection input pipeline: COCO-style tf.Example records (or TFDS COCO).

    Attributes:
      dtype: The image dtype the model gets: `bfloat16`, `float32` or `float16`.
      decoder: How records are decoded (`simple_decoder` or `label_map_decoder`).
      parser: Augmentation, resizing and anchor labelling.
      file_type: `tfrecord` or `tfrecord_compressed` (GZIP).
    """

    input_path: str | list[str] | dict[str, str | list[str]] = ""
    global_batch_size: int = 0
    is_training: bool | None = False
    dtype: str = "bfloat16"
    decoder: common.DataDecoder = dataclasses.field(default_factory=common.DataDecoder)
    parser: Parser = dataclasses.field(default_factory=Parser)
    shuffle_buffer_size: int = 10000
    file_type: str = "tfrecord"

    unsupported_fields = {
        **BaseDataConfig.unsupported_fields,
        "weights": (None, "per-input weights for data mixing are not implemented"),
    }


@dataclasses.dataclass
class Anchor(Config):
    """The anchors at each position of each level.

    Attributes:
      num_scales: Anchor sizes per octave (`2**(i / num_scales)`).
      aspect_ratios: Width / height ratios at each scale.
      anchor_size: The base anchor side in units of the level's stride (4: 32 pixels at
        level 3).
    """

    num_scales: int = 3
    aspect_ratios: list[float] = dataclasses.field(default_factory=lambda: [0.5, 1.0, 2.0])
    anchor_size: float = 4.0

    restrictions = ("num_scales >= 1", "anchor_size > 0")


@dataclasses.dataclass
class Losses(Config):
    """RetinaNet's loss (see `garden_vision.losses.retinanet_losses`).

    Attributes:
      loss_weight: Multiplies the total loss.
      focal_loss_alpha: The focal loss' weight of positives.
      focal_loss_gamma: The focal loss' focusing exponent.
      huber_loss_delta: The box regression's Huber delta.
      box_loss_weight: Multiplies the box loss.
      l2_weight_decay: L2 weight decay, as kernel regularization `l2(decay / 2)`.
    """

    loss_weight: float = 1.0
    focal_loss_alpha: float = 0.25
    focal_loss_gamma: float = 1.5
    huber_loss_delta: float = 0.1
    box_loss_weight: int = 50
    l2_weight_decay: float = 0.0

    restrictions = (
        "focal_loss_alpha >= 0",
        "focal_loss_alpha <= 1",
        "focal_loss_gamma >= 0",
        "huber_loss_delta > 0",
        "l2_weight_decay >= 0",
    )


@dataclasses.dataclass
class AttributeHead(Config):
    """An extra per-anchor prediction of the RetinaNet head.

    Attributes:
      name: The attribute's name (its key in targets and outputs).
      type: `regression` (Huber loss) or `classification` (focal loss over `size` classes).
      size: Values per anchor (regression) or classes (classification).
      prediction_tower_name: Attributes naming the same tower share it; empty for a tower
        of its own.
      num_convs, num_filters: The tower's depth and width (None: the head's). Attributes
        sharing a tower use the first one's.
    """

    name: str = ""
    type: str = "regression"
    size: int = 1
    prediction_tower_name: str = ""
    num_convs: int | None = None
    num_filters: int | None = None

    restrictions = ("size >= 1",)

    def validate(self, path: str = "") -> None:
        """Checks the restrictions and the type.

        Raises:
          ConfigError: If `type` is neither `regression` nor `classification`.
        """
        super().validate(path)
        if self.type not in ATTRIBUTE_HEAD_TYPES:
            raise ConfigError(
                f"{_where(path, 'type')} is {self.type!r}: expected "
                + " or ".join(ATTRIBUTE_HEAD_TYPES)
            )


@dataclasses.dataclass
class RetinaNetHead(Config):
    """The class and box towers (`heads.RetinaNetHead`).

    Attributes:
      num_convs: Convolutions in each tower.
      num_filters: Their width.
      use_separable_conv: Depthwise-separable convolutions.
      attribute_heads: Extra per-anchor predictions.
      share_classification_heads: Classification attributes read the class tower.
      share_level_convs: One set of tower convolutions for every level (None: not shared,
        as in Model Garden).
    """

    num_convs: int = 4
    num_filters: int = 256
    use_separable_conv: bool = False
    attribute_heads: list[AttributeHead] = dataclasses.field(default_factory=list)
    share_classification_heads: bool = False
    share_level_convs: bool | None = True

    restrictions = ("num_convs >= 0", "num_filters > 0")


@dataclasses.dataclass
class TFLitePostProcessingConfig(Config):
    """Settings of TFLite's `TFLite_Detection_PostProcess` op (`nms_version: tflite`).

    Model Garden keeps this class in `configs.common`.

    Attributes:
      max_detections: Boxes kept per image.
      max_classes_per_detection: Classes reported per box (class-agnostic NMS).
      use_regular_nms: Per-class NMS (slower) instead of class-agnostic NMS.
      nms_score_threshold: Boxes scoring below it are dropped.
      nms_iou_threshold: The IoU above which NMS suppresses a box.
      normalize_anchor_coordinates: Anchors (and output boxes) in [0, 1] coordinates.
      omit_nms: Return the decoded boxes and scores before NMS.
      detections_per_class: Boxes per class with regular NMS.
      y_scale, x_scale, w_scale, h_scale: The box coder's scales (the generator's
        `box_coder_weights` as [y, x, w, h]).
    """

    max_detections: int = 200
    max_classes_per_detection: int = 5
    use_regular_nms: bool = False
    nms_score_threshold: float = 0.1
    nms_iou_threshold: float = 0.5
    normalize_anchor_coordinates: bool | None = False
    omit_nms: bool | None = False
    detections_per_class: int | None = 5
    y_scale: float = 1.0
    x_scale: float = 1.0
    w_scale: float = 1.0
    h_scale: float = 1.0


@dataclasses.dataclass
class DetectionGenerator(Config):
    """Inference post-processing (`layers.MultilevelDetectionGenerator`).

    Attributes:
      apply_nms: Run non-maximum suppression; False returns every decoded box and score.
      pre_nms_top_k: Boxes per image (per level with `v1`) kept before NMS.
      pre_nms_score_threshold: Boxes scoring below it are dropped before NMS.
      nms_iou_threshold: The IoU above which NMS suppresses a box.
      max_num_detections: Boxes kept per image.
      nms_version: `batched` (`tf.image.combined_non_max_suppression`), `v1` (per class,
        soft-NMS capable), `v2` (padded, fixed shapes, per class) or `tflite` (TFLite's
        detection post-processing op).
      use_cpu_nms: Run NMS on the CPU.
      soft_nms_sigma: Soft-NMS' Gaussian sigma (only with `v1`), or None for hard NMS.
      tflite_post_processing: The settings of `nms_version: tflite`.
      return_decoded: Also return the decoded boxes and scores with NMS.
      use_class_agnostic_nms: One NMS over every box's best class (with `v1` or `v2`).
      box_coder_weights: The box coder's weights `[y, x, h, w]`, or None for none.
    """

    apply_nms: bool = True
    pre_nms_top_k: int = 5000
    pre_nms_score_threshold: float = 0.05
    nms_iou_threshold: float = 0.5
    max_num_detections: int = 100
    nms_version: str = "v2"
    use_cpu_nms: bool = False
    soft_nms_sigma: float | None = None
    tflite_post_processing: TFLitePostProcessingConfig = dataclasses.field(
        default_factory=TFLitePostProcessingConfig
    )
    return_decoded: bool | None = None
    use_class_agnostic_nms: bool | None = False
    box_coder_weights: list[float] | None = None

    restrictions = (
        "pre_nms_top_k > 0",
        "max_num_detections > 0",
        "nms_iou_threshold >= 0",
        "nms_iou_threshold <= 1",
    )
    unsupported_fields = {
        "decode_boxes": (True, "RetinaNet always decodes its boxes"),
    }

    def validate(self, path: str = "") -> None:
        """Checks the restrictions, the NMS version and options, and the box coder weights.

        Raises:
          ConfigError: Naming the field that is wrong.
        """
        super().validate(path)
        if self.nms_version not in NMS_VERSIONS:
            raise ConfigError(
                f"{_where(path, 'nms_version')} is {self.nms_version!r}: expected one of "
                + ", ".join(NMS_VERSIONS)
            )
        weights = self.box_coder_weights
        if weights is not None and (len(weights) != 4 or min(weights) <= 0):
            raise ConfigError(
                f"{_where(path, 'box_coder_weights')} is {weights}: give 4 positive weights "
                "[y, x, h, w], or None"
            )
        if self.soft_nms_sigma is not None and self.nms_version != "v1":
            raise ConfigError(
                f"{_where(path, 'soft_nms_sigma')} is {self.soft_nms_sigma}: soft-NMS needs "
                f"`nms_version: v1`, not {self.nms_version!r}"
            )
        if self.use_class_agnostic_nms and self.nms_version not in ("v1", "v2"):
            raise ConfigError(
                f"{_where(path, 'use_class_agnostic_nms')} needs `nms_version` v1 or v2, not "
                f"{self.nms_version!r} (for tflite, set "
                "`tflite_post_processing.use_regular_nms: false`)"
            )


@dataclasses.dataclass
class RetinaNet(Config):
    """The RetinaNet model.

    Attributes:
      num_classes: Classes, background (0) included (COCO: 91).
      input_size: `[height, width, channels]`.
      min_level, max_level: The feature levels the head predicts from.
      anchor: The anchors.
      backbone: The backbone (`type` plus its settings).
      decoder: The decoder (`fpn`, `nasfpn`, `identity`, ...).
      head: The dense head.
      detection_generator: Inference post-processing.
      norm_activation: Normalization and activation of the backbone, decoder and head.
    """

    num_classes: int = 0
    input_size: list[int] = dataclasses.field(default_factory=list)
    min_level: int = 3
    max_level: int = 7
    anchor: Anchor = dataclasses.field(default_factory=Anchor)
    backbone: backbones.Backbone = dataclasses.field(
        default_factory=lambda: backbones.Backbone(type="resnet", resnet=backbones.ResNet())
    )
    decoder: decoders.Decoder = dataclasses.field(
        default_factory=lambda: decoders.Decoder(type="fpn", fpn=decoders.FPN())
    )
    head: RetinaNetHead = dataclasses.field(default_factory=RetinaNetHead)
    detection_generator: DetectionGenerator = dataclasses.field(default_factory=DetectionGenerator)
    norm_activation: common.NormActivation = dataclasses.field(
        default_factory=common.NormActivation
    )

    restrictions = ("min_level <= max_level", "num_classes >= 0")

    def validate(self, path: str = "") -> None:
        """Checks the restrictions, NMS with attributes, and SpineNet's levels.

        Attribute heads need `nms_version` `v1` or `v2`, which carry attributes through NMS.

        SpineNet (and SpineNet-Mobile) make the feature pyramid themselves (Model Garden
        pairs them with the identity decoder): their `min_level` and `max_level` must be
        the model's.

        Raises:
          ConfigError: Naming the fields that disagree.
        """
        super().validate(path)
        generator = self.detection_generator
        if (
            self.head.attribute_heads
            and generator.apply_nms
            and generator.nms_version not in ("v1", "v2")
        ):
            raise ConfigError(
                f"{_where(path, 'detection_generator.nms_version')} is "
                f"{generator.nms_version!r}: attribute heads need `v1` or `v2` (the other "
                "versions do not carry attributes through NMS)"
            )
        if self.backbone.type in ("spinenet", "spinenet_mobile"):
            branch = getattr(self.backbone, self.backbone.type)
            for name in ("min_level", "max_level"):
                if getattr(branch, name) != getattr(self, name):
                    raise ConfigError(
                        f"{_where(path, f'backbone.{self.backbone.type}.{name}')} is "
                        f"{getattr(branch, name)} but {_where(path, name)} is "
                        f"{getattr(self, name)}: the {self.backbone.type} backbone must "
                        "output the levels the head reads"
                    )


@dataclasses.dataclass
class ExportConfig(Config):
    """What an exported RetinaNet serves.

    Attributes:
      output_normalized_coordinates: Boxes in [0, 1] of the original image instead of
        pixels.
      cast_num_detections_to_float: `num_detections` as float32.
      cast_detection_classes_to_float: `detection_classes` as float32.
      output_intermediate_features: Also serve the backbone's and decoder's features.
    """

    output_normalized_coordinates: bool = False
    cast_num_detections_to_float: bool = False
    cast_detection_classes_to_float: bool = False
    output_intermediate_features: bool = False


@dataclasses.dataclass
class RetinaNetTask(TaskConfig):
    """The RetinaNet detection task.

    Attributes:
      init_checkpoint: A checkpoint (prefix or directory) to initialize from.
      init_checkpoint_modules: `all`, or the parts to restore: `backbone` and/or
        `decoder` (a name or a list).
      annotation_file: COCO annotations of the validation data (`instances_val2017.json`);
        None builds the ground truth from the validation records.
      per_category_metrics: Also report AP per category.
      export_config: What an exported model serves.
      use_coco_metrics: Compute COCO AP / AR in evaluation.
      freeze_backbone: Train everything but the backbone.
      max_num_eval_detections: Detections per image COCO evaluation reads.
    """

    model: RetinaNet = dataclasses.field(default_factory=RetinaNet)
    train_data: DataConfig = dataclasses.field(default_factory=lambda: DataConfig(is_training=True))
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(is_training=False)
    )
    losses: Losses = dataclasses.field(default_factory=Losses)
    init_checkpoint: str | None = None
    init_checkpoint_modules: str | list[str] = "all"
    annotation_file: str | None = None
    per_category_metrics: bool = False
    export_config: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    use_coco_metrics: bool = True
    freeze_backbone: bool = False
    max_num_eval_detections: int = 100

    restrictions = (
        "train_data.is_training != None",
        "validation_data.is_training != None",
        "max_num_eval_detections > 0",
    )
    unsupported_fields = {
        **TaskConfig.unsupported_fields,
        "use_wod_metrics": (False, "Waymo Open Dataset metrics are not offered"),
    }

    def validate(self, path: str = "") -> None:
        """Checks the restrictions and `init_checkpoint_modules`.

        Raises:
          ConfigError: For a module other than `all`, `backbone` or `decoder`.
        """
        super().validate(path)
        modules = self.init_checkpoint_modules
        names = [modules] if isinstance(modules, str) else list(modules)
        unknown = [name for name in names if name not in ("all", "backbone", "decoder")]
        if unknown or ("all" in names and len(names) > 1):
            raise ConfigError(
                f"{_where(path, 'init_checkpoint_modules')} is {modules!r}: give `all`, or "
                "`backbone` and/or `decoder`"
            )


def retinanet() -> ExperimentConfig:
    """The bare RetinaNet experiment (every setting at its default)."""
    return ExperimentConfig(task=RetinaNetTask(), trainer=TrainerConfig())


def coco_data(
    data_class: type[DataConfig],
    parser: Config,
    train_batch_size: int,
    eval_batch_size: int,
    **validation_fields,
) -> tuple[DataConfig, DataConfig]:
    """The COCO TFRecords under `COCO_INPUT_PATH_BASE` (`train*`, `val*`) as Model Garden's
    detection recipes read them: `parser` for training, the defaults for validation."""
    train = data_class(
        input_path=os.path.join(COCO_INPUT_PATH_BASE, "train*"),
        is_training=True,
        global_batch_size=train_batch_size,
        parser=parser,
    )
    validation = data_class(
        input_path=os.path.join(COCO_INPUT_PATH_BASE, "val*"),
        is_training=False,
        global_batch_size=eval_batch_size,
        **validation_fields,
    )
    return train, validation


def coco_trainer(
    *,
    steps_per_epoch: int,
    train_steps: int,
    eval_batch_size: int,
    boundaries: list[int],
    learning_rates: list[float],
    warmup_steps: int,
) -> TrainerConfig:
    """Model Garden's COCO detection schedule: SGD with momentum 0.9, linear warmup from
    0.0067, stepwise decays; checkpoints, summaries and evaluation every epoch."""
    return TrainerConfig(
        train_steps=train_steps,
        validation_steps=COCO_VAL_EXAMPLES // eval_batch_size,
        validation_interval=steps_per_epoch,
        steps_per_loop=steps_per_epoch,
        summary_interval=steps_per_epoch,
        checkpoint_interval=steps_per_epoch,
        optimizer_config=OptimizationConfig.from_dict(
            {
                "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9}},
                "learning_rate": {
                    "type": "stepwise",
                    "stepwise": {"boundaries": list(boundaries), "values": list(learning_rates)},
                },
                "warmup": {
                    "type": "linear",
                    "linear": {"warmup_steps": warmup_steps, "warmup_learning_rate": 0.0067},
                },
            }
        ),
    )


def _coco_trainer(
    train_batch_size: int,
    eval_batch_size: int,
    epochs: int,
    decay_epochs: tuple[int, int],
    warmup_steps: int,
) -> TrainerConfig:
    """RetinaNet's COCO schedule: 0.32 per 256 images, two tenfold decays at `decay_epochs`."""
    steps_per_epoch = COCO_TRAIN_EXAMPLES // train_batch_size
    return coco_trainer(
        steps_per_epoch=steps_per_epoch,
        train_steps=epochs * steps_per_epoch,
        eval_batch_size=eval_batch_size,
        boundaries=[epoch * steps_per_epoch for epoch in decay_epochs],
        learning_rates=[rate * train_batch_size / 256.0 for rate in (0.32, 0.032, 0.0032)],
        warmup_steps=warmup_steps,
    )


def _coco_experiment(
    model: RetinaNet,
    *,
    mixed_precision_dtype: str,
    aug_scale: tuple[float, float],
    l2_weight_decay: float,
    epochs: int,
    decay_epochs: tuple[int, int],
    warmup_steps: int,
    **task_fields,
) -> ExperimentConfig:
    """A COCO RetinaNet recipe: 91 classes, levels 3-7, batches of 256 (training) and 8,
    flips and scale jitter in `aug_scale`, evaluation against `instances_val2017.json`."""
    train_batch_size, eval_batch_size = 256, 8
    train, validation = coco_data(
        DataConfig,
        Parser(aug_rand_hflip=True, aug_scale_min=aug_scale[0], aug_scale_max=aug_scale[1]),
        train_batch_size,
        eval_batch_size,
    )
    model.num_classes = 91
    model.min_level, model.max_level = 3, 7
    return ExperimentConfig(
        runtime=RuntimeConfig(mixed_precision_dtype=mixed_precision_dtype),
        task=RetinaNetTask(
            annotation_file=os.path.join(COCO_INPUT_PATH_BASE, "instances_val2017.json"),
            model=model,
            losses=Losses(l2_weight_decay=l2_weight_decay),
            train_data=train,
            validation_data=validation,
            **task_fields,
        ),
        trainer=_coco_trainer(
            train_batch_size, eval_batch_size, epochs, decay_epochs, warmup_steps
        ),
    )


def retinanet_resnetfpn_coco() -> ExperimentConfig:
    """RetinaNet ResNet-50-FPN on COCO at 640x640 (Lin et al., 2017; Model Garden's recipe)."""
    return _coco_experiment(
        RetinaNet(
            input_size=[640, 640, 3],
            norm_activation=common.NormActivation(use_sync_bn=False),
        ),
        mixed_precision_dtype="bfloat16",
        aug_scale=(0.8, 1.2),
        l2_weight_decay=1e-4,
        epochs=72,
        decay_epochs=(57, 67),
        warmup_steps=500,
        init_checkpoint="gs://cloud-tpu-checkpoints/vision-2.0/resnet50_imagenet/ckpt-28080",
        init_checkpoint_modules="backbone",
    )


def retinanet_spinenet_coco() -> ExperimentConfig:
    """RetinaNet SpineNet-49 on COCO at 640x640 (Du et al., 2020; Model Garden's recipe)."""
    return _coco_experiment(
        RetinaNet(
            backbone=backbones.Backbone(
                type="spinenet",
                spinenet=backbones.SpineNet(
                    model_id="49", stochastic_depth_drop_rate=0.2, min_level=3, max_level=7
                ),
            ),
            decoder=decoders.Decoder(type="identity", identity=decoders.Identity()),
            anchor=Anchor(anchor_size=3),
            norm_activation=common.NormActivation(use_sync_bn=True, activation="swish"),
            input_size=[640, 640, 3],
        ),
        mixed_precision_dtype="float32",
        aug_scale=(0.1, 2.0),
        l2_weight_decay=4e-5,
        epochs=500,
        decay_epochs=(475, 490),
        warmup_steps=2000,
    )


def retinanet_mobile_coco() -> ExperimentConfig:
    """Mobile RetinaNet: SpineNet-Mobile-49 on COCO at 384x384 (Model Garden's recipe)."""
    return _coco_experiment(
        RetinaNet(
            backbone=backbones.Backbone(
                type="spinenet_mobile",
                spinenet_mobile=backbones.SpineNetMobile(
                    model_id="49",
                    stochastic_depth_drop_rate=0.2,
                    min_level=3,
                    max_level=7,
                    use_keras_upsampling_2d=False,
                ),
            ),
            decoder=decoders.Decoder(type="identity", identity=decoders.Identity()),
            head=RetinaNetHead(num_filters=48, use_separable_conv=True),
            anchor=Anchor(anchor_size=3),
            norm_activation=common.NormActivation(use_sync_bn=True, activation="swish"),
            input_size=[384, 384, 3],
        ),
        mixed_precision_dtype="float32",
        aug_scale=(0.1, 2.0),
        l2_weight_decay=3e-5,
        epochs=600,
        decay_epochs=(575, 590),
        warmup_steps=2000,
    )


SHAPES_MULTI_TRAIN_EXAMPLES = 2000
SHAPES_MULTI_VAL_EXAMPLES = 500
#: The 9 shape classes of `garden_shapes` plus background (class 0).
SHAPES_DETECTION_NUM_CLASSES = 10


def shapes_trainer(epochs: int, epoch: int, metric: str, learning_rate: float) -> TrainerConfig:
    """The trainer of the `garden_shapes` detection demos: SGD with momentum 0.9, a cosine
    schedule after one epoch of linear warm-up, a checkpoint every epoch, evaluation every
    four, and the best checkpoint by `metric` kept in `best_ckpt`."""
    return TrainerConfig(
        train_steps=epochs * epoch,
        steps_per_loop=epoch,
        summary_interval=epoch,
        checkpoint_interval=epoch,
        validation_interval=4 * epoch,
        validation_steps=-1,
        max_to_keep=3,
        best_checkpoint_export_subdir="best_ckpt",
        best_checkpoint_eval_metric=metric,
        optimizer_config=OptimizationConfig.from_dict(
            {
                "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9}},
                "learning_rate": {
                    "type": "cosine",
                    "cosine": {
                        "initial_learning_rate": learning_rate,
                        "decay_steps": epochs * epoch,
                    },
                },
                "warmup": {
                    "type": "linear",
                    "linear": {"warmup_steps": epoch, "warmup_learning_rate": 0.0},
                },
            }
        ),
    )


def shapes_data(
    data_class: type[DataConfig], parser: Config, split: str, is_training: bool, batch: int
) -> DataConfig:
    """A split of the built-in `garden_shapes/multi` dataset, cached, shuffled over all of it
    in training, read as float32."""
    return data_class(
        tfds_name="garden_shapes/multi",
        tfds_split=split,
        is_training=is_training,
        global_batch_size=batch,
        drop_remainder=is_training,
        dtype="float32",
        shuffle_buffer_size=SHAPES_MULTI_TRAIN_EXAMPLES,
        cache=True,
        seed=1 if is_training else None,
        parser=parser,
    )


def shapes_detection() -> ExperimentConfig:
    """A small RetinaNet on the built-in `garden_shapes/multi` dataset (128x128, 1-4 shapes).

    A half-width ResNet-18 with a 64-filter FPN on levels 3-5 and a two-convolution head,
    trained from scratch with SGD; it trains on 2 CPU cores in minutes. Evaluation reports
    the COCO metrics against the ground truth gathered from the validation split (no
    annotation file). The dataset is generated into `tfds_data_dir` (TFDS's default
    directory when empty) the first time it is read, and reused afterwards.
    """
    batch = 32
    epoch = SHAPES_MULTI_TRAIN_EXAMPLES // batch
    epochs = 16
    image_size = 128

    def data(split: str, is_training: bool) -> DataConfig:
        parser = Parser(
            aug_rand_hflip=True,
            aug_scale_min=0.8 if is_training else 1.0,
            aug_scale_max=1.2 if is_training else 1.0,
            max_num_instances=8,
        )
        return shapes_data(DataConfig, parser, split, is_training, batch)

    return ExperimentConfig(
        runtime=RuntimeConfig(distribution_strategy="one_device", num_gpus=0, seed=1),
        task=RetinaNetTask(
            model=RetinaNet(
                num_classes=SHAPES_DETECTION_NUM_CLASSES,
                input_size=[image_size, image_size, 3],
                min_level=3,
                max_level=5,
                anchor=Anchor(num_scales=2, aspect_ratios=[0.5, 1.0, 2.0], anchor_size=3.0),
                backbone=backbones.Backbone(
                    type="resnet", resnet=backbones.ResNet(model_id=18, depth_multiplier=0.5)
                ),
                decoder=decoders.Decoder(type="fpn", fpn=decoders.FPN(num_filters=64)),
                head=RetinaNetHead(num_convs=2, num_filters=64),
                detection_generator=DetectionGenerator(nms_version="batched", pre_nms_top_k=1000),
                norm_activation=common.NormActivation(
                    norm_momentum=0.9, norm_epsilon=1e-5, use_sync_bn=False
                ),
            ),
            losses=Losses(l2_weight_decay=1e-4),
            train_data=data("train", True),
            validation_data=data("validation", False),
        ),
        trainer=shapes_trainer(epochs, epoch, "AP", 0.04),
    )
