"""Image classification configs and experiments (Model Garden's `image_classification`).

Experiments, registered in `garden.experiments` under Model Garden's names with its defaults:

- `image_classification`: the bare task, every setting at its default.
- `resnet_imagenet`, `resnet_rs_imagenet`, `revnet_imagenet`, `mobilenet_imagenet`,
  `vit_imagenet_pretrain`, `vit_imagenet_finetune`, `deit_imagenet_pretrain`: ImageNet
  recipes; point `task.train_data.input_path` / `task.validation_data.input_path` (or
  `tfds_name`) at your copy of ImageNet.
- `shapes_classification`: a small ResNet on garden-vision's built-in `garden_shapes`
  dataset, which is generated on first use; it trains on a CPU in minutes.

This module defines configs only (no TensorFlow); the task is in
`garden_vision.tasks.image_classification`.
"""

from __future__ import annotations

import dataclasses

from garden_core.config import (
    Config,
    ExperimentConfig,
    OptimizationConfig,
    RuntimeConfig,
    TaskConfig,
    TrainerConfig,
)
from garden_core.config import (
    DataConfig as BaseDataConfig,
)
from garden_vision.configs import backbones, common

IMAGENET_TRAIN_EXAMPLES = 1281167
IMAGENET_VAL_EXAMPLES = 50000
IMAGENET_INPUT_PATH_BASE = "imagenet-2012-tfrecord"

_PARTITION = "spatial partitioning of inputs across TPU cores is not implemented"


@dataclasses.dataclass
class DataConfig(BaseDataConfig):
    """An image-classification input pipeline.

    Records are Model Garden's tf.Examples (`image_field_key`, `label_field_key`) in
    TFRecord files, or a TFDS image dataset (`tfds_name`; features `image` and `label`).

    Attributes:
      dtype: The image dtype the model gets: `float32`, `bfloat16` or `float16`.
      is_multilabel: Labels are multi-hot vectors of `num_classes` entries.
      aug_rand_hflip: Random horizontal flips in training.
      aug_crop: Inception-style random crops (`crop_area_range`) in training; otherwise a
        center crop (`center_crop_fraction`) and resize, as in evaluation.
      aug_type: RandAugment or AutoAugment in training.
      three_augment: DeiT III's augmentation: one of grayscale, solarize or blur per image.
      color_jitter: Brightness, contrast and saturation jitter strength (0 = off).
      random_erasing: Random erasing after normalization.
      file_type: `tfrecord` or `tfrecord_compressed` (GZIP).
      decode_jpeg_only: Decode with the fast JPEG decoder (crop while decoding); False
        decodes any image format (PNG, GIF, BMP).
      mixup_and_cutmix: Mixup and CutMix on training batches.
      decoder: How records are decoded (`simple_decoder` or `label_map_decoder`).
      aug_policy, randaug_magnitude: Model Garden's older spelling of `aug_type`.
      center_crop_fraction: Side of the center crop over the image's short side.
      tf_resize_method: `tf.image.resize` method for training and evaluation.
      repeated_augment: Put this many differently augmented copies of each image in the
        training stream (Hoffer et al., 2019); None or 1 for none.
    """

    input_path: str | list[str] | dict[str, str | list[str]] = ""
    global_batch_size: int = 0
    is_training: bool | None = True
    dtype: str = "float32"
    shuffle_buffer_size: int = 10000
    cycle_length: int | None = 10
    is_multilabel: bool = False
    aug_rand_hflip: bool = True
    aug_crop: bool | None = True
    crop_area_range: tuple[float, float] | None = (0.08, 1.0)
    aug_type: common.Augmentation | None = None
    three_augment: bool = False
    color_jitter: float = 0.0
    random_erasing: common.RandomErasing | None = None
    file_type: str = "tfrecord"
    image_field_key: str = "image/encoded"
    label_field_key: str = "image/class/label"
    decode_jpeg_only: bool = True
    mixup_and_cutmix: common.MixupAndCutmix | None = None
    decoder: common.DataDecoder | None = dataclasses.field(default_factory=common.DataDecoder)
    aug_policy: str | None = None
    randaug_magnitude: int | None = 10
    center_crop_fraction: float | None = 0.875
    tf_resize_method: str = "bilinear"
    repeated_augment: int | None = None

    unsupported_fields = {
        **BaseDataConfig.unsupported_fields,
        "weights": (None, "per-input weights for data mixing are not implemented"),
    }


