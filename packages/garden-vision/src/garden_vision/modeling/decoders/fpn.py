"""Feature Pyramid Network (Lin et al., 2017), the decoder of RetinaNet and Mask R-CNN.

"Feature Pyramid Networks for Object Detection" (https://arxiv.org/abs/1612.03144).
`FPN` is Model Garden's `decoders.FPN`, with its arguments and computation:

1. Lateral connections: a 1x1 convolution (with bias) to `num_filters` channels on every
   backbone level from `min_level` up to the backbone's highest level (or `max_level`).
2. Top-down path: from the highest of those levels down, each level's lateral is merged
   with the 2x nearest-upsampled level above it, by a sum or by concatenation
   (`fusion_type`).
3. A 3x3 convolution (with bias) on every merged level.
4. Levels above the backbone's highest, up to `max_level` (RetinaNet's P6 and P7): a
   stride-2 3x3 convolution on the level below; from the second one on, the activation is
   applied to its input first.
5. Batch normalization on every output level.

The output is a dict of levels `"min_level"` ... `"max_level"`, each `[batch, H / 2**level,
W / 2**level, num_filters]`. `build_fpn` builds it from a `configs.decoders.FPN` config and
is registered as the `fpn` decoder.

The helpers `feature_inputs`, `numeric_levels` and `check_pyramid_sizes`, the layer
factory `PyramidLayers` and the base class `PyramidDecoder` are shared with `nasfpn`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs.common import NormActivation
from garden_vision.configs.decoders import FPN as FPNConfig
from garden_vision.modeling.layers.nn_layers import batch_norm, get_activation
from garden_vision.modeling.layers.resampling import upsampling_layer
from garden_vision.modeling.serialization import (
    serialize_initializer,
    serialize_regularizer,
)

FUSION_TYPES = ("sum", "concat")


def normalize_input_specs(input_specs: Any, name: str) -> dict[str, tuple[int | None, ...]]:
    """A backbone's `output_specs` (key -> shape) as `{str(key): tuple(shape)}`.

    Raises:
      ConfigError: If `input_specs` is not a non-empty mapping of shapes.
    """
    if not isinstance(input_specs, Mapping) or not input_specs:
        raise ConfigError(
            f"{name} `input_specs` must be the backbone's output_specs (level -> shape), "
            f"got {input_specs!r}"
        )
    specs = {}
    for key, shape in input_specs.items():
        shape = getattr(shape, "shape", shape)  # A KerasTensor or an InputSpec.
        try:
            specs[str(key)] = tuple(None if side is None else int(side) for side in shape)
        except TypeError:
            raise ConfigError(
                f"{name} `input_specs[{key!r}]` must be a shape, got {shape!r}"
            ) from None
    return specs


def numeric_levels(specs: Mapping[str, Sequence[int | None]], name: str) -> list[int]:
    """The sorted levels among the keys of `specs` (`"pre_logits"` and the like are skipped).

    Raises:
      ConfigError: If no key is a level, or a level's shape is not `[batch, H, W, C]` with
        known channels.
    """
    levels = sorted(int(key) for key in specs if key.isdigit())
    if not levels:
        raise ConfigError(f"{name}: the backbone reports no levels, only {sorted(specs)}")
    for level in levels:
        shape = specs[str(level)]
        if len(shape) != 4 or shape[-1] is None:
            raise ConfigError(
                f"{name}: level {level} must be [batch, height, width, channels] with known "
                f"channels, got {list(shape)}"
            )
    return levels


def check_pyramid_sizes(
    specs: Mapping[str, Sequence[int | None]], levels: Sequence[int], name: str
) -> None:
    """Raises a `ConfigError` unless each known level is exactly twice the size of the next.

    Nearest 2x upsampling of level `L + 1` must match level `L` wherever both sides are
    known (images whose sides are multiples of `2 ** max_level` satisfy this).
    """
    for lower, upper in zip(levels, levels[1:], strict=False):
        if upper != lower + 1:
            continue
        for axis, side in ((1, "height"), (2, "width")):
            small, large = specs[str(upper)][axis], specs[str(lower)][axis]
            if small is not None and large is not None and large != 2 * small:
                raise ConfigError(
                    f"{name}: level {lower} has {side} {large} but level {upper} has {small}; "
                    "each level must be exactly half the size of the one below (use input "
                    "sizes that are multiples of 2 ** max_level)"
                )


def feature_inputs(specs: Mapping[str, Sequence[int | None]]) -> dict[str, Any]:
    """One `keras.Input` per key of `specs` (the decoder takes the backbone's whole dict).

    Each input is named by its key (Keras matches dict inputs by name), with characters
    Keras does not allow in names (`/` in MobileNet's `"4/depthwise"`) replaced by `_`.
    """
    return {
        key: keras.Input(shape=tuple(shape[1:]), batch_size=shape[0], name=key.replace("/", "_"))
        for key, shape in specs.items()
    }


@dataclasses.dataclass(frozen=True)
class PyramidLayers:
    """Builds a pyramid decoder's convolutions and batch normalizations.

    Attributes:
      num_filters: Channels of every convolution.
      use_separable_conv: Depthwise-separable convolutions instead of regular ones.
      kernel_initializer: Initializer of the convolution kernels (serialized).
      kernel_regularizer: Regularizer of the convolution kernels, or None.
      bias_regularizer: Regularizer of the convolution biases, or None.
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
    """

    num_filters: int
    use_separable_conv: bool
    kernel_initializer: Any
    kernel_regularizer: keras.regularizers.Regularizer | None
    bias_regularizer: keras.regularizers.Regularizer | None
    use_sync_bn: bool
    norm_momentum: float
    norm_epsilon: float

    def conv(self, x, kernel_size: int, name: str, strides: int = 1):
        """A "same"-padded convolution with bias to `num_filters` channels, named `name`."""
        common = {
            "filters": self.num_filters,
            "kernel_size": kernel_size,
            "strides": strides,
            "padding": "same",
            "bias_initializer": "zeros",
            "bias_regularizer": self.bias_regularizer,
            "name": name,
        }
        if self.use_separable_conv:
            return keras.layers.SeparableConv2D(
                depthwise_initializer=self.kernel_initializer,
                pointwise_initializer=self.kernel_initializer,
                depthwise_regularizer=self.kernel_regularizer,
                pointwise_regularizer=self.kernel_regularizer,
                **common,
            )(x)
        return keras.layers.Conv2D(
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            **common,
        )(x)

    def norm(self, x, name: str):
        """Batch normalization, named `name`."""
        return batch_norm(
            momentum=self.norm_momentum,
            epsilon=self.norm_epsilon,
            synchronized=self.use_sync_bn,
            name=name,
        )(x)


class PyramidDecoder(keras.Model):
    """A functional model from a backbone's dict of features to levels, like `FPN`.

    What `FPN` and `NASFPN` share: `output_specs`, and serialization from the constructor
    arguments, which a subclass passes as `config` when it ends its `__init__` with
    `super().__init__(inputs=inputs, outputs=outputs, config=arguments, **kwargs)`.
    `get_config` returns them after `keras.Model`'s own, with `input_specs` as lists and
    regularizers serialized (initializers and block specs are passed serialized);
    `from_config` calls the constructor with them.

    Args:
      inputs: The dict of `keras.Input`s (see `feature_inputs`).
      outputs: The dict of output tensors, keyed by level.
      config: The subclass's constructor arguments (without `name`, `trainable`, `dtype`).
      **kwargs: Passed to `keras.Model` (e.g. `name`).
    """

    def __init__(
        self,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        config: Mapping[str, Any],
        **kwargs: Any,
    ):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._output_specs = {key: tuple(value.shape) for key, value in outputs.items()}
        self._decoder_config = dict(config)

    @property
    def output_specs(self) -> dict[str, tuple[int | None, ...]]:
        """Output level -> the shape of that output, batch dimension (None) first."""
        return dict(self._output_specs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key, value in self._decoder_config.items():
            if key == "input_specs":
                value = {level: list(shape) for level, shape in value.items()}
            elif key.endswith("_regularizer"):
                value = serialize_regularizer(value)
            config[key] = value
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> PyramidDecoder:
        return cls(**config)


@keras.saving.register_keras_serializable(package="garden_vision")
class FPN(PyramidDecoder):
    """A feature pyramid on a backbone's levels, with extra coarser levels up to `max_level`.

    Called on the backbone's dict of features (the keys of `input_specs`); returns levels
    `min_level..max_level` with `num_filters` channels each.

    Args:
      input_specs: The backbone's `output_specs` (level -> shape). Keys that are not
        levels (e.g. `"pre_logits"`) are accepted and ignored.
      min_level: The lowest output level; the backbone must report it.
      max_level: The highest output level; levels above the backbone's are made by
        strided convolutions.
      num_filters: Channels of every output level.
      fusion_type: `sum` (the paper's) or `concat` (concatenate, then let the 3x3
        convolution mix the channels).
      use_separable_conv: Depthwise-separable convolutions instead of regular ones.
      use_keras_layer: Upsample with `keras.layers.UpSampling2D` instead of
        `NearestUpsampling` (same values).
      activation: The activation's Model Garden name, used before the second and later
        extra coarser levels.
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      bias_regularizer: Regularizer of the convolution biases, or None.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: If the backbone lacks `min_level` or a level between it and its
        highest, `min_level > max_level`, `fusion_type` is unknown, `num_filters` is not
        positive, or known level sizes do not halve level by level.

    Example:

        backbone = ResNet(model_id=50, input_specs=InputSpec(shape=[None, 640, 640, 3]))
        fpn = FPN(input_specs=backbone.output_specs, min_level=3, max_level=7)
        features = fpn(backbone(images))  # {"3": [B, 80, 80, 256], ..., "7": [B, 5, 5, 256]}
    """

    def __init__(
        self,
        input_specs: Mapping[str, Any],
        min_level: int = 3,
        max_level: int = 7,
        num_filters: int = 256,
        fusion_type: str = "sum",
        use_separable_conv: bool = False,
        use_keras_layer: bool = False,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        bias_regularizer: keras.regularizers.Regularizer | dict | None = None,
        **kwargs: Any,
    ):
        name = type(self).__name__
        specs = normalize_input_specs(input_specs, name)
        levels = numeric_levels(specs, name)
        if min_level > max_level:
            raise ConfigError(f"{name}: min_level {min_level} is above max_level {max_level}")
        if fusion_type not in FUSION_TYPES:
            raise ConfigError(
                f"{name} `fusion_type` = {fusion_type!r} is not one of {', '.join(FUSION_TYPES)}"
            )
        if num_filters <= 0:
            raise ConfigError(f"{name} `num_filters` = {num_filters!r} must be > 0")
        backbone_max_level = min(levels[-1], max_level)
        missing = [lvl for lvl in range(min_level, backbone_max_level + 1) if lvl not in levels]
        if min_level not in levels or missing:
            raise ConfigError(
                f"{name}: the backbone reports levels {levels}, but the pyramid needs levels "
                f"{min_level} to {backbone_max_level} (min_level {min_level}); missing "
                f"{missing or [min_level]}"
            )
        check_pyramid_sizes(specs, levels, name)
        get_activation(activation)  # Validates the name.

        kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        bias_regularizer = keras.regularizers.get(bias_regularizer)
        initializer = serialize_initializer(kernel_initializer)
        layers = PyramidLayers(
            num_filters=num_filters,
            use_separable_conv=use_separable_conv,
            kernel_initializer=initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            use_sync_bn=use_sync_bn,
            norm_momentum=norm_momentum,
            norm_epsilon=norm_epsilon,
        )

        inputs = feature_inputs(specs)
        laterals = {
            level: layers.conv(inputs[str(level)], 1, f"lateral_{level}")
            for level in range(min_level, backbone_max_level + 1)
        }
        feats = {backbone_max_level: laterals[backbone_max_level]}
        for level in range(backbone_max_level - 1, min_level - 1, -1):
            upsampled = upsampling_layer(2, use_keras_layer, name=f"upsample_{level}")(
                feats[level + 1]
            )
            if fusion_type == "sum":
                feats[level] = keras.layers.Add(name=f"fuse_{level}")([upsampled, laterals[level]])
            else:
                feats[level] = keras.layers.Concatenate(axis=-1, name=f"fuse_{level}")(
                    [upsampled, laterals[level]]
                )
        for level in range(min_level, backbone_max_level + 1):
            feats[level] = layers.conv(feats[level], 3, f"post_hoc_{level}")
        for level in range(backbone_max_level + 1, max_level + 1):
            x = feats[level - 1]
            if level > backbone_max_level + 1:
                x = get_activation(activation, name=f"coarser_{level}_activation")(x)
            feats[level] = layers.conv(x, 3, f"coarser_{level}", strides=2)
        outputs = {
            str(level): layers.norm(feats[level], f"norm_{level}")
            for level in range(min_level, max_level + 1)
        }

        super().__init__(
            inputs=inputs,
            outputs=outputs,
            config={
                "input_specs": specs,
                "min_level": min_level,
                "max_level": max_level,
                "num_filters": num_filters,
                "fusion_type": fusion_type,
                "use_separable_conv": use_separable_conv,
                "use_keras_layer": use_keras_layer,
                "activation": activation,
                "use_sync_bn": use_sync_bn,
                "norm_momentum": norm_momentum,
                "norm_epsilon": norm_epsilon,
                "kernel_initializer": initializer,
                "kernel_regularizer": kernel_regularizer,
                "bias_regularizer": bias_regularizer,
            },
            **kwargs,
        )
        self.input_specs = specs
        self.min_level = min_level
        self.max_level = max_level
        self.num_filters = num_filters
        self.fusion_type = fusion_type
        self.use_separable_conv = use_separable_conv
        self.use_keras_layer = use_keras_layer
        self.activation = activation
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer


_DEFAULTS = FPNConfig()


def build_fpn(
    input_specs: Mapping[str, Any],
    norm_activation_config: NormActivation | None = None,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    min_level: int | None = None,
    max_level: int | None = None,
    *,
    num_filters: int = _DEFAULTS.num_filters,
    fusion_type: str = _DEFAULTS.fusion_type,
    use_separable_conv: bool = _DEFAULTS.use_separable_conv,
    use_keras_layer: bool = _DEFAULTS.use_keras_layer,
) -> FPN:
    """Builds an `FPN` (the `fpn` entry of `garden.decoders`).

    The keyword settings are the fields of `configs.decoders.FPN`; `min_level` and
    `max_level` come from the model config (RetinaNet's `min_level`, `max_level`).

    Args:
      input_specs: The backbone's `output_specs` (level -> shape).
      norm_activation_config: Activation and batch-normalization settings (defaults if
        None).
      l2_regularizer: Kernel regularizer of every convolution (weight decay), or None.
      min_level: The lowest output level; None for the backbone's lowest level.
      max_level: The highest output level; None for the backbone's highest level.
      num_filters, fusion_type, use_separable_conv, use_keras_layer: As in `FPN`.

    Raises:
      ConfigError: For settings `FPN` rejects.
    """
    norm_activation = norm_activation_config or NormActivation()
    specs = normalize_input_specs(input_specs, "FPN")
    levels = numeric_levels(specs, "FPN")
    return FPN(
        input_specs=specs,
        min_level=levels[0] if min_level is None else min_level,
        max_level=levels[-1] if max_level is None else max_level,
        num_filters=num_filters,
        fusion_type=fusion_type,
        use_separable_conv=use_separable_conv,
        use_keras_layer=use_keras_layer,
        activation=norm_activation.activation,
        use_sync_bn=norm_activation.use_sync_bn,
        norm_momentum=norm_activation.norm_momentum,
        norm_epsilon=norm_activation.norm_epsilon,
        kernel_regularizer=l2_regularizer,
    )
