"""Preprocessing ops: normalization, crops, decoding, resizing, flips, color jitter, smoothing.

Each op runs eagerly and inside a `tf.data` map (graph mode, unknown image sizes).
"""

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.ops import preprocess_ops


def _in_dataset(fn, *tensors, specs=None):
    """Runs `fn` inside a `tf.data` map and returns its first output (as numpy)."""
    specs = specs or tuple(tf.TensorSpec([None] * t.shape.rank, t.dtype) for t in tensors)
    dataset = tf.data.Dataset.from_generator(lambda: iter([tensors]), output_signature=specs)
    return tf.nest.map_structure(lambda t: t.numpy(), next(iter(dataset.map(fn))))


def _coordinate_image(height, width):
    """uint8 image whose pixel (y, x) is (y, x, 7): crops reveal their offsets."""
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([ys, xs, np.full_like(ys, 7)], axis=-1).astype(np.uint8)


def _random_image(height=32, width=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3)).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# normalize_image
# ----------------------------------------------------------------------------------------------


def test_imagenet_statistics_in_0_255_units():
    np.testing.assert_allclose(preprocess_ops.MEAN_RGB, (123.675, 116.28, 103.53))
    np.testing.assert_allclose(preprocess_ops.STDDEV_RGB, (58.395, 57.12, 57.375))
    np.testing.assert_allclose(preprocess_ops.MEAN_NORM, (0.485, 0.456, 0.406))
    np.testing.assert_allclose(preprocess_ops.STDDEV_NORM, (0.229, 0.224, 0.225))


def test_normalize_image_uses_imagenet_statistics_eagerly_and_in_dataset():
    mean = np.array(preprocess_ops.MEAN_RGB, np.float32)
    std = np.array(preprocess_ops.STDDEV_RGB, np.float32)
    image = np.stack([np.broadcast_to(mean, (32, 32, 3)), np.broadcast_to(mean + std, (32, 32, 3))])
    eager = preprocess_ops.normalize_image(tf.constant(image))
    assert eager.dtype == tf.float32
    assert eager.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(eager[0], 0.0, atol=1e-5)
    np.testing.assert_allclose(eager[1], 1.0, atol=1e-5)

    pixels = _random_image()
    graph = _in_dataset(preprocess_ops.normalize_image, tf.constant(pixels))
    assert graph.dtype == np.float32
    assert graph.shape == (32, 32, 3)
    np.testing.assert_allclose(graph, (pixels.astype(np.float32) - mean) / std, rtol=1e-5)


def test_normalize_image_custom_statistics_and_float_dtype_kept():
    image = tf.fill([4, 4, 3], tf.constant(0.75, tf.float16))
    out = preprocess_ops.normalize_image(image, offset=(0.25,) * 3, scale=(0.5,) * 3)
    assert out.dtype == tf.float16
    np.testing.assert_allclose(out.numpy().astype(np.float32), 1.0)


