"""Building blocks of the mobile backbones (MobileNet V2/V3, EfficientNet).

- `Conv2DBNBlock`: a convolution, optional batch normalization and an activation (the stems
  and the final 1x1 layers of MobileNet and EfficientNet).
- `InvertedBottleneckBlock`: MobileNetV2's inverted residual, EfficientNet's MBConv: an
  optional 1x1 expansion, a KxK depthwise convolution, optional squeeze-and-excitation, a
  linear 1x1 projection and, when the block keeps its shape, a residual connection with
  stochastic depth.

Both follow Model Garden's `Conv2DBNBlock` and `nn_blocks.InvertedBottleneckBlock` in their
arguments and weights, so the same specs build the same networks.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_vision.modeling.layers import nn_layers
from garden_vision.modeling.serialization import (
    new_initializer,
    serialize_initializer,
    serialize_regularizer,
)


@keras.saving.register_keras_serializable(package="garden_vision")
class Conv2DBNBlock(keras.layers.Layer):
    """A 2-D convolution, then optional batch normalization, then an activation.

    Args:
      filters: Output channels.
      kernel_size: Side of the square kernel.
      strides: Stride of the convolution.
      use_bias: Whether the convolution has a bias (usually not when normalized).
      use_normalization: Whether batch normalization follows the convolution.
      activation: The activation's Model Garden name (`relu6`, `hard_swish`, `swish`, ...).
      dilation_rate: Dilation of the convolution (with `strides` 1).
      kernel_initializer: Initializer of the kernel.
      kernel_regularizer: Regularizer of the kernel, or None.
      bias_regularizer: Regularizer of the bias, or None.
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the moving statistics.
      norm_epsilon: Variance epsilon of batch normalization.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        use_bias: bool = False,
        use_normalization: bool = True,
        activation: str = "relu6",
        dilation_rate: int = 1,
        kernel_initializer: str | Any = "variance_scaling",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.use_bias = use_bias
        self.use_normalization = use_normalization
        self.activation = activation
        self.dilation_rate = dilation_rate
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon

        self.conv = keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            dilation_rate=dilation_rate,
            use_bias=use_bias,
            kernel_initializer=new_initializer(kernel_initializer),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.norm = None
        if use_normalization:
            self.norm = nn_layers.batch_norm(
                momentum=norm_momentum,
                epsilon=norm_epsilon,
                synchronized=use_sync_bn,
                dtype=self.dtype_policy,
                name="norm",
            )
        self.activation_layer = nn_layers.get_activation(activation, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv.build(input_shape)
        if self.norm is not None:
            self.norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        if self.norm is not None:
            x = self.norm(x, training=training)
        return self.activation_layer(x)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "use_bias": self.use_bias,
            "use_normalization": self.use_normalization,
            "activation": self.activation,
            "dilation_rate": self.dilation_rate,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "bias_regularizer": serialize_regularizer(self.bias_regularizer),
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
        }


