"""Tasks of garden-vision, registered in `garden.tasks` by their config class names.

- `ImageClassificationTask` (`image_classification`): Model Garden's
  `official.vision.tasks.ImageClassificationTask`.
- `RetinaNetTask` (`retinanet`): one-stage object detection, Model Garden's
  `official.vision.tasks.RetinaNetTask`.
- `MaskRCNNTask` (`maskrcnn`): two-stage detection and instance segmentation (Faster,
  Mask and Cascade R-CNN), Model Garden's `official.vision.tasks.MaskRCNNTask`.
- `SemanticSegmentationTask` (`semantic_segmentation`): DeepLabV3, DeepLabV3+, FPN and
  MobileNet segmenters, Model Garden's `official.vision.tasks.SemanticSegmentationTask`.

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "ImageClassificationTask": ".image_classification:ImageClassificationTask",
        "MaskRCNNTask": ".maskrcnn:MaskRCNNTask",
        "RetinaNetTask": ".retinanet:RetinaNetTask",
        "SemanticSegmentationTask": ".semantic_segmentation:SemanticSegmentationTask",
    },
)
