"""Backbones: image feature extractors that report multi-level features.

Every backbone is a functional `keras.Model` subclass (of `backbone.Backbone`) whose call
returns a dict of feature maps keyed by level as a string: level `L` has stride `2**L`
(`{"2": ..., "5": ...}` for a ResNet at 224x224: 56x56 ... 7x7). Vision transformers also
report `"pre_logits"` (`[batch, 1, 1, width]`); the detection backbones `SpineNet` and
`SpineNetMobile` report levels `min_level` to `max_level` (3 to 7 by default), all of
the same width. `backbone.output_specs` maps the same keys
to their shapes. Backbones serialize (`get_config` / `from_config`), so `.keras` files and
SavedModels round trip.

Each built-in backbone has a builder in the `garden.backbones` registry; `factory` builds one
from its config, so configs name backbones by `Backbone.type` and other distributions can add
their own.

The classes are imported on first use (`from garden_vision.modeling.backbones import ResNet`,
as from Model Garden's `official.vision.modeling.backbones`).
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "Backbone": ".backbone:Backbone",
        "DilatedResNet": ".resnet_deeplab:DilatedResNet",
        "EfficientNet": ".efficientnet:EfficientNet",
        "MobileNet": ".mobilenet:MobileNet",
        "ResNet": ".resnet:ResNet",
        "RevNet": ".revnet:RevNet",
        "SpineNet": ".spinenet:SpineNet",
        "SpineNetMobile": ".spinenet_mobile:SpineNetMobile",
        "VisionTransformer": ".vit:VisionTransformer",
    },
)
