"""RevNet (Gomez et al., 2017): a residual network of reversible blocks.

`RevNet` is Model Garden's `backbones.RevNet`: a 7x7/2 convolution stem with batch
normalization, the activation and 3x3/2 max pooling, then groups of
`layers.reversible_blocks.ReversibleBlock`s, reporting each group's output as a level
(`"2"` at stride 4, and so on). The depths follow Model Garden's `REVNET_SPECS`:
RevNet-38 (three groups of basic blocks, levels 2 to 4) and RevNet-56 / RevNet-104 (four
groups of bottleneck blocks, levels 2 to 5). Every block that keeps its input's shape
back-propagates by reconstructing its input from its output instead of storing the
activations of its residual functions. `build_revnet` builds it from a
`configs.backbones.RevNet` config and is registered as the `revnet` backbone.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs.backbones import RevNet as RevNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.backbone import Backbone
from garden_vision.modeling.layers.nn_layers import batch_norm, get_activation
from garden_vision.modeling.layers.reversible_blocks import ReversibleBlock
from garden_vision.modeling.serialization import serialize_initializer

# Depth -> (block type, output channels, repeats) of each group, from Model Garden's
# REVNET_SPECS. A group's residual functions get half the channels as filters (bottleneck
# functions then expand them 4x, so bottleneck groups output 4x the listed channels).
REVNET_SPECS: dict[int, tuple[tuple[str, int, int], ...]] = {
    38: (("residual", 32, 3), ("residual", 64, 3), ("residual", 112, 3)),
    56: (
        ("bottleneck", 128, 2),
        ("bottleneck", 256, 2),
        ("bottleneck", 512, 3),
        ("bottleneck", 832, 2),
    ),
    104: (
        ("bottleneck", 128, 2),
        ("bottleneck", 256, 2),
        ("bottleneck", 512, 11),
        ("bottleneck", 832, 2),
    ),
}


@keras.saving.register_keras_serializable(package="garden_vision")
class RevNet(Backbone):
    """A reversible residual network reporting one level per block group.

    The stem is a 7x7/2 convolution with as many filters as the first group's channels,
    batch normalization, the activation and 3x3/2 max pooling. Each group's first block
    has the group's stride (1 for the first group, 2 after) and, except in the first
    group, pre-activation residual functions (as in Model Garden); its other blocks are
    invertible.

    Args:
      model_id: The depth: 38 (levels 2 to 4), 56 or 104 (levels 2 to 5).
      input_specs: The image input, `keras.layers.InputSpec(shape=[None, H, W, C])` (or that
        shape as a list); H and W may be None.
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      manual_gradients: Back-propagate through invertible blocks by reconstructing their
        inputs (the RevNet way, saving activation memory); False uses ordinary automatic
        differentiation, with the same gradients.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: For an unknown `model_id`.
    """

    def __init__(
        self,
        model_id: int,
        input_specs: keras.layers.InputSpec | list | None = None,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        manual_gradients: bool = True,
        **kwargs: Any,
    ):
        if model_id not in REVNET_SPECS:
            raise ConfigError(
                f"RevNet `model_id` = {model_id!r} is not supported; expected one of "
                + ", ".join(str(depth) for depth in REVNET_SPECS)
            )
        input_spec = self.input_spec_of(input_specs)
        shape = list(input_spec.shape)
        kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        initializer = serialize_initializer(kernel_initializer)

        inputs = keras.Input(shape=tuple(shape[1:]), batch_size=shape[0])
        x = keras.layers.Conv2D(
            REVNET_SPECS[model_id][0][1],
            7,
            strides=2,
            padding="same",
            use_bias=False,
            kernel_initializer=initializer,
            kernel_regularizer=kernel_regularizer,
            name="stem_conv",
        )(inputs)
        x = batch_norm(
            momentum=norm_momentum, epsilon=norm_epsilon, synchronized=use_sync_bn, name="stem_norm"
        )(x)
        x = get_activation(activation)(x)
        x = keras.layers.MaxPooling2D(pool_size=3, strides=2, padding="same", name="stem_pool")(x)

        endpoints = {}
        for index, (block_type, channels, repeats) in enumerate(REVNET_SPECS[model_id]):
            level = index + 2
            for repeat in range(repeats):
                x = ReversibleBlock(
                    block_type=block_type,
                    filters=channels // 2,
                    strides=(1 if index == 0 else 2) if repeat == 0 else 1,
                    batch_norm_first=index > 0 and repeat == 0,
                    manual_gradients=manual_gradients,
                    kernel_initializer=initializer,
                    kernel_regularizer=kernel_regularizer,
                    activation=activation,
                    use_sync_bn=use_sync_bn,
                    norm_momentum=norm_momentum,
                    norm_epsilon=norm_epsilon,
                    name=f"revblock_group_l{level}_block{repeat}",
                )(x)
            endpoints[str(level)] = x

        super().__init__(
            inputs=inputs,
            outputs=endpoints,
            config={
                "model_id": model_id,
                "input_specs": input_spec,
                "activation": activation,
                "use_sync_bn": use_sync_bn,
                "norm_momentum": norm_momentum,
                "norm_epsilon": norm_epsilon,
                "kernel_initializer": initializer,
                "kernel_regularizer": kernel_regularizer,
                "manual_gradients": manual_gradients,
            },
            **kwargs,
        )

        self.model_id = model_id
        self.input_specs = input_spec
        self.activation = activation
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = initializer
        self.kernel_regularizer = kernel_regularizer
        self.manual_gradients = manual_gradients


def build_revnet(
    input_specs: keras.layers.InputSpec,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    model_id: int = RevNetConfig().model_id,
) -> RevNet:
    """Builds a `RevNet` (the `revnet` entry of `garden.backbones`).

    The keyword settings are the fields of `configs.backbones.RevNet`.

    Args:
      input_specs: The image input, `InputSpec(shape=[None, H, W, C])`.
      norm_activation_config: Activation and batch-normalization settings.
      l2_regularizer: Kernel regularizer of every convolution (weight decay), or None.
      model_id: The depth: 38, 56 or 104.

    Raises:
      ConfigError: For an unknown `model_id`.
    """
    return RevNet(
        model_id=model_id,
        input_specs=input_specs,
        activation=norm_activation_config.activation,
        use_sync_bn=norm_activation_config.use_sync_bn,
        norm_momentum=norm_activation_config.norm_momentum,
        norm_epsilon=norm_activation_config.norm_epsilon,
        kernel_regularizer=l2_regularizer,
    )
