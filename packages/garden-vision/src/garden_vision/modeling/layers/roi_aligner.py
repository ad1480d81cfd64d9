"""ROIAlign as a layer (Model Garden's `MultilevelROIAligner`).

`MultilevelROIAligner` crops a `crop_size x crop_size` feature patch per box from an FPN
feature pyramid, with `ops.spatial_transform_ops.multilevel_crop_and_resize` (each box read
from the level its size calls for, bilinear samples at the bin centers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from garden_vision.ops import spatial_transform_ops

__all__ = ["MultilevelROIAligner"]


@keras.saving.register_keras_serializable(package="garden_vision")
class MultilevelROIAligner(keras.layers.Layer):
    """Crops fixed-size features for every box from a feature pyramid (ROIAlign).

    Example:

        aligner = MultilevelROIAligner(crop_size=7)
        roi_features = aligner(fpn_features, rois)  # [batch, num_rois, 7, 7, channels]

    The features keep their dtype (e.g. bfloat16 under mixed precision) and the boxes are
    never cast down: the layer does not autocast its inputs.

    Args:
      crop_size: The output size (bins per side).
      sample_offset: Where in each bin the sample lies, in [0, 1] (0.5: the center).
      **kwargs: Layer arguments (`name`, ...).

    Raises:
      ValueError: For a non-positive `crop_size` or an offset outside [0, 1].
    """

    def __init__(self, crop_size: int = 7, sample_offset: float = 0.5, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if isinstance(crop_size, bool) or int(crop_size) != crop_size or crop_size < 1:
            raise ValueError(f"crop_size must be a positive integer, got {crop_size!r}")
        if not 0.0 <= sample_offset <= 1.0:
            raise ValueError(f"sample_offset must be in [0, 1], got {sample_offset}")
        self.crop_size = int(crop_size)
        self.sample_offset = float(sample_offset)

    def call(
        self,
        features: Mapping[str, tf.Tensor],
        boxes: tf.Tensor,
        training: bool | None = None,
    ) -> tf.Tensor:
        """Crops ROI features.

        Args:
          features: `{str(level): [batch, height_l, width_l, channels]}`, consecutive levels
            of stride `2**level`.
          boxes: `[batch, num_boxes, 4]` boxes `[ymin, xmin, ymax, xmax]` in image pixels.
          training: Unused (the same in training and inference).

        Returns:
          `[batch, num_boxes, crop_size, crop_size, channels]` in the features' dtype.
        """
        del training
        return spatial_transform_ops.multilevel_crop_and_resize(
            features, boxes, output_size=self.crop_size, sample_offset=self.sample_offset
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"crop_size": self.crop_size, "sample_offset": self.sample_offset})
        return config
