"""SpineNet-Mobile (Du et al., 2020): SpineNet built from MBConv blocks for mobile detection.

"Efficient Scale-Permuted Backbone with Learned Resource Distribution"
(https://arxiv.org/abs/2010.11426) and the mobile appendix of "SpineNet: Learning
Scale-Permuted Backbone for Recognition and Localization" (https://arxiv.org/abs/1912.05027).

`SpineNetMobile` is Model Garden's `backbones.SpineNetMobile`, with its arguments. It keeps
SpineNet's scale-permuted topology (`SPINENET_BLOCK_SPECS` below, searched for MBConv
blocks) and changes its parts:

- Blocks: inverted bottlenecks (MBConv: 1x1 expansion by `expand_ratio`, 3x3 depthwise,
  squeeze-and-excitation gated by `hard_sigmoid`, linear 1x1 projection, residual with
  stochastic depth), with `FILTER_SIZE_MAP` channels per level (times `filter_size_scale`).
- Stem: a 3x3/2 convolution with 8 filters, BN and the activation, then an MBConv block to
  16 filters (level 1) and a strided one to 24 filters (level 2).
- Cross-scale connections: per halving a 3x3/2 depthwise convolution, BN and the
  activation; nearest upsampling to go up; then a 1x1 convolution and BN to the block's
  width (no `alpha` reduction).
- Blocks above `max_level` are built at `max_level` (so SpineNet-Mobile with `max_level` 6
  has no level-7 blocks); when that gives one level several output blocks, the last one is
  the output, as in Model Garden.
- Endpoints: levels `min_level..max_level`, each a 1x1 convolution, BN and the activation
  to `endpoints_num_filters` channels.

The family (`SCALING_MAP`, Model Garden's): SpineNet-Mobile-49, -49S and -49XS.
`build_spinenet_mobile` builds one from a `configs.backbones.SpineNetMobile` config and is
registered as the `spinenet_mobile` backbone. As in `spinenet`, known input sides must be
multiples of `2 ** L` for the highest block level `L` (after the `max_level` cap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs.backbones import SpineNetMobile as SpineNetMobileConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.backbone import Backbone
from garden_vision.modeling.backbones.scale_permuted import (
    ConvNormLayers,
    Node,
    build_endpoints,
    build_scale_permuted_blocks,
    check_settings,
)
from garden_vision.modeling.backbones.spinenet import (
    BlockSpec,
    build_block_specs,
    check_input_size,
    check_levels,
    scaling_of,
    serialize_block_specs,
)
from garden_vision.modeling.layers.mobile_blocks import InvertedBottleneckBlock
from garden_vision.modeling.layers.resampling import upsampling_layer
from garden_vision.modeling.serialization import serialize_initializer

# Level -> MBConv filters (before `filter_size_scale`); level 0 is the stem convolution.
FILTER_SIZE_MAP = {0: 8, 1: 16, 2: 24, 3: 40, 4: 80, 5: 112, 6: 112, 7: 112}

# The architecture found by search for MBConv blocks, as Model Garden writes it:
# (level, block_fn, (input_offset0, input_offset1), is_output). Offsets count from the two
# stem blocks (0: level 1, 1: level 2), then the blocks of this list in order.
SPINENET_BLOCK_SPECS = [
    (2, "mbconv", (0, 1), False),
    (2, "mbconv", (1, 2), False),
    (4, "mbconv", (1, 2), False),
    (3, "mbconv", (3, 4), False),
    (4, "mbconv", (3, 5), False),
    (6, "mbconv", (4, 6), False),
    (4, "mbconv", (4, 6), False),
    (5, "mbconv", (7, 8), False),
    (7, "mbconv", (7, 9), False),
    (5, "mbconv", (9, 10), False),
    (5, "mbconv", (9, 11), False),
    (4, "mbconv", (6, 11), True),
    (3, "mbconv", (5, 11), True),
    (5, "mbconv", (8, 13), True),
    (7, "mbconv", (6, 15), True),
    (6, "mbconv", (13, 15), True),
]

# Model id -> the scaling of SpineNet-Mobile-49 (Model Garden's SCALING_MAP).
SCALING_MAP: dict[str, dict[str, float | int]] = {
    "49": {"endpoints_num_filters": 48, "filter_size_scale": 1.0, "block_repeats": 1},
    "49S": {"endpoints_num_filters": 40, "filter_size_scale": 0.65, "block_repeats": 1},
    "49XS": {"endpoints_num_filters": 24, "filter_size_scale": 0.6, "block_repeats": 1},
}

_NUM_STEM_BLOCKS = 2

__all__ = [
    "FILTER_SIZE_MAP",
    "SCALING_MAP",
    "SPINENET_BLOCK_SPECS",
    "BlockSpec",
    "SpineNetMobile",
    "build_spinenet_mobile",
]


@keras.saving.register_keras_serializable(package="garden_vision")
class SpineNetMobile(Backbone):
    """SpineNet-Mobile: a scale-permuted MBConv network reporting `min_level..max_level`.

    Args:
      input_specs: The image input, `keras.layers.InputSpec(shape=[None, H, W, C])` (or
        that shape as a list); H and W may be None, and must otherwise be multiples of
        `2 ** min(7, max_level)` for the published specs.
      min_level: The lowest output level.
      max_level: The highest output level (and the highest level any block is built at).
      block_specs: The scale-permuted blocks, `(level, "mbconv", (input_offset0,
        input_offset1), is_output)` each, or `BlockSpec`s; None for
        `SPINENET_BLOCK_SPECS`.
      endpoints_num_filters: Channels of every output.
      se_ratio: Squeeze-and-excitation ratio of every block; 0 disables it.
      block_repeats: Blocks per block group.
      filter_size_scale: Scales the filters of every block and of the stem.
      expand_ratio: Expansion of every inverted bottleneck.
      init_stochastic_depth_rate: Stochastic depth drop rate of the last scale-permuted
        block; block `i` of `n` uses `init_stochastic_depth_rate * i / n`; 0 disables it.
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the regular and 1x1 kernels (weight decay), or
        None; depthwise kernels are not regularized, as in Model Garden.
      bias_regularizer: Regularizer of the biases, or None.
      activation: The activation's Model Garden name (`relu`, `swish`, `hard_swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      use_keras_upsampling_2d: Upsample with `keras.layers.UpSampling2D` instead of
        `NearestUpsampling` (same values).
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: For malformed block specs, levels without an output block, a known
        input size that is not a multiple of `2 ** (highest block level)`, or a
        non-positive width, scale, expansion or repeat count.

    Example:

        backbone = SpineNetMobile(
            input_specs=keras.layers.InputSpec(shape=[None, 384, 384, 3]),
            endpoints_num_filters=48,
            activation="hard_swish",
        )
        features = backbone(images)  # {"3": [B, 48, 48, 48], ..., "7": [B, 3, 3, 48]}
    """

    def __init__(
        self,
        input_specs: keras.layers.InputSpec | list | None = None,
        min_level: int = 3,
        max_level: int = 7,
        block_specs: Sequence[Any] | None = None,
        endpoints_num_filters: int = 256,
        se_ratio: float = 0.2,
        block_repeats: int = 1,
        filter_size_scale: float = 1.0,
        expand_ratio: int = 6,
        init_stochastic_depth_rate: float = 0.0,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        bias_regularizer: keras.regularizers.Regularizer | dict | None = None,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        use_keras_upsampling_2d: bool = False,
        **kwargs: Any,
    ):
        name = type(self).__name__
        specs = build_block_specs(
            block_specs,
            block_fns=("mbconv",),
            default=SPINENET_BLOCK_SPECS,
            num_stem_blocks=_NUM_STEM_BLOCKS,
            where=f"{name} `block_specs`",
        )
        check_settings(
            name,
            {
                "endpoints_num_filters": endpoints_num_filters,
                "block_repeats": block_repeats,
                "filter_size_scale": filter_size_scale,
                "expand_ratio": expand_ratio,
            },
            init_stochastic_depth_rate,
        )
        if max_level not in FILTER_SIZE_MAP:
            raise ConfigError(
                f"{name} `max_level` = {max_level!r}: levels up to {max(FILTER_SIZE_MAP)} "
                "have a filter size"
            )
        # Blocks above max_level are built at max_level (Model Garden's rule).
        levels = [min(spec.level, max_level) for spec in specs]
        check_levels(
            [level for level, spec in zip(levels, specs, strict=True) if spec.is_output],
            min_level,
            max_level,
            name,
        )
        input_spec = self.input_spec_of(input_specs)
        shape = list(input_spec.shape)
        check_input_size(shape, max(levels), name)

        kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        bias_regularizer = keras.regularizers.get(bias_regularizer)
        initializer = serialize_initializer(kernel_initializer)
        layers = ConvNormLayers(
            kernel_initializer=initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activation=activation,
            use_sync_bn=use_sync_bn,
            norm_momentum=norm_momentum,
            norm_epsilon=norm_epsilon,
        )

        def block_group(
            x, filters: int, block_fn: str, drop_rate: float | None, group: str, strides: int = 1
        ):
            for repeat in range(int(block_repeats)):
                x = InvertedBottleneckBlock(
                    in_filters=x.shape[-1],
                    out_filters=filters,
                    expand_ratio=expand_ratio,
                    strides=strides if repeat == 0 else 1,
                    se_ratio=se_ratio,
                    se_gating_activation="hard_sigmoid",
                    stochastic_depth_drop_rate=drop_rate,
                    name=f"{group}_{repeat}",
                    **layers.block_arguments(),
                )(x)
            return x

        def resample(node: Node, level: int, filters: int, block_fn: str, prefix: str):
            x = node.tensor
            for step in range(level - node.level):
                x = keras.layers.DepthwiseConv2D(
                    3,
                    strides=2,
                    padding="same",
                    use_bias=False,
                    depthwise_initializer=initializer,
                    name=f"{prefix}_down{step}_conv",
                )(x)
                x = layers.norm_activation(x, f"{prefix}_down{step}_norm")
            if node.level > level:
                x = upsampling_layer(
                    2 ** (node.level - level),
                    use_keras_layer=use_keras_upsampling_2d,
                    name=f"{prefix}_up",
                )(x)
            x = layers.conv(x, filters, 1, 1, f"{prefix}_conv")
            return layers.norm(x, f"{prefix}_norm")

        inputs = keras.Input(shape=tuple(shape[1:]), batch_size=shape[0])
        stem_filters = int(FILTER_SIZE_MAP[0] * filter_size_scale)
        x = layers.conv_norm_activation(inputs, stem_filters, 3, 2, "stem")
        stem = []
        for index, stride in enumerate((1, 2)):
            filters = int(FILTER_SIZE_MAP[index + 1] * filter_size_scale)
            x = block_group(x, filters, "mbconv", None, f"stem_block_{index + 1}", stride)
            stem.append(Node(x, index + 1, "mbconv"))
        outputs_by_level = build_scale_permuted_blocks(
            stem,
            specs,
            levels=levels,
            filters=[int(FILTER_SIZE_MAP[level] * filter_size_scale) for level in levels],
            resample=resample,
            block_group=block_group,
            activation=activation,
            init_stochastic_depth_rate=init_stochastic_depth_rate,
        )
        endpoints = build_endpoints(
            outputs_by_level, min_level, max_level, endpoints_num_filters, layers
        )

        super().__init__(
            inputs=inputs,
            outputs=endpoints,
            config={
                "input_specs": input_spec,
                "min_level": min_level,
                "max_level": max_level,
                "block_specs": serialize_block_specs(specs),
                "endpoints_num_filters": endpoints_num_filters,
                "se_ratio": se_ratio,
                "block_repeats": block_repeats,
                "filter_size_scale": filter_size_scale,
                "expand_ratio": expand_ratio,
                "init_stochastic_depth_rate": init_stochastic_depth_rate,
                "kernel_initializer": initializer,
                "kernel_regularizer": kernel_regularizer,
                "bias_regularizer": bias_regularizer,
                "activation": activation,
                "use_sync_bn": use_sync_bn,
                "norm_momentum": norm_momentum,
                "norm_epsilon": norm_epsilon,
                "use_keras_upsampling_2d": use_keras_upsampling_2d,
            },
            **kwargs,
        )
        self.input_specs = input_spec
        self.min_level = min_level
        self.max_level = max_level
        self.block_specs = specs
        self.endpoints_num_filters = endpoints_num_filters
        self.se_ratio = se_ratio
        self.block_repeats = block_repeats
        self.filter_size_scale = filter_size_scale
        self.expand_ratio = expand_ratio
        self.init_stochastic_depth_rate = init_stochastic_depth_rate
        self.kernel_initializer = initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.activation = activation
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.use_keras_upsampling_2d = use_keras_upsampling_2d


_DEFAULTS = SpineNetMobileConfig()


def build_spinenet_mobile(
    input_specs: keras.layers.InputSpec,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    model_id: str = _DEFAULTS.model_id,
    stochastic_depth_drop_rate: float = _DEFAULTS.stochastic_depth_drop_rate,
    se_ratio: float = _DEFAULTS.se_ratio,
    expand_ratio: int = _DEFAULTS.expand_ratio,
    min_level: int = _DEFAULTS.min_level,
    max_level: int = _DEFAULTS.max_level,
    use_keras_upsampling_2d: bool = _DEFAULTS.use_keras_upsampling_2d,
) -> SpineNetMobile:
    """Builds a `SpineNetMobile` (the `spinenet_mobile` entry of `garden.backbones`).

    The keyword settings are the fields of `configs.backbones.SpineNetMobile`, with its
    defaults; `model_id` picks the scaling of `SCALING_MAP`.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, H, W, C])`.
      norm_activation_config: Activation and batch-normalization settings.
      l2_regularizer: Kernel regularizer of the convolutions (weight decay), or None.
      model_id: `49`, `49S` or `49XS`.
      stochastic_depth_drop_rate: The model's `init_stochastic_depth_rate`.
      se_ratio, expand_ratio, min_level, max_level, use_keras_upsampling_2d: As in
        `SpineNetMobile`.

    Raises:
      ConfigError: For an unknown `model_id` or settings `SpineNetMobile` rejects.
    """
    scaling = scaling_of(model_id, SCALING_MAP, "SpineNetMobile")
    return SpineNetMobile(
        input_specs=input_specs,
        min_level=min_level,
        max_level=max_level,
        endpoints_num_filters=scaling["endpoints_num_filters"],
        se_ratio=se_ratio,
        block_repeats=scaling["block_repeats"],
        filter_size_scale=scaling["filter_size_scale"],
        expand_ratio=expand_ratio,
        init_stochastic_depth_rate=stochastic_depth_drop_rate,
        kernel_regularizer=l2_regularizer,
        activation=norm_activation_config.activation,
        use_sync_bn=norm_activation_config.use_sync_bn,
        norm_momentum=norm_activation_config.norm_momentum,
        norm_epsilon=norm_activation_config.norm_epsilon,
        use_keras_upsampling_2d=use_keras_upsampling_2d,
    )
