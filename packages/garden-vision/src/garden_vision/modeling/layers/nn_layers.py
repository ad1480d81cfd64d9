"""Small layers and helpers that several backbones share.

- `get_activation(name)`: Model Garden's activation names as Keras layers.
- `batch_norm(...)`: a BatchNormalization layer from `NormActivation` settings.
- `BatchNormalization`: Keras' layer, computing 4-D channels-last batches with TensorFlow's
  fused kernel (about 3.5x faster than Keras 3's composite ops on a CPU).
- `make_divisible(value, divisor)`: the channel rounding of MobileNet and EfficientNet.
- `StochasticDepth`: drops a residual branch per example while training.
- `SqueezeExcitation`: channel attention (Hu et al., 2018).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from garden_vision.modeling.serialization import serialize_initializer, serialize_regularizer

# Model Garden's activation names mapped to Keras ones.
_ACTIVATIONS = {
    "relu": "relu",
    "relu6": "relu6",
    "swish": "silu",
    "silu": "silu",
    "hard_swish": "hard_silu",
    "hard_silu": "hard_silu",
    "hard_sigmoid": "hard_sigmoid",
    "sigmoid": "sigmoid",
    "gelu": "gelu",
    "tanh": "tanh",
    "elu": "elu",
    "leaky_relu": "leaky_relu",
    "mish": "mish",
    "identity": "linear",
    "linear": "linear",
}


def get_activation(identifier: str, **kwargs: Any) -> keras.layers.Layer:
    """Returns an activation layer for a Model Garden activation name.

    Args:
      identifier: `relu`, `relu6`, `swish`, `hard_swish`, `hard_sigmoid`, `sigmoid`, `gelu`,
        `tanh`, `elu`, `leaky_relu`, `mish` or `identity`.
      **kwargs: Passed to the layer (e.g. `name`).

    Raises:
      ValueError: For an unknown name, listing the known ones.
    """
    key = identifier.lower()
    if key not in _ACTIVATIONS:
        raise ValueError(
            f"unknown activation {identifier!r}; expected one of {', '.join(sorted(_ACTIVATIONS))}"
        )
    return keras.layers.Activation(_ACTIVATIONS[key], **kwargs)


def activation_fn(identifier: str):
    """Returns the activation function (not a layer) for a Model Garden activation name."""
    get_activation(identifier)  # Validates the name.
    return keras.activations.get(_ACTIVATIONS[identifier.lower()])


def _single_replica() -> bool:
    """Whether batch statistics synchronized across replicas are the local ones."""
    context = tf.distribute.get_replica_context()
    # In a cross-replica context Keras computes local statistics as well.
    return context is None or context.num_replicas_in_sync == 1


@keras.saving.register_keras_serializable(package="garden_vision")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed with TensorFlow's fused kernel.

    Same arguments, weights and results as Keras' layer (within float rounding; like
    tf.keras' fused layer, the moving variance is updated with the unbiased batch
    variance). Keras 3 normalizes with composite ops (moments, then normalization); for
    4-D channels-last inputs this layer calls `FusedBatchNormV3` instead, which trains a
    ResNet-50 noticeably faster. A synchronized layer (`use_sync_bn`, set by most Model
    Garden detection and segmentation recipes) fuses too when its replica is the only one
    in sync (no distribution strategy, or a one-device one): the batch statistics are then
    the local ones. Synchronized layers under several replicas, masked, renormalized or
    non-4-D cases, and a `training` flag that is a tensor, use Keras' implementation.
    """

    def _can_fuse(self, inputs, training, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and (not self.synchronized or _single_replica())
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and (training is None or isinstance(training, bool))
        )

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        training = bool(training) and self.trainable
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = self.gamma.value if self.scale else tf.ones([channels], tf.float32)
        beta = self.beta.value if self.center else tf.zeros([channels], tf.float32)
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=tf.cast(gamma, tf.float32),
            offset=tf.cast(beta, tf.float32),
            mean=tf.cast(self.moving_mean.value, tf.float32),
            variance=tf.cast(self.moving_variance.value, tf.float32),
            epsilon=self.epsilon,
            # In training, the kernel returns the updated moving statistics.
            exponential_avg_factor=1.0 - self.momentum if training else 1.0,
            data_format="NHWC",
            is_training=training,
        )
        if training:
            self.moving_mean.assign(tf.cast(mean, self.moving_mean.dtype))
            self.moving_variance.assign(tf.cast(variance, self.moving_variance.dtype))
        return ops.cast(outputs, self.compute_dtype)


