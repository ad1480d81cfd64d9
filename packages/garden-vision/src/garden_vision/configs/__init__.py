"""Configs of garden-vision's models, data pipelines, tasks and experiments.

These modules define dataclass configs only and import no TensorFlow, so `garden list` and
`garden show` stay fast. Field names and defaults follow Model Garden's
`official.vision.configs`, so a Model Garden YAML for an experiment Garden offers loads as is:

- `backbones`: `Backbone` and its branches (`ResNet`, `RevNet`, `MobileNet`, `EfficientNet`,
  `VisionTransformer`, `SpineNet`, `SpineNetMobile`).
- `decoders`: `Decoder`, the one-of that names a decoder (`identity`, `fpn`, `nasfpn`) and
  holds its settings.
- `common`: `NormActivation`, the augmentation configs and the data decoders.
- `image_classification`: the image-classification task, model, data, losses and
  evaluation configs and experiments.
- `retinanet`: the RetinaNet task, model, anchors, data, losses, detection generator and
  export configs and experiments.
- `maskrcnn`: the Faster / Mask / Cascade R-CNN task, model (RPN, ROI generator, sampler
  and aligner, detection and mask heads), data and losses configs and experiments.

Submodules are imported on first use (`garden_vision.configs.backbones`).
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(__name__, {})