@dataclasses.dataclass
class ImageClassificationModel(Config):
    """A classifier: backbone, global pooling, dropout and a dense head.

    Attributes:
      num_classes: Number of classes (the head's width).
      input_size: `[height, width, channels]`; height and width may be None for
        fully convolutional backbones, but training crops to a fixed size.
      backbone: The backbone (`type` plus its settings).
      dropout_rate: Dropout before the head.
      norm_activation: Normalization and activation of the backbone (and head norm).
      add_head_batch_norm: Batch normalization before global pooling.
      kernel_initializer: The head's kernel initializer.
      output_softmax: Output probabilities instead of logits.
    """

    num_classes: int = 0
    input_size: list[int | None] = dataclasses.field(default_factory=list)
    backbone: backbones.Backbone = dataclasses.field(
        default_factory=lambda: backbones.Backbone(type="resnet")
    )
    dropout_rate: float = 0.0
    norm_activation: common.NormActivation = dataclasses.field(
        default_factory=lambda: common.NormActivation(use_sync_bn=False)
    )
    add_head_batch_norm: bool = False
    kernel_initializer: str = "random_uniform"
    output_softmax: bool = False

    restrictions = ("dropout_rate >= 0", "dropout_rate < 1")


@dataclasses.dataclass
class Losses(Config):
    """The classification loss.

    Attributes:
      loss_weight: Multiplies the loss.
      one_hot: Labels are one-hot (categorical cross-entropy, which allows
        `label_smoothing`); False uses sparse cross-entropy on integer labels.
      label_smoothing: Label smoothing of one-hot labels.
      l2_weight_decay: L2 weight decay, added as kernel regularization
        (`l2_weight_decay / 2 * sum(w**2)`, Model Garden's convention).
      soft_labels: Labels are already probability vectors (e.g. from Mixup and CutMix).
      use_binary_cross_entropy: Sigmoid cross-entropy per class (multilabel, or
        multi-class treated as multilabel).
    """

    loss_weight: float = 1.0
    one_hot: bool = True
    label_smoothing: float = 0.0
    l2_weight_decay: float = 0.0
    soft_labels: bool = False
    use_binary_cross_entropy: bool = False

    restrictions = ("label_smoothing >= 0", "label_smoothing < 1", "l2_weight_decay >= 0")


@dataclasses.dataclass
class Evaluation(Config):
    """Evaluation metrics.

    Attributes:
      top_k: Also report top-k accuracy for this k (`top_5_accuracy`).
      precision_and_recall_thresholds: Report precision and recall at these thresholds of
        the predicted probability.
      report_per_class_precision_and_recall: Also report them for each class.
    """

    top_k: int = 5
    precision_and_recall_thresholds: list[float] | None = None
    report_per_class_precision_and_recall: bool = False

    restrictions = ("top_k > 0",)


@dataclasses.dataclass
class ImageClassificationTask(TaskConfig):
    """The image classification task.

    Attributes:
      init_checkpoint: A checkpoint (prefix or directory) to initialize from.
      init_checkpoint_modules: `all` restores the whole model, `backbone` only the backbone.
      freeze_backbone: Train only the head.
    """

    model: ImageClassificationModel = dataclasses.field(default_factory=ImageClassificationModel)
    train_data: DataConfig = dataclasses.field(default_factory=lambda: DataConfig(is_training=True))
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(is_training=False)
    )
    losses: Losses = dataclasses.field(default_factory=Losses)
    evaluation: Evaluation = dataclasses.field(default_factory=Evaluation)
    init_checkpoint: str | None = None
    init_checkpoint_modules: str = "all"
    freeze_backbone: bool = False

    restrictions = (
        "train_data.is_training != None",
        "validation_data.is_training != None",
    )
    unsupported_fields = {
        **TaskConfig.unsupported_fields,
        "train_input_partition_dims": ([], _PARTITION),
        "eval_input_partition_dims": ([], _PARTITION),
        "model_output_keys": ([], "selecting extra model outputs is not implemented"),
    }


def image_classification() -> ExperimentConfig:
    """The bare image classification experiment (every setting at its default)."""
    return ExperimentConfig(task=ImageClassificationTask(), trainer=TrainerConfig())


def _imagenet_data(train_batch_size: int, eval_batch_size: int, **train_kwargs):
    train = DataConfig(
        input_path=f"{IMAGENET_INPUT_PATH_BASE}/train*",
        is_training=True,
        global_batch_size=train_batch_size,
        **train_kwargs,
    )
    validation = DataConfig(
        input_path=f"{IMAGENET_INPUT_PATH_BASE}/valid*",
        is_training=False,
        global_batch_size=eval_batch_size,
    )
    return train, validation


