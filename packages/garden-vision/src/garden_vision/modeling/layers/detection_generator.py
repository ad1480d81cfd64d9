"""Final detections of one- and two-stage detectors (Model Garden's `detection_generator`).

`MultilevelDetectionGenerator` takes the per-level box regressions and class logits of a
dense head (RetinaNet), decodes the boxes against their anchors, turns logits into sigmoid
scores, drops class 0 (background), clips boxes to the image, and runs non-maximum
suppression, giving `detection_boxes`, `detection_scores`, `detection_classes` and
`num_detections` of fixed size `max_num_detections` (valid detections first, sorted by
score, the rest zero).

`nms_version` picks the NMS implementation:

- `"batched"`: `tf.image.combined_non_max_suppression`, per class (ignores
  `pre_nms_top_k`). Fast on CPU and GPU.
- `"v1"`: per class, the `pre_nms_top_k` best boxes, then greedy NMS with the score
  threshold (`ops.nms.non_max_suppression_padded`, every class and image in one call), or
  Soft-NMS (`tf.image.non_max_suppression_with_scores`, per image and class) when
  `soft_nms_sigma` is set.
- `"v2"`: Model Garden's TPU path: per class, the `pre_nms_top_k` best boxes, score
  filtering (`box_ops.filter_boxes_by_scores`), then NMS of the sorted boxes
  (`ops.nms.sorted_non_max_suppression_padded`'s path), static shapes throughout.

`"v1"` and `"v2"` also return attributes (`raw_attributes`) of the kept boxes and support
class-agnostic NMS (`use_class_agnostic_nms`: one NMS over every box's best class).
- `"tflite"`: the post-processing TensorFlow Lite runs as its built-in custom op
  `TFLite_Detection_PostProcess`. It is a `tf.function` whose `experimental_implements`
  attribute carries the op's settings (from `tflite_post_processing_config`); the TFLite
  converter replaces the whole function by the op. Its TensorFlow body computes what the op
  computes (decoding, then fast class-agnostic NMS keeping `max_classes_per_detection`
  classes per box, or regular per-class NMS), so the SavedModel also runs in TensorFlow.
  Boxes are not clipped to the image (the op cannot), and are normalized to [0, 1] when
  `normalize_anchor_coordinates` is set. With `omit_nms`, the decoded boxes and all scores
  are returned instead, for NMS in the application. Convert with `tflite_converter(...)`,
  which sets up `tf.lite.TFLiteConverter` for it.

All paths agree on the same inputs where their algorithms coincide (hard NMS per class).

`DetectionGenerator` is the second-stage counterpart (Faster / Mask / Cascade R-CNN): it
decodes one box per class relative to each ROI (with the box head's regression weights),
turns class logits into softmax (or sigmoid) scores, and runs per-class NMS (`"batched"`,
`"v1"` with optional Soft-NMS, or `"v2"`) over those class-specific boxes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from garden_vision.ops import box_ops, nms

__all__ = [
    "NMS_VERSIONS",
    "TWO_STAGE_NMS_VERSIONS",
    "DetectionGenerator",
    "TFLITE_POST_PROCESSING_DEFAULTS",
    "MultilevelDetectionGenerator",
    "tflite_converter",
    "tflite_post_processing",
]

NMS_VERSIONS = ("batched", "v1", "v2", "tflite")

# Model Garden's `TFLitePostProcessingConfig` fields and defaults, plus the op attributes it
# reads with defaults (`detections_per_class`, the four box coder scales). `input_image_size`
# ([height, width]) is needed only to normalize anchors when no `image_shape` is given.
TFLITE_POST_PROCESSING_DEFAULTS: dict[str, Any] = {
    "max_detections": 200,
    "max_classes_per_detection": 5,
    "use_regular_nms": False,
    "nms_score_threshold": 0.1,
    "nms_iou_threshold": 0.5,
    "normalize_anchor_coordinates": False,
    "omit_nms": False,
    "detections_per_class": 5,
    "y_scale": 1.0,
    "x_scale": 1.0,
    "h_scale": 1.0,
    "w_scale": 1.0,
    "input_image_size": None,
}

# TensorFlow 2.21's converter does not forward `detections_per_class` to the TFLite op,
# whose kernel then keeps at most this many boxes per class in regular NMS.
_TFLITE_KERNEL_DETECTIONS_PER_CLASS = 100


def tflite_converter(concrete_function, trackable=None) -> tf.lite.TFLiteConverter:
    """A `TFLiteConverter` for a serving function that uses the `"tflite"` detection path.

    The converter must take its MLIR path, which keeps `tf.function`s carrying
    `experimental_implements` whole and replaces them by `TFLite_Detection_PostProcess`.
    `from_concrete_functions` without a trackable object falls back to the deprecated path,
    which inlines the function (its TensorFlow body then fails to convert), so an empty
    `tf.Module` stands in when none is given. The op is built into the TFLite runtime's op
    resolver, so no custom-op flag is needed; everything else converts to builtin ops. Keras
    variables should be frozen into constants first (see `garden_vision.serving.tflite`).

    Args:
      concrete_function: The serving function, e.g. `fn.get_concrete_function(spec)`.
      trackable: The object owning the function's variables, if any.
    """
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete_function], trackable if trackable is not None else tf.Module()
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def _as_dict(config) -> dict[str, Any]:
    if config is None:
        return {}
    if hasattr(config, "as_dict"):
        config = config.as_dict()
    if not isinstance(config, Mapping):
        raise TypeError(
            f"tflite_post_processing_config must be a mapping, got {type(config).__name__}"
        )
    return dict(config)


def _implements_signature(config: Mapping[str, Any], num_classes: int) -> str:
    """The `experimental_implements` text the converter turns into the op's attributes."""
    attributes = [
        ("max_detections", "i", int(config["max_detections"])),
        ("max_classes_per_detection", "i", int(config["max_classes_per_detection"])),
        ("detections_per_class", "i", int(config["detections_per_class"])),
        ("use_regular_nms", "b", str(bool(config["use_regular_nms"])).lower()),
        ("nms_score_threshold", "f", float(config["nms_score_threshold"])),
        ("nms_iou_threshold", "f", float(config["nms_iou_threshold"])),
        ("y_scale", "f", float(config["y_scale"])),
        ("x_scale", "f", float(config["x_scale"])),
        ("h_scale", "f", float(config["h_scale"])),
        ("w_scale", "f", float(config["w_scale"])),
        ("num_classes", "i", int(num_classes)),
    ]
    parts = ['name: "TFLite_Detection_PostProcess"']
    for key, kind, value in attributes:
        parts.append(f'attr {{ key: "{key}" value {{ {kind}: {value} }} }}')
    return " ".join(parts)


