"""`SegmentationHead`: per-pixel class logits from a segmentation model's features.

Model Garden's `heads.SegmentationHead`, with its arguments, layers and computation. It
reads `(backbone_output, decoder_output)`, fuses features as `feature_fusion` says, runs a
few 3x3 convolutions and predicts one logit per class and pixel:

- None: the decoder's level `level`.
- `deeplabv3plus` (DeepLabV3+, Chen et al., 2018): the backbone endpoint `low_level` is
  projected by a 1x1 convolution to `low_level_num_filters` channels (+ batch
  normalization and activation); the decoder's level `level` is resized bilinearly to its
  size and concatenated before it (`deeplabv3plus_sum_to_merge` adds the two instead).
- `pyramid_fusion`: the sum of every decoder level resized bilinearly to level `level`.
- `panoptic_fpn_fusion` (Panoptic FPN, Kirillov et al., 2019): each decoder level from
  `decoder_min_level` to `decoder_max_level` goes through 3x3 convolutions with group
  normalization and the activation, each followed by 2x nearest upsampling, until it
  reaches level `level`; the results are summed.

`build_segmentation_head` is the `segmentation` entry of `garden.heads`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from garden_core.config import ConfigError
from garden_vision.configs.common import NormActivation
from garden_vision.configs.semantic_segmentation import SegmentationHead as SegmentationHeadConfig
from garden_vision.modeling.heads.head_settings import (
    NormActivationSettings,
    checked_ints,
    norm_activation_kwargs,
)
from garden_vision.modeling.layers.nn_layers import batch_norm
from garden_vision.modeling.layers.resampling import NearestUpsampling

#: `feature_fusion` values.
FEATURE_FUSIONS = (
    None,
    "deeplabv3plus",
    "deeplabv3plus_sum_to_merge",
    "pyramid_fusion",
    "panoptic_fpn_fusion",
)
DEEPLABV3PLUS_FUSIONS = ("deeplabv3plus", "deeplabv3plus_sum_to_merge")
#: `logit_activation` values.
LOGIT_ACTIVATIONS = (None, "sigmoid", "softmax")
#: Groups of Panoptic FPN fusion's group normalization (Model Garden's).
PANOPTIC_FPN_GROUPS = 32


def _head_init() -> keras.initializers.Initializer:
    """Model Garden's segmentation-head kernels: normal with standard deviation 0.01."""
    return keras.initializers.RandomNormal(stddev=0.01)


def _level_number(owner: str, name: str, value: Any) -> int:
    """`value` (an int or a digit string) as an int level; a `ConfigError` otherwise."""
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    ):
        raise ConfigError(f"{owner} `{name}` is {value!r}: must be a level (an int)")
    return int(value)


def _endpoints(keys: Any) -> list[str]:
    """Endpoint names, levels first in numeric order, for messages."""
    return sorted((str(key) for key in keys), key=lambda key: (not key.isdigit(), len(key), key))


def _select(features: Any, key: Any, source: str, field: str) -> Any:
    """`features[str(key)]` of a dict of features (or shapes); a single one as it is."""
    if not isinstance(features, Mapping):
        return features
    if str(key) not in features:
        raise ValueError(
            f"SegmentationHead `{field}` is {key!r}, but the {source} gives {_endpoints(features)}"
        )
    return features[str(key)]


def _is_pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and not _is_shape(value)


