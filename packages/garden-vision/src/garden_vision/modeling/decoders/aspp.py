"""The ASPP decoder of DeepLabV3 and DeepLabV3+ (Model Garden's `decoders.ASPP`).

`ASPP` runs atrous spatial pyramid pooling (`layers.deeplab.SpatialPyramidPooling`) on one
backbone level and returns `{str(level): features}` (or the tensor alone with
`output_tensor`), which a segmentation head reads. `build_aspp` builds it from a
`configs.decoders.ASPP` config and is registered as the `aspp` entry of `garden.decoders`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs.common import NormActivation
from garden_vision.configs.decoders import ASPP as ASPPConfig
from garden_vision.modeling.decoders.fpn import normalize_input_specs
from garden_vision.modeling.layers.deeplab import SpatialPyramidPooling
from garden_vision.modeling.serialization import serialize_regularizer


def _sorted_keys(keys: Any) -> list[str]:
    """Endpoint names, levels first in numeric order, for messages."""
    return sorted((str(key) for key in keys), key=lambda key: (not key.isdigit(), len(key), key))


@keras.saving.register_keras_serializable(package="garden_vision")
class ASPP(keras.layers.Layer):
    """Atrous spatial pyramid pooling on backbone level `level`.

    Called on the backbone's dict of features (it reads `inputs[str(level)]`) or on that
    level's tensor, it returns `{str(level): [batch, H_l, W_l, num_filters]}`, or the tensor
    with `output_tensor`. `pool_kernel_size` is given in input-image pixels, as in Model
    Garden: the pooling windows on the level's features are `pool_kernel_size // 2**level`.

    Example:

    ```python
    decoder = ASPP(level=4, dilation_rates=[6, 12, 18])
    features = decoder(backbone(images))  # {"4": [batch, H / 16, W / 16, 256]}
    ```

    Args:
      level: The backbone level it reads (and reports).
      dilation_rates: Dilation rates of the 3x3 atrous branches.
      num_filters: Channels of every branch and of the output.
      pool_kernel_size: `[height, width]` of the image-pooling windows in input pixels, or
        None (or empty) for global average pooling.
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      activation: The activation's Model Garden name.
      dropout_rate: Dropout of the output, in [0, 1).
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      interpolation: How the pooled branch is resized back (used by `spp_layer_version`
        `v2`).
      use_depthwise_convolution: Depthwise-separable atrous branches.
      spp_layer_version: `v1` or `v2` (see `SpatialPyramidPooling`).
      output_tensor: Return the features as a tensor instead of `{str(level): tensor}`.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).

    Raises:
      ConfigError: For a setting out of range, e.g. pooling windows smaller than a pixel of
        level `level`.
    """

    def __init__(
        self,
        level: int,
        dilation_rates: Sequence[int],
        num_filters: int = 256,
        pool_kernel_size: Sequence[int] | None = None,
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        activation: str = "relu",
        dropout_rate: float = 0.0,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        interpolation: str = "bilinear",
        use_depthwise_convolution: bool = False,
        spp_layer_version: str = "v1",
        output_tensor: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if isinstance(level, bool) or not isinstance(level, numbers.Integral) or level < 0:
            raise ConfigError(f"ASPP `level` is {level!r}: must be a backbone level (an int)")
        self.level = int(level)
        self.pool_kernel_size = list(pool_kernel_size) if pool_kernel_size else None
        pool_windows = None
        if self.pool_kernel_size is not None:
            pool_windows = [int(side) // 2**self.level for side in self.pool_kernel_size]
            if any(side < 1 for side in pool_windows):
                raise ConfigError(
                    f"ASPP `pool_kernel_size` is {self.pool_kernel_size}: windows of input "
                    f"pixels at least 2**level = {2**self.level} on each side are needed at "
                    f"level {self.level}"
                )
        self.output_tensor = bool(output_tensor)
        self.aspp = SpatialPyramidPooling(
            output_channels=num_filters,
            dilation_rates=list(dilation_rates or []),
            pool_kernel_size=pool_windows,
            use_sync_bn=use_sync_bn,
            batchnorm_momentum=norm_momentum,
            batchnorm_epsilon=norm_epsilon,
            activation=activation,
            dropout=dropout_rate,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            interpolation=interpolation,
            use_depthwise_convolution=use_depthwise_convolution,
            spp_layer_version=spp_layer_version,
            dtype=self.dtype_policy,
            name="spatial_pyramid_pooling",
        )
        self.num_filters = self.aspp.output_channels
        self.dilation_rates = list(self.aspp.dilation_rates)
        self.use_sync_bn = self.aspp.use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.activation = activation
        self.dropout_rate = self.aspp.dropout
        self.kernel_initializer = self.aspp.kernel_initializer
        self.kernel_regularizer = self.aspp.kernel_regularizer
        self.interpolation = interpolation
        self.use_depthwise_convolution = self.aspp.use_depthwise_convolution
        self.spp_layer_version = spp_layer_version
        self._feature_shape: tuple[int | None, ...] | None = None

    def _level_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        """The shape of the features of `level` in `input_shape` (a dict or one shape)."""
        if isinstance(input_shape, Mapping):
            key = str(self.level)
            if key not in input_shape:
                raise ConfigError(
                    f"ASPP `level` is {self.level}, but the backbone gives "
                    f"{_sorted_keys(input_shape)}"
                )
            input_shape = input_shape[key]
        return tuple(input_shape)

    def build(self, input_shape: Any) -> None:
        self._feature_shape = self._level_shape(input_shape)
        self.aspp.build(self._feature_shape)

    @property
    def output_specs(self) -> dict[str, tuple[int | None, ...]]:
        """`{str(level): shape}` of the output, batch dimension (None) first (height and width
        known once built)."""
        if self._feature_shape is None:
            shape = (None, None, None, self.num_filters)
        else:
            shape = (None, *self._feature_shape[1:3], self.num_filters)
        return {str(self.level): shape}

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        features = inputs[str(self.level)] if isinstance(inputs, Mapping) else inputs
        outputs = self.aspp(features, training=training)
        return outputs if self.output_tensor else {str(self.level): outputs}

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = (*self._level_shape(input_shape)[:3], self.num_filters)
        return shape if self.output_tensor else {str(self.level): shape}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "level": self.level,
            "dilation_rates": list(self.dilation_rates),
            "num_filters": self.num_filters,
            "pool_kernel_size": self.pool_kernel_size,
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "activation": self.activation,
            "dropout_rate": self.dropout_rate,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "interpolation": self.interpolation,
            "use_depthwise_convolution": self.use_depthwise_convolution,
            "spp_layer_version": self.spp_layer_version,
            "output_tensor": self.output_tensor,
        }


_DEFAULTS = ASPPConfig()


def build_aspp(
    input_specs: Mapping[str, Any],
    norm_activation_config: NormActivation | None = None,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    min_level: int | None = None,
    max_level: int | None = None,
    *,
    level: int = _DEFAULTS.level,
    dilation_rates: list[int] | None = None,
    dropout_rate: float = _DEFAULTS.dropout_rate,
    num_filters: int = _DEFAULTS.num_filters,
    use_depthwise_convolution: bool = _DEFAULTS.use_depthwise_convolution,
    pool_kernel_size: list[int] | None = _DEFAULTS.pool_kernel_size,
    spp_layer_version: str = _DEFAULTS.spp_layer_version,
    output_tensor: bool = _DEFAULTS.output_tensor,
) -> ASPP:
    """Builds an `ASPP` decoder (the `aspp` entry of `garden.decoders`), weights included.

    The keyword settings are the fields of `configs.decoders.ASPP`, with its defaults;
    activation and batch normalization come from `norm_activation_config`.

    Args:
      input_specs: The backbone's `output_specs` (endpoint -> shape); it must report
        `level`.
      norm_activation_config: Activation and batch-normalization settings (defaults if
        None).
      l2_regularizer: Kernel regularizer of every convolution (weight decay), or None.
      min_level: Unused (ASPP reads the one level `level`); every decoder builder receives
        it.
      max_level: Unused, as `min_level`.
      level, dilation_rates, dropout_rate, num_filters, use_depthwise_convolution,
        pool_kernel_size, spp_layer_version, output_tensor: As in `ASPP` (no
        `dilation_rates`: the 1x1 and pooling branches only).

    Raises:
      ConfigError: If the backbone does not report `level`, or for settings `ASPP` rejects.
    """
    del min_level, max_level  # ASPP reads `level` only.
    norm_activation = norm_activation_config or NormActivation()
    specs = normalize_input_specs(input_specs, "ASPP")
    if str(level) not in specs:
        raise ConfigError(
            f"ASPP `level` is {level!r}, but the backbone gives endpoints {_sorted_keys(specs)}"
        )
    decoder = ASPP(
        level=level,
        dilation_rates=list(dilation_rates or []),
        num_filters=num_filters,
        pool_kernel_size=pool_kernel_size,
        use_sync_bn=norm_activation.use_sync_bn,
        norm_momentum=norm_activation.norm_momentum,
        norm_epsilon=norm_activation.norm_epsilon,
        activation=norm_activation.activation,
        dropout_rate=dropout_rate,
        kernel_regularizer=l2_regularizer,
        use_depthwise_convolution=use_depthwise_convolution,
        spp_layer_version=spp_layer_version,
        output_tensor=output_tensor,
    )
    decoder.build(specs)
    return decoder
