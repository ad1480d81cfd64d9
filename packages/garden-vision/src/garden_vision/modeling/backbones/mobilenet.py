"""MobileNet V2 and V3 backbones (Sandler et al., 2018; Howard et al., 2019).

`MobileNet(model_id=...)` builds `MobileNetV2`, `MobileNetV3Large` or `MobileNetV3Small`
from Model Garden's block specs: the layer widths, kernel sizes, strides, activations
(`relu6` in V2; `relu` and `hard_swish` in V3) and squeeze-and-excitation placement (V3,
gated by `hard_sigmoid`) of `official/vision/modeling/backbones/mobilenet.py`, scaled by
`filter_size_scale`.

Outputs: levels `"2"` to `"5"` (strides 4 to 32) are the last block at each stride that
Model Garden marks as an endpoint. As in Model Garden, the network also builds its final
layers, those a classifier puts between the last block and the logits (V2: a 1x1
convolution to 1280 channels; V3: a 1x1 convolution, global average pooling and a 1x1
convolution with bias to 1280 or 1024 channels); they are reported as `"pre_logits"`
(`[batch, h/32, w/32, 1280]` in V2, `[batch, 1, 1, width]` in V3). Global average pooling
and one dense layer on `"pre_logits"` then make the published classifier.

With `output_stride`, strides past it turn into dilation (atrous convolution) and the
levels past it fold into level `log2(output_stride)`, which then holds the last block's
features, as in Model Garden (DeepLab reads level 4 of an output-stride-16 MobileNetV2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs.backbones import MobileNet as MobileNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.backbone import Backbone
from garden_vision.modeling.layers import mobile_blocks, nn_layers


@dataclasses.dataclass
class BlockSpec:
    """One layer of a MobileNet spec.

    Attributes:
      block_fn: `convbn` (convolution, BN, activation), `invertedbottleneck` or `gpooling`
        (global average pooling that keeps the spatial dimensions).
      kernel_size: Side of the (depthwise) kernel.
      strides: Stride of the layer.
      filters: Output channels before `filter_size_scale`.
      activation: The activation's Model Garden name.
      se_ratio: Squeeze-and-excitation ratio, or None.
      expand_ratio: Expansion of an inverted bottleneck.
      use_normalization: Batch normalization after a `convbn` convolution.
      use_bias: A bias in a `convbn` convolution.
      is_output: Whether the layer's output is a level endpoint.
    """

    block_fn: str
    kernel_size: int = 3
    strides: int = 1
    filters: float = 0
    activation: str = "relu6"
    se_ratio: float | None = None
    expand_ratio: float | None = None
    use_normalization: bool = True
    use_bias: bool = False
    is_output: bool = False


def _v2_specs() -> list[BlockSpec]:
    ib = "invertedbottleneck"
    rows = [  # (block_fn, kernel_size, strides, filters, expand_ratio, is_output)
        ("convbn", 3, 2, 32, None, False),
        (ib, 3, 1, 16, 1.0, False),
        (ib, 3, 2, 24, 6.0, False),
        (ib, 3, 1, 24, 6.0, True),
        (ib, 3, 2, 32, 6.0, False),
        (ib, 3, 1, 32, 6.0, False),
        (ib, 3, 1, 32, 6.0, True),
        (ib, 3, 2, 64, 6.0, False),
        (ib, 3, 1, 64, 6.0, False),
        (ib, 3, 1, 64, 6.0, False),
        (ib, 3, 1, 64, 6.0, False),
        (ib, 3, 1, 96, 6.0, False),
        (ib, 3, 1, 96, 6.0, False),
        (ib, 3, 1, 96, 6.0, True),
        (ib, 3, 2, 160, 6.0, False),
        (ib, 3, 1, 160, 6.0, False),
        (ib, 3, 1, 160, 6.0, False),
        (ib, 3, 1, 320, 6.0, True),
        ("convbn", 1, 1, 1280, None, False),
    ]
    return [
        BlockSpec(
            block_fn=fn,
            kernel_size=k,
            strides=s,
            filters=f,
            activation="relu6",
            expand_ratio=e,
            is_output=out,
        )
        for fn, k, s, f, e, out in rows
    ]


def _v3_specs(rows: Sequence[tuple[Any, ...]]) -> list[BlockSpec]:
    """Specs from `(block_fn, kernel, strides, filters, activation, se, expand, output)`."""
    specs = []
    for fn, k, s, f, act, se, e, out in rows:
        specs.append(
            BlockSpec(
                block_fn=fn,
                kernel_size=k,
                strides=s,
                filters=f,
                activation=act,
                se_ratio=se,
                expand_ratio=e,
                is_output=out,
            )
        )
    return specs


def _v3_large_specs() -> list[BlockSpec]:
    ib, hs = "invertedbottleneck", "hard_swish"
    specs = _v3_specs(
        [
            ("convbn", 3, 2, 16, hs, None, None, False),
            (ib, 3, 1, 16, "relu", None, 1.0, False),
            (ib, 3, 2, 24, "relu", None, 4.0, False),
            (ib, 3, 1, 24, "relu", None, 3.0, True),
            (ib, 5, 2, 40, "relu", 0.25, 3.0, False),
            (ib, 5, 1, 40, "relu", 0.25, 3.0, False),
            (ib, 5, 1, 40, "relu", 0.25, 3.0, True),
            (ib, 3, 2, 80, hs, None, 6.0, False),
            (ib, 3, 1, 80, hs, None, 2.5, False),
            (ib, 3, 1, 80, hs, None, 2.3, False),
            (ib, 3, 1, 80, hs, None, 2.3, False),
            (ib, 3, 1, 112, hs, 0.25, 6.0, False),
            (ib, 3, 1, 112, hs, 0.25, 6.0, True),
            (ib, 5, 2, 160, hs, 0.25, 6.0, False),
            (ib, 5, 1, 160, hs, 0.25, 6.0, False),
            (ib, 5, 1, 160, hs, 0.25, 6.0, True),
            ("convbn", 1, 1, 960, hs, None, None, False),
        ]
    )
    return specs + _v3_top(1280)


def _v3_small_specs() -> list[BlockSpec]:
    ib, hs = "invertedbottleneck", "hard_swish"
    specs = _v3_specs(
        [
            ("convbn", 3, 2, 16, hs, None, None, False),
            (ib, 3, 2, 16, "relu", 0.25, 1.0, True),
            (ib, 3, 2, 24, "relu", None, 72.0 / 16, False),
            (ib, 3, 1, 24, "relu", None, 88.0 / 24, True),
            (ib, 5, 2, 40, hs, 0.25, 4.0, False),
            (ib, 5, 1, 40, hs, 0.25, 6.0, False),
            (ib, 5, 1, 40, hs, 0.25, 6.0, False),
            (ib, 5, 1, 48, hs, 0.25, 3.0, False),
            (ib, 5, 1, 48, hs, 0.25, 3.0, True),
            (ib, 5, 2, 96, hs, 0.25, 6.0, False),
            (ib, 5, 1, 96, hs, 0.25, 6.0, False),
            (ib, 5, 1, 96, hs, 0.25, 6.0, True),
            ("convbn", 1, 1, 576, hs, None, None, False),
        ]
    )
    return specs + _v3_top(1024)


def _v3_top(filters: int) -> list[BlockSpec]:
    """V3's classifier top: global pooling, then a 1x1 convolution with bias and no BN."""
    return [
        BlockSpec(block_fn="gpooling", strides=1),
        BlockSpec(
            block_fn="convbn",
            kernel_size=1,
            strides=1,
            filters=filters,
            activation="hard_swish",
            use_normalization=False,
            use_bias=True,
        ),
    ]


