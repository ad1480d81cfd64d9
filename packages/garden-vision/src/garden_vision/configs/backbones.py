"""Backbone configs (Model Garden's `configs.backbones`) and the `Backbone` one-of.

`Backbone.type` names a built-in backbone (`resnet`, `dilated_resnet`, `revnet`,
`efficientnet`, `mobilenet`, `vit`, `spinenet`, `spinenet_mobile`) or any backbone another
distribution registers in
`garden.backbones`; its builder is looked up in that registry by the same name (see
`garden_vision.modeling.backbones`).
"""

from __future__ import annotations

import dataclasses

from garden_core.config import Config, OneOfConfig


@dataclasses.dataclass
class ResNet(Config):
    """ResNet v1.5 (He et al., 2016), with the ResNet-D and ResNet-RS options.

    Attributes:
      model_id: Depth: 10, 18, 26, 34, 50, 101, 152, 200 (and ResNet-RS's 270, 350, 420).
      depth_multiplier: Scales every convolution's width.
      stem_type: `v0` (one 7x7 convolution) or `v1` (three 3x3 convolutions, ResNet-D).
      se_ratio: Squeeze-and-excitation ratio; 0 disables it.
      stochastic_depth_drop_rate: Drop rate of the last block, scaled linearly by depth.
      scale_stem: Scales the stem's width by `depth_multiplier` too.
      resnetd_shortcut: Average-pooling projection shortcuts (ResNet-D).
      replace_stem_max_pool: A strided 3x3 convolution instead of the stem's max pooling.
      bn_trainable: Whether batch-normalization layers train.
    """

    model_id: int = 50
    depth_multiplier: float = 1.0
    stem_type: str = "v0"
    se_ratio: float = 0.0
    stochastic_depth_drop_rate: float = 0.0
    scale_stem: bool = True
    resnetd_shortcut: bool = False
    replace_stem_max_pool: bool = False
    bn_trainable: bool = True

    restrictions = ("depth_multiplier > 0", "se_ratio >= 0", "stochastic_depth_drop_rate >= 0")


@dataclasses.dataclass
class DilatedResNet(Config):
    """ResNet with atrous (dilated) convolutions for dense prediction (DeepLab; Chen et al.,
    2017): strides past `output_stride` become dilation.

    Attributes:
      model_id: Depth: 50, 101, 152, 200 (bottleneck ResNets).
      output_stride: The backbone's output stride: 8 or 16 (or 32, no dilation).
      multigrid: Dilation multipliers of the last block group's blocks (e.g. `[1, 2, 4]`);
        None for 1 each.
      stem_type: `v0` (one 7x7 convolution) or `v1` (three 3x3 convolutions, DeepLab's stem).
      last_stage_repeats: How many times the last block group is repeated (each repeat
        doubles the dilation, as DeepLab's cascaded blocks).
      se_ratio: Squeeze-and-excitation ratio; 0 disables it.
      stochastic_depth_drop_rate: Drop rate of the last block, scaled linearly by depth.
      resnetd_shortcut: Average-pooling projection shortcuts (ResNet-D).
      replace_stem_max_pool: A strided 3x3 convolution instead of the stem's max pooling.
    """

    model_id: int = 50
    output_stride: int = 16
    multigrid: list[int] | None = None
    stem_type: str = "v0"
    last_stage_repeats: int = 1
    se_ratio: float = 0.0
    stochastic_depth_drop_rate: float = 0.0
    resnetd_shortcut: bool = False
    replace_stem_max_pool: bool = False

    restrictions = ("last_stage_repeats > 0", "se_ratio >= 0", "stochastic_depth_drop_rate >= 0")


@dataclasses.dataclass
class RevNet(Config):
    """RevNet (Gomez et al., 2017), a reversible residual network; `model_id` 38, 56 or 104."""

    model_id: int = 56


@dataclasses.dataclass
class EfficientNet(Config):
    """EfficientNet (Tan and Le, 2019); `model_id` `b0` to `b7`.

    `se_ratio` 0 uses the published ratio (0.25); `stochastic_depth_drop_rate` is the
    drop rate of the last block, scaled linearly by depth.
    """

    model_id: str = "b0"
    se_ratio: float = 0.0
    stochastic_depth_drop_rate: float = 0.0


@dataclasses.dataclass
class MobileNet(Config):
    """MobileNet V2 and V3: `model_id` `MobileNetV2`, `MobileNetV3Large` or `MobileNetV3Small`.

    Attributes:
      filter_size_scale: The width multiplier (alpha).
      stochastic_depth_drop_rate: Drop rate of residual blocks.
      flat_stochastic_depth_drop_rate: One drop rate for every block (True) or a rate
        scaled linearly by depth.
      output_stride: Replaces strides by dilation past this stride (for dense prediction).
      output_intermediate_endpoints: Also report the expanded features inside blocks.
    """

    model_id: str = "MobileNetV2"
    filter_size_scale: float = 1.0
    stochastic_depth_drop_rate: float = 0.0
    flat_stochastic_depth_drop_rate: bool = True
    output_stride: int | None = None
    output_intermediate_endpoints: bool = False

    restrictions = ("filter_size_scale > 0",)