def _is_shape(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(
        side is None or isinstance(side, int) for side in value
    )


@keras.saving.register_keras_serializable(package="garden_vision")
class SegmentationHead(NormActivationSettings, keras.layers.Layer):
    """Fuses a segmentation model's features and predicts per-pixel class logits.

    Called on `(backbone_output, decoder_output)`, each a dict of features keyed by
    endpoint or a single tensor, it fuses them (see the module docstring), applies
    `num_convs` x (3x3 convolution of `num_filters`, no bias, batch normalization,
    activation) (with `use_depthwise_convolution`, each is a 3x3 depthwise convolution +
    batch normalization + activation, then a 1x1 convolution + batch normalization +
    activation), upsamples by `upsample_factor` (nearest neighbour) and predicts
    `num_classes` logits per pixel with a `prediction_kernel_size` convolution (with bias).
    The output is `[batch, H_l * upsample_factor, W_l * upsample_factor, num_classes]`
    float32 logits (`logit_activation` applied if set), where `H_l, W_l` is the size of the
    fused features (the `low_level` endpoint's with DeepLabV3+ fusion). Kernels start
    normal with standard deviation 0.01 and biases at zero, as in Model Garden.

    Example:

    ```python
    head = SegmentationHead(num_classes=21, level=4, feature_fusion="deeplabv3plus",
                            low_level=2)
    logits = head((backbone_features, {"4": aspp_features}))  # [batch, H/4, W/4, 21]
    ```

    Args:
      num_classes: Classes predicted per pixel (background included).
      level: The decoder level it reads (the target level of pyramid and Panoptic FPN
        fusion); an int, or an endpoint name.
      num_convs: Convolutions before the prediction (>= 0).
      num_filters: Their width (and that of Panoptic FPN fusion).
      use_depthwise_convolution: Depthwise-separable convolutions (see above).
      prediction_kernel_size: Kernel side of the logit convolution.
      upsample_factor: Nearest upsampling of the features before the prediction (>= 1).
      feature_fusion: None, `deeplabv3plus`, `deeplabv3plus_sum_to_merge`,
        `pyramid_fusion` or `panoptic_fpn_fusion`.
      decoder_min_level: The lowest decoder level Panoptic FPN fusion reads.
      decoder_max_level: The highest decoder level Panoptic FPN fusion reads.
      low_level: The backbone endpoint DeepLabV3+ fusion reads: a level, or a name such as
        MobileNet's `"2/depthwise"`.
      low_level_num_filters: Channels it is projected to.
      num_decoder_filters: Channels of the decoder levels Panoptic FPN fusion reads.
      activation: The activation's Model Garden name (`NormActivation.activation`).
      logit_activation: None, `sigmoid` or `softmax`, applied to the logits.
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      kernel_regularizer: Regularizer of the kernels (weight decay), or None.
      bias_regularizer: Regularizer of the biases, or None.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).

    Raises:
      ConfigError: For a setting out of range or an unknown fusion or logit activation.
    """

    def __init__(
        self,
        num_classes: int,
        level: int | str,
        num_convs: int = 2,
        num_filters: int = 256,
        use_depthwise_convolution: bool = False,
        prediction_kernel_size: int = 1,
        upsample_factor: int = 1,
        feature_fusion: str | None = None,
        decoder_min_level: int | str | None = None,
        decoder_max_level: int | str | None = None,
        low_level: int | str = 2,
        low_level_num_filters: int = 48,
        num_decoder_filters: int = 256,
        activation: str = "relu",
        logit_activation: str | None = None,
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        # === Settings ===
        owner = "SegmentationHead"
        (
            self.num_classes,
            self.num_convs,
            self.num_filters,
            self.prediction_kernel_size,
            self.upsample_factor,
            self.low_level_num_filters,
            self.num_decoder_filters,
        ) = checked_ints(
            owner,
            (
                ("num_classes", num_classes, 1),
                ("num_convs", num_convs, 0),
                ("num_filters", num_filters, 1),
                ("prediction_kernel_size", prediction_kernel_size, 1),
                ("upsample_factor", upsample_factor, 1),
                ("low_level_num_filters", low_level_num_filters, 1),
                ("num_decoder_filters", num_decoder_filters, 1),
            ),
        )
        if feature_fusion not in FEATURE_FUSIONS:
            raise ConfigError(
                f"{owner} `feature_fusion` is {feature_fusion!r}: expected None or one of "
                + ", ".join(str(fusion) for fusion in FEATURE_FUSIONS[1:])
            )
        if logit_activation not in LOGIT_ACTIVATIONS:
            raise ConfigError(
                f"{owner} `logit_activation` is {logit_activation!r}: expected None, sigmoid "
                "or softmax"
            )
        self.level = level
        self.use_depthwise_convolution = bool(use_depthwise_convolution)
        self.feature_fusion = feature_fusion
        self.decoder_min_level = decoder_min_level
        self.decoder_max_level = decoder_max_level
        self.low_level = low_level
        self.logit_activation = logit_activation
        self.set_norm_activation(
            activation,
            use_sync_bn,
            norm_momentum,
            norm_epsilon,
            kernel_regularizer,
            bias_regularizer,
        )

        # === Feature fusion ===
        if feature_fusion in DEEPLABV3PLUS_FUSIONS:
            self.dlv3p_conv = keras.layers.Conv2D(
                self.low_level_num_filters,
                1,
                padding="same",
                use_bias=False,
                kernel_initializer=_head_init(),
                kernel_regularizer=self.kernel_regularizer,
                dtype=self.dtype_policy,
                name="segmentation_head_deeplabv3p_fusion_conv",
            )
            self.dlv3p_norm = self._norm("segmentation_head_deeplabv3p_fusion_norm")
        elif feature_fusion == "pyramid_fusion":
            self._target_level = _level_number(owner, "level", level)
        elif feature_fusion == "panoptic_fpn_fusion":
            self._make_panoptic_fpn_fusion(owner)

        # === Convolutions (attributes of their own, so that checkpoints see them) ===
        self._conv_plan: list[tuple[str, str]] = []
        for index in range(self.num_convs):
            if self.use_depthwise_convolution:
                conv_name = f"segmentation_head_depthwise_conv_{index}"
                setattr(
                    self,
                    conv_name,
                    keras.layers.DepthwiseConv2D(
                        3,
                        padding="same",
                        use_bias=False,
                        depthwise_initializer=_head_init(),
                        depthwise_regularizer=self.kernel_regularizer,
                        dtype=self.dtype_policy,
                        name=conv_name,
                    ),
                )
                norm_name = f"segmentation_head_depthwise_norm_{index}"
                setattr(self, norm_name, self._norm(norm_name))
                self._conv_plan.append((conv_name, norm_name))
            conv_name = f"segmentation_head_conv_{index}"
            setattr(
                self,
                conv_name,
                keras.layers.Conv2D(
                    self.num_filters,
                    1 if self.use_depthwise_convolution else 3,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=_head_init(),
                    kernel_regularizer=self.kernel_regularizer,
                    dtype=self.dtype_policy,
                    name=conv_name,
                ),
            )
            norm_name = f"segmentation_head_norm_{index}"
            setattr(self, norm_name, self._norm(norm_name))
            self._conv_plan.append((conv_name, norm_name))

        # === Prediction ===
        self.upsample = (
            NearestUpsampling(self.upsample_factor, dtype=self.dtype_policy, name="upsample")
            if self.upsample_factor > 1
            else None
        )
        self.classifier = keras.layers.Conv2D(
            self.num_classes,
            self.prediction_kernel_size,
            padding="same",
            kernel_initializer=_head_init(),
            bias_initializer="zeros",
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            dtype=self.dtype_policy,
            name="segmentation_output",
        )

    def _norm(self, name: str) -> keras.layers.BatchNormalization:
        return batch_norm(
            self.norm_momentum,
            self.norm_epsilon,
            self.use_sync_bn,
            dtype=self.dtype_policy,
            name=name,
        )

    def _make_panoptic_fpn_fusion(self, owner: str) -> None:
        """Panoptic FPN's upsampling branches: 3x3 convolutions (with bias) + group norm."""
        target = _level_number(owner, "level", self.level)
        if self.decoder_min_level is None or self.decoder_max_level is None:
            raise ConfigError(
                f"{owner} with panoptic_fpn_fusion needs `decoder_min_level` and "
                f"`decoder_max_level`, got {self.decoder_min_level!r} and "
                f"{self.decoder_max_level!r}"
            )
        low = _level_number(owner, "decoder_min_level", self.decoder_min_level)
        high = _level_number(owner, "decoder_max_level", self.decoder_max_level)
        if not target <= low <= high:
            raise ConfigError(
                f"{owner} panoptic_fpn_fusion upsamples decoder levels `decoder_min_level` "
                f"({low}) to `decoder_max_level` ({high}) to `level` ({target}): it needs "
                "level <= decoder_min_level <= decoder_max_level"
            )
        if self.num_filters % PANOPTIC_FPN_GROUPS:
            raise ConfigError(
                f"{owner} `num_filters` is {self.num_filters}: panoptic_fpn_fusion's group "
                f"normalization needs a multiple of {PANOPTIC_FPN_GROUPS}"
            )
        self._target_level = target
        self._panoptic_plan: list[tuple[int, list[tuple[str, str]]]] = []
        for level in range(low, high + 1):
            steps = []
            for index in range(max(1, level - target)):
                conv_name = f"panoptic_fpn_fusion_l{level}_conv_{index}"
                norm_name = f"panoptic_fpn_fusion_l{level}_norm_{index}"
                setattr(
                    self,
                    conv_name,
                    keras.layers.Conv2D(
                        self.num_filters,
                        3,
                        padding="same",
                        kernel_initializer=keras.initializers.VarianceScaling(),
                        kernel_regularizer=self.kernel_regularizer,
                        bias_regularizer=self.bias_regularizer,
                        dtype=self.dtype_policy,
                        name=conv_name,
                    ),
                )
                setattr(
                    self,
                    norm_name,
                    keras.layers.GroupNormalization(
                        groups=PANOPTIC_FPN_GROUPS, axis=-1, dtype=self.dtype_policy, name=norm_name
                    ),
                )
                steps.append((conv_name, norm_name))
            self._panoptic_plan.append((level, steps))
        self.upsample_2x = NearestUpsampling(2, dtype=self.dtype_policy, name="fusion_upsample")

    # --- Building --------------------------------------------------------------------------

    def build(self, input_shape: Any) -> None:
        if not _is_pair(input_shape):
            raise ValueError(
                "SegmentationHead is called on (backbone_output, decoder_output), got shapes "
                f"{input_shape!r}"
            )
        backbone_shape, decoder_shape = input_shape
        shape = self._build_fusion(backbone_shape, decoder_shape)
        for conv_name, norm_name in self._conv_plan:
            conv = getattr(self, conv_name)
            conv.build(shape)
            shape = tuple(conv.compute_output_shape(shape))
            getattr(self, norm_name).build(shape)
        if self.upsample is not None:
            shape = tuple(self.upsample.compute_output_shape(shape))
        self.classifier.build(shape)

    def _build_fusion(self, backbone_shape: Any, decoder_shape: Any) -> tuple[int | None, ...]:
        """Builds the fusion layers; returns the shape of the fused features."""
        fusion = self.feature_fusion
        if fusion in DEEPLABV3PLUS_FUSIONS:
            high = tuple(_select(decoder_shape, self.level, "decoder", "level"))
            low = tuple(_select(backbone_shape, self.low_level, "backbone", "low_level"))
            self.dlv3p_conv.build(low)
            low = tuple(self.dlv3p_conv.compute_output_shape(low))
            self.dlv3p_norm.build(low)
            if fusion == "deeplabv3plus":
                return (*low[:3], high[-1] + low[-1])
            if high[-1] != low[-1]:
                raise ConfigError(
                    f"SegmentationHead deeplabv3plus_sum_to_merge adds the decoder's {high[-1]} "
                    f"channels to `low_level_num_filters` = {low[-1]}: they must be equal"
                )
            return low
        if fusion == "pyramid_fusion":
            levels = self._pyramid_levels(decoder_shape)
            target = str(self._target_level)
            if target in decoder_shape:
                return tuple(decoder_shape[target])
            shape = tuple(decoder_shape[str(levels[0])])
            return (shape[0], None, None, shape[-1])
        if fusion == "panoptic_fpn_fusion":
            if not isinstance(decoder_shape, Mapping):
                raise ValueError("panoptic_fpn_fusion reads a dict of decoder levels")
            target_shape = None
            for level, steps in self._panoptic_plan:
                shape = tuple(_select(decoder_shape, level, "decoder", "decoder_min_level"))
                if shape[-1] != self.num_decoder_filters:
                    raise ConfigError(
                        f"SegmentationHead `num_decoder_filters` is {self.num_decoder_filters} "
                        f"but decoder level {level} has {shape[-1]} channels"
                    )
                for conv_name, norm_name in steps:
                    conv = getattr(self, conv_name)
                    conv.build(shape)
                    shape = tuple(conv.compute_output_shape(shape))
                    getattr(self, norm_name).build(shape)
                    if level != self._target_level:
                        shape = tuple(self.upsample_2x.compute_output_shape(shape))
                target_shape = target_shape or shape
            return target_shape
        return tuple(_select(decoder_shape, self.level, "decoder", "level"))

    @staticmethod
    def _pyramid_levels(decoder_output: Any) -> list[int]:
        if not isinstance(decoder_output, Mapping):
            raise ValueError("pyramid_fusion reads a dict of decoder levels")
        levels = sorted(int(key) for key in decoder_output if str(key).isdigit())
        if not levels:
            raise ValueError(
                f"pyramid_fusion: the decoder gives no levels ({list(decoder_output)})"
            )
        return levels

    # --- Calling ---------------------------------------------------------------------------

    def call(self, inputs: Sequence[Any], training: bool | None = None) -> Any:
        """Predicts per-pixel class logits.

        Args:
          inputs: `(backbone_output, decoder_output)`: dicts of `[batch, H, W, C]` features
            keyed by endpoint, or single tensors.
          training: Batch normalization uses batch statistics (and updates its moving
            ones) when True.

        Returns:
          `[batch, height, width, num_classes]` float32 logits.
        """
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "SegmentationHead is called on (backbone_output, decoder_output), got "
                f"{type(inputs).__name__}"
            )
        backbone_output, decoder_output = inputs
        x = self._fuse(backbone_output, decoder_output, training)
        for conv_name, norm_name in self._conv_plan:
            x = getattr(self, conv_name)(x)
            x = self._activation(getattr(self, norm_name)(x, training=training))
        if self.upsample is not None:
            x = self.upsample(x)
        logits = ops.cast(self.classifier(x), "float32")
        if self.logit_activation == "sigmoid":
            return ops.sigmoid(logits)
        if self.logit_activation == "softmax":
            return ops.softmax(logits, axis=-1)
        return logits

    def _fuse(self, backbone_output: Any, decoder_output: Any, training: bool | None) -> Any:
        fusion = self.feature_fusion
        if fusion in DEEPLABV3PLUS_FUSIONS:
            x = _select(decoder_output, self.level, "decoder", "level")
            y = _select(backbone_output, self.low_level, "backbone", "low_level")
            y = self.dlv3p_conv(y)
            y = self._activation(self.dlv3p_norm(y, training=training))
            x = tf.image.resize(x, tf.shape(y)[1:3], method="bilinear")
            x = ops.cast(x, y.dtype)
            if fusion == "deeplabv3plus":
                return ops.concatenate([x, y], axis=-1)
            return x + y
        if fusion == "pyramid_fusion":
            return self._pyramid_fusion(decoder_output)
        if fusion == "panoptic_fpn_fusion":
            fused = []
            for level, steps in self._panoptic_plan:
                x = decoder_output[str(level)]
                for conv_name, norm_name in steps:
                    x = getattr(self, conv_name)(x)
                    x = self._activation(getattr(self, norm_name)(x))
                    if level != self._target_level:
                        x = self.upsample_2x(x)
                fused.append(x)
            return tf.add_n(fused)
        return _select(decoder_output, self.level, "decoder", "level")

    def _pyramid_fusion(self, decoder_output: Mapping[str, Any]) -> Any:
        """The sum of every decoder level resized (bilinearly) to the target level."""
        target = self._target_level
        levels = self._pyramid_levels(decoder_output)
        if str(target) in decoder_output:
            target_size = tf.shape(decoder_output[str(target)])[1:3]
        else:
            size = tf.shape(decoder_output[str(levels[0])])[1:3]
            scale = 2 ** abs(levels[0] - target)
            target_size = size * scale if levels[0] > target else size // scale
        fused = []
        for level in levels:
            features = decoder_output[str(level)]
            if level != target:
                resized = tf.image.resize(
                    tf.cast(features, tf.float32), target_size, method="bilinear"
                )
                features = ops.cast(resized, features.dtype)
            fused.append(features)
        return tf.add_n(fused)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "level": self.level,
            "num_convs": self.num_convs,
            "num_filters": self.num_filters,
            "use_depthwise_convolution": self.use_depthwise_convolution,
            "prediction_kernel_size": self.prediction_kernel_size,
            "upsample_factor": self.upsample_factor,
            "feature_fusion": self.feature_fusion,
            "decoder_min_level": self.decoder_min_level,
            "decoder_max_level": self.decoder_max_level,
            "low_level": self.low_level,
            "low_level_num_filters": self.low_level_num_filters,
            "num_decoder_filters": self.num_decoder_filters,
            "logit_activation": self.logit_activation,
            **self.norm_activation_config(),
        }