_SPECS = {
    "MobileNetV2": _v2_specs,
    "MobileNetV3Large": _v3_large_specs,
    "MobileNetV3Small": _v3_small_specs,
}

#: The `model_id`s `MobileNet` builds.
SUPPORTED_MODEL_IDS: tuple[str, ...] = tuple(_SPECS)

# Model Garden ids garden-vision does not build (yet), named in the error message.
_OTHER_MODEL_GARDEN_IDS = (
    "MobileNetV1",
    "MobileNetV3EdgeTPU",
    "MobileNetMultiMAX",
    "MobileNetMultiAVG",
    "MobileNetMultiAVGSeg",
    "MobileNetMultiMAXSeg",
    "MobileNetV3SmallReducedFilters",
    "MobileNetV4ConvSmall",
    "MobileNetV4ConvMedium",
    "MobileNetV4ConvLarge",
    "MobileNetV4HybridMedium",
    "MobileNetV4HybridLarge",
    "MobileNetV4ConvMediumSeg",
)


def decode_block_specs(
    model_id: str,
    filter_size_scale: float = 1.0,
    divisible_by: int = 8,
    min_depth: int = 8,
    finegrain_classification_mode: bool = True,
) -> list[BlockSpec]:
    """Returns the specs of `model_id` with their widths scaled by `filter_size_scale`.

    Every width becomes `make_divisible(filters * filter_size_scale, divisible_by,
    min_depth)`. With `finegrain_classification_mode` and a scale below 1, the last layer
    keeps its full width (MobileNetV2's paper: the 1280-wide layer is not narrowed).

    Raises:
      ConfigError: For an unsupported `model_id`.
    """
    _check_model_id(model_id)
    specs = _SPECS[model_id]()
    if finegrain_classification_mode and filter_size_scale < 1.0:
        specs[-1].filters /= filter_size_scale
    for spec in specs:
        if spec.filters:
            spec.filters = nn_layers.make_divisible(
                spec.filters * filter_size_scale, divisible_by, min_value=min_depth
            )
    return specs


