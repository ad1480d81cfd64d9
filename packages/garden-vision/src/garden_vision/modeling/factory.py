"""Builds task models from their configs: `build_classification_model`."""

from __future__ import annotations

import keras

from garden_vision.configs.image_classification import ImageClassificationModel
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.classification_model import ClassificationModel


def l2_regularizer(l2_weight_decay: float) -> keras.regularizers.Regularizer | None:
    """Kernel regularization for an L2 weight decay (Model Garden: `l2(decay / 2)`)."""
    return keras.regularizers.L2(l2_weight_decay / 2.0) if l2_weight_decay else None


def build_classification_model(
    input_specs: keras.layers.InputSpec,
    model_config: ImageClassificationModel,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    skip_logits_layer: bool = False,
    backbone: keras.Model | None = None,
) -> ClassificationModel:
    """Returns the `ClassificationModel` `model_config` describes.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`.
      model_config: The model config.
      l2_regularizer: Kernel regularizer of the backbone and head, or None.
      skip_logits_layer: Return pooled features instead of logits.
      backbone: A backbone to use instead of building the configured one.
    """
    norm_activation = model_config.norm_activation
    if backbone is None:
        backbone = build_backbone(
            input_specs=input_specs,
            backbone_config=model_config.backbone,
            norm_activation_config=norm_activation,
            l2_regularizer=l2_regularizer,
        )
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
    )
