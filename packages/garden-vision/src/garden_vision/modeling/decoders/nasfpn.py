"""NAS-FPN (Ghiasi et al., 2019): a feature pyramid architecture found by search.

"NAS-FPN: Learning Scalable Feature Pyramid Architecture for Object Detection"
(https://arxiv.org/abs/1904.07392). `NASFPN` is Model Garden's `decoders.NASFPN`, with its
arguments:

1. Input projection: every level `min_level..max_level` the backbone reports is mapped to
   `num_filters` channels (a 1x1 convolution with bias and BN, when its width differs);
   each level above the backbone's is max-pooled (2x2, stride 2) from the level below.
2. The pyramid cell (`NASFPN_BLOCK_SPECS`, the searched cell of the paper's Figure 7),
   stacked `num_repeats` times: each block resamples its two parents to its level (max
   pooling down, nearest upsampling up), merges them by a sum or by global attention (the
   coarser parent plus the finer one gated by the sigmoid of the coarser one's global
   max), adds, for an output block, every earlier feature of its level that nothing read
   yet, then applies the activation, a 3x3 convolution (with bias) and BN. The last
   `max_level - min_level + 1` blocks are the cell's output levels.

Model Garden resamples inside the cell to a hard-coded 256 channels, which adds 1x1
convolutions when `num_filters` is not 256; here the cell keeps `num_filters`, which is the
same network for the published width of 256. `build_nasfpn` builds it from a
`configs.decoders.NASFPN` config and is registered as the `nasfpn` decoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import keras
from keras import ops

from garden_core.config import ConfigError
from garden_vision.configs.common import NormActivation
from garden_vision.configs.decoders import NASFPN as NASFPNConfig
from garden_vision.modeling.decoders.fpn import (
    PyramidDecoder,
    PyramidLayers,
    check_pyramid_sizes,
    feature_inputs,
    normalize_input_specs,
    numeric_levels,
)
from garden_vision.modeling.layers.nn_layers import get_activation
from garden_vision.modeling.layers.resampling import NearestUpsampling
from garden_vision.modeling.serialization import serialize_initializer

# The searched cell, as Model Garden writes it: (level, combine_fn, (input_offset0,
# input_offset1), is_output). Offsets count from the cell's inputs (levels min_level ...
# max_level, 0 ...), then the blocks of this list in order.
NASFPN_BLOCK_SPECS = [
    (4, "attention", (1, 3), False),
    (4, "sum", (1, 5), False),
    (3, "sum", (0, 6), True),
    (4, "sum", (6, 7), True),
    (5, "attention", (7, 8), True),
    (7, "attention", (6, 9), True),
    (6, "attention", (9, 10), True),
]

COMBINE_FNS = ("sum", "attention")

# The He-normal (fan-out) initializer Model Garden's NAS-FPN gives every convolution.
NASFPN_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "untruncated_normal"},
}


class BlockSpec(NamedTuple):
    """One block of the NAS-FPN cell.

    Attributes:
      level: The block's output level.
      combine_fn: How its two parents merge: `sum` or `attention`.
      input_offsets: The two parents: indices into the cell's inputs followed by the
        blocks before this one.
      is_output: Whether the block also gathers the unread features of its level.
    """

    level: int
    combine_fn: str
    input_offsets: tuple[int, int]
    is_output: bool


def build_block_specs(
    block_specs: Iterable[Any] | None, min_level: int, max_level: int
) -> list[BlockSpec]:
    """`block_specs` (None for `NASFPN_BLOCK_SPECS`) as checked `BlockSpec`s.

    Raises:
      ConfigError: If a spec is malformed, has a level outside `min_level..max_level`, an
        unknown `combine_fn` or an offset past the features built so far, or if the last
        `max_level - min_level + 1` blocks do not cover each level once.
    """
    raw = list(block_specs) if block_specs else list(NASFPN_BLOCK_SPECS)
    num_levels = max_level - min_level + 1
    where = "NASFPN `block_specs`"
    specs = []
    for index, spec in enumerate(raw):
        try:
            level, combine_fn, offsets, is_output = spec
            offsets = tuple(int(offset) for offset in offsets)
            level = int(level)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}[{index}] = {spec!r} must be (level, combine_fn, "
                "(input_offset0, input_offset1), is_output)"
            ) from None
        if combine_fn not in COMBINE_FNS:
            raise ConfigError(
                f"{where}[{index}]: combine_fn {combine_fn!r} is not one of "
                + ", ".join(COMBINE_FNS)
            )
        if not min_level <= level <= max_level:
            raise ConfigError(
                f"{where}[{index}]: level {level} is outside min_level..max_level "
                f"({min_level}..{max_level})"
            )
        available = num_levels + index
        if len(offsets) != 2 or any(not 0 <= offset < available for offset in offsets):
            raise ConfigError(
                f"{where}[{index}]: input_offsets {offsets} must be two indices of the "
                f"{available} features before it (0 to {available - 1})"
            )
        specs.append(BlockSpec(level, str(combine_fn), offsets, bool(is_output)))
    last_levels = sorted(spec.level for spec in specs[-num_levels:])
    if last_levels != list(range(min_level, max_level + 1)):
        raise ConfigError(
            f"{where}: the last {num_levels} blocks are the cell's outputs and must cover "
            f"levels {min_level}..{max_level} once each; they have levels {last_levels}"
        )
    return specs


def _global_attention(coarse, fine):
    """`coarse + fine * sigmoid(global max of coarse)` (NAS-FPN's attention merge)."""
    gate = ops.sigmoid(ops.max(coarse, axis=(1, 2), keepdims=True))
    return coarse + fine * gate


@keras.saving.register_keras_serializable(package="garden_vision")
class NASFPN(PyramidDecoder):
    """NAS-FPN: the searched pyramid cell stacked `num_repeats` times on a backbone's levels.

    Called on the backbone's dict of features (the keys of `input_specs`); returns levels
    `min_level..max_level` with `num_filters` channels each.

    Args:
      input_specs: The backbone's `output_specs` (level -> shape). Keys that are not
        levels (e.g. `"pre_logits"`) are accepted and ignored.
      min_level: The lowest output level; the backbone must report it.
      max_level: The highest output level; levels above the backbone's are max-pooled.
      block_specs: The cell, `(level, combine_fn, (input_offset0, input_offset1),
        is_output)` per block, or `BlockSpec`s; None for `NASFPN_BLOCK_SPECS` (which needs
        five levels, e.g. 3 to 7).
      num_filters: Channels of every feature inside the cell and of every output.
      num_repeats: How many cells are stacked.
      use_separable_conv: Depthwise-separable convolutions instead of regular ones.
      activation: The activation's Model Garden name, applied before each block's
        convolution.
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      kernel_initializer: Initializer of the convolution kernels (Model Garden's He-normal
        fan-out initializer by default).
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      bias_regularizer: Regularizer of the convolution biases, or None.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: If the backbone lacks `min_level`, the block specs are malformed or do
        not fit the levels, `num_filters` or `num_repeats` is not positive, or known level
        sizes do not halve level by level.

    Example:

        backbone = ResNet(model_id=50, input_specs=InputSpec(shape=[None, 640, 640, 3]))
        nasfpn = NASFPN(input_specs=backbone.output_specs, num_repeats=7)
        features = nasfpn(backbone(images))  # {"3": [B, 80, 80, 256], ..., "7": [B, 5, 5, 256]}
    """

    def __init__(
        self,
        input_specs: Mapping[str, Any],
        min_level: int = 3,
        max_level: int = 7,
        block_specs: Sequence[Any] | None = None,
        num_filters: int = 256,
        num_repeats: int = 5,
        use_separable_conv: bool = False,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_initializer: str | dict | keras.initializers.Initializer = (
            NASFPN_KERNEL_INITIALIZER
        ),
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        bias_regularizer: keras.regularizers.Regularizer | dict | None = None,
        **kwargs: Any,
    ):
        name = type(self).__name__
        specs = normalize_input_specs(input_specs, name)
        levels = numeric_levels(specs, name)
        if min_level > max_level:
            raise ConfigError(f"{name}: min_level {min_level} is above max_level {max_level}")
        for argument, value in (("num_filters", num_filters), ("num_repeats", num_repeats)):
            if value <= 0:
                raise ConfigError(f"{name} `{argument}` = {value!r} must be > 0")
        if min_level not in levels:
            raise ConfigError(
                f"{name}: the backbone reports levels {levels}, not min_level {min_level}"
            )
        check_pyramid_sizes(specs, levels, name)
        cell = build_block_specs(block_specs, min_level, max_level)
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

        def resample(x, source_level: int, level: int, layer_name: str):
            if source_level < level:
                stride = 2 ** (level - source_level)
                return keras.layers.MaxPooling2D(
                    pool_size=stride, strides=stride, padding="same", name=f"{layer_name}_pool"
                )(x)
            if source_level > level:
                return NearestUpsampling(2 ** (source_level - level), name=f"{layer_name}_up")(x)
            return x

        inputs = feature_inputs(specs)
        feats = []
        for level in range(min_level, max_level + 1):
            if str(level) in inputs:
                x = inputs[str(level)]
                if x.shape[-1] != num_filters:
                    x = layers.norm(layers.conv(x, 1, f"input_{level}_conv"), f"input_{level}_norm")
                else:
                    # Cast to the compute dtype, as every other path does through a layer.
                    x = keras.layers.Identity(name=f"input_{level}_identity")(x)
            else:
                x = resample(feats[-1], level - 1, level, f"input_{level}")
            feats.append(x)

        num_levels = max_level - min_level + 1
        for repeat in range(num_repeats):
            feat_levels = list(range(min_level, max_level + 1))
            outgoing = [0] * len(feats)
            for index, spec in enumerate(cell):
                prefix = f"cell_{repeat}_block_{index}"
                offset0, offset1 = spec.input_offsets
                node0 = resample(feats[offset0], feat_levels[offset0], spec.level, f"{prefix}_in0")
                node1 = resample(feats[offset1], feat_levels[offset1], spec.level, f"{prefix}_in1")
                outgoing[offset0] += 1
                outgoing[offset1] += 1
                if spec.combine_fn == "sum":
                    x = keras.layers.Add(name=f"{prefix}_sum")([node0, node1])
                elif feat_levels[offset0] >= feat_levels[offset1]:
                    x = _global_attention(node0, node1)
                else:
                    x = _global_attention(node1, node0)
                if spec.is_output:
                    for offset, (feat, feat_level) in enumerate(
                        zip(feats, feat_levels, strict=True)
                    ):
                        if outgoing[offset] == 0 and feat_level == spec.level:
                            outgoing[offset] += 1
                            x = x + feat
                x = get_activation(activation, name=f"{prefix}_activation")(x)
                x = layers.norm(layers.conv(x, 3, f"{prefix}_conv"), f"{prefix}_norm")
                feats.append(x)
                feat_levels.append(spec.level)
                outgoing.append(0)
            by_level = dict(zip(feat_levels[-num_levels:], feats[-num_levels:], strict=True))
            feats = [by_level[level] for level in range(min_level, max_level + 1)]
        outputs = {
            str(level): feats[index] for index, level in enumerate(range(min_level, max_level + 1))
        }

        super().__init__(
            inputs=inputs,
            outputs=outputs,
            config={
                "input_specs": specs,
                "min_level": min_level,
                "max_level": max_level,
                "block_specs": [
                    [s.level, s.combine_fn, list(s.input_offsets), s.is_output] for s in cell
                ],
                "num_filters": num_filters,
                "num_repeats": num_repeats,
                "use_separable_conv": use_separable_conv,
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
        self.block_specs = cell
        self.num_filters = num_filters
        self.num_repeats = num_repeats
        self.use_separable_conv = use_separable_conv
        self.activation = activation
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer


_DEFAULTS = NASFPNConfig()


def build_nasfpn(
    input_specs: Mapping[str, Any],
    norm_activation_config: NormActivation | None = None,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    min_level: int | None = None,
    max_level: int | None = None,
    *,
    num_filters: int = _DEFAULTS.num_filters,
    num_repeats: int = _DEFAULTS.num_repeats,
    use_separable_conv: bool = _DEFAULTS.use_separable_conv,
) -> NASFPN:
    """Builds a `NASFPN` (the `nasfpn` entry of `garden.decoders`).

    The keyword settings are the fields of `configs.decoders.NASFPN`; `min_level` and
    `max_level` come from the model config.

    Args:
      input_specs: The backbone's `output_specs` (level -> shape).
      norm_activation_config: Activation and batch-normalization settings (defaults if
        None).
      l2_regularizer: Kernel regularizer of every convolution (weight decay), or None.
      min_level: The lowest output level; None for 3, Model Garden's default.
      max_level: The highest output level; None for 7, Model Garden's default (the
        published cell needs five levels).
      num_filters, num_repeats, use_separable_conv: As in `NASFPN`.

    Raises:
      ConfigError: For settings `NASFPN` rejects.
    """
    norm_activation = norm_activation_config or NormActivation()
    return NASFPN(
        input_specs=input_specs,
        min_level=3 if min_level is None else min_level,
        max_level=7 if max_level is None else max_level,
        num_filters=num_filters,
        num_repeats=num_repeats,
        use_separable_conv=use_separable_conv,
        activation=norm_activation.activation,
        use_sync_bn=norm_activation.use_sync_bn,
        norm_momentum=norm_activation.norm_momentum,
        norm_epsilon=norm_activation.norm_epsilon,
        kernel_regularizer=l2_regularizer,
    )
