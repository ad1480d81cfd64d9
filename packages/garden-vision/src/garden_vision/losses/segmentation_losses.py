"""`SegmentationLoss`: per-pixel cross-entropy of semantic segmentation models.

Model Garden's `official.vision.losses.segmentation_losses.SegmentationLoss`, with its
normalization. For logits `[batch, h, w, num_classes]` and labels `[batch, H, W, layers]`:

1. Sizes are matched: the logits are resized bilinearly to the labels' size
   (`use_groundtruth_dimension`), or the labels to the logits' size by nearest neighbour.
2. A pixel is valid when its label is not `ignore_label` (in any layer).
3. Softmax cross-entropy (one label layer) against the one-hot label smoothed to
   `onehot * (1 - label_smoothing) + label_smoothing / num_classes`, times the class weight
   of the pixel's label (`class_weights`, 1 each by default; 0 for a label outside
   `[0, num_classes)`) and the validity; or, with `use_binary_cross_entropy`, sigmoid
   cross-entropy per class against the multi-hot union of the label layers, times the
   class weights and the validity.
4. The loss is the sum over pixels (and classes for sigmoid) divided by the number of valid
   pixels (times `num_classes` for sigmoid) plus 1e-5; with `top_k_percent_pixels < 1`,
   only the `int(top_k_percent_pixels * size)` largest per-pixel losses are summed, divided
   by that count (at most the number of valid pixels) plus 1e-5.

With `gt_is_matting_map` (two classes only) the labels are soft foreground probabilities in
[0, 1]: the target is `[1 - label, label]` and the class weight is that of the binarized
label (threshold 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

__all__ = ["EPSILON", "SegmentationLoss"]

EPSILON = 1e-5


class SegmentationLoss:
    """The semantic segmentation loss (see the module docstring for the computation).

    Args:
      label_smoothing: Probability mass in [0, 1) spread over all classes.
      class_weights: One weight per class, or empty / None for 1 each.
      ignore_label: The label of pixels that count for nothing.
      use_groundtruth_dimension: Resize the logits to the labels' size (True), or the
        labels to the logits' size (False).
      use_binary_cross_entropy: Sigmoid cross-entropy per class (labels may have several
        layers) instead of softmax cross-entropy.
      top_k_percent_pixels: In (0, 1]: average only this fraction of the largest per-pixel
        losses (hard pixel mining); 1 averages every valid pixel.
      gt_is_matting_map: The labels are soft matting maps in [0, 1] (two classes).

    Raises:
      ValueError: For `label_smoothing` outside [0, 1) or `top_k_percent_pixels` outside
        (0, 1].

    Example:
    ```python
    loss_fn = SegmentationLoss(label_smoothing=0.0, class_weights=[], ignore_label=255)
    loss = loss_fn(logits, labels["masks"])  # [B, h, w, C], [B, H, W, 1]
    ```
    """

    def __init__(
        self,
        label_smoothing: float,
        class_weights: Sequence[float] | None,
        ignore_label: int,
        use_groundtruth_dimension: bool = True,
        use_binary_cross_entropy: bool = False,
        top_k_percent_pixels: float = 1.0,
        gt_is_matting_map: bool = False,
    ):
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing is {label_smoothing!r}: must be in [0, 1)")
        if not 0.0 < float(top_k_percent_pixels) <= 1.0:
            raise ValueError(f"top_k_percent_pixels is {top_k_percent_pixels!r}: must be in (0, 1]")
        self._label_smoothing = float(label_smoothing)
        self._class_weights = [float(w) for w in class_weights] if class_weights else []
        self._ignore_label = int(ignore_label)
        self._use_groundtruth_dimension = bool(use_groundtruth_dimension)
        self._use_binary_cross_entropy = bool(use_binary_cross_entropy)
        self._top_k_percent_pixels = float(top_k_percent_pixels)
        self._gt_is_matting_map = bool(gt_is_matting_map)

    def __call__(self, logits: tf.Tensor, labels: tf.Tensor, **kwargs) -> tf.Tensor:
        """Returns the scalar loss of a batch.

        Args:
          logits: `[batch, height, width, num_classes]` model outputs (num_classes static).
          labels: `[batch, height', width', num_layers]` class ids (one layer unless
            `use_binary_cross_entropy`), or matting maps in [0, 1].
          **kwargs: Passed to `get_labels_with_prob` (for subclasses).

        Raises:
          ValueError: For several label layers with softmax cross-entropy or matting maps,
            matting maps with other than 2 classes, or `class_weights` of the wrong length.
        """
        logits = tf.convert_to_tensor(logits)
        labels = tf.convert_to_tensor(labels)
        num_classes = logits.shape[-1]
        num_layers = labels.shape[-1]
        dtype = logits.dtype
        if num_classes is None:
            raise ValueError("logits need a static number of classes (last dimension)")
        if not self._use_binary_cross_entropy and num_layers != 1:
            raise ValueError(
                f"labels have {num_layers} layers: softmax cross-entropy takes one label "
                "layer (set use_binary_cross_entropy for several)"
            )
        if self._gt_is_matting_map:
            if num_classes != 2:
                raise ValueError(f"gt_is_matting_map needs 2 classes, logits have {num_classes}")
            if num_layers != 1:
                raise ValueError(f"gt_is_matting_map needs 1 label layer, labels have {num_layers}")
        weights = self._class_weights or [1.0] * num_classes
        if len(weights) != num_classes:
            raise ValueError(
                f"class_weights has {len(weights)} values, logits have {num_classes} classes"
            )

        if not self._gt_is_matting_map:
            labels = tf.cast(labels, tf.int32)
        # Resizing to the same size changes nothing, so equal static sizes skip it.
        logits_size, label_size = tuple(logits.shape[1:3]), tuple(labels.shape[1:3])
        same_size = logits_size == label_size and None not in label_size
        if self._use_groundtruth_dimension and not same_size:
            logits = tf.image.resize(logits, tf.shape(labels)[1:3], method="bilinear")
        elif not self._use_groundtruth_dimension and not same_size:
            labels = tf.image.resize(labels, tf.shape(logits)[1:3], method="nearest")

        valid_mask = tf.not_equal(tf.cast(labels, tf.int32), self._ignore_label)
        valid_pixels = tf.cast(tf.reduce_any(valid_mask, axis=-1), dtype)
        class_weights = tf.constant(weights, dtype)

        if self._use_binary_cross_entropy:
            targets = self.get_labels_with_prob(logits, labels, valid_mask, **kwargs)
            losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
            losses *= class_weights * valid_pixels[..., None]
            num_valid = tf.reduce_sum(valid_pixels) * float(num_classes)
        else:
            losses = self._softmax_losses(logits, labels, valid_mask, class_weights, **kwargs)
            losses *= valid_pixels
            num_valid = tf.reduce_sum(valid_pixels)

        if self._top_k_percent_pixels < 1.0:
            return self.aggregate_loss_top_k(losses, num_valid)
        return tf.reduce_sum(losses) / (num_valid + EPSILON)

    def _softmax_losses(
        self,
        logits: tf.Tensor,
        labels: tf.Tensor,
        valid_mask: tf.Tensor,
        class_weights: tf.Tensor,
        **kwargs,
    ) -> tf.Tensor:
        """Weighted per-pixel softmax cross-entropy, `[batch, height, width]`."""
        num_classes = logits.shape[-1]
        if self._gt_is_matting_map or type(self).get_labels_with_prob is not (
            SegmentationLoss.get_labels_with_prob
        ):
            targets = self.get_labels_with_prob(logits, labels, valid_mask, **kwargs)
            losses = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
            class_ids = labels[..., 0]
            if self._gt_is_matting_map:
                class_ids = tf.cast(class_ids > 0.5, tf.int32)
        else:
            # One-hot targets without building them: sparse cross-entropy on the label,
            # plus the smoothing term `smoothing * (logsumexp - mean logit)`.
            class_ids = labels[..., 0]
            known = (class_ids >= 0) & (class_ids < num_classes)
            safe_ids = tf.where(known, class_ids, 0)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_ids, logits=logits)
            if self._label_smoothing > 0.0:
                spread = tf.reduce_logsumexp(logits, axis=-1) - tf.reduce_mean(logits, axis=-1)
                losses = (1.0 - self._label_smoothing) * losses + self._label_smoothing * spread
        known = (class_ids >= 0) & (class_ids < num_classes)
        pixel_weights = tf.gather(class_weights, tf.where(known, class_ids, 0))
        return losses * tf.where(known, pixel_weights, tf.zeros_like(pixel_weights))

    def get_labels_with_prob(
        self, logits: tf.Tensor, labels: tf.Tensor, valid_mask: tf.Tensor, **unused_kwargs
    ) -> tf.Tensor:
        """The smoothed target probability of every class at every pixel.

        Subclasses may override it to customize the targets.

        Args:
          logits: `[batch, height, width, num_classes]`.
          labels: `[batch, height, width, num_layers]` class ids (or a matting map).
          valid_mask: bool `[batch, height, width, num_layers]`, False where ignored.

        Returns:
          `[batch, height, width, num_classes]` in the logits' dtype: one-hot (multi-hot
          over the layers for sigmoid cross-entropy; `[1 - label, label]` for matting maps;
          zero for ignored pixels) times `1 - label_smoothing`, plus
          `label_smoothing / num_classes`.
        """
        num_classes = logits.shape[-1]
        if self._gt_is_matting_map:
            labels = tf.cast(labels, logits.dtype)
            targets = tf.concat([1.0 - labels, labels], axis=-1)
        else:
            labels = tf.where(valid_mask, tf.cast(labels, tf.int32), -1)
            if self._use_binary_cross_entropy:
                one_hot = tf.one_hot(labels, num_classes, on_value=True, off_value=False)
                targets = tf.cast(tf.reduce_any(one_hot, axis=-2), logits.dtype)
            else:
                targets = tf.one_hot(labels[..., 0], num_classes, dtype=logits.dtype)
        smoothing = self._label_smoothing
        return targets * (1.0 - smoothing) + smoothing / num_classes

    def aggregate_loss_top_k(
        self, pixelwise_loss: tf.Tensor, num_valid_pixels: tf.Tensor | None = None
    ) -> tf.Tensor:
        """The mean of the `top_k_percent_pixels` largest losses.

        Args:
          pixelwise_loss: Per-pixel (or per-pixel-and-class) losses of any shape.
          num_valid_pixels: If given, the divisor is at most this count.

        Returns:
          `sum(top k losses) / (min(k, num_valid_pixels) + 1e-5)` with
          `k = int(top_k_percent_pixels * size)`.
        """
        flat = tf.reshape(pixelwise_loss, [-1])
        k = tf.cast(self._top_k_percent_pixels * tf.cast(tf.size(flat), tf.float32), tf.int32)
        top_losses, _ = tf.math.top_k(flat, k=k)
        normalizer = tf.cast(k, top_losses.dtype)
        if num_valid_pixels is not None:
            normalizer = tf.minimum(normalizer, tf.cast(num_valid_pixels, top_losses.dtype))
        return tf.reduce_sum(top_losses) / (normalizer + EPSILON)
