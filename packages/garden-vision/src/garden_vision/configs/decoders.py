"""Decoder configs (Model Garden's `configs.decoders`) and the `Decoder` one-of.

A decoder turns a backbone's multi-level features into the features a head reads (FPN's
pyramid, ASPP's atrous pyramid pooling). `Decoder.type` names a built-in decoder
(`identity`, `fpn`, `nasfpn`, `aspp`) or any decoder another distribution registers in
`garden.decoders`; its builder is looked up in that registry by the same name (see
`garden_vision.modeling.decoders`).
"""

from __future__ import annotations

import dataclasses

from garden_core.config import Config, OneOfConfig


@dataclasses.dataclass
class Identity(Config):
    """The identity decoder: the backbone's features pass through unchanged."""


@dataclasses.dataclass
class FPN(Config):
    """Feature Pyramid Network (Lin et al., 2017).

    Attributes:
      num_filters: Channels of every output level.
      fusion_type: How the top-down path merges a level with the one above: `sum` or
        `concat`.
      use_separable_conv: Depthwise-separable convolutions instead of regular ones.
      use_keras_layer: Upsample with `keras.layers.UpSampling2D` (same values as
        garden-vision's own layer; some optimization tools need Keras' layers).
    """

    num_filters: int = 256
    fusion_type: str = "sum"
    use_separable_conv: bool = False
    use_keras_layer: bool = False

    restrictions = ("num_filters > 0",)


@dataclasses.dataclass
class NASFPN(Config):
    """NAS-FPN (Ghiasi et al., 2019): a searched feature pyramid, repeated `num_repeats` times.

    Attributes:
      num_filters: Channels of every output level.
      num_repeats: How many times the searched pyramid cell is stacked.
      use_separable_conv: Depthwise-separable convolutions instead of regular ones.
    """

    num_filters: int = 256
    num_repeats: int = 5
    use_separable_conv: bool = False

    restrictions = ("num_filters > 0", "num_repeats > 0")


@dataclasses.dataclass
class ASPP(Config):
    """Atrous Spatial Pyramid Pooling (DeepLabV3; Chen et al., 2017) on one backbone level.

    Attributes:
      level: The backbone level it reads (4 for output stride 16, 3 for 8).
      dilation_rates: Rates of the 3x3 atrous branches (e.g. `[6, 12, 18]`); a 1x1 branch
        and an image-pooling branch always join them.
      dropout_rate: Dropout after the projection of the concatenated branches.
      num_filters: Channels of every branch and of the output.
      use_depthwise_convolution: Depthwise-separable atrous branches.
      pool_kernel_size: `[height, width]` of the pooling branch's average pooling; None
        pools the whole image (global average pooling).
      spp_layer_version: `v1` (the pooling branch resized back bilinearly; depthwise kernels
        not regularized) or `v2` (resized with `interpolation`; depthwise kernels regularized).
      output_tensor: Return a tensor instead of `{level: tensor}`.
    """

    level: int = 4
    dilation_rates: list[int] = dataclasses.field(default_factory=list)
    dropout_rate: float = 0.0
    num_filters: int = 256
    use_depthwise_convolution: bool = False
    pool_kernel_size: list[int] | None = None
    spp_layer_version: str = "v1"
    output_tensor: bool = False

    restrictions = ("num_filters > 0", "dropout_rate >= 0")


@dataclasses.dataclass
class Decoder(OneOfConfig):
    """Which decoder a model uses: `type` plus that decoder's settings (None for none)."""

    type: str | None = None
    identity: Identity = dataclasses.field(default_factory=Identity)
    fpn: FPN = dataclasses.field(default_factory=FPN)
    nasfpn: NASFPN = dataclasses.field(default_factory=NASFPN)
    aspp: ASPP = dataclasses.field(default_factory=ASPP)

    plugin_kind = "decoders"
