"""The residual blocks of ResNet v1.5, with the ResNet-D and ResNet-RS options.

- `ResidualBlock`: the basic block (two 3x3 convolutions) of ResNet-10/18/34.
- `BottleneckBlock`: the bottleneck block (1x1, 3x3, 1x1 with 4x expansion) of ResNet-26
  and deeper. It is v1.5: the block's stride sits on the 3x3 convolution, not on the first
  1x1 convolution as in the original v1.

Both put batch normalization after every convolution, apply the activation after adding
the shortcut, and take the options of Model Garden's `nn_blocks`: a projection shortcut
(`use_projection`), ResNet-D's average-pooling shortcut (`resnetd_shortcut`),
squeeze-and-excitation (`se_ratio`) and stochastic depth (`stochastic_depth_drop_rate`).
"""

from __future__ import annotations

from typing import Any

import keras

from garden_vision.modeling.layers.nn_layers import (
    SqueezeExcitation,
    StochasticDepth,
    batch_norm,
    get_activation,
)
from garden_vision.modeling.serialization import serialize_initializer, serialize_regularizer


class _ResNetBlock(keras.layers.Layer):
    """Shortcut, squeeze-and-excitation, stochastic depth and config shared by both blocks.

    Subclasses set `expansion` (output channels per filter) and create the layers of the
    residual branch, in order, in `_make_branch`.
    """

    expansion = 1

    def __init__(
        self,
        filters: int,
        strides: int,
        use_projection: bool = False,
        se_ratio: float | None = None,
        resnetd_shortcut: bool = False,
        stochastic_depth_drop_rate: float | None = None,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        bias_regularizer: keras.regularizers.Regularizer | dict | None = None,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        bn_trainable: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.use_projection = bool(use_projection)
        self.se_ratio = se_ratio
        self.resnetd_shortcut = bool(resnetd_shortcut)
        self.stochastic_depth_drop_rate = stochastic_depth_drop_rate
        # Stored serialized: every convolution gets its own initializer instance from it.
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.activation = activation
        self.use_sync_bn = bool(use_sync_bn)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.bn_trainable = bool(bn_trainable)
        self.out_filters = self.filters * self.expansion

        shortcut_layers: list[keras.layers.Layer] = []
        if self.use_projection:
            if self.resnetd_shortcut:
                # ResNet-D: average pooling does the downsampling, so the 1x1 projection
                # sees every input position. Like Model Garden, the 2x2 pooling is applied
                # (with stride 1) in stride-1 projection blocks too.
                shortcut_layers.append(
                    keras.layers.AveragePooling2D(
                        pool_size=2,
                        strides=self.strides,
                        padding="same",
                        dtype=self.dtype_policy,
                        name="shortcut_pool",
                    )
                )
                shortcut_layers.append(self._conv(self.out_filters, 1, 1, "shortcut_conv"))
            else:
                shortcut_layers.append(
                    self._conv(self.out_filters, 1, self.strides, "shortcut_conv")
                )
            shortcut_layers.append(self._norm("shortcut_norm"))

        # `Sequential`s, not lists: `tf.train.Checkpoint` does not see layers that a Keras 3
        # layer holds in a list attribute, so their weights would be missing from checkpoints.
        self.shortcut = (
            keras.Sequential(shortcut_layers, name="shortcut") if shortcut_layers else None
        )
        self.branch = keras.Sequential(self._make_branch(), name="branch")

        self.squeeze_excitation = None
        if self.se_ratio and 0 < self.se_ratio <= 1:
            self.squeeze_excitation = SqueezeExcitation(
                in_filters=self.out_filters,
                out_filters=self.out_filters,
                se_ratio=self.se_ratio,
                kernel_initializer=self.kernel_initializer,
                kernel_regularizer=self.kernel_regularizer,
                bias_regularizer=self.bias_regularizer,
                dtype=self.dtype_policy,
                name="se",
            )
        self.stochastic_depth = None
        if self.stochastic_depth_drop_rate:
            self.stochastic_depth = StochasticDepth(
                self.stochastic_depth_drop_rate, dtype=self.dtype_policy, name="stochastic_depth"
            )
        self.add = keras.layers.Add(dtype=self.dtype_policy, name="add")
        self.output_activation = get_activation(activation, dtype=self.dtype_policy)

    def _conv(
        self, filters: int, kernel_size: int, strides: int, name: str, dilation_rate: int = 1
    ) -> keras.layers.Conv2D:
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            dilation_rate=dilation_rate,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _norm(self, name: str) -> keras.layers.BatchNormalization:
        return batch_norm(
            momentum=self.norm_momentum,
            epsilon=self.norm_epsilon,
            synchronized=self.use_sync_bn,
            trainable=self.bn_trainable,
            dtype=self.dtype_policy,
            name=name,
        )

    def _activation(self) -> keras.layers.Layer:
        return get_activation(self.activation, dtype=self.dtype_policy)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if shape[-1] != self.out_filters and not self.use_projection:
            raise ValueError(
                f"{type(self).__name__} without a projection needs {self.out_filters} input "
                f"channels, got input shape {shape}; set use_projection=True"
            )
        shortcut_shape = shape
        if self.shortcut is not None:
            self.shortcut.build(shape)
            shortcut_shape = self.shortcut.compute_output_shape(shape)
        self.branch.build(shape)
        branch_shape = self.branch.compute_output_shape(shape)
        if self.squeeze_excitation is not None:
            self.squeeze_excitation.build(branch_shape)
        if self.stochastic_depth is not None:
            self.stochastic_depth.build(branch_shape)
        self.add.build([branch_shape, shortcut_shape])
        self.output_activation.build(branch_shape)
        self.built = True

    def call(self, inputs, training=None):
        shortcut = inputs if self.shortcut is None else self.shortcut(inputs, training=training)
        x = self.branch(inputs, training=training)
        if self.squeeze_excitation is not None:
            x = self.squeeze_excitation(x)
        if self.stochastic_depth is not None:
            x = self.stochastic_depth(x, training=training)
        return self.output_activation(self.add([x, shortcut]))

    def compute_output_shape(self, input_shape):
        return self.branch.compute_output_shape(tuple(input_shape))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "use_projection": self.use_projection,
            "se_ratio": self.se_ratio,
            "resnetd_shortcut": self.resnetd_shortcut,
            "stochastic_depth_drop_rate": self.stochastic_depth_drop_rate,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "bias_regularizer": serialize_regularizer(self.bias_regularizer),
            "activation": self.activation,
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "bn_trainable": self.bn_trainable,
        }


