"""SpineNet (Du et al., 2020): a scale-permuted backbone learned for object detection.

"SpineNet: Learning Scale-Permuted Backbone for Recognition and Localization"
(https://arxiv.org/abs/1912.05027). Instead of shrinking the feature maps level by level
as ResNet does, SpineNet's blocks visit the levels in an order found by architecture
search, and every block reads two earlier blocks through cross-scale connections. Its
outputs feed RetinaNet or Mask R-CNN heads directly, without an FPN.

`SpineNet` is Model Garden's `backbones.SpineNet`, with its arguments:

- Stem: a 7x7/2 convolution with 64 filters, BN, the activation, 3x3/2 max pooling and two
  level-2 bottleneck block groups.
- Scale-permuted network: one block group per `BlockSpec` (`SPINENET_BLOCK_SPECS` by
  default): each of its two parents is resampled to the block's level and width (a 1x1
  convolution to `alpha` times the parent's width; a strided 3x3 convolution and max
  pooling to go down, nearest upsampling to go up; a 1x1 convolution to the block's width),
  the parents are summed (an output block also adds every earlier block of its level and
  width that nothing reads yet), passed through the activation, and the block group runs.
  Block `i` (1-based) of `n` has stochastic depth rate `init_stochastic_depth_rate * i / n`.
- Endpoints: levels `min_level` to `max_level` of the output blocks, each mapped by a 1x1
  convolution, BN and the activation to `endpoints_num_filters` channels.

The family (`SCALING_MAP`, Model Garden's): SpineNet-49S, -49, -96, -143, -143L and -190
differ in `endpoints_num_filters`, `filter_size_scale`, `resample_alpha` and
`block_repeats` (blocks per group). `build_spinenet` builds one from a
`configs.backbones.SpineNet` config and is registered as the `spinenet` backbone.

The input's height and width, when known, must be multiples of `2 ** L` where `L` is the
highest block level (7 for the published specs): the cross-scale resampling doubles and
halves sizes exactly. Unlike Model Garden, which compares tensor widths and so skips the
"unread block" merge when the input size is unknown, the merge here depends only on
levels and widths, so a model built for `None` sizes computes what one built for a fixed
size does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import keras

from garden_core.config import ConfigError
from garden_vision.configs.backbones import SpineNet as SpineNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.backbone import Backbone
from garden_vision.modeling.backbones.scale_permuted import (
    ConvNormLayers,
    Node,
    build_endpoints,
    build_scale_permuted_blocks,
    check_settings,
)
from garden_vision.modeling.layers.resampling import NearestUpsampling
from garden_vision.modeling.layers.resnet_blocks import BottleneckBlock, ResidualBlock
from garden_vision.modeling.serialization import serialize_initializer

# Level -> block filters (before `filter_size_scale`; bottleneck blocks output 4x).
FILTER_SIZE_MAP = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}

# The architecture found by search (the paper's Figure 4d), as Model Garden writes it:
# (level, block_fn, (input_offset0, input_offset1), is_output). Offsets count from the two
# stem blocks (0 and 1), then the blocks of this list in order (2, 3, ...).
SPINENET_BLOCK_SPECS = [
    (2, "bottleneck", (0, 1), False),
    (4, "residual", (0, 1), False),
    (3, "bottleneck", (2, 3), False),
    (4, "bottleneck", (2, 4), False),
    (6, "residual", (3, 5), False),
    (4, "bottleneck", (3, 5), False),
    (5, "residual", (6, 7), False),
    (7, "residual", (6, 8), False),
    (5, "bottleneck", (8, 9), False),
    (5, "bottleneck", (8, 10), False),
    (4, "bottleneck", (5, 10), True),
    (3, "bottleneck", (4, 10), True),
    (5, "bottleneck", (7, 12), True),
    (7, "bottleneck", (5, 14), True),
    (6, "bottleneck", (12, 14), True),
    (2, "bottleneck", (2, 13), True),
]

# Model id -> the scaling of the SpineNet-49 architecture (Model Garden's SCALING_MAP).
SCALING_MAP: dict[str, dict[str, float | int]] = {
    "49S": {
        "endpoints_num_filters": 128,
        "filter_size_scale": 0.65,
        "resample_alpha": 0.5,
        "block_repeats": 1,
    },
    "49": {
        "endpoints_num_filters": 256,
        "filter_size_scale": 1.0,
        "resample_alpha": 0.5,
        "block_repeats": 1,
    },
    "96": {
        "endpoints_num_filters": 256,
        "filter_size_scale": 1.0,
        "resample_alpha": 0.5,
        "block_repeats": 2,
    },
    "143": {
        "endpoints_num_filters": 256,
        "filter_size_scale": 1.0,
        "resample_alpha": 1.0,
        "block_repeats": 3,
    },
    # SpineNet-143 with 1.3x filters.
    "143L": {
        "endpoints_num_filters": 256,
        "filter_size_scale": 1.3,
        "resample_alpha": 1.0,
        "block_repeats": 3,
    },
    "190": {
        "endpoints_num_filters": 512,
        "filter_size_scale": 1.3,
        "resample_alpha": 1.0,
        "block_repeats": 4,
    },
}

_BLOCKS = {"bottleneck": BottleneckBlock, "residual": ResidualBlock}
_NUM_STEM_BLOCKS = 2


class BlockSpec(NamedTuple):
    """One block of a scale-permuted network.

    Attributes:
      level: The block's level (its stride is `2 ** level`).
      block_fn: The block type (`bottleneck` or `residual` in SpineNet, `mbconv` in
        SpineNet-Mobile).
      input_offsets: The two parents: indices into the stem blocks followed by the blocks
        before this one.
      is_output: Whether the block is the network's output at its level.
    """

    level: int
    block_fn: str
    input_offsets: tuple[int, int]
    is_output: bool


def build_block_specs(
    block_specs: Iterable[Any] | None = None,
    block_fns: Sequence[str] = tuple(_BLOCKS),
    default: Sequence[Any] = SPINENET_BLOCK_SPECS,
    num_stem_blocks: int = _NUM_STEM_BLOCKS,
    where: str = "SpineNet `block_specs`",
) -> list[BlockSpec]:
    """`block_specs` (tuples, lists or `BlockSpec`s; None for `default`) as checked `BlockSpec`s.

    Args:
      block_specs: `(level, block_fn, (input_offset0, input_offset1), is_output)` per
        block, or None.
      block_fns: The block types allowed.
      default: The specs used when `block_specs` is None or empty.
      num_stem_blocks: How many stem blocks precede the specs (offsets 0 ...).
      where: Names the argument in error messages.

    Raises:
      ConfigError: If a spec is malformed, names an unknown block type or level, or reads
        a block that does not exist yet.
    """
    raw = list(block_specs) if block_specs else list(default)
    specs = []
    for index, spec in enumerate(raw):
        try:
            level, block_fn, offsets, is_output = spec
            offsets = tuple(int(offset) for offset in offsets)
            level = int(level)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}[{index}] = {spec!r} must be (level, block_fn, "
                "(input_offset0, input_offset1), is_output)"
            ) from None
        if block_fn not in block_fns:
            raise ConfigError(
                f"{where}[{index}]: block_fn {block_fn!r} is not one of {', '.join(block_fns)}"
            )
        if level < 1:
            raise ConfigError(f"{where}[{index}]: level {level} must be >= 1")
        available = num_stem_blocks + index
        if len(offsets) != 2 or any(not 0 <= offset < available for offset in offsets):
            raise ConfigError(
                f"{where}[{index}]: input_offsets {offsets} must be two indices of the "
                f"{available} blocks before it (0 to {available - 1})"
            )
        specs.append(BlockSpec(level, str(block_fn), offsets, bool(is_output)))
    return specs


def serialize_block_specs(block_specs: Sequence[BlockSpec]) -> list[list[Any]]:
    """`BlockSpec`s as JSON-friendly lists (what `get_config` stores)."""
    return [[s.level, s.block_fn, list(s.input_offsets), s.is_output] for s in block_specs]


def check_input_size(shape: Sequence[int | None], max_block_level: int, name: str) -> None:
    """Raises a `ConfigError` unless known input sides are multiples of `2 ** max_block_level`."""
    multiple = 2**max_block_level
    for side, size in zip(("height", "width"), shape[1:3], strict=True):
        if size is not None and size % multiple:
            raise ConfigError(
                f"{name}: the input {side} {size} must be a multiple of {multiple} "
                f"(2 ** {max_block_level}, the highest block level), so that every "
                "cross-scale connection resamples exactly"
            )


def check_levels(output_levels: Iterable[int], min_level: int, max_level: int, name: str) -> None:
    """Raises a `ConfigError` unless every level `min_level..max_level` has an output block."""
    output_levels = sorted(set(output_levels))
    if min_level > max_level:
        raise ConfigError(f"{name}: min_level {min_level} is above max_level {max_level}")
    missing = [level for level in range(min_level, max_level + 1) if level not in output_levels]
    if missing:
        raise ConfigError(
            f"{name}: levels {missing} of min_level..max_level ({min_level}..{max_level}) "
            f"have no output block; the block specs output levels {output_levels}"
        )


@keras.saving.register_keras_serializable(package="garden_vision")
class SpineNet(Backbone):
    """SpineNet: a scale-permuted residual network reporting levels `min_level..max_level`.

    Args:
      input_specs: The image input, `keras.layers.InputSpec(shape=[None, H, W, C])` (or
        that shape as a list); H and W may be None, and must otherwise be multiples of
        `2 ** 7` for the published specs.
      min_level: The lowest output level.
      max_level: The highest output level.
      block_specs: The scale-permuted blocks, `(level, block_fn, (input_offset0,
        input_offset1), is_output)` each, or `BlockSpec`s; None for
        `SPINENET_BLOCK_SPECS`. Every level `min_level..max_level` needs one output block.
      endpoints_num_filters: Channels of every output.
      resample_alpha: Width of a cross-scale connection relative to its source block's
        (bottleneck blocks count a quarter of their output channels).
      block_repeats: Blocks per block group (SpineNet-96 repeats each block twice, ...).
      filter_size_scale: Scales the filters of every block (SpineNet-49S uses 0.65).
      init_stochastic_depth_rate: Stochastic depth drop rate of the last scale-permuted
        block; block `i` of `n` uses `init_stochastic_depth_rate * i / n`; 0 disables it.
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      bias_regularizer: Regularizer of the biases, or None.
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: For malformed block specs, levels without an output block, a known
        input size that is not a multiple of `2 ** (highest block level)`, or a
        non-positive width, scale, alpha or repeat count.

    Example:

        backbone = SpineNet(input_specs=keras.layers.InputSpec(shape=[None, 640, 640, 3]))
        features = backbone(images)  # {"3": [B, 80, 80, 256], ..., "7": [B, 5, 5, 256]}
    """

    def __init__(
        self,
        input_specs: keras.layers.InputSpec | list | None = None,
        min_level: int = 3,
        max_level: int = 7,
        block_specs: Sequence[Any] | None = None,
        endpoints_num_filters: int = 256,
        resample_alpha: float = 0.5,
        block_repeats: int = 1,
        filter_size_scale: float = 1.0,
        init_stochastic_depth_rate: float = 0.0,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        bias_regularizer: keras.regularizers.Regularizer | dict | None = None,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        **kwargs: Any,
    ):
        name = type(self).__name__
        specs = build_block_specs(block_specs)
        check_settings(
            name,
            {
                "endpoints_num_filters": endpoints_num_filters,
                "resample_alpha": resample_alpha,
                "block_repeats": block_repeats,
                "filter_size_scale": filter_size_scale,
            },
            init_stochastic_depth_rate,
        )
        output_levels = [spec.level for spec in specs if spec.is_output]
        duplicates = sorted({level for level in output_levels if output_levels.count(level) > 1})
        if duplicates:
            raise ConfigError(f"{name} `block_specs`: levels {duplicates} have several outputs")
        check_levels(output_levels, min_level, max_level, name)
        for spec in specs:
            if spec.level not in FILTER_SIZE_MAP:
                raise ConfigError(
                    f"{name} `block_specs`: level {spec.level} has no filter size; levels "
                    f"{min(FILTER_SIZE_MAP)} to {max(FILTER_SIZE_MAP)} do"
                )
        input_spec = self.input_spec_of(input_specs)
        shape = list(input_spec.shape)
        check_input_size(shape, max(spec.level for spec in specs), name)

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

        def block_group(x, filters: int, block_fn: str, drop_rate: float | None, group: str):
            block_class = _BLOCKS[block_fn]
            out_filters = filters * block_class.expansion
            for repeat in range(int(block_repeats)):
                x = block_class(
                    filters=filters,
                    strides=1,
                    use_projection=repeat == 0 and x.shape[-1] != out_filters,
                    stochastic_depth_drop_rate=drop_rate,
                    name=f"{group}_{repeat}",
                    **layers.block_arguments(),
                )(x)
            return x

        def resample(node: Node, level: int, filters: int, block_fn: str, prefix: str):
            source_filters = node.channels / 4 if node.block_fn == "bottleneck" else node.channels
            width = int(source_filters * resample_alpha)
            x = layers.conv_norm_activation(node.tensor, width, 1, 1, f"{prefix}_reduce")
            if node.level < level:
                x = layers.conv_norm_activation(x, width, 3, 2, f"{prefix}_down")
                for step in range(level - node.level - 1):
                    x = keras.layers.MaxPooling2D(
                        pool_size=3, strides=2, padding="same", name=f"{prefix}_down_pool{step}"
                    )(x)
            elif node.level > level:
                x = NearestUpsampling(2 ** (node.level - level), name=f"{prefix}_up")(x)
            x = layers.conv(x, filters * _BLOCKS[block_fn].expansion, 1, 1, f"{prefix}_expand_conv")
            return layers.norm(x, f"{prefix}_expand_norm")

        inputs = keras.Input(shape=tuple(shape[1:]), batch_size=shape[0])
        x = layers.conv_norm_activation(inputs, 64, 7, 2, "stem")
        x = keras.layers.MaxPooling2D(pool_size=3, strides=2, padding="same", name="stem_pool")(x)
        stem = []
        stem_filters = int(FILTER_SIZE_MAP[2] * filter_size_scale)
        for index in range(_NUM_STEM_BLOCKS):
            x = block_group(x, stem_filters, "bottleneck", None, f"stem_block_{index + 1}")
            stem.append(Node(x, 2, "bottleneck"))
        outputs_by_level = build_scale_permuted_blocks(
            stem,
            specs,
            levels=[spec.level for spec in specs],
            filters=[int(FILTER_SIZE_MAP[spec.level] * filter_size_scale) for spec in specs],
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
                "resample_alpha": resample_alpha,
                "block_repeats": block_repeats,
                "filter_size_scale": filter_size_scale,
                "init_stochastic_depth_rate": init_stochastic_depth_rate,
                "kernel_initializer": initializer,
                "kernel_regularizer": kernel_regularizer,
                "bias_regularizer": bias_regularizer,
                "activation": activation,
                "use_sync_bn": use_sync_bn,
                "norm_momentum": norm_momentum,
                "norm_epsilon": norm_epsilon,
            },
            **kwargs,
        )
        self.input_specs = input_spec
        self.min_level = min_level
        self.max_level = max_level
        self.block_specs = specs
        self.endpoints_num_filters = endpoints_num_filters
        self.resample_alpha = resample_alpha
        self.block_repeats = block_repeats
        self.filter_size_scale = filter_size_scale
        self.init_stochastic_depth_rate = init_stochastic_depth_rate
        self.kernel_initializer = initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.activation = activation
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon


def scaling_of(model_id: Any, scaling_map: dict[str, dict[str, Any]], name: str) -> dict:
    """The scaling parameters of `model_id` (compared as a string: 49 and "49" agree)."""
    key = str(model_id)
    if key not in scaling_map:
        raise ConfigError(
            f"{name} `model_id` = {model_id!r} is not supported; expected one of "
            + ", ".join(scaling_map)
        )
    return scaling_map[key]


_DEFAULTS = SpineNetConfig()


def build_spinenet(
    input_specs: keras.layers.InputSpec,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    model_id: str = _DEFAULTS.model_id,
    stochastic_depth_drop_rate: float = _DEFAULTS.stochastic_depth_drop_rate,
    min_level: int = _DEFAULTS.min_level,
    max_level: int = _DEFAULTS.max_level,
) -> SpineNet:
    """Builds a `SpineNet` (the `spinenet` entry of `garden.backbones`).

    The keyword settings are the fields of `configs.backbones.SpineNet`, with its defaults
    (`backbone: {type: spinenet, spinenet: {model_id: '96'}}` in a config); `model_id`
    picks the scaling of `SCALING_MAP`.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, H, W, C])`.
      norm_activation_config: Activation and batch-normalization settings.
      l2_regularizer: Kernel regularizer of every convolution (weight decay), or None.
      model_id: `49S`, `49`, `96`, `143`, `143L` or `190`.
      stochastic_depth_drop_rate: The model's `init_stochastic_depth_rate`.
      min_level: The lowest output level.
      max_level: The highest output level.

    Raises:
      ConfigError: For an unknown `model_id` or settings `SpineNet` rejects.
    """
    scaling = scaling_of(model_id, SCALING_MAP, "SpineNet")
    return SpineNet(
        input_specs=input_specs,
        min_level=min_level,
        max_level=max_level,
        endpoints_num_filters=scaling["endpoints_num_filters"],
        resample_alpha=scaling["resample_alpha"],
        block_repeats=scaling["block_repeats"],
        filter_size_scale=scaling["filter_size_scale"],
        init_stochastic_depth_rate=stochastic_depth_drop_rate,
        kernel_regularizer=l2_regularizer,
        activation=norm_activation_config.activation,
        use_sync_bn=norm_activation_config.use_sync_bn,
        norm_momentum=norm_activation_config.norm_momentum,
        norm_epsilon=norm_activation_config.norm_epsilon,
    )
