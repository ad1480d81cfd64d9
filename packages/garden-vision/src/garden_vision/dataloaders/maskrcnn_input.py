"""The Mask R-CNN input parser: decoded detection records to `(image, labels)`.

Model Garden's `official.vision.dataloaders.maskrcnn_input.Parser`, for Faster R-CNN
(`include_mask=False`), Mask R-CNN and Cascade R-CNN. It extends the RetinaNet parser
(`retinanet_input.Parser`): records are checked the same way (bad class ids, boxes outside
the image, NaNs, each error naming the record's `source_id`), resized and padded the same
way, and `parse_fn(is_training)` gives the `tf.data` map functions. What differs is the
labels: the region proposal network's anchor targets instead of RetinaNet's, plus the
ground-truth boxes, classes and masks the second stage samples from.

Training, in order: the record is checked; crowd objects are dropped
(`skip_crowd_during_training`); `aug_type` (AutoAugment or RandAugment) changes pixel values
(ops that move pixels are refused, since masks would not follow); the image is normalized
with ImageNet statistics and flipped at random with its boxes and masks
(`aug_rand_hflip`, `aug_rand_vflip`); it is resized keeping its aspect ratio to fit
`output_size`, scaled by a random factor in `[aug_scale_min, aug_scale_max]`, cropped back
to `output_size` and zero-padded to a multiple of `2 ** max_level`; boxes follow in pixels
and empty ones are dropped. Each remaining object's mask is cut out of the full-resolution
mask along its (visible) box, enlarged by `outer_boxes_scale`, and resized bilinearly to
`mask_crop_size x mask_crop_size` (`tf.image.crop_and_resize`). Every anchor is matched to
the boxes (`RpnAnchorLabeler`): IoU >= `rpn_match_threshold` is positive (and every box
claims its best anchor), < `rpn_unmatched_threshold` negative, in between ignored; then
`rpn_batch_size_per_im` anchors are sampled, at most `rpn_fg_fraction` of them positive and
negatives filling the rest, and every anchor left out is ignored.

Evaluation: no augmentation and no RPN targets; `labels["groundtruths"]` holds the
original-image ground truth padded to `max_num_instances` objects for the COCO evaluator,
with masks cropped to their boxes.

Training labels (Model Garden's names):

- `anchor_boxes`: level -> float32 `[H_l, W_l, A * 4]` anchors in pixels;
- `image_info`: float32 `[4, 2]` `[[original_h, original_w], [scaled_h, scaled_w],
  [y_scale, x_scale], [y_offset, x_offset]]`;
- `rpn_score_targets`: level -> int32 `[H_l, W_l, A]`: 1 sampled positive, 0 sampled
  negative, -1 ignored;
- `rpn_box_targets`: level -> float32 `[H_l, W_l, A * 4]` encoded boxes (`[dy, dx, dh, dw]`,
  Faster R-CNN's coder without weights) of every positive anchor, 0 elsewhere;
- `gt_boxes`: float32 `[max_num_instances, 4]` pixels of the model input, -1 padding;
- `gt_classes`: int32 `[max_num_instances]`, -1 padding;
- with `include_mask`: `gt_outer_boxes` (as `gt_boxes`, enlarged by `outer_boxes_scale`) and
  `gt_masks`: float32 `[max_num_instances, mask_crop_size, mask_crop_size]`, -1 padding.

Evaluation labels: `anchor_boxes`, `image_info` and `groundtruths`: `source_id` (int64),
`height`, `width`, `num_detections`, `image_info`, `boxes` (pixels of the original image),
`classes`, `areas`, `is_crowds`, and with `include_mask` `masks` (float32
`[max_num_instances, mask_crop_size, mask_crop_size]`, each cropped to its box, -1 padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from garden_vision.dataloaders import retinanet_input, utils
from garden_vision.ops import anchor, augment, box_ops, preprocess_ops

__all__ = ["Parser", "RpnAnchorLabeler", "balanced_sample"]


def _random_subset(candidates: tf.Tensor, count: tf.Tensor, max_count: int) -> tf.Tensor:
    """Marks `min(count, number of candidates)` of the True `candidates`, uniformly at random.

    Every candidate gets a uniform random key and the `max_count` largest keys are kept
    (`tf.math.top_k`, so shapes stay static); non-candidates get -1 and are never kept,
    and only the first `count` of the kept ones are marked.
    """
    size = candidates.shape[0]
    if size is None:
        size = tf.shape(candidates)[0]
        k = tf.minimum(max_count, size)
    else:
        k = min(max_count, size)
    keys = tf.where(candidates, tf.random.uniform(tf.shape(candidates)), -1.0)
    values, indices = tf.math.top_k(keys, k=k, sorted=True)
    chosen = (values >= 0.0) & (tf.range(k) < count)
    return tf.scatter_nd(indices[:, None], tf.cast(chosen, tf.int32), tf.shape(candidates)) > 0


def balanced_sample(
    positive: tf.Tensor, negative: tf.Tensor, batch_size: int, positive_fraction: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Samples a minibatch of at most `batch_size` examples with a bounded positive share.

    Model Garden's `BalancedPositiveNegativeSampler` (not static): up to
    `floor(positive_fraction * batch_size)` positives are drawn uniformly at random, and
    negatives fill the batch up to `batch_size` (fewer when there are not enough).

    Args:
      positive: bool `[N]`, the examples that may be drawn as positives.
      negative: bool `[N]`, the examples that may be drawn as negatives (disjoint from
        `positive`).
      batch_size: The most examples drawn.
      positive_fraction: The largest share of positives, in (0, 1].

    Returns:
      `(sampled_positive, sampled_negative)`, bool `[N]` each.
    """
    max_positives = int(positive_fraction * batch_size)
    sampled_positive = _random_subset(positive, max_positives, max_positives)
    num_positives = tf.reduce_sum(tf.cast(sampled_positive, tf.int32))
    sampled_negative = _random_subset(negative, batch_size - num_positives, batch_size)
    return sampled_positive, sampled_negative