def _imagenet_trainer(
    train_batch_size: int, eval_batch_size: int, train_steps: int, optimizer: dict
) -> TrainerConfig:
    steps_per_epoch = IMAGENET_TRAIN_EXAMPLES // train_batch_size
    return TrainerConfig(
        steps_per_loop=steps_per_epoch,
        summary_interval=steps_per_epoch,
        checkpoint_interval=steps_per_epoch,
        train_steps=train_steps,
        validation_steps=IMAGENET_VAL_EXAMPLES // eval_batch_size,
        validation_interval=steps_per_epoch,
        optimizer_config=OptimizationConfig.from_dict(optimizer),
    )


def _linear_warmup(steps: int) -> dict:
    return {"type": "linear", "linear": {"warmup_steps": steps, "warmup_learning_rate": 0}}


def resnet_imagenet() -> ExperimentConfig:
    """ResNet-50 on ImageNet: 90 epochs of SGD with step decay (He et al., 2016)."""
    batch = 4096
    epoch = IMAGENET_TRAIN_EXAMPLES // batch
    train, validation = _imagenet_data(batch, batch)
    return ExperimentConfig(
        runtime=RuntimeConfig(enable_xla=True),
        task=ImageClassificationTask(
            model=ImageClassificationModel(
                num_classes=1001,
                input_size=[224, 224, 3],
                backbone=backbones.Backbone(type="resnet", resnet=backbones.ResNet(model_id=50)),
                norm_activation=common.NormActivation(
                    norm_momentum=0.9, norm_epsilon=1e-5, use_sync_bn=False
                ),
            ),
            losses=Losses(l2_weight_decay=1e-4),
            train_data=train,
            validation_data=validation,
        ),
        trainer=_imagenet_trainer(
            batch,
            batch,
            90 * epoch,
            {
                "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9}},
                "learning_rate": {
                    "type": "stepwise",
                    "stepwise": {
                        "boundaries": [30 * epoch, 60 * epoch, 80 * epoch],
                        "values": [v * batch / 256 for v in (0.1, 0.01, 0.001, 0.0001)],
                    },
                },
                "warmup": _linear_warmup(5 * epoch),
            },
        ),
    )


def resnet_rs_imagenet() -> ExperimentConfig:
    """ResNet-RS-50 at 160x160 (Bello et al., 2021): ResNet-D, SE, RandAugment, EMA."""
    batch = 4096
    epoch = IMAGENET_TRAIN_EXAMPLES // batch
    train, validation = _imagenet_data(
        batch,
        batch,
        aug_type=common.Augmentation(type="randaug", randaug=common.RandAugment(magnitude=10)),
    )
    return ExperimentConfig(
        task=ImageClassificationTask(
            model=ImageClassificationModel(
                num_classes=1001,
                input_size=[160, 160, 3],
                backbone=backbones.Backbone(
                    type="resnet",
                    resnet=backbones.ResNet(
                        model_id=50,
                        stem_type="v1",
                        resnetd_shortcut=True,
                        replace_stem_max_pool=True,
                        se_ratio=0.25,
                        stochastic_depth_drop_rate=0.0,
                    ),
                ),
                dropout_rate=0.25,
                norm_activation=common.NormActivation(
                    norm_momentum=0.0, norm_epsilon=1e-5, use_sync_bn=False, activation="swish"
                ),
            ),
            losses=Losses(l2_weight_decay=4e-5, label_smoothing=0.1),
            train_data=train,
            validation_data=validation,
        ),
        trainer=_imagenet_trainer(
            batch,
            batch,
            350 * epoch,
            {
                "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9}},
                "ema": {"average_decay": 0.9999, "trainable_weights_only": False},
                "learning_rate": {
                    "type": "cosine",
                    "cosine": {"initial_learning_rate": 1.6, "decay_steps": 350 * epoch},
                },
                "warmup": _linear_warmup(5 * epoch),
            },
        ),
    )


def revnet_imagenet() -> ExperimentConfig:
    """RevNet-56 on ImageNet: 90 epochs of SGD with step decay."""
    batch = 4096
    epoch = IMAGENET_TRAIN_EXAMPLES // batch
    train, validation = _imagenet_data(batch, batch)
    return ExperimentConfig(
        task=ImageClassificationTask(
            model=ImageClassificationModel(
                num_classes=1001,
                input_size=[224, 224, 3],
                backbone=backbones.Backbone(type="revnet", revnet=backbones.RevNet(model_id=56)),
                norm_activation=common.NormActivation(
                    norm_momentum=0.9, norm_epsilon=1e-5, use_sync_bn=False
                ),
                add_head_batch_norm=True,
            ),
            losses=Losses(l2_weight_decay=1e-4),
            train_data=train,
            validation_data=validation,
        ),
        trainer=_imagenet_trainer(
            batch,
            batch,
            90 * epoch,
            {
                "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9}},
                "learning_rate": {
                    "type": "stepwise",
                    "stepwise": {
                        "boundaries": [30 * epoch, 60 * epoch, 80 * epoch],
                        "values": [0.8, 0.08, 0.008, 0.0008],
                    },
                },
                "warmup": _linear_warmup(5 * epoch),
            },
        ),
    )


