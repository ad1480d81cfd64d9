"""Heads: layers that turn features into predictions (Model Garden's `modeling.heads`).

- `ClassificationHead`: optional batch normalization, global average pooling, dropout,
  dense logits and optional softmax; the `classification` entry of `garden.heads`.
- `RetinaNetHead` (in `dense_prediction_heads`): RetinaNet's class and box towers over
  feature levels; the `retinanet` entry of `garden.heads` (`build_retinanet_head`).
- `RPNHead` (in `dense_prediction_heads`): the region proposal network of two-stage
  detectors; the `rpn` entry of `garden.heads` (`build_rpn_head`).
- `DetectionHead` and `MaskHead` (in `instance_heads`): the per-ROI class and box head and
  the mask head of Faster / Mask / Cascade R-CNN; `detection` and `mask` in `garden.heads`.
- `build_head` (in `factory`): builds any registered head, built in or from another
  distribution, through `garden_core.plugins`.

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "ClassificationHead": ".classification_head:ClassificationHead",
        "DetectionHead": ".instance_heads:DetectionHead",
        "MaskHead": ".instance_heads:MaskHead",
        "SegmentationHead": ".segmentation_heads:SegmentationHead",
        "RPNHead": ".dense_prediction_heads:RPNHead",
        "RetinaNetHead": ".dense_prediction_heads:RetinaNetHead",
        "build_classification_head": ".classification_head:build_classification_head",
        "build_detection_head": ".instance_heads:build_detection_head",
        "build_head": ".factory:build_head",
        "build_mask_head": ".instance_heads:build_mask_head",
        "build_retinanet_head": ".dense_prediction_heads:build_retinanet_head",
        "build_rpn_head": ".dense_prediction_heads:build_rpn_head",
        "build_segmentation_head": ".segmentation_heads:build_segmentation_head",
    },
)
