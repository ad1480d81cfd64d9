"""Decoder configs (Model Garden's `configs.decoders`) and the `Decoder` one-of.

A decoder turns a backbone's multi-level features into the features a head reads (FPN's
pyramid, ASPP's atrous pyramid pooling). `Decoder.type` names a built-in decoder
(`identity`) or any decoder another distribution registers in `garden.decoders`; its
builder is looked up in that registry by the same name (see
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
class Decoder(OneOfConfig):
    """Which decoder a model uses: `type` plus that decoder's settings (None for none)."""

    type: str | None = None
    identity: Identity = dataclasses.field(default_factory=Identity)

    plugin_kind = "decoders"
    unsupported_branches = {
        "fpn": _WITH_DETECTION,
        "nasfpn": _WITH_DETECTION,
        "aspp": _WITH_DETECTION,
    }