def mobilenet_imagenet() -> ExperimentConfig:
    """MobileNetV2 on ImageNet: 500 epochs of RMSProp with exponential decay."""
    batch = 4096
    epoch = IMAGENET_TRAIN_EXAMPLES // batch
    train, validation = _imagenet_data(batch, batch)
    return ExperimentConfig(
        task=ImageClassificationTask(
            model=ImageClassificationModel(
                num_classes=1001,
                dropout_rate=0.2,
                input_size=[224, 224, 3],
                backbone=backbones.Backbone(
                    type="mobilenet",
                    mobilenet=backbones.MobileNet(model_id="MobileNetV2", filter_size_scale=1.0),
                ),
                norm_activation=common.NormActivation(
                    norm_momentum=0.997, norm_epsilon=1e-3, use_sync_bn=False
                ),
            ),
            losses=Losses(l2_weight_decay=1e-5, label_smoothing=0.1),
            train_data=train,
            validation_data=validation,
        ),
        trainer=_imagenet_trainer(
            batch,
            batch,
            500 * epoch,
            {
                "optimizer": {
                    "type": "rmsprop",
                    "rmsprop": {"rho": 0.9, "momentum": 0.9, "epsilon": 0.002},
                },
                "learning_rate": {
                    "type": "exponential",
                    "exponential": {
                        "initial_learning_rate": 0.008 * (batch // 128),
                        "decay_steps": int(2.5 * epoch),
                        "decay_rate": 0.98,
                        "staircase": True,
                    },
                },
                "warmup": _linear_warmup(5 * epoch),
            },
        ),
    )


def _adamw(weight_decay_rate: float) -> dict:
    return {
        "type": "adamw",
        "adamw": {
            "weight_decay_rate": weight_decay_rate,
            "include_in_weight_decay": r".*(kernel|weight):0$",
            "gradient_clip_norm": 0.0,
        },
    }


def deit_imagenet_pretrain() -> ExperimentConfig:
    """DeiT-B/16 on ImageNet (Touvron et al., 2020): RandAugment, Mixup/CutMix, AdamW."""
    batch = 4096
    epoch = IMAGENET_TRAIN_EXAMPLES // batch
    label_smoothing = 0.1
    train, validation = _imagenet_data(
        batch,
        batch,
        aug_type=common.Augmentation(
            type="randaug", randaug=common.RandAugment(magnitude=9, exclude_ops=["Cutout"])
        ),
        mixup_and_cutmix=common.MixupAndCutmix(label_smoothing=label_smoothing),
    )
    return ExperimentConfig(
        task=ImageClassificationTask(
            model=ImageClassificationModel(
                num_classes=1001,
                input_size=[224, 224, 3],
                kernel_initializer="zeros",
                backbone=backbones.Backbone(
                    type="vit",
                    vit=backbones.VisionTransformer(
                        model_name="vit-b16",
                        representation_size=768,
                        init_stochastic_depth_rate=0.1,
                        original_init=False,
                        transformer=backbones.Transformer(
                            dropout_rate=0.0, attention_dropout_rate=0.0
                        ),
                    ),
                ),
            ),
            losses=Losses(
                l2_weight_decay=0.0,
                label_smoothing=label_smoothing,
                one_hot=False,
                soft_labels=True,
            ),
            train_data=train,
            validation_data=validation,
        ),
        trainer=_imagenet_trainer(
            batch,
            batch,
            300 * epoch,
            {
                "optimizer": _adamw(0.05),
                "learning_rate": {
                    "type": "cosine",
                    "cosine": {
                        "initial_learning_rate": 0.0005 * batch / 512,
                        "decay_steps": 300 * epoch,
                    },
                },
                "warmup": _linear_warmup(5 * epoch),
            },
        ),
    )


def vit_imagenet_pretrain() -> ExperimentConfig:
    """ViT-B/16 pretraining on ImageNet (Dosovitskiy et al., 2020): AdamW, cosine decay."""
    batch = 4096
    epoch = IMAGENET_TRAIN_EXAMPLES // batch
    train, validation = _imagenet_data(batch, batch)
    return ExperimentConfig(
        task=ImageClassificationTask(
            model=ImageClassificationModel(
                num_classes=1001,
                input_size=[224, 224, 3],
                kernel_initializer="zeros",
                backbone=backbones.Backbone(
                    type="vit",
                    vit=backbones.VisionTransformer(model_name="vit-b16", representation_size=768),
                ),
            ),
            losses=Losses(l2_weight_decay=0.0),
            train_data=train,
            validation_data=validation,
        ),
        trainer=_imagenet_trainer(
            batch,
            batch,
            300 * epoch,
            {
                "optimizer": _adamw(0.3),
                "learning_rate": {
                    "type": "cosine",
                    "cosine": {
                        "initial_learning_rate": 0.003 * batch / 4096,
                        "decay_steps": 300 * epoch,
                    },
                },
                "warmup": _linear_warmup(10000),
            },
        ),
    )


def vit_imagenet_finetune() -> ExperimentConfig:
    """ViT-B/16 fine-tuning at 384x384: 20k steps of SGD, cosine decay, global clipnorm 1."""
    batch = 512
    train, validation = _imagenet_data(batch, batch)
    return ExperimentConfig(
        task=ImageClassificationTask(
            model=ImageClassificationModel(
                num_classes=1001,
                input_size=[384, 384, 3],
                backbone=backbones.Backbone(
                    type="vit", vit=backbones.VisionTransformer(model_name="vit-b16")
                ),
            ),
            losses=Losses(l2_weight_decay=0.0),
            train_data=train,
            validation_data=validation,
        ),
        trainer=_imagenet_trainer(
            batch,
            batch,
            20000,
            {
                "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9, "global_clipnorm": 1.0}},
                "learning_rate": {
                    "type": "cosine",
                    "cosine": {"initial_learning_rate": 0.003, "decay_steps": 20000},
                },
            },
        ),
    )


SHAPES_TRAIN_EXAMPLES = 5000
SHAPES_NUM_CLASSES = 9


def shapes_classification() -> ExperimentConfig:
    """A half-width ResNet-18 on the built-in `garden_shapes` dataset (64x64, 9 classes).

    Trains on 2 CPU cores in about four minutes (with its six evaluations) to about 98 % top-1
    on the validation split.

    The dataset is generated into `tfds_data_dir` (TFDS's default directory when empty) the
    first time it is read, and reused afterwards.
    """
    batch = 64
    epoch = SHAPES_TRAIN_EXAMPLES // batch
    epochs = 24
    image_size = 64

    def data(split: str, is_training: bool) -> DataConfig:
        return DataConfig(
            tfds_name="garden_shapes/single",
            tfds_split=split,
            is_training=is_training,
            global_batch_size=batch,
            drop_remainder=is_training,
            shuffle_buffer_size=SHAPES_TRAIN_EXAMPLES,
            aug_crop=True,
            crop_area_range=(0.5, 1.0),
            aug_rand_hflip=True,
            center_crop_fraction=1.0,
            cache=True,
            seed=1 if is_training else None,
        )

    return ExperimentConfig(
        runtime=RuntimeConfig(distribution_strategy="one_device", num_gpus=0, seed=1),
        task=ImageClassificationTask(
            model=ImageClassificationModel(
                num_classes=SHAPES_NUM_CLASSES,
                input_size=[image_size, image_size, 3],
                backbone=backbones.Backbone(
                    type="resnet",
                    resnet=backbones.ResNet(model_id=18, depth_multiplier=0.5),
                ),
                norm_activation=common.NormActivation(
                    norm_momentum=0.9, norm_epsilon=1e-5, use_sync_bn=False
                ),
            ),
            losses=Losses(l2_weight_decay=1e-4, label_smoothing=0.1),
            evaluation=Evaluation(top_k=3),
            train_data=data("train", True),
            validation_data=data("validation", False),
        ),
        trainer=TrainerConfig(
            train_steps=epochs * epoch,
            steps_per_loop=epoch,
            summary_interval=epoch,
            checkpoint_interval=epoch,
            validation_interval=4 * epoch,
            validation_steps=-1,
            max_to_keep=3,
            best_checkpoint_export_subdir="best_ckpt",
            best_checkpoint_eval_metric="accuracy",
            optimizer_config=OptimizationConfig.from_dict(
                {
                    "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9, "nesterov": True}},
                    "learning_rate": {
                        "type": "cosine",
                        "cosine": {"initial_learning_rate": 0.1, "decay_steps": epochs * epoch},
                    },
                    "warmup": _linear_warmup(epoch // 2),
                }
            ),
        ),
    )
