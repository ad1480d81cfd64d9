"""Decoders and parser of image-classification pipelines, on images the tests encode."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from colour_data import colour_images, example

from garden_core.config import ConfigError
from garden_vision.configs import common
from garden_vision.configs.image_classification import DataConfig
from garden_vision.dataloaders import classification_input as ci
from garden_vision.ops import preprocess_ops

SIZE = [16, 16]


def parse(params: DataConfig, element: dict) -> tuple[tf.Tensor, tf.Tensor]:
    return ci.Parser(SIZE, 3, params)(element)


@pytest.fixture(scope="module")
def images():
    return colour_images(4, seed=7)


def test_training_images_have_the_model_size_and_imagenet_normalization(images):
    image = tf.constant(images[0][0])
    for encoded, decode_jpeg_only in [
        (tf.io.encode_png(image), False),
        (tf.io.encode_jpeg(image), True),
    ]:
        params = DataConfig(is_training=True, decode_jpeg_only=decode_jpeg_only)
        parsed, label = parse(params, {"image": encoded, "label": tf.constant(2, tf.int64)})
        assert parsed.shape == (*SIZE, 3)
        assert parsed.dtype == tf.float32
        assert label.dtype == tf.int32
        assert int(label) == 2
        # Normalized pixels of a [0, 255] image lie within the normalized range.
        low = (0 - np.array(preprocess_ops.MEAN_RGB)) / preprocess_ops.STDDEV_RGB
        high = (255 - np.array(preprocess_ops.MEAN_RGB)) / preprocess_ops.STDDEV_RGB
        assert np.all(parsed.numpy() >= low - 1e-3)
        assert np.all(parsed.numpy() <= high + 1e-3)


def test_evaluation_of_bytes_and_of_decoded_images_agree(images):
    image = tf.constant(images[0][1])
    params = DataConfig(is_training=False, decode_jpeg_only=False, center_crop_fraction=0.875)
    from_bytes, _ = parse(params, {"image": tf.io.encode_png(image), "label": 0})
    from_tensor, _ = parse(params, {"image": image, "label": 0})
    np.testing.assert_allclose(from_bytes, from_tensor, atol=1e-5)
    expected = preprocess_ops.normalize_image(
        tf.image.resize(preprocess_ops.center_crop_image(image, 0.875), SIZE)
    )
    np.testing.assert_allclose(from_tensor, expected, atol=1e-5)


def test_evaluation_is_deterministic_and_training_is_random(images):
    image = tf.constant(images[0][2])
    evaluation = DataConfig(is_training=False, decode_jpeg_only=False)
    first, _ = parse(evaluation, {"image": image, "label": 0})
    second, _ = parse(evaluation, {"image": image, "label": 0})
    np.testing.assert_array_equal(first, second)
    training = DataConfig(is_training=True, decode_jpeg_only=False, crop_area_range=(0.1, 0.3))
    crops = [parse(training, {"image": image, "label": 0})[0].numpy() for _ in range(4)]
    assert any(not np.array_equal(crops[0], crop) for crop in crops[1:])


def test_every_augmentation_runs_inside_a_tf_data_pipeline(images):
    params = DataConfig(
        is_training=True,
        decode_jpeg_only=False,
        aug_type=common.Augmentation(type="randaug", randaug=common.RandAugment(magnitude=5)),
        three_augment=True,
        color_jitter=0.4,
        random_erasing=common.RandomErasing(probability=1.0),
        dtype="bfloat16",
    )
    parser = ci.Parser(SIZE, 3, params)
    encoded = [tf.io.encode_png(image).numpy() for image in images[0]]
    dataset = tf.data.Dataset.from_tensor_slices(
        {"image": encoded, "label": images[1].astype(np.int64)}
    ).map(parser)
    for image, label in dataset:
        assert image.shape == (*SIZE, 3)
        assert image.dtype == tf.bfloat16
        assert label.dtype == tf.int32
    autoaug = params.replace(aug_type={"type": "autoaug", "autoaug": {"augmentation_name": "v0"}})
    for image, _ in tf.data.Dataset.from_tensor_slices(
        {"image": encoded, "label": images[1].astype(np.int64)}
    ).map(ci.Parser(SIZE, 3, autoaug)):
        assert image.shape == (*SIZE, 3)


def test_the_example_decoder_reads_model_garden_records(images):
    encoded = tf.io.encode_png(tf.constant(images[0][0])).numpy()
    decoded = ci.ExampleDecoder().decode(tf.constant(example(encoded, 2)))
    assert decoded["image"].numpy() == encoded
    assert int(decoded["label"]) == 2


def test_the_label_map_decoder_maps_text_to_ids(tmp_path, images):
    label_map = tmp_path / "labels.txt"
    label_map.write_text("class_0\nclass_1\nclass_2\n")
    params = DataConfig(decoder={"type": "label_map_decoder"})
    params.decoder.label_map_decoder.label_map = str(label_map)
    decoder = ci.build_decoder(params)
    encoded = tf.io.encode_png(tf.constant(images[0][0])).numpy()
    assert int(decoder.decode(tf.constant(example(encoded, 1)))["label"]) == 1

    params.decoder.label_map_decoder.label_map = str(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="missing.txt"):
        ci.build_decoder(params)


def test_mixup_and_cutmix_give_soft_labels_that_sum_to_one():
    params = DataConfig(is_training=True, mixup_and_cutmix=common.MixupAndCutmix())
    mix = ci.mixup_and_cutmix_fn(params, num_classes=3)
    images = tf.random.uniform([8, *SIZE, 3])
    mixed, labels = mix(images, tf.constant([0, 1, 2, 0, 1, 2, 0, 1]))
    assert mixed.shape == images.shape
    assert labels.shape == (8, 3)
    np.testing.assert_allclose(np.sum(labels.numpy(), axis=1), 1.0, atol=1e-5)
    assert ci.mixup_and_cutmix_fn(params.replace(is_training=False), 3) is None


def test_repeated_augment_repeats_each_element():
    sample = ci.repeated_augment_fn(DataConfig(is_training=True, repeated_augment=3))
    values = [int(x) for x in tf.data.Dataset.range(2).apply(sample)]
    assert values == [0, 0, 0, 1, 1, 1]
    assert ci.repeated_augment_fn(DataConfig(is_training=False, repeated_augment=3)) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tf_resize_method": "fancy"}, "`tf_resize_method` = 'fancy'"),
        ({"dtype": "int8"}, "`dtype` = 'int8'"),
        ({"aug_policy": "mixmax"}, "`aug_policy` = 'mixmax'"),
    ],
)
def test_bad_parser_settings_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ci.Parser(SIZE, 3, DataConfig(is_training=True, **overrides))


def test_a_bad_file_type_names_the_field():
    with pytest.raises(ConfigError, match="`file_type` = 'recordio'"):
        ci.dataset_fn(DataConfig(file_type="recordio"))