_DEFAULTS = SegmentationHeadConfig()


def _decoder_channels(input_specs: Any, level: Any) -> int | None:
    """The channels of decoder level `level` in a builder's `input_specs`, if known."""
    if not _is_pair(input_specs) or level is None:
        return None
    decoder_specs = input_specs[1]
    if not isinstance(decoder_specs, Mapping) or str(level) not in decoder_specs:
        return None
    shape = tuple(getattr(decoder_specs[str(level)], "shape", decoder_specs[str(level)]))
    return shape[-1] if shape else None


def build_segmentation_head(
    input_specs: Any,
    num_classes: int,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    level: int | str = _DEFAULTS.level,
    num_convs: int = _DEFAULTS.num_convs,
    num_filters: int = _DEFAULTS.num_filters,
    use_depthwise_convolution: bool = _DEFAULTS.use_depthwise_convolution,
    prediction_kernel_size: int = _DEFAULTS.prediction_kernel_size,
    upsample_factor: int = _DEFAULTS.upsample_factor,
    logit_activation: str | None = _DEFAULTS.logit_activation,
    feature_fusion: str | None = _DEFAULTS.feature_fusion,
    low_level: int | str = _DEFAULTS.low_level,
    low_level_num_filters: int = _DEFAULTS.low_level_num_filters,
    decoder_min_level: int | str | None = _DEFAULTS.decoder_min_level,
    decoder_max_level: int | str | None = _DEFAULTS.decoder_max_level,
) -> SegmentationHead:
    """Builds a `SegmentationHead` (the `segmentation` entry of `garden.heads`).

    The settings are the fields of `configs.semantic_segmentation.SegmentationHead`, with
    its defaults; the activation and batch normalization come from
    `norm_activation_config`, as in Model Garden's segmentation factory. With
    `panoptic_fpn_fusion`, `num_decoder_filters` is the decoder's width at
    `decoder_min_level`.

    Args:
      input_specs: The shapes of what the head reads: the pair `(backbone output_specs,
        decoder output_specs)` (each endpoint -> shape); only used to find the decoder's
        width for Panoptic FPN fusion.
      num_classes: Classes predicted per pixel.
      norm_activation_config: The activation and batch normalization.
      l2_regularizer: Kernel regularizer (weight decay), or None.
      level, num_convs, num_filters, use_depthwise_convolution, prediction_kernel_size,
        upsample_factor, logit_activation, feature_fusion, low_level,
        low_level_num_filters, decoder_min_level, decoder_max_level: As in
        `SegmentationHead`.

    Raises:
      ConfigError: For settings `SegmentationHead` rejects.
    """
    extra = {}
    if feature_fusion == "panoptic_fpn_fusion":
        channels = _decoder_channels(input_specs, decoder_min_level)
        if channels is not None:
            extra["num_decoder_filters"] = channels
    return SegmentationHead(
        num_classes=num_classes,
        level=level,
        num_convs=num_convs,
        num_filters=num_filters,
        use_depthwise_convolution=use_depthwise_convolution,
        prediction_kernel_size=prediction_kernel_size,
        upsample_factor=upsample_factor,
        feature_fusion=feature_fusion,
        decoder_min_level=decoder_min_level,
        decoder_max_level=decoder_max_level,
        low_level=low_level,
        low_level_num_filters=low_level_num_filters,
        logit_activation=logit_activation,
        **norm_activation_kwargs(norm_activation_config, l2_regularizer),
        **extra,
    )
