"""Segmentation Decoder and Parser: Model Garden's outputs (normalized image, masks with
ignore_label padding, valid_masks, image_info) checked against hand-computed values, the
training augmentations keeping image and mask together, original-size evaluation masks, and
bad records failing with an error that names them."""

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.configs.semantic_segmentation import DenseFeatureConfig
from garden_vision.dataloaders.segmentation_input import Decoder, Parser

IGNORE = 255
# ImageNet statistics on the 0-255 scale, DenseFeatureConfig's defaults.
MEAN = np.array([0.485, 0.456, 0.406]) * 255
STDDEV = np.array([0.229, 0.224, 0.225]) * 255


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _example(image, mask, source_id=b"", mask_bytes=None, size=None, extra=None):
    height, width = size or image.shape[:2]
    features = {
        "image/encoded": _bytes(tf.io.encode_png(image).numpy()),
        "image/height": _int(height),
        "image/width": _int(width),
        "image/segmentation/class/encoded": _bytes(
            mask_bytes if mask_bytes is not None else tf.io.encode_png(mask[..., None]).numpy()
        ),
    }
    if source_id:
        features["image/source_id"] = _bytes(source_id)
    for key, value in (extra or {}).items():
        features[key] = _bytes(tf.io.encode_png(value).numpy())
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString()


def _data(height=6, width=8, seed=0, num_classes=5):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = rng.integers(0, num_classes, (height, width)).astype(np.uint8)
    mask[0, 0] = IGNORE
    return image, mask


def _parse(parser, record, is_training=False):
    image, labels = parser.parse_fn(is_training)(Decoder().decode(tf.constant(record)))
    return image.numpy(), {key: value.numpy() for key, value in labels.items()}


def _normalized(image):
    return (image.astype(np.float64) - MEAN) / STDDEV


def test_decoder_reads_the_record_features():
    image, mask = _data()
    depth = np.full((6, 8, 1), 7, np.uint8)
    record = _example(image, mask, source_id=b"pascal/0001", extra={"image/depth": depth})
    depth_feature = DenseFeatureConfig(
        feature_name="image/depth", num_channels=1, mean=[0.0], stddev=[1.0]
    )
    decoded = Decoder(additional_dense_features=[depth_feature]).decode(tf.constant(record))
    assert int(decoded["image/height"]) == 6
    assert int(decoded["image/width"]) == 8
    assert decoded["image/source_id"].numpy() == b"pascal/0001"
    mask_png = decoded["image/segmentation/class/encoded"]
    np.testing.assert_array_equal(tf.io.decode_png(mask_png).numpy()[..., 0], mask)
    np.testing.assert_array_equal(tf.io.decode_png(decoded["image/depth"]).numpy(), depth)


def test_eval_pads_image_with_zeros_and_mask_with_ignore_label():
    image, mask = _data(6, 8)
    out_image, labels = _parse(Parser(output_size=[8, 8]), _example(image, mask))
    # 6x8 fits 8x8 at scale 1: rows 6-7 are padding.
    np.testing.assert_allclose(out_image[:6], _normalized(image), atol=1e-4)
    assert np.all(out_image[6:] == 0)
    np.testing.assert_array_equal(labels["masks"][:6, :, 0], mask)
    assert np.all(labels["masks"][6:] == IGNORE)
    np.testing.assert_array_equal(labels["valid_masks"], labels["masks"] != IGNORE)
    np.testing.assert_allclose(labels["image_info"], [[6, 8], [8, 8], [1, 1], [0, 0]])
    assert out_image.dtype == np.float32
    assert labels["masks"].dtype == np.float32
    assert labels["masks"].shape == (8, 8, 1)
    assert labels["valid_masks"].dtype == bool


def test_eval_upscales_mask_by_nearest_neighbour():
    image, mask = _data(3, 4)
    _, labels = _parse(Parser(output_size=[6, 10]), _example(image, mask))
    # Scale min(6/3, 10/4) = 2: each label becomes a 2x2 block, columns 8-9 are padding.
    expected = np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(labels["masks"][:, :8, 0], expected)
    assert np.all(labels["masks"][:, 8:] == IGNORE)
    np.testing.assert_allclose(labels["image_info"], [[3, 4], [6, 10], [2, 2], [0, 0]])


def test_eval_keeps_original_masks_padded_when_not_resized():
    image, mask = _data(6, 5)
    parser = Parser(
        output_size=[4, 4], resize_eval_groundtruth=False, groundtruth_padded_size=[8, 8]
    )
    out_image, labels = _parse(parser, _example(image, mask))
    assert out_image.shape == (4, 4, 3)
    np.testing.assert_array_equal(labels["masks"][:6, :5, 0], mask)
    assert np.all(labels["masks"][6:] == IGNORE)
    assert np.all(labels["masks"][:, 5:] == IGNORE)
    np.testing.assert_allclose(labels["image_info"][0], [6, 5])


