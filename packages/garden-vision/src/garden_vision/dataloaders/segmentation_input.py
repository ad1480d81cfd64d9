"""The semantic segmentation input pipeline: tf.Example `Decoder` and `Parser`.

Model Garden's `official.vision.dataloaders.segmentation_input`. Records hold an encoded
image (`image/encoded`, or the image feature's own key), its size (`image/height`,
`image/width`) and the class of every pixel as a single-channel PNG
(`image/segmentation/class/encoded`), plus optional further dense features (depth, ...)
stacked onto the image channels. `Decoder.decode` reads one serialized tf.Example into a
dict under those keys; the TFDS decoders (`tfds_segmentation_decoders`) give the same dict
with the image and mask already decoded, which `Parser` accepts as well.

`Parser.parse_fn(is_training)` gives the `tf.data` map function returning
`(image, {"masks", "valid_masks", "image_info"})`:

Training, in order: the image (and each additional feature) is normalized with its
feature's mean and standard deviation; without `preserve_aspect_ratio` image and mask are
stretched to `output_size`; with `crop_size`, both are stretched to `output_size` and a
random `crop_size` window is cut from them; they are flipped left to right at random
(`aug_rand_hflip`); the image is resized keeping its aspect ratio to fit the training size
(`crop_size`, else `output_size`), scaled by a random factor in
`[aug_scale_min, aug_scale_max]`, cropped back and zero-padded at the bottom and right (in
the middle with `centered_crop`); the mask follows with nearest-neighbour resizing, and its
padding gets `ignore_label`.

Evaluation: the same resize without augmentation. With `resize_eval_groundtruth` the mask is
resized with the image; otherwise it keeps the original size, padded with `ignore_label` to
`groundtruth_padded_size`, and the metrics rescale the predictions to it with `image_info`.

Outputs (Model Garden's): the image, `dtype` `[height, width, channels]`; `masks`, float32
`[height, width, 1]` class ids (`ignore_label` where unlabelled or padding; matting maps
scaled to [0, 1] in training and binarized in evaluation with `gt_is_matting_map`);
`valid_masks`, bool `[height, width, 1]`, `masks != ignore_label`; `image_info`, float32
`[4, 2]` `[[original_h, original_w], [scaled_h, scaled_w], [y_scale, x_scale],
[y_offset, x_offset]]`.

Bad records fail with `tf.errors.InvalidArgumentError` naming the record by its
`image/source_id` (or, without one, a hash of its encoded image): a missing image or mask,
bytes that are not a PNG, JPEG, GIF or BMP image, a mask (or additional feature) whose size
differs from the image's or from `image/height` x `image/width`, or an evaluation mask larger
than `groundtruth_padded_size`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from garden_vision.configs.semantic_segmentation import DenseFeatureConfig
from garden_vision.dataloaders import utils
from garden_vision.ops import preprocess_ops

__all__ = ["Decoder", "Parser"]

IMAGE_KEY = "image/encoded"
HEIGHT_KEY = "image/height"
WIDTH_KEY = "image/width"
MASK_KEY = "image/segmentation/class/encoded"
SOURCE_ID_KEY = "image/source_id"

_DTYPES = ("float32", "float16", "bfloat16")
# Leading bytes of the formats `tf.io.decode_image` reads.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
# Generated record names hash into 22 bits, as the detection decoder's do.
_SOURCE_ID_BUCKETS = 2**22 - 1


def _field(feature: Any, name: str) -> Any:
    """Reads `feature.name` or `feature[name]` (feature configs may arrive as dicts)."""
    if isinstance(feature, dict):
        return feature[name]
    return getattr(feature, name)


def _size_argument(name: str, size: Sequence[int] | None, required: bool) -> list[int] | None:
    if size is None or (not required and len(size) == 0):
        if required:
            raise ValueError(f"{name} is {size!r}: expected [height, width]")
        return None
    size = list(size)
    if len(size) != 2 or any(int(side) <= 0 for side in size):
        raise ValueError(f"{name} is {size!r}: expected [height, width] of positive sides")
    return [int(side) for side in size]


class Decoder:
    """Decodes serialized segmentation tf.Examples into a dict of their features.

    The dict holds `image/encoded`, `image/height`, `image/width`,
    `image/segmentation/class/encoded`, `image/source_id` (empty when absent), the image
    feature's key and each additional feature's key; images stay encoded (the parser decodes
    them).

    Args:
      image_feature: The image feature (`DenseFeatureConfig`; None for the default RGB
        `image/encoded`).
      additional_dense_features: Further encoded dense features to read.

    Example:
    ```python
    dataset = tf.data.TFRecordDataset(files).map(Decoder().decode)
    ```
    """

    def __init__(
        self,
        image_feature: DenseFeatureConfig | None = None,
        additional_dense_features: Sequence[DenseFeatureConfig] | None = None,
    ):
        image_feature = image_feature if image_feature is not None else DenseFeatureConfig()
        string = tf.io.FixedLenFeature((), tf.string, default_value="")
        self._keys_to_features = {
            IMAGE_KEY: string,
            HEIGHT_KEY: tf.io.FixedLenFeature((), tf.int64, default_value=0),
            WIDTH_KEY: tf.io.FixedLenFeature((), tf.int64, default_value=0),
            MASK_KEY: string,
            SOURCE_ID_KEY: string,
            _field(image_feature, "feature_name"): string,
        }
        for feature in additional_dense_features or ():
            self._keys_to_features[_field(feature, "feature_name")] = string

    def decode(self, serialized_example: tf.Tensor) -> dict[str, tf.Tensor]:
        """Parses one serialized tf.Example (keys in the class docstring)."""
        return tf.io.parse_single_example(serialized_example, self._keys_to_features)

    __call__ = decode


def _record_name(data: dict[str, tf.Tensor], image_key: str) -> tf.Tensor:
    """The record's `image/source_id`, or a hash of its encoded image when it has none."""
    image = data[image_key]
    generated = (
        tf.strings.as_string(tf.strings.to_hash_bucket_fast(image, _SOURCE_ID_BUCKETS))
        if image.dtype == tf.string
        else tf.constant("(decoded image without image/source_id)")
    )
    if SOURCE_ID_KEY not in data:
        return generated
    given = tf.convert_to_tensor(data[SOURCE_ID_KEY])
    return tf.cond(tf.strings.length(given) > 0, lambda: given, lambda: generated)