def _postprocess_like_tflite(box_encodings, class_scores, anchors, config):
    """TensorFlow equivalent of `TFLite_Detection_PostProcess` (float inputs).

    Args:
      box_encodings: `[batch, N, 4]` `[dy, dx, dh, dw]` encodings.
      class_scores: `[batch, N, num_classes]` scores (no background column).
      anchors: `[N, 4]` anchors as `[center_y, center_x, height, width]`.
      config: The post-processing settings.

    Returns:
      `(boxes, classes, scores, num_detections)` laid out as the op returns them: float32,
      classes 0-based over the score columns, `num_detections` counting boxes, and
      `max_detections * max_classes_per_detection` entries per image (the op's output size).
      Regular NMS fills the first `max_detections` entries; fast NMS gives box `b` the
      entries `b * max_classes_per_detection + j` for its `j`-th best class (`j` below
      `min(max_classes_per_detection, num_classes)`). Other entries are zeros here and
      unspecified in TFLite: `tflite_post_processing` reads only the filled ones.
    """
    scales = tf.constant(
        [config["y_scale"], config["x_scale"], config["h_scale"], config["w_scale"]], tf.float32
    )
    encodings = box_encodings / scales
    centers = encodings[..., :2] * anchors[None, :, 2:] + anchors[None, :, :2]
    sizes = tf.exp(encodings[..., 2:]) * anchors[None, :, 2:]
    boxes = tf.concat([centers - 0.5 * sizes, centers + 0.5 * sizes], axis=-1)
    max_detections = int(config["max_detections"])
    # The op keeps scores >= threshold; TensorFlow's NMS keeps scores > threshold.
    threshold = float(np.nextafter(np.float32(config["nms_score_threshold"]), np.float32(-1)))
    iou_threshold = float(config["nms_iou_threshold"])
    if config["use_regular_nms"]:
        out_boxes, out_scores, out_classes, count = nms.batched_non_max_suppression(
            boxes[:, :, None, :],
            class_scores,
            max_output_size_per_class=_TFLITE_KERNEL_DETECTIONS_PER_CLASS,
            max_total_size=max_detections,
            iou_threshold=iou_threshold,
            score_threshold=threshold,
        )
        pad = _tflite_output_size(config) - max_detections
        return (
            tf.pad(out_boxes, [[0, 0], [0, pad], [0, 0]]),
            tf.pad(tf.cast(out_classes, tf.float32), [[0, 0], [0, pad]]),
            tf.pad(out_scores, [[0, 0], [0, pad]]),
            tf.cast(count, tf.float32),
        )
    num_classes = class_scores.shape[-1]
    per_box = min(int(config["max_classes_per_detection"]), num_classes)
    top_scores, top_classes = tf.math.top_k(class_scores, k=per_box)  # [batch, N, k]
    indices, count = nms.non_max_suppression_padded(
        boxes,
        top_scores[..., 0],
        max_detections,
        iou_threshold=iou_threshold,
        score_threshold=threshold,
    )
    valid = tf.range(max_detections) < count[:, None]  # [batch, max_detections]
    kept_boxes = tf.gather(boxes, indices, batch_dims=1)
    kept_scores = tf.gather(top_scores, indices, batch_dims=1)
    kept_classes = tf.cast(tf.gather(top_classes, indices, batch_dims=1), tf.float32)
    kept_boxes = tf.where(valid[..., None], kept_boxes, 0.0)
    kept_scores = tf.where(valid[..., None], kept_scores, 0.0)
    kept_classes = tf.where(valid[..., None], kept_classes, 0.0)
    # Each box owns `max_classes_per_detection` consecutive entries; the first `per_box` hold
    # its best classes.
    stride = int(config["max_classes_per_detection"])
    unused = [[0, 0], [0, 0], [0, stride - per_box]]
    boxes_per_entry = tf.where(
        (tf.range(stride) < per_box)[None, None, :, None],
        kept_boxes[:, :, None, :],
        0.0,
    )
    size = _tflite_output_size(config)
    return (
        tf.reshape(boxes_per_entry, [-1, size, 4]),
        tf.reshape(tf.pad(kept_classes, unused), [-1, size]),
        tf.reshape(tf.pad(kept_scores, unused), [-1, size]),
        tf.cast(count, tf.float32),
    )


def _tflite_output_size(config: Mapping[str, Any]) -> int:
    """Entries per image of the op's outputs: `max_detections * max_classes_per_detection`."""
    return int(config["max_detections"]) * int(config["max_classes_per_detection"])


def _tflite_filled_entries(config: Mapping[str, Any], num_classes: int) -> tuple[list[int], int]:
    """The op's output entries that hold detections, in order, and the entries per box."""
    if config["use_regular_nms"]:
        return list(range(int(config["max_detections"]))), 1
    stride = int(config["max_classes_per_detection"])
    per_box = min(stride, num_classes)
    entries = [
        box * stride + column
        for box in range(int(config["max_detections"]))
        for column in range(per_box)
    ]
    return entries, per_box


