"""Atrous spatial pyramid pooling, the multi-scale context module of DeepLab.

"Rethinking Atrous Convolution for Semantic Image Segmentation" (Chen et al., 2017,
https://arxiv.org/abs/1706.05587) and "Encoder-Decoder with Atrous Separable Convolution"
(DeepLabV3+, Chen et al., 2018, https://arxiv.org/abs/1802.02611). `SpatialPyramidPooling`
is Model Garden's `layers.deeplab.SpatialPyramidPooling` (`spp_layer_version="v1"`) and
`layers.nn_layers.SpatialPyramidPooling` (`"v2"`), with their arguments and computation.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from garden_core.config import ConfigError
from garden_vision.modeling.layers.nn_layers import batch_norm, get_activation
from garden_vision.modeling.serialization import (
    new_initializer,
    serialize_initializer,
    serialize_regularizer,
)

#: `spp_layer_version` values: Model Garden's `layers.deeplab` (v1) and `layers.nn_layers`
#: (v2) implementations.
SPP_LAYER_VERSIONS = ("v1", "v2")
#: The interpolations `tf.image.resize` offers (`interpolation`).
INTERPOLATIONS = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{owner} `{name}` is {value!r}: must be a positive int")
    return int(value)


@keras.saving.register_keras_serializable(package="garden_vision")
class SpatialPyramidPooling(keras.layers.Layer):
    """Atrous spatial pyramid pooling (ASPP): parallel branches at several scales, fused.

    On `[batch, height, width, channels]` features it runs, in parallel:

    1. a 1x1 convolution;
    2. a 3x3 convolution at each of `dilation_rates` (depthwise-separable with
       `use_depthwise_convolution`: a dilated 3x3 depthwise convolution, then a 1x1 one);
    3. image pooling: global average pooling (or average pooling with `pool_kernel_size`
       windows and strides), a 1x1 convolution, resized back to the input's height and
       width.

    Every branch has `output_channels` filters, no bias, batch normalization and the
    activation. The branches are concatenated (in that order), projected by a 1x1
    convolution (+ batch normalization and activation) and passed through dropout. The
    output is `[batch, height, width, output_channels]`; height and width may be unknown.

    The two versions differ as Model Garden's two classes do: `v1` resizes the pooled
    branch bilinearly (whatever `interpolation` says) and gives the depthwise kernels
    Keras' default initializer and no regularizer; `v2` resizes with `interpolation` and
    initializes and regularizes the depthwise kernels like the others.

    Example:

    ```python
    aspp = SpatialPyramidPooling(output_channels=256, dilation_rates=[6, 12, 18])
    features = aspp(backbone_features["4"])  # [2, 32, 32, 2048] -> [2, 32, 32, 256]
    ```

    Args:
      output_channels: Channels of every branch and of the output.
      dilation_rates: Dilation rates of the 3x3 branches (may be empty).
      pool_kernel_size: `[height, width]` of the image-pooling windows, or None (or empty)
        for global average pooling.
      use_sync_bn: Synchronize batch statistics across replicas.
      batchnorm_momentum: Momentum of the batch-normalization moving averages.
      batchnorm_epsilon: Epsilon of batch normalization.
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      dropout: Dropout rate of the output, in [0, 1).
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      interpolation: How `v2` resizes the pooled branch back (a `tf.image.resize` method).
      use_depthwise_convolution: Depthwise-separable atrous branches.
      spp_layer_version: `v1` or `v2` (see above).
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Raises:
      ConfigError: For a setting out of range.
    """

    def __init__(
        self,
        output_channels: int,
        dilation_rates: Sequence[int],
        pool_kernel_size: Sequence[int] | None = None,
        use_sync_bn: bool = False,
        batchnorm_momentum: float = 0.99,
        batchnorm_epsilon: float = 0.001,
        activation: str = "relu",
        dropout: float = 0.5,
        kernel_initializer: str | dict | keras.initializers.Initializer = "glorot_uniform",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        interpolation: str = "bilinear",
        use_depthwise_convolution: bool = False,
        spp_layer_version: str = "v1",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        # === Settings ===
        owner = "SpatialPyramidPooling"
        self.output_channels = _positive_int(owner, "output_channels", output_channels)
        self.dilation_rates = [
            _positive_int(owner, "dilation_rates", rate) for rate in dilation_rates or []
        ]
        if pool_kernel_size:
            if len(pool_kernel_size) != 2:
                raise ConfigError(
                    f"{owner} `pool_kernel_size` is {pool_kernel_size!r}: expected [height, "
                    "width] or None"
                )
            pool_kernel_size = [
                _positive_int(owner, "pool_kernel_size", side) for side in pool_kernel_size
            ]
        self.pool_kernel_size = list(pool_kernel_size) if pool_kernel_size else None
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{owner} `dropout` is {dropout!r}: must be in [0, 1)")
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"{owner} `interpolation` is {interpolation!r}: expected one of "
                + ", ".join(INTERPOLATIONS)
            )
        if spp_layer_version not in SPP_LAYER_VERSIONS:
            raise ConfigError(
                f"{owner} `spp_layer_version` is {spp_layer_version!r}: expected one of "
                + ", ".join(SPP_LAYER_VERSIONS)
            )
        get_activation(activation)  # Validates the name.
        self.use_sync_bn = bool(use_sync_bn)
        self.batchnorm_momentum = batchnorm_momentum
        self.batchnorm_epsilon = batchnorm_epsilon
        self.activation = activation
        self.dropout = float(dropout)
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.interpolation = interpolation
        self.use_depthwise_convolution = bool(use_depthwise_convolution)
        self.spp_layer_version = spp_layer_version

        # === Branches (attributes, so that tf.train.Checkpoint sees them) ===
        self.conv1x1_branch = self._branch([self._conv(1, 1, "conv")], "aspp_conv1x1")
        self._atrous_names = []
        for index, rate in enumerate(self.dilation_rates):
            name = f"aspp_atrous_{index}"
            setattr(self, name, self._branch([self._atrous_conv(rate)], name))
            self._atrous_names.append(name)
        if self.pool_kernel_size is None:
            pool = keras.layers.GlobalAveragePooling2D(
                keepdims=True, dtype=self.dtype_policy, name="pool"
            )
        else:
            pool = keras.layers.AveragePooling2D(
                tuple(self.pool_kernel_size), dtype=self.dtype_policy, name="pool"
            )
        self.pooling_branch = self._branch([pool, self._conv(1, 1, "conv")], "aspp_pooling")
        self.projection = keras.Sequential(
            [
                self._conv(1, 1, "conv"),
                self._norm(),
                get_activation(activation, dtype=self.dtype_policy),
                keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="dropout"),
            ],
            name="aspp_projection",
        )

    def _conv(self, kernel_size: int, dilation_rate: int, name: str) -> keras.layers.Conv2D:
        return keras.layers.Conv2D(
            self.output_channels,
            kernel_size,
            padding="same",
            dilation_rate=dilation_rate,
            use_bias=False,
            kernel_initializer=new_initializer(self.kernel_initializer),
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _atrous_conv(self, rate: int) -> keras.layers.Layer:
        if not self.use_depthwise_convolution:
            return self._conv(3, rate, "conv")
        # Model Garden's v1 leaves the depthwise kernel at Keras' defaults.
        v2 = self.spp_layer_version == "v2"
        return keras.layers.SeparableConv2D(
            self.output_channels,
            3,
            padding="same",
            dilation_rate=rate,
            use_bias=False,
            depthwise_initializer=(
                new_initializer(self.kernel_initializer) if v2 else "glorot_uniform"
            ),
            pointwise_initializer=new_initializer(self.kernel_initializer),
            depthwise_regularizer=self.kernel_regularizer if v2 else None,
            pointwise_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="separable_conv",
        )

    def _norm(self) -> keras.layers.BatchNormalization:
        return batch_norm(
            momentum=self.batchnorm_momentum,
            epsilon=self.batchnorm_epsilon,
            synchronized=self.use_sync_bn,
            dtype=self.dtype_policy,
            name="norm",
        )

    def _branch(self, layers: list[keras.layers.Layer], name: str) -> keras.Sequential:
        """`layers`, then batch normalization and the activation."""
        return keras.Sequential(
            [*layers, self._norm(), get_activation(self.activation, dtype=self.dtype_policy)],
            name=name,
        )

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = tuple(input_shape)
        if len(shape) != 4 or shape[-1] is None:
            raise ValueError(
                "SpatialPyramidPooling reads [batch, height, width, channels] features with "
                f"known channels, got shape {shape}"
            )
        self.conv1x1_branch.build(shape)
        for name in self._atrous_names:
            getattr(self, name).build(shape)
        self.pooling_branch.build(shape)
        num_branches = len(self._atrous_names) + 2
        self.projection.build((*shape[:3], self.output_channels * num_branches))
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        branches = [self.conv1x1_branch(inputs, training=training)]
        branches += [getattr(self, name)(inputs, training=training) for name in self._atrous_names]
        pooled = self.pooling_branch(inputs, training=training)
        if self.pool_kernel_size is None:
            # Resizing a 1x1 map gives its value everywhere, whatever the interpolation.
            pooled = tf.broadcast_to(pooled, tf.shape(branches[0]))
        else:
            method = "bilinear" if self.spp_layer_version == "v1" else self.interpolation
            pooled = tf.image.resize(
                tf.cast(pooled, tf.float32), tf.shape(inputs)[1:3], method=method
            )
            pooled = ops.cast(pooled, self.compute_dtype)
        branches.append(pooled)
        return self.projection(ops.concatenate(branches, axis=-1), training=training)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:3], self.output_channels)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "output_channels": self.output_channels,
            "dilation_rates": list(self.dilation_rates),
            "pool_kernel_size": self.pool_kernel_size,
            "use_sync_bn": self.use_sync_bn,
            "batchnorm_momentum": self.batchnorm_momentum,
            "batchnorm_epsilon": self.batchnorm_epsilon,
            "activation": self.activation,
            "dropout": self.dropout,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "interpolation": self.interpolation,
            "use_depthwise_convolution": self.use_depthwise_convolution,
            "spp_layer_version": self.spp_layer_version,
        }