def batch_norm(
    momentum: float = 0.99,
    epsilon: float = 1e-3,
    synchronized: bool = False,
    trainable: bool = True,
    **kwargs: Any,
) -> keras.layers.BatchNormalization:
    """Returns a channels-last batch-normalization layer (the fused `BatchNormalization`).

    Args:
      momentum: Momentum of the moving statistics (`NormActivation.norm_momentum`).
      epsilon: Variance epsilon (`NormActivation.norm_epsilon`).
      synchronized: Synchronize statistics across replicas (`NormActivation.use_sync_bn`).
      trainable: Whether the layer trains (ResNet's `bn_trainable`).
      **kwargs: Passed to the layer (e.g. `name`, `gamma_initializer`).
    """
    return BatchNormalization(
        axis=-1,
        momentum=momentum,
        epsilon=epsilon,
        synchronized=synchronized,
        trainable=trainable,
        **kwargs,
    )


def make_divisible(
    value: float, divisor: int = 8, min_value: int | None = None, round_down_protect: bool = True
) -> int:
    """Rounds a channel count to a multiple of `divisor` (MobileNet's rule).

    The result is at least `min_value` (default `divisor`) and, with `round_down_protect`,
    never more than 10 % below `value`.
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if round_down_protect and new_value < 0.9 * value:
        new_value += divisor
    return int(new_value)


@keras.saving.register_keras_serializable(package="garden_vision")
class StochasticDepth(keras.layers.Layer):
    """Stochastic depth (Huang et al., 2016): drops the residual branch of whole examples.

    While training, each example's input is zeroed with probability `drop_rate` and
    otherwise scaled by `1 / (1 - drop_rate)`; at inference it passes unchanged. Apply it to
    the residual branch before adding the shortcut.

    Args:
      drop_rate: The probability of dropping the branch, in [0, 1).
      seed: Seed of the random generator, or None.
    """

    def __init__(self, drop_rate: float, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"StochasticDepth drop_rate must be in [0, 1), got {drop_rate}")
        self.drop_rate = float(drop_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.drop_rate == 0.0:
            return inputs
        keep = 1.0 - self.drop_rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        mask = ops.floor(
            keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=inputs.dtype)
        )
        return inputs / ops.cast(keep, inputs.dtype) * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "drop_rate": self.drop_rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="garden_vision")
class SqueezeExcitation(keras.layers.Layer):
    """Squeeze-and-excitation (Hu et al., 2018) on channels-last feature maps.

    Global average pooling, a 1x1 reduction to `max(1, in_filters * se_ratio)` channels
    (rounded with `make_divisible(divisor)` when `divisible_by` > 1), `activation`, a 1x1
    expansion to `out_filters` and `gating_activation`, which then scales the input.

    Args:
      in_filters: Channels the reduction is computed from.
      out_filters: Channels of the input (and of the gate).
      se_ratio: Reduction ratio, in (0, 1].
      divisible_by: Rounds the reduced width to a multiple of this (1: plain rounding).
      activation: Activation of the reduction (a Model Garden name).
      gating_activation: Activation of the gate (`sigmoid`, or `hard_sigmoid` in MobileNetV3).
      kernel_initializer: Initializer of both 1x1 kernels.
      kernel_regularizer: Regularizer of both kernels.
      bias_regularizer: Regularizer of both biases.
    """

    def __init__(
        self,
        in_filters: int,
        out_filters: int,
        se_ratio: float,
        divisible_by: int = 1,
        activation: str = "relu",
        gating_activation: str = "sigmoid",
        kernel_initializer: str | Any = "variance_scaling",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.in_filters = in_filters
        self.out_filters = out_filters
        self.se_ratio = se_ratio
        self.divisible_by = divisible_by
        self.activation = activation
        self.gating_activation = gating_activation
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        if divisible_by > 1:
            reduced = make_divisible(in_filters * se_ratio, divisible_by)
        else:
            reduced = max(1, int(in_filters * se_ratio))
        common = {
            "kernel_size": 1,
            "use_bias": True,
            "kernel_initializer": kernel_initializer,
            "kernel_regularizer": kernel_regularizer,
            "bias_regularizer": bias_regularizer,
            "dtype": self.dtype_policy,
        }
        self.reduce = keras.layers.Conv2D(reduced, name="reduce", **common)
        self.expand = keras.layers.Conv2D(out_filters, name="expand", **common)
        self.reduce_activation = get_activation(activation, dtype=self.dtype_policy)
        self.gate = get_activation(gating_activation, dtype=self.dtype_policy)

    def build(self, input_shape):
        pooled = (input_shape[0], 1, 1, input_shape[-1])
        self.reduce.build(pooled)
        self.expand.build(self.reduce.compute_output_shape(pooled))

    def call(self, inputs):
        x = ops.mean(inputs, axis=(1, 2), keepdims=True)
        x = self.reduce_activation(self.reduce(x))
        return inputs * self.gate(self.expand(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "in_filters": self.in_filters,
            "out_filters": self.out_filters,
            "se_ratio": self.se_ratio,
            "divisible_by": self.divisible_by,
            "activation": self.activation,
            "gating_activation": self.gating_activation,
            "kernel_initializer": serialize_initializer(self.kernel_initializer),
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "bias_regularizer": serialize_regularizer(self.bias_regularizer),
        }
