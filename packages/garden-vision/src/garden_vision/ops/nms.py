"""Non-maximum suppression with fixed output shapes (Model Garden's `ops.nms`).

Greedy NMS keeps the highest-scoring box, drops every remaining box whose IoU with it
exceeds a threshold, and repeats. The functions here return fixed-size, padded results, so
they run inside training graphs, `tf.function`s with static shapes, XLA and TPUs, and over
any number of leading batch dimensions (images, classes) in one call:

- `non_max_suppression_padded`: indices of the kept boxes plus how many are valid
  (TensorFlow's `tf.image.non_max_suppression_padded`, batched).
- `sorted_non_max_suppression_padded`: Model Garden's interface for boxes already sorted
  by score (as after `box_ops.top_k_boxes`): the kept scores and boxes, zero padded.
- `soft_non_max_suppression_padded`: Soft-NMS (Bodla et al., 2017), which decays the
  scores of overlapping boxes by `exp(-0.5 * iou**2 / sigma)` instead of dropping them.
- `batched_non_max_suppression`: per-class NMS merged over classes
  (`tf.image.combined_non_max_suppression`), with int32 classes.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = [
    "batched_non_max_suppression",
    "non_max_suppression_padded",
    "soft_non_max_suppression_padded",
    "sorted_non_max_suppression_padded",
]


def _check_inputs(boxes: tf.Tensor, scores: tf.Tensor) -> None:
    if boxes.shape.rank is not None and (boxes.shape.rank < 2 or boxes.shape[-1] not in (None, 4)):
        raise ValueError(f"NMS boxes must be [..., num_boxes, 4], got shape {boxes.shape}")
    if (
        boxes.shape.rank is not None
        and scores.shape.rank is not None
        and scores.shape.rank != boxes.shape.rank - 1
    ):
        raise ValueError(
            f"NMS scores must be [..., num_boxes] for boxes {boxes.shape}, got {scores.shape}"
        )


def non_max_suppression_padded(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    max_output_size: int,
    iou_threshold: float = 0.5,
    score_threshold: float = float("-inf"),
    sorted_input: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy NMS over the last box axis, for any leading batch dimensions.

    A box is suppressed when its IoU with a kept, higher-scoring box exceeds
    `iou_threshold`; boxes scoring at most `score_threshold` are never kept.

    Args:
      boxes: `[..., N, 4]` boxes (`[ymin, xmin, ymax, xmax]`).
      scores: `[..., N]` scores.
      max_output_size: How many boxes to keep at most (the output length).
      iou_threshold: The IoU above which a lower-scoring box is suppressed.
      score_threshold: Boxes scoring at or below it are dropped first.
      sorted_input: Whether `scores` are already sorted in decreasing order (faster).

    Returns:
      `(indices, num_valid)`: int32 `[..., max_output_size]` indices into the N boxes, in
      decreasing score order, padded with 0 after the first `num_valid` (int32 `[...]`).
    """
    boxes = tf.convert_to_tensor(boxes)
    scores = tf.convert_to_tensor(scores)
    _check_inputs(boxes, scores)
    with tf.name_scope("non_max_suppression_padded"):
        boxes = tf.cast(boxes, tf.float32)
        # TensorFlow's tiled NMS never keeps a box whose coordinates are all <= 0 (it marks
        # removed boxes that way). IoU does not change under translation, so the boxes of
        # each set are moved to positive coordinates first.
        lowest = tf.reduce_min(boxes, axis=[-2, -1], keepdims=True)
        boxes = boxes + tf.where(lowest > 0.0, 0.0, 1.0 - lowest)
        indices, num_valid = tf.image.non_max_suppression_padded(
            boxes,
            tf.cast(scores, tf.float32),
            max_output_size,
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
            pad_to_max_output_size=True,
            sorted_input=sorted_input,
        )
        return tf.cast(indices, tf.int32), tf.cast(num_valid, tf.int32)