class RpnAnchorLabeler(anchor.AnchorLabeler):
    """Labels anchors for the region proposal network (Model Garden's `RpnAnchorLabeler`).

    Matching is `AnchorLabeler`'s (IoU thresholds, every box claiming its best anchor, the
    Faster R-CNN box coder without weights); the class targets become objectness targets,
    subsampled with `balanced_sample`.

    Args:
      match_threshold: The IoU from which an anchor is positive.
      unmatched_threshold: The IoU below which an anchor is negative.
      rpn_batch_size_per_im: Anchors sampled per image.
      rpn_fg_fraction: The largest share of positives among them.
    """

    def __init__(
        self,
        match_threshold: float = 0.7,
        unmatched_threshold: float = 0.3,
        rpn_batch_size_per_im: int = 256,
        rpn_fg_fraction: float = 0.5,
    ):
        super().__init__(match_threshold=match_threshold, unmatched_threshold=unmatched_threshold)
        if rpn_batch_size_per_im < 1:
            raise ValueError(
                f"rpn_batch_size_per_im must be at least 1, got {rpn_batch_size_per_im}"
            )
        if not 0.0 < rpn_fg_fraction <= 1.0:
            raise ValueError(f"rpn_fg_fraction must be in (0, 1], got {rpn_fg_fraction}")
        self.rpn_batch_size_per_im = int(rpn_batch_size_per_im)
        self.rpn_fg_fraction = float(rpn_fg_fraction)

    def label_anchors(  # type: ignore[override]
        self, anchor_boxes: dict[str, tf.Tensor], gt_boxes: tf.Tensor, gt_labels: tf.Tensor
    ) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        """Labels the anchors of one image.

        Args:
          anchor_boxes: `{str(level): [H_l, W_l, A * 4]}` pixel anchors (static shapes).
          gt_boxes: `[N, 4]` pixel ground-truth boxes (N may be 0).
          gt_labels: `[N]` or `[N, 1]` classes (only their count matters).

        Returns:
          `(score_targets, box_targets)`: `{level: [H_l, W_l, A]}` int32 (1 sampled
          positive, 0 sampled negative, -1 ignored) and `{level: [H_l, W_l, A * 4]}`
          float32 encoded boxes of every positive anchor (0 elsewhere).
        """
        _, box_targets, _, cls_weights, box_weights = super().label_anchors(
            anchor_boxes, gt_boxes, gt_labels
        )
        positive = box_weights > 0.0
        negative = (cls_weights > 0.0) & ~positive
        sampled_positive, sampled_negative = balanced_sample(
            positive, negative, self.rpn_batch_size_per_im, self.rpn_fg_fraction
        )
        scores = tf.where(
            sampled_positive,
            tf.constant(1, tf.int32),
            tf.where(sampled_negative, tf.constant(0, tf.int32), tf.constant(-1, tf.int32)),
        )
        return anchor.unpack_targets(scores, anchor_boxes), box_targets


