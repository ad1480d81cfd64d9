"""Region proposals from the RPN's outputs (Model Garden's `MultilevelROIGenerator`).

The region proposal network scores every anchor of every FPN level (one objectness logit)
and regresses a box from it. `MultilevelROIGenerator` turns those into a fixed number of
proposals per image; for each level separately it

1. applies a sigmoid to the logits,
2. decodes the boxes against the anchors (the Faster R-CNN coder, no weights),
3. clips them to the image,
4. zeroes boxes with a side at most `pre_nms_min_size_threshold` pixels or a center
   outside the image (when the threshold is positive),
5. keeps the `pre_nms_top_k` best boxes scoring above `pre_nms_score_threshold`,
6. runs NMS at `nms_iou_threshold` (none when it is 0), keeping at most
   `num_proposals` boxes; boxes without a positive coordinate (the ones removed by the
   filters, and any clipped down to the image's top-left corner) are never kept,

then keeps the `num_proposals` best boxes over all levels. Training and inference use
separate settings (`test_*`), chosen by the `training` argument. With
`use_batched_nms`, step 5-6 run as `tf.image.combined_non_max_suppression`
(`pre_nms_top_k` then caps the boxes NMS keeps rather than those it sees).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from garden_vision.ops import box_ops, nms

__all__ = ["MultilevelROIGenerator"]


def _smaller(count, limit: int):
    """`min(count, limit)` for a Python or tensor `count`."""
    if isinstance(count, int):
        return min(count, limit)
    return tf.minimum(count, limit)


def _multilevel_propose_rois(
    raw_boxes: Mapping[str, tf.Tensor],
    raw_scores: Mapping[str, tf.Tensor],
    anchor_boxes: Mapping[str, tf.Tensor],
    image_shape: tf.Tensor,
    pre_nms_top_k: int = 2000,
    pre_nms_score_threshold: float = 0.0,
    pre_nms_min_size_threshold: float = 0.0,
    nms_iou_threshold: float = 0.7,
    num_proposals: int = 1000,
    use_batched_nms: bool = False,
    decode_boxes: bool = True,
    clip_boxes: bool = True,
    apply_sigmoid_to_score: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Proposals from multi-level RPN outputs; see the module docstring for the steps.

    Returns:
      `(rois [batch, K, 4], roi_scores [batch, K])`, sorted by score, `K =
      min(num_proposals, sum of the per-level outputs)`.
    """
    with tf.name_scope("multilevel_propose_rois"):
        image_shape = tf.cast(image_shape, tf.float32)[:, None, :]  # [batch, 1, 2]
        rois, roi_scores = [], []
        for level in sorted(raw_scores, key=int):
            scores = tf.cast(raw_scores[level], tf.float32)
            boxes = tf.cast(raw_boxes[level], tf.float32)
            batch = tf.shape(scores)[0]
            static = scores.shape.as_list()
            dynamic = tf.shape(scores)
            # H * W * A: a Python int when the shapes are static (the usual case).
            height, width, anchors_per_location = (
                dynamic[i] if static[i] is None else static[i] for i in (1, 2, 3)
            )
            num_boxes = height * width * anchors_per_location
            scores = tf.reshape(scores, [batch, num_boxes])
            boxes = tf.reshape(boxes, [batch, num_boxes, 4])
            if apply_sigmoid_to_score:
                scores = tf.sigmoid(scores)
            if decode_boxes:
                anchors = tf.cast(anchor_boxes[level], tf.float32)
                anchors = tf.reshape(anchors, [-1, num_boxes, 4])
                boxes = box_ops.decode_boxes(boxes, anchors)
            if clip_boxes:
                boxes = box_ops.clip_boxes(boxes, image_shape)
            if pre_nms_min_size_threshold > 0.0:
                boxes, scores = box_ops.filter_boxes(
                    boxes, scores, image_shape, pre_nms_min_size_threshold
                )
            level_pre_nms_top_k = _smaller(num_boxes, pre_nms_top_k)
            level_num_proposals = _smaller(num_boxes, num_proposals)
            if nms_iou_threshold > 0.0:
                if use_batched_nms:
                    level_rois, level_scores, _, _ = nms.batched_non_max_suppression(
                        boxes[:, :, None, :],
                        scores[..., None],
                        max_output_size_per_class=level_pre_nms_top_k,
                        max_total_size=level_num_proposals,
                        iou_threshold=nms_iou_threshold,
                        score_threshold=pre_nms_score_threshold,
                    )
                else:
                    if pre_nms_score_threshold > 0.0:
                        boxes, scores = box_ops.filter_boxes_by_scores(
                            boxes, scores, pre_nms_score_threshold
                        )
                    boxes, scores = box_ops.top_k_boxes(boxes, scores, k=level_pre_nms_top_k)
                    # Boxes with no positive coordinate (those filtered out above, and
                    # those clipped to the image's corner) are never proposed.
                    dots = tf.reduce_max(boxes, axis=-1) <= 0.0
                    scores = tf.where(dots, -tf.ones_like(scores), scores)
                    level_scores, level_rois = nms.sorted_non_max_suppression_padded(
                        scores,
                        boxes,
                        max_output_size=level_num_proposals,
                        iou_threshold=nms_iou_threshold,
                    )
            else:
                level_rois, level_scores = box_ops.top_k_boxes(boxes, scores, k=level_num_proposals)
            rois.append(level_rois)
            roi_scores.append(level_scores)

        all_rois = tf.concat(rois, axis=1)
        all_scores = tf.concat(roi_scores, axis=1)
        total = all_scores.shape[1]
        if total is None:
            total = tf.shape(all_scores)[1]
        return box_ops.top_k_boxes(all_rois, all_scores, k=_smaller(total, num_proposals))