@pytest.mark.parametrize("shape", [(5, 7, 3), (2, 3, 6, 3), (4, 4, 1)])
def test_normalize_image_per_channel_on_any_layout_matches_numpy(shape):
    # Distinct statistics per channel on non-square images, batched and single-channel: the
    # row-wise arithmetic must pair every value with its own channel's statistics.
    channels = shape[-1]
    offset = tuple(10.0 * (index + 1) for index in range(channels))
    scale = tuple(2.0 + index for index in range(channels))
    pixels = np.random.default_rng(len(shape)).integers(0, 256, shape).astype(np.uint8)
    expected = (pixels.astype(np.float32) - np.float32(offset)) / np.float32(scale)
    eager = preprocess_ops.normalize_image(tf.constant(pixels), offset=offset, scale=scale)
    assert eager.shape == shape
    np.testing.assert_allclose(eager, expected, rtol=1e-6)
    unknown = tf.function(
        lambda image: preprocess_ops.normalize_image(image, offset=offset, scale=scale),
        input_signature=[tf.TensorSpec([None] * len(shape), tf.uint8)],
    )
    np.testing.assert_allclose(unknown(tf.constant(pixels)), expected, rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# random_crop_image
# ----------------------------------------------------------------------------------------------


def test_random_crop_respects_area_and_aspect_ranges_over_many_seeds():
    height, width = 64, 80
    image = tf.constant(_coordinate_image(height, width))
    aspect_range, area_range = (3 / 4, 4 / 3), (0.08, 1.0)
    areas = []
    for seed in range(1, 61):
        crop = preprocess_ops.random_crop_image(
            image, aspect_ratio_range=aspect_range, area_range=area_range, seed=seed
        ).numpy()
        crop_h, crop_w, channels = crop.shape
        assert channels == 3
        assert crop.dtype == np.uint8
        area = crop_h * crop_w / (height * width)
        assert area_range[0] - 1e-6 <= area <= area_range[1] + 1e-6
        if (crop_h, crop_w) != (height, width):  # The whole image is the fallback.
            # Integer sizes: some ratio in the range is within a pixel of the crop's.
            assert aspect_range[0] * crop_h - 1 <= crop_w <= aspect_range[1] * crop_h + 1
        # The crop is a contiguous window of the image.
        top, left = int(crop[0, 0, 0]), int(crop[0, 0, 1])
        np.testing.assert_array_equal(crop, image.numpy()[top : top + crop_h, left : left + crop_w])
        areas.append(area)
    assert min(areas) < 0.5 < max(areas)  # The crops really vary.


def test_random_crop_falls_back_to_the_whole_image():
    image = tf.constant(_random_image(32, 32))
    crop = preprocess_ops.random_crop_image(
        image, aspect_ratio_range=(3.0, 4.0), area_range=(0.95, 1.0), max_attempts=5, seed=3
    )
    np.testing.assert_array_equal(crop, image)


def test_random_crop_runs_in_dataset_with_unknown_size():
    crop = _in_dataset(
        lambda image: preprocess_ops.random_crop_image(image, area_range=(0.25, 0.5)),
        tf.constant(_random_image(32, 32)),
    )
    assert crop.dtype == np.uint8
    assert crop.shape[-1] == 3
    assert 0.25 <= crop.shape[0] * crop.shape[1] / 1024 <= 0.5


# ----------------------------------------------------------------------------------------------
# Center crop and decoding.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected_side", "expected_offset"),
    [((32, 32), 28, (2, 2)), ((32, 48), 28, (2, 10)), ((64, 40), 35, (14, 2))],
)
def test_center_crop_sizes(size, expected_side, expected_offset):
    image = _coordinate_image(*size)
    crop = preprocess_ops.center_crop_image(tf.constant(image)).numpy()
    assert crop.shape == (expected_side, expected_side, 3)
    assert tuple(crop[0, 0, :2]) == expected_offset
    graph = _in_dataset(preprocess_ops.center_crop_image, tf.constant(image))
    np.testing.assert_array_equal(graph, crop)


def test_center_crop_fraction():
    crop = preprocess_ops.center_crop_image(tf.zeros([40, 60, 3]), center_crop_fraction=0.5)
    assert crop.shape == (20, 20, 3)


def test_decode_and_center_crop_png_is_exact_and_jpeg_has_the_same_window():
    image = _coordinate_image(32, 48)
    expected = preprocess_ops.center_crop_image(tf.constant(image)).numpy()
    png = tf.io.encode_png(image)
    np.testing.assert_array_equal(preprocess_ops.decode_and_center_crop(png, None), expected)
    jpeg = tf.io.encode_jpeg(image, quality=100)
    crop = preprocess_ops.decode_and_center_crop(jpeg, None).numpy()
    assert crop.shape == expected.shape
    assert crop.dtype == np.uint8
    # JPEG is lossy; the window is right if the coordinates are close.
    assert np.abs(crop[..., :2].astype(int) - expected[..., :2]).mean() < 2.0

    resized = preprocess_ops.decode_and_center_crop(jpeg, 16)
    assert resized.shape == (16, 16, 3)
    assert resized.dtype == tf.float32
    for encoded in (png, jpeg):
        graph = _in_dataset(lambda b: preprocess_ops.decode_and_center_crop(b, (20, 24)), encoded)
        assert graph.shape == (20, 24, 3)
        assert graph.dtype == np.float32


