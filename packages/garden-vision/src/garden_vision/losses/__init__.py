"""Losses of garden-vision's models (Model Garden's `official.vision.losses`).

- `focal_loss`: `FocalLoss`, the sigmoid focal loss (Lin et al., 2017).
- `loss_utils`: `multi_level_flatten`, per-level maps to one tensor over every anchor.
- `maskrcnn_losses`: `RpnScoreLoss`, `RpnBoxLoss`, `FastrcnnClassLoss`, `FastrcnnBoxLoss`
  and `MaskrcnnLoss`, the losses of Faster / Mask / Cascade R-CNN with Model Garden's
  normalizations.
- `retinanet_losses`: `retinanet_losses.retinanet_losses`, RetinaNet's total loss
  normalized as Model Garden's RetinaNet task does.
- `segmentation_losses`: `SegmentationLoss`, per-pixel cross-entropy with an ignore label,
  label smoothing, class weights and top-k pixel mining.

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "FastrcnnBoxLoss": ".maskrcnn_losses:FastrcnnBoxLoss",
        "FastrcnnClassLoss": ".maskrcnn_losses:FastrcnnClassLoss",
        "FocalLoss": ".focal_loss:FocalLoss",
        "MaskrcnnLoss": ".maskrcnn_losses:MaskrcnnLoss",
        "RpnBoxLoss": ".maskrcnn_losses:RpnBoxLoss",
        "RpnScoreLoss": ".maskrcnn_losses:RpnScoreLoss",
        "SegmentationLoss": ".segmentation_losses:SegmentationLoss",
        "multi_level_flatten": ".loss_utils:multi_level_flatten",
    },
)