@keras.saving.register_keras_serializable(package="garden_vision")
class InvertedBottleneckBlock(keras.layers.Layer):
    """The inverted residual block of MobileNetV2/V3 and EfficientNet (MBConv).

    `inputs -> [1x1 expansion, BN, activation] -> KxK depthwise, BN, depthwise activation
    -> [squeeze-excitation] -> 1x1 projection, BN (linear) -> [+ inputs]`. The expansion
    exists only when `expand_ratio > 1`; the residual (with stochastic depth on the branch)
    only when `use_residual`, `strides == 1` and `in_filters == out_filters`.

    With `output_intermediate_endpoints` the call returns `(outputs, {"depthwise": x})`,
    where `x` is the expanded feature map after the depthwise convolution's activation.

    Args:
      in_filters: Channels of the input.
      out_filters: Channels of the output.
      expand_ratio: Width of the expanded features relative to `in_filters` (rounded to a
        multiple of `divisible_by`).
      strides: Stride of the depthwise convolution.
      kernel_size: Side of the depthwise kernel.
      se_ratio: Squeeze-and-excitation ratio in (0, 1]; None or 0 for no SE.
      stochastic_depth_drop_rate: Drop rate of the residual branch; None or 0 for none.
      kernel_initializer: Initializer of every kernel.
      kernel_regularizer: Regularizer of the 1x1 kernels (and of the SE kernels).
      bias_regularizer: Regularizer of the SE biases.
      activation: Activation of the expansion (a Model Garden name: `relu6`, `relu`,
        `hard_swish`, `swish`, ...).
      se_inner_activation: Activation of the SE reduction.
      se_gating_activation: Gate of the SE (`sigmoid`; `hard_sigmoid` in MobileNetV3).
      expand_se_in_filters: Compute the SE width from the expanded channels (MobileNetV3)
        instead of `in_filters` (EfficientNet).
      depthwise_activation: Activation after the depthwise convolution; None for
        `activation`.
      use_sync_bn: Synchronize batch statistics across replicas.
      dilation_rate: Dilation of the depthwise convolution (with `strides` 1).
      divisible_by: Rounds the expanded and SE widths to multiples of this.
      regularize_depthwise: Apply `kernel_regularizer` to the depthwise kernel too.
      use_residual: Add the input to the output when the shapes allow it.
      norm_momentum: Momentum of the moving statistics.
      norm_epsilon: Variance epsilon of batch normalization.
      output_intermediate_endpoints: Also return the depthwise features (see above).
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    def __init__(
        self,
        in_filters: int,
        out_filters: int,
        expand_ratio: float,
        strides: int,
        kernel_size: int = 3,
        se_ratio: float | None = None,
        stochastic_depth_drop_rate: float | None = None,
        kernel_initializer: str | Any = "variance_scaling",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activation: str = "relu",
        se_inner_activation: str = "relu",
        se_gating_activation: str = "sigmoid",
        expand_se_in_filters: bool = False,
        depthwise_activation: str | None = None,
        use_sync_bn: bool = False,
        dilation_rate: int = 1,
        divisible_by: int = 1,
        regularize_depthwise: bool = False,
        use_residual: bool = True,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        output_intermediate_endpoints: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if strides > 1 and dilation_rate > 1:
            raise ValueError(
                f"InvertedBottleneckBlock: strides ({strides}) and dilation_rate "
                f"({dilation_rate}) cannot both exceed 1"
            )
        self.in_filters = in_filters
        self.out_filters = out_filters
        self.expand_ratio = expand_ratio
        self.strides = strides
        self.kernel_size = kernel_size
        self.se_ratio = se_ratio
        self.stochastic_depth_drop_rate = stochastic_depth_drop_rate
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.activation = activation
        self.se_inner_activation = se_inner_activation
        self.se_gating_activation = se_gating_activation
        self.expand_se_in_filters = expand_se_in_filters
        self.depthwise_activation = depthwise_activation
        self.use_sync_bn = use_sync_bn
        self.dilation_rate = dilation_rate
        self.divisible_by = divisible_by
        self.regularize_depthwise = regularize_depthwise
        self.use_residual = use_residual
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.output_intermediate_endpoints = output_intermediate_endpoints

        self.expand_filters = nn_layers.make_divisible(in_filters * expand_ratio, divisible_by)
        self.has_residual = use_residual and strides == 1 and in_filters == out_filters

        def norm(name: str) -> keras.layers.BatchNormalization:
            return nn_layers.batch_norm(
                momentum=norm_momentum,
                epsilon=norm_epsilon,
                synchronized=use_sync_bn,
                dtype=self.dtype_policy,
                name=name,
            )

        self.expand_conv = self.expand_norm = self.expand_activation = None
        if expand_ratio > 1:
            self.expand_conv = keras.layers.Conv2D(
                self.expand_filters,
                1,
                use_bias=False,
                kernel_initializer=new_initializer(kernel_initializer),
                kernel_regularizer=self.kernel_regularizer,
                dtype=self.dtype_policy,
                name="expand_conv",
            )
            self.expand_norm = norm("expand_norm")
            self.expand_activation = nn_layers.get_activation(activation, dtype=self.dtype_policy)

        self.depthwise_conv = keras.layers.DepthwiseConv2D(
            kernel_size,
            strides=strides,
            padding="same",
            dilation_rate=dilation_rate,
            use_bias=False,
            depthwise_initializer=new_initializer(kernel_initializer),
            depthwise_regularizer=self.kernel_regularizer if regularize_depthwise else None,
            dtype=self.dtype_policy,
            name="depthwise_conv",
        )
        self.depthwise_norm = norm("depthwise_norm")
        self.depthwise_activation_layer = nn_layers.get_activation(
            depthwise_activation or activation, dtype=self.dtype_policy
        )

        self.squeeze_excitation = None
        if se_ratio and 0 < se_ratio <= 1:
            self.squeeze_excitation = nn_layers.SqueezeExcitation(
                in_filters=self.expand_filters if expand_se_in_filters else in_filters,
                out_filters=self.expand_filters,
                se_ratio=se_ratio,
                divisible_by=divisible_by,
                activation=se_inner_activation,
                gating_activation=se_gating_activation,
                kernel_initializer=serialize_initializer(kernel_initializer),
                kernel_regularizer=self.kernel_regularizer,
                bias_regularizer=self.bias_regularizer,
                dtype=self.dtype_policy,
                name="squeeze_excitation",
            )

        self.project_conv = keras.layers.Conv2D(
            out_filters,
            1,
            use_bias=False,
            kernel_initializer=new_initializer(kernel_initializer),
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="project_conv",
        )
        self.project_norm = norm("project_norm")

        self.stochastic_depth = None
        if self.has_residual and stochastic_depth_drop_rate:
            self.stochastic_depth = nn_layers.StochasticDepth(
                stochastic_depth_drop_rate, dtype=self.dtype_policy, name="stochastic_depth"
            )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.expand_conv is not None:
            self.expand_conv.build(shape)
            shape = self.expand_conv.compute_output_shape(shape)
            self.expand_norm.build(shape)
        self.depthwise_conv.build(shape)
        shape = self.depthwise_conv.compute_output_shape(shape)
        self.depthwise_norm.build(shape)
        if self.squeeze_excitation is not None:
            self.squeeze_excitation.build(shape)
        self.project_conv.build(shape)
        self.project_norm.build(self.project_conv.compute_output_shape(shape))

    def call(self, inputs, training=None):
        x = inputs
        if self.expand_conv is not None:
            x = self.expand_conv(x)
            x = self.expand_norm(x, training=training)
            x = self.expand_activation(x)
        x = self.depthwise_conv(x)
        x = self.depthwise_norm(x, training=training)
        x = self.depthwise_activation_layer(x)
        depthwise = x
        if self.squeeze_excitation is not None:
            x = self.squeeze_excitation(x)
        x = self.project_conv(x)
        x = self.project_norm(x, training=training)
        if self.has_residual:
            if self.stochastic_depth is not None:
                x = self.stochastic_depth(x, training=training)
            x = x + inputs
        if self.output_intermediate_endpoints:
            return x, {"depthwise": depthwise}
        return x

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "in_filters": self.in_filters,
            "out_filters": self.out_filters,
            "expand_ratio": self.expand_ratio,
            "strides": self.strides,
            "kernel_size": self.kernel_size,
            "se_ratio": self.se_ratio,
            "stochastic_depth_drop_rate": self.stochastic_depth_drop_rate,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "bias_regularizer": serialize_regularizer(self.bias_regularizer),
            "activation": self.activation,
            "se_inner_activation": self.se_inner_activation,
            "se_gating_activation": self.se_gating_activation,
            "expand_se_in_filters": self.expand_se_in_filters,
            "depthwise_activation": self.depthwise_activation,
            "use_sync_bn": self.use_sync_bn,
            "dilation_rate": self.dilation_rate,
            "divisible_by": self.divisible_by,
            "regularize_depthwise": self.regularize_depthwise,
            "use_residual": self.use_residual,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "output_intermediate_endpoints": self.output_intermediate_endpoints,
        }