def _check_model_id(model_id: str) -> None:
    if model_id in _SPECS:
        return
    unsupported = (
        " (a Model Garden MobileNet that garden-vision does not build)"
        if model_id in _OTHER_MODEL_GARDEN_IDS
        else ""
    )
    raise ConfigError(
        f"`mobilenet.model_id` = {model_id!r} is not supported{unsupported}: choose one of "
        + ", ".join(SUPPORTED_MODEL_IDS)
    )


@keras.saving.register_keras_serializable(package="garden_vision")
class MobileNet(Backbone):
    """MobileNet V2 or V3 as a multi-level backbone (see the module docstring).

    Args:
      model_id: `MobileNetV2`, `MobileNetV3Large` or `MobileNetV3Small`.
      filter_size_scale: The width multiplier (alpha) of every layer, > 0.
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`
        (height and width may be None), or that shape as a list.
      norm_momentum: Momentum of the batch-normalization moving statistics.
      norm_epsilon: Epsilon of batch normalization.
      kernel_initializer: Initializer of every kernel.
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      bias_regularizer: Regularizer of the biases, or None.
      output_stride: None, or the largest stride to reach (1 or a multiple of 2, e.g. 8 or
        16): later strides become dilation.
      min_depth: The fewest channels any layer gets when `filter_size_scale` < 1.
      divisible_by: Every width is rounded to a multiple of this.
      stochastic_depth_drop_rate: Drop rate of the residual branches, in [0, 1).
      flat_stochastic_depth_drop_rate: The same rate for every block (True), or
        `rate * (block index + 1) / number of layers` (False).
      regularize_depthwise: Apply `kernel_regularizer` to the depthwise kernels too.
      use_sync_bn: Synchronize batch statistics across replicas.
      finegrain_classification_mode: Keep the last layer's width when
        `filter_size_scale` < 1.
      output_intermediate_endpoints: Also report each endpoint block's expanded
        depthwise features as `"<level>/depthwise"`.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: For an unsupported `model_id` or an invalid `filter_size_scale`,
        `output_stride` or `stochastic_depth_drop_rate`.
    """

    def __init__(
        self,
        model_id: str = "MobileNetV2",
        filter_size_scale: float = 1.0,
        input_specs: keras.layers.InputSpec | Sequence[int | None] | None = None,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_initializer: str | Any = "variance_scaling",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        output_stride: int | None = None,
        min_depth: int = 8,
        divisible_by: int = 8,
        stochastic_depth_drop_rate: float = 0.0,
        flat_stochastic_depth_drop_rate: bool = True,
        regularize_depthwise: bool = False,
        use_sync_bn: bool = False,
        finegrain_classification_mode: bool = True,
        output_intermediate_endpoints: bool = False,
        **kwargs: Any,
    ):
        _check_model_id(model_id)
        if not filter_size_scale > 0:
            raise ConfigError(f"`mobilenet.filter_size_scale` = {filter_size_scale!r}: must be > 0")
        if output_stride is not None and (
            output_stride < 1 or (output_stride > 1 and output_stride % 2)
        ):
            raise ConfigError(
                f"`mobilenet.output_stride` = {output_stride!r}: must be None, 1 or a "
                "multiple of 2 (e.g. 8, 16, 32)"
            )
        if not 0.0 <= stochastic_depth_drop_rate < 1.0:
            raise ConfigError(
                f"`mobilenet.stochastic_depth_drop_rate` = {stochastic_depth_drop_rate!r}: "
                "must be in [0, 1)"
            )
        input_spec = self.input_spec_of(input_specs)
        kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        bias_regularizer = keras.regularizers.get(bias_regularizer)

        specs = decode_block_specs(
            model_id,
            filter_size_scale=filter_size_scale,
            divisible_by=divisible_by,
            min_depth=min_depth,
            finegrain_classification_mode=finegrain_classification_mode,
        )
        inputs = keras.Input(shape=tuple(input_spec.shape[1:]), name="inputs")
        common = {
            "kernel_initializer": kernel_initializer,
            "kernel_regularizer": kernel_regularizer,
            "bias_regularizer": bias_regularizer,
            "use_sync_bn": use_sync_bn,
            "norm_momentum": norm_momentum,
            "norm_epsilon": norm_epsilon,
        }

        # `current_stride` is the stride reached so far; once it equals `output_stride`,
        # later strides multiply the dilation `rate` instead.
        current_stride, rate, level = 1, 1, 2
        endpoints: dict[str, Any] = {}
        x = inputs
        for index, spec in enumerate(specs):
            name = f"block_group_{spec.block_fn}_{index}"
            strides = spec.strides or 1
            if output_stride is not None and current_stride == output_stride:
                layer_stride, layer_rate = 1, rate
                rate *= strides
            else:
                layer_stride, layer_rate = strides, 1
                current_stride *= strides
            if flat_stochastic_depth_drop_rate:
                drop_rate = stochastic_depth_drop_rate
            else:
                drop_rate = stochastic_depth_drop_rate * (index + 1) / len(specs)

            intermediate: dict[str, Any] = {}
            if spec.block_fn == "convbn":
                x = mobile_blocks.Conv2DBNBlock(
                    filters=spec.filters,
                    kernel_size=spec.kernel_size,
                    strides=layer_stride,
                    dilation_rate=layer_rate if spec.kernel_size > 1 else 1,
                    use_bias=spec.use_bias,
                    use_normalization=spec.use_normalization,
                    activation=spec.activation,
                    name=name,
                    **common,
                )(x)
            elif spec.block_fn == "invertedbottleneck":
                # Model Garden's rule: the dilation reached so far, or this layer's rate
                # once a stride has been turned into dilation before it.
                dilation = rate
                if layer_rate > 1 and spec.kernel_size != 1:
                    dilation = layer_rate
                block = mobile_blocks.InvertedBottleneckBlock(
                    in_filters=x.shape[-1],
                    out_filters=spec.filters,
                    expand_ratio=spec.expand_ratio,
                    strides=layer_stride,
                    kernel_size=spec.kernel_size,
                    se_ratio=spec.se_ratio,
                    stochastic_depth_drop_rate=drop_rate,
                    activation=spec.activation,
                    se_gating_activation="hard_sigmoid",
                    expand_se_in_filters=True,
                    dilation_rate=dilation,
                    divisible_by=divisible_by,
                    regularize_depthwise=regularize_depthwise,
                    output_intermediate_endpoints=output_intermediate_endpoints,
                    name=name,
                    **common,
                )
                if output_intermediate_endpoints:
                    x, intermediate = block(x)
                else:
                    x = block(x)
            elif spec.block_fn == "gpooling":
                x = keras.layers.GlobalAveragePooling2D(keepdims=True, name=name)(x)
            else:  # pragma: no cover - the specs above name only these.
                raise ValueError(f"unknown MobileNet block {spec.block_fn!r}")

            if spec.is_output:
                endpoints[str(level)] = x
                for key, tensor in intermediate.items():
                    endpoints[f"{level}/{key}"] = tensor
                if current_stride != output_stride:
                    level += 1
        endpoints["pre_logits"] = x

        super().__init__(
            inputs=inputs,
            outputs=endpoints,
            config={
                "model_id": model_id,
                "filter_size_scale": filter_size_scale,
                "input_specs": input_spec,
                "norm_momentum": norm_momentum,
                "norm_epsilon": norm_epsilon,
                "kernel_initializer": kernel_initializer,
                "kernel_regularizer": kernel_regularizer,
                "bias_regularizer": bias_regularizer,
                "output_stride": output_stride,
                "min_depth": min_depth,
                "divisible_by": divisible_by,
                "stochastic_depth_drop_rate": stochastic_depth_drop_rate,
                "flat_stochastic_depth_drop_rate": flat_stochastic_depth_drop_rate,
                "regularize_depthwise": regularize_depthwise,
                "use_sync_bn": use_sync_bn,
                "finegrain_classification_mode": finegrain_classification_mode,
                "output_intermediate_endpoints": output_intermediate_endpoints,
            },
            **kwargs,
        )