@keras.saving.register_keras_serializable(package="garden_vision")
class ResidualBlock(_ResNetBlock):
    """The basic residual block: two 3x3 convolutions (ResNet-10, -18 and -34).

    `conv3x3(strides) - BN - act - conv3x3 - BN [- SE] [- stochastic depth] + shortcut - act`,
    with `filters` output channels.

    Args:
      filters: Channels of both convolutions and of the output.
      strides: Stride of the first convolution (and of the projection shortcut).
      use_projection: A 1x1 convolution + BN shortcut instead of the identity; needed when
        the block changes the resolution or the channels.
      se_ratio: Squeeze-and-excitation ratio in (0, 1]; None or 0 disables it.
      resnetd_shortcut: ResNet-D's shortcut: 2x2 average pooling (with the block's stride)
        before a stride-1 1x1 projection. Only used with `use_projection`. (Model Garden's
        basic block ignores this option; here both blocks honour it.)
      stochastic_depth_drop_rate: Probability of dropping the residual branch while
        training; None or 0 disables it.
      kernel_initializer: Initializer of the convolution kernels (each gets its own copy).
      kernel_regularizer: Regularizer of the convolution kernels, or None.
      bias_regularizer: Regularizer of the biases (of the squeeze-and-excitation
        convolutions), or None.
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      bn_trainable: Whether the batch-normalization layers train (False freezes them and
        runs them in inference mode).
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    expansion = 1

    def _make_branch(self) -> list[keras.layers.Layer]:
        return [
            self._conv(self.filters, 3, self.strides, "conv1"),
            self._norm("norm1"),
            self._activation(),
            self._conv(self.filters, 3, 1, "conv2"),
            self._norm("norm2"),
        ]


@keras.saving.register_keras_serializable(package="garden_vision")
class BottleneckBlock(_ResNetBlock):
    """The v1.5 bottleneck block: 1x1, strided 3x3 and 4x-expanding 1x1 convolutions.

    `conv1x1 - BN - act - conv3x3(strides) - BN - act - conv1x1(4 * filters) - BN [- SE]
    [- stochastic depth] + shortcut - act`, with `4 * filters` output channels.

    Args:
      filters: Channels of the first two convolutions; the output has `4 * filters`.
      strides: Stride of the 3x3 convolution (v1.5) and of the projection shortcut.
      dilation_rate: Dilation of the 3x3 convolution.
      use_projection: A 1x1 convolution + BN shortcut instead of the identity; needed when
        the block changes the resolution or the channels.
      se_ratio: Squeeze-and-excitation ratio in (0, 1]; None or 0 disables it.
      resnetd_shortcut: ResNet-D's shortcut: 2x2 average pooling (with the block's stride)
        before a stride-1 1x1 projection. Only used with `use_projection`.
      stochastic_depth_drop_rate: Probability of dropping the residual branch while
        training; None or 0 disables it.
      kernel_initializer: Initializer of the convolution kernels (each gets its own copy).
      kernel_regularizer: Regularizer of the convolution kernels, or None.
      bias_regularizer: Regularizer of the biases (of the squeeze-and-excitation
        convolutions), or None.
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      bn_trainable: Whether the batch-normalization layers train (False freezes them and
        runs them in inference mode).
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    expansion = 4

    def __init__(self, filters: int, strides: int, dilation_rate: int = 1, **kwargs: Any):
        self.dilation_rate = int(dilation_rate)
        super().__init__(filters, strides, **kwargs)

    def _make_branch(self) -> list[keras.layers.Layer]:
        return [
            self._conv(self.filters, 1, 1, "conv1"),
            self._norm("norm1"),
            self._activation(),
            self._conv(self.filters, 3, self.strides, "conv2", self.dilation_rate),
            self._norm("norm2"),
            self._activation(),
            self._conv(self.out_filters, 1, 1, "conv3"),
            self._norm("norm3"),
        ]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dilation_rate": self.dilation_rate}