def test_decode_and_random_crop_png_and_jpeg():
    image = _coordinate_image(48, 64)
    png = tf.io.encode_png(image)
    for seed in range(1, 11):
        crop = preprocess_ops.decode_and_random_crop(png, area_range=(0.2, 0.6), seed=seed)
        crop = crop.numpy()
        crop_h, crop_w, _ = crop.shape
        assert 0.2 <= crop_h * crop_w / (48 * 64) <= 0.6
        top, left = int(crop[0, 0, 0]), int(crop[0, 0, 1])
        np.testing.assert_array_equal(crop, image[top : top + crop_h, left : left + crop_w])
    jpeg = tf.io.encode_jpeg(image)
    crop = preprocess_ops.decode_and_random_crop(jpeg, area_range=(0.2, 0.6), seed=5)
    assert crop.dtype == tf.uint8
    assert 0.2 <= crop.shape[0] * crop.shape[1] / (48 * 64) <= 0.6
    for encoded in (png, jpeg):
        graph = _in_dataset(lambda b: preprocess_ops.decode_and_random_crop(b, 24), encoded)
        assert graph.shape == (24, 24, 3)
        assert graph.dtype == np.float32


# ----------------------------------------------------------------------------------------------
# Aspect-preserving resize.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "target", "scaled", "scale"),
    [((20, 40), 32, (16, 32), 0.8), ((40, 20), (32, 48), (32, 16), 0.8), ((8, 8), 32, (32, 32), 4)],
)
def test_resize_image_with_aspect_ratio_sizes_and_image_info(size, target, scaled, scale):
    image = tf.ones(size + (3,))
    out, info = preprocess_ops.resize_image_with_aspect_ratio(image, target)
    target = (target, target) if isinstance(target, int) else target
    assert out.shape == target + (3,)
    assert out.dtype == tf.float32
    out = out.numpy()
    np.testing.assert_allclose(out[: scaled[0], : scaled[1]], 1.0)
    assert not out[scaled[0] :].any()
    assert not out[:, scaled[1] :].any()
    np.testing.assert_allclose(info, [size, target, [scale, scale], [0, 0]])

    graph, graph_info = _in_dataset(
        lambda x: preprocess_ops.resize_image_with_aspect_ratio(x, target), image
    )
    np.testing.assert_allclose(graph, out)
    np.testing.assert_allclose(graph_info, info)


def test_resize_and_crop_image_with_scale_jitter_crops_the_scaled_image():
    image = tf.constant(_random_image(30, 40).astype(np.float32))
    for seed in range(1, 6):
        out, info = preprocess_ops.resize_and_crop_image(
            image, (24, 32), (32, 32), aug_scale_min=1.2, aug_scale_max=1.5, seed=seed
        )
        assert out.shape == (32, 32, 3)
        info = info.numpy()
        scaled = np.round(info[0] * info[2])
        assert np.all(scaled >= [24, 32])
        assert np.all(info[3] <= scaled - [24, 32])
        assert not out.numpy()[24:].any()  # Only the desired window is kept, then padded.


# ----------------------------------------------------------------------------------------------
# Flips.
# ----------------------------------------------------------------------------------------------


def test_horizontal_flip_boxes():
    boxes = tf.constant([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 0.25]])
    np.testing.assert_allclose(
        preprocess_ops.horizontal_flip_boxes(boxes), [[0.1, 0.4, 0.5, 0.8], [0.0, 0.75, 1.0, 1.0]]
    )