def test_matting_maps_are_scaled_in_training_and_binarized_in_evaluation():
    image, _ = _data(4, 4)
    alpha = np.array([[0, 100, 128, 255]] * 4, np.uint8)
    record = _example(image, alpha)
    parser = Parser(output_size=[4, 4], gt_is_matting_map=True)
    _, train = _parse(parser, record, is_training=True)
    np.testing.assert_allclose(train["masks"][0, :, 0], alpha[0] / 255.0, rtol=1e-6)
    _, evaluation = _parse(parser, record)
    np.testing.assert_array_equal(evaluation["masks"][0, :, 0], [0, 0, 1, 1])


def test_stretching_without_preserving_the_aspect_ratio():
    image, mask = _data(4, 8)
    _, labels = _parse(
        Parser(output_size=[8, 8], preserve_aspect_ratio=False), _example(image, mask)
    )
    # Rows double, columns stay: the mask fills the output, no padding.
    np.testing.assert_array_equal(labels["masks"][..., 0], np.repeat(mask, 2, axis=0))
    np.testing.assert_allclose(labels["image_info"][:3], [[8, 8], [8, 8], [1, 1]])


def test_centered_crop_places_the_image_in_the_middle():
    image, mask = _data(4, 8)
    out_image, labels = _parse(
        Parser(output_size=[8, 8], centered_crop=True), _example(image, mask)
    )
    np.testing.assert_array_equal(labels["masks"][2:6, :, 0], mask)
    assert np.all(labels["masks"][:2] == IGNORE)
    assert np.all(labels["masks"][6:] == IGNORE)
    np.testing.assert_allclose(out_image[2:6], _normalized(image), atol=1e-4)
    assert np.all(out_image[:2] == 0)
    assert np.all(out_image[6:] == 0)


