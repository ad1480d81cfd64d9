"""Decoders and the parser of image-classification input pipelines.

Records come in two layouts:

- Model Garden's tf.Example layout in TFRecord files: the encoded image under
  `image/encoded` and the integer label under `image/class/label` (keys configurable).
  `ExampleDecoder` reads it; `LabelMapExampleDecoder` reads text labels
  (`image/class/text`) and maps them to ids with a label-map file.
- TFDS image datasets: dicts with `image` (decoded, or encoded bytes when
  `tfds_skip_decoding_feature: image`) and `label`. `TfdsDecoder` renames them.

Every decoder returns `{"image": ..., "label": ...}` where the image is encoded bytes or a
decoded uint8 tensor; `Parser` accepts either, decoding as late as possible so that JPEG
crops are decoded cropped.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from garden_core.config import ConfigError
from garden_vision.configs import image_classification as config_lib
from garden_vision.ops import augment, preprocess_ops

_RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian")


class ExampleDecoder:
    """Decodes Model Garden's classification tf.Examples.

    Args:
      image_field_key: The feature holding the encoded image.
      label_field_key: The feature holding the integer label (or labels).
      is_multilabel: Labels are a variable-length list of class ids.
    """

    def __init__(
        self,
        image_field_key: str = "image/encoded",
        label_field_key: str = "image/class/label",
        is_multilabel: bool = False,
    ):
        self._image_field_key = image_field_key
        self._label_field_key = label_field_key
        self._is_multilabel = is_multilabel
        label = (
            tf.io.VarLenFeature(tf.int64)
            if is_multilabel
            else tf.io.FixedLenFeature((), tf.int64, default_value=-1)
        )
        self._features = {
            image_field_key: tf.io.FixedLenFeature((), tf.string, default_value=""),
            label_field_key: label,
        }

    def decode(self, serialized_example: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_single_example(serialized_example, self._features)
        label = parsed[self._label_field_key]
        if self._is_multilabel:
            label = tf.sparse.to_dense(label)
        return {"image": parsed[self._image_field_key], "label": label}

    __call__ = decode


class LabelMapExampleDecoder:
    """Decodes tf.Examples whose label is text, mapped to ids by a label-map file.

    The label map has one class name per line; line `i` (from 0) is class `i`. This is the
    `labels.txt` that `garden_vision.tools.images_to_tfrecords` writes.

    Args:
      label_map: Path of the label-map file.
      image_field_key: The feature holding the encoded image.
      text_field_key: The feature holding the class name.

    Raises:
      ConfigError: If the label map cannot be read or is empty.
    """

    def __init__(
        self,
        label_map: str,
        image_field_key: str = "image/encoded",
        text_field_key: str = "image/class/text",
    ):
        if not label_map:
            raise ConfigError("`decoder.label_map_decoder.label_map` is empty: name a file")
        try:
            with tf.io.gfile.GFile(label_map) as f:
                names = [line.strip() for line in f if line.strip()]
        except (tf.errors.NotFoundError, OSError) as error:
            raise ConfigError(
                f"`decoder.label_map_decoder.label_map`: cannot read {label_map!r}: {error}"
            ) from None
        if not names:
            raise ConfigError(f"`decoder.label_map_decoder.label_map` {label_map!r} is empty")
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(names), tf.range(len(names), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self._image_field_key = image_field_key
        self._text_field_key = text_field_key
        self._features = {
            image_field_key: tf.io.FixedLenFeature((), tf.string, default_value=""),
            text_field_key: tf.io.FixedLenFeature((), tf.string, default_value=""),
        }

    def decode(self, serialized_example: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_single_example(serialized_example, self._features)
        return {
            "image": parsed[self._image_field_key],
            "label": self._table.lookup(parsed[self._text_field_key]),
        }

    __call__ = decode


class TfdsDecoder:
    """Renames a TFDS image-classification element to `{"image", "label"}`.

    Args:
      image_key: The TFDS feature holding the image.
      label_key: The TFDS feature holding the label.
    """

    def __init__(self, image_key: str = "image", label_key: str = "label"):
        self._image_key = image_key
        self._label_key = label_key

    def decode(self, element: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {"image": element[self._image_key], "label": element[self._label_key]}

    __call__ = decode


def build_decoder(params: config_lib.DataConfig):
    """Returns the decoder `params` asks for (see the module docstring)."""
    if params.tfds_name:
        return TfdsDecoder()
    decoder_type = params.decoder.type if params.decoder is not None else "simple_decoder"
    if decoder_type == "simple_decoder":
        return ExampleDecoder(params.image_field_key, params.label_field_key, params.is_multilabel)
    if decoder_type == "label_map_decoder":
        if params.is_multilabel:
            raise ConfigError("`decoder.type` label_map_decoder reads one text label per image")
        return LabelMapExampleDecoder(
            params.decoder.label_map_decoder.label_map, image_field_key=params.image_field_key
        )
    raise ConfigError(
        f"`decoder.type` = {decoder_type!r}: expected simple_decoder or label_map_decoder"
    )


def _augmenter(params: config_lib.DataConfig):
    """The RandAugment or AutoAugment of `aug_type` (or the older `aug_policy`), or None."""
    aug_type = params.aug_type
    if aug_type is not None and aug_type.type:
        if aug_type.type == "randaug":
            c = aug_type.randaug
            return augment.RandAugment(
                num_layers=c.num_layers,
                magnitude=c.magnitude,
                cutout_const=c.cutout_const,
                translate_const=c.translate_const,
                magnitude_std=c.magnitude_std,
                prob_to_apply=c.prob_to_apply,
                exclude_ops=c.exclude_ops,
            )
        if aug_type.type == "autoaug":
            c = aug_type.autoaug
            return augment.AutoAugment(
                augmentation_name=c.augmentation_name,
                cutout_const=c.cutout_const,
                translate_const=c.translate_const,
            )
        raise ConfigError(f"`aug_type.type` = {aug_type.type!r}: expected randaug or autoaug")
    if params.aug_policy:
        if params.aug_policy == "randaug":
            return augment.RandAugment(magnitude=params.randaug_magnitude or 10)
        if params.aug_policy == "autoaug":
            return augment.AutoAugment()
        raise ConfigError(f"`aug_policy` = {params.aug_policy!r}: expected randaug or autoaug")
    return None


class Parser:
    """Turns decoded `{"image", "label"}` elements into `(image, label)` model inputs.

    Training: crop (Inception-style random crop of `crop_area_range`, or a center crop
    when `aug_crop` is off), resize to `output_size`, random flip, DeiT III's three-augment,
    color jitter, RandAugment / AutoAugment, normalization with ImageNet statistics, random
    erasing. Evaluation: center crop of `center_crop_fraction`, resize, normalization.

    Args:
      output_size: `[height, width]` of the model input.
      num_classes: Number of classes (for multi-hot labels).
      params: The data config.
    """

    def __init__(self, output_size: list[int], num_classes: int, params: config_lib.DataConfig):
        if params.tf_resize_method not in _RESIZE_METHODS:
            raise ConfigError(
                f"`tf_resize_method` = {params.tf_resize_method!r}: expected one of "
                + ", ".join(_RESIZE_METHODS)
            )
        if params.dtype not in ("float32", "float16", "bfloat16"):
            raise ConfigError(f"`dtype` = {params.dtype!r}: expected float32, float16 or bfloat16")
        self._output_size = [int(output_size[0]), int(output_size[1])]
        self._num_classes = num_classes
        self._params = params
        self._is_training = bool(params.is_training)
        self._dtype = tf.dtypes.as_dtype(params.dtype)
        self._augmenter = _augmenter(params) if self._is_training else None
        # DeiT III: grayscale, solarization or Gaussian blur, one at random per image.
        self._three_augment = augment.AutoAugment("deit3_three_augment", translate_const=20)
        erasing = params.random_erasing
        self._random_erasing = (
            augment.RandomErasing(
                probability=erasing.probability,
                min_area=erasing.min_area,
                max_area=erasing.max_area,
                min_aspect=erasing.min_aspect,
                max_aspect=erasing.max_aspect,
                min_count=erasing.min_count,
                max_count=erasing.max_count,
                trials=erasing.trials,
            )
            if erasing is not None and self._is_training
            else None
        )

    def __call__(self, decoded: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.convert_to_tensor(decoded["image"])
        if self._is_training:
            image = self._train_image(image)
        else:
            image = self._eval_image(image)
        return image, self._label(decoded["label"])

    # Images.

    def _decode(self, image_bytes: tf.Tensor) -> tf.Tensor:
        if self._params.decode_jpeg_only:
            return tf.io.decode_jpeg(image_bytes, channels=3)
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return image

    def _crop_train(self, image: tf.Tensor) -> tf.Tensor:
        params = self._params
        area_range = tuple(params.crop_area_range or (0.08, 1.0))
        if image.dtype == tf.string:
            if params.aug_crop and params.decode_jpeg_only:
                return preprocess_ops.decode_and_random_crop(
                    image, None, area_range=area_range, jpeg_only=True
                )
            image = self._decode(image)
        if params.aug_crop:
            return preprocess_ops.random_crop_image(image, area_range=area_range)
        return preprocess_ops.center_crop_image(image, params.center_crop_fraction or 1.0)

    def _train_image(self, image: tf.Tensor) -> tf.Tensor:
        params = self._params
        image = self._resize(self._crop_train(image))
        if params.aug_rand_hflip:
            image = tf.image.random_flip_left_right(image)
        if params.three_augment or params.color_jitter > 0 or self._augmenter is not None:
            # These ops work on uint8 images.
            image = _to_uint8(image)
            if params.three_augment:
                image = self._three_augment.distort(image)
            if params.color_jitter > 0:
                jitter = params.color_jitter
                image = _to_uint8(preprocess_ops.color_jitter(image, jitter, jitter, jitter))
            if self._augmenter is not None:
                image = self._augmenter.distort(image)
        image = preprocess_ops.normalize_image(image)
        if self._random_erasing is not None:
            image = self._random_erasing.distort(image)
        image.set_shape([*self._output_size, 3])
        return tf.cast(image, self._dtype)

    def _eval_image(self, image: tf.Tensor) -> tf.Tensor:
        fraction = self._params.center_crop_fraction or 1.0
        if image.dtype == tf.string:
            if self._params.decode_jpeg_only:
                image = preprocess_ops.decode_and_center_crop(
                    image, None, center_crop_fraction=fraction
                )
            else:
                image = preprocess_ops.center_crop_image(self._decode(image), fraction)
        else:
            image = preprocess_ops.center_crop_image(image, fraction)
        image = self._resize(image)
        image = preprocess_ops.normalize_image(image)
        image.set_shape([*self._output_size, 3])
        return tf.cast(image, self._dtype)

    def _resize(self, image: tf.Tensor) -> tf.Tensor:
        image = tf.image.resize(image, self._output_size, method=self._params.tf_resize_method)
        return tf.cast(image, tf.float32)

    # Labels.

    def _label(self, label: tf.Tensor) -> tf.Tensor:
        if self._params.is_multilabel:
            return tf.reduce_max(tf.one_hot(tf.cast(label, tf.int32), self._num_classes), axis=0)
        return tf.cast(label, tf.int32)


def _to_uint8(image: tf.Tensor) -> tf.Tensor:
    """Rounds and saturates an image in [0, 255] to uint8 (uint8 images pass unchanged)."""
    if image.dtype == tf.uint8:
        return image
    return tf.cast(tf.clip_by_value(tf.round(tf.cast(image, tf.float32)), 0, 255), tf.uint8)


def mixup_and_cutmix_fn(params: config_lib.DataConfig, num_classes: int):
    """The per-batch Mixup/CutMix of `params`, as a `postprocess_fn`, or None."""
    config = params.mixup_and_cutmix
    if config is None or not params.is_training:
        return None
    mixer = augment.MixupAndCutmix(
        num_classes=num_classes,
        mixup_alpha=config.mixup_alpha,
        cutmix_alpha=config.cutmix_alpha,
        prob=config.prob,
        switch_prob=config.switch_prob,
        label_smoothing=config.label_smoothing,
    )

    def postprocess(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        dtype = images.dtype
        mixed, soft_labels = mixer(tf.cast(images, tf.float32), labels)
        return tf.cast(mixed, dtype), soft_labels

    return postprocess


def repeated_augment_fn(params: config_lib.DataConfig):
    """Repeats each decoded element `repeated_augment` times (a `sample_fn`), or None."""
    repeats = params.repeated_augment
    if not params.is_training or repeats is None or repeats <= 1:
        return None

    def sample(dataset: tf.data.Dataset) -> tf.data.Dataset:
        return dataset.flat_map(
            lambda element: tf.data.Dataset.from_tensors(element).repeat(repeats)
        )

    return sample


def dataset_fn(params: config_lib.DataConfig) -> Any:
    """The raw-record reader for `params.file_type`."""
    if params.file_type == "tfrecord":
        return tf.data.TFRecordDataset
    if params.file_type == "tfrecord_compressed":
        return lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP")
    raise ConfigError(
        f"`file_type` = {params.file_type!r}: expected tfrecord or tfrecord_compressed"
    )
