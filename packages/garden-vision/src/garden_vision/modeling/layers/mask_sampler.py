"""Mask R-CNN's mask targets (Model Garden's `MaskSampler`).

The mask head trains on the foreground ROIs `ROISampler` sampled. `MaskSampler` takes the
first `num_sampled_masks` foreground ROIs of each image (in ROI order; background ROIs fill
the rest when there are fewer), and crops the ground-truth mask of the object each one was
matched to into the ROI, at `mask_target_size x mask_target_size`
(`ops.spatial_transform_ops.crop_mask_in_target_box`, bilinear, samples at the bin
centers).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from garden_vision.ops import spatial_transform_ops

__all__ = ["MaskSampler"]


@keras.saving.register_keras_serializable(package="garden_vision")
class MaskSampler(keras.layers.Layer):
    """Samples foreground ROIs and crops their ground-truth masks as mask targets.

    Example:

        sampler = MaskSampler(mask_target_size=28, num_sampled_masks=128)
        rois, classes, targets = sampler(sampled_rois, sampled_gt_boxes,
                                         sampled_gt_classes, sampled_gt_indices, gt_masks)
        # [batch, 128, 4], [batch, 128], [batch, 128, 28, 28]

    Args:
      mask_target_size: The side of the mask targets.
      num_sampled_masks: How many ROIs per image get a mask target.
      **kwargs: Layer arguments (`name`, `dtype`; float32 by default).

    Raises:
      ValueError: For non-positive sizes.
    """

    def __init__(self, mask_target_size: int, num_sampled_masks: int, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        for name, value in (
            ("mask_target_size", mask_target_size),
            ("num_sampled_masks", num_sampled_masks),
        ):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.mask_target_size = int(mask_target_size)
        self.num_sampled_masks = int(num_sampled_masks)

    def call(
        self,
        candidate_rois: tf.Tensor,
        candidate_gt_boxes: tf.Tensor,
        candidate_gt_classes: tf.Tensor,
        candidate_gt_indices: tf.Tensor,
        gt_masks: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Samples mask targets.

        Args:
          candidate_rois: `[batch, N, 4]` sampled ROIs (foreground and background).
          candidate_gt_boxes: `[batch, N, 4]` the ground-truth box each ROI matched.
          candidate_gt_classes: `[batch, N]` its class (0: background ROI).
          candidate_gt_indices: `[batch, N]` its index in the ground truth (-1:
            background).
          gt_masks: `[batch, M, height, width]` ground-truth masks, each relative to its
            box (as the Mask R-CNN parser crops them).

        Returns:
          `(foreground_rois [batch, K, 4], foreground_classes [batch, K],
          cropped_foreground_masks float32 [batch, K, mask_target_size,
          mask_target_size])`, `K = num_sampled_masks`. Entries for background ROIs
          (when an image has fewer foreground ROIs than K) have class 0.

        Raises:
          ValueError: If a statically known N is below `num_sampled_masks`.
        """
        num_candidates = candidate_gt_classes.shape[-1]
        if num_candidates is not None and num_candidates < self.num_sampled_masks:
            raise ValueError(
                f"MaskSampler needs at least num_sampled_masks={self.num_sampled_masks} "
                f"candidate ROIs per image, got {num_candidates}"
            )
        # top_k keeps the lower index first among equal values: the foreground ROIs in
        # order, then the first background ones.
        foreground = tf.cast(candidate_gt_classes > 0, tf.int32)
        _, chosen = tf.math.top_k(foreground, k=self.num_sampled_masks, sorted=True)

        def take(values):
            return tf.gather(values, chosen, batch_dims=1)

        rois = take(tf.cast(candidate_rois, tf.float32))
        gt_boxes = take(tf.cast(candidate_gt_boxes, tf.float32))
        classes = take(candidate_gt_classes)
        gt_indices = take(candidate_gt_indices)
        gt_indices = tf.where(gt_indices < 0, tf.zeros_like(gt_indices), gt_indices)
        masks = tf.gather(gt_masks, gt_indices, batch_dims=1)
        targets = spatial_transform_ops.crop_mask_in_target_box(
            masks, gt_boxes, rois, self.mask_target_size, sample_offset=0.5
        )
        return rois, classes, targets

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "mask_target_size": self.mask_target_size,
                "num_sampled_masks": self.num_sampled_masks,
            }
        )
        return config