def tflite_post_processing(
    raw_boxes: Mapping[str, tf.Tensor],
    raw_scores: Mapping[str, tf.Tensor],
    anchor_boxes: Mapping[str, tf.Tensor],
    config: Mapping[str, Any],
    box_coder_weights: Sequence[float] | None = None,
    image_shape: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """The `"tflite"` path: detections through a function TFLite maps to its custom op.

    Args:
      raw_boxes: `{level: [batch, H, W, A * 4]}` box regressions.
      raw_scores: `{level: [batch, H, W, A * num_classes]}` class logits, class 0 being
        background (dropped before the op).
      anchor_boxes: `{level: [H, W, A * 4]}` (or batched; the first image's are used)
        pixel anchors.
      config: `TFLITE_POST_PROCESSING_DEFAULTS` keys.
      box_coder_weights: When given, they override the `*_scale` settings.
      image_shape: `[batch, 2]` image sizes, used to normalize anchors when
        `normalize_anchor_coordinates` is set and `config` has no `input_image_size`.

    Returns:
      `detection_boxes [batch, K, 4]`, `detection_scores [batch, K]`, `detection_classes`
      (int32, 1 and up), `num_detections` (int32, detection entries), with `K =
      max_detections * min(max_classes_per_detection, num_classes - 1)` (fast NMS) or
      `max_detections` (regular NMS). With `omit_nms`, the decoded boxes `[batch, N, 4]`,
      all foreground scores `[batch, N, num_classes - 1]`, each box's best class and
      `num_detections = N`.
    """
    config = {**TFLITE_POST_PROCESSING_DEFAULTS, **config}
    if box_coder_weights:
        config.update(
            zip(("y_scale", "x_scale", "h_scale", "w_scale"), box_coder_weights, strict=True)
        )
    encodings, logits, anchors = [], [], []
    for level in sorted(raw_boxes, key=int):
        boxes_l = tf.cast(raw_boxes[level], tf.float32)
        batch = tf.shape(boxes_l)[0]
        per_location = boxes_l.shape[-1] // 4
        num_classes = raw_scores[level].shape[-1] // per_location
        encodings.append(tf.reshape(boxes_l, [batch, -1, 4]))
        logits.append(tf.reshape(tf.cast(raw_scores[level], tf.float32), [batch, -1, num_classes]))
        level_anchors = tf.cast(anchor_boxes[level], tf.float32)
        if level_anchors.shape.rank == 4:
            level_anchors = level_anchors[0]
        anchors.append(tf.reshape(level_anchors, [-1, 4]))
    encodings = tf.concat(encodings, axis=1)
    scores = tf.sigmoid(tf.concat(logits, axis=1))[..., 1:]
    anchors = box_ops.yxyx_to_cycxhw(tf.concat(anchors, axis=0))
    if config["normalize_anchor_coordinates"]:
        if config["input_image_size"] is not None:
            height, width = (float(value) for value in config["input_image_size"][:2])
            size = tf.constant([height, width], tf.float32)
        elif image_shape is not None:
            size = tf.cast(image_shape, tf.float32)[0]
        else:
            raise ValueError(
                "normalize_anchor_coordinates needs input_image_size in "
                "tflite_post_processing_config or an image_shape"
            )
        anchors = anchors / tf.concat([size, size], axis=0)

    if config["omit_nms"]:
        decoded = _decode_center_size(encodings, anchors, config)
        return {
            "detection_boxes": decoded,
            "detection_scores": scores,
            "detection_classes": tf.argmax(scores, axis=-1, output_type=tf.int32) + 1,
            "num_detections": tf.fill([tf.shape(scores)[0]], tf.shape(scores)[1]),
        }

    @tf.function(experimental_implements=_implements_signature(config, scores.shape[-1]))
    def detection_post_process(box_encodings, class_predictions, input_anchors):
        return _postprocess_like_tflite(box_encodings, class_predictions, input_anchors, config)

    boxes, classes, out_scores, count = detection_post_process(encodings, scores, anchors)
    # Keep the entries the op fills, in order: the first `num_detections` are the detections.
    entries, per_box = _tflite_filled_entries(config, scores.shape[-1])
    entries = tf.constant(entries, tf.int32)
    boxes = tf.gather(boxes, entries, axis=1)
    classes = tf.gather(classes, entries, axis=1)
    out_scores = tf.gather(out_scores, entries, axis=1)
    num_detections = tf.cast(count, tf.int32) * per_box
    valid = tf.range(tf.shape(out_scores)[-1]) < num_detections[:, None]
    return {
        "detection_boxes": tf.where(valid[..., None], boxes, 0.0),
        "detection_scores": tf.where(valid, out_scores, 0.0),
        "detection_classes": tf.where(valid, tf.cast(classes, tf.int32) + 1, 0),
        "num_detections": num_detections,
    }


def _decode_center_size(encodings, anchors, config):
    scales = tf.constant(
        [config["y_scale"], config["x_scale"], config["h_scale"], config["w_scale"]], tf.float32
    )
    encodings = encodings / scales
    centers = encodings[..., :2] * anchors[:, 2:] + anchors[:, :2]
    sizes = tf.exp(encodings[..., 2:]) * anchors[:, 2:]
    return tf.concat([centers - 0.5 * sizes, centers + 0.5 * sizes], axis=-1)


@keras.saving.register_keras_serializable(package="garden_vision")
class MultilevelDetectionGenerator(keras.layers.Layer):
    """Generates detections from multi-level box and class outputs (one-stage detectors).

    Example:

        generator = MultilevelDetectionGenerator(max_num_detections=100)
        detections = generator(raw_boxes, raw_scores, anchor.multilevel_boxes,
                               image_shape=tf.constant([[640, 640]]))
        detections["detection_boxes"]  # [batch, 100, 4] pixels

    Args:
      apply_nms: Whether to run NMS. If False, only `decoded_boxes` `[batch, N, 4]` and
        `decoded_box_scores` `[batch, N, num_classes - 1]` (and `decoded_box_attributes`)
        are returned.
      pre_nms_top_k: How many of the best boxes per class enter NMS (v1, v2).
      pre_nms_score_threshold: Boxes scoring at or below it are dropped before NMS.
      nms_iou_threshold: The IoU above which a lower-scoring box is suppressed.
      max_num_detections: How many detections each image keeps.
      nms_version: `"batched"`, `"v1"`, `"v2"` or `"tflite"` (see the module docstring).
      use_cpu_nms: Whether to place NMS on the CPU.
      soft_nms_sigma: If set, Soft-NMS with this sigma (v1 only; 0 is hard NMS).
      tflite_post_processing_config: Settings of the `"tflite"` path; keys and defaults as
        `TFLITE_POST_PROCESSING_DEFAULTS` (Model Garden's `TFLitePostProcessingConfig`).
      return_decoded: Whether to also return the decoded boxes and scores with NMS.
      use_class_agnostic_nms: Whether one NMS runs over every box's best class, instead of
        one per class (v1, v2).
      box_coder_weights: The 4 weights the box targets were encoded with, or None.
      **kwargs: Layer arguments (`name`, `dtype`; float32 by default, whatever the global
        mixed-precision policy).

    Raises:
      ValueError: For an unknown `nms_version`, unknown tflite settings, or options the
        chosen version does not support.
    """

    def __init__(
        self,
        apply_nms: bool = True,
        pre_nms_top_k: int = 5000,
        pre_nms_score_threshold: float = 0.05,
        nms_iou_threshold: float = 0.5,
        max_num_detections: int = 100,
        nms_version: str = "v1",
        use_cpu_nms: bool = False,
        soft_nms_sigma: float | None = None,
        tflite_post_processing_config: Mapping[str, Any] | None = None,
        return_decoded: bool | None = None,
        use_class_agnostic_nms: bool | None = None,
        box_coder_weights: Sequence[float] | None = None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if nms_version not in NMS_VERSIONS:
            raise ValueError(
                f"nms_version {nms_version!r} is not supported; expected one of "
                f"{', '.join(NMS_VERSIONS)}"
            )
        if soft_nms_sigma is not None and nms_version != "v1":
            raise ValueError(
                f"soft_nms_sigma works only with nms_version 'v1', got {nms_version!r}"
            )
        if use_class_agnostic_nms and nms_version not in ("v1", "v2"):
            raise ValueError(
                "use_class_agnostic_nms works with nms_version 'v1' or 'v2', got "
                f"{nms_version!r} (for 'tflite', set use_regular_nms=False in "
                "tflite_post_processing_config instead)"
            )
        tflite_config = _as_dict(tflite_post_processing_config)
        unknown = sorted(set(tflite_config) - set(TFLITE_POST_PROCESSING_DEFAULTS))
        if unknown:
            raise ValueError(
                f"unknown tflite_post_processing_config keys {unknown}; expected some of "
                f"{', '.join(TFLITE_POST_PROCESSING_DEFAULTS)}"
            )
        if box_coder_weights is not None:
            box_coder_weights = [float(weight) for weight in box_coder_weights]
            if len(box_coder_weights) != 4 or min(box_coder_weights) <= 0:
                raise ValueError(
                    f"box_coder_weights must be 4 positive numbers, got {box_coder_weights}"
                )
        if max_num_detections < 1:
            raise ValueError(f"max_num_detections must be positive, got {max_num_detections}")
        self.apply_nms = apply_nms
        self.pre_nms_top_k = pre_nms_top_k
        self.pre_nms_score_threshold = pre_nms_score_threshold
        self.nms_iou_threshold = nms_iou_threshold
        self.max_num_detections = max_num_detections
        self.nms_version = nms_version
        self.use_cpu_nms = use_cpu_nms
        self.soft_nms_sigma = soft_nms_sigma
        self.tflite_post_processing_config = tflite_config or None
        self.return_decoded = return_decoded
        self.use_class_agnostic_nms = use_class_agnostic_nms
        self.box_coder_weights = box_coder_weights

    def call(
        self,
        raw_boxes: Mapping[str, tf.Tensor],
        raw_scores: Mapping[str, tf.Tensor],
        anchor_boxes: Mapping[str, tf.Tensor],
        image_shape: tf.Tensor | None = None,
        raw_attributes: Mapping[str, Mapping[str, tf.Tensor]] | None = None,
    ) -> dict[str, Any]:
        """Generates detections.

        Args:
          raw_boxes: `{str(level): [batch, H, W, A * 4]}` box regressions.
          raw_scores: `{str(level): [batch, H, W, A * num_classes]}` class logits, class 0
            being background.
          anchor_boxes: `{str(level): [batch, H, W, A * 4]}` or `[H, W, A * 4]` pixel
            anchors.
          image_shape: `[batch, 2]` `[height, width]` of the (scaled) images, to clip boxes
            to; None leaves them unclipped.
          raw_attributes: Optional `{name: {level: [batch, H, W, A * dim]}}`.

        Returns:
          With NMS: `detection_boxes [batch, M, 4]` (pixels), `detection_scores [batch,
          M]`, `detection_classes` int32 `[batch, M]` (1 and up; 0 for padding),
          `num_detections` int32 `[batch]` and `detection_attributes {name: [batch, M,
          dim]}`; plus the decoded outputs when `return_decoded`. Without NMS:
          `decoded_boxes`, `decoded_box_scores` (and `decoded_box_attributes`).
        """
        self._check_levels(raw_boxes, raw_scores, anchor_boxes, raw_attributes)
        if self.apply_nms and self.nms_version == "tflite":
            return tflite_post_processing(
                raw_boxes,
                raw_scores,
                anchor_boxes,
                self.tflite_post_processing_config or {},
                self.box_coder_weights,
                image_shape,
            )
        boxes, scores, attributes = self._decode(
            raw_boxes, raw_scores, anchor_boxes, image_shape, raw_attributes
        )
        decoded = {"decoded_boxes": boxes, "decoded_box_scores": scores}
        if attributes:
            decoded["decoded_box_attributes"] = attributes
        if not self.apply_nms:
            return decoded
        if attributes and self.nms_version == "batched":
            raise ValueError("raw_attributes need nms_version 'v1' or 'v2', not 'batched'")
        device = tf.device("/CPU:0") if self.use_cpu_nms else contextlib.nullcontext()
        with device:
            if self.nms_version == "batched":
                detections = self._batched_nms(boxes, scores)
            else:
                detections = self._top_k_nms(boxes, scores, attributes)
        if self.return_decoded:
            detections.update(decoded)
        return detections

    @staticmethod
    def _check_levels(raw_boxes, raw_scores, anchor_boxes, raw_attributes) -> None:
        levels = set(raw_boxes)
        if set(raw_scores) != levels:
            raise ValueError(
                f"raw_scores levels {sorted(raw_scores)} differ from raw_boxes levels "
                f"{sorted(levels)}"
            )
        missing = sorted(levels - set(anchor_boxes))
        if missing:
            raise ValueError(f"anchor_boxes lack levels {missing} (has {sorted(anchor_boxes)})")
        for name, values in (raw_attributes or {}).items():
            if set(values) != levels:
                raise ValueError(
                    f"raw_attributes[{name!r}] levels {sorted(values)} differ from raw_boxes "
                    f"levels {sorted(levels)}"
                )

    def _decode(self, raw_boxes, raw_scores, anchor_boxes, image_shape, raw_attributes):
        """Decoded boxes `[B, N, 4]`, foreground scores `[B, N, C - 1]`, attributes."""
        all_boxes, all_scores = [], []
        all_attributes = {name: [] for name in raw_attributes or {}}
        for level in sorted(raw_boxes, key=int):
            boxes_l = tf.cast(raw_boxes[level], tf.float32)
            values = boxes_l.shape[-1]
            if values is None or values % 4:
                raise ValueError(
                    f"raw_boxes[{level!r}] must end in anchors * 4 values, got {boxes_l.shape}"
                )
            per_location = values // 4
            score_values = raw_scores[level].shape[-1]
            if score_values is None or score_values % per_location:
                raise ValueError(
                    f"raw_scores[{level!r}] must end in {per_location} anchors * num_classes "
                    f"values, got {raw_scores[level].shape}"
                )
            num_classes = score_values // per_location
            batch = tf.shape(boxes_l)[0]
            logits = tf.reshape(tf.cast(raw_scores[level], tf.float32), [batch, -1, num_classes])
            all_scores.append(tf.sigmoid(logits)[..., 1:])
            anchors = tf.cast(anchor_boxes[level], tf.float32)
            anchors = tf.reshape(anchors, [1 if anchors.shape.rank == 3 else batch, -1, 4])
            decoded = box_ops.decode_boxes(
                tf.reshape(boxes_l, [batch, -1, 4]), anchors, weights=self.box_coder_weights
            )
            if image_shape is not None:
                decoded = box_ops.clip_boxes(decoded, tf.cast(image_shape, tf.float32)[:, None, :])
            all_boxes.append(decoded)
            for name, per_level in (raw_attributes or {}).items():
                values_l = tf.cast(per_level[level], tf.float32)
                dim = values_l.shape[-1] // per_location
                all_attributes[name].append(tf.reshape(values_l, [batch, -1, dim]))
        attributes = {name: tf.concat(parts, axis=1) for name, parts in all_attributes.items()}
        return tf.concat(all_boxes, axis=1), tf.concat(all_scores, axis=1), attributes

    def _batched_nms(self, boxes, scores) -> dict[str, Any]:
        nmsed_boxes, nmsed_scores, classes, count = nms.batched_non_max_suppression(
            boxes[:, :, None, :],
            scores,
            max_output_size_per_class=self.max_num_detections,
            max_total_size=self.max_num_detections,
            iou_threshold=self.nms_iou_threshold,
            score_threshold=self.pre_nms_score_threshold,
        )
        valid = tf.range(self.max_num_detections) < count[:, None]
        return {
            "detection_boxes": nmsed_boxes,
            "detection_scores": nmsed_scores,
            "detection_classes": tf.where(valid, classes + 1, 0),
            "num_detections": count,
            "detection_attributes": {},
        }

    def _top_k_nms(self, boxes, scores, attributes) -> dict[str, Any]:
        """v1 / v2: per-class top-k, NMS, then the best detections over classes."""
        class_ids = None
        if self.use_class_agnostic_nms:
            class_ids = tf.argmax(scores, axis=-1, output_type=tf.int32)  # [B, N]
            scores = tf.reduce_max(scores, axis=-1, keepdims=True)
        max_out = self.max_num_detections
        num_boxes = scores.shape[1]
        if num_boxes is None:
            k = tf.minimum(tf.shape(scores)[1], self.pre_nms_top_k)
        else:
            k = min(num_boxes, self.pre_nms_top_k)
        # [B, C, k]: the best boxes of each class.
        top_scores, top_indices = tf.math.top_k(tf.transpose(scores, [0, 2, 1]), k=k)
        top_boxes = tf.gather(boxes, top_indices, batch_dims=1)  # [B, C, k, 4]
        if self.soft_nms_sigma is not None:
            kept, kept_scores, count = nms.soft_non_max_suppression_padded(
                top_boxes,
                top_scores,
                max_out,
                iou_threshold=self.nms_iou_threshold,
                score_threshold=self.pre_nms_score_threshold,
                soft_nms_sigma=self.soft_nms_sigma,
            )
        else:
            if self.nms_version == "v2":
                top_boxes, top_scores = box_ops.filter_boxes_by_scores(
                    top_boxes, top_scores, self.pre_nms_score_threshold
                )
                threshold = -0.5  # Drops the entries filtered to -1; the rest are sorted.
            else:
                threshold = self.pre_nms_score_threshold
            kept, count = nms.non_max_suppression_padded(
                top_boxes,
                top_scores,
                max_out,
                iou_threshold=self.nms_iou_threshold,
                score_threshold=threshold,
                sorted_input=self.nms_version == "v2",
            )
            kept_scores = tf.gather(top_scores, kept, batch_dims=2)
        valid = tf.range(max_out) < count[..., None]  # [B, C, max_out]
        anchor_indices = tf.gather(top_indices, kept, batch_dims=2)
        num_columns = scores.shape[-1]
        if class_ids is None:
            column = tf.broadcast_to(tf.range(num_columns)[None, :, None], tf.shape(kept))
        else:
            column = tf.gather(class_ids, anchor_indices, batch_dims=1)
        batch = tf.shape(boxes)[0]
        flat = num_columns * max_out

        def flatten(tensor):
            return tf.reshape(tensor, [batch, flat])

        merged_scores = tf.where(flatten(valid), flatten(kept_scores), -1.0)
        final_scores, order = tf.math.top_k(merged_scores, k=max_out)
        final_valid = final_scores > -1.0
        final_anchor = tf.gather(flatten(anchor_indices), order, batch_dims=1)
        final_classes = tf.gather(flatten(column), order, batch_dims=1) + 1
        final_boxes = tf.gather(boxes, final_anchor, batch_dims=1)
        detections = {
            "detection_boxes": tf.where(final_valid[..., None], final_boxes, 0.0),
            "detection_scores": tf.where(final_valid, final_scores, 0.0),
            "detection_classes": tf.where(final_valid, final_classes, 0),
            "num_detections": tf.reduce_sum(tf.cast(final_valid, tf.int32), axis=1),
            "detection_attributes": {
                name: tf.where(
                    final_valid[..., None],
                    tf.gather(values, final_anchor, batch_dims=1),
                    0.0,
                )
                for name, values in attributes.items()
            },
        }
        return detections

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "apply_nms": self.apply_nms,
                "pre_nms_top_k": self.pre_nms_top_k,
                "pre_nms_score_threshold": self.pre_nms_score_threshold,
                "nms_iou_threshold": self.nms_iou_threshold,
                "max_num_detections": self.max_num_detections,
                "nms_version": self.nms_version,
                "use_cpu_nms": self.use_cpu_nms,
                "soft_nms_sigma": self.soft_nms_sigma,
                "tflite_post_processing_config": (
                    dict(self.tflite_post_processing_config)
                    if self.tflite_post_processing_config
                    else None
                ),
                "return_decoded": self.return_decoded,
                "use_class_agnostic_nms": self.use_class_agnostic_nms,
                "box_coder_weights": (
                    list(self.box_coder_weights) if self.box_coder_weights else None
                ),
            }
        )
        return config


