"""`ClassificationHead`: pooled features to class logits (Model Garden's classifier head).

Model Garden's `ClassificationModel` puts this head on its backbone inline: optional batch
normalization, global average pooling, dropout and a dense layer, optionally followed by a
softmax. Here it is a layer of its own, registered as the `classification` head in
`garden.heads`, so that the classification model factory builds it through the registry
like any other component (`build_classification_head`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from garden_core.config import ConfigError
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.layers.nn_layers import batch_norm
from garden_vision.modeling.serialization import (
    new_initializer,
    serialize_initializer,
    serialize_regularizer,
)


@keras.saving.register_keras_serializable(package="garden_vision")
class ClassificationHead(keras.layers.Layer):
    """Batch norm (optional), global average pooling, dropout, dense logits, softmax (optional).

    Takes features of rank 4 (`[batch, height, width, channels]`, pooled over height and
    width), rank 3 (`[batch, tokens, channels]`, pooled over tokens) or rank 2 (already
    pooled). The logits are float32 whatever the compute dtype, for a stable loss.

    Example:

    ```python
    head = ClassificationHead(num_classes=10, dropout_rate=0.2)
    logits = head(np.zeros((2, 7, 7, 512), "float32"))  # (2, 10)
    ```

    Args:
      num_classes: Width of the dense layer.
      dropout_rate: Dropout before the dense layer, in [0, 1).
      kernel_initializer: Initializer of the dense kernel.
      kernel_regularizer: Regularizer of the dense kernel (weight decay), or None.
      bias_regularizer: Regularizer of the dense bias, or None.
      add_head_batch_norm: Batch normalization of the features before pooling.
      use_sync_bn: Synchronize that batch normalization's statistics across replicas.
      norm_momentum: Momentum of its moving statistics.
      norm_epsilon: Its variance epsilon.
      skip_logits_layer: Return the pooled features (no dropout, dense or softmax).
      output_softmax: Return softmax probabilities instead of logits.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).
    """

    def __init__(
        self,
        num_classes: int,
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
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise ConfigError(f"ClassificationHead `num_classes` is {num_classes!r}: must be >= 1")
        if not 0.0 <= dropout_rate < 1.0:
            raise ConfigError(
                f"ClassificationHead `dropout_rate` is {dropout_rate!r}: must be in [0, 1)"
            )
        self.num_classes = int(num_classes)
        self.dropout_rate = dropout_rate
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.add_head_batch_norm = bool(add_head_batch_norm)
        self.use_sync_bn = bool(use_sync_bn)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.skip_logits_layer = bool(skip_logits_layer)
        self.output_softmax = bool(output_softmax)

        self.norm = (
            batch_norm(
                norm_momentum,
                norm_epsilon,
                use_sync_bn,
                name="batch_norm",
                dtype=self.dtype_policy,
            )
            if self.add_head_batch_norm
            else None
        )
        self.dropout = keras.layers.Dropout(dropout_rate, name="dropout", dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(
            self.num_classes,
            kernel_initializer=new_initializer(self.kernel_initializer),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            name="dense",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape: Sequence[int | None]) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) not in (2, 3, 4):
            raise ConfigError(
                f"ClassificationHead expects features of rank 2, 3 or 4, got shape "
                f"{list(input_shape)}"
            )
        if self.norm is not None:
            self.norm.build(input_shape)
        pooled = (input_shape[0], input_shape[-1])
        self.dense.build(pooled)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = inputs
        if self.norm is not None:
            x = self.norm(x, training=training)
        if len(x.shape) > 2:
            x = ops.mean(x, axis=tuple(range(1, len(x.shape) - 1)))
        if self.skip_logits_layer:
            return x
        x = self.dropout(x, training=training)
        logits = ops.cast(self.dense(x), "float32")
        return ops.softmax(logits, axis=-1) if self.output_softmax else logits

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        width = input_shape[-1] if self.skip_logits_layer else self.num_classes
        return (input_shape[0], width)

    def compute_output_spec(self, inputs: Any, training: bool | None = None) -> Any:
        shape = self.compute_output_shape(inputs.shape)
        dtype = inputs.dtype if self.skip_logits_layer else "float32"
        return keras.KerasTensor(shape, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout_rate": self.dropout_rate,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "bias_regularizer": serialize_regularizer(self.bias_regularizer),
            "add_head_batch_norm": self.add_head_batch_norm,
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "skip_logits_layer": self.skip_logits_layer,
            "output_softmax": self.output_softmax,
        }


def build_classification_head(
    input_specs: Sequence[int | None],
    num_classes: int,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    dropout_rate: float = 0.0,
    add_head_batch_norm: bool = False,
    kernel_initializer: str = "random_uniform",
    output_softmax: bool = False,
    skip_logits_layer: bool = False,
) -> ClassificationHead:
    """Builds a `ClassificationHead` (the `classification` entry of `garden.heads`).

    The settings are the head fields of `ImageClassificationModel` (`dropout_rate`,
    `add_head_batch_norm`, `kernel_initializer`, `output_softmax`), plus
    `skip_logits_layer` for a model that returns pooled features.

    Args:
      input_specs: The shape of the features the head reads (batch first), rank 2 to 4.
      num_classes: Width of the logits.
      norm_activation_config: Settings of the head's batch normalization.
      l2_regularizer: Regularizer of the dense kernel (weight decay), or None.
      dropout_rate, add_head_batch_norm, kernel_initializer, output_softmax,
        skip_logits_layer: As in `ClassificationHead`.

    Raises:
      ConfigError: For features of another rank, `num_classes` < 1 or a `dropout_rate`
        outside [0, 1).
    """
    shape = tuple(input_specs)
    if len(shape) not in (2, 3, 4):
        raise ConfigError(
            f"the classification head reads features of rank 2, 3 or 4, got shape {list(shape)}"
        )
    return ClassificationHead(
        num_classes=num_classes,
        dropout_rate=dropout_rate,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=l2_regularizer,
        add_head_batch_norm=add_head_batch_norm,
        use_sync_bn=norm_activation_config.use_sync_bn,
        norm_momentum=norm_activation_config.norm_momentum,
        norm_epsilon=norm_activation_config.norm_epsilon,
        skip_logits_layer=skip_logits_layer,
        output_softmax=output_softmax,
    )
