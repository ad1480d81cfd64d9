"""ResNet v1.5 (He et al., 2016) and ResNet-RS (Bello et al., 2021) backbones.

`ResNet` is Model Garden's `backbones.ResNet`: a stem (one 7x7 convolution, or ResNet-D's
three 3x3 convolutions), max pooling (or a strided 3x3 convolution) and four groups of
residual blocks, reporting the output of each group as levels `"2"` to `"5"` (strides 4 to
32). The depths, block types and repeats follow Model Garden's `RESNET_SPECS`; ResNet-RS is
the same network with `stem_type="v1"`, `resnetd_shortcut`, `replace_stem_max_pool`,
`se_ratio=0.25` and stochastic depth. `build_resnet` builds it from a `configs.backbones.
ResNet` config and is registered as the `resnet` backbone.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs.backbones import ResNet as ResNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.backbone import Backbone
from garden_vision.modeling.layers.nn_layers import batch_norm, get_activation
from garden_vision.modeling.layers.resnet_blocks import BottleneckBlock, ResidualBlock
from garden_vision.modeling.serialization import serialize_initializer

# Depth -> (block type, filters, repeats) of the four block groups, from Model Garden's
# RESNET_SPECS. 300 comes from earlier Model Garden releases (later replaced by 270, 350
# and 420); 26 is the usual bottleneck ResNet-26 (two blocks per group), which Model
# Garden does not list.
RESNET_SPECS: dict[int, tuple[tuple[str, int, int], ...]] = {
    10: (("residual", 64, 1), ("residual", 128, 1), ("residual", 256, 1), ("residual", 512, 1)),
    18: (("residual", 64, 2), ("residual", 128, 2), ("residual", 256, 2), ("residual", 512, 2)),
    26: (
        ("bottleneck", 64, 2),
        ("bottleneck", 128, 2),
        ("bottleneck", 256, 2),
        ("bottleneck", 512, 2),
    ),
    34: (("residual", 64, 3), ("residual", 128, 4), ("residual", 256, 6), ("residual", 512, 3)),
    50: (
        ("bottleneck", 64, 3),
        ("bottleneck", 128, 4),
        ("bottleneck", 256, 6),
        ("bottleneck", 512, 3),
    ),
    101: (
        ("bottleneck", 64, 3),
        ("bottleneck", 128, 4),
        ("bottleneck", 256, 23),
        ("bottleneck", 512, 3),
    ),
    152: (
        ("bottleneck", 64, 3),
        ("bottleneck", 128, 8),
        ("bottleneck", 256, 36),
        ("bottleneck", 512, 3),
    ),
    200: (
        ("bottleneck", 64, 3),
        ("bottleneck", 128, 24),
        ("bottleneck", 256, 36),
        ("bottleneck", 512, 3),
    ),
    270: (
        ("bottleneck", 64, 4),
        ("bottleneck", 128, 29),
        ("bottleneck", 256, 53),
        ("bottleneck", 512, 4),
    ),
    300: (
        ("bottleneck", 64, 4),
        ("bottleneck", 128, 36),
        ("bottleneck", 256, 54),
        ("bottleneck", 512, 4),
    ),
    350: (
        ("bottleneck", 64, 4),
        ("bottleneck", 128, 36),
        ("bottleneck", 256, 72),
        ("bottleneck", 512, 4),
    ),
    420: (
        ("bottleneck", 64, 4),
        ("bottleneck", 128, 44),
        ("bottleneck", 256, 87),
        ("bottleneck", 512, 4),
    ),
}

STEM_TYPES = ("v0", "v1")

_BLOCKS = {"residual": ResidualBlock, "bottleneck": BottleneckBlock}


def stochastic_depth_rate(init_rate: float, level: int, max_level: int = 5) -> float:
    """The drop rate of block group `level`: `init_rate` scaled linearly by `level / max_level`.

    This is Model Garden's schedule: every block of group `level` (2 to 5) uses
    `init_rate * level / 5`, so the last group drops with `init_rate`.
    """
    if not 0.0 <= init_rate < 1.0:
        raise ConfigError(f"`stochastic_depth_drop_rate` = {init_rate!r} must be in [0, 1)")
    return init_rate * level / max_level


@keras.saving.register_keras_serializable(package="garden_vision")
class ResNet(Backbone):
    """ResNet v1.5 and ResNet-RS: a residual network reporting levels `"2"` to `"5"`.

    The stem is `v0` (a 7x7/2 convolution with 64 filters) or `v1` (ResNet-D: 3x3/2
    convolution with 32 filters, 3x3 with 32, 3x3 with 64), each convolution followed by
    batch normalization and the activation; then 3x3/2 max pooling (or, with
    `replace_stem_max_pool`, a 3x3/2 convolution with 64 filters). Four block groups follow
    with 64, 128, 256 and 512 filters (times `depth_multiplier`; bottleneck blocks output 4x
    as many channels), the first at stride 1 and the others at stride 2. The first block of
    each group has a projection shortcut.

    Args:
      model_id: The depth: one of `RESNET_SPECS` (10, 18, 26, 34, 50, 101, 152, 200, 270,
        300, 350, 420). 10, 18 and 34 use basic blocks, 26 and deeper bottleneck blocks.
      input_specs: The image input, `keras.layers.InputSpec(shape=[None, H, W, C])` (or that
        shape as a list); H and W may be None.
      depth_multiplier: Scales the filters of every block (ResNet-RS's width multiplier).
      stem_type: `v0` (one 7x7 convolution) or `v1` (three 3x3 convolutions, ResNet-D).
      resnetd_shortcut: ResNet-D's projection shortcuts: average pooling, then a stride-1
        1x1 convolution.
      replace_stem_max_pool: A 3x3/2 convolution (+ BN + activation) instead of the stem's
        max pooling.
      se_ratio: Squeeze-and-excitation ratio of every block, in (0, 1]; None or 0
        disables it.
      init_stochastic_depth_rate: Stochastic depth drop rate of the last block group; group
        `L` (2 to 5) uses `init_stochastic_depth_rate * L / 5`. 0 disables it.
      scale_stem: Scales the stem's filters by `depth_multiplier` too.
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      bias_regularizer: Regularizer of the biases, or None.
      bn_trainable: Whether the batch-normalization layers train (False freezes them and
        runs them in inference mode).
      use_first_projection: Whether the first block of a basic-block ResNet (10 to 34)
        has a projection shortcut, as Model Garden's default does (the original ResNet-18
        and -34 use the identity there). Bottleneck ResNets always have it.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: For an unknown `model_id` or `stem_type`.
    """

    def __init__(
        self,
        model_id: int,
        input_specs: keras.layers.InputSpec | list | None = None,
        depth_multiplier: float = 1.0,
        stem_type: str = "v0",
        resnetd_shortcut: bool = False,
        replace_stem_max_pool: bool = False,
        se_ratio: float | None = None,
        init_stochastic_depth_rate: float = 0.0,
        scale_stem: bool = True,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        bias_regularizer: keras.regularizers.Regularizer | dict | None = None,
        bn_trainable: bool = True,
        use_first_projection: bool = True,
        **kwargs: Any,
    ):
        if model_id not in RESNET_SPECS:
            raise ConfigError(
                f"ResNet `model_id` = {model_id!r} is not supported; expected one of "
                + ", ".join(str(depth) for depth in RESNET_SPECS)
            )
        if stem_type not in STEM_TYPES:
            raise ConfigError(
                f"ResNet `stem_type` = {stem_type!r} is not supported; expected one of "
                + ", ".join(STEM_TYPES)
            )
        if depth_multiplier <= 0:
            raise ConfigError(f"ResNet `depth_multiplier` = {depth_multiplier!r} must be > 0")
        input_spec = self.input_spec_of(input_specs)
        shape = list(input_spec.shape)
        kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        bias_regularizer = keras.regularizers.get(bias_regularizer)
        initializer = serialize_initializer(kernel_initializer)
        norm_kwargs = {
            "momentum": norm_momentum,
            "epsilon": norm_epsilon,
            "synchronized": use_sync_bn,
            "trainable": bn_trainable,
        }

        def conv_bn_act(x, filters: int, kernel_size: int, strides: int, name: str):
            x = keras.layers.Conv2D(
                filters,
                kernel_size,
                strides=strides,
                padding="same",
                use_bias=False,
                kernel_initializer=initializer,
                kernel_regularizer=kernel_regularizer,
                bias_regularizer=bias_regularizer,
                name=f"{name}_conv",
            )(x)
            x = batch_norm(name=f"{name}_norm", **norm_kwargs)(x)
            return get_activation(activation)(x)

        inputs = keras.Input(shape=tuple(shape[1:]), batch_size=shape[0])
        stem_multiplier = depth_multiplier if scale_stem else 1.0
        if stem_type == "v0":
            x = conv_bn_act(inputs, int(64 * stem_multiplier), 7, 2, "stem")
        else:
            x = conv_bn_act(inputs, int(32 * stem_multiplier), 3, 2, "stem1")
            x = conv_bn_act(x, int(32 * stem_multiplier), 3, 1, "stem2")
            x = conv_bn_act(x, int(64 * stem_multiplier), 3, 1, "stem3")
        if replace_stem_max_pool:
            x = conv_bn_act(x, int(64 * depth_multiplier), 3, 2, "stem_downsample")
        else:
            x = keras.layers.MaxPooling2D(pool_size=3, strides=2, padding="same", name="stem_pool")(
                x
            )

        block_kwargs = {
            "se_ratio": se_ratio,
            "resnetd_shortcut": resnetd_shortcut,
            "kernel_initializer": initializer,
            "kernel_regularizer": kernel_regularizer,
            "bias_regularizer": bias_regularizer,
            "activation": activation,
            "use_sync_bn": use_sync_bn,
            "norm_momentum": norm_momentum,
            "norm_epsilon": norm_epsilon,
            "bn_trainable": bn_trainable,
        }
        endpoints = {}
        for index, (block_type, filters, repeats) in enumerate(RESNET_SPECS[model_id]):
            level = index + 2
            block_class = _BLOCKS[block_type]
            drop_rate = stochastic_depth_rate(init_stochastic_depth_rate, level)
            for repeat in range(repeats):
                first = repeat == 0
                x = block_class(
                    filters=int(filters * depth_multiplier),
                    strides=(1 if index == 0 else 2) if first else 1,
                    use_projection=first
                    and (block_type == "bottleneck" or index > 0 or use_first_projection),
                    stochastic_depth_drop_rate=drop_rate,
                    name=f"block_group_l{level}_block{repeat}",
                    **block_kwargs,
                )(x)
            endpoints[str(level)] = x

        super().__init__(
            inputs=inputs,
            outputs=endpoints,
            config={
                "model_id": model_id,
                "input_specs": input_spec,
                "depth_multiplier": depth_multiplier,
                "stem_type": stem_type,
                "resnetd_shortcut": resnetd_shortcut,
                "replace_stem_max_pool": replace_stem_max_pool,
                "se_ratio": se_ratio,
                "init_stochastic_depth_rate": init_stochastic_depth_rate,
                "scale_stem": scale_stem,
                "activation": activation,
                "use_sync_bn": use_sync_bn,
                "norm_momentum": norm_momentum,
                "norm_epsilon": norm_epsilon,
                "kernel_initializer": initializer,
                "kernel_regularizer": kernel_regularizer,
                "bias_regularizer": bias_regularizer,
                "bn_trainable": bn_trainable,
                "use_first_projection": use_first_projection,
            },
            **kwargs,
        )

        self.model_id = model_id
        self.input_specs = input_spec
        self.depth_multiplier = depth_multiplier
        self.stem_type = stem_type
        self.resnetd_shortcut = resnetd_shortcut
        self.replace_stem_max_pool = replace_stem_max_pool
        self.se_ratio = se_ratio
        self.init_stochastic_depth_rate = init_stochastic_depth_rate
        self.scale_stem = scale_stem
        self.activation = activation
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.bn_trainable = bn_trainable
        self.use_first_projection = use_first_projection


_DEFAULTS = ResNetConfig()


def build_resnet(
    input_specs: keras.layers.InputSpec,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    model_id: int = _DEFAULTS.model_id,
    depth_multiplier: float = _DEFAULTS.depth_multiplier,
    stem_type: str = _DEFAULTS.stem_type,
    se_ratio: float = _DEFAULTS.se_ratio,
    stochastic_depth_drop_rate: float = _DEFAULTS.stochastic_depth_drop_rate,
    scale_stem: bool = _DEFAULTS.scale_stem,
    resnetd_shortcut: bool = _DEFAULTS.resnetd_shortcut,
    replace_stem_max_pool: bool = _DEFAULTS.replace_stem_max_pool,
    bn_trainable: bool = _DEFAULTS.bn_trainable,
) -> ResNet:
    """Builds a `ResNet` (the `resnet` entry of `garden.backbones`).

    The keyword settings are the fields of `configs.backbones.ResNet`, with its defaults
    (`backbone: {type: resnet, resnet: {...}}` in a config).

    Args:
      input_specs: The image input, `InputSpec(shape=[None, H, W, C])`.
      norm_activation_config: Activation and batch-normalization settings.
      l2_regularizer: Kernel regularizer of every convolution (weight decay), or None.
      model_id, depth_multiplier, stem_type, se_ratio, scale_stem, resnetd_shortcut,
        replace_stem_max_pool, bn_trainable: As in `ResNet`.
      stochastic_depth_drop_rate: The model's `init_stochastic_depth_rate`.

    Raises:
      ConfigError: For an unknown `model_id` or `stem_type`.
    """
    return ResNet(
        model_id=model_id,
        input_specs=input_specs,
        depth_multiplier=depth_multiplier,
        stem_type=stem_type,
        resnetd_shortcut=resnetd_shortcut,
        replace_stem_max_pool=replace_stem_max_pool,
        se_ratio=se_ratio,
        init_stochastic_depth_rate=stochastic_depth_drop_rate,
        scale_stem=scale_stem,
        activation=norm_activation_config.activation,
        use_sync_bn=norm_activation_config.use_sync_bn,
        norm_momentum=norm_activation_config.norm_momentum,
        norm_epsilon=norm_activation_config.norm_epsilon,
        kernel_regularizer=l2_regularizer,
        bn_trainable=bn_trainable,
    )
