"""Reversible residual blocks (Gomez et al., 2017) for RevNet.

- `ResidualInner` and `BottleneckResidualInner`: the residual functions `F` and `G` (two
  3x3 convolutions, or a 1x1 / 3x3 / 4x-expanding 1x1 bottleneck), with an optional
  batch-normalization + activation before the first convolution (`batch_norm_first`).
- `ReversibleBlock`: splits its input by channels into `(x1, x2)` and computes
  `z1 = x1 + F(x2)`, `y2 = x2 + G(z1)`, returning `[z1, y2]`.

When the block keeps the resolution and the channel count it is invertible
(`x2 = y2 - G(y1)`, `x1 = y1 - F(x2)`), and by default its gradient is computed the RevNet
way (Algorithm 1 of the paper) through `tf.custom_gradient`: the backward pass rebuilds
`x2` from the block's output and recomputes `F` and `G`, so none of the activations inside
`F` and `G` are kept from the forward pass (under `tf.function`, as in `fit`, they are
freed as soon as the forward pass has used them). Only the block's output is kept, which
the next layer holds anyway. Blocks that downsample or widen (the first block of each
group) are not invertible; they average-pool and zero-pad the shortcut halves and use
ordinary automatic differentiation, as in the paper.

The custom gradient runs `F` and `G` with `Layer.stateless_call`, so it sees their weights
as tensors rather than variables, and the batch-normalization statistics are updated once,
from the forward pass (the recomputation in the backward pass does not touch them).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from garden_vision.modeling.layers.nn_layers import batch_norm, get_activation
from garden_vision.modeling.serialization import serialize_initializer, serialize_regularizer

BLOCK_TYPES = ("residual", "bottleneck")


class _InnerBlock(keras.layers.Layer):
    """The layers of a residual function, run in sequence.

    Subclasses set `expansion` (output channels per filter) and create their layers, in
    order, in `_make_layers`.
    """

    expansion = 1

    def __init__(
        self,
        filters: int,
        strides: int,
        batch_norm_first: bool = True,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.batch_norm_first = bool(batch_norm_first)
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.activation = activation
        self.use_sync_bn = bool(use_sync_bn)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.out_filters = self.filters * self.expansion
        layers: list[keras.layers.Layer] = []
        if self.batch_norm_first:
            layers += [self._norm("norm0"), self._activation()]
        layers += self._make_layers()
        # A `Sequential`, not a list: `tf.train.Checkpoint` does not see layers that a Keras 3
        # layer holds in a list attribute, so their weights would be missing from checkpoints.
        self.sequence = keras.Sequential(layers, name="sequence")

    def _conv(self, filters: int, kernel_size: int, strides: int, name: str):
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _norm(self, name: str) -> keras.layers.BatchNormalization:
        return batch_norm(
            momentum=self.norm_momentum,
            epsilon=self.norm_epsilon,
            synchronized=self.use_sync_bn,
            dtype=self.dtype_policy,
            name=name,
        )

    def _activation(self) -> keras.layers.Layer:
        return get_activation(self.activation, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.sequence.build(tuple(input_shape))
        self.built = True

    def call(self, inputs, training=None):
        return self.sequence(inputs, training=training)

    def compute_output_shape(self, input_shape):
        return self.sequence.compute_output_shape(tuple(input_shape))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "batch_norm_first": self.batch_norm_first,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "activation": self.activation,
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
        }


@keras.saving.register_keras_serializable(package="garden_vision")
class ResidualInner(_InnerBlock):
    """A RevNet residual function: `[BN - act -] conv3x3(strides) - BN - act - conv3x3`.

    Args:
      filters: Channels of both convolutions and of the output.
      strides: Stride of the first convolution.
      batch_norm_first: Start with batch normalization and the activation (pre-activation).
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels, or None.
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    expansion = 1

    def _make_layers(self) -> list[keras.layers.Layer]:
        return [
            self._conv(self.filters, 3, self.strides, "conv1"),
            self._norm("norm1"),
            self._activation(),
            self._conv(self.filters, 3, 1, "conv2"),
        ]


