"""Evaluation of vision tasks: COCO detection metrics, the COCO-format helpers they use, and
segmentation IoU.

- `coco_evaluator`: `COCOEvaluator`, Model Garden's COCO box/mask/keypoint metrics (`AP`,
  `AP50`, ..., `ARl`) gathered over an evaluation
  (`official.vision.evaluation.coco_evaluator`).
- `coco_utils`: predictions and ground truth to COCO structures, `COCOWrapper`,
  `generate_annotation_file` (`official.vision.evaluation.coco_utils`).

- `segmentation_metrics`: `MeanIoU` and `PerClassIoU` over label maps, optionally at each
  image's original size (`official.vision.evaluation.segmentation_metrics`).

The COCO modules need pycocotools, the optional extra `pip install "garden-vision[coco]"`;
they import without it and say so when used. Names are imported on first use, so importing
this package loads nothing heavy.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "COCOEvaluator": ".coco_evaluator:COCOEvaluator",
        "COCOWrapper": ".coco_utils:COCOWrapper",
        "convert_groundtruths_to_coco_dataset": ".coco_utils:convert_groundtruths_to_coco_dataset",
        "convert_predictions_to_coco_annotations": (
            ".coco_utils:convert_predictions_to_coco_annotations"
        ),
        "generate_annotation_file": ".coco_utils:generate_annotation_file",
        "MeanIoU": ".segmentation_metrics:MeanIoU",
        "PerClassIoU": ".segmentation_metrics:PerClassIoU",
    },
)
