"""The losses of two-stage detectors (Model Garden's `losses.maskrcnn_losses`).

Faster R-CNN, Mask R-CNN and Cascade R-CNN train four heads; each loss here is normalized
exactly as Model Garden's, so loss curves and loss weights carry over:

- `RpnScoreLoss`: binary cross-entropy of the RPN objectness logits over the anchors
  labelled 1 (positive) or 0 (negative); anchors labelled -1 are ignored. Each level's sum
  is divided by `batch_size * rpn_batch_size_per_im` (the anchors sampled per image) and
  the levels are added.
- `RpnBoxLoss`: Huber loss of the RPN box offsets of the anchors whose target is not all
  zeros (the positives). Each level's sum is divided by the number of such coordinates
  (4 per positive anchor) + 0.01, and the levels are added.
- `FastrcnnClassLoss`: softmax (or per-class sigmoid) cross-entropy of the sampled ROIs,
  optionally weighted per class, averaged over every ROI of the batch (or over the hardest
  `top_k_percent` of the values).
- `FastrcnnBoxLoss`: Huber loss of the box offsets predicted for each foreground ROI's
  class, divided by the number of foreground coordinates (4 per ROI) + 0.01.
- `MaskrcnnLoss`: binary cross-entropy of the mask logits of the foreground ROIs, divided
  by the number of foreground mask pixels + 0.01.

Huber is `0.5 x^2` for `|x| <= delta`, else `delta * (|x| - 0.5 delta)`. Under a
`tf.distribute` strategy, the foreground counts that normalize the box and mask losses are
averaged over the replicas before dividing (Model Garden's all-reduce): with the task
dividing each replica's loss by the number of replicas, a loss is then normalized by the
count of the whole global batch. Losses are computed in float32 whatever the outputs' dtype.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

#: Added to the foreground counts that divide the box and mask losses (an image without
#: foreground gives a zero loss rather than a division by zero), Model Garden's value.
NORMALIZER_EPSILON = 0.01
#: Added to the number of values the top-k class loss averages, Model Garden's value.
TOP_K_EPSILON = 1e-5
#: A box target counts as a positive anchor's when one coordinate exceeds this in magnitude.
VALID_BOX_THRESHOLD = 1e-6


def _huber(errors: tf.Tensor, delta: float) -> tf.Tensor:
    """The elementwise Huber loss of `errors`."""
    absolute = tf.abs(errors)
    quadratic = tf.minimum(absolute, delta)
    return 0.5 * quadratic * quadratic + delta * (absolute - quadratic)


def _replica_mean(value: tf.Tensor) -> tf.Tensor:
    """`value` averaged over the replicas of the current `tf.distribute` replica context.

    Outside `strategy.run` (no replica context), `value` itself.
    """
    context = tf.distribute.get_replica_context()
    if context is None:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, value)


def _check_delta(owner: str, huber_loss_delta: Any) -> float:
    if not isinstance(huber_loss_delta, numbers.Real) or not huber_loss_delta > 0:
        raise ValueError(f"{owner} `huber_loss_delta` is {huber_loss_delta!r}: must be > 0")
    return float(huber_loss_delta)


def _levels(owner: str, outputs: Mapping[str, Any], labels: Mapping[str, Any]) -> list[str]:
    """The levels of `outputs`, sorted by level; a `ValueError` if `labels` misses one."""
    if not outputs:
        raise ValueError(f"{owner} needs outputs for at least one level")
    levels = sorted(outputs, key=lambda level: int(level))
    missing = [level for level in levels if level not in labels]
    if missing:
        raise ValueError(
            f"{owner}: the targets have no levels {missing} (the outputs have levels {levels}, "
            f"the targets {sorted(labels, key=lambda level: int(level))})"
        )
    return levels


class RpnScoreLoss:
    """The RPN objectness loss (Model Garden's `RpnScoreLoss`).

    For each level, the binary cross-entropy (from logits) of every anchor labelled 1 or 0
    (anchors labelled -1 are ignored) is summed and divided by `batch_size *
    rpn_batch_size_per_im`; the levels' losses are added.

    Example:

    ```python
    loss_fn = RpnScoreLoss(rpn_batch_size_per_im=256)
    loss = loss_fn(outputs["rpn_scores"], labels["rpn_score_targets"])
    ```

    Args:
      rpn_batch_size_per_im: The number of anchors sampled per image (the parser's
        `rpn_batch_size_per_im`): a positive number, or a scalar tensor.
    """

    def __init__(self, rpn_batch_size_per_im: int | Any):
        if isinstance(rpn_batch_size_per_im, bool) or (
            isinstance(rpn_batch_size_per_im, numbers.Real) and not rpn_batch_size_per_im > 0
        ):
            raise ValueError(
                f"RpnScoreLoss `rpn_batch_size_per_im` is {rpn_batch_size_per_im!r}: must be > 0"
            )
        self.rpn_batch_size_per_im = rpn_batch_size_per_im

    def __call__(self, score_outputs: Mapping[str, Any], labels: Mapping[str, Any]) -> tf.Tensor:
        """Returns the summed loss of every level, a float32 scalar.

        Args:
          score_outputs: Level -> `[batch, height, width, num_anchors]` objectness logits.
          labels: Level -> `[batch, height, width, num_anchors]` targets: 1 positive,
            0 negative, -1 ignored.
        """
        losses = []
        for level in _levels("RpnScoreLoss", score_outputs, labels):
            logits = tf.cast(score_outputs[level], tf.float32)
            targets = tf.cast(labels[level], tf.float32)
            sampled = tf.cast(tf.logical_or(targets == 1.0, targets == 0.0), tf.float32)
            cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.maximum(targets, 0.0), logits=logits
            )
            normalizer = tf.cast(tf.shape(logits)[0], tf.float32) * tf.cast(
                self.rpn_batch_size_per_im, tf.float32
            )
            losses.append(tf.reduce_sum(cross_entropy * sampled) / normalizer)
        return tf.add_n(losses)


class RpnBoxLoss:
    """The RPN box regression loss (Model Garden's `RpnBoxLoss`).

    For each level, the Huber loss of every coordinate of the anchors whose box target is
    not all zeros is summed and divided by the number of those coordinates (averaged over
    replicas) + 0.01; the levels' losses are added.

    Args:
      huber_loss_delta: The Huber loss's delta, about the size of the targets (Model
        Garden's `rpn_huber_loss_delta`, 1/9).
    """

    def __init__(self, huber_loss_delta: float):
        self.huber_loss_delta = _check_delta("RpnBoxLoss", huber_loss_delta)

    def __call__(self, box_outputs: Mapping[str, Any], labels: Mapping[str, Any]) -> tf.Tensor:
        """Returns the summed loss of every level, a float32 scalar.

        Args:
          box_outputs: Level -> `[batch, height, width, num_anchors * 4]` box offsets.
          labels: Level -> `[batch, height, width, num_anchors * 4]` box targets, all zeros
            for anchors that are not positive.
        """
        losses = []
        for level in _levels("RpnBoxLoss", box_outputs, labels):
            outputs = tf.reshape(tf.cast(box_outputs[level], tf.float32), [-1, 4])
            targets = tf.reshape(tf.cast(labels[level], tf.float32), [-1, 4])
            valid = tf.reduce_any(tf.abs(targets) > VALID_BOX_THRESHOLD, axis=-1, keepdims=True)
            valid = tf.cast(valid, tf.float32)
            loss = tf.reduce_sum(_huber(targets - outputs, self.huber_loss_delta) * valid)
            num_coordinates = 4.0 * tf.reduce_sum(valid)
            losses.append(loss / (_replica_mean(num_coordinates) + NORMALIZER_EPSILON))
        return tf.add_n(losses)


class FastrcnnClassLoss:
    """The Fast R-CNN classification loss (Model Garden's `FastrcnnClassLoss`).

    The softmax cross-entropy of each sampled ROI (weighted by the weight of its target
    class), or with `use_binary_cross_entropy` the sigmoid cross-entropy of each ROI and
    class (weighted by the class's weight), averaged over every value of the batch. With
    `top_k_percent < 1`, only the largest `int(top_k_percent * count)` values are averaged
    (hard example mining, `aggregate_loss_top_k`).

    Args:
      use_binary_cross_entropy: Per-class sigmoid cross-entropy instead of the softmax one.
      top_k_percent: The fraction of the loss values averaged, in (0, 1].
    """

    def __init__(self, use_binary_cross_entropy: bool = False, top_k_percent: float = 1.0):
        if not isinstance(top_k_percent, numbers.Real) or not 0.0 < top_k_percent <= 1.0:
            raise ValueError(
                f"FastrcnnClassLoss `top_k_percent` is {top_k_percent!r}: must be in (0, 1]"
            )
        self.use_binary_cross_entropy = bool(use_binary_cross_entropy)
        self.top_k_percent = float(top_k_percent)

    def __call__(
        self,
        class_outputs: Any,
        class_targets: Any,
        class_weights: Sequence[float] | None = None,
    ) -> tf.Tensor:
        """Returns the loss, a float32 scalar.

        Args:
          class_outputs: `[batch, num_rois, num_classes]` logits.
          class_targets: `[batch, num_rois]` class ids (0 is background).
          class_weights: One weight per class (Model Garden's `losses.class_weights`), or
            None for weights of 1.

        Raises:
          ValueError: If `class_weights` does not hold one weight per class.
        """
        logits = tf.cast(class_outputs, tf.float32)
        num_classes = logits.shape[-1]
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(
                f"FastrcnnClassLoss `class_weights` has {len(class_weights)} weights: give "
                f"one per class ({num_classes})"
            )
        one_hot = tf.one_hot(tf.cast(class_targets, tf.int32), num_classes, dtype=tf.float32)
        weights = None if class_weights is None else tf.constant(class_weights, tf.float32)
        if self.use_binary_cross_entropy:
            loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=one_hot, logits=logits)
            if weights is not None:
                loss = loss * weights
        else:
            loss = tf.nn.softmax_cross_entropy_with_logits(labels=one_hot, logits=logits)
            if weights is not None:
                loss = loss * tf.linalg.matvec(one_hot, weights)
        if self.top_k_percent < 1.0:
            return self.aggregate_loss_top_k(loss)
        return tf.reduce_mean(loss)

    def aggregate_loss_top_k(self, loss: Any, num_valid_values: Any = None) -> tf.Tensor:
        """The mean of the largest `int(top_k_percent * loss.size)` values of `loss`.

        Args:
          loss: The loss values, any shape.
          num_valid_values: With a count, the sum is divided by at most that many (values
            beyond it are padding); None counts every value.

        Returns:
          `sum(top k values) / (min(k, num_valid_values) + 1e-5)`, a float32 scalar.
        """
        loss = tf.reshape(tf.cast(loss, tf.float32), [-1])
        k = tf.cast(self.top_k_percent * tf.cast(tf.size(loss), tf.float32), tf.int32)
        top_k_losses, _ = tf.math.top_k(loss, k=k)
        normalizer = tf.cast(k, tf.float32)
        if num_valid_values is not None:
            normalizer = tf.minimum(normalizer, tf.cast(num_valid_values, tf.float32))
        return tf.reduce_sum(top_k_losses) / (normalizer + TOP_K_EPSILON)


class FastrcnnBoxLoss:
    """The Fast R-CNN box regression loss (Model Garden's `FastrcnnBoxLoss`).

    Each ROI's box offsets are those predicted for its target class (the only box with
    `class_agnostic_bbox_pred`). The Huber loss of every coordinate of the foreground ROIs
    (class > 0) is summed and divided by the number of those coordinates (averaged over
    replicas) + 0.01.

    Args:
      huber_loss_delta: The Huber loss's delta (Model Garden's `frcnn_huber_loss_delta`,
        1.0).
      class_agnostic_bbox_pred: The head predicts one box per ROI (`[batch, num_rois, 4]`)
        instead of one per class.
    """

    def __init__(self, huber_loss_delta: float, class_agnostic_bbox_pred: bool = False):
        self.huber_loss_delta = _check_delta("FastrcnnBoxLoss", huber_loss_delta)
        self.class_agnostic_bbox_pred = bool(class_agnostic_bbox_pred)

    def __call__(self, box_outputs: Any, class_targets: Any, box_targets: Any) -> tf.Tensor:
        """Returns the loss, a float32 scalar.

        Args:
          box_outputs: `[batch, num_rois, num_classes * 4]` box offsets, class-major, or
            `[batch, num_rois, 4]` with `class_agnostic_bbox_pred`.
          class_targets: `[batch, num_rois]` class ids (0 is background).
          box_targets: `[batch, num_rois, 4]` encoded box targets.

        Raises:
          ValueError: If the last dimension of `box_outputs` is not a multiple of 4 (4 with
            `class_agnostic_bbox_pred`).
        """
        outputs = tf.cast(box_outputs, tf.float32)
        classes = tf.cast(class_targets, tf.int32)
        width = outputs.shape[-1]
        if width is not None and (width % 4 or (self.class_agnostic_bbox_pred and width != 4)):
            expected = "4" if self.class_agnostic_bbox_pred else "num_classes * 4"
            raise ValueError(
                f"FastrcnnBoxLoss: `box_outputs` have {width} values per ROI, expected {expected}"
            )
        if not self.class_agnostic_bbox_pred:
            outputs = self._class_boxes(outputs, classes)
        targets = tf.cast(box_targets, tf.float32)
        foreground = tf.cast(classes > 0, tf.float32)[..., tf.newaxis]
        loss = tf.reduce_sum(_huber(targets - outputs, self.huber_loss_delta) * foreground)
        num_coordinates = 4.0 * tf.reduce_sum(foreground)
        return loss / (_replica_mean(num_coordinates) + NORMALIZER_EPSILON)

    @staticmethod
    def _class_boxes(box_outputs: tf.Tensor, class_targets: tf.Tensor) -> tf.Tensor:
        """`[batch, num_rois, 4]`: each ROI's box for its target class (zeros for a class
        out of range, like Model Garden's one-hot selection)."""
        num_classes = box_outputs.shape[-1] // 4
        shape = tf.shape(box_outputs)
        boxes = tf.reshape(box_outputs, tf.stack([shape[0], shape[1], num_classes, 4]))
        in_range = tf.logical_and(class_targets >= 0, class_targets < num_classes)
        selected = tf.gather(
            boxes, tf.clip_by_value(class_targets, 0, num_classes - 1), axis=2, batch_dims=2
        )
        return selected * tf.cast(in_range, tf.float32)[..., tf.newaxis]


class MaskrcnnLoss:
    """The Mask R-CNN mask loss (Model Garden's `MaskrcnnLoss`).

    The binary cross-entropy (from logits) of every mask pixel of the foreground ROIs
    (class > 0) is summed and divided by the number of those pixels (averaged over
    replicas) + 0.01. The mask outputs are each ROI's map for its class (`MaskHead`'s
    output).
    """

    def __call__(self, mask_outputs: Any, mask_targets: Any, select_class_targets: Any) -> Any:
        """Returns the loss, a float32 scalar.

        Args:
          mask_outputs: `[batch, num_masks, height, width]` mask logits.
          mask_targets: `[batch, num_masks, height, width]` binary (or soft) mask targets.
          select_class_targets: `[batch, num_masks]` class ids of the ROIs; those of
            class 0 (background) are left out.
        """
        logits = tf.cast(mask_outputs, tf.float32)
        targets = tf.cast(mask_targets, tf.float32)
        foreground = tf.cast(tf.greater(select_class_targets, 0), tf.float32)
        cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
        # Per-ROI sums, then weighted by the foreground flags: the reduction runs over the
        # long pixel axes.
        per_roi = tf.reduce_sum(cross_entropy, axis=[2, 3])
        loss = tf.reduce_sum(per_roi * foreground)
        pixels_per_mask = tf.cast(tf.shape(logits)[2] * tf.shape(logits)[3], tf.float32)
        num_pixels = pixels_per_mask * tf.reduce_sum(foreground)
        return loss / (_replica_mean(num_pixels) + NORMALIZER_EPSILON)
