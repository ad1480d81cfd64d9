"""Semantic segmentation configs and experiments (`configs.semantic_segmentation`).

Field names and defaults are Model Garden's (tf-models-official 2.20), so its semantic
segmentation experiment YAML loads as is. Experiments (Model Garden's names and recipes):

- `semantic_segmentation`: the bare task, every field at its default.
- `seg_deeplabv3_pascal`: DeepLabV3 on a dilated ResNet-101 (output stride 16, multigrid
  `[1, 2, 4]`, DeepLab stem) with ASPP rates `[12, 24, 36]`, PASCAL VOC at 512x512.
- `seg_deeplabv3plus_pascal`: DeepLabV3+ (ASPP rates `[6, 12, 18]` and a decoder fusing the
  level-2 features), PASCAL VOC at 512x512.
- `seg_resnetfpn_pascal`: ResNet-50-FPN (levels 3-7) with a three-convolution head.
- `mnv2_deeplabv3_pascal`: DeepLabV3 on MobileNetV2 (output stride 16) with the pooling
  branch only.
- `seg_deeplabv3plus_cityscapes`, `mnv2_deeplabv3_cityscapes`,
  `mnv2_deeplabv3plus_cityscapes`: the same on Cityscapes (19 classes), 512x1024 crops of
  1024x2048 images.
- `shapes_segmentation`: a small DeepLabV3+ on the built-in, generated `garden_shapes/multi`
  dataset, sized to train on a CPU.

Point `task.train_data.input_path` / `task.validation_data.input_path` at TFRecords of
`image/encoded` + `image/segmentation/class/encoded` (PNG) examples, e.g. written by
`garden-images-to-tfrecords --masks_dir`. This module defines configs only (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import math
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
from garden_vision.configs import backbones, common, decoders, retinanet

# ImageNet's channel means and standard deviations on the 0-255 scale (the defaults of
# `DenseFeatureConfig`, as in `ops.preprocess_ops`).
_MEAN_RGB = [0.485 * 255, 0.456 * 255, 0.406 * 255]
_STDDEV_RGB = [0.229 * 255, 0.224 * 255, 0.225 * 255]

#: `SegmentationHead.feature_fusion` values.
FEATURE_FUSIONS = (
    None,
    "deeplabv3plus",
    "deeplabv3plus_sum_to_merge",
    "pyramid_fusion",
    "panoptic_fpn_fusion",
)
LOGIT_ACTIVATIONS = (None, "sigmoid", "softmax")
INIT_CHECKPOINT_MODULES = ("all", "backbone", "decoder")
_PARTITION = "spatial partitioning of the inputs across TPU cores is not offered"


def _where(path: str, name: str) -> str:
    return f"`{path + '.' if path else ''}{name}`"


@dataclasses.dataclass
class DenseFeatureConfig(Config):
    """A dense, PNG- or JPEG-encoded feature of the examples (the RGB image by default).

    Attributes:
      feature_name: Its key in the tf.Examples.
      num_channels: 1, 3 or 4.
      mean: Per-channel means on the 0-255 scale, `num_channels` values.
      stddev: Per-channel standard deviations on the 0-255 scale.
    """

    feature_name: str = "image/encoded"
    num_channels: int = 3
    mean: list[float] = dataclasses.field(default_factory=lambda: list(_MEAN_RGB))
    stddev: list[float] = dataclasses.field(default_factory=lambda: list(_STDDEV_RGB))

    def validate(self, path: str = "") -> None:
        """Checks the channel count and that `mean` and `stddev` give one value each.

        Raises:
          ConfigError: Naming the field that is wrong.
        """
        super().validate(path)
        if self.num_channels not in (1, 3, 4):
            raise ConfigError(
                f"{_where(path, 'num_channels')} is {self.num_channels}: encoded images have "
                "1, 3 or 4 channels"
            )
        for name in ("mean", "stddev"):
            values = getattr(self, name)
            if len(values) != self.num_channels:
                raise ConfigError(
                    f"{_where(path, name)} has {len(values)} values but "
                    f"{_where(path, 'num_channels')} is {self.num_channels}"
                )
        if any(value <= 0 for value in self.stddev):
            raise ConfigError(f"{_where(path, 'stddev')} is {self.stddev}: must be positive")


@dataclasses.dataclass
class DataConfig(BaseDataConfig):
    """A segmentation input pipeline: tf.Examples with PNG masks, or a TFDS dataset.

    Attributes:
      image_feature: The image feature and its normalization.
      output_size: `[height, width]` the image (and in training, the mask) is resized to.
      crop_size: In training, a random crop of this `[height, width]` after resizing to
        `output_size` (empty: no crop).
      resize_eval_groundtruth: Resize evaluation masks to `output_size` (True), or keep
        them at their original size padded to `groundtruth_padded_size` (False), in which
        case the predictions are rescaled to each image's size before scoring.
      groundtruth_padded_size: `[height, width]` evaluation masks are padded to when they
        are not resized.
      aug_scale_min, aug_scale_max: Random scale jitter in training.
      aug_rand_hflip: Random horizontal flips in training.
      preserve_aspect_ratio: Resize keeping the aspect ratio (then pad) rather than
        stretching to `output_size`.
      additional_dense_features: Further dense features stacked onto the image channels.
      centered_crop: Place a resized image smaller than the output in the middle of the
        padding instead of the top-left corner.
      dtype: The image dtype the model gets: `bfloat16`, `float32` or `float16`.
      decoder: How records are decoded (`simple_decoder`).
      file_type: `tfrecord` or `tfrecord_compressed` (GZIP).
    """

    input_path: str | list[str] | dict[str, str | list[str]] | None = None
    image_feature: DenseFeatureConfig = dataclasses.field(default_factory=DenseFeatureConfig)
    output_size: list[int] = dataclasses.field(default_factory=list)
    crop_size: list[int] = dataclasses.field(default_factory=list)
    global_batch_size: int = 0
    is_training: bool | None = True
    dtype: str = "float32"
    shuffle_buffer_size: int = 1000
    cycle_length: int = 10
    resize_eval_groundtruth: bool = True
    groundtruth_padded_size: list[int] = dataclasses.field(default_factory=list)
    aug_scale_min: float = 1.0
    aug_scale_max: float = 1.0
    aug_rand_hflip: bool = True
    preserve_aspect_ratio: bool = True
    drop_remainder: bool = True
    file_type: str = "tfrecord"
    decoder: common.DataDecoder | None = dataclasses.field(default_factory=common.DataDecoder)
    additional_dense_features: list[DenseFeatureConfig] = dataclasses.field(default_factory=list)
    centered_crop: bool = False

    restrictions = ("aug_scale_min > 0", "aug_scale_min <= aug_scale_max")
    unsupported_fields = {
        **BaseDataConfig.unsupported_fields,
        "weights": (None, "per-input weights for data mixing are not implemented"),
        "aug_policy": (None, "Model Garden's segmentation parser does not read it either"),
    }

    def validate(self, path: str = "") -> None:
        """Checks the sizes and the evaluation ground truth's size.

        Raises:
          ConfigError: Naming the field that is wrong.
        """
        super().validate(path)
        for name in ("output_size", "crop_size", "groundtruth_padded_size"):
            size = getattr(self, name)
            if size and (len(size) != 2 or any(int(side) <= 0 for side in size)):
                raise ConfigError(
                    f"{_where(path, name)} is {size}: expected [height, width] of positive "
                    "sides, or empty"
                )
        if (
            self.is_training is False
            and not self.resize_eval_groundtruth
            and not self.groundtruth_padded_size
        ):
            raise ConfigError(
                f"{_where(path, 'resize_eval_groundtruth')} is false but "
                f"{_where(path, 'groundtruth_padded_size')} is empty: original-size masks "
                "must be padded to one size to batch them"
            )


@dataclasses.dataclass
class SegmentationHead(Config):
    """The segmentation head (`heads.SegmentationHead`).

    Attributes:
      level: The decoder level it reads (and predicts at).
      num_convs: 3x3 convolutions (each with batch normalization and the activation)
        before the prediction.
      num_filters: Their width.
      use_depthwise_convolution: Depthwise-separable convolutions instead.
      prediction_kernel_size: Kernel side of the class-logit convolution.
      upsample_factor: Nearest-neighbour upsampling of the features before the class-logit
        convolution.
      logit_activation: None, `sigmoid` or `softmax` applied to the logits.
      feature_fusion: None; `deeplabv3plus` (concatenate the upsampled features with
        projected `low_level` backbone features; `deeplabv3plus_sum_to_merge` adds them);
        `pyramid_fusion` (sum of the decoder levels resized to `level`); or
        `panoptic_fpn_fusion` (Panoptic FPN's upsampling branches over
        `decoder_min_level`..`decoder_max_level`).
      low_level: The backbone endpoint DeepLabV3+ fuses (a level, or an endpoint name such
        as MobileNet's `2/depthwise`).
      low_level_num_filters: Channels it is projected to.
      decoder_min_level, decoder_max_level: The decoder levels Panoptic FPN fusion reads.
    """

    level: int | str = 3
    num_convs: int = 2
    num_filters: int = 256
    use_depthwise_convolution: bool = False
    prediction_kernel_size: int = 1
    upsample_factor: int = 1
    logit_activation: str | None = None
    feature_fusion: str | None = None
    low_level: int | str = 2
    low_level_num_filters: int = 48
    decoder_min_level: int | str | None = None
    decoder_max_level: int | str | None = None

    restrictions = (
        "num_convs >= 0",
        "num_filters > 0",
        "prediction_kernel_size > 0",
        "upsample_factor >= 1",
        "low_level_num_filters > 0",
    )

    def validate(self, path: str = "") -> None:
        """Checks the fusion and logit activation names.

        Raises:
          ConfigError: Naming the field that is wrong.
        """
        super().validate(path)
        if self.feature_fusion not in FEATURE_FUSIONS:
            raise ConfigError(
                f"{_where(path, 'feature_fusion')} is {self.feature_fusion!r}: expected none "
                "or one of " + ", ".join(str(v) for v in FEATURE_FUSIONS[1:])
            )
        if self.logit_activation not in LOGIT_ACTIVATIONS:
            raise ConfigError(
                f"{_where(path, 'logit_activation')} is {self.logit_activation!r}: expected "
                "none, sigmoid or softmax"
            )


@dataclasses.dataclass
class SemanticSegmentationModel(Config):
    """The segmentation model: backbone, decoder and head.

    Attributes:
      num_classes: Classes, background included (PASCAL VOC: 21, Cityscapes: 19).
      input_size: `[height, width, channels]`; height and width may be None (any size).
      min_level, max_level: The feature levels of multi-level decoders (FPN).
      head: The segmentation head.
      backbone: The backbone (`type` plus its settings).
      decoder: The decoder (`aspp`, `fpn`, `identity`, ...).
      norm_activation: Normalization and activation of every part.
    """

    num_classes: int = 0
    input_size: list[int | None] = dataclasses.field(default_factory=list)
    min_level: int = 3
    max_level: int = 6
    head: SegmentationHead = dataclasses.field(default_factory=SegmentationHead)
    backbone: backbones.Backbone = dataclasses.field(
        default_factory=lambda: backbones.Backbone(type="resnet", resnet=backbones.ResNet())
    )
    decoder: decoders.Decoder = dataclasses.field(
        default_factory=lambda: decoders.Decoder(type="identity")
    )
    norm_activation: common.NormActivation = dataclasses.field(
        default_factory=common.NormActivation
    )

    restrictions = ("min_level <= max_level", "num_classes >= 0")
    unsupported_fields = {
        "mask_scoring_head": (None, "the mask-scoring head is not offered"),
    }


@dataclasses.dataclass
class Losses(Config):
    """The segmentation loss (see `garden_vision.losses.segmentation_losses`).

    Attributes:
      loss_weight: Multiplies the total loss.
      label_smoothing: Smoothing of the one-hot targets.
      ignore_label: Pixels with this label count for nothing (loss or metrics).
      gt_is_matting_map: The masks are soft matting maps in [0, 1] (binary tasks) rather
        than class ids.
      class_weights: Per-class loss weights (`num_classes` values), or empty for 1 each.
      l2_weight_decay: L2 weight decay, as kernel regularization `l2(decay / 2)`.
      use_groundtruth_dimension: Resize the logits to the masks' size (True) or the masks
        to the logits' (False) before the loss.
      use_binary_cross_entropy: Sigmoid binary cross-entropy per class instead of softmax.
      top_k_percent_pixels: Average over this fraction of the pixels with the highest loss
        (hard-pixel mining; 1: all).
    """

    loss_weight: float = 1.0
    label_smoothing: float = 0.0
    ignore_label: int = 255
    gt_is_matting_map: bool = False
    class_weights: list[float] = dataclasses.field(default_factory=list)
    l2_weight_decay: float = 0.0
    use_groundtruth_dimension: bool = True
    use_binary_cross_entropy: bool = False
    top_k_percent_pixels: float = 1.0

    restrictions = (
        "label_smoothing >= 0",
        "label_smoothing < 1",
        "l2_weight_decay >= 0",
        "top_k_percent_pixels > 0",
        "top_k_percent_pixels <= 1",
    )
    unsupported_fields = {
        "mask_scoring_weight": (1.0, "the mask-scoring head is not offered"),
    }


@dataclasses.dataclass
class Evaluation(Config):
    """What evaluation reports.

    Attributes:
      report_per_class_iou: Also report `iou/<class id>` for every class.
      report_train_mean_iou: Compute `mean_iou` during training too.
    """

    report_per_class_iou: bool = True
    report_train_mean_iou: bool = True


@dataclasses.dataclass
class ExportConfig(Config):
    """Export settings.

    Attributes:
      rescale_output: Resize the exported logits and labels to the original image size
        (False: the model's input size).
    """

    rescale_output: bool = False


@dataclasses.dataclass
class SemanticSegmentationTask(TaskConfig):
    """The semantic segmentation task.

    Attributes:
      init_checkpoint: A checkpoint (prefix or directory) to initialize from.
      init_checkpoint_modules: `all`, or the parts to restore: `backbone` and/or `decoder`
        (a name or a list).
      export_config: How exported models report their outputs.
      allow_image_summary: Model Garden writes image summaries of validation predictions;
        Garden reads the field and writes none.
    """

    model: SemanticSegmentationModel = dataclasses.field(default_factory=SemanticSegmentationModel)
    train_data: DataConfig = dataclasses.field(default_factory=lambda: DataConfig(is_training=True))
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(is_training=False)
    )
    losses: Losses = dataclasses.field(default_factory=Losses)
    evaluation: Evaluation = dataclasses.field(default_factory=Evaluation)
    init_checkpoint: str | None = None
    init_checkpoint_modules: str | list[str] = "all"
    export_config: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    allow_image_summary: bool = True

    restrictions = (
        "train_data.is_training != None",
        "validation_data.is_training != None",
    )
    unsupported_fields = {
        **TaskConfig.unsupported_fields,
        "train_input_partition_dims": ([], _PARTITION),
        "eval_input_partition_dims": ([], _PARTITION),
    }

    def validate(self, path: str = "") -> None:
        """Checks the restrictions, `init_checkpoint_modules` and the class weights.

        Raises:
          ConfigError: Naming the field that is wrong.
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
        weights = self.losses.class_weights
        num_classes = self.model.num_classes
        if weights and num_classes and len(weights) != num_classes:
            raise ConfigError(
                f"{_where(path, 'losses.class_weights')} has {len(weights)} values but "
                f"{_where(path, 'model.num_classes')} is {num_classes}"
            )


def semantic_segmentation() -> ExperimentConfig:
    """The bare semantic segmentation task (every field at its default)."""
    return ExperimentConfig(task=SemanticSegmentationTask())


PASCAL_TRAIN_EXAMPLES = 10582
PASCAL_VAL_EXAMPLES = 1449
PASCAL_INPUT_PATH_BASE = "gs://**/pascal_voc_seg"
CITYSCAPES_TRAIN_EXAMPLES = 2975
CITYSCAPES_VAL_EXAMPLES = 500
CITYSCAPES_INPUT_PATH_BASE = "cityscapes"
_DEEPLAB_RESNET101 = (
    "gs://cloud-tpu-checkpoints/vision-2.0/deeplab/deeplab_resnet101_imagenet/ckpt-62400"
)
_DEEPLAB_MOBILENETV2 = (
    "gs://tf_model_garden/cloud/vision-2.0/deeplab/deeplabv3_mobilenetv2_coco/best_ckpt-63"
)


def _polynomial_trainer(
    *,
    steps_per_epoch: int,
    train_steps: int,
    validation_steps: int,
    learning_rate: float,
    best_checkpoint: bool = False,
) -> TrainerConfig:
    """Model Garden's segmentation schedule: SGD with momentum 0.9, a polynomial (power 0.9)
    decay to 0 over `train_steps` after 5 epochs of linear warm-up from 0, a checkpoint and an
    evaluation every epoch (and the best checkpoint by `mean_iou` with `best_checkpoint`)."""
    trainer = TrainerConfig(
        steps_per_loop=steps_per_epoch,
        summary_interval=steps_per_epoch,
        checkpoint_interval=steps_per_epoch,
        train_steps=train_steps,
        validation_steps=validation_steps,
        validation_interval=steps_per_epoch,
        optimizer_config=OptimizationConfig.from_dict(
            {
                "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9}},
                "learning_rate": {
                    "type": "polynomial",
                    "polynomial": {
                        "initial_learning_rate": learning_rate,
                        "decay_steps": train_steps,
                        "end_learning_rate": 0.0,
                        "power": 0.9,
                    },
                },
                "warmup": {
                    "type": "linear",
                    "linear": {"warmup_steps": 5 * steps_per_epoch, "warmup_learning_rate": 0},
                },
            }
        ),
    )
    if best_checkpoint:
        trainer.best_checkpoint_eval_metric = "mean_iou"
        trainer.best_checkpoint_export_subdir = "best_ckpt"
        trainer.best_checkpoint_metric_comp = "higher"
    return trainer


def _dilated_resnet101(multigrid: list[int], output_stride: int = 16) -> backbones.Backbone:
    return backbones.Backbone(
        type="dilated_resnet",
        dilated_resnet=backbones.DilatedResNet(
            model_id=101, output_stride=output_stride, multigrid=multigrid, stem_type="v1"
        ),
    )


def _mobilenetv2(output_stride: int = 16) -> backbones.Backbone:
    return backbones.Backbone(
        type="mobilenet",
        mobilenet=backbones.MobileNet(model_id="MobileNetV2", output_stride=output_stride),
    )


def _aspp(level: int, dilation_rates: list[int], **fields) -> decoders.Decoder:
    return decoders.Decoder(
        type="aspp", aspp=decoders.ASPP(level=level, dilation_rates=dilation_rates, **fields)
    )


def _pascal_data(
    train_batch_size: int,
    eval_batch_size: int,
    aug_scale: tuple[float, float],
    output_size: list[int] | None,
) -> tuple[DataConfig, DataConfig]:
    """PASCAL VOC 2012 (augmented train, val): evaluation on the original-size masks padded
    to 512x512."""
    size = {} if output_size is None else {"output_size": list(output_size)}
    train = DataConfig(
        input_path=os.path.join(PASCAL_INPUT_PATH_BASE, "train_aug*"),
        is_training=True,
        global_batch_size=train_batch_size,
        aug_scale_min=aug_scale[0],
        aug_scale_max=aug_scale[1],
        **size,
    )
    validation = DataConfig(
        input_path=os.path.join(PASCAL_INPUT_PATH_BASE, "val*"),
        is_training=False,
        global_batch_size=eval_batch_size,
        resize_eval_groundtruth=False,
        groundtruth_padded_size=[512, 512],
        drop_remainder=False,
        **size,
    )
    return train, validation


def _cityscapes_data(batch_size: int) -> tuple[DataConfig, DataConfig]:
    """Cityscapes fine annotations: 512x1024 training crops of 1024x2048 images, evaluation
    at 1024x2048."""
    train = DataConfig(
        input_path=os.path.join(CITYSCAPES_INPUT_PATH_BASE, "train_fine**"),
        crop_size=[512, 1024],
        output_size=[1024, 2048],
        is_training=True,
        global_batch_size=batch_size,
        aug_scale_min=0.5,
        aug_scale_max=2.0,
    )
    validation = DataConfig(
        input_path=os.path.join(CITYSCAPES_INPUT_PATH_BASE, "val_fine*"),
        output_size=[1024, 2048],
        is_training=False,
        global_batch_size=batch_size,
        resize_eval_groundtruth=True,
        drop_remainder=False,
    )
    return train, validation


def _resnet_deeplab_pascal(
    aspp_dilation_rates: list[int], head: SegmentationHead
) -> ExperimentConfig:
    """DeepLab on a dilated ResNet-101 for PASCAL VOC: 45 epochs of batches of 16 at
    512x512 with scale jitter 0.5-2 from an ImageNet checkpoint, swish activations."""
    train_batch_size, eval_batch_size = 16, 8
    steps_per_epoch = PASCAL_TRAIN_EXAMPLES // train_batch_size
    level = int(math.log2(16))
    head.level = level
    train, validation = _pascal_data(train_batch_size, eval_batch_size, (0.5, 2.0), [512, 512])
    return ExperimentConfig(
        task=SemanticSegmentationTask(
            model=SemanticSegmentationModel(
                num_classes=21,
                input_size=[None, None, 3],
                backbone=_dilated_resnet101([1, 2, 4]),
                decoder=_aspp(level, aspp_dilation_rates),
                head=head,
                norm_activation=common.NormActivation(
                    activation="swish", norm_momentum=0.9997, norm_epsilon=1e-3, use_sync_bn=True
                ),
            ),
            losses=Losses(l2_weight_decay=1e-4),
            train_data=train,
            validation_data=validation,
            init_checkpoint=_DEEPLAB_RESNET101,
            init_checkpoint_modules="backbone",
        ),
        trainer=_polynomial_trainer(
            steps_per_epoch=steps_per_epoch,
            train_steps=45 * steps_per_epoch,
            validation_steps=PASCAL_VAL_EXAMPLES // eval_batch_size,
            learning_rate=0.007,
        ),
    )


def seg_deeplabv3_pascal() -> ExperimentConfig:
    """DeepLabV3 (Chen et al., 2017) on PASCAL VOC 2012 (Model Garden's recipe)."""
    return _resnet_deeplab_pascal([12, 24, 36], SegmentationHead(num_convs=0))


def seg_deeplabv3plus_pascal() -> ExperimentConfig:
    """DeepLabV3+ (Chen et al., 2018) on PASCAL VOC 2012 (Model Garden's recipe)."""
    return _resnet_deeplab_pascal(
        [6, 12, 18],
        SegmentationHead(
            num_convs=2, feature_fusion="deeplabv3plus", low_level=2, low_level_num_filters=48
        ),
    )


def seg_resnetfpn_pascal() -> ExperimentConfig:
    """ResNet-50-FPN segmentation on PASCAL VOC 2012 (Model Garden's recipe): 450 epochs of
    batches of 256 at 512x512 with scale jitter 0.2-1.5."""
    train_batch_size, eval_batch_size = 256, 32
    steps_per_epoch = PASCAL_TRAIN_EXAMPLES // train_batch_size
    train, validation = _pascal_data(train_batch_size, eval_batch_size, (0.2, 1.5), None)
    return ExperimentConfig(
        task=SemanticSegmentationTask(
            model=SemanticSegmentationModel(
                num_classes=21,
                input_size=[512, 512, 3],
                min_level=3,
                max_level=7,
                backbone=backbones.Backbone(type="resnet", resnet=backbones.ResNet(model_id=50)),
                decoder=decoders.Decoder(type="fpn", fpn=decoders.FPN()),
                head=SegmentationHead(level=3, num_convs=3),
                norm_activation=common.NormActivation(activation="swish", use_sync_bn=True),
            ),
            losses=Losses(l2_weight_decay=1e-4),
            train_data=train,
            validation_data=validation,
        ),
        trainer=_polynomial_trainer(
            steps_per_epoch=steps_per_epoch,
            train_steps=450 * steps_per_epoch,
            validation_steps=PASCAL_VAL_EXAMPLES // eval_batch_size,
            learning_rate=0.007,
        ),
    )


def _mobilenet_norm_activation() -> common.NormActivation:
    return common.NormActivation(
        activation="relu", norm_momentum=0.99, norm_epsilon=1e-3, use_sync_bn=True
    )


def mnv2_deeplabv3_pascal() -> ExperimentConfig:
    """DeepLabV3 on MobileNetV2 for PASCAL VOC 2012 (Model Garden's recipe): the ASPP's
    pooling and 1x1 branches only, 30,000 steps from a COCO-trained checkpoint."""
    train_batch_size = eval_batch_size = 16
    steps_per_epoch = PASCAL_TRAIN_EXAMPLES // train_batch_size
    level = int(math.log2(16))
    train, validation = _pascal_data(train_batch_size, eval_batch_size, (0.5, 2.0), [512, 512])
    return ExperimentConfig(
        task=SemanticSegmentationTask(
            model=SemanticSegmentationModel(
                num_classes=21,
                input_size=[None, None, 3],
                backbone=_mobilenetv2(),
                decoder=_aspp(level, [], pool_kernel_size=[]),
                head=SegmentationHead(level=level, num_convs=0),
                norm_activation=_mobilenet_norm_activation(),
            ),
            losses=Losses(l2_weight_decay=4e-5),
            train_data=train,
            validation_data=validation,
            init_checkpoint=_DEEPLAB_MOBILENETV2,
            init_checkpoint_modules=["backbone", "decoder"],
        ),
        trainer=_polynomial_trainer(
            steps_per_epoch=steps_per_epoch,
            train_steps=30000,
            validation_steps=PASCAL_VAL_EXAMPLES // eval_batch_size,
            learning_rate=0.007 * train_batch_size / 16,
            best_checkpoint=True,
        ),
    )


def seg_deeplabv3plus_cityscapes() -> ExperimentConfig:
    """DeepLabV3+ on a dilated ResNet-101 for Cityscapes (Model Garden's recipe): 500 epochs
    of batches of 16."""
    batch_size = 16
    steps_per_epoch = CITYSCAPES_TRAIN_EXAMPLES // batch_size
    level = int(math.log2(16))
    train, validation = _cityscapes_data(batch_size)
    return ExperimentConfig(
        task=SemanticSegmentationTask(
            model=SemanticSegmentationModel(
                num_classes=19,
                input_size=[None, None, 3],
                backbone=_dilated_resnet101([1, 2, 4]),
                decoder=_aspp(level, [6, 12, 18], pool_kernel_size=[512, 1024]),
                head=SegmentationHead(
                    level=level,
                    num_convs=2,
                    feature_fusion="deeplabv3plus",
                    low_level=2,
                    low_level_num_filters=48,
                ),
                norm_activation=common.NormActivation(
                    activation="swish", norm_momentum=0.99, norm_epsilon=1e-3, use_sync_bn=True
                ),
            ),
            losses=Losses(l2_weight_decay=1e-4),
            train_data=train,
            validation_data=validation,
            init_checkpoint=_DEEPLAB_RESNET101,
            init_checkpoint_modules="backbone",
        ),
        trainer=_polynomial_trainer(
            steps_per_epoch=steps_per_epoch,
            train_steps=500 * steps_per_epoch,
            validation_steps=CITYSCAPES_VAL_EXAMPLES // batch_size,
            learning_rate=0.01,
        ),
    )


def mnv2_deeplabv3_cityscapes() -> ExperimentConfig:
    """DeepLabV3 on MobileNetV2 for Cityscapes (Model Garden's recipe): 100,000 steps."""
    batch_size = 16
    steps_per_epoch = CITYSCAPES_TRAIN_EXAMPLES // batch_size
    level = int(math.log2(16))
    train, validation = _cityscapes_data(batch_size)
    return ExperimentConfig(
        task=SemanticSegmentationTask(
            model=SemanticSegmentationModel(
                num_classes=19,
                input_size=[None, None, 3],
                backbone=_mobilenetv2(),
                decoder=_aspp(level, [], pool_kernel_size=[512, 1024]),
                head=SegmentationHead(level=level, num_convs=0),
                norm_activation=_mobilenet_norm_activation(),
            ),
            losses=Losses(l2_weight_decay=4e-5),
            train_data=train,
            validation_data=validation,
            init_checkpoint=_DEEPLAB_MOBILENETV2,
            init_checkpoint_modules="backbone",
        ),
        trainer=_polynomial_trainer(
            steps_per_epoch=steps_per_epoch,
            train_steps=100000,
            validation_steps=CITYSCAPES_VAL_EXAMPLES // batch_size,
            learning_rate=0.01,
            best_checkpoint=True,
        ),
    )


def mnv2_deeplabv3plus_cityscapes() -> ExperimentConfig:
    """DeepLabV3+ on MobileNetV2 for Cityscapes: the decoder fuses MobileNet's
    `2/depthwise` endpoint through depthwise-separable convolutions."""
    config = mnv2_deeplabv3_cityscapes()
    config.task.model.head = SegmentationHead(
        level=4,
        num_convs=2,
        feature_fusion="deeplabv3plus",
        use_depthwise_convolution=True,
        low_level="2/depthwise",
        low_level_num_filters=48,
    )
    config.task.model.backbone.mobilenet.output_intermediate_endpoints = True
    return config


SHAPES_MULTI_TRAIN_EXAMPLES = 2000
SHAPES_MULTI_VAL_EXAMPLES = 500
#: Background (0) and the 9 shape classes of `garden_shapes` (1-9).
SHAPES_SEGMENTATION_NUM_CLASSES = 10


def shapes_segmentation() -> ExperimentConfig:
    """A small DeepLabV3+ on the built-in `garden_shapes/multi` dataset (128x128, 1-4 shapes).

    A half-width ResNet-18 whose level-3 features (output stride 8, DeepLab's denser
    setting) feed ASPP (rates 2, 4, 6, 64 filters); the DeepLabV3+ head fuses them with the
    level-2 features (projected to 24 channels) through two 64-filter convolutions and
    predicts background plus the 9 shape classes at stride 4. Trained from scratch with SGD
    and a cosine schedule with flips and scale jitter, it is sized for 2 CPU cores.
    Evaluation reports `mean_iou` and the IoU of every class on the validation split. The
    dataset is generated into `tfds_data_dir` (TFDS's default directory when empty) the
    first time it is read, and reused afterwards.
    """
    batch = 16
    epoch = SHAPES_MULTI_TRAIN_EXAMPLES // batch
    epochs = 30
    image_size = 128

    def data(split: str, is_training: bool) -> DataConfig:
        return DataConfig(
            tfds_name="garden_shapes/multi",
            tfds_split=split,
            is_training=is_training,
            global_batch_size=batch,
            drop_remainder=is_training,
            output_size=[image_size, image_size],
            aug_rand_hflip=is_training,
            aug_scale_min=0.75 if is_training else 1.0,
            aug_scale_max=1.25 if is_training else 1.0,
            shuffle_buffer_size=SHAPES_MULTI_TRAIN_EXAMPLES,
            cache=True,
            seed=1 if is_training else None,
        )

    return ExperimentConfig(
        runtime=RuntimeConfig(distribution_strategy="one_device", num_gpus=0, seed=1),
        task=SemanticSegmentationTask(
            model=SemanticSegmentationModel(
                num_classes=SHAPES_SEGMENTATION_NUM_CLASSES,
                input_size=[image_size, image_size, 3],
                min_level=2,
                max_level=5,
                backbone=backbones.Backbone(
                    type="resnet", resnet=backbones.ResNet(model_id=18, depth_multiplier=0.5)
                ),
                decoder=_aspp(3, [2, 4, 6], num_filters=64),
                head=SegmentationHead(
                    level=3,
                    num_convs=2,
                    num_filters=64,
                    feature_fusion="deeplabv3plus",
                    low_level=2,
                    low_level_num_filters=24,
                ),
                norm_activation=common.NormActivation(
                    norm_momentum=0.9, norm_epsilon=1e-5, use_sync_bn=False
                ),
            ),
            losses=Losses(l2_weight_decay=1e-4),
            train_data=data("train", True),
            validation_data=data("validation", False),
        ),
        trainer=retinanet.shapes_trainer(epochs, epoch, "mean_iou", 0.05),
    )
