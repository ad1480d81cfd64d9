"""Export modules: serving signatures for garden-vision's tasks.

- `image_classification.ClassificationModule`: the image-classification export module
  (Model Garden's `official.vision.serving.image_classification`).
- `detection`: `DetectionModule` and `MaskRCNNModule`, detector exports.
- `semantic_segmentation.SegmentationModule`: segmentation exports (logits and labels).
- `tflite`: conversion of an exported SavedModel to TensorFlow Lite.

Submodules are imported on first use (`garden_vision.serving.image_classification`).
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(__name__, {})