@keras.saving.register_keras_serializable(package="garden_vision")
class MultilevelROIGenerator(keras.layers.Layer):
    """Proposes regions of interest from an RPN's multi-level outputs.

    Example:

        generator = MultilevelROIGenerator(num_proposals=2000, test_num_proposals=1000)
        rois, scores = generator(rpn_boxes, rpn_scores, anchor.multilevel_boxes,
                                 image_shape, training=True)  # [batch, 2000, 4], [batch, 2000]

    Args:
      pre_nms_top_k: Boxes per level entering NMS in training.
      pre_nms_score_threshold: Boxes scoring at or below it are dropped before NMS in
        training.
      pre_nms_min_size_threshold: Boxes with a side at most this many pixels are dropped
        before NMS in training (0: none are).
      nms_iou_threshold: The NMS IoU threshold in training (0: no NMS).
      num_proposals: Proposals per image in training (per level after NMS, and overall).
      test_pre_nms_top_k, test_pre_nms_score_threshold, test_pre_nms_min_size_threshold,
        test_nms_iou_threshold, test_num_proposals: The same for inference.
      use_batched_nms: Whether to use `tf.image.combined_non_max_suppression`.
      **kwargs: Layer arguments (`name`, `dtype`; float32 by default).

    Raises:
      ValueError: For a non-positive top-k or proposal count.
    """

    def __init__(
        self,
        pre_nms_top_k: int = 2000,
        pre_nms_score_threshold: float = 0.0,
        pre_nms_min_size_threshold: float = 0.0,
        nms_iou_threshold: float = 0.7,
        num_proposals: int = 1000,
        test_pre_nms_top_k: int = 1000,
        test_pre_nms_score_threshold: float = 0.0,
        test_pre_nms_min_size_threshold: float = 0.0,
        test_nms_iou_threshold: float = 0.7,
        test_num_proposals: int = 1000,
        use_batched_nms: bool = False,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        for name, value in (
            ("pre_nms_top_k", pre_nms_top_k),
            ("num_proposals", num_proposals),
            ("test_pre_nms_top_k", test_pre_nms_top_k),
            ("test_num_proposals", test_num_proposals),
        ):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (
            ("nms_iou_threshold", nms_iou_threshold),
            ("test_nms_iou_threshold", test_nms_iou_threshold),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.pre_nms_top_k = int(pre_nms_top_k)
        self.pre_nms_score_threshold = float(pre_nms_score_threshold)
        self.pre_nms_min_size_threshold = float(pre_nms_min_size_threshold)
        self.nms_iou_threshold = float(nms_iou_threshold)
        self.num_proposals = int(num_proposals)
        self.test_pre_nms_top_k = int(test_pre_nms_top_k)
        self.test_pre_nms_score_threshold = float(test_pre_nms_score_threshold)
        self.test_pre_nms_min_size_threshold = float(test_pre_nms_min_size_threshold)
        self.test_nms_iou_threshold = float(test_nms_iou_threshold)
        self.test_num_proposals = int(test_num_proposals)
        self.use_batched_nms = bool(use_batched_nms)

    def call(
        self,
        raw_boxes: Mapping[str, tf.Tensor],
        raw_scores: Mapping[str, tf.Tensor],
        anchor_boxes: Mapping[str, tf.Tensor],
        image_shape: tf.Tensor,
        training: bool | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Proposes ROIs.

        Args:
          raw_boxes: `{str(level): [batch, H, W, A * 4]}` box regressions.
          raw_scores: `{str(level): [batch, H, W, A]}` objectness logits.
          anchor_boxes: `{str(level): ...}` pixel anchors reshapeable to
            `[batch or 1, H * W * A, 4]` (e.g. `Anchor.multilevel_boxes`' `[H, W, A * 4]`).
          image_shape: `[batch, 2]` `[height, width]` of the scaled images.
          training: Whether to use the training settings (else the `test_*` ones).

        Returns:
          `(roi_boxes [batch, K, 4], roi_scores [batch, K])` in image pixels, sorted by
          score, with `K = num_proposals` (or `test_num_proposals`) when the levels hold
          that many boxes; entries past the kept boxes are zero.

        Raises:
          ValueError: If the levels of the three dicts differ.
        """
        levels = set(raw_scores)
        if set(raw_boxes) != levels:
            raise ValueError(
                f"raw_boxes levels {sorted(raw_boxes)} differ from raw_scores levels "
                f"{sorted(levels)}"
            )
        missing = sorted(levels - set(anchor_boxes))
        if missing:
            raise ValueError(f"anchor_boxes lack levels {missing} (has {sorted(anchor_boxes)})")
        prefix = "" if training else "test_"
        return _multilevel_propose_rois(
            raw_boxes,
            raw_scores,
            anchor_boxes,
            image_shape,
            pre_nms_top_k=getattr(self, f"{prefix}pre_nms_top_k"),
            pre_nms_score_threshold=getattr(self, f"{prefix}pre_nms_score_threshold"),
            pre_nms_min_size_threshold=getattr(self, f"{prefix}pre_nms_min_size_threshold"),
            nms_iou_threshold=getattr(self, f"{prefix}nms_iou_threshold"),
            num_proposals=getattr(self, f"{prefix}num_proposals"),
            use_batched_nms=self.use_batched_nms,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "pre_nms_top_k": self.pre_nms_top_k,
                "pre_nms_score_threshold": self.pre_nms_score_threshold,
                "pre_nms_min_size_threshold": self.pre_nms_min_size_threshold,
                "nms_iou_threshold": self.nms_iou_threshold,
                "num_proposals": self.num_proposals,
                "test_pre_nms_top_k": self.test_pre_nms_top_k,
                "test_pre_nms_score_threshold": self.test_pre_nms_score_threshold,
                "test_pre_nms_min_size_threshold": self.test_pre_nms_min_size_threshold,
                "test_nms_iou_threshold": self.test_nms_iou_threshold,
                "test_num_proposals": self.test_num_proposals,
                "use_batched_nms": self.use_batched_nms,
            }
        )
        return config
