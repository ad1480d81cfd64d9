"""Task models of garden-vision (Model Garden's `official.vision.modeling.models`).

- `ClassificationModel`: a backbone, pooling, dropout and a linear classifier.
- `RetinaNetModel`: a one-stage detector: backbone, decoder, dense head and detection
  generator.
- `MaskRCNNModel`: the two-stage detectors (Faster, Mask and Cascade R-CNN).

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "ClassificationModel": "garden_vision.modeling.classification_model:ClassificationModel",
        "MaskRCNNModel": "garden_vision.modeling.maskrcnn_model:MaskRCNNModel",
        "RetinaNetModel": "garden_vision.modeling.retinanet_model:RetinaNetModel",
        "SegmentationModel": "garden_vision.modeling.segmentation_model:SegmentationModel",
    },
)
