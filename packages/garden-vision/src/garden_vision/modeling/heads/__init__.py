"""Heads: layers that turn features into predictions (Model Garden's `modeling.heads`).

- `ClassificationHead`: optional batch normalization, global average pooling, dropout,
  dense logits and optional softmax; the `classification` entry of `garden.heads`.
- `RetinaNetHead` (in `dense_prediction_heads`): RetinaNet's class and box towers over
  feature levels; the `retinanet` entry of `garden.heads` (`build_retinanet_head`).
- `build_head` (in `factory`): builds any registered head, built in or from another
  distribution, through `garden_core.plugins`.

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "ClassificationHead": ".classification_head:ClassificationHead",
        "RetinaNetHead": ".dense_prediction_heads:RetinaNetHead",
        "build_classification_head": ".classification_head:build_classification_head",
        "build_head": ".factory:build_head",
        "build_retinanet_head": ".dense_prediction_heads:build_retinanet_head",
    },
)
