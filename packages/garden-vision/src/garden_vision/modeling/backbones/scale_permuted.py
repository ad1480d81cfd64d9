"""The scale-permuted network that SpineNet and SpineNet-Mobile share, around their blocks.

Both backbones (`spinenet`, `spinenet_mobile`) wire their blocks the same way and differ
only in the blocks, the stem and how a cross-scale connection resamples:

- `ConvNormLayers` builds their bias-free convolutions, batch normalizations and
  activations, with one backbone's settings.
- `build_scale_permuted_blocks` wires the blocks of the `BlockSpec`s after the stem: each
  block resamples its two parents to its level and width, sums them (an output block also
  adds every earlier block of its level and width that no block reads yet), applies the
  activation and runs its block group; block `i` (1-based) of `n` has stochastic depth
  rate `init_stochastic_depth_rate * i / n`.
- `build_endpoints` maps the output blocks of `min_level..max_level` to the outputs.

`check_settings` validates the arguments both constructors check. The layer names are
those both backbones always had, so checkpoints keep their variable paths.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import keras

from garden_core.config import ConfigError
from garden_vision.modeling.layers.nn_layers import batch_norm, get_activation

if TYPE_CHECKING:
    from garden_vision.modeling.backbones.spinenet import BlockSpec


class Node(NamedTuple):
    """A block's output inside the network being built.

    Attributes:
      tensor: The block's output.
      level: The block's level.
      block_fn: The block's type (`bottleneck`, `residual` or `mbconv`).
    """

    tensor: Any
    level: int
    block_fn: str

    @property
    def channels(self) -> int:
        """The channels of the block's output."""
        return self.tensor.shape[-1]


@dataclasses.dataclass(frozen=True)
class ConvNormLayers:
    """Builds a backbone's convolutions, batch normalizations and activations.

    Attributes:
      kernel_initializer: Initializer of the convolution kernels (serialized).
      kernel_regularizer: Regularizer of the convolution kernels, or None.
      bias_regularizer: Regularizer of the biases, or None.
      activation: The activation's Model Garden name.
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
    """

    kernel_initializer: Any
    kernel_regularizer: keras.regularizers.Regularizer | None
    bias_regularizer: keras.regularizers.Regularizer | None
    activation: str
    use_sync_bn: bool
    norm_momentum: float
    norm_epsilon: float

    def block_arguments(self) -> dict[str, Any]:
        """The settings as keyword arguments of a block (`BottleneckBlock`, ...)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def conv(self, x, filters: int, kernel_size: int, strides: int, name: str):
        """A "same"-padded convolution without bias, named `name`."""
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            name=name,
        )(x)

    def norm(self, x, name: str):
        """Batch normalization, named `name`."""
        return batch_norm(
            momentum=self.norm_momentum,
            epsilon=self.norm_epsilon,
            synchronized=self.use_sync_bn,
            name=name,
        )(x)

    def norm_activation(self, x, name: str):
        """Batch normalization named `name`, then the activation."""
        return get_activation(self.activation)(self.norm(x, name))

    def conv_norm_activation(self, x, filters: int, kernel_size: int, strides: int, name: str):
        """`conv` named `{name}_conv`, then `norm_activation` named `{name}_norm`."""
        x = self.conv(x, filters, kernel_size, strides, f"{name}_conv")
        return self.norm_activation(x, f"{name}_norm")


def check_settings(
    name: str, positive: Mapping[str, float], init_stochastic_depth_rate: float
) -> None:
    """Raises a `ConfigError` unless every value of `positive` is > 0 and the rate in [0, 1)."""
    for argument, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{name} `{argument}` = {value!r} must be > 0")
    if not 0.0 <= init_stochastic_depth_rate < 1.0:
        raise ConfigError(
            f"{name} `init_stochastic_depth_rate` = {init_stochastic_depth_rate!r} "
            "must be in [0, 1)"
        )


def build_scale_permuted_blocks(
    stem: Sequence[Node],
    block_specs: Sequence[BlockSpec],
    levels: Sequence[int],
    filters: Sequence[int],
    resample: Callable[[Node, int, int, str, str], Any],
    block_group: Callable[[Any, int, str, float | None, str], Any],
    activation: str,
    init_stochastic_depth_rate: float,
) -> dict[int, Any]:
    """Wires the scale-permuted blocks after the stem; returns the output blocks by level.

    Block `i` (1-based) names its layers `scale_permuted_block_{i}...`.

    Args:
      stem: The stem's blocks (the first offsets of the specs).
      block_specs: The blocks, in order.
      levels: The level each block is built at.
      filters: The filters of each block's group.
      resample: `(parent, level, filters, block_fn, name)` -> the parent resampled to the
        level and to the input width of a `block_fn` group of `filters`.
      block_group: `(x, filters, block_fn, drop_rate, name)` -> the block group's output.
      activation: The activation's Model Garden name, applied after each sum.
      init_stochastic_depth_rate: Stochastic depth drop rate of the last block.
    """
    nodes = list(stem)
    outgoing = [0] * len(nodes)
    outputs_by_level = {}
    for index, (spec, level, block_filters) in enumerate(
        zip(block_specs, levels, filters, strict=True)
    ):
        number = index + 1
        parents = []
        for slot, offset in enumerate(spec.input_offsets):
            parents.append(
                resample(
                    nodes[offset],
                    level,
                    block_filters,
                    spec.block_fn,
                    f"scale_permuted_block_{number}_input{slot}",
                )
            )
            outgoing[offset] += 1
        if spec.is_output:
            # Blocks of this level and width that no block reads join the output.
            for offset, node in enumerate(nodes):
                if (
                    outgoing[offset] == 0
                    and node.level == level
                    and node.channels == parents[0].shape[-1]
                ):
                    parents.append(node.tensor)
                    outgoing[offset] += 1
        x = keras.layers.Add(name=f"scale_permuted_block_{number}_sum")(parents)
        x = get_activation(activation)(x)
        drop_rate = init_stochastic_depth_rate * number / len(block_specs) or None
        x = block_group(
            x, block_filters, spec.block_fn, drop_rate, f"scale_permuted_block_{number}"
        )
        nodes.append(Node(x, level, spec.block_fn))
        outgoing.append(0)
        if spec.is_output:
            outputs_by_level[level] = x
    return outputs_by_level


def build_endpoints(
    outputs_by_level: Mapping[int, Any],
    min_level: int,
    max_level: int,
    num_filters: int,
    layers: ConvNormLayers,
) -> dict[str, Any]:
    """Levels `min_level..max_level` (keyed `"3"` ...): a 1x1 convolution, BN, activation."""
    return {
        str(level): layers.conv_norm_activation(
            outputs_by_level[level], num_filters, 1, 1, f"endpoint_{level}"
        )
        for level in range(min_level, max_level + 1)
    }