@keras.saving.register_keras_serializable(package="garden_vision")
class BottleneckResidualInner(_InnerBlock):
    """A RevNet bottleneck function with `4 * filters` output channels.

    `[BN - act -] conv1x1(strides) - BN - act - conv3x3 - BN - act - conv1x1(4 * filters)`.

    Args:
      filters: Channels of the first two convolutions; the output has `4 * filters`.
      strides: Stride of the first (1x1) convolution, as in Model Garden.
      batch_norm_first: Start with batch normalization and the activation (pre-activation).
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels, or None.
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    expansion = 4

    def _make_layers(self) -> list[keras.layers.Layer]:
        return [
            self._conv(self.filters, 1, self.strides, "conv1"),
            self._norm("norm1"),
            self._activation(),
            self._conv(self.filters, 3, 1, "conv2"),
            self._norm("norm2"),
            self._activation(),
            self._conv(self.out_filters, 1, 1, "conv3"),
        ]


_INNER_BLOCKS = {"residual": ResidualInner, "bottleneck": BottleneckResidualInner}


@keras.saving.register_keras_serializable(package="garden_vision")
class ReversibleBlock(keras.layers.Layer):
    """A reversible residual block: `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)` on channel halves.

    The input's channels are split in two equal halves `x1, x2`. `F` (with the block's
    stride) and `G` are `ResidualInner` or `BottleneckResidualInner` functions with
    `filters` filters, so the output has `2 * filters` channels (`8 * filters` for
    bottlenecks). When the stride is 1 and the channels are unchanged the block is
    invertible and, with `manual_gradients`, back-propagates by reconstructing its input
    from its output (see the module docstring); otherwise the halves are average-pooled by
    the stride and zero-padded on both sides to the new width before being added, and
    gradients are ordinary.

    Args:
      block_type: `residual` (two 3x3 convolutions) or `bottleneck`.
      filters: Filters of `F` and `G` (their output channels are 4x that for bottlenecks).
      strides: Stride of `F` (and of the block).
      batch_norm_first: Pre-activation (batch normalization and activation) at the start
        of `F` and `G`.
      manual_gradients: Reconstruct the input in the backward pass instead of keeping the
        activations of `F` and `G` (only used by invertible blocks); False uses ordinary
        automatic differentiation, with the same gradients.
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels, or None.
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    def __init__(
        self,
        block_type: str,
        filters: int,
        strides: int = 1,
        batch_norm_first: bool = True,
        manual_gradients: bool = True,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        **kwargs: Any,
    ):
        if block_type not in _INNER_BLOCKS:
            raise ValueError(
                f"ReversibleBlock block_type {block_type!r} is not one of {BLOCK_TYPES}"
            )
        # The layer reads its variables itself (to hand them to the custom gradient), so it
        # must see them uncast; `F` and `G`'s own layers still cast under mixed precision.
        kwargs.pop("autocast", None)
        super().__init__(autocast=False, **kwargs)
        self.block_type = block_type
        self.filters = int(filters)
        self.strides = int(strides)
        self.batch_norm_first = bool(batch_norm_first)
        self.manual_gradients = bool(manual_gradients)
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.activation = activation
        self.use_sync_bn = bool(use_sync_bn)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        inner_kwargs = {
            "filters": self.filters,
            "batch_norm_first": self.batch_norm_first,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "activation": activation,
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": norm_momentum,
            "norm_epsilon": norm_epsilon,
            "dtype": self.dtype_policy,
        }
        inner = _INNER_BLOCKS[block_type]
        self.f = inner(strides=self.strides, name="f", **inner_kwargs)
        self.g = inner(strides=1, name="g", **inner_kwargs)
        self.half_filters = self.filters * inner.expansion
        self.invertible = False

    def build(self, input_shape):
        shape = tuple(input_shape)
        channels = shape[-1]
        if channels is None or channels % 2:
            raise ValueError(f"ReversibleBlock needs an even channel count, got {shape}")
        if channels // 2 > self.half_filters or (self.half_filters - channels // 2) % 2:
            raise ValueError(
                f"ReversibleBlock with {self.half_filters} channels per half cannot widen "
                f"{channels // 2} input channels per half (zero padding needs an even "
                "difference)"
            )
        half = (*shape[:-1], channels // 2)
        self.f.build(half)
        f_shape = self.f.compute_output_shape(half)
        self.g.build(f_shape)
        self.invertible = self.strides == 1 and channels == 2 * self.half_filters
        self.built = True

    def _widen(self, x):
        """The shortcut of a non-invertible block: average pooling and zero padding."""
        if self.strides > 1:
            x = ops.average_pool(x, self.strides, self.strides, padding="same")
        extra = self.half_filters - x.shape[-1]
        if extra:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra // 2]])
        return x

    def call(self, inputs, training=None):
        if self.invertible and self.manual_gradients:
            variables = [
                *self.f.trainable_variables,
                *self.f.non_trainable_variables,
                *self.g.trainable_variables,
                *self.g.non_trainable_variables,
            ]
            values = [ops.convert_to_tensor(v.value) for v in variables]
            # Called on its own under a mixed policy, the layer sees its variables cast to
            # the compute dtype; differentiating those would lose precision, so it falls
            # back to automatic differentiation (inside a model it always sees them uncast).
            if all(
                keras.backend.standardize_dtype(value.dtype) == v.dtype
                for v, value in zip(variables, values, strict=True)
            ):
                return self._reversible_call(inputs, values, bool(training))
        x1, x2 = ops.split(inputs, 2, axis=-1)
        z1 = self._widen(x1) + self.f(x2, training=training)
        y2 = self._widen(x2) + self.g(z1, training=training)
        return ops.concatenate([z1, y2], axis=-1)

    def _reversible_call(self, inputs, values: list, training: bool):
        """`call` with Algorithm 1's gradient; `values` are those of f's and g's variables."""
        f, g = self.f, self.g
        sizes = [
            len(f.trainable_variables),
            len(f.non_trainable_variables),
            len(g.trainable_variables),
            len(g.non_trainable_variables),
        ]

        def unpack(state):
            parts, start = [], 0
            for size in sizes:
                parts.append(list(state[start : start + size]))
                start += size
            return parts

        @tf.custom_gradient
        def reversible(x, *state):
            fw, fs, gw, gs = unpack(state)
            # Nothing computed here is recorded for differentiation: `grad` recomputes it.
            x1, x2 = ops.split(ops.stop_gradient(x), 2, axis=-1)
            fw_const = [ops.stop_gradient(w) for w in fw]
            gw_const = [ops.stop_gradient(w) for w in gw]
            f_x2, fs_new = f.stateless_call(fw_const, fs, x2, training=training)
            z1 = x1 + f_x2
            g_z1, gs_new = g.stateless_call(gw_const, gs, z1, training=training)
            y2 = x2 + g_z1
            y = ops.concatenate([z1, y2], axis=-1)

            def grad(dy, *unused_state_gradients):
                dy1, dy2 = ops.split(dy, 2, axis=-1)
                # In a graph, the recomputation must wait for the upstream gradient: run
                # early, it would hold its activations as long as storing them would.
                with tf.control_dependencies([dy]):
                    y1, y2_out = ops.split(tf.identity(ops.stop_gradient(y)), 2, axis=-1)
                # Algorithm 1: G on y1 gives x2 back; F on x2 then gives the rest.
                with tf.GradientTape(watch_accessed_variables=False) as g_tape:
                    g_tape.watch([y1, *gw])
                    g_y1, _ = g.stateless_call(gw, gs, y1, training=training)
                x2_rebuilt = ops.stop_gradient(y2_out - g_y1)
                with tf.GradientTape(watch_accessed_variables=False) as f_tape:
                    f_tape.watch([x2_rebuilt, *fw])
                    f_x2, _ = f.stateless_call(fw, fs, x2_rebuilt, training=training)
                dz1_from_g, *dgw = g_tape.gradient(g_y1, [y1, *gw], output_gradients=dy2)
                dz1 = dy1 + dz1_from_g
                dx2_from_f, *dfw = f_tape.gradient(f_x2, [x2_rebuilt, *fw], output_gradients=dz1)
                dx = ops.concatenate([dz1, dy2 + dx2_from_f], axis=-1)
                return [dx, *dfw, *([None] * len(fs)), *dgw, *([None] * len(gs))]

            # Training updates the batch-normalization statistics: return the new values
            # of whatever changed, to be assigned outside.
            for variable, old, new in zip(frozen_variables, fs + gs, fs_new + gs_new, strict=True):
                if new is not old:
                    updated.append((variable, new))
            return [y, *(new for _, new in updated)], grad

        frozen_variables = [*f.non_trainable_variables, *g.non_trainable_variables]
        updated: list = []
        y, *new_values = reversible(inputs, *values)
        for (variable, _), value in zip(updated, new_values, strict=True):
            variable.assign(value)
        return y

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        half = (*shape[:-1], shape[-1] // 2 if shape[-1] else None)
        f_shape = self.f.compute_output_shape(half)
        return (*f_shape[:-1], 2 * f_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "block_type": self.block_type,
            "filters": self.filters,
            "strides": self.strides,
            "batch_norm_first": self.batch_norm_first,
            "manual_gradients": self.manual_gradients,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "activation": self.activation,
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
        }
