"""Box arithmetic for detection (Model Garden's `official.vision.ops.box_ops`).

Boxes are `[..., 4]` tensors in `[ymin, xmin, ymax, xmax]` order (`yxyx`): normalized to
[0, 1] in TFRecords, in pixels inside models. This module converts between box formats
(`yxyx`, COCO's `[x, y, width, height]`, center-size), scales boxes between normalized and
pixel coordinates, clips, flips, filters and jitters them, encodes them relative to anchors
and decodes them back (the Faster R-CNN box coder: `[dy, dx, dh, dw]` multiplied by
optional `weights`), computes pairwise IoU / generalized IoU between box sets where padded
ground-truth boxes (all coordinates negative, usually -1) score -1, and matches boxes to
ground truth.

Everything is written with TensorFlow ops (graph and `tf.data` friendly); `yxyx_to_xywh` and
`xywh_to_yxyx` also take NumPy arrays and then return NumPy arrays, for evaluation code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = [
    "BBOX_XFORM_CLIP",
    "EPSILON",
    "bbox_generalized_overlap",
    "bbox_intersection_over_area",
    "bbox_overlap",
    "box_matching",
    "clip_boxes",
    "compute_outer_boxes",
    "cycxhw_to_yxyx",
    "decode_boxes",
    "denormalize_boxes",
    "encode_boxes",
    "filter_boxes",
    "filter_boxes_by_scores",
    "gather_instances",
    "get_non_empty_box_indices",
    "giou",
    "horizontal_flip_boxes",
    "jitter_boxes",
    "normalize_boxes",
    "top_k_boxes",
    "vertical_flip_boxes",
    "xywh_to_yxyx",
    "yxyx_to_cycxhw",
    "yxyx_to_xywh",
]

# Added to areas before dividing, so that empty boxes give 0 rather than NaN.
EPSILON = 1e-8
# The largest log-scale change `decode_boxes` applies: a box grows at most 1000/16 times.
BBOX_XFORM_CLIP = math.log(1000.0 / 16.0)

ImageShape = Sequence[float] | tf.Tensor


def _check_boxes(boxes, name: str = "boxes") -> None:
    last = boxes.shape[-1] if boxes.shape.rank else None
    if last is not None and last != 4:
        raise ValueError(
            f"{name} must have 4 coordinates in its last dimension, got shape {boxes.shape}"
        )


def _image_size(image_shape: ImageShape, dtype: tf.DType) -> tuple:
    """`(height, width)` broadcastable against `boxes[..., i:i+1]`."""
    if isinstance(image_shape, (list, tuple)):
        if len(image_shape) != 2:
            raise ValueError(f"image_shape must be [height, width], got {image_shape}")
        return tf.cast(image_shape[0], dtype), tf.cast(image_shape[1], dtype)
    image_shape = tf.cast(image_shape, dtype)
    if image_shape.shape.rank is not None and image_shape.shape[-1] not in (None, 2):
        raise ValueError(f"image_shape must end in [height, width], got shape {image_shape.shape}")
    return image_shape[..., 0:1], image_shape[..., 1:2]


def yxyx_to_xywh(boxes):
    """Converts `[ymin, xmin, ymax, xmax]` boxes to COCO's `[xmin, ymin, width, height]`.

    Args:
      boxes: `[..., 4]`, a NumPy array (the result is NumPy) or a tensor.
    """
    if isinstance(boxes, np.ndarray):
        if boxes.shape[-1] != 4:
            raise ValueError(f"boxes must end in 4 coordinates, got shape {boxes.shape}")
        ymin, xmin, ymax, xmax = (boxes[..., i] for i in range(4))
        return np.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=-1)
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, 4, axis=-1)
    return tf.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=-1)


def xywh_to_yxyx(boxes):
    """Converts COCO's `[xmin, ymin, width, height]` boxes to `[ymin, xmin, ymax, xmax]`.

    Args:
      boxes: `[..., 4]`, a NumPy array (the result is NumPy) or a tensor.
    """
    if isinstance(boxes, np.ndarray):
        if boxes.shape[-1] != 4:
            raise ValueError(f"boxes must end in 4 coordinates, got shape {boxes.shape}")
        x, y, width, height = (boxes[..., i] for i in range(4))
        return np.stack([y, x, y + height, x + width], axis=-1)
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    x, y, width, height = tf.unstack(boxes, 4, axis=-1)
    return tf.stack([y, x, y + height, x + width], axis=-1)


def yxyx_to_cycxhw(boxes: tf.Tensor) -> tf.Tensor:
    """Converts corner boxes to `[center_y, center_x, height, width]`."""
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, 4, axis=-1)
    return tf.stack([(ymin + ymax) / 2.0, (xmin + xmax) / 2.0, ymax - ymin, xmax - xmin], axis=-1)


def cycxhw_to_yxyx(boxes: tf.Tensor) -> tf.Tensor:
    """Converts `[center_y, center_x, height, width]` boxes to corner boxes."""
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    cy, cx, height, width = tf.unstack(boxes, 4, axis=-1)
    return tf.stack(
        [cy - height / 2.0, cx - width / 2.0, cy + height / 2.0, cx + width / 2.0], axis=-1
    )


def horizontal_flip_boxes(normalized_boxes: tf.Tensor) -> tf.Tensor:
    """Mirrors normalized boxes left to right: `xmin, xmax -> 1 - xmax, 1 - xmin`."""
    normalized_boxes = tf.convert_to_tensor(normalized_boxes)
    _check_boxes(normalized_boxes, "normalized_boxes")
    ymin, xmin, ymax, xmax = tf.unstack(normalized_boxes, 4, axis=-1)
    return tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=-1)


def vertical_flip_boxes(normalized_boxes: tf.Tensor) -> tf.Tensor:
    """Mirrors normalized boxes top to bottom: `ymin, ymax -> 1 - ymax, 1 - ymin`."""
    normalized_boxes = tf.convert_to_tensor(normalized_boxes)
    _check_boxes(normalized_boxes, "normalized_boxes")
    ymin, xmin, ymax, xmax = tf.unstack(normalized_boxes, 4, axis=-1)
    return tf.stack([1.0 - ymax, xmin, 1.0 - ymin, xmax], axis=-1)


def normalize_boxes(boxes: tf.Tensor, image_shape: ImageShape) -> tf.Tensor:
    """Divides pixel boxes by the image `[height, width]`, giving coordinates in [0, 1].

    Args:
      boxes: `[..., 4]` pixel boxes.
      image_shape: `[height, width]` as a pair of numbers, or a tensor whose leading
        dimensions broadcast against `boxes[..., :1]` (e.g. `[batch, 1, 2]` for
        `[batch, N, 4]` boxes).
    """
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    with tf.name_scope("normalize_boxes"):
        height, width = _image_size(image_shape, boxes.dtype)
        return boxes / tf.concat(
            [height * tf.ones_like(boxes[..., :1]), width * tf.ones_like(boxes[..., :1])] * 2,
            axis=-1,
        )


def denormalize_boxes(boxes: tf.Tensor, image_shape: ImageShape) -> tf.Tensor:
    """Multiplies normalized boxes by the image `[height, width]`, giving pixels.

    Args:
      boxes: `[..., 4]` normalized boxes.
      image_shape: As for `normalize_boxes`.
    """
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    with tf.name_scope("denormalize_boxes"):
        height, width = _image_size(image_shape, boxes.dtype)
        return boxes * tf.concat(
            [height * tf.ones_like(boxes[..., :1]), width * tf.ones_like(boxes[..., :1])] * 2,
            axis=-1,
        )


def clip_boxes(boxes: tf.Tensor, image_shape: ImageShape) -> tf.Tensor:
    """Clips pixel boxes to the image: every coordinate into `[0, height]` or `[0, width]`.

    Args:
      boxes: `[..., 4]` pixel boxes.
      image_shape: As for `normalize_boxes`.
    """
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    with tf.name_scope("clip_boxes"):
        height, width = _image_size(image_shape, boxes.dtype)
        ones = tf.ones_like(boxes[..., :1])
        limits = tf.concat([height * ones, width * ones] * 2, axis=-1)
        return tf.maximum(tf.minimum(boxes, limits), 0.0)


def compute_outer_boxes(boxes: tf.Tensor, image_shape: ImageShape, scale: float = 1.0) -> tf.Tensor:
    """Boxes `scale` times larger around the same centers, clipped to the image.

    Mask R-CNN's mask targets use them to keep a margin around each object.

    Args:
      boxes: `[..., 4]` pixel boxes.
      image_shape: As for `normalize_boxes`.
      scale: The enlargement, at least 1 (1 returns `boxes` unchanged).

    Raises:
      ValueError: If `scale` is below 1.
    """
    if scale < 1.0:
        raise ValueError(f"compute_outer_boxes scale must be at least 1.0, got {scale}")
    boxes = tf.convert_to_tensor(boxes)
    if scale == 1.0:
        return boxes
    centers = yxyx_to_cycxhw(boxes)
    scaled = tf.concat([centers[..., :2], centers[..., 2:] * scale], axis=-1)
    return clip_boxes(cycxhw_to_yxyx(scaled), image_shape)


def jitter_boxes(
    boxes: tf.Tensor, noise_scale: float = 0.025, seed: int | None = None
) -> tf.Tensor:
    """Moves and resizes boxes by Gaussian noise relative to their size.

    The center moves by `N(0, noise_scale) * size` and each side is multiplied by
    `exp(N(0, noise_scale))`; Model Garden found 0.025 to mimic noisy detections best.

    Args:
      boxes: `[..., 4]` boxes.
      noise_scale: The standard deviation of the noise, typically in (0, 0.1].
      seed: Optional random seed.
    """
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    with tf.name_scope("jitter_boxes"):
        noise = tf.random.normal(tf.shape(boxes), stddev=noise_scale, dtype=boxes.dtype, seed=seed)
        cy, cx, height, width = tf.unstack(yxyx_to_cycxhw(boxes), 4, axis=-1)
        cy = cy + noise[..., 0] * height
        cx = cx + noise[..., 1] * width
        height = height * tf.exp(noise[..., 2])
        width = width * tf.exp(noise[..., 3])
        return cycxhw_to_yxyx(tf.stack([cy, cx, height, width], axis=-1))


def _encode(boxes, anchors, weights, epsilon: float) -> tf.Tensor:
    anchors = tf.convert_to_tensor(anchors)
    boxes = tf.cast(boxes, anchors.dtype)
    cy, cx, height, width = tf.unstack(yxyx_to_cycxhw(boxes), 4, axis=-1)
    acy, acx, aheight, awidth = tf.unstack(yxyx_to_cycxhw(anchors), 4, axis=-1)
    if epsilon:
        height, width = height + epsilon, width + epsilon
        aheight, awidth = aheight + epsilon, awidth + epsilon
    encoded = [
        (cy - acy) / aheight,
        (cx - acx) / awidth,
        tf.math.log(height / aheight),
        tf.math.log(width / awidth),
    ]
    if weights:
        encoded = [value * weight for value, weight in zip(encoded, _weights(weights), strict=True)]
    return tf.stack(encoded, axis=-1)


def _weights(weights: Sequence[float]) -> list[float]:
    weights = [float(weight) for weight in weights]
    if len(weights) != 4 or any(weight <= 0 for weight in weights):
        raise ValueError(f"box coder weights must be 4 positive numbers, got {weights}")
    return weights


def encode_boxes(
    boxes: tf.Tensor, anchors: tf.Tensor, weights: Sequence[float] | None = None
) -> tf.Tensor:
    """Encodes boxes relative to anchors as `[dy, dx, dh, dw]` (the Faster R-CNN coder).

    `dy = (box_center_y - anchor_center_y) / anchor_height`, `dh = log(box_height /
    anchor_height)` (likewise for x and width), each multiplied by its weight.

    Args:
      boxes: `[..., 4]` boxes.
      anchors: Anchors with the same shape as `boxes`, or broadcastable to it.
      weights: Optional 4 positive scales for `[dy, dx, dh, dw]`, e.g. `[10, 10, 5, 5]` for
        Faster R-CNN's second stage.

    Returns:
      `[..., 4]` encoded boxes, in the anchors' dtype.
    """
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    with tf.name_scope("encode_boxes"):
        return _encode(boxes, anchors, weights, epsilon=0.0)


def decode_boxes(
    encoded_boxes: tf.Tensor, anchors: tf.Tensor, weights: Sequence[float] | None = None
) -> tf.Tensor:
    """Inverts `encode_boxes`: `[dy, dx, dh, dw]` relative to anchors back to boxes.

    `dh` and `dw` are capped at `BBOX_XFORM_CLIP` (after dividing by their weights) so a
    wild prediction cannot overflow `exp`.

    Args:
      encoded_boxes: `[..., 4]` encoded boxes.
      anchors: Anchors with the same shape, or broadcastable to it.
      weights: The weights they were encoded with, or None.

    Returns:
      `[..., 4]` boxes in `[ymin, xmin, ymax, xmax]`, in the anchors' dtype.
    """
    encoded_boxes = tf.convert_to_tensor(encoded_boxes)
    _check_boxes(encoded_boxes, "encoded_boxes")
    with tf.name_scope("decode_boxes"):
        anchors = tf.convert_to_tensor(anchors)
        encoded_boxes = tf.cast(encoded_boxes, anchors.dtype)
        dy, dx, dh, dw = tf.unstack(encoded_boxes, 4, axis=-1)
        if weights:
            wy, wx, wh, ww = _weights(weights)
            dy, dx, dh, dw = dy / wy, dx / wx, dh / wh, dw / ww
        dh = tf.minimum(dh, BBOX_XFORM_CLIP)
        dw = tf.minimum(dw, BBOX_XFORM_CLIP)
        acy, acx, aheight, awidth = tf.unstack(yxyx_to_cycxhw(anchors), 4, axis=-1)
        cy = dy * aheight + acy
        cx = dx * awidth + acx
        height = tf.exp(dh) * aheight
        width = tf.exp(dw) * awidth
        ymin = cy - 0.5 * height
        xmin = cx - 0.5 * width
        return tf.stack([ymin, xmin, ymin + height, xmin + width], axis=-1)


def filter_boxes(
    boxes: tf.Tensor, scores: tf.Tensor, image_shape: ImageShape, min_size_threshold: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Zeroes boxes (and their scores) that are too small or centered outside the image.

    A box is kept when both sides exceed `max(min_size_threshold, 0)` and its center lies
    strictly inside the image.

    Args:
      boxes: `[..., N, 4]` pixel boxes.
      scores: `[..., N]` scores.
      image_shape: `[height, width]`, or a tensor broadcastable to `boxes[..., :1]`.
      min_size_threshold: The smallest side length kept, in pixels.

    Returns:
      `(filtered_boxes, filtered_scores)`: the inputs with the removed entries set to 0.
    """
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    with tf.name_scope("filter_boxes"):
        height, width = _image_size(image_shape, boxes.dtype)
        if not isinstance(image_shape, (list, tuple)):
            height, width = height[..., 0], width[..., 0]
        cy, cx, box_height, box_width = tf.unstack(yxyx_to_cycxhw(boxes), 4, axis=-1)
        min_size = tf.cast(max(float(min_size_threshold), 0.0), boxes.dtype)
        keep = (
            (box_height > min_size)
            & (box_width > min_size)
            & (cy > 0.0)
            & (cy < height)
            & (cx > 0.0)
            & (cx < width)
        )
        scores = tf.convert_to_tensor(scores)
        return (
            boxes * tf.cast(keep[..., None], boxes.dtype),
            tf.where(keep, scores, tf.zeros_like(scores)),
        )


