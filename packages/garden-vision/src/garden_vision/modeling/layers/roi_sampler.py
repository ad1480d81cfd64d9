"""Proposal sampling and target assignment for the second stage (Model Garden's `ROISampler`).

Faster R-CNN trains its box head on a few hundred proposals per image. `ROISampler`:

1. optionally adds the ground-truth boxes to the proposals (`mix_gt_boxes`), so that every
   object has at least one perfect positive;
2. matches every proposal to the ground-truth box it overlaps most (`IouSimilarity`,
   `BoxMatcher`): IoU >= `foreground_iou_threshold` is foreground, IoU in
   [`background_iou_low_threshold`, `background_iou_high_threshold`) background, IoU
   between the background and foreground thresholds ignored, IoU below the low threshold
   (and padding) invalid; background and invalid proposals get class 0, an all-zero box and
   index -1;
3. samples `num_sampled_rois` of them with at most `foreground_fraction` foreground
   (`BoxSampler`), unless `skip_subsampling` (Cascade R-CNN's later stages keep all).

Cascade R-CNN trains stages 2 and up with rising IoU thresholds on the refined boxes of the
previous stage: `build_roi_samplers` builds the list of samplers for a `ROISampler` config
with `cascade_iou_thresholds` as Model Garden's model factory does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from garden_vision.modeling.layers.box_sampler import BoxSampler
from garden_vision.ops.box_matcher import BoxMatcher
from garden_vision.ops.iou_similarity import IouSimilarity
from garden_vision.ops.target_gather import TargetGather

__all__ = ["ROISampler", "build_roi_samplers"]

# Match indicators of the proposal matcher.
_INVALID, _NEGATIVE, _IGNORED, _POSITIVE = -3, -1, -2, 1


@keras.saving.register_keras_serializable(package="garden_vision")
class ROISampler(keras.layers.Layer):
    """Samples proposals and assigns them ground-truth boxes and classes.

    Example:

        sampler = ROISampler(num_sampled_rois=512)
        rois, gt_boxes, gt_classes, gt_indices = sampler(proposals, gt_boxes, gt_classes)
        # [batch, 512, 4], [batch, 512, 4], [batch, 512], [batch, 512]

    Args:
      mix_gt_boxes: Whether the ground-truth boxes join the proposals before matching.
      num_sampled_rois: How many proposals to sample per image.
      foreground_fraction: The largest share of foreground among them, in [0, 1].
      foreground_iou_threshold: The IoU from which a proposal is foreground.
      background_iou_high_threshold: The IoU below which a proposal may be background.
      background_iou_low_threshold: The IoU from which a proposal may be background (below
        it, it is invalid: never sampled).
      skip_subsampling: Whether to return every proposal (matched) instead of a sample.
      **kwargs: Layer arguments (`name`, `dtype`; float32 by default).

    Raises:
      ValueError: If the thresholds are not `low <= high <= foreground`, or for bad sizes.
    """

    def __init__(
        self,
        mix_gt_boxes: bool = True,
        num_sampled_rois: int = 512,
        foreground_fraction: float = 0.25,
        foreground_iou_threshold: float = 0.5,
        background_iou_high_threshold: float = 0.5,
        background_iou_low_threshold: float = 0.0,
        skip_subsampling: bool = False,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not (
            background_iou_low_threshold
            <= background_iou_high_threshold
            <= foreground_iou_threshold
        ):
            raise ValueError(
                "ROISampler needs background_iou_low_threshold <= "
                "background_iou_high_threshold <= foreground_iou_threshold, got "
                f"{background_iou_low_threshold}, {background_iou_high_threshold}, "
                f"{foreground_iou_threshold}"
            )
        self.mix_gt_boxes = bool(mix_gt_boxes)
        self.num_sampled_rois = int(num_sampled_rois)
        self.foreground_fraction = float(foreground_fraction)
        self.foreground_iou_threshold = float(foreground_iou_threshold)
        self.background_iou_high_threshold = float(background_iou_high_threshold)
        self.background_iou_low_threshold = float(background_iou_low_threshold)
        self.skip_subsampling = bool(skip_subsampling)
        self._similarity = IouSimilarity()
        self._matcher = BoxMatcher(
            thresholds=[
                self.background_iou_low_threshold,
                self.background_iou_high_threshold,
                self.foreground_iou_threshold,
            ],
            indicators=[_INVALID, _NEGATIVE, _IGNORED, _POSITIVE],
        )
        self._gather = TargetGather()
        self._sampler = BoxSampler(self.num_sampled_rois, self.foreground_fraction)
        self.built = True  # No weights.

    def call(
        self,
        boxes: tf.Tensor,
        gt_boxes: tf.Tensor,
        gt_classes: tf.Tensor,
        gt_outer_boxes: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, ...]:
        """Matches proposals to ground truth and samples them.

        Args:
          boxes: `[batch, N, 4]` proposals in image pixels (padding: negative coordinates).
          gt_boxes: `[batch, M, 4]` ground-truth boxes, padded with -1.
          gt_classes: `[batch, M]` their classes, padded with -1.
          gt_outer_boxes: Optional `[batch, M, 4]` enlarged ground-truth boxes (Mask
            R-CNN's outer-box mask targets), padded with -1.

        Returns:
          `(sampled_rois [batch, K, 4], sampled_gt_boxes [batch, K, 4],
          sampled_gt_classes [batch, K], sampled_gt_indices [batch, K])`, with
          `sampled_gt_outer_boxes [batch, K, 4]` after the gt boxes when `gt_outer_boxes`
          is given. `K` is `num_sampled_rois`, or every proposal (`N`, plus `M` with
          `mix_gt_boxes`) with `skip_subsampling`. `sampled_gt_indices` index `gt_boxes`
          (-1 for background); classes keep the dtype of `gt_classes` (0 for background).
        """
        boxes = tf.cast(boxes, tf.float32)
        gt_boxes = tf.cast(gt_boxes, tf.float32)
        if self.mix_gt_boxes:
            boxes = tf.concat([boxes, gt_boxes], axis=1)
        box_padding = tf.reduce_max(boxes, axis=-1, keepdims=True) < 0.0
        gt_padding = tf.reduce_max(gt_boxes, axis=-1, keepdims=True) < 0.0
        # [batch, M, N]: one row per ground-truth box, the long axis last.
        similarity = self._similarity(gt_boxes, boxes, gt_padding, box_padding)
        matched_indices, indicators = self._matcher(similarity, transposed=True)
        positive = indicators >= 0
        negative = tf.equal(indicators, _NEGATIVE)
        ignored = tf.equal(indicators, _IGNORED)
        background = negative | tf.equal(indicators, _INVALID)  # [batch, N]

        matched_classes = self._gather(
            gt_classes[..., None], matched_indices, background[..., None]
        )
        matched_boxes = self._gather(gt_boxes, matched_indices, background[..., None])
        matched_outer_boxes = None
        if gt_outer_boxes is not None:
            matched_outer_boxes = self._gather(
                tf.cast(gt_outer_boxes, tf.float32), matched_indices, background[..., None]
            )
        matched_indices = tf.where(background, -tf.ones_like(matched_indices), matched_indices)
        matched_classes = matched_classes[..., 0]

        if self.skip_subsampling:
            return _outputs(
                boxes, matched_boxes, matched_outer_boxes, matched_classes, matched_indices
            )

        sampled = self._sampler(positive, negative, ignored)  # [batch, K]

        def take(values):
            return tf.gather(values, sampled, batch_dims=1)

        return _outputs(
            take(boxes),
            take(matched_boxes),
            None if matched_outer_boxes is None else take(matched_outer_boxes),
            take(matched_classes),
            take(matched_indices),
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "mix_gt_boxes": self.mix_gt_boxes,
                "num_sampled_rois": self.num_sampled_rois,
                "foreground_fraction": self.foreground_fraction,
                "foreground_iou_threshold": self.foreground_iou_threshold,
                "background_iou_high_threshold": self.background_iou_high_threshold,
                "background_iou_low_threshold": self.background_iou_low_threshold,
                "skip_subsampling": self.skip_subsampling,
            }
        )
        return config


def _outputs(rois, gt_boxes, gt_outer_boxes, gt_classes, gt_indices) -> tuple[tf.Tensor, ...]:
    if gt_outer_boxes is None:
        return rois, gt_boxes, gt_classes, gt_indices
    return rois, gt_boxes, gt_outer_boxes, gt_classes, gt_indices


def build_roi_samplers(
    mix_gt_boxes: bool = True,
    num_sampled_rois: int = 512,
    foreground_fraction: float = 0.25,
    foreground_iou_threshold: float = 0.5,
    background_iou_high_threshold: float = 0.5,
    background_iou_low_threshold: float = 0.0,
    cascade_iou_thresholds: Sequence[float] | None = None,
) -> list[ROISampler]:
    """The ROI samplers of a (Cascade) R-CNN, from the fields of a `ROISampler` config.

    The first sampler uses the settings as given. Each of `cascade_iou_thresholds` adds
    a sampler for one more cascade stage, as Model Garden builds them: no ground truth
    mixed in, foreground from that IoU, background below it (down to 0), and no
    subsampling (the stage trains on every refined box of the previous one).

    Returns:
      `[ROISampler, ...]`: one sampler, plus one per cascade threshold.
    """
    samplers = [
        ROISampler(
            mix_gt_boxes=mix_gt_boxes,
            num_sampled_rois=num_sampled_rois,
            foreground_fraction=foreground_fraction,
            foreground_iou_threshold=foreground_iou_threshold,
            background_iou_high_threshold=background_iou_high_threshold,
            background_iou_low_threshold=background_iou_low_threshold,
        )
    ]
    for iou in cascade_iou_thresholds or ():
        samplers.append(
            ROISampler(
                mix_gt_boxes=False,
                num_sampled_rois=num_sampled_rois,
                foreground_iou_threshold=iou,
                background_iou_high_threshold=iou,
                background_iou_low_threshold=0.0,
                skip_subsampling=True,
            )
        )
    return samplers
