"""`ClassificationModule`: serving signatures of image classifiers.

Input types (`garden export --input_type`, several may be given as a comma list):

- `image_tensor`: uint8 images, `[batch, height, width, 3]` of any size.
- `image_bytes`: encoded images (JPEG, PNG, GIF, BMP), `[batch]` strings.
- `tf_example`: serialized tf.Examples in Model Garden's layout, `[batch]` strings, with
  the image under the training data's `image_field_key`.
- `tflite`: float32 pixel values in [0, 255], `[1, height, width, 3]` at the model's input
  size, for conversion to TensorFlow Lite (`garden_vision.serving.tflite`): no resizing or
  dynamic shapes, only normalization.

Each image is center-cropped and resized exactly as in evaluation, then normalized; the
outputs are `logits`, `probs` (softmax, or sigmoid for multilabel models) and `classes`
(the arg-max).
"""

from __future__ import annotations

import tensorflow as tf

from garden_core.export_base import ExportModule
from garden_vision.ops import preprocess_ops


class ClassificationModule(ExportModule):
    """Serves an image classifier from images, encoded images or tf.Examples."""

    INPUT_TYPES = ("image_tensor", "image_bytes", "tf_example", "tflite")

    @property
    def _task(self):
        return self.params.task

    def _preprocess_one(self, image: tf.Tensor) -> tf.Tensor:
        height, width = self._task.model.input_size[:2]
        fraction = self._task.validation_data.center_crop_fraction or 1.0
        image = preprocess_ops.center_crop_image(image, fraction)
        image = tf.image.resize(
            image, [height, width], method=self._task.validation_data.tf_resize_method
        )
        image = preprocess_ops.normalize_image(tf.cast(image, tf.float32))
        image.set_shape([height, width, 3])
        return image

    def _preprocess_images(self, images: tf.Tensor) -> tf.Tensor:
        height, width = self._task.model.input_size[:2]
        return tf.map_fn(
            self._preprocess_one,
            images,
            fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
        )

    def _decode(self, image_bytes: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return self._preprocess_one(image)

    def _decode_all(self, encoded: tf.Tensor) -> tf.Tensor:
        height, width = self._task.model.input_size[:2]
        return tf.map_fn(
            self._decode, encoded, fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32)
        )

    def _outputs(self, logits: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = tf.cast(logits, tf.float32)
        if self._task.train_data.is_multilabel:
            probs = tf.sigmoid(logits)
        elif self._task.model.output_softmax:
            probs = logits  # The model already outputs probabilities.
        else:
            probs = tf.nn.softmax(logits)
        return {
            "logits": logits,
            "probs": probs,
            "classes": tf.argmax(probs, axis=-1, output_type=tf.int32),
        }

    def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """Classifies a batch of preprocessed (float, normalized) images."""
        return self._outputs(self.inference_step(images, self.model))

    def get_inference_signatures(self, function_keys):
        unknown = set(function_keys) - set(self.INPUT_TYPES)
        if unknown:
            raise ValueError(
                f"input types {sorted(unknown)} are not offered; this module offers "
                + ", ".join(self.INPUT_TYPES)
            )
        image_key = self._task.validation_data.image_field_key

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

        height, width = self._task.model.input_size[:2]

        @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, "inputs")])
        def tflite(images):
            return self.serve(preprocess_ops.normalize_image(images))

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
