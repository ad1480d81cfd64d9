"""Losses of garden-vision's models (Model Garden's `official.vision.losses`).

- `focal_loss`: `FocalLoss`, the sigmoid focal loss (Lin et al., 2017).
- `loss_utils`: `multi_level_flatten`, per-level maps to one tensor over every anchor.
- `retinanet_losses`: `retinanet_losses.retinanet_losses`, RetinaNet's total loss
  normalized as Model Garden's RetinaNet task does.

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "FocalLoss": ".focal_loss:FocalLoss",
        "multi_level_flatten": ".loss_utils:multi_level_flatten",
    },
)
