"""EfficientNet B0-B7 backbones (Tan and Le, 2019).

`EfficientNet(model_id="b0" ... "b7")` scales the B0 network found by architecture search
(seven groups of MBConv blocks, `mobile_blocks.InvertedBottleneckBlock`) by the published
compound coefficients: widths by `width_scale` (`round_filters`, multiples of 8) and the
number of blocks per group by `depth_scale` (`round_repeats`, rounded up). `SCALING_MAP`
also lists each model's published input resolution and classifier dropout rate, for
configs to use; the backbone itself accepts any input size.

Outputs: levels `"2"` to `"5"` (strides 4 to 32), the last block of the groups that end
at those strides, and, as in Model Garden, the final 1x1 convolution (1280 channels times
`width_scale`, BN, activation) as `"pre_logits"` (`[batch, h/32, w/32, width]`): global
average pooling and one dense layer on it make the published classifier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs.backbones import EfficientNet as EfficientNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.backbone import Backbone
from garden_vision.modeling.layers import mobile_blocks, nn_layers

# EfficientNet-B0, one row per block group:
# (repeats, kernel_size, strides, expand_ratio, in_filters, out_filters, is_output).
_B0_BLOCK_GROUPS = (
    (1, 3, 1, 1, 32, 16, False),
    (2, 3, 2, 6, 16, 24, True),
    (2, 5, 2, 6, 24, 40, True),
    (3, 3, 2, 6, 40, 80, False),
    (3, 5, 1, 6, 80, 112, True),
    (4, 5, 2, 6, 112, 192, False),
    (1, 3, 1, 6, 192, 320, True),
)

#: Published scaling of each model: width and depth coefficients, input resolution and
#: the dropout rate of the classifier.
SCALING_MAP: dict[str, dict[str, float]] = {
    "b0": {"width_scale": 1.0, "depth_scale": 1.0, "resolution": 224, "dropout_rate": 0.2},
    "b1": {"width_scale": 1.0, "depth_scale": 1.1, "resolution": 240, "dropout_rate": 0.2},
    "b2": {"width_scale": 1.1, "depth_scale": 1.2, "resolution": 260, "dropout_rate": 0.3},
    "b3": {"width_scale": 1.2, "depth_scale": 1.4, "resolution": 300, "dropout_rate": 0.3},
    "b4": {"width_scale": 1.4, "depth_scale": 1.8, "resolution": 380, "dropout_rate": 0.4},
    "b5": {"width_scale": 1.6, "depth_scale": 2.2, "resolution": 456, "dropout_rate": 0.4},
    "b6": {"width_scale": 1.8, "depth_scale": 2.6, "resolution": 528, "dropout_rate": 0.5},
    "b7": {"width_scale": 2.0, "depth_scale": 3.1, "resolution": 600, "dropout_rate": 0.5},
}

#: The squeeze-and-excitation ratio of the published models.
DEFAULT_SE_RATIO = 0.25


def round_filters(filters: int, width_scale: float, divisor: int = 8) -> int:
    """Scales a width by `width_scale`, rounded to a multiple of `divisor` (>= 90 %)."""
    if not width_scale:
        return filters
    return nn_layers.make_divisible(filters * width_scale, divisor)


def round_repeats(repeats: int, depth_scale: float) -> int:
    """Scales a group's number of blocks by `depth_scale`, rounded up."""
    if not depth_scale:
        return repeats
    return int(math.ceil(depth_scale * repeats))


