"""`SegmentationModule`: serving signatures of semantic segmentation models.

Input types (`garden export --input_type`, several may be given as a comma list):

- `image_tensor`: uint8 images, `[batch, height, width, 3]` of any size.
- `image_bytes`: encoded images (JPEG, PNG, GIF, BMP), `[batch]` strings.
- `tf_example`: serialized tf.Examples in Model Garden's segmentation layout, `[batch]`
  strings, with the image under the training data's `image_feature.feature_name`.
- `tflite`: float32 pixel values in [0, 255], `[1, height, width, 3]` at the serving size,
  for conversion to TensorFlow Lite (`garden_vision.serving.tflite`): no resizing, only
  normalization.

The serving size is the model's `input_size`, or, for models built for any size
(`input_size: [null, null, 3]`, as Model Garden's DeepLab recipes), the validation data's
`output_size`. Each image is normalized with the training data's `image_feature` mean and
standard deviation and resized to it as in evaluation: keeping its aspect ratio and
zero-padded at the bottom and right (`preserve_aspect_ratio`), or stretched.

Outputs: `logits` (`[batch, height, width, num_classes]`, float32, bilinearly upsampled to
the serving size), `labels` (`[batch, height, width]` int32, their arg-max; 0 is the first
class) and `image_info` (`[batch, 4, 2]`: original size, resized size, scale, offset; not
for `tflite`). With `task.export_config.rescale_output` the logits and labels are at the
original image's size instead (batches of one image, as Model Garden).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from garden_core.config import ConfigError
from garden_core.export_base import ExportModule
from garden_vision.ops import preprocess_ops


def serving_size(params: Any) -> list[int]:
    """`[height, width]` the exported model reads: the model's input size, or the validation
    data's `output_size` for models built for any size.

    Raises:
      ConfigError: When neither gives both sides.
    """
    task = params.task
    size = list(task.model.input_size[:2])
    if len(size) == 2 and all(side is not None for side in size):
        return [int(side) for side in size]
    size = list(task.validation_data.output_size or [])
    if len(size) == 2 and all(side is not None and int(side) > 0 for side in size):
        return [int(side) for side in size]
    raise ConfigError(
        f"`task.model.input_size` is {list(task.model.input_size)} and "
        f"`task.validation_data.output_size` is {list(task.validation_data.output_size)}: "
        "an export needs a fixed [height, width]; set one of them"
    )


class SegmentationModule(ExportModule):
    """Serves a segmentation model from images, encoded images or tf.Examples."""

    INPUT_TYPES = ("image_tensor", "image_bytes", "tf_example", "tflite")

    def __init__(self, params, model, **kwargs: Any):
        super().__init__(params, model, **kwargs)
        self._size = serving_size(params)
        feature = params.task.train_data.image_feature
        if feature.num_channels != 3:
            raise ConfigError(
                f"`task.train_data.image_feature.num_channels` is {feature.num_channels}: "
                "serving reads 3-channel images"
            )
        self._mean = list(feature.mean)
        self._stddev = list(feature.stddev)

    @property
    def _task(self):
        return self.params.task

    def _normalize(self, image: tf.Tensor) -> tf.Tensor:
        return preprocess_ops.normalize_image(
            tf.cast(image, tf.float32), offset=self._mean, scale=self._stddev
        )

    def _preprocess_one(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One uint8 image -> the normalized, resized image and its image_info."""
        image = self._normalize(image)
        if self._task.train_data.preserve_aspect_ratio:
            image, image_info = preprocess_ops.resize_and_crop_image(
                image, self._size, padded_size=self._size
            )
        else:
            original = tf.cast(tf.shape(image)[:2], tf.float32)
            size = tf.constant(self._size, tf.float32)
            image = tf.image.resize(image, self._size)
            image_info = tf.stack([original, size, size / original, tf.zeros([2])])
        image.set_shape([*self._size, 3])
        return image, image_info

    def _specs(self) -> tuple[tf.TensorSpec, tf.TensorSpec]:
        return tf.TensorSpec([*self._size, 3], tf.float32), tf.TensorSpec([4, 2], tf.float32)

    def _preprocess_images(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.map_fn(self._preprocess_one, images, fn_output_signature=self._specs())

    def _decode_one(self, image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return self._preprocess_one(image)

    def _decode_all(self, encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.map_fn(self._decode_one, encoded, fn_output_signature=self._specs())

    def _rescaled(self, logits: tf.Tensor, image_info: tf.Tensor) -> tf.Tensor:
        """The logits of one image (batch of one) at its original size."""
        original = tf.cast(image_info[0, 0, :], tf.int32)
        if self._task.train_data.preserve_aspect_ratio:
            # The padded canvas at the original scale, then the image's window of it.
            canvas = tf.cast(tf.math.ceil(image_info[0, 1, :] / image_info[0, 2, :]), tf.int32)
            offset = tf.cast(image_info[0, 3, :], tf.int32)
            logits = tf.image.resize(logits, canvas, method="bilinear")
            return tf.image.crop_to_bounding_box(
                logits, offset[0], offset[1], original[0], original[1]
            )
        return tf.image.resize(logits, original, method="bilinear")

    def serve(self, inputs: Any) -> dict[str, tf.Tensor]:
        """Segments a batch of preprocessed images.

        Args:
          inputs: `(images, image_info)`: float32 normalized `[batch, height, width, 3]`
            images at the serving size and their `[batch, 4, 2]` image_info (None for
            `tflite`).
        """
        images, image_info = inputs
        outputs = self.inference_step(images, self.model)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs
        logits = tf.cast(logits, tf.float32)
        if self._task.export_config.rescale_output and image_info is not None:
            tf.debugging.assert_equal(
                tf.shape(logits)[0],
                1,
                message="export_config.rescale_output serves one image per call",
            )
            logits = self._rescaled(logits, image_info)
        else:
            logits = tf.image.resize(logits, self._size, method="bilinear")
        result = {"logits": logits, "labels": tf.argmax(logits, axis=-1, output_type=tf.int32)}
        if image_info is not None:
            result["image_info"] = image_info
        return result

    def get_inference_signatures(self, function_keys):
        unknown = set(function_keys) - set(self.INPUT_TYPES)
        if unknown:
            raise ValueError(
                f"input types {sorted(unknown)} are not offered; this module offers "
                + ", ".join(self.INPUT_TYPES)
            )
        image_key = self._task.train_data.image_feature.feature_name
        height, width = self._size

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, "inputs")])
        def image_tensor(images):
            return self.serve(self._preprocess_images(images))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "inputs")])
        def image_bytes(encoded):
            return self.serve(self._decode_all(encoded))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "inputs")])
        def tf_example(serialized):
            features = tf.io.parse_example(
                serialized, {image_key: tf.io.FixedLenFeature([], tf.string)}
            )
            return self.serve(self._decode_all(features[image_key]))

        @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, "inputs")])
        def tflite(images):
            return self.serve((self._normalize(images), None))

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