def _label_coded(height, width, seed):
    """An image whose red channel is 40 x the label: image and mask must move together."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 5, (height // 4, width // 4)).astype(np.uint8)
    mask = np.kron(blocks, np.ones((4, 4), np.uint8))
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = mask * 40
    return image, mask


def _decoded_labels(out_image):
    red = out_image[..., 0] * STDDEV[0] + MEAN[0]
    return np.round(red / 40.0)


def _constant_neighbourhood(masks):
    """Pixels whose 3x3 neighbourhood has one label (bilinear blending cannot reach them)."""
    padded = np.pad(masks, 1, constant_values=-1)
    same = np.ones(masks.shape, bool)
    for dy in range(3):
        for dx in range(3):
            same &= padded[dy : dy + masks.shape[0], dx : dx + masks.shape[1]] == masks
    return same & (masks != IGNORE)


def test_training_crop_flip_and_jitter_keep_image_and_mask_aligned():
    image, mask = _label_coded(16, 24, seed=1)
    parser = Parser(
        output_size=[16, 24],
        crop_size=[12, 12],
        aug_rand_hflip=True,
        aug_scale_min=0.5,
        aug_scale_max=2.0,
    )
    record = _example(image, mask)
    checked = 0
    for _ in range(12):
        out_image, labels = _parse(parser, record, is_training=True)
        assert out_image.shape == (12, 12, 3)
        assert labels["masks"].shape == (12, 12, 1)
        info = labels["image_info"]
        np.testing.assert_allclose(info[:2], [[12, 12], [12, 12]])  # The crop, then 12x12.
        assert np.all((info[2] >= 0.5 - 1e-6) & (info[2] <= 2.0 + 1e-6))
        content = np.minimum(np.round(info[0] * info[2]) - info[3], 12).astype(int)
        masks = labels["masks"][..., 0]
        # Padding: zero image, ignored mask.
        assert np.all(masks[content[0] :] == IGNORE)
        assert np.all(masks[:, content[1] :] == IGNORE)
        assert np.all(out_image[content[0] :] == 0)
        assert np.all(out_image[:, content[1] :] == 0)
        # Away from label edges, the label read back from the image is the mask's.
        interior = _constant_neighbourhood(masks)
        np.testing.assert_array_equal(_decoded_labels(out_image)[interior], masks[interior])
        checked += interior.sum()
        np.testing.assert_array_equal(labels["valid_masks"][..., 0], masks != IGNORE)
    assert checked > 100


def test_random_flip_moves_image_and_mask_together():
    image, mask = _label_coded(8, 8, seed=2)
    mask[:, :4] = 1
    mask[:, 4:] = 3
    image[..., 0] = mask * 40
    parser = Parser(output_size=[8, 8], aug_rand_hflip=True)
    outcomes = set()
    for _ in range(16):
        out_image, labels = _parse(parser, _example(image, mask), is_training=True)
        np.testing.assert_array_equal(_decoded_labels(out_image), labels["masks"][..., 0])
        outcomes.add(int(labels["masks"][0, 0, 0]))
    assert outcomes == {1, 3}  # Both flipped and unflipped (chance of failing: 2 * 2**-16).


def test_additional_dense_features_are_normalized_and_stacked():
    image, mask = _data()
    depth = np.arange(48, dtype=np.uint8).reshape(6, 8, 1)
    feature = DenseFeatureConfig(
        feature_name="image/depth", num_channels=1, mean=[10.0], stddev=[2.0]
    )
    record = _example(image, mask, extra={"image/depth": depth})
    decoded = Decoder(additional_dense_features=[feature]).decode(tf.constant(record))
    out_image, _ = Parser(output_size=[6, 8], additional_dense_features=[feature]).parse_fn(False)(
        decoded
    )
    assert out_image.shape == (6, 8, 4)
    np.testing.assert_allclose(out_image[..., 3], (depth[..., 0] - 10.0) / 2.0, rtol=1e-6)
    np.testing.assert_allclose(out_image[..., :3], _normalized(image), atol=1e-4)


def test_batched_tf_data_pipeline_with_bfloat16_images():
    records = [_example(*_data(6 + i, 8 - i, seed=i)) for i in range(4)]
    parser = Parser(output_size=[8, 8], dtype="bfloat16", aug_rand_hflip=True)
    dataset = (
        tf.data.Dataset.from_tensor_slices(records)
        .map(Decoder().decode)
        .map(parser.parse_fn(is_training=True))
        .batch(2)
    )
    images, labels = next(iter(dataset))
    assert images.dtype == tf.bfloat16
    assert images.shape == (2, 8, 8, 3)
    assert labels["masks"].shape == (2, 8, 8, 1)
    assert labels["image_info"].shape == (2, 4, 2)


def test_decoded_tensors_are_accepted_in_place_of_encoded_bytes():
    image, mask = _data()
    decoded = {
        "image/encoded": tf.constant(image),
        "image/height": tf.constant(6, tf.int64),
        "image/width": tf.constant(8, tf.int64),
        "image/segmentation/class/encoded": tf.constant(mask[..., None]),
    }
    out_image, labels = Parser(output_size=[6, 8]).parse_fn(False)(decoded)
    np.testing.assert_array_equal(labels["masks"].numpy()[..., 0], mask)
    np.testing.assert_allclose(out_image.numpy(), _normalized(image), atol=1e-4)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("mask_size", "differ in size"),
        ("record_size", "image/height x image/width"),
        ("not_png", "image/segmentation/class/encoded is missing or is not"),
        ("no_mask", "image/segmentation/class/encoded is missing or is not"),
    ],
)
def test_bad_records_name_the_record(case, message):
    image, mask = _data()
    kwargs = {"source_id": b"voc/2007_000042"}
    if case == "mask_size":
        kwargs["mask_bytes"] = tf.io.encode_png(mask[:5, :, None]).numpy()
    elif case == "record_size":
        kwargs["size"] = (7, 8)
    elif case == "not_png":
        kwargs["mask_bytes"] = b"definitely not an image"
    else:
        kwargs["mask_bytes"] = b""
    with pytest.raises(tf.errors.InvalidArgumentError, match=message) as error:
        _parse(Parser(output_size=[8, 8]), _example(image, mask, **kwargs))
    assert "voc/2007_000042" in str(error.value)


def test_records_without_source_id_are_named_by_a_hash_and_eval_size_is_checked():
    image, mask = _data(9, 9)
    parser = Parser(
        output_size=[4, 4], resize_eval_groundtruth=False, groundtruth_padded_size=[8, 8]
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="larger than groundtruth_padded_size"):
        _parse(parser, _example(image, mask))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"record \(source_id\)"):
        _parse(Parser(output_size=[8, 8]), _example(image, mask, mask_bytes=b"GIF"))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="groundtruth_padded_size"):
        Parser(output_size=[8, 8], resize_eval_groundtruth=False)
    with pytest.raises(ValueError, match="centered_crop"):
        Parser(
            output_size=[8, 8],
            resize_eval_groundtruth=False,
            groundtruth_padded_size=[8, 8],
            centered_crop=True,
        )
    with pytest.raises(ValueError, match="dtype"):
        Parser(output_size=[8, 8], dtype="int8")
    with pytest.raises(ValueError, match="output_size"):
        Parser(output_size=[8])
    with pytest.raises(ValueError, match="crop_size"):
        Parser(output_size=[8, 8], crop_size=[16, 4])
    with pytest.raises(ValueError, match="aug_scale_min"):
        Parser(output_size=[8, 8], aug_scale_min=2.0, aug_scale_max=1.0)
