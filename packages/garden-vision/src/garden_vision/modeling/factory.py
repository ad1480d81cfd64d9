"""Builds task models from their configs: `build_classification_model`.

The classification model is built from its parts' registries: the backbone from
`garden.backbones` (`backbone.type`), the head from `garden.heads` (`classification`).
The model builder itself is the `image_classification` entry of `garden.models`
(`build_image_classification_model`), which `ImageClassificationTask` builds through
`garden_core.plugins`:

    builder(input_specs=..., l2_regularizer=..., **fields of task.model)
"""

from __future__ import annotations

from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs import backbones as backbone_configs
from garden_vision.configs import common
from garden_vision.configs.image_classification import ImageClassificationModel
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.classification_model import ClassificationModel, _head_features
from garden_vision.modeling.heads.factory import build_head

#: The registered head the classification model is built with.
CLASSIFICATION_HEAD = "classification"


def l2_regularizer(l2_weight_decay: float) -> keras.regularizers.Regularizer | None:
    """Kernel regularization for an L2 weight decay (Model Garden: `l2(decay / 2)`)."""
    return keras.regularizers.L2(l2_weight_decay / 2.0) if l2_weight_decay else None


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
