"""Keras 3 models of garden-vision (Model Garden's `official.vision.modeling`).

- `backbones`: image feature extractors (ResNet, RevNet, MobileNet, EfficientNet, ViT).
- `decoders`, `heads`: what sits between a backbone and the predictions, and the heads that
  make them, each built through its registry.
- `layers`: the blocks and layers they are built from.
- `models`: task models (`ClassificationModel`, `RetinaNetModel`, `MaskRCNNModel`).
- `classification_model`, `retinanet_model`, `maskrcnn_model`, `factory`: the task models
  and `factory.build_classification_model` / `build_retinanet` / `build_maskrcnn`, which
  build them from
  their configs.
- `regularizers`: `L2`, the weight-decay regularizer the factories give every kernel.

Submodules are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "backbones": ".backbones",
        "classification_model": ".classification_model",
        "decoders": ".decoders",
        "factory": ".factory",
        "heads": ".heads",
        "layers": ".layers",
        "maskrcnn_model": ".maskrcnn_model",
        "models": ".models",
        "regularizers": ".regularizers",
        "retinanet_model": ".retinanet_model",
        "segmentation_model": ".segmentation_model",
    },
)