@dataclasses.dataclass
class Transformer(Config):
    """The encoder of a vision transformer."""

    mlp_dim: int = 1
    num_heads: int = 1
    num_layers: int = 1
    attention_dropout_rate: float = 0.0
    dropout_rate: float = 0.0


@dataclasses.dataclass
class VisionTransformer(Config):
    """Vision Transformer (Dosovitskiy et al., 2020) and DeiT (Touvron et al., 2020).

    Attributes:
      model_name: `vit-ti16`, `vit-s16`, `vit-b16`, `vit-b32`, `vit-l16`, `vit-l32`,
        `vit-h14`: sets `hidden_size`, `patch_size` and `transformer` (or `vit-custom`
        to take them from this config).
      pooler: `token` (a class token), `gap` (global average pooling) or `none`.
      representation_size: Width of a pre-logits tanh layer; 0 for none.
      hidden_size: Token width (for `vit-custom`).
      patch_size: Patch side (for `vit-custom`).
      transformer: Encoder depth and widths (for `vit-custom`) and dropout rates.
      init_stochastic_depth_rate: Drop rate of the last block, scaled linearly by depth.
      original_init: ViT's own initializers (True) or truncated normal (DeiT).
      pos_embed_shape: The position-embedding grid, if it differs from the input's.
      output_encoded_tokens: With pooler `none`, report the encoded token sequence.
      output_2d_feature_maps: Also report the tokens as a 2-D feature map.
      layer_scale_init_value: LayerScale's initial value (CaiT); 0 disables it.
      add_distillation_token: DeiT's distillation token, reported as `distilled`.
    """

    model_name: str = "vit-b16"
    pooler: str = "token"
    representation_size: int = 0
    hidden_size: int = 1
    patch_size: int = 16
    transformer: Transformer = dataclasses.field(default_factory=Transformer)
    init_stochastic_depth_rate: float = 0.0
    original_init: bool = True
    pos_embed_shape: tuple[int, int] | None = None
    output_encoded_tokens: bool = True
    output_2d_feature_maps: bool = False
    layer_scale_init_value: float = 0.0
    output_attention_scores: bool = False
    add_distillation_token: bool = False

    unsupported_fields = {
        "transformer_partition_dims": (None, "spatial partitioning across TPU cores"),
    }


@dataclasses.dataclass
class SpineNet(Config):
    """SpineNet (Du et al., 2020), a scale-permuted backbone for detection.

    Attributes:
      model_id: `49S`, `49`, `96`, `143`, `143L` or `190` (sets the widths, the resampling
        alpha and the block repeats).
      stochastic_depth_drop_rate: Drop rate of the last block, scaled linearly by depth.
      min_level: The lowest output level.
      max_level: The highest output level.
    """

    model_id: str = "49"
    stochastic_depth_drop_rate: float = 0.0
    min_level: int = 3
    max_level: int = 7

    restrictions = ("stochastic_depth_drop_rate >= 0", "min_level <= max_level")


@dataclasses.dataclass
class SpineNetMobile(Config):
    """SpineNet-Mobile (Du et al., 2020): SpineNet built from MBConv blocks.

    Attributes:
      model_id: `49`, `49S` or `49XS` (sets the widths).
      stochastic_depth_drop_rate: Drop rate of the last block, scaled linearly by depth.
      se_ratio: Squeeze-and-excitation ratio of every block.
      expand_ratio: Expansion of every inverted bottleneck block.
      min_level: The lowest output level.
      max_level: The highest output level.
      use_keras_upsampling_2d: Upsample with `keras.layers.UpSampling2D` instead of
        garden-vision's `NearestUpsampling` (same values; some optimization tools need
        Keras' own layers).
    """

    model_id: str = "49"
    stochastic_depth_drop_rate: float = 0.0
    se_ratio: float = 0.2
    expand_ratio: int = 6
    min_level: int = 3
    max_level: int = 7
    use_keras_upsampling_2d: bool = False

    restrictions = (
        "stochastic_depth_drop_rate >= 0",
        "se_ratio >= 0",
        "expand_ratio >= 1",
        "min_level <= max_level",
    )


_NOT_YET = "not offered by garden-vision yet"


@dataclasses.dataclass
class Backbone(OneOfConfig):
    """Which backbone a model uses: `type` plus that backbone's settings."""

    type: str | None = None
    resnet: ResNet = dataclasses.field(default_factory=ResNet)
    dilated_resnet: DilatedResNet = dataclasses.field(default_factory=DilatedResNet)
    revnet: RevNet = dataclasses.field(default_factory=RevNet)
    efficientnet: EfficientNet = dataclasses.field(default_factory=EfficientNet)
    mobilenet: MobileNet = dataclasses.field(default_factory=MobileNet)
    vit: VisionTransformer = dataclasses.field(default_factory=VisionTransformer)
    spinenet: SpineNet = dataclasses.field(default_factory=SpineNet)
    spinenet_mobile: SpineNetMobile = dataclasses.field(default_factory=SpineNetMobile)

    plugin_kind = "backbones"
    unsupported_branches = {
        "mobiledet": _NOT_YET,
    }
