"""Intersection-over-union metrics of semantic segmentation (`MeanIoU`, `PerClassIoU`).

Model Garden's `official.vision.evaluation.segmentation_metrics`, as Keras 3 metrics. Both
accumulate a `num_classes x num_classes` confusion matrix (rows: ground truth, columns:
prediction) over every valid pixel and read IoUs from it: for class `c`,
`IoU_c = TP_c / (TP_c + FP_c + FN_c)`.

`update_state(y_true, y_pred)` takes the parser's labels dict (`masks`, `valid_masks`,
`image_info`) and the logits `[batch, h, w, num_classes]` (or lists of both, as gathered
from replicas). The prediction of a pixel is the argmax of its logits after they are
brought to the masks' size:

- `rescale_predictions=False`: the logits are resized bilinearly to the masks' size (masks
  resized with the image, `resize_eval_groundtruth: true`).
- `rescale_predictions=True`: the masks are at each image's original size, padded
  (`resize_eval_groundtruth: false`). The logits, which cover the padded model input, are
  resized bilinearly to that input's size in original pixels
  (`ceil(input_size / image_scale)` from `image_info`), shifted by the crop offset,
  cropped to the original image and zero-padded to the masks' size; pixels outside the
  original image are not counted.

Pixels whose `valid_masks` is False (the ignore label, padding) are not counted, nor are
pixels labelled outside `[0, num_classes)`. The confusion matrix is a float64 variable
with Keras' default `sum` aggregation and on-read synchronization, so updates made in
`tf.function`s on several replicas add up when the result is read.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["MeanIoU", "PerClassIoU"]


@keras.saving.register_keras_serializable(package="garden_vision")
class MeanIoU(keras.metrics.Metric):
    """Mean IoU over the classes present (in labels or predictions) of the evaluation.

    Args:
      num_classes: The number of classes (the logits' last dimension).
      rescale_predictions: Rescale the logits to each image's original size with
        `image_info` (see the module docstring); False resizes them to the masks' size.
      name: The metric name.
      dtype: The dtype of the result (float32 by default).

    Example:
    ```python
    metric = MeanIoU(num_classes=21, name="mean_iou")
    metric.update_state(labels, logits)  # labels: {"masks", "valid_masks", "image_info"}
    metric.result()
    ```
    """

    def __init__(
        self,
        num_classes: int,
        rescale_predictions: bool = False,
        name: str | None = None,
        dtype: Any = None,
    ):
        if int(num_classes) < 1:
            raise ValueError(f"num_classes is {num_classes!r}: must be at least 1")
        super().__init__(name=name, dtype=dtype or "float32")
        self.num_classes = int(num_classes)
        self.rescale_predictions = bool(rescale_predictions)
        self.total_cm = self.add_variable(
            shape=(self.num_classes, self.num_classes),
            initializer="zeros",
            dtype="float64",
            name="total_confusion_matrix",
        )

    def update_state(self, y_true: dict[str, Any], y_pred: Any, sample_weight=None) -> None:
        """Adds a batch's pixels to the confusion matrix.

        Args:
          y_true: `masks` `[batch, H, W, 1]` class ids, `valid_masks` `[batch, H, W, 1]`
            bool, `image_info` `[batch, 4, 2]` (read with `rescale_predictions`).
          y_pred: Logits `[batch, h, w, num_classes]`.
          sample_weight: Not supported (must be None); validity comes from `valid_masks`.
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported: pixels count by valid_masks")
        predictions, masks, valid = _predictions_and_labels(
            y_true, y_pred, self.rescale_predictions
        )
        self.total_cm.assign_add(_confusion_matrix(masks, predictions, valid, self.num_classes))

    def _class_ious(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-class IoU (0 where a class never occurs) and the union of each class."""
        matrix = tf.convert_to_tensor(self.total_cm)
        true_positives = tf.linalg.diag_part(matrix)
        union = tf.reduce_sum(matrix, axis=0) + tf.reduce_sum(matrix, axis=1) - true_positives
        return tf.math.divide_no_nan(true_positives, union), union

    def result(self) -> tf.Tensor:
        ious, union = self._class_ious()
        present = tf.reduce_sum(tf.cast(union > 0, ious.dtype))
        return tf.cast(tf.math.divide_no_nan(tf.reduce_sum(ious), present), self.dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "rescale_predictions": self.rescale_predictions,
        }


@keras.saving.register_keras_serializable(package="garden_vision")
class PerClassIoU(MeanIoU):
    """The IoU of every class, `[num_classes]` (0 for a class that never occurs).

    Same arguments as `MeanIoU`.
    """

    def result(self) -> tf.Tensor:
        ious, _ = self._class_ious()
        return tf.cast(ious, self.dtype)


def _concat(value: Any) -> tf.Tensor:
    if isinstance(value, (list, tuple)):
        return tf.concat(list(value), axis=0)
    return tf.convert_to_tensor(value)


def _predictions_and_labels(
    y_true: dict[str, Any], y_pred: Any, rescale: bool
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Predicted classes, labels and validity, int32 / int32 / bool `[batch, H, W]`."""
    logits = _concat(y_pred)
    masks = _concat(y_true["masks"])
    valid = tf.reduce_any(tf.cast(_concat(y_true["valid_masks"]), tf.bool), axis=-1)
    mask_size = tf.shape(masks)[1:3]
    if rescale:
        predictions, inside = _rescaled_predictions(
            logits, _concat(y_true["image_info"]), mask_size
        )
        valid &= inside
    else:
        logits_size, static_mask_size = tuple(logits.shape[1:3]), tuple(masks.shape[1:3])
        # Resizing to the same size changes nothing, so equal static sizes skip it.
        if logits_size != static_mask_size or None in static_mask_size:
            logits = tf.image.resize(logits, mask_size, method="bilinear")
        predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    labels = tf.cast(masks[..., 0], tf.int32)
    return predictions, labels, valid


def _resize_positions(
    output_length: tf.Tensor, input_length: tf.Tensor, start: tf.Tensor, length: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Bilinear sampling of `[batch, input_length]` rows placed at `[start, start + length)`.

    Half-pixel centres, as `tf.image.resize`. Returns the lower and upper source index
    (int32 `[batch, output_length]`), the weight of the upper one, and whether each output
    position lies inside the placed rows.
    """
    grid = tf.range(output_length, dtype=tf.float32)[None, :]
    input_length = tf.cast(input_length, tf.float32)
    scale = tf.math.divide_no_nan(input_length, length[:, None])
    position = tf.clip_by_value((grid - start[:, None] + 0.5) * scale - 0.5, 0.0, input_length - 1)
    lower = tf.floor(position)
    upper = tf.minimum(lower + 1.0, input_length - 1.0)
    inside = (grid >= start[:, None]) & (grid < start[:, None] + length[:, None])
    return tf.cast(lower, tf.int32), tf.cast(upper, tf.int32), position - lower, inside


def _rescaled_predictions(
    logits: tf.Tensor, image_info: tf.Tensor, output_size: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Predictions on the original images' grid, padded to `output_size`.

    Returns the int32 `[batch, H, W]` predicted classes (class 0 where the rescaled logits do
    not reach, as zero logits give) and the bool mask of pixels inside each original image.
    """
    image_info = tf.cast(image_info, tf.float32)
    original_size = tf.floor(image_info[:, 0])
    rescaled_size = tf.math.ceil(image_info[:, 1] / image_info[:, 2])
    offset = tf.floor(image_info[:, 3])
    logits_size = tf.shape(logits)[1:3]

    rows = _resize_positions(output_size[0], logits_size[0], -offset[:, 0], rescaled_size[:, 0])
    cols = _resize_positions(output_size[1], logits_size[1], -offset[:, 1], rescaled_size[:, 1])
    # Rows first (`[batch, H, w, C]`), then columns (`[batch, H, W, C]`), gathering per image.
    top = tf.gather(logits, rows[0], axis=1, batch_dims=1)
    bottom = tf.gather(logits, rows[1], axis=1, batch_dims=1)
    weight = tf.cast(rows[2][:, :, None, None], logits.dtype)
    blended = top + (bottom - top) * weight
    left = tf.gather(blended, cols[0], axis=2, batch_dims=1)
    right = tf.gather(blended, cols[1], axis=2, batch_dims=1)
    weight = tf.cast(cols[2][:, None, :, None], logits.dtype)
    resized = left + (right - left) * weight
    predictions = tf.argmax(resized, axis=-1, output_type=tf.int32)

    reached = rows[3][:, :, None] & cols[3][:, None, :]
    predictions = tf.where(reached, predictions, 0)
    grid_y = tf.range(output_size[0], dtype=tf.float32)[None, :, None]
    grid_x = tf.range(output_size[1], dtype=tf.float32)[None, None, :]
    inside = (grid_y < original_size[:, 0, None, None]) & (grid_x < original_size[:, 1, None, None])
    return predictions, inside


def _confusion_matrix(
    labels: tf.Tensor, predictions: tf.Tensor, valid: tf.Tensor, num_classes: int
) -> tf.Tensor:
    """float64 `[num_classes, num_classes]` counts of (label, prediction) over valid pixels."""
    labels = tf.reshape(labels, [-1])
    predictions = tf.reshape(predictions, [-1])
    keep = tf.reshape(valid, [-1]) & (labels >= 0) & (labels < num_classes)
    cells = num_classes * num_classes
    # Pixels not counted go to the bin past the matrix, which `maxlength` drops.
    index = tf.where(keep, labels * num_classes + predictions, cells)
    counts = tf.math.bincount(index, minlength=cells, maxlength=cells, dtype=tf.int32)
    return tf.reshape(tf.cast(counts, tf.float64), [num_classes, num_classes])