_DEFAULTS = MobileNetConfig()


def build_mobilenet(
    input_specs: keras.layers.InputSpec,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    model_id: str = _DEFAULTS.model_id,
    filter_size_scale: float = _DEFAULTS.filter_size_scale,
    stochastic_depth_drop_rate: float = _DEFAULTS.stochastic_depth_drop_rate,
    flat_stochastic_depth_drop_rate: bool = _DEFAULTS.flat_stochastic_depth_drop_rate,
    output_stride: int | None = _DEFAULTS.output_stride,
    output_intermediate_endpoints: bool = _DEFAULTS.output_intermediate_endpoints,
) -> MobileNet:
    """Builds a `MobileNet` (the `mobilenet` entry of `garden.backbones`).

    The keyword settings are the fields of `configs.backbones.MobileNet`, as in `MobileNet`.
    The activations are those of the published architecture (Model Garden's specs);
    `norm_activation_config` sets the batch normalization (`use_sync_bn`,
    `norm_momentum`, `norm_epsilon`) and `l2_regularizer` the kernels' weight decay.

    Raises:
      ConfigError: For an unsupported `model_id` or an invalid setting.
    """
    return MobileNet(
        model_id=model_id,
        filter_size_scale=filter_size_scale,
        input_specs=input_specs,
        stochastic_depth_drop_rate=stochastic_depth_drop_rate,
        flat_stochastic_depth_drop_rate=flat_stochastic_depth_drop_rate,
        output_stride=output_stride,
        output_intermediate_endpoints=output_intermediate_endpoints,
        use_sync_bn=norm_activation_config.use_sync_bn,
        norm_momentum=norm_activation_config.norm_momentum,
        norm_epsilon=norm_activation_config.norm_epsilon,
        kernel_regularizer=l2_regularizer,
    )


__all__ = ["SUPPORTED_MODEL_IDS", "BlockSpec", "MobileNet", "build_mobilenet", "decode_block_specs"]