# NMS implementations of the second-stage `DetectionGenerator`.
TWO_STAGE_NMS_VERSIONS = ("batched", "v1", "v2")


def _greedy_nms_per_class(boxes, scores, max_output_size, iou_threshold, score_threshold):
    """Greedy NMS of every `[batch, class]` row with TensorFlow's kernel, row by row.

    The kernel stops at the first box scoring at or below `score_threshold`, so with the
    few confident classes of a second-stage head it does far less work than the tiled,
    fixed-cost batched NMS.

    Args:
      boxes: `[batch, classes, k, 4]`.
      scores: `[batch, classes, k]`.

    Returns:
      `(indices int32 [batch, classes, max_output_size], counts int32 [batch, classes])`,
      indices padded with 0.
    """
    shape = tf.shape(scores)
    num_boxes = shape[-1]

    def one(row):
        row_boxes, row_scores = row
        return tf.image.non_max_suppression_padded(
            row_boxes,
            row_scores,
            max_output_size,
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
            pad_to_max_output_size=True,
        )

    indices, counts = tf.map_fn(
        one,
        (tf.reshape(boxes, [-1, num_boxes, 4]), tf.reshape(scores, [-1, num_boxes])),
        fn_output_signature=(
            tf.TensorSpec([max_output_size], tf.int32),
            tf.TensorSpec([], tf.int32),
        ),
    )
    return (
        tf.reshape(indices, tf.concat([shape[:-1], [max_output_size]], axis=0)),
        tf.reshape(counts, shape[:-1]),
    )