@keras.saving.register_keras_serializable(package="garden_vision")
class EfficientNet(Backbone):
    """EfficientNet B0-B7 as a multi-level backbone (see the module docstring).

    Args:
      model_id: `b0` ... `b7`, or `custom` to take `width_scale` and `depth_scale`
        from the arguments.
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`
        (height and width may be None), or that shape as a list.
      se_ratio: Squeeze-and-excitation ratio, relative to each block's input width
        (published: 0.25); 0 builds the blocks without SE.
      stochastic_depth_drop_rate: Drop rate of the last block's residual branch, in
        [0, 1); block `i` of `n` drops with `rate * (i + 1) / n`.
      kernel_initializer: Initializer of every kernel.
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      bias_regularizer: Regularizer of the biases, or None.
      activation: The activation's Model Garden name (published: `swish`).
      se_inner_activation: Activation of the SE reduction (Model Garden's default, `relu`).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving statistics.
      norm_epsilon: Epsilon of batch normalization.
      width_scale: With `model_id="custom"`, the width coefficient.
      depth_scale: With `model_id="custom"`, the depth coefficient.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: For an unsupported `model_id`, or an invalid `se_ratio` or
        `stochastic_depth_drop_rate`.
    """

    def __init__(
        self,
        model_id: str = "b0",
        input_specs: keras.layers.InputSpec | Sequence[int | None] | None = None,
        se_ratio: float = DEFAULT_SE_RATIO,
        stochastic_depth_drop_rate: float = 0.0,
        kernel_initializer: str | Any = "variance_scaling",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activation: str = "swish",
        se_inner_activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        width_scale: float | None = None,
        depth_scale: float | None = None,
        **kwargs: Any,
    ):
        if model_id == "custom":
            if not (width_scale and depth_scale and width_scale > 0 and depth_scale > 0):
                raise ConfigError(
                    "`efficientnet.model_id` = 'custom' needs positive `width_scale` and "
                    f"`depth_scale`, got {width_scale!r} and {depth_scale!r}"
                )
        elif model_id in SCALING_MAP:
            width_scale = SCALING_MAP[model_id]["width_scale"]
            depth_scale = SCALING_MAP[model_id]["depth_scale"]
        else:
            raise ConfigError(
                f"`efficientnet.model_id` = {model_id!r} is not supported: choose one of "
                + ", ".join(SCALING_MAP)
                + " (or 'custom' with `width_scale` and `depth_scale`)"
            )
        if not 0.0 <= se_ratio <= 1.0:
            raise ConfigError(f"`efficientnet.se_ratio` = {se_ratio!r}: must be in [0, 1]")
        if not 0.0 <= stochastic_depth_drop_rate < 1.0:
            raise ConfigError(
                "`efficientnet.stochastic_depth_drop_rate` = "
                f"{stochastic_depth_drop_rate!r}: must be in [0, 1)"
            )
        nn_layers.get_activation(activation)  # Validates the name.
        input_spec = self.input_spec_of(input_specs)
        kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        bias_regularizer = keras.regularizers.get(bias_regularizer)
        norm = {
            "use_sync_bn": use_sync_bn,
            "norm_momentum": norm_momentum,
            "norm_epsilon": norm_epsilon,
        }
        common = {
            "kernel_initializer": kernel_initializer,
            "kernel_regularizer": kernel_regularizer,
            "bias_regularizer": bias_regularizer,
            "activation": activation,
            **norm,
        }

        inputs = keras.Input(shape=tuple(input_spec.shape[1:]), name="inputs")
        x = mobile_blocks.Conv2DBNBlock(
            filters=round_filters(32, width_scale),
            kernel_size=3,
            strides=2,
            name="stem",
            **common,
        )(inputs)

        groups = [
            (round_repeats(repeats, depth_scale), kernel, strides, expand, out, is_output)
            for repeats, kernel, strides, expand, _, out, is_output in _B0_BLOCK_GROUPS
        ]
        num_blocks = sum(group[0] for group in groups)
        endpoints: dict[str, Any] = {}
        level, block_index = 2, 0
        for group_index, (repeats, kernel, strides, expand, out, is_output) in enumerate(groups):
            for repeat in range(repeats):
                block_index += 1
                x = mobile_blocks.InvertedBottleneckBlock(
                    in_filters=x.shape[-1],
                    out_filters=round_filters(out, width_scale),
                    expand_ratio=expand,
                    strides=strides if repeat == 0 else 1,
                    kernel_size=kernel,
                    se_ratio=se_ratio,
                    stochastic_depth_drop_rate=(
                        stochastic_depth_drop_rate * block_index / num_blocks
                    ),
                    se_inner_activation=se_inner_activation,
                    name=f"block_group_{group_index}_{repeat}",
                    **common,
                )(x)
            if is_output:
                endpoints[str(level)] = x
                level += 1

        endpoints["pre_logits"] = mobile_blocks.Conv2DBNBlock(
            filters=round_filters(1280, width_scale),
            kernel_size=1,
            strides=1,
            name="top",
            **common,
        )(x)

        super().__init__(
            inputs=inputs,
            outputs=endpoints,
            config={
                "model_id": model_id,
                "input_specs": input_spec,
                "se_ratio": se_ratio,
                "stochastic_depth_drop_rate": stochastic_depth_drop_rate,
                "kernel_initializer": kernel_initializer,
                "kernel_regularizer": kernel_regularizer,
                "bias_regularizer": bias_regularizer,
                "activation": activation,
                "se_inner_activation": se_inner_activation,
                "use_sync_bn": use_sync_bn,
                "norm_momentum": norm_momentum,
                "norm_epsilon": norm_epsilon,
                "width_scale": width_scale if model_id == "custom" else None,
                "depth_scale": depth_scale if model_id == "custom" else None,
            },
            **kwargs,
        )


_DEFAULTS = EfficientNetConfig()


def build_efficientnet(
    input_specs: keras.layers.InputSpec,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    model_id: str = _DEFAULTS.model_id,
    se_ratio: float = _DEFAULTS.se_ratio,
    stochastic_depth_drop_rate: float = _DEFAULTS.stochastic_depth_drop_rate,
    se_inner_activation: str = "relu",
) -> EfficientNet:
    """Builds an `EfficientNet` (the `efficientnet` entry of `garden.backbones`).

    The keyword settings are the fields of `configs.backbones.EfficientNet`.
    `norm_activation_config` sets the activation (the published models use `swish`) and
    the batch normalization; `l2_regularizer` the kernels' weight decay. A `se_ratio` of 0
    means the published ratio, 0.25.

    Raises:
      ConfigError: For an unsupported `model_id` or an invalid setting.
    """
    return EfficientNet(
        model_id=model_id,
        input_specs=input_specs,
        se_ratio=se_ratio or DEFAULT_SE_RATIO,
        stochastic_depth_drop_rate=stochastic_depth_drop_rate,
        activation=norm_activation_config.activation,
        se_inner_activation=se_inner_activation,
        use_sync_bn=norm_activation_config.use_sync_bn,
        norm_momentum=norm_activation_config.norm_momentum,
        norm_epsilon=norm_activation_config.norm_epsilon,
        kernel_regularizer=l2_regularizer,
    )


__all__ = [
    "DEFAULT_SE_RATIO",
    "SCALING_MAP",
    "EfficientNet",
    "build_efficientnet",
    "round_filters",
    "round_repeats",
]