def _guard(
    data: dict[str, tf.Tensor], image_key: str, checks: list[tuple[tf.Tensor, str]]
) -> tf.Tensor:
    """An op failing with an error naming the record when a check does not hold.

    The record's name is computed only when a check fails, so good records pay for one
    `tf.cond` and the conditions.
    """
    passed = tf.reduce_all(tf.stack([condition for condition, _ in checks]))

    def fail() -> tf.Tensor:
        name = _record_name(data, image_key)
        asserts = [utils.check_record(condition, name, problem) for condition, problem in checks]
        with tf.control_dependencies(asserts):
            return tf.constant(False)

    return tf.cond(passed, lambda: tf.constant(True), fail)


def _is_image(encoded: tf.Tensor) -> tf.Tensor:
    head = tf.strings.substr(encoded, 0, 8)
    found = [tf.strings.substr(head, 0, len(s)) == s for s in _SIGNATURES]
    return tf.reduce_any(tf.stack(found))


def _decode(value: tf.Tensor, channels: int) -> tf.Tensor:
    """Decodes an encoded image to uint8 `[height, width, channels]`; passes tensors through."""
    value = tf.convert_to_tensor(value)
    if value.dtype == tf.string:
        image = tf.io.decode_image(value, channels=channels, expand_animations=False)
    else:
        image = value
        if image.shape.rank == 2:
            image = image[..., None]
    image.set_shape([None, None, channels])
    return image