def _sorted_nms_class_by_class(boxes, scores, max_output_size, iou_threshold):
    """Fixed-shape NMS of score-sorted `[batch, class]` rows, one class after another.

    Entries filtered out beforehand (score -1) are dropped. Each step runs the tiled NMS
    (`ops.nms.non_max_suppression_padded`) on one class of every image: static shapes
    throughout, and a working set small enough to stay in cache (one batched call over
    every class at once is markedly slower on CPU).

    Args:
      boxes: `[batch, classes, k, 4]`.
      scores: `[batch, classes, k]`, sorted in decreasing order except removed entries.

    Returns:
      `(indices int32 [batch, classes, max_output_size], counts int32 [batch, classes])`.
    """

    def one_class(per_class):
        class_boxes, class_scores = per_class
        return nms.non_max_suppression_padded(
            class_boxes,
            class_scores,
            max_output_size,
            iou_threshold=iou_threshold,
            score_threshold=-0.5,
            sorted_input=True,
        )

    indices, counts = tf.map_fn(
        one_class,
        (tf.transpose(boxes, [1, 0, 2, 3]), tf.transpose(scores, [1, 0, 2])),
        fn_output_signature=(
            tf.TensorSpec([None, max_output_size], tf.int32),
            tf.TensorSpec([None], tf.int32),
        ),
    )
    return tf.transpose(indices, [1, 0, 2]), tf.transpose(counts)