def sorted_non_max_suppression_padded(
    scores: tf.Tensor, boxes: tf.Tensor, max_output_size: int, iou_threshold: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """NMS of score-sorted boxes, returning the kept scores and boxes (zero padded).

    This is the interface of Model Garden's tiled NMS: entries removed beforehand by
    `box_ops.filter_boxes_by_scores` (score -1) are skipped; scores are otherwise
    probabilities (>= 0).

    Args:
      scores: `[batch, N]`, sorted in decreasing order (except removed entries).
      boxes: `[batch, N, 4]`.
      max_output_size: How many boxes to keep at most.
      iou_threshold: The IoU above which a lower-scoring box is suppressed.

    Returns:
      `(nms_scores [batch, max_output_size], nms_boxes [batch, max_output_size, 4])`, with
      zeros after the kept boxes, in the input dtypes.
    """
    scores = tf.convert_to_tensor(scores)
    boxes = tf.convert_to_tensor(boxes)
    _check_inputs(boxes, scores)
    kept = scores >= 0
    indices, num_valid = non_max_suppression_padded(
        boxes,
        tf.where(kept, scores, -tf.ones_like(scores)),
        max_output_size,
        iou_threshold=iou_threshold,
        score_threshold=-0.5,
    )
    valid = tf.range(max_output_size) < num_valid[..., None]
    nms_scores = tf.gather(scores, indices, batch_dims=scores.shape.rank - 1)
    nms_boxes = tf.gather(boxes, indices, batch_dims=scores.shape.rank - 1)
    nms_scores = tf.where(valid, nms_scores, tf.zeros_like(nms_scores))
    nms_boxes = tf.where(valid[..., None], nms_boxes, tf.zeros_like(nms_boxes))
    return nms_scores, nms_boxes


def soft_non_max_suppression_padded(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    max_output_size: int,
    iou_threshold: float = 0.5,
    score_threshold: float = float("-inf"),
    soft_nms_sigma: float = 0.0,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Soft-NMS (`tf.image.non_max_suppression_with_scores`) over leading batch dimensions.

    Each kept box multiplies the scores of the others by `exp(-0.5 * iou**2 /
    soft_nms_sigma)` (TensorFlow's definition); boxes whose score falls to
    `score_threshold` or below are dropped. With `soft_nms_sigma=0` it is greedy NMS.

    Args:
      boxes: `[..., N, 4]` boxes.
      scores: `[..., N]` scores.
      max_output_size: How many boxes to keep at most.
      iou_threshold: The IoU above which boxes are suppressed when `soft_nms_sigma` is 0
        (unused by Soft-NMS proper).
      score_threshold: The score at or below which boxes are dropped.
      soft_nms_sigma: The Gaussian decay parameter.

    Returns:
      `(indices, nms_scores, num_valid)`: int32 `[..., max_output_size]` indices padded with
      0, float32 decayed scores padded with 0, and int32 counts `[...]`.
    """
    boxes = tf.convert_to_tensor(boxes)
    scores = tf.convert_to_tensor(scores)
    _check_inputs(boxes, scores)
    with tf.name_scope("soft_non_max_suppression_padded"):
        batch_shape = tf.shape(scores)[:-1]
        num_boxes = tf.shape(scores)[-1]
        flat_boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, num_boxes, 4])
        flat_scores = tf.reshape(tf.cast(scores, tf.float32), [-1, num_boxes])

        def one(args):
            image_boxes, image_scores = args
            indices, kept_scores = tf.image.non_max_suppression_with_scores(
                image_boxes,
                image_scores,
                max_output_size,
                iou_threshold=iou_threshold,
                score_threshold=score_threshold,
                soft_nms_sigma=soft_nms_sigma,
            )
            count = tf.shape(indices)[0]
            pad = [[0, max_output_size - count]]
            return tf.pad(indices, pad), tf.pad(kept_scores, pad), count

        indices, kept_scores, counts = tf.map_fn(
            one,
            (flat_boxes, flat_scores),
            fn_output_signature=(
                tf.TensorSpec([max_output_size], tf.int32),
                tf.TensorSpec([max_output_size], tf.float32),
                tf.TensorSpec([], tf.int32),
            ),
        )
        output_shape = tf.concat([batch_shape, [max_output_size]], axis=0)
        return (
            tf.reshape(indices, output_shape),
            tf.reshape(kept_scores, output_shape),
            tf.reshape(counts, batch_shape),
        )


def batched_non_max_suppression(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    max_output_size_per_class: int,
    max_total_size: int,
    iou_threshold: float = 0.5,
    score_threshold: float = float("-inf"),
    clip_boxes: bool = False,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-class NMS of a batch, merged over classes (`tf.image.combined_non_max_suppression`).

    Args:
      boxes: `[batch, N, q, 4]` boxes, `q` 1 (shared by all classes) or `num_classes`.
      scores: `[batch, N, num_classes]` scores.
      max_output_size_per_class: How many boxes each class keeps at most.
      max_total_size: How many detections each image keeps at most (the output length).
      iou_threshold: The IoU above which a lower-scoring box of a class is suppressed.
      score_threshold: Boxes scoring at or below it are dropped first.
      clip_boxes: Whether to clip the boxes to [0, 1] (for normalized boxes).

    Returns:
      `(boxes [batch, max_total_size, 4], scores [batch, max_total_size], classes int32
      [batch, max_total_size] (0-based score columns), num_valid int32 [batch])`, sorted by
      score and zero padded.
    """
    with tf.name_scope("batched_non_max_suppression"):
        nmsed_boxes, nmsed_scores, nmsed_classes, num_valid = tf.image.combined_non_max_suppression(
            tf.cast(boxes, tf.float32),
            tf.cast(scores, tf.float32),
            max_output_size_per_class=max_output_size_per_class,
            max_total_size=max_total_size,
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
            pad_per_class=False,
            clip_boxes=clip_boxes,
        )
        return nmsed_boxes, nmsed_scores, tf.cast(nmsed_classes, tf.int32), num_valid
