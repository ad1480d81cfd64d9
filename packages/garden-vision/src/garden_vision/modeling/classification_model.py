"""`ClassificationModel`: a backbone with a classification head (Model Garden's)."""

from __future__ import annotations

from typing import Any

import keras

from garden_vision.modeling.heads.classification_head import ClassificationHead
from garden_vision.modeling.serialization import serialize_initializer, serialize_regularizer


def _head_features(endpoints: dict[str, Any]) -> Any:
    """The backbone output the head reads: `pre_logits` if reported, else the top level."""
    if "pre_logits" in endpoints:
        return endpoints["pre_logits"]
    levels = [key for key in endpoints if key.isdigit()]
    if not levels:
        raise ValueError(
            f"the backbone reports {sorted(endpoints)}; a classifier needs `pre_logits` or "
            "numbered feature levels"
        )
    return endpoints[max(levels, key=int)]


@keras.saving.register_keras_serializable(package="garden_vision")
class ClassificationModel(keras.Model):
    """An image classifier: a backbone and a classification head.

    The head reads the backbone's `pre_logits` output when it has one (vision
    transformers), otherwise its highest feature level. By default it is a
    `heads.ClassificationHead` built from the head arguments below ((batch norm), global
    average pooling, dropout, dense, (softmax)); `head` puts another layer there (the
    model factory passes the head it builds through the `garden.heads` registry). A backbone
    that also reports `distilled` (DeiT's distillation token) gets a second head, whose
    outputs are returned under `distill_logits` in training and averaged with the class
    head's at inference, as DeiT does.

    Example:

    ```python
    backbone = ResNet(model_id=18, input_specs=keras.layers.InputSpec(shape=[None, 64, 64, 3]))
    model = ClassificationModel(backbone, num_classes=10)
    logits = model(np.zeros((2, 64, 64, 3), "float32"))  # (2, 10)
    ```

    Args:
      backbone: A backbone (see `garden_vision.modeling.backbones`), built on a fixed-rank
        image input.
      num_classes: Width of the head.
      input_specs: The image input; by default the backbone's input shape.
      dropout_rate: Dropout before the head's dense layer.
      kernel_initializer: Initializer of the head's kernel.
      kernel_regularizer: Regularizer of the head's kernel.
      bias_regularizer: Regularizer of the head's bias.
      add_head_batch_norm: Batch normalization before pooling.
      use_sync_bn, norm_momentum, norm_epsilon: Settings of that batch normalization.
      skip_logits_layer: Return the pooled features instead of logits.
      output_softmax: Return probabilities instead of logits.
      head: The head layer, instead of the `ClassificationHead` the arguments above
        describe (they are then unused).
      distillation_head: With `head` and a backbone that reports `distilled`, the head of
        the distillation token.
      **kwargs: Passed to `keras.Model` (e.g. `name`).
    """

    def __init__(
        self,
        backbone: keras.Model,
        num_classes: int,
        input_specs: keras.layers.InputSpec | None = None,
        dropout_rate: float = 0.0,
        kernel_initializer: str | Any = "random_uniform",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        add_head_batch_norm: bool = False,
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        skip_logits_layer: bool = False,
        output_softmax: bool = False,
        head: keras.layers.Layer | None = None,
        distillation_head: keras.layers.Layer | None = None,
        **kwargs: Any,
    ):
        # === Inputs ===
        if isinstance(input_specs, dict):  # From get_config.
            input_specs = keras.layers.InputSpec(**input_specs)
        shape = tuple(input_specs.shape[1:]) if input_specs is not None else None
        if shape is None:
            shape = tuple(backbone.inputs[0].shape[1:])
        inputs = keras.Input(shape=shape, name="image")

        # === Backbone ===
        endpoints = backbone(inputs)
        if not isinstance(endpoints, dict):
            endpoints = {"output": endpoints}
        features = _head_features(endpoints)

        # === Heads ===
        def default_head(name: str) -> ClassificationHead:
            return ClassificationHead(
                num_classes=num_classes,
                dropout_rate=dropout_rate,
                kernel_initializer=kernel_initializer,
                kernel_regularizer=kernel_regularizer,
                bias_regularizer=bias_regularizer,
                add_head_batch_norm=add_head_batch_norm,
                use_sync_bn=use_sync_bn,
                norm_momentum=norm_momentum,
                norm_epsilon=norm_epsilon,
                skip_logits_layer=skip_logits_layer,
                output_softmax=output_softmax,
                name=name,
            )

        has_distillation_head = "distilled" in endpoints and not skip_logits_layer
        head = head if head is not None else default_head("logits")
        if has_distillation_head and distillation_head is None:
            distillation_head = default_head("distill_logits")
        # Outputs in float32 whatever the compute dtype, for a stable loss.
        outputs = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(
            head(features)
        )
        if has_distillation_head:
            distill = keras.layers.Activation(
                "linear", dtype="float32", name="distill_logits_float32"
            )(distillation_head(endpoints["distilled"]))
            outputs = {"logits": outputs, "distill_logits": distill}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.head = head
        self.distillation_head = distillation_head if has_distillation_head else None
        self._has_distillation_head = has_distillation_head
        self.num_classes = num_classes
        self.input_specs = keras.layers.InputSpec(shape=(None, *shape))
        self.dropout_rate = dropout_rate
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.add_head_batch_norm = add_head_batch_norm
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.skip_logits_layer = skip_logits_layer
        self.output_softmax = output_softmax

    def call(self, inputs, training=None, mask=None):
        outputs = super().call(inputs, training=training, mask=mask)
        if self._has_distillation_head and not training:
            # DeiT: the prediction averages the class and distillation heads.
            return (outputs["logits"] + outputs["distill_logits"]) / 2
        return outputs

    @property
    def checkpoint_items(self) -> dict[str, keras.layers.Layer]:
        """Sub-modules a partial checkpoint restore can name (`init_checkpoint_modules`)."""
        return {"backbone": self.backbone, "head": self.head}

    def get_config(self) -> dict[str, Any]:
        def serialize(layer):
            return None if layer is None else keras.saving.serialize_keras_object(layer)

        return {
            **super().get_config(),
            "backbone": serialize(self.backbone),
            "num_classes": self.num_classes,
            "input_specs": {"shape": list(self.input_specs.shape)},
            "dropout_rate": self.dropout_rate,
            "kernel_initializer": serialize_initializer(self.kernel_initializer),
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "bias_regularizer": serialize_regularizer(self.bias_regularizer),
            "add_head_batch_norm": self.add_head_batch_norm,
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "skip_logits_layer": self.skip_logits_layer,
            "output_softmax": self.output_softmax,
            "head": serialize(self.head),
            "distillation_head": serialize(self.distillation_head),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> ClassificationModel:
        config = dict(config)
        for key in ("backbone", "head", "distillation_head"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return cls(**config)
