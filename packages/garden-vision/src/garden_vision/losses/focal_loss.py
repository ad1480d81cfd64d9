"""`FocalLoss`: the sigmoid focal loss of RetinaNet (Model Garden's `losses.focal_loss`).

Lin et al., 2017, "Focal Loss for Dense Object Detection" (https://arxiv.org/abs/1708.02002):
for a logit `x`, its probability `p = sigmoid(x)` and a 0/1 target `y`,

    p_t  = p if y == 1 else 1 - p
    FL   = alpha_t * (1 - p_t) ** gamma * BCE(y, x)
    alpha_t = alpha if y == 1 else 1 - alpha

element by element (every class is its own binary problem; there is no softmax). The
cross-entropy is computed from the logits (`sigmoid_cross_entropy_with_logits`), so large
logits do not overflow.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="garden_vision")
class FocalLoss(keras.losses.Loss):
    """The sigmoid focal loss, element by element, reduced as `reduction` says.

    `call` returns the loss of every element (`[..., num_classes]`, no reduction over the
    class axis), as Model Garden's does; Keras then weights it by `sample_weight` (which
    broadcasts over the class axis) and reduces it. RetinaNet sums it (`reduction="sum"`)
    and divides by the number of positive anchors itself (see `retinanet_losses`).

    Example:

    ```python
    loss = FocalLoss(alpha=0.25, gamma=1.5, reduction="sum")
    value = loss(y_true=one_hot_targets, y_pred=logits, sample_weight=anchor_weights)
    ```

    Args:
      alpha: The weight of positive targets in [0, 1]; negatives get `1 - alpha`.
      gamma: The focusing exponent (>= 0); 0 gives the alpha-weighted cross-entropy.
      reduction: Keras' reduction: `"sum_over_batch_size"` (the mean over every element,
        Model Garden's default), `"sum"`, `"mean"`, `"mean_with_sample_weight"` or
        `"none"`/None.
      name: The loss name.
      dtype: The dtype the loss is computed in (float32 by default).
    """

    def __init__(
        self,
        alpha: float,
        gamma: float,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "focal_loss",
        dtype: Any = None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"FocalLoss `alpha` is {alpha!r}: must be in [0, 1]")
        if float(gamma) < 0.0:
            raise ValueError(f"FocalLoss `gamma` is {gamma!r}: must be >= 0")
        self.alpha = float(alpha)
        self.gamma = float(gamma)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The weighted, reduced loss; a `[...]` weight per anchor covers all its classes.

        Args:
          y_true: 0/1 targets, `[..., num_classes]`.
          y_pred: Logits, the same shape.
          sample_weight: None, a scalar, weights of `y_pred`'s shape, or weights without
            the class axis (`[batch, num_anchors]`), which apply to every class.
        """
        if sample_weight is not None:
            sample_weight = ops.convert_to_tensor(sample_weight, self.dtype)
            rank = ops.ndim(sample_weight)
            if rank and rank == ops.ndim(y_pred) - 1:
                sample_weight = ops.expand_dims(sample_weight, -1)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """The focal loss of every element.

        Args:
          y_true: 0/1 targets, `[batch, num_anchors, num_classes]` (any shape equal to
            `y_pred`'s).
          y_pred: Logits, the same shape.
        """
        y_true = ops.cast(y_true, self.dtype)
        y_pred = ops.cast(y_pred, self.dtype)
        positive = ops.equal(y_true, 1.0)
        cross_entropy = ops.binary_crossentropy(y_true, y_pred, from_logits=True)
        probabilities = ops.sigmoid(y_pred)
        p_t = ops.where(positive, probabilities, 1.0 - probabilities)
        # (1 - p_t) ** gamma; `power` of 0 ** 0 is 1, as gamma = 0 needs.
        modulator = ops.power(1.0 - p_t, self.gamma)
        alpha_t = ops.where(positive, self.alpha, 1.0 - self.alpha)
        return alpha_t * modulator * cross_entropy

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}
