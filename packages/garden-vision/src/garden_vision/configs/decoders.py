"""Decoder configs (Model Garden's `configs.decoders`) and the `Decoder` one-of.

A decoder turns a backbone's multi-level features into the features a head reads (FPN's
pyramid, ASPP's atrous pyramid pooling). `Decoder.type` names a built-in decoder
(`identity`, `fpn`, `nasfpn`) or any decoder another distribution registers in
`garden.decoders`; its builder is looked up in that registry by the same name (see
`garden_vision.modeling.decoders`).
"""

from __future__ import annotations

import dataclasses

from garden_core.config import Config, OneOfConfig

_WITH_DETECTION = "comes with detection/segmentation"


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
class Decoder(OneOfConfig):
    """Which decoder a model uses: `type` plus that decoder's settings (None for none)."""

    type: str | None = None
    identity: Identity = dataclasses.field(default_factory=Identity)
    fpn: FPN = dataclasses.field(default_factory=FPN)
    nasfpn: NASFPN = dataclasses.field(default_factory=NASFPN)

    plugin_kind = "decoders"
    unsupported_branches = {
        "aspp": _WITH_DETECTION,
    }
