"""The dilated ResNet of DeepLab (Chen et al., 2017), a backbone for dense prediction.

"Rethinking Atrous Convolution for Semantic Image Segmentation"
(https://arxiv.org/abs/1706.05587). `DilatedResNet` is Model Garden's
`backbones.resnet_deeplab.DilatedResNet`: a bottleneck ResNet v1.5 whose block groups stop
downsampling once the features reach `output_stride`; the groups after that keep the
resolution and dilate their 3x3 convolutions instead (rate 2, then 4, 8, ...), so the last
features keep a receptive field as large as the plain network's at a finer resolution.
DeepLab's multi-grid (`multigrid`) multiplies the dilation of each block of the last group,
and `last_stage_repeats` cascades copies of that group, each at twice the dilation.

Endpoints are Model Garden's: levels `"2"` up to `log2(output_stride)` (stride `2**level`),
the last of which holds the output of the final block group (e.g. `"2"`, `"3"`, `"4"` at
output stride 16, where `"4"` is the 2048-channel output of the dilated level-5 group).
`build_dilated_resnet` builds it from a `configs.backbones.DilatedResNet` config and is
registered as the `dilated_resnet` backbone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs.backbones import DilatedResNet as DilatedResNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.backbone import Backbone
from garden_vision.modeling.backbones.resnet import RESNET_SPECS, STEM_TYPES, stochastic_depth_rate
from garden_vision.modeling.layers.nn_layers import batch_norm, get_activation
from garden_vision.modeling.layers.resnet_blocks import BottleneckBlock
from garden_vision.modeling.serialization import serialize_initializer

#: The depths Model Garden's dilated ResNet offers (bottleneck ResNets).
DILATED_RESNET_MODEL_IDS = (50, 101, 152, 200)
#: The output strides it offers: each is `2**level` of its last endpoint.
OUTPUT_STRIDES = (4, 8, 16, 32)


@keras.saving.register_keras_serializable(package="garden_vision")
class DilatedResNet(Backbone):
    """A bottleneck ResNet whose strides past `output_stride` become dilation (DeepLab).

    The stem is `v0` (a 7x7/2 convolution with 64 filters) or `v1` (DeepLab's: 3x3/2
    convolution with 64 filters, 3x3 with 64, 3x3 with 128), each convolution followed by
    batch normalization and the activation; then 3x3/2 max pooling (or, with
    `replace_stem_max_pool`, a 3x3/2 convolution with 64 filters). Block groups of 64, 128,
    256 and 512 filters (bottleneck blocks output 4x as many channels) follow: the first at
    stride 1, the next ones at stride 2 until the stride reaches `output_stride`; every later
    group runs at stride 1 with dilation 2, 4, 8, ... The level-5 group is repeated
    `last_stage_repeats` times; those groups take `multigrid` as the dilation multipliers of
    their blocks. The first block of every group has a projection shortcut.

    Example:

    ```python
    backbone = DilatedResNet(model_id=50, output_stride=16, multigrid=[1, 2, 4])
    features = backbone(images)  # 512x512 images: "2" 128x128x256, "3" 64x64x512,
                                 # "4" 32x32x2048
    ```

    Args:
      model_id: The depth: 50, 101, 152 or 200.
      output_stride: The stride of the last endpoint: 8 or 16 (dilation past it), 32 (no
        dilation), or 4.
      input_specs: The image input, `keras.layers.InputSpec(shape=[None, H, W, C])` (or that
        shape as a list); H and W may be None.
      stem_type: `v0` (one 7x7 convolution) or `v1` (DeepLab's three 3x3 convolutions).
      resnetd_shortcut: ResNet-D's projection shortcuts: average pooling, then a stride-1
        1x1 convolution.
      replace_stem_max_pool: A 3x3/2 convolution (+ BN + activation) instead of the stem's
        max pooling.
      se_ratio: Squeeze-and-excitation ratio of every block, in (0, 1]; None or 0
        disables it.
      init_stochastic_depth_rate: Stochastic depth drop rate of the last block group; group
        `L` uses `init_stochastic_depth_rate * L / (4 + last_stage_repeats)`. 0 disables it.
      multigrid: The dilation multipliers of the blocks of the level-5 group(s), one per
        block (e.g. `[1, 2, 4]`), or None for 1 each. They apply to the dilated groups only.
      last_stage_repeats: How many level-5 groups run one after another (>= 1).
      activation: The activation's Model Garden name (`relu`, `swish`, ...).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch-normalization moving averages.
      norm_epsilon: Epsilon of batch normalization.
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels (weight decay), or None.
      bias_regularizer: Regularizer of the biases, or None.
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: For an unknown `model_id`, `output_stride` or `stem_type`, a
        `last_stage_repeats` below 1, or a `multigrid` whose length is not the number of
        blocks of the last group.
    """

    def __init__(
        self,
        model_id: int,
        output_stride: int,
        input_specs: keras.layers.InputSpec | list | None = None,
        stem_type: str = "v0",
        resnetd_shortcut: bool = False,
        replace_stem_max_pool: bool = False,
        se_ratio: float | None = None,
        init_stochastic_depth_rate: float = 0.0,
        multigrid: Sequence[int] | None = None,
        last_stage_repeats: int = 1,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_initializer: str | dict | keras.initializers.Initializer = "VarianceScaling",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        bias_regularizer: keras.regularizers.Regularizer | dict | None = None,
        **kwargs: Any,
    ):
        # === Settings ===
        if model_id not in DILATED_RESNET_MODEL_IDS:
            raise ConfigError(
                f"DilatedResNet `model_id` = {model_id!r} is not supported; expected one of "
                + ", ".join(str(depth) for depth in DILATED_RESNET_MODEL_IDS)
            )
        if output_stride not in OUTPUT_STRIDES:
            raise ConfigError(
                f"DilatedResNet `output_stride` = {output_stride!r} is not supported; "
                "expected one of " + ", ".join(str(stride) for stride in OUTPUT_STRIDES)
            )
        if stem_type not in STEM_TYPES:
            raise ConfigError(
                f"DilatedResNet `stem_type` = {stem_type!r} is not supported; expected one of "
                + ", ".join(STEM_TYPES)
            )
        if isinstance(last_stage_repeats, bool) or int(last_stage_repeats) < 1:
            raise ConfigError(
                f"DilatedResNet `last_stage_repeats` = {last_stage_repeats!r} must be >= 1"
            )
        last_stage_repeats = int(last_stage_repeats)
        specs = RESNET_SPECS[model_id]
        last_repeats = specs[-1][2]
        if multigrid is not None:
            multigrid = [int(rate) for rate in multigrid]
            if len(multigrid) != last_repeats or any(rate < 1 for rate in multigrid):
                raise ConfigError(
                    f"DilatedResNet `multigrid` = {multigrid!r} must give one positive "
                    f"multiplier per block of the last group ({last_repeats} for ResNet-"
                    f"{model_id})"
                )
        input_spec = self.input_spec_of(input_specs)
        shape = list(input_spec.shape)
        kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        bias_regularizer = keras.regularizers.get(bias_regularizer)
        initializer = serialize_initializer(kernel_initializer)
        norm_kwargs = {
            "momentum": norm_momentum,
            "epsilon": norm_epsilon,
            "synchronized": use_sync_bn,
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

        # === Stem ===
        inputs = keras.Input(shape=tuple(shape[1:]), batch_size=shape[0])
        if stem_type == "v0":
            x = conv_bn_act(inputs, 64, 7, 2, "stem")
        else:
            x = conv_bn_act(inputs, 64, 3, 2, "stem1")
            x = conv_bn_act(x, 64, 3, 1, "stem2")
            x = conv_bn_act(x, 128, 3, 1, "stem3")
        if replace_stem_max_pool:
            x = conv_bn_act(x, 64, 3, 2, "stem_downsample")
        else:
            x = keras.layers.MaxPooling2D(pool_size=3, strides=2, padding="same", name="stem_pool")(
                x
            )

        # === Block groups ===
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
        }
        num_groups = 3 + last_stage_repeats
        # Groups 0 .. `last_strided` downsample (the first at stride 1); later ones dilate.
        last_strided = int(math.log2(output_stride)) - 2
        endpoints = {}
        dilation = 1
        for index in range(num_groups):
            level = index + 2
            _, filters, repeats = specs[min(index, len(specs) - 1)]
            strided = index <= last_strided
            multipliers = [1] * repeats
            if not strided:
                dilation *= 2
                if index >= 3 and multigrid is not None:
                    multipliers = multigrid
            drop_rate = stochastic_depth_rate(init_stochastic_depth_rate, level, num_groups + 1)
            for repeat in range(repeats):
                first = repeat == 0
                x = BottleneckBlock(
                    filters=filters,
                    strides=(1 if index == 0 or not strided else 2) if first else 1,
                    dilation_rate=dilation * multipliers[repeat],
                    use_projection=first,
                    stochastic_depth_drop_rate=drop_rate,
                    name=f"block_group_l{level}_block{repeat}",
                    **block_kwargs,
                )(x)
            if strided:
                endpoints[str(level)] = x
        # The last endpoint is the output of the final group, whatever its level.
        endpoints[str(last_strided + 2)] = x

        super().__init__(
            inputs=inputs,
            outputs=endpoints,
            config={
                "model_id": model_id,
                "output_stride": output_stride,
                "input_specs": input_spec,
                "stem_type": stem_type,
                "resnetd_shortcut": resnetd_shortcut,
                "replace_stem_max_pool": replace_stem_max_pool,
                "se_ratio": se_ratio,
                "init_stochastic_depth_rate": init_stochastic_depth_rate,
                "multigrid": multigrid,
                "last_stage_repeats": last_stage_repeats,
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

        self.model_id = model_id
        self.output_stride = output_stride
        self.input_specs = input_spec
        self.stem_type = stem_type
        self.resnetd_shortcut = resnetd_shortcut
        self.replace_stem_max_pool = replace_stem_max_pool
        self.se_ratio = se_ratio
        self.init_stochastic_depth_rate = init_stochastic_depth_rate
        self.multigrid = multigrid
        self.last_stage_repeats = last_stage_repeats
        self.activation = activation
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer


_DEFAULTS = DilatedResNetConfig()


def build_dilated_resnet(
    input_specs: keras.layers.InputSpec,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    model_id: int = _DEFAULTS.model_id,
    output_stride: int = _DEFAULTS.output_stride,
    multigrid: list[int] | None = _DEFAULTS.multigrid,
    stem_type: str = _DEFAULTS.stem_type,
    last_stage_repeats: int = _DEFAULTS.last_stage_repeats,
    se_ratio: float = _DEFAULTS.se_ratio,
    stochastic_depth_drop_rate: float = _DEFAULTS.stochastic_depth_drop_rate,
    resnetd_shortcut: bool = _DEFAULTS.resnetd_shortcut,
    replace_stem_max_pool: bool = _DEFAULTS.replace_stem_max_pool,
) -> DilatedResNet:
    """Builds a `DilatedResNet` (the `dilated_resnet` entry of `garden.backbones`).

    The keyword settings are the fields of `configs.backbones.DilatedResNet`, with its
    defaults (`backbone: {type: dilated_resnet, dilated_resnet: {...}}` in a config).

    Args:
      input_specs: The image input, `InputSpec(shape=[None, H, W, C])`.
      norm_activation_config: Activation and batch-normalization settings.
      l2_regularizer: Kernel regularizer of every convolution (weight decay), or None.
      model_id, output_stride, multigrid, stem_type, last_stage_repeats, se_ratio,
        resnetd_shortcut, replace_stem_max_pool: As in `DilatedResNet`.
      stochastic_depth_drop_rate: The model's `init_stochastic_depth_rate`.

    Raises:
      ConfigError: For settings `DilatedResNet` rejects.
    """
    return DilatedResNet(
        model_id=model_id,
        output_stride=output_stride,
        input_specs=input_specs,
        stem_type=stem_type,
        resnetd_shortcut=resnetd_shortcut,
        replace_stem_max_pool=replace_stem_max_pool,
        se_ratio=se_ratio,
        init_stochastic_depth_rate=stochastic_depth_drop_rate,
        multigrid=multigrid,
        last_stage_repeats=last_stage_repeats,
        activation=norm_activation_config.activation,
        use_sync_bn=norm_activation_config.use_sync_bn,
        norm_momentum=norm_activation_config.norm_momentum,
        norm_epsilon=norm_activation_config.norm_epsilon,
        kernel_regularizer=l2_regularizer,
    )
