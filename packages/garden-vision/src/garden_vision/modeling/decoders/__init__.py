"""Decoders: layers between a backbone and its heads (Model Garden's `modeling.decoders`).

A decoder maps the backbone's dict of features keyed by level to another such dict, and
reports `output_specs`. Decoders are built from a `configs.decoders.Decoder` one-of through
the `garden.decoders` registry (`build_decoder`), built-ins and plugins alike.

- `Identity`: passes the features through (the `identity` entry).
- `FPN`: the feature pyramid network of RetinaNet and Mask R-CNN (the `fpn` entry).
- `NASFPN`: the searched pyramid of NAS-FPN (the `nasfpn` entry).
- `build_decoder` (in `factory`): builds any registered decoder through `garden_core.plugins`.

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "ASPP": ".aspp:ASPP",
        "FPN": ".fpn:FPN",
        "Identity": ".identity:Identity",
        "NASFPN": ".nasfpn:NASFPN",
        "build_aspp": ".aspp:build_aspp",
        "build_decoder": ".factory:build_decoder",
        "build_fpn": ".fpn:build_fpn",
        "build_identity": ".identity:build_identity",
        "build_nasfpn": ".nasfpn:build_nasfpn",
    },
)
