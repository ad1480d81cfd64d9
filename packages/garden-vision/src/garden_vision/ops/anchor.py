"""Multi-level anchor boxes and their training labels (Model Garden's `ops.anchor`).

- `Anchor` lays anchor boxes over every level of a feature pyramid: at level `l` the grid
  has `ceil(image_size / 2**l)` cells, each holding `num_scales * len(aspect_ratios)`
  anchors of side `anchor_size * 2**l * 2**(scale / num_scales)` (RetinaNet: anchor_size 4,
  so 32-pixel base anchors at level 3), stretched to `width / height = aspect_ratio` at
  constant area.
- `AnchorLabeler` matches anchors to ground-truth boxes by IoU and produces the
  classification and box-regression targets and weights of one image (RetinaNet).
- `build_anchor_generator` returns a callable mapping an image size to multi-level anchors,
  for models that make anchors at call time.

Anchor boxes are `[ymin, xmin, ymax, xmax]` in pixels of the (resized, padded) input image.
Multi-level tensors are dicts keyed by `str(level)`, with `[height_l, width_l,
anchors_per_location * k]` values; anchors are ordered (level, y, x, anchor) when flattened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from garden_vision.ops import box_ops
from garden_vision.ops.box_matcher import BoxMatcher
from garden_vision.ops.iou_similarity import IouSimilarity

__all__ = [
    "Anchor",
    "AnchorGeneratorv2",
    "AnchorLabeler",
    "MultilevelAnchorGenerator",
    "build_anchor_generator",
    "unpack_targets",
]


def _static_size(image_size: Sequence[int]) -> tuple[int, int]:
    try:
        height, width = (int(value) for value in image_size)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Anchor image_size must be [height, width] as two integers, got {image_size!r}"
        ) from error
    if height <= 0 or width <= 0:
        raise ValueError(f"Anchor image_size must be positive, got {image_size!r}")
    return height, width


class Anchor:
    """Anchor boxes of a feature pyramid, for one input image size.

    Example:

        anchor = Anchor(min_level=3, max_level=7, num_scales=3,
                        aspect_ratios=[0.5, 1.0, 2.0], anchor_size=4.0,
                        image_size=[640, 640])
        anchor.multilevel_boxes["3"].shape  # [80, 80, 36]
        anchor.boxes.shape                  # [76725, 4]

    Level `l` has `ceil(height / 2**l) x ceil(width / 2**l)` cells; their centers are
    spread evenly over the image (stride `height / cells`, exactly `2**l` when the image
    size divides by it), starting half a stride from the top-left corner.

    Args:
      min_level: The finest pyramid level.
      max_level: The coarsest pyramid level.
      num_scales: Anchor sizes per octave: scales `2**(i / num_scales)`, `i < num_scales`.
      aspect_ratios: Width / height ratios of the anchors at each scale.
      anchor_size: The base anchor side as a multiple of the level's stride `2**level`.
      image_size: `[height, width]` of the input image, in pixels.

    Attributes:
      multilevel_boxes: `{str(level): [H_l, W_l, anchors_per_location * 4]}` float32.
      boxes: All anchors `[N, 4]`, level-major then (y, x, anchor).
      anchors_per_location: `num_scales * len(aspect_ratios)`.
    """

    def __init__(
        self,
        min_level: int,
        max_level: int,
        num_scales: int,
        aspect_ratios: Sequence[float],
        anchor_size: float,
        image_size: Sequence[int],
    ):
        if min_level > max_level:
            raise ValueError(f"Anchor min_level {min_level} is above max_level {max_level}")
        if num_scales < 1:
            raise ValueError(f"Anchor num_scales must be at least 1, got {num_scales}")
        if not aspect_ratios or any(ratio <= 0 for ratio in aspect_ratios):
            raise ValueError(
                f"Anchor aspect_ratios must be positive numbers, got {list(aspect_ratios)}"
            )
        if anchor_size <= 0:
            raise ValueError(f"Anchor anchor_size must be positive, got {anchor_size}")
        self.min_level = min_level
        self.max_level = max_level
        self.num_scales = num_scales
        self.aspect_ratios = list(aspect_ratios)
        self.anchor_size = anchor_size
        self.image_size = _static_size(image_size)
        self.multilevel_boxes = {
            str(level): tf.constant(self._level_boxes(level))
            for level in range(min_level, max_level + 1)
        }
        self.boxes = tf.concat(
            [tf.reshape(boxes, [-1, 4]) for boxes in self.multilevel_boxes.values()], axis=0
        )

    @property
    def anchors_per_location(self) -> int:
        return self.num_scales * len(self.aspect_ratios)

    def _level_boxes(self, level: int) -> np.ndarray:
        height, width = self.image_size
        rows, cols = math.ceil(height / 2**level), math.ceil(width / 2**level)
        stride_y, stride_x = height / rows, width / cols
        center_y = (np.arange(rows) + 0.5) * stride_y
        center_x = (np.arange(cols) + 0.5) * stride_x
        half_sizes = []  # [A, 2]: (half height, half width) per anchor, scale-major.
        for scale in range(self.num_scales):
            side = self.anchor_size * 2**level * 2 ** (scale / self.num_scales)
            for ratio in self.aspect_ratios:
                half_sizes.append((side / math.sqrt(ratio) / 2, side * math.sqrt(ratio) / 2))
        half = np.asarray(half_sizes)
        cy = center_y[:, None, None]
        cx = center_x[None, :, None]
        boxes = np.stack(
            np.broadcast_arrays(cy - half[:, 0], cx - half[:, 1], cy + half[:, 0], cx + half[:, 1]),
            axis=-1,
        )  # [rows, cols, A, 4]
        return boxes.reshape(rows, cols, -1).astype(np.float32)

    def unpack_labels(self, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        """Splits per-anchor values `[N, k]` (or `[N]`) into `{level: [H_l, W_l, A * k]}`."""
        return unpack_targets(labels, self.multilevel_boxes)


def unpack_targets(
    targets: tf.Tensor, anchor_boxes: Mapping[str, tf.Tensor]
) -> dict[str, tf.Tensor]:
    """Splits per-anchor values into the levels of `anchor_boxes`.

    Args:
      targets: `[num_anchors]` or `[num_anchors, k]`, anchors in level-major order.
      anchor_boxes: `{level: [H_l, W_l, A * 4]}` with static shapes.

    Returns:
      `{level: [H_l, W_l, A * k]}` (`k = 1` for rank-1 targets).
    """
    unpacked = {}
    start = 0
    for level, boxes in anchor_boxes.items():
        rows, cols, values = boxes.shape.as_list()
        count = rows * cols * (values // 4)
        unpacked[level] = tf.reshape(targets[start : start + count], [rows, cols, -1])
        start += count
    return unpacked


class MultilevelAnchorGenerator:
    """Makes `Anchor(...).multilevel_boxes` for an image size given at call time.

    Args:
      min_level, max_level, num_scales, aspect_ratios, anchor_size: As for `Anchor`.
    """

    def __init__(
        self,
        min_level: int,
        max_level: int,
        num_scales: int,
        aspect_ratios: Sequence[float],
        anchor_size: float,
    ):
        self.min_level = min_level
        self.max_level = max_level
        self.num_scales = num_scales
        self.aspect_ratios = list(aspect_ratios)
        self.anchor_size = anchor_size

    def __call__(self, image_size: Sequence[int]) -> dict[str, tf.Tensor]:
        """Returns `{str(level): [H_l, W_l, A * 4]}` anchors for a `[height, width]` image."""
        return Anchor(
            self.min_level,
            self.max_level,
            self.num_scales,
            self.aspect_ratios,
            self.anchor_size,
            image_size,
        ).multilevel_boxes


# Model Garden's name for the same class.
AnchorGeneratorv2 = MultilevelAnchorGenerator


def build_anchor_generator(
    min_level: int,
    max_level: int,
    num_scales: int,
    aspect_ratios: Sequence[float],
    anchor_size: float,
) -> MultilevelAnchorGenerator:
    """Returns a callable `image_size -> {level: anchors}` (see `MultilevelAnchorGenerator`)."""
    return MultilevelAnchorGenerator(min_level, max_level, num_scales, aspect_ratios, anchor_size)


class AnchorLabeler:
    """Assigns classification and regression targets to anchors (RetinaNet's labeler).

    Each anchor is matched to the ground-truth box it overlaps most. With IoU at least
    `match_threshold` it is positive: its class target is that box's class and its box
    target the box encoded relative to the anchor (`box_ops.encode_boxes` with
    `box_coder_weights`). Below `unmatched_threshold` it is negative. In between it is
    ignored (class weight 0). Every ground-truth box also
    claims its best anchor as positive, however low their IoU, so that small or oddly shaped
    objects still get trained.

    Negative and ignored anchors get the class target -1, as in Model Garden, so that their
    one-hot target (`tf.one_hot(-1, num_classes)`) is all zeros: the sigmoid focal loss
    then pushes every class logit of a negative anchor down, background (class 0) included,
    and no anchor is ever trained towards class 0. Box targets of non-positive anchors
    are 0.

    Args:
      match_threshold: The IoU from which an anchor is positive.
      unmatched_threshold: The IoU below which an anchor is negative (at most
        `match_threshold`).
      box_coder_weights: Optional 4 positive scales for `[dy, dx, dh, dw]` box targets.
    """

    def __init__(
        self,
        match_threshold: float = 0.5,
        unmatched_threshold: float = 0.5,
        box_coder_weights: Sequence[float] | None = None,
    ):
        if unmatched_threshold > match_threshold:
            raise ValueError(
                f"AnchorLabeler unmatched_threshold ({unmatched_threshold}) must not exceed "
                f"match_threshold ({match_threshold})"
            )
        self.match_threshold = match_threshold
        self.unmatched_threshold = unmatched_threshold
        self.box_coder_weights = list(box_coder_weights) if box_coder_weights else None
        self.similarity_calc = IouSimilarity()
        self.matcher = BoxMatcher(
            thresholds=[unmatched_threshold, match_threshold],
            indicators=[-1, -2, 1],
            force_match_for_each_col=True,
        )

    def _box_targets(
        self, gt_boxes: tf.Tensor, flat_anchors: tf.Tensor, anchor_ids: tf.Tensor, box_ids
    ) -> tf.Tensor:
        """`[K, 4]` encodings of boxes `box_ids` relative to anchors `anchor_ids`.

        The Faster R-CNN coder (`box_ops.encode_boxes`), `[(cy - acy) / ah, (cx - acx) / aw,
        log(h / ah), log(w / aw)]` times the coder weights, computed as differences of
        per-box and per-anchor terms; the anchor terms are computed once, in NumPy, when
        the anchors are constants (as `Anchor`'s are). Like Model Garden's coder, 1e-8 is
        added to every side so that an empty ground-truth box still encodes to finite
        values.
        """
        epsilon = box_ops.EPSILON
        weights = (
            np.asarray(box_ops._weights(self.box_coder_weights), np.float32)
            if self.box_coder_weights
            else np.ones([4], np.float32)
        )
        static = tf.get_static_value(flat_anchors)
        if static is not None:
            ymin, xmin, ymax, xmax = (static[:, i].astype(np.float64) for i in range(4))
            height, width = ymax - ymin + epsilon, xmax - xmin + epsilon
            offsets = np.stack(
                [(ymin + ymax) / 2.0, (xmin + xmax) / 2.0, np.log(height), np.log(width)], -1
            )
            scales = np.stack(
                [
                    weights[0] / height,
                    weights[1] / width,
                    np.full_like(height, weights[2]),
                    np.full_like(width, weights[3]),
                ],
                -1,
            )
            offsets, scales = tf.constant(offsets, tf.float32), tf.constant(scales, tf.float32)
        else:
            ymin, xmin, ymax, xmax = tf.unstack(flat_anchors, 4, axis=-1)
            height, width = ymax - ymin + epsilon, xmax - xmin + epsilon
            offsets = tf.stack(
                [(ymin + ymax) / 2.0, (xmin + xmax) / 2.0, tf.math.log(height), tf.math.log(width)],
                -1,
            )
            scales = tf.stack(
                [
                    weights[0] / height,
                    weights[1] / width,
                    tf.fill(tf.shape(height), weights[2]),
                    tf.fill(tf.shape(width), weights[3]),
                ],
                -1,
            )
        gymin, gxmin, gymax, gxmax = tf.unstack(gt_boxes, 4, axis=-1)
        box_terms = tf.stack(
            [
                (gymin + gymax) / 2.0,
                (gxmin + gxmax) / 2.0,
                tf.math.log(gymax - gymin + epsilon),
                tf.math.log(gxmax - gxmin + epsilon),
            ],
            axis=-1,
        )
        return (tf.gather(box_terms, box_ids) - tf.gather(offsets, anchor_ids)) * tf.gather(
            scales, anchor_ids
        )

    def label_anchors(
        self,
        anchor_boxes: Mapping[str, tf.Tensor],
        gt_boxes: tf.Tensor,
        gt_labels: tf.Tensor,
        gt_attributes: Mapping[str, tf.Tensor] | None = None,
        gt_weights: tf.Tensor | None = None,
    ):
        """Labels the anchors of one image.

        Args:
          anchor_boxes: `{str(level): [H_l, W_l, A * 4]}` pixel anchors (static shapes), as
            `Anchor.multilevel_boxes`.
          gt_boxes: `[N, 4]` pixel ground-truth boxes (N may be 0).
          gt_labels: int `[N]` or `[N, 1]` classes (1 and up).
          gt_attributes: Optional `{name: [N, dim]}` float attributes to regress.
          gt_weights: Optional `[N]` weights of the ground-truth boxes; a positive anchor
            takes its box's weight in `cls_weights` and `box_weights`.

        Returns:
          `(cls_targets, box_targets, att_targets, cls_weights, box_weights)`:
          - `cls_targets`: `{level: [H_l, W_l, A]}` int32, -1 for negative and ignored
            anchors.
          - `box_targets`: `{level: [H_l, W_l, A * 4]}` float32 encoded boxes.
          - `att_targets`: `{name: {level: [H_l, W_l, A * dim]}}`.
          - `cls_weights`: `[num_anchors]` float32: 0 for ignored anchors, 1 (or the box
            weight) otherwise.
          - `box_weights`: `[num_anchors]` float32: the box weight (1 by default) for
            positive anchors, 0 otherwise.
        """
        flat_anchors = tf.concat(
            [tf.reshape(boxes, [-1, 4]) for boxes in anchor_boxes.values()], axis=0
        )
        flat_anchors = tf.cast(flat_anchors, tf.float32)
        gt_boxes = tf.reshape(tf.cast(gt_boxes, tf.float32), [-1, 4])
        gt_labels = tf.reshape(tf.cast(gt_labels, tf.int32), [-1])
        # [num_boxes, num_anchors]: the layout in which IoU and matching run along the
        # long axis (several times faster than [num_anchors, num_boxes]).
        similarity = self.similarity_calc(gt_boxes, flat_anchors)
        match_indices, indicators = self.matcher(similarity, transposed=True)
        positive = tf.equal(indicators, 1)
        ignored = tf.equal(indicators, -2)
        num_anchors = (
            tf.constant([flat_anchors.shape[0]])
            if flat_anchors.shape[0] is not None
            else tf.shape(flat_anchors)[:1]
        )

        # Only positive anchors get a class, box or attribute target: those are computed for
        # the positives alone (tens to hundreds of anchors) and scattered into the defaults
        # (-1 classes, zero boxes and attributes).
        anchor_ids = tf.cast(tf.where(positive)[:, 0], tf.int32)
        box_ids = tf.gather(match_indices, anchor_ids)
        scatter_ids = anchor_ids[:, None]
        cls_targets = tf.scatter_nd(scatter_ids, tf.gather(gt_labels, box_ids) + 1, num_anchors) - 1
        box_targets = tf.scatter_nd(
            scatter_ids,
            self._box_targets(gt_boxes, flat_anchors, anchor_ids, box_ids),
            tf.concat([num_anchors, [4]], axis=0),
        )

        att_targets = {}
        for name, values in (gt_attributes or {}).items():
            values = tf.cast(values, tf.float32)
            if values.shape.rank == 1:
                values = values[:, None]
            gathered = tf.scatter_nd(
                scatter_ids,
                tf.gather(values, box_ids),
                tf.concat([num_anchors, tf.shape(values)[1:]], axis=0),
            )
            att_targets[name] = unpack_targets(gathered, anchor_boxes)

        if gt_weights is None:
            box_weights = tf.cast(positive, tf.float32)
        else:
            box_weights = tf.scatter_nd(
                scatter_ids,
                tf.gather(tf.reshape(tf.cast(gt_weights, tf.float32), [-1]), box_ids),
                num_anchors,
            )
        # Negatives weigh 1 and ignored anchors 0; positives take their box's weight.
        cls_weights = tf.where(positive, box_weights, 1.0 - tf.cast(ignored, tf.float32))

        return (
            unpack_targets(cls_targets, anchor_boxes),
            unpack_targets(box_targets, anchor_boxes),
            att_targets,
            cls_weights,
            box_weights,
        )