def test_random_horizontal_flip_always_and_never():
    image = tf.constant(_random_image(32, 32))
    boxes = tf.constant([[0.1, 0.2, 0.5, 0.6]])
    masks = tf.constant(np.random.default_rng(1).integers(0, 2, (2, 32, 32)), tf.uint8)
    flipped, flipped_boxes, flipped_masks = preprocess_ops.random_horizontal_flip(
        image, boxes, masks, prob=1.0
    )
    np.testing.assert_array_equal(flipped, image.numpy()[:, ::-1])
    np.testing.assert_allclose(flipped_boxes, [[0.1, 0.4, 0.5, 0.8]])
    np.testing.assert_array_equal(flipped_masks, masks.numpy()[:, :, ::-1])
    same, same_boxes, same_masks = preprocess_ops.random_horizontal_flip(image, prob=0.0)
    np.testing.assert_array_equal(same, image)
    assert same_boxes is None
    assert same_masks is None


def test_random_horizontal_flip_keeps_image_boxes_and_masks_consistent_in_dataset():
    # A bright box: after any flip, the bright pixels must lie inside the returned box.
    image = np.zeros((32, 32, 3), np.uint8)
    image[4:12, 2:10] = 255
    boxes = np.array([[4 / 32, 2 / 32, 12 / 32, 10 / 32]], np.float32)
    masks = (image[None, :, :, 0] > 0).astype(np.uint8)
    dataset = tf.data.Dataset.from_tensors((image, boxes, masks)).repeat(24)
    dataset = dataset.map(lambda i, b, m: preprocess_ops.random_horizontal_flip(i, b, m))
    outcomes = set()
    for out_image, out_boxes, out_masks in dataset.as_numpy_iterator():
        ys, xs = np.nonzero(out_image[..., 0])
        ymin, xmin, ymax, xmax = out_boxes[0] * 32
        assert ys.min() == ymin
        assert ys.max() + 1 == ymax
        assert xs.min() == xmin
        assert xs.max() + 1 == xmax
        np.testing.assert_array_equal(out_masks[0], out_image[..., 0] > 0)
        outcomes.add(bool(xmin > 16))
    assert outcomes == {True, False}


# ----------------------------------------------------------------------------------------------
# color_jitter and label_smoothing.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("random_order", [False, True])
def test_color_jitter_keeps_shape_and_dtype(random_order):
    image = tf.constant(_random_image())
    out = preprocess_ops.color_jitter(image, 0.4, 0.4, 0.4, seed=1, random_order=random_order)
    assert out.dtype == tf.uint8
    assert out.shape == (32, 32, 3)
    assert np.any(out.numpy() != image.numpy())
    graph = _in_dataset(
        lambda x: preprocess_ops.color_jitter(x, 0.4, 0.4, 0.4, random_order=random_order), image
    )
    assert graph.dtype == np.uint8
    assert graph.shape == (32, 32, 3)
    float_out = preprocess_ops.color_jitter(tf.cast(image, tf.float32), 0.4, 0.0, 0.4)
    assert float_out.dtype == tf.float32


def test_color_jitter_zero_magnitudes_are_identity_and_negative_raises():
    image = tf.constant(_random_image())
    np.testing.assert_array_equal(preprocess_ops.color_jitter(image, 0.0, 0.0, 0.0), image)
    with pytest.raises(ValueError, match="contrast"):
        preprocess_ops.color_jitter(image, 0.1, -0.1, 0.0)


def test_label_smoothing():
    labels = tf.one_hot([0, 3], 4)
    smoothed = preprocess_ops.label_smoothing(labels, 0.2).numpy()
    np.testing.assert_allclose(smoothed[0], [0.85, 0.05, 0.05, 0.05], rtol=1e-6)
    np.testing.assert_allclose(smoothed.sum(-1), 1.0, rtol=1e-6)
    graph = _in_dataset(lambda x: preprocess_ops.label_smoothing(x, 0.2), labels)
    np.testing.assert_allclose(graph, smoothed)