def filter_boxes_by_scores(
    boxes: tf.Tensor, scores: tf.Tensor, min_score_threshold: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Marks entries scoring at most `min_score_threshold` as removed.

    Returns:
      `(filtered_boxes, filtered_scores)`: removed boxes become all zeros and removed scores
      become -1 (the marker `nms.sorted_non_max_suppression_padded` skips).
    """
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    with tf.name_scope("filter_boxes_by_scores"):
        scores = tf.convert_to_tensor(scores)
        keep = scores > tf.cast(min_score_threshold, scores.dtype)
        return (
            boxes * tf.cast(keep[..., None], boxes.dtype),
            tf.where(keep, scores, -tf.ones_like(scores)),
        )


def gather_instances(selected_indices: tf.Tensor, instances: tf.Tensor, *aux_instances):
    """Gathers `[batch, N, ...]` tensors at per-example indices `[batch, K]`.

    Returns:
      The gathered `instances` `[batch, K, ...]`, or a tuple with the gathered
      `aux_instances` after it when any are given.
    """
    gathered = [
        tf.gather(tensor, selected_indices, axis=1, batch_dims=1)
        for tensor in (instances, *aux_instances)
    ]
    return tuple(gathered) if aux_instances else gathered[0]


def top_k_boxes(boxes: tf.Tensor, scores: tf.Tensor, k) -> tuple[tf.Tensor, tf.Tensor]:
    """The `k` highest-scoring boxes of each example, sorted.

    Args:
      boxes: `[batch, N, 4]`.
      scores: `[batch, N]`.
      k: How many to keep (at most N).

    Returns:
      `(boxes [batch, k, 4], scores [batch, k])`.
    """
    with tf.name_scope("top_k_boxes"):
        top_scores, indices = tf.math.top_k(scores, k=k, sorted=True)
        return gather_instances(indices, boxes), top_scores


def get_non_empty_box_indices(boxes: tf.Tensor) -> tf.Tensor:
    """Indices (int64 `[K]`) of the `[N, 4]` boxes with positive height and width."""
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes)
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    return tf.where((height > 0) & (width > 0))[:, 0]


def _as_batched(boxes: tf.Tensor, name: str) -> tuple[tf.Tensor, bool]:
    boxes = tf.convert_to_tensor(boxes)
    _check_boxes(boxes, name)
    if boxes.shape.rank == 2:
        return boxes[None], True
    if boxes.shape.rank != 3:
        raise ValueError(f"{name} must be [N, 4] or [batch, N, 4], got shape {boxes.shape}")
    return boxes, False


def _pairwise_parts(boxes: tf.Tensor, gt_boxes: tf.Tensor):
    """Intersection, union and enclosing-box areas `[batch, N, M]`."""
    ymin, xmin, ymax, xmax = (boxes[..., i : i + 1] for i in range(4))
    gymin, gxmin, gymax, gxmax = (gt_boxes[..., None, :, i] for i in range(4))
    intersection = tf.maximum(tf.minimum(ymax, gymax) - tf.maximum(ymin, gymin), 0.0) * (
        tf.maximum(tf.minimum(xmax, gxmax) - tf.maximum(xmin, gxmin), 0.0)
    )
    area = (ymax - ymin) * (xmax - xmin)
    gt_area = (gymax - gymin) * (gxmax - gxmin)
    union = area + gt_area - intersection + EPSILON
    hull = tf.maximum(tf.maximum(ymax, gymax) - tf.minimum(ymin, gymin), 0.0) * (
        tf.maximum(tf.maximum(xmax, gxmax) - tf.minimum(xmin, gxmin), 0.0)
    )
    return intersection, union, hull + EPSILON, area


def _mask_padding(values: tf.Tensor, boxes: tf.Tensor, gt_boxes: tf.Tensor, mask_boxes: bool):
    """Sets -1 where the ground-truth box (or, if `mask_boxes`, the box) is padding."""
    padded_gt = tf.reduce_max(gt_boxes, axis=-1) < 0.0  # [batch, M]
    padding = tf.broadcast_to(padded_gt[:, None, :], tf.shape(values))
    if mask_boxes:
        padded = tf.reduce_max(boxes, axis=-1) < 0.0  # [batch, N]
        padding = padding | padded[:, :, None]
    return tf.where(padding, -tf.ones_like(values), values)


def bbox_overlap(boxes: tf.Tensor, gt_boxes: tf.Tensor) -> tf.Tensor:
    """Pairwise intersection over union between boxes and ground-truth boxes.

    Entries involving padding (a box whose coordinates are all negative, as -1 padding) are
    -1, so that argmax-style matching never picks them.

    Args:
      boxes: `[batch, N, 4]` (or `[N, 4]`) boxes, e.g. proposals or anchors.
      gt_boxes: `[batch, M, 4]` (or `[M, 4]`) ground-truth boxes, possibly padded with -1.

    Returns:
      IoU `[batch, N, M]` (`[N, M]` when both inputs are unbatched).
    """
    boxes, unbatched = _as_batched(boxes, "boxes")
    gt_boxes, gt_unbatched = _as_batched(gt_boxes, "gt_boxes")
    with tf.name_scope("bbox_overlap"):
        gt_boxes = tf.cast(gt_boxes, boxes.dtype)
        intersection, union, _, _ = _pairwise_parts(boxes, gt_boxes)
        iou = _mask_padding(intersection / union, boxes, gt_boxes, mask_boxes=True)
        return iou[0] if unbatched and gt_unbatched else iou


def bbox_generalized_overlap(boxes: tf.Tensor, gt_boxes: tf.Tensor) -> tf.Tensor:
    """Pairwise generalized IoU (Rezatofighi et al., 2019), in [-1, 1].

    `GIoU = IoU - (hull - union) / hull`, where `hull` is the area of the smallest box
    enclosing both. Entries for padded ground-truth boxes are -1.

    Args:
      boxes: `[batch, N, 4]` (or `[N, 4]`) boxes.
      gt_boxes: `[batch, M, 4]` (or `[M, 4]`) ground-truth boxes, possibly padded with -1.

    Returns:
      GIoU `[batch, N, M]` (`[N, M]` when both inputs are unbatched).
    """
    boxes, unbatched = _as_batched(boxes, "boxes")
    gt_boxes, gt_unbatched = _as_batched(gt_boxes, "gt_boxes")
    with tf.name_scope("bbox_generalized_overlap"):
        gt_boxes = tf.cast(gt_boxes, boxes.dtype)
        intersection, union, hull, _ = _pairwise_parts(boxes, gt_boxes)
        value = intersection / union - (hull - union) / hull
        value = _mask_padding(value, boxes, gt_boxes, mask_boxes=False)
        return value[0] if unbatched and gt_unbatched else value


# Generalized IoU under its short name.
giou = bbox_generalized_overlap


def bbox_intersection_over_area(boxes: tf.Tensor, gt_boxes: tf.Tensor) -> tf.Tensor:
    """Pairwise intersection divided by the area of each box in `boxes` (IoA).

    Entries involving padding are -1, as in `bbox_overlap`.

    Returns:
      IoA `[batch, N, M]` (`[N, M]` when both inputs are unbatched).
    """
    boxes, unbatched = _as_batched(boxes, "boxes")
    gt_boxes, gt_unbatched = _as_batched(gt_boxes, "gt_boxes")
    with tf.name_scope("bbox_intersection_over_area"):
        gt_boxes = tf.cast(gt_boxes, boxes.dtype)
        intersection, _, _, area = _pairwise_parts(boxes, gt_boxes)
        ioa = tf.math.divide_no_nan(intersection, area)
        ioa = _mask_padding(ioa, boxes, gt_boxes, mask_boxes=True)
        return ioa[0] if unbatched and gt_unbatched else ioa


def box_matching(boxes: tf.Tensor, gt_boxes: tf.Tensor, gt_classes: tf.Tensor):
    """Matches each box to the ground-truth box it overlaps most.

    Args:
      boxes: `[batch, N, 4]` boxes to match.
      gt_boxes: `[batch, M, 4]` ground-truth boxes, padded with -1.
      gt_classes: `[batch, M]` their classes, padded with -1.

    Returns:
      `(matched_gt_boxes [batch, N, 4], matched_gt_classes [batch, N],
      matched_gt_indices [batch, N], matched_iou [batch, N], iou [batch, N, M])`. A box
      that overlaps no ground truth (best IoU <= 0) gets an all-zero box, class 0
      (background) and index -1.
    """
    iou = bbox_overlap(boxes, gt_boxes)
    matched_iou = tf.reduce_max(iou, axis=-1)
    background = matched_iou <= 0.0
    indices = tf.argmax(iou, axis=-1, output_type=tf.int32)
    matched_boxes, matched_classes = gather_instances(indices, gt_boxes, gt_classes)
    matched_boxes = tf.where(background[..., None], tf.zeros_like(matched_boxes), matched_boxes)
    matched_classes = tf.where(background, tf.zeros_like(matched_classes), matched_classes)
    indices = tf.where(background, -tf.ones_like(indices), indices)
    return matched_boxes, matched_classes, indices, matched_iou, iou