def _random_vertical_flip(
    image: tf.Tensor, normalized_boxes: tf.Tensor, masks: tf.Tensor | None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """Flips the image, its normalized boxes and `[N, H, W]` masks top to bottom, half the time."""
    flip = tf.random.uniform([]) < 0.5
    image = tf.cond(flip, lambda: tf.reverse(image, [0]), lambda: image)
    normalized_boxes = tf.cond(
        flip, lambda: box_ops.vertical_flip_boxes(normalized_boxes), lambda: normalized_boxes
    )
    if masks is not None:
        original = masks
        masks = tf.cond(flip, lambda: tf.reverse(original, [1]), lambda: original)
    return image, normalized_boxes, masks


def _crop_masks(masks: tf.Tensor, normalized_boxes: tf.Tensor, size: int) -> tf.Tensor:
    """Bilinear `[N, size, size]` crops of `[N, H, W]` masks, crop `i` along box `i`."""
    crops = tf.image.crop_and_resize(
        tf.cast(masks, tf.float32)[..., None],
        tf.cast(normalized_boxes, tf.float32),
        box_indices=tf.range(tf.shape(masks)[0], dtype=tf.int32),
        crop_size=[size, size],
        method="bilinear",
    )
    return crops[..., 0]


class Parser(retinanet_input.Parser):
    """Parses decoded detection records into Faster / Mask R-CNN inputs and labels.

    Args:
      output_size: `[height, width]` of the model input before padding.
      min_level: The finest feature level with anchors.
      max_level: The coarsest; the input is padded to a multiple of `2 ** max_level`.
      num_scales: Anchor scales per octave.
      aspect_ratios: Anchor width / height ratios.
      anchor_size: Anchor side over the feature stride.
      rpn_match_threshold: IoU at or above which an anchor is an RPN positive.
      rpn_unmatched_threshold: IoU below which an anchor is an RPN negative (between the
        two it is ignored).
      rpn_batch_size_per_im: Anchors sampled per image for the RPN score loss.
      rpn_fg_fraction: The largest share of positives among them.
      aug_rand_hflip: Flip training images (boxes, masks) left to right at random.
      aug_rand_vflip: Flip training images (boxes, masks) top to bottom at random.
      aug_scale_min: Smallest random scale of the training resize.
      aug_scale_max: Largest random scale of the training resize.
      aug_type: An augmentation config (`common.Augmentation`, or a dict): `autoaug` (e.g.
        policy `simple`) or `randaug` (with `Rotate`, `ShearX`, `ShearY`, `TranslateX`
        and `TranslateY` in `exclude_ops`); its ops must not move pixels. None for none.
      skip_crowd_during_training: Drop `is_crowd` objects from the training targets.
      max_num_instances: Objects kept in `gt_*` and the evaluation `groundtruths`.
      include_mask: Parse instance masks (`groundtruth_instance_masks` of the decoded
        records: decode with `TfExampleDecoder(include_mask=True)`).
      outer_boxes_scale: Mask targets are cropped along boxes enlarged by this factor (at
        least 1) around their centers.
      mask_crop_size: The side of the cropped ground-truth masks.
      dtype: The image dtype: `float32`, `float16` or `bfloat16`.
      num_classes: If given, class ids must be below it.
      box_outside_image: `error` or `clip`: what a box outside the image does.
      mode: None (train or eval as `parse_fn` says), `train`, `eval`, `predict_with_gt`
        (evaluation labels), or `predict` (evaluation labels without `groundtruths`).

    Raises:
      ValueError: For settings out of range, an unknown augmentation type, or an
        augmentation that moves pixels.

    Example:
    ```python
    decoder = TfExampleDecoder(include_mask=True)
    parser = Parser(output_size=[1024, 1024], min_level=2, max_level=6, num_scales=1,
                    aspect_ratios=[0.5, 1.0, 2.0], anchor_size=8.0, include_mask=True,
                    aug_rand_hflip=True, aug_scale_min=0.8, aug_scale_max=1.25)
    dataset = (tf.data.TFRecordDataset(files).map(decoder.decode)
               .map(parser.parse_fn(is_training=True)).batch(8))
    ```
    """

    def __init__(
        self,
        output_size: Sequence[int],
        min_level: int,
        max_level: int,
        num_scales: int,
        aspect_ratios: Sequence[float],
        anchor_size: float,
        rpn_match_threshold: float = 0.7,
        rpn_unmatched_threshold: float = 0.3,
        rpn_batch_size_per_im: int = 256,
        rpn_fg_fraction: float = 0.5,
        aug_rand_hflip: bool = False,
        aug_rand_vflip: bool = False,
        aug_scale_min: float = 1.0,
        aug_scale_max: float = 1.0,
        aug_type: Any = None,
        skip_crowd_during_training: bool = True,
        max_num_instances: int = 100,
        include_mask: bool = False,
        outer_boxes_scale: float = 1.0,
        mask_crop_size: int = 112,
        dtype: str = "float32",
        num_classes: int | None = None,
        box_outside_image: str = "error",
        mode: str | None = None,
    ):
        if outer_boxes_scale < 1.0:
            raise ValueError(f"outer_boxes_scale must be at least 1.0, got {outer_boxes_scale}")
        if mask_crop_size < 1:
            raise ValueError(f"mask_crop_size must be at least 1, got {mask_crop_size}")
        super().__init__(
            output_size=output_size,
            min_level=min_level,
            max_level=max_level,
            num_scales=num_scales,
            aspect_ratios=aspect_ratios,
            anchor_size=anchor_size,
            match_threshold=rpn_match_threshold,
            unmatched_threshold=rpn_unmatched_threshold,
            aug_type=aug_type,
            aug_rand_hflip=aug_rand_hflip,
            aug_scale_min=aug_scale_min,
            aug_scale_max=aug_scale_max,
            skip_crowd_during_training=skip_crowd_during_training,
            max_num_instances=max_num_instances,
            dtype=dtype,
            pad=True,
            num_classes=num_classes,
            box_outside_image=box_outside_image,
            mode=mode,
        )
        # Checks the RPN sampling settings now rather than in the first `tf.data` map.
        self._rpn_labeler = RpnAnchorLabeler(
            match_threshold=self._match_threshold,
            unmatched_threshold=self._unmatched_threshold,
            rpn_batch_size_per_im=rpn_batch_size_per_im,
            rpn_fg_fraction=rpn_fg_fraction,
        )
        self._aug_rand_vflip = bool(aug_rand_vflip)
        self._include_mask = bool(include_mask)
        self._outer_boxes_scale = float(outer_boxes_scale)
        self._mask_crop_size = int(mask_crop_size)

    @staticmethod
    def _build_augmenter(
        aug_type: Any, use_autoaugment: bool, policy_name: str
    ) -> augment.AutoAugment | augment.RandAugment | None:
        """AutoAugment or RandAugment on the image alone, refusing ops that move pixels."""
        del use_autoaugment, policy_name  # Model Garden's Mask R-CNN reads `aug_type` only.
        field = retinanet_input._field
        kind = field(aug_type, "type")
        if not kind:
            return None
        moving = retinanet_input._GEOMETRIC_OPS
        if kind == "autoaug":
            settings = field(aug_type, "autoaug")
            augmenter = augment.AutoAugment(
                augmentation_name=field(settings, "augmentation_name", "v0"),
                cutout_const=field(settings, "cutout_const", 100),
                translate_const=field(settings, "translate_const", 250),
            )
            ops = {name for sub_policy in augmenter.policies for name, _, _ in sub_policy}
            where = f"AutoAugment policy {augmenter.augmentation_name!r}"
            remedy = "choose a policy of pixel-value ops only, such as 'simple'"
        elif kind == "randaug":
            settings = field(aug_type, "randaug")
            augmenter = augment.RandAugment(
                num_layers=field(settings, "num_layers", 2),
                magnitude=field(settings, "magnitude", 10),
                cutout_const=field(settings, "cutout_const", 40),
                translate_const=field(settings, "translate_const", 10),
                magnitude_std=field(settings, "magnitude_std", 0.0),
                prob_to_apply=field(settings, "prob_to_apply"),
                exclude_ops=field(settings, "exclude_ops"),
            )
            ops = set(augmenter.available_ops)
            where = "RandAugment"
            remedy = "add them to randaug.exclude_ops"
        else:
            raise ValueError(
                f"aug_type.type {kind!r}: Mask R-CNN supports 'autoaug' or 'randaug' (ops "
                "that change pixel values only)"
            )
        moved = sorted(name for name in ops if name in moving or "BBox" in name)
        if moved:
            raise ValueError(
                f"{where} uses {moved}, which move pixels without the instance masks: {remedy}"
            )
        return augmenter

    # Shared steps.

    def _anchor_boxes(self) -> dict[str, tf.Tensor]:
        return anchor.Anchor(
            min_level=self._min_level,
            max_level=self._max_level,
            num_scales=self._num_scales,
            aspect_ratios=self._aspect_ratios,
            anchor_size=self._anchor_size,
            image_size=self._padded_size,
        ).multilevel_boxes

    def _masks(self, decoded: dict[str, tf.Tensor]) -> tf.Tensor:
        if "groundtruth_instance_masks" not in decoded:
            raise ValueError(
                "include_mask needs `groundtruth_instance_masks` in the decoded records: decode "
                "them with TfExampleDecoder(include_mask=True)"
            )
        return tf.cast(decoded["groundtruth_instance_masks"], tf.float32)

    # Training and evaluation.

    def _parse_train_data(self, decoded: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict]:
        classes, boxes = self._checked(decoded)
        masks = self._masks(decoded) if self._include_mask else None
        if self._skip_crowd_during_training:
            keep = tf.where(~tf.cast(decoded["groundtruth_is_crowd"], tf.bool))[:, 0]
            # Records without `is_crowd` values keep every object.
            keep = tf.cond(
                tf.size(decoded["groundtruth_is_crowd"]) > 0,
                lambda: keep,
                lambda: tf.range(tf.size(classes, out_type=tf.int64)),
            )
            classes = tf.gather(classes, keep)
            boxes = tf.gather(boxes, keep)
            if masks is not None:
                masks = tf.gather(masks, keep)

        image = decoded["image"]
        if self._augmenter is not None:
            image = self._augmenter.distort(image)
        image_shape = tf.shape(image)[:2]
        image = preprocess_ops.normalize_image(image)
        if self._aug_rand_hflip:
            image, boxes, masks = preprocess_ops.random_horizontal_flip(image, boxes, masks)
        if self._aug_rand_vflip:
            image, boxes, masks = _random_vertical_flip(image, boxes, masks)
        boxes = box_ops.denormalize_boxes(boxes, image_shape)
        image, boxes, image_info = self._resize(image, boxes, training=True)

        keep = box_ops.get_non_empty_box_indices(boxes)
        boxes = tf.gather(boxes, keep)
        classes = tf.gather(classes, keep)

        anchor_boxes = self._anchor_boxes()
        score_targets, box_targets = self._rpn_labeler.label_anchors(
            anchor_boxes, boxes, classes[:, None]
        )
        size = self._max_num_instances
        labels = {
            "anchor_boxes": anchor_boxes,
            "image_info": image_info,
            "rpn_score_targets": score_targets,
            "rpn_box_targets": box_targets,
            "gt_boxes": preprocess_ops.clip_or_pad_to_fixed_size(boxes, size, -1),
            "gt_classes": preprocess_ops.clip_or_pad_to_fixed_size(classes, size, -1),
        }
        if masks is not None:
            masks = tf.gather(masks, keep)
            outer_boxes = box_ops.compute_outer_boxes(
                boxes, image_info[1, :], self._outer_boxes_scale
            )
            # The (outer) boxes back in the original image, normalized: where to crop the
            # full-resolution masks.
            scale = tf.tile(image_info[2, :], [2])
            offset = tf.tile(image_info[3, :], [2])
            crop_boxes = box_ops.normalize_boxes((outer_boxes + offset) / scale, image_shape)
            masks = _crop_masks(masks, crop_boxes, self._mask_crop_size)
            labels["gt_outer_boxes"] = preprocess_ops.clip_or_pad_to_fixed_size(
                outer_boxes, size, -1
            )
            labels["gt_masks"] = preprocess_ops.clip_or_pad_to_fixed_size(masks, size, -1)
        return tf.cast(image, self._dtype), labels

    def _parse_eval_data(self, decoded: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict]:
        classes, boxes = self._checked(decoded)
        image = decoded["image"]
        image_shape = tf.shape(image)[:2]
        image = preprocess_ops.normalize_image(image)
        original_boxes = box_ops.denormalize_boxes(boxes, image_shape)
        image, _, image_info = self._resize(image, original_boxes, training=False)
        labels = {"anchor_boxes": self._anchor_boxes(), "image_info": image_info}
        if self._mode != "predict":
            groundtruths = {
                "source_id": utils.process_source_id(decoded["source_id"]),
                "height": decoded["height"],
                "width": decoded["width"],
                "num_detections": tf.shape(classes)[0],
                "image_info": image_info,
                "boxes": original_boxes,
                "classes": classes,
                "areas": tf.cast(decoded["groundtruth_area"], tf.float32),
                "is_crowds": tf.cast(decoded["groundtruth_is_crowd"], tf.int32),
            }
            groundtruths = utils.pad_groundtruths_to_fixed_size(
                groundtruths, self._max_num_instances
            )
            if self._include_mask:
                masks = _crop_masks(self._masks(decoded), boxes, self._mask_crop_size)
                groundtruths["masks"] = preprocess_ops.clip_or_pad_to_fixed_size(
                    masks, self._max_num_instances, -1
                )
            labels["groundtruths"] = groundtruths
        return tf.cast(image, self._dtype), labels
