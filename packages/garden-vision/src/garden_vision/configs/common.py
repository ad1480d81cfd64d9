"""Configs shared by vision models and input pipelines (Model Garden's `configs.common`).

`NormActivation` sets the normalization and activation of every backbone; `Augmentation`,
`RandomErasing` and `MixupAndCutmix` configure training-time augmentation; `DataDecoder`
chooses how records are decoded.
"""

from __future__ import annotations

import dataclasses

from garden_core.config import Config, OneOfConfig


@dataclasses.dataclass
class NormActivation(Config):
    """Batch normalization and activation settings used across a model.

    Attributes:
      activation: The activation's name (`relu`, `swish`, `relu6`, `hard_swish`, `gelu`, ...).
      use_sync_bn: Synchronize batch statistics across replicas
        (`keras.layers.BatchNormalization(synchronized=True)`).
      norm_momentum: Momentum of the moving averages of batch normalization.
      norm_epsilon: Epsilon of batch normalization.
    """

    activation: str = "relu"
    use_sync_bn: bool = True
    norm_momentum: float = 0.99
    norm_epsilon: float = 0.001


@dataclasses.dataclass
class RandAugment(Config):
    """RandAugment (Cubuk et al., 2019): `num_layers` random ops at one `magnitude` (0-30)."""

    num_layers: int = 2
    magnitude: float = 10
    cutout_const: float = 40
    translate_const: float = 10
    magnitude_std: float = 0.0
    prob_to_apply: float | None = None
    exclude_ops: list[str] = dataclasses.field(default_factory=list)

    restrictions = ("num_layers >= 0", "magnitude >= 0")


@dataclasses.dataclass
class AutoAugment(Config):
    """AutoAugment (Cubuk et al., 2018) with one of its published policies.

    `augmentation_name` is `v0`, `test`, `simple`, `reduced_cifar10`, `svhn`,
    `reduced_imagenet`, `panoptic_deeplab_policy` or `vit`.
    """

    augmentation_name: str = "v0"
    cutout_const: float = 100
    translate_const: float = 250


@dataclasses.dataclass
class RandomErasing(Config):
    """Random erasing (Zhong et al., 2017): random rectangles filled with noise."""

    probability: float = 0.25
    min_area: float = 0.02
    max_area: float = 1 / 3
    min_aspect: float = 0.3
    max_aspect: float | None = None
    min_count: int = 1
    max_count: int = 1
    trials: int = 10

    restrictions = (
        "probability >= 0",
        "probability <= 1",
        "min_area <= max_area",
        "min_count <= max_count",
    )


@dataclasses.dataclass
class MixupAndCutmix(Config):
    """Mixup (Zhang et al., 2017) and CutMix (Yun et al., 2019) applied per batch."""

    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1

    restrictions = ("mixup_alpha >= 0", "cutmix_alpha >= 0", "prob >= 0", "prob <= 1")


@dataclasses.dataclass
class Augmentation(OneOfConfig):
    """Training augmentation policy: `randaug`, `autoaug`, or None for none."""

    type: str | None = None
    randaug: RandAugment = dataclasses.field(default_factory=RandAugment)
    autoaug: AutoAugment = dataclasses.field(default_factory=AutoAugment)


@dataclasses.dataclass
class TfExampleDecoder(Config):
    """Decodes Model Garden's tf.Example layout."""

    regenerate_source_id: bool = False
    mask_binarize_threshold: float | None = None

    unsupported_fields = {
        "attribute_names": ([], "per-object attributes are not decoded yet"),
    }


@dataclasses.dataclass
class TfExampleDecoderLabelMap(TfExampleDecoder):
    """Decodes tf.Examples whose labels are text, mapped to ids by a label-map file."""

    label_map: str = ""


@dataclasses.dataclass
class DataDecoder(OneOfConfig):
    """How records are decoded: `simple_decoder` or `label_map_decoder`."""

    type: str | None = "simple_decoder"
    simple_decoder: TfExampleDecoder = dataclasses.field(default_factory=TfExampleDecoder)
    label_map_decoder: TfExampleDecoderLabelMap = dataclasses.field(
        default_factory=TfExampleDecoderLabelMap
    )
