"""Serving signatures of object detectors: `DetectionModule` (RetinaNet) and
`MaskRCNNModule` (Faster R-CNN, Mask R-CNN, Cascade R-CNN).

Input types (`garden export --input_type`, several may be given as a comma list):

- `image_tensor`: uint8 images, `[batch, height, width, 3]` of any size.
- `image_bytes`: encoded images (JPEG, PNG, GIF, BMP), `[batch]` strings.
- `tf_example`: serialized tf.Examples in Model Garden's detection layout, `[batch]`
  strings, with the image under `image/encoded`.
- `tflite`: float32 pixel values in [0, 255], `[1, height, width, 3]` at the model's input
  size, for conversion to TensorFlow Lite (`garden_vision.serving.tflite`): no resizing,
  only normalization. With `task.model.detection_generator.nms_version: tflite` the
  non-maximum suppression becomes TFLite's built-in `TFLite_Detection_PostProcess` op.

Each image is normalized and resized keeping its aspect ratio into the model's input size
(zero-padded at the bottom and right), exactly as in evaluation. The outputs are Model
Garden's: `detection_boxes` (`[batch, max_detections, 4]`, `[ymin, xmin, ymax, xmax]` in
the pixels of the resized image, or normalized to the original image with
`task.export_config.output_normalized_coordinates`), `detection_scores`,
`detection_classes`, `num_detections`, and `image_info` (`[batch, 4, 2]`: original size,
resized size, scale, offset) with which boxes map back to the original image:
`boxes / image_info[:, 2:3, :]` tiled to four coordinates. With
`detection_generator.apply_nms: false` the outputs are `decoded_boxes` and
`decoded_box_scores` before suppression.

A Mask R-CNN also returns `detection_masks`: `[batch, max_detections, mask_height,
mask_width]` foreground probabilities, each stretched over its detection box (Model
Garden's layout); `garden_vision.ops.mask_ops.paste_instance_masks_yxyx` pastes them into
the image (`garden-detect` does so when it draws). With `outer_boxes_scale > 1` the masks
cover `detection_outer_boxes`, which are returned too.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from garden_core.export_base import ExportModule
from garden_vision.ops import anchor, box_ops, preprocess_ops


class DetectionModule(ExportModule):
    """Serves a detector from images, encoded images or tf.Examples."""

    INPUT_TYPES = ("image_tensor", "image_bytes", "tf_example", "tflite")

    @property
    def _task(self):
        return self.params.task

    @property
    def _input_size(self) -> list[int]:
        return list(self._task.model.input_size[:2])

    def _anchor_boxes(self) -> dict[str, tf.Tensor]:
        """Anchors of the input size, level -> `[height_l, width_l, anchors * 4]`."""
        model = self._task.model
        return anchor.Anchor(
            min_level=model.min_level,
            max_level=model.max_level,
            num_scales=model.anchor.num_scales,
            aspect_ratios=model.anchor.aspect_ratios,
            anchor_size=model.anchor.anchor_size,
            image_size=self._input_size,
        ).multilevel_boxes

    def _preprocess_one(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One uint8 image -> the normalized, resized and padded image and its image_info."""
        image = preprocess_ops.normalize_image(tf.cast(image, tf.float32))
        image, image_info = preprocess_ops.resize_and_crop_image(
            image, self._input_size, padded_size=self._input_size
        )
        image.set_shape([*self._input_size, 3])
        return image, image_info

    def _preprocess_images(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.map_fn(
            self._preprocess_one,
            images,
            fn_output_signature=(
                tf.TensorSpec([*self._input_size, 3], tf.float32),
                tf.TensorSpec([4, 2], tf.float32),
            ),
        )

    def _decode_one(self, image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return self._preprocess_one(image)

    def _decode_all(self, encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.map_fn(
            self._decode_one,
            encoded,
            fn_output_signature=(
                tf.TensorSpec([*self._input_size, 3], tf.float32),
                tf.TensorSpec([4, 2], tf.float32),
            ),
        )

    def serve(self, inputs: Any) -> dict[str, tf.Tensor]:
        """Detects objects in a batch of preprocessed images.

        Args:
          inputs: `(images, image_info)`: float32 normalized `[batch, height, width, 3]`
            images at the model's input size, and their `[batch, 4, 2]` image_info.
        """
        images, image_info = inputs
        batch = tf.shape(images)[0]
        anchor_boxes = {
            level: tf.tile(boxes[tf.newaxis], [batch, 1, 1, 1])
            for level, boxes in self._anchor_boxes().items()
        }
        detections = self.model(
            images,
            image_shape=image_info[:, 1, :],
            anchor_boxes=anchor_boxes,
            training=False,
        )
        generator = self._task.model.detection_generator
        if not generator.apply_nms:
            return {
                "decoded_boxes": detections["decoded_boxes"],
                "decoded_box_scores": detections["decoded_box_scores"],
                "image_info": image_info,
            }
        # Only RetinaNet's task has an export config (as in Model Garden).
        export_config = getattr(self._task, "export_config", None)
        boxes = detections["detection_boxes"]
        num_detections = detections["num_detections"]
        classes = detections["detection_classes"]
        if export_config is not None:
            if export_config.output_normalized_coordinates:
                boxes = boxes / tf.tile(image_info[:, 2:3, :], [1, 1, 2])
                boxes = box_ops.normalize_boxes(boxes, image_info[:, 0:1, :])
            if export_config.cast_num_detections_to_float:
                num_detections = tf.cast(num_detections, tf.float32)
            if export_config.cast_detection_classes_to_float:
                classes = tf.cast(classes, tf.float32)
        outputs = {
            "detection_boxes": boxes,
            "detection_scores": detections["detection_scores"],
            "detection_classes": classes,
            "num_detections": num_detections,
        }
        for key in ("detection_masks", "detection_outer_boxes"):
            if key in detections:
                outputs[key] = detections[key]
        if generator.nms_version != "tflite":
            outputs["image_info"] = image_info
        return outputs

    def get_inference_signatures(self, function_keys):
        unknown = set(function_keys) - set(self.INPUT_TYPES)
        if unknown:
            raise ValueError(
                f"input types {sorted(unknown)} are not offered; this module offers "
                + ", ".join(self.INPUT_TYPES)
            )
        height, width = self._input_size

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, "inputs")])
        def image_tensor(images):
            return self.serve(self._preprocess_images(images))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "inputs")])
        def image_bytes(encoded):
            return self.serve(self._decode_all(encoded))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "inputs")])
        def tf_example(serialized):
            features = tf.io.parse_example(
                serialized, {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
            )
            return self.serve(self._decode_all(features["image/encoded"]))

        @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, "inputs")])
        def tflite(images):
            image_info = tf.constant(
                [[[height, width], [height, width], [1.0, 1.0], [0.0, 0.0]]], tf.float32
            )
            return self.serve((preprocess_ops.normalize_image(images), image_info))

        functions = {
            "image_tensor": image_tensor,
            "image_bytes": image_bytes,
            "tf_example": tf_example,
            "tflite": tflite,
        }
        return {
            key: functions[input_type].get_concrete_function()
            for input_type, key in function_keys.items()
        }


class MaskRCNNModule(DetectionModule):
    """Serves a two-stage detector (with `detection_masks` when it predicts masks).

    The input types are those of `DetectionModule` but `tflite`.
    """

    INPUT_TYPES = ("image_tensor", "image_bytes", "tf_example")