def _class_specific_detections(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    nms_version: str,
    pre_nms_top_k: int,
    pre_nms_score_threshold: float,
    nms_iou_threshold: float,
    max_num_detections: int,
    soft_nms_sigma: float | None,
) -> dict[str, tf.Tensor]:
    """Per-class NMS of boxes that may differ by class, merged into the best detections.

    Args:
      boxes: `[batch, N, q, 4]` decoded boxes, `q` 1 (shared) or the number of foreground
        classes.
      scores: `[batch, N, num_classes]` foreground scores.

    Returns:
      `detection_boxes [batch, M, 4]`, `detection_scores [batch, M]`, `detection_classes`
      (int32, 1 and up; 0 for padding) and `num_detections` (int32 `[batch]`), `M =
      max_num_detections`, sorted by score, zero after the valid entries.
    """
    max_out = max_num_detections
    if nms_version == "batched":
        nmsed_boxes, nmsed_scores, classes, count = nms.batched_non_max_suppression(
            boxes,
            scores,
            max_output_size_per_class=max_out,
            max_total_size=max_out,
            iou_threshold=nms_iou_threshold,
            score_threshold=pre_nms_score_threshold,
        )
        valid = tf.range(max_out) < count[:, None]
        return {
            "detection_boxes": nmsed_boxes,
            "detection_scores": nmsed_scores,
            "detection_classes": tf.where(valid, classes + 1, 0),
            "num_detections": count,
        }

    num_boxes = scores.shape[1]
    if num_boxes is None:
        k = tf.minimum(tf.shape(scores)[1], pre_nms_top_k)
    else:
        k = min(num_boxes, pre_nms_top_k)
    # [batch, classes, k]: the best boxes of each class, the long axis last.
    top_scores, top_indices = tf.math.top_k(tf.transpose(scores, [0, 2, 1]), k=k)
    class_boxes = tf.transpose(boxes, [0, 2, 1, 3])  # [batch, q, N, 4]
    if boxes.shape[2] == 1:
        top_boxes = tf.gather(class_boxes[:, 0], top_indices, batch_dims=1)
    else:
        top_boxes = tf.gather(class_boxes, top_indices, batch_dims=2)  # [batch, C, k, 4]
    if soft_nms_sigma is not None:
        kept, kept_scores, count = nms.soft_non_max_suppression_padded(
            top_boxes,
            top_scores,
            max_out,
            iou_threshold=nms_iou_threshold,
            score_threshold=pre_nms_score_threshold,
            soft_nms_sigma=soft_nms_sigma,
        )
    else:
        if nms_version == "v2":
            top_boxes, top_scores = box_ops.filter_boxes_by_scores(
                top_boxes, top_scores, pre_nms_score_threshold
            )
            kept, count = _sorted_nms_class_by_class(
                top_boxes, top_scores, max_out, nms_iou_threshold
            )
        else:
            kept, count = _greedy_nms_per_class(
                top_boxes, top_scores, max_out, nms_iou_threshold, pre_nms_score_threshold
            )
        kept_scores = tf.gather(top_scores, kept, batch_dims=2)
    valid = tf.range(max_out) < count[..., None]  # [batch, C, max_out]
    kept_boxes = tf.gather(top_boxes, kept, batch_dims=2)  # [batch, C, max_out, 4]
    batch = tf.shape(scores)[0]
    flat = scores.shape[-1] * max_out
    merged_scores = tf.where(
        tf.reshape(valid, [batch, flat]), tf.reshape(kept_scores, [batch, flat]), -1.0
    )
    # Classes in order, then their detections in order: ties go to the lower class.
    final_scores, order = tf.math.top_k(merged_scores, k=max_out)
    final_valid = final_scores > -1.0
    final_boxes = tf.gather(tf.reshape(kept_boxes, [batch, flat, 4]), order, batch_dims=1)
    return {
        "detection_boxes": tf.where(final_valid[..., None], final_boxes, 0.0),
        "detection_scores": tf.where(final_valid, final_scores, 0.0),
        "detection_classes": tf.where(final_valid, order // max_out + 1, 0),
        "num_detections": tf.reduce_sum(tf.cast(final_valid, tf.int32), axis=1),
    }


@keras.saving.register_keras_serializable(package="garden_vision")
class DetectionGenerator(keras.layers.Layer):
    """Final detections of two-stage detectors (Faster / Mask / Cascade R-CNN).

    The box head scores every ROI for every class (softmax over logits with class 0 the
    background, or per-class sigmoids) and regresses one box per class relative to the ROI.
    The generator decodes those class-specific boxes (the Faster R-CNN coder, with the
    `regression_weights` the targets were encoded with: `[10, 10, 5, 5]` for Faster
    R-CNN), clips them to the image, drops the background class and runs NMS per class:

    - `"batched"`: `tf.image.combined_non_max_suppression` (ignores `pre_nms_top_k`).
    - `"v1"`: per class, the `pre_nms_top_k` best boxes, then greedy NMS with the score
      threshold (TensorFlow's NMS kernel, one image and class at a time, which skips the
      many low-scoring boxes quickly), or Soft-NMS when `soft_nms_sigma` is set.
    - `"v2"`: per class, the `pre_nms_top_k` best boxes, score filtering, then the tiled
      NMS of the sorted boxes, one class at a time for every image (Model Garden's TPU
      path: static shapes throughout).

    All three give the same detections (hard NMS), sorted by score over classes; entries
    past `num_detections` are zero (boxes, scores and classes).

    Example:

        generator = DetectionGenerator(max_num_detections=100)
        detections = generator(box_outputs, class_outputs, rois, image_shape,
                               regression_weights=[10.0, 10.0, 5.0, 5.0])
        detections["detection_boxes"]  # [batch, 100, 4] pixels

    Args:
      apply_nms: Whether to run NMS. If False, `decoded_boxes` `[batch, N, C - 1, 4]`
        (`[batch, N, 1, 4]` without per-class boxes) and `decoded_box_scores`
        `[batch, N, C - 1]` are returned instead.
      pre_nms_top_k: How many of the best boxes per class enter NMS (v1, v2).
      pre_nms_score_threshold: Boxes scoring at or below it are dropped before NMS.
      nms_iou_threshold: The IoU above which a lower-scoring box of a class is suppressed.
      max_num_detections: How many detections each image keeps.
      nms_version: `"batched"`, `"v1"` or `"v2"`.
      use_cpu_nms: Whether to place NMS on the CPU.
      soft_nms_sigma: If set, Soft-NMS with this sigma (v1 only; 0 is hard NMS).
      use_sigmoid_probability: Whether scores are per-class sigmoids instead of a softmax.
      **kwargs: Layer arguments (`name`, `dtype`; float32 by default, whatever the global
        mixed-precision policy).

    Raises:
      ValueError: For an unknown `nms_version`, `soft_nms_sigma` without `"v1"`, or a
        non-positive `max_num_detections` / `pre_nms_top_k`.
    """

    def __init__(
        self,
        apply_nms: bool = True,
        pre_nms_top_k: int = 5000,
        pre_nms_score_threshold: float = 0.05,
        nms_iou_threshold: float = 0.5,
        max_num_detections: int = 100,
        nms_version: str = "v2",
        use_cpu_nms: bool = False,
        soft_nms_sigma: float | None = None,
        use_sigmoid_probability: bool = False,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if nms_version not in TWO_STAGE_NMS_VERSIONS:
            raise ValueError(
                f"nms_version {nms_version!r} is not supported; expected one of "
                f"{', '.join(TWO_STAGE_NMS_VERSIONS)}"
            )
        if soft_nms_sigma is not None and nms_version != "v1":
            raise ValueError(
                f"soft_nms_sigma works only with nms_version 'v1', got {nms_version!r}"
            )
        for name, value in (
            ("max_num_detections", max_num_detections),
            ("pre_nms_top_k", pre_nms_top_k),
        ):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.apply_nms = bool(apply_nms)
        self.pre_nms_top_k = int(pre_nms_top_k)
        self.pre_nms_score_threshold = float(pre_nms_score_threshold)
        self.nms_iou_threshold = float(nms_iou_threshold)
        self.max_num_detections = int(max_num_detections)
        self.nms_version = nms_version
        self.use_cpu_nms = bool(use_cpu_nms)
        self.soft_nms_sigma = None if soft_nms_sigma is None else float(soft_nms_sigma)
        self.use_sigmoid_probability = bool(use_sigmoid_probability)

    def call(
        self,
        raw_boxes: tf.Tensor,
        raw_scores: tf.Tensor,
        anchor_boxes: tf.Tensor,
        image_shape: tf.Tensor | None,
        regression_weights: Sequence[float] | None = None,
        bbox_per_class: bool = True,
    ) -> dict[str, tf.Tensor]:
        """Generates detections.

        Args:
          raw_boxes: `[batch, N, num_classes * 4]` class-specific box regressions relative
            to `anchor_boxes` (`[batch, N, 4]` with `bbox_per_class=False`).
          raw_scores: `[batch, N, num_classes]` class logits, class 0 the background.
          anchor_boxes: `[batch, N, 4]` the ROIs the regressions refer to, in pixels.
          image_shape: `[batch, 2]` `[height, width]` of the scaled images, to clip boxes
            to; None leaves them unclipped.
          regression_weights: The 4 weights the box targets were encoded with, or None.
          bbox_per_class: Whether `raw_boxes` holds one box per class.

        Returns:
          With NMS: `detection_boxes [batch, M, 4]`, `detection_scores [batch, M]`,
          `detection_classes` int32 `[batch, M]` (1 and up; 0 for padding) and
          `num_detections` int32 `[batch]`. Without: `decoded_boxes` and
          `decoded_box_scores`.

        Raises:
          ValueError: If the box and score shapes do not fit together.
        """
        raw_scores = tf.cast(raw_scores, tf.float32)
        raw_boxes = tf.cast(raw_boxes, tf.float32)
        anchor_boxes = tf.cast(anchor_boxes, tf.float32)
        num_classes = raw_scores.shape[-1]
        if num_classes is None or num_classes < 2:
            raise ValueError(
                "raw_scores must end in a static num_classes >= 2 (background included), "
                f"got shape {raw_scores.shape}"
            )
        if self.use_sigmoid_probability:
            scores = tf.sigmoid(raw_scores)
        else:
            scores = tf.nn.softmax(raw_scores, axis=-1)
        scores = scores[..., 1:]  # Drops the background.
        batch = tf.shape(raw_scores)[0]
        num_boxes = tf.shape(raw_scores)[1]
        if bbox_per_class:
            if raw_boxes.shape[-1] not in (None, num_classes * 4):
                raise ValueError(
                    f"raw_boxes must end in num_classes * 4 = {num_classes * 4} values with "
                    f"bbox_per_class, got shape {raw_boxes.shape}"
                )
            raw_boxes = tf.reshape(raw_boxes, [batch, num_boxes, num_classes, 4])[:, :, 1:]
            anchors = anchor_boxes[:, :, None, :]
        else:
            if raw_boxes.shape[-1] not in (None, 4):
                raise ValueError(
                    "raw_boxes must end in 4 values without bbox_per_class, got shape "
                    f"{raw_boxes.shape}"
                )
            raw_boxes = raw_boxes[:, :, None, :]
            anchors = anchor_boxes[:, :, None, :]
        weights = None if regression_weights is None else [float(w) for w in regression_weights]
        boxes = box_ops.decode_boxes(raw_boxes, anchors, weights=weights)
        if image_shape is not None:
            boxes = box_ops.clip_boxes(boxes, tf.cast(image_shape, tf.float32)[:, None, None, :])
        if not self.apply_nms:
            return {"decoded_boxes": boxes, "decoded_box_scores": scores}
        device = tf.device("/CPU:0") if self.use_cpu_nms else contextlib.nullcontext()
        with device:
            return _class_specific_detections(
                boxes,
                scores,
                self.nms_version,
                self.pre_nms_top_k,
                self.pre_nms_score_threshold,
                self.nms_iou_threshold,
                self.max_num_detections,
                self.soft_nms_sigma,
            )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "apply_nms": self.apply_nms,
                "pre_nms_top_k": self.pre_nms_top_k,
                "pre_nms_score_threshold": self.pre_nms_score_threshold,
                "nms_iou_threshold": self.nms_iou_threshold,
                "max_num_detections": self.max_num_detections,
                "nms_version": self.nms_version,
                "use_cpu_nms": self.use_cpu_nms,
                "soft_nms_sigma": self.soft_nms_sigma,
                "use_sigmoid_probability": self.use_sigmoid_probability,
            }
        )
        return config
