"""The RetinaNet input parser: decoded detection records to `(image, labels)`.

Model Garden's `official.vision.dataloaders.retinanet_input.Parser`. It takes the dict that
`TfExampleDecoder`, `TfExampleDecoderLabelMap` or `MSCOCODecoder` returns and, through
`parse_fn(is_training)`, gives `tf.data` map functions.

Training, in order: the record is checked (below); crowd objects are dropped
(`skip_crowd_during_training`); AutoAugment moves the image and its boxes (`aug_type` autoaug,
or `use_autoaugment` with `autoaugment_policy_name`; a policy must be box-aware, such as
`detection_v0`); the image is normalized with ImageNet statistics and flipped at random with
its boxes (`aug_rand_hflip`); it is resized keeping its aspect ratio to fit `output_size`,
scaled by a random factor in `[aug_scale_min, aug_scale_max]` and cropped back to
`output_size` (`preprocess_ops.resize_and_crop_image`), then zero-padded to a multiple of
`2 ** max_level` (`pad`); boxes follow in pixels, empty ones are dropped, and every anchor is
labeled (`ops.anchor.AnchorLabeler`). An image without objects gives all-background labels.

Evaluation: the same without augmentation, plus `labels["groundtruths"]` holding the
original-image ground truth padded to `max_num_instances` objects for the COCO evaluator.

Labels (Model Garden's names):

- `cls_targets`: level -> int32 `[H_l, W_l, A]` class of each positive anchor (-1 elsewhere);
- `box_targets`: level -> float32 `[H_l, W_l, A * 4]` encoded box targets;
- `anchor_boxes`: level -> float32 `[H_l, W_l, A * 4]` anchors in pixels;
- `cls_weights`, `box_weights`: float32 `[num_anchors]` loss weights (0 for ignored anchors /
  1 for positive anchors only);
- `image_info`: float32 `[4, 2]` `[[original_h, original_w], [scaled_h, scaled_w],
  [y_scale, x_scale], [y_offset, x_offset]]`;
- `attribute_targets`: name -> level -> targets, when the records carry attributes;
- `groundtruths` (evaluation): `source_id` (int64), `height`, `width`, `num_detections`,
  `image_info`, `boxes` (pixels of the original image), `classes`, `areas`, `is_crowds`.

Bad records fail with `tf.errors.InvalidArgumentError` naming their `source_id`: a class id
below 0 (a name missing from a label map) or at least `num_classes` (when given); a box
coordinate that is NaN or infinite; a box outside the image, beyond a 1e-4 rounding slack,
or with `ymin > ymax` / `xmin > xmax` (`box_outside_image="error"`), which
`box_outside_image="clip"` clips to the image instead (a box left without area is dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from garden_vision.dataloaders import utils
from garden_vision.ops import anchor, augment, box_ops, preprocess_ops

__all__ = ["Parser"]

_DTYPES = ("float32", "float16", "bfloat16")
_BOX_OUTSIDE_IMAGE = ("error", "clip")
_MODES = (None, "train", "eval", "predict", "predict_with_gt")
# Normalized coordinates this far outside [0, 1] are taken as rounding and clipped silently.
_BOX_SLACK = 1e-4
# Policy ops that move pixels: a detection policy must use their box-aware versions.
_GEOMETRIC_OPS = frozenset({"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"})


def _field(config: Any, name: str, default: Any = None) -> Any:
    """Reads `config.name` or `config[name]` (configs may arrive as dicts)."""
    if config is None:
        return default
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def _check_box_aware(augmenter: augment.AutoAugment) -> augment.AutoAugment:
    moving = sorted(
        {name for sub_policy in augmenter.policies for name, _, _ in sub_policy} & _GEOMETRIC_OPS
    )
    if moving:
        raise ValueError(
            f"AutoAugment policy {augmenter.augmentation_name!r} uses {moving}, which move the "
            "image without its boxes; detection needs a box-aware policy such as 'detection_v0'"
        )
    return augmenter


class Parser:
    """Parses decoded detection records into RetinaNet inputs and labels.

    Args:
      output_size: `[height, width]` of the model input before padding.
      min_level: The finest feature level with anchors.
      max_level: The coarsest feature level with anchors; the input is padded to a multiple
        of `2 ** max_level` when `pad`.
      num_scales: Anchor scales per octave.
      aspect_ratios: Anchor width / height ratios.
      anchor_size: Anchor side over the feature stride.
      match_threshold: IoU at or above which an anchor is positive.
      unmatched_threshold: IoU below which an anchor is negative (between the two it is
        ignored).
      box_coder_weights: Optional `[wy, wx, wh, ww]` scales of the encoded box targets.
      aug_type: An augmentation config (`common.Augmentation`): `type` `autoaug` uses
        `autoaug.augmentation_name` (box-aware, e.g. `detection_v0`), `cutout_const` and
        `translate_const`; None for none.
      aug_rand_hflip: Flip training images (and boxes) left to right at random.
      aug_scale_min: Smallest random scale of the training resize.
      aug_scale_max: Largest random scale of the training resize.
      use_autoaugment: Model Garden's older switch for AutoAugment, used when `aug_type`
        is None.
      autoaugment_policy_name: The policy of `use_autoaugment`.
      skip_crowd_during_training: Drop `is_crowd` objects from the training targets.
      max_num_instances: Objects kept in the evaluation `groundtruths`.
      dtype: The image dtype: `float32`, `float16` or `bfloat16`.
      pad: Pad the input to a multiple of `2 ** max_level` (needed by FPN decoders).
      num_classes: If given, class ids must be below it.
      box_outside_image: `error` or `clip`: what a box outside the image does.
      mode: None (train or eval as `parse_fn` says), `train`, `eval`, `predict_with_gt`
        (evaluation labels), or `predict` (evaluation labels without `groundtruths`).

    Raises:
      ValueError: For settings out of range, an unknown augmentation type, or an AutoAugment
        policy that moves pixels without boxes.

    Example:
    ```python
    decoder = TfExampleDecoder()
    parser = Parser(output_size=[640, 640], min_level=3, max_level=7, num_scales=3,
                    aspect_ratios=[0.5, 1.0, 2.0], anchor_size=4.0, aug_rand_hflip=True)
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
        match_threshold: float = 0.5,
        unmatched_threshold: float = 0.5,
        box_coder_weights: Sequence[float] | None = None,
        aug_type: Any = None,
        aug_rand_hflip: bool = False,
        aug_scale_min: float = 1.0,
        aug_scale_max: float = 1.0,
        use_autoaugment: bool = False,
        autoaugment_policy_name: str = "v0",
        skip_crowd_during_training: bool = True,
        max_num_instances: int = 100,
        dtype: str = "bfloat16",
        pad: bool = True,
        num_classes: int | None = None,
        box_outside_image: str = "error",
        mode: str | None = None,
    ):
        if len(output_size) != 2 or min(int(side) for side in output_size) <= 0:
            raise ValueError(f"output_size must be [height, width] > 0, got {output_size}")
        if not 0 < min_level <= max_level:
            raise ValueError(f"need 0 < min_level <= max_level, got {min_level}, {max_level}")
        if not 0.0 < aug_scale_min <= aug_scale_max:
            raise ValueError(
                f"need 0 < aug_scale_min <= aug_scale_max, got {aug_scale_min}, {aug_scale_max}"
            )
        if unmatched_threshold > match_threshold:
            raise ValueError(
                f"unmatched_threshold {unmatched_threshold} must not exceed match_threshold "
                f"{match_threshold}"
            )
        if dtype not in _DTYPES:
            raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(_DTYPES)}")
        if box_outside_image not in _BOX_OUTSIDE_IMAGE:
            raise ValueError(f"box_outside_image {box_outside_image!r}: expected error or clip")
        if mode not in _MODES:
            raise ValueError(f"mode {mode!r}: expected one of {_MODES}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if max_num_instances < 1:
            raise ValueError(f"max_num_instances must be >= 1, got {max_num_instances}")

        self._output_size = [int(output_size[0]), int(output_size[1])]
        self._min_level = int(min_level)
        self._max_level = int(max_level)
        self._num_scales = int(num_scales)
        self._aspect_ratios = [float(ratio) for ratio in aspect_ratios]
        self._anchor_size = float(anchor_size)
        self._match_threshold = float(match_threshold)
        self._unmatched_threshold = float(unmatched_threshold)
        self._box_coder_weights = None if box_coder_weights is None else list(box_coder_weights)
        self._aug_rand_hflip = bool(aug_rand_hflip)
        self._aug_scale_min = float(aug_scale_min)
        self._aug_scale_max = float(aug_scale_max)
        self._skip_crowd_during_training = bool(skip_crowd_during_training)
        self._max_num_instances = int(max_num_instances)
        self._dtype = tf.dtypes.as_dtype(dtype)
        self._pad = bool(pad)
        self._num_classes = num_classes
        self._box_outside_image = box_outside_image
        self._mode = mode
        self._augmenter = self._build_augmenter(aug_type, use_autoaugment, autoaugment_policy_name)
        if self._pad:
            self._padded_size = preprocess_ops.compute_padded_size(
                self._output_size, 2**self._max_level
            )
        else:
            self._padded_size = list(self._output_size)

    @staticmethod
    def _build_augmenter(
        aug_type: Any, use_autoaugment: bool, policy_name: str
    ) -> augment.AutoAugment | None:
        kind = _field(aug_type, "type")
        if kind:
            if kind != "autoaug":
                raise ValueError(
                    f"aug_type.type {kind!r}: detection supports 'autoaug' (with a box-aware "
                    "policy such as 'detection_v0')"
                )
            autoaug = _field(aug_type, "autoaug")
            return _check_box_aware(
                augment.AutoAugment(
                    augmentation_name=_field(autoaug, "augmentation_name", "detection_v0"),
                    cutout_const=_field(autoaug, "cutout_const", 100),
                    translate_const=_field(autoaug, "translate_const", 250),
                )
            )
        if use_autoaugment:
            return _check_box_aware(augment.AutoAugment(augmentation_name=policy_name))
        return None

    # Public API.

    def parse_fn(self, is_training: bool) -> Callable[[dict[str, tf.Tensor]], Any]:
        """Returns the `tf.data` map function for training or evaluation data.

        With `mode` set, the mode decides: `train` parses training data, the others
        evaluation data.
        """
        training = is_training if self._mode is None else self._mode == "train"

        def parse(decoded: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, Any]]:
            if training:
                return self._parse_train_data(decoded)
            return self._parse_eval_data(decoded)

        return parse

    def __call__(self, decoded: dict[str, tf.Tensor], is_training: bool = False):
        return self.parse_fn(is_training)(decoded)

    # Checks.

    def _checked(self, decoded: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns the record's classes (int32) and normalized boxes after checking them."""
        source_id = decoded["source_id"]
        classes = tf.cast(decoded["groundtruth_classes"], tf.int32)
        boxes = tf.cast(decoded["groundtruth_boxes"], tf.float32)
        checks = [
            utils.check_record(
                tf.reduce_all(classes >= 0),
                source_id,
                "has a negative class id (a class name missing from the label map?)",
            ),
            utils.check_record(
                tf.reduce_all(tf.math.is_finite(boxes)),
                source_id,
                "has a box coordinate that is NaN or infinite",
            ),
        ]
        if self._num_classes is not None:
            checks.append(
                utils.check_record(
                    tf.reduce_all(classes < self._num_classes),
                    source_id,
                    f"has a class id >= num_classes ({self._num_classes})",
                )
            )
        if self._box_outside_image == "error":
            inside = tf.reduce_all((boxes >= -_BOX_SLACK) & (boxes <= 1.0 + _BOX_SLACK))
            ordered = tf.reduce_all(
                (boxes[:, 0] <= boxes[:, 2] + _BOX_SLACK)
                & (boxes[:, 1] <= boxes[:, 3] + _BOX_SLACK)
            )
            checks.append(
                utils.check_record(
                    inside & ordered,
                    source_id,
                    "has a box outside the image or with ymin > ymax or xmin > xmax "
                    "(normalized [ymin, xmin, ymax, xmax] must lie in [0, 1]; set "
                    "box_outside_image='clip' to clip such boxes)",
                )
            )
        with tf.control_dependencies(checks):
            classes = tf.identity(classes)
            boxes = tf.clip_by_value(boxes, 0.0, 1.0)
        return classes, boxes

    # Shared steps.

    def _resize(
        self, image: tf.Tensor, boxes: tf.Tensor, training: bool
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Resizes (with jitter when training) and pads the image; maps pixel boxes along."""
        scale_min, scale_max = (
            (self._aug_scale_min, self._aug_scale_max) if training else (1.0, 1.0)
        )
        image, image_info = preprocess_ops.resize_and_crop_image(
            image,
            self._output_size,
            self._padded_size,
            aug_scale_min=scale_min,
            aug_scale_max=scale_max,
        )
        image.set_shape([*self._padded_size, 3])
        boxes = preprocess_ops.resize_and_crop_boxes(
            boxes, image_info[2, :], image_info[1, :], image_info[3, :]
        )
        return image, boxes, image_info

    def _labels(
        self,
        boxes: tf.Tensor,
        classes: tf.Tensor,
        attributes: dict[str, tf.Tensor],
        image_info: tf.Tensor,
    ) -> dict[str, Any]:
        """Labels every anchor from the (pixel) boxes that still have an area."""
        keep = box_ops.get_non_empty_box_indices(boxes)
        boxes = tf.gather(boxes, keep)
        classes = tf.gather(classes, keep)
        attributes = {name: tf.gather(value, keep) for name, value in attributes.items()}
        anchor_boxes = anchor.Anchor(
            min_level=self._min_level,
            max_level=self._max_level,
            num_scales=self._num_scales,
            aspect_ratios=self._aspect_ratios,
            anchor_size=self._anchor_size,
            image_size=self._padded_size,
        ).multilevel_boxes
        labeler = anchor.AnchorLabeler(
            match_threshold=self._match_threshold,
            unmatched_threshold=self._unmatched_threshold,
            box_coder_weights=self._box_coder_weights,
        )
        cls_targets, box_targets, att_targets, cls_weights, box_weights = labeler.label_anchors(
            anchor_boxes, boxes, classes[:, None], attributes or None
        )
        labels = {
            "cls_targets": cls_targets,
            "box_targets": box_targets,
            "anchor_boxes": anchor_boxes,
            "cls_weights": cls_weights,
            "box_weights": box_weights,
            "image_info": image_info,
        }
        if att_targets:
            labels["attribute_targets"] = att_targets
        return labels

    # Training and evaluation.

    def _parse_train_data(self, decoded: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict]:
        classes, boxes = self._checked(decoded)
        attributes = dict(decoded.get("groundtruth_attributes", {}))
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
            attributes = {name: tf.gather(value, keep) for name, value in attributes.items()}

        image = decoded["image"]
        if self._augmenter is not None:
            image, boxes = self._augmenter.distort_with_boxes(image, boxes)
        image_shape = tf.shape(image)[:2]
        image = preprocess_ops.normalize_image(image)
        if self._aug_rand_hflip:
            image, boxes, _ = preprocess_ops.random_horizontal_flip(image, boxes)
        boxes = box_ops.denormalize_boxes(boxes, image_shape)
        image, boxes, image_info = self._resize(image, boxes, training=True)
        labels = self._labels(boxes, classes, attributes, image_info)
        return tf.cast(image, self._dtype), labels

    def _parse_eval_data(self, decoded: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict]:
        classes, boxes = self._checked(decoded)
        attributes = dict(decoded.get("groundtruth_attributes", {}))
        image = decoded["image"]
        image_shape = tf.shape(image)[:2]
        image = preprocess_ops.normalize_image(image)
        original_boxes = box_ops.denormalize_boxes(boxes, image_shape)
        image, boxes, image_info = self._resize(image, original_boxes, training=False)
        labels = self._labels(boxes, classes, attributes, image_info)
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
            if attributes:
                groundtruths["attributes"] = attributes
            labels["groundtruths"] = utils.pad_groundtruths_to_fixed_size(
                groundtruths, self._max_num_instances
            )
        return tf.cast(image, self._dtype), labels