class Parser:
    """Parses decoded segmentation records into images and Model Garden's mask labels.

    Args:
      output_size: `[height, width]` of the model input. May be None only with `crop_size`,
        for training without resizing first.
      crop_size: If set, training images are stretched to `output_size` (when given) and a
        random `[height, width]` window of this size is kept (evaluation is unaffected).
      resize_eval_groundtruth: Resize evaluation masks with the image to `output_size`
        (True), or keep them at their original size padded to `groundtruth_padded_size`.
      gt_is_matting_map: Masks are matting maps in 0-255: training scales them to [0, 1],
        evaluation binarizes them at 0.5.
      groundtruth_padded_size: `[height, width]` evaluation masks are padded to when
        `resize_eval_groundtruth` is False (required then).
      ignore_label: The label of unlabelled and padding pixels.
      aug_rand_hflip: Flip training images and masks left to right at random.
      preserve_aspect_ratio: Resize keeping the aspect ratio (then pad); False stretches
        images and masks to `output_size` first.
      aug_scale_min: Smallest random scale of the training resize.
      aug_scale_max: Largest random scale of the training resize.
      dtype: The image dtype: `float32`, `float16` or `bfloat16`.
      image_feature: The image feature and its normalization (`DenseFeatureConfig`; None
        for the default RGB `image/encoded` with ImageNet statistics).
      additional_dense_features: Further dense features, normalized with their own
        statistics and concatenated to the image channels.
      centered_crop: Place a resized image (and mask) smaller than the output in the middle
        of the padding instead of the top-left corner.

    Raises:
      ValueError: For sizes that are not `[height, width]`, a missing
        `groundtruth_padded_size`, `centered_crop` without `resize_eval_groundtruth`, scale
        bounds out of order, or an unknown dtype.

    Example:
    ```python
    parser = Parser(output_size=[512, 512], aug_rand_hflip=True, aug_scale_min=0.5,
                    aug_scale_max=2.0)
    dataset = (tf.data.TFRecordDataset(files).map(Decoder().decode)
               .map(parser.parse_fn(is_training=True)).batch(8))
    ```
    """

    def __init__(
        self,
        output_size: Sequence[int] | None,
        crop_size: Sequence[int] | None = None,
        resize_eval_groundtruth: bool = True,
        gt_is_matting_map: bool = False,
        groundtruth_padded_size: Sequence[int] | None = None,
        ignore_label: int = 255,
        aug_rand_hflip: bool = False,
        preserve_aspect_ratio: bool = True,
        aug_scale_min: float = 1.0,
        aug_scale_max: float = 1.0,
        dtype: str = "float32",
        image_feature: DenseFeatureConfig | None = None,
        additional_dense_features: Sequence[DenseFeatureConfig] | None = None,
        centered_crop: bool = False,
    ):
        self._crop_size = _size_argument("crop_size", crop_size, required=False)
        self._output_size = _size_argument(
            "output_size", output_size, required=self._crop_size is None
        )
        if not resize_eval_groundtruth and not groundtruth_padded_size:
            raise ValueError(
                "groundtruth_padded_size ([height, width]) is needed when "
                "resize_eval_groundtruth is False"
            )
        self._groundtruth_padded_size = _size_argument(
            "groundtruth_padded_size", groundtruth_padded_size, required=False
        )
        if centered_crop and not resize_eval_groundtruth:
            raise ValueError("centered_crop needs resize_eval_groundtruth=True")
        if not 0.0 < float(aug_scale_min) <= float(aug_scale_max):
            raise ValueError(
                f"need 0 < aug_scale_min <= aug_scale_max, got {aug_scale_min}, {aug_scale_max}"
            )
        if dtype not in _DTYPES:
            raise ValueError(f"dtype is {dtype!r}: expected one of {', '.join(_DTYPES)}")
        if (
            self._crop_size is not None
            and self._output_size is not None
            and any(c > o for c, o in zip(self._crop_size, self._output_size, strict=True))
        ):
            raise ValueError(
                f"crop_size {self._crop_size} is larger than output_size {self._output_size}: "
                "the crop is cut from the image resized to output_size"
            )
        self._resize_eval_groundtruth = bool(resize_eval_groundtruth)
        self._gt_is_matting_map = bool(gt_is_matting_map)
        self._ignore_label = int(ignore_label)
        self._aug_rand_hflip = bool(aug_rand_hflip)
        self._preserve_aspect_ratio = bool(preserve_aspect_ratio)
        self._aug_scale_min = float(aug_scale_min)
        self._aug_scale_max = float(aug_scale_max)
        self._dtype = tf.dtypes.as_dtype(dtype)
        self._image_feature = image_feature if image_feature is not None else DenseFeatureConfig()
        self._additional_dense_features = list(additional_dense_features or ())
        self._centered_crop = bool(centered_crop)
        if self._output_size is None and not self._preserve_aspect_ratio:
            raise ValueError("output_size is needed when preserve_aspect_ratio is False")

    # Public API.

    def parse_fn(self, is_training: bool) -> Callable[[dict[str, tf.Tensor]], Any]:
        """Returns the `tf.data` map function for training or evaluation records."""
        if not is_training and self._output_size is None:
            raise ValueError("output_size is needed to parse evaluation records")

        def parse(data: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
            if is_training:
                return self._parse_train_data(data)
            return self._parse_eval_data(data)

        return parse

    def __call__(self, data: dict[str, tf.Tensor], is_training: bool = False):
        return self.parse_fn(is_training)(data)

    # Decoding, checks and normalization.

    def _features(self) -> list[Any]:
        return [self._image_feature, *self._additional_dense_features]

    def _prepare_image_and_label(
        self, data: dict[str, tf.Tensor], training: bool
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Decodes, checks and normalizes the inputs; returns them and the `[1, H, W]` mask."""
        image_key = _field(self._image_feature, "feature_name")
        encoded = [
            (key, tf.convert_to_tensor(data[key]))
            for key in [image_key, *(_field(f, "feature_name") for f in self._features()[1:])]
        ]
        encoded.append((MASK_KEY, tf.convert_to_tensor(data[MASK_KEY])))
        checks = [
            (
                _is_image(value),
                f"{key} is missing or is not a PNG, JPEG, GIF or BMP image",
            )
            for key, value in encoded
            if value.dtype == tf.string
        ]
        decodable = _guard(data, image_key, checks) if checks else None
        with tf.control_dependencies([decodable] if decodable is not None else []):
            inputs = [
                _decode(data[_field(feature, "feature_name")], _field(feature, "num_channels"))
                for feature in self._features()
            ]
            label = _decode(data[MASK_KEY], 1)

        size = tf.shape(inputs[0], out_type=tf.int64)[:2]
        height = tf.cast(data.get(HEIGHT_KEY, size[0]), tf.int64)
        width = tf.cast(data.get(WIDTH_KEY, size[1]), tf.int64)
        mask_size = tf.shape(label, out_type=tf.int64)[:2]
        checks = [
            (
                tf.reduce_all(tf.equal(mask_size, size)),
                f"the mask ({MASK_KEY}) and the image differ in size",
            ),
            (
                ((height <= 0) | tf.equal(height, size[0]))
                & ((width <= 0) | tf.equal(width, size[1])),
                f"the image size differs from {HEIGHT_KEY} x {WIDTH_KEY}",
            ),
        ]
        for feature, value in zip(self._features()[1:], inputs[1:], strict=True):
            checks.append(
                (
                    tf.reduce_all(tf.equal(tf.shape(value, out_type=tf.int64)[:2], size)),
                    f"the feature {_field(feature, 'feature_name')} and the image differ in size",
                )
            )
        if not training and not self._resize_eval_groundtruth:
            checks.append(
                (
                    tf.reduce_all(size <= tf.constant(self._groundtruth_padded_size, tf.int64)),
                    f"the mask is larger than groundtruth_padded_size "
                    f"{self._groundtruth_padded_size}",
                )
            )
        with tf.control_dependencies([_guard(data, image_key, checks)]):
            normalized = [
                preprocess_ops.normalize_image(
                    value, _field(feature, "mean"), _field(feature, "stddev")
                )
                for feature, value in zip(self._features(), inputs, strict=True)
            ]
            label = tf.cast(label, tf.float32)
        image = normalized[0] if len(normalized) == 1 else tf.concat(normalized, axis=2)

        if not self._preserve_aspect_ratio:
            image = tf.image.resize(image, self._output_size, method="bilinear")
            label = tf.image.resize(label, self._output_size, method="nearest")
        return image, tf.transpose(label, [2, 0, 1])

    # Resizing.

    def _resize_image(
        self, image: tf.Tensor, size: list[int], training: bool
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Resizes and pads the image (scale jitter in training); returns it and image_info."""
        scale_min, scale_max = (
            (self._aug_scale_min, self._aug_scale_max) if training else (1.0, 1.0)
        )
        image, image_info = preprocess_ops.resize_and_crop_image(
            image, size, size, aug_scale_min=scale_min, aug_scale_max=scale_max
        )
        if self._centered_crop:
            scaled = tf.cast(tf.round(image_info[0] * image_info[2]), tf.int32)
            content = tf.minimum(scaled - tf.cast(image_info[3], tf.int32), size)
            image = _center(image[: content[0], : content[1]], size)
        image.set_shape([*size, image.shape[-1]])
        return image, image_info

    def _resize_label(self, label: tf.Tensor, image_info: tf.Tensor, size: list[int]) -> tf.Tensor:
        """Maps a `[1, H, W, 1]` mask (labels + 1) through the image's resize and crop.

        As Model Garden's `resize_and_crop_masks`: the mask is resized (nearest neighbour)
        to `int(image_scale * mask_size)`, the window at the image's offset is kept, and the
        rest is zero-padded.
        """
        mask_size = tf.cast(tf.shape(label)[1:3], tf.float32)
        scaled_size = tf.cast(image_info[2] * mask_size, tf.int32)
        offset = tf.cast(image_info[3], tf.int32)
        label = tf.image.resize(label, scaled_size, method="nearest")
        label = label[:, offset[0] : offset[0] + size[0], offset[1] : offset[1] + size[1], :]
        if self._centered_crop:
            return _center(label, size)
        return tf.image.pad_to_bounding_box(label, 0, 0, size[0], size[1])

    def _finish(self, label: tf.Tensor, image_info: tf.Tensor, image: tf.Tensor):
        """Maps padding (label 0 after the +1 shift) to `ignore_label`; builds the labels."""
        label = label - 1.0
        label = tf.where(tf.equal(label, -1.0), float(self._ignore_label), label)
        label = label[0]
        return tf.cast(image, self._dtype), {
            "masks": label,
            "valid_masks": tf.not_equal(label, float(self._ignore_label)),
            "image_info": image_info,
        }

    # Training and evaluation.

    def _parse_train_data(self, data: dict[str, tf.Tensor]):
        image, label = self._prepare_image_and_label(data, training=True)
        if self._gt_is_matting_map:
            label = label / 255.0

        if self._crop_size is not None:
            label = tf.transpose(label, [1, 2, 0])
            if self._output_size is not None and self._preserve_aspect_ratio:
                image = tf.image.resize(image, self._output_size, method="bilinear")
                label = tf.image.resize(label, self._output_size, method="nearest")
            channels = image.shape[-1]
            stacked = tf.image.random_crop(
                tf.concat([image, label], axis=2), [*self._crop_size, channels + 1]
            )
            image = stacked[:, :, :channels]
            label = tf.transpose(stacked[:, :, channels:], [2, 0, 1])

        if self._aug_rand_hflip:
            image, _, label = preprocess_ops.random_horizontal_flip(image, masks=label)

        size = self._crop_size if self._crop_size is not None else self._output_size
        image, image_info = self._resize_image(image, size, training=True)
        label = self._resize_label((label + 1.0)[..., None], image_info, size)
        label.set_shape([1, *size, 1])
        return self._finish(label, image_info, image)

    def _parse_eval_data(self, data: dict[str, tf.Tensor]):
        image, label = self._prepare_image_and_label(data, training=False)
        if self._gt_is_matting_map:
            label = tf.cast(label / 255.0 > 0.5, tf.float32)
        label = (label + 1.0)[..., None]
        size = self._output_size
        image, image_info = self._resize_image(image, size, training=False)
        if self._resize_eval_groundtruth:
            label = self._resize_label(label, image_info, size)
            label.set_shape([1, *size, 1])
        else:
            padded = self._groundtruth_padded_size
            label = tf.image.pad_to_bounding_box(label, 0, 0, padded[0], padded[1])
            label.set_shape([1, *padded, 1])
        return self._finish(label, image_info, image)


def _center(image: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Zero-pads `[..., h, w, c]` to `size`, centred (the odd pixel goes bottom / right)."""
    content = tf.shape(image)[-3:-1]
    return tf.image.pad_to_bounding_box(
        image,
        tf.maximum((size[0] - content[0]) // 2, 0),
        tf.maximum((size[1] - content[1]) // 2, 0),
        size[0],
        size[1],
    )
