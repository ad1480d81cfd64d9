"""Tests of the box-aware augmentation ops and AutoAugment's `detection_v0` policy.

Expected boxes come from the pixels: a white rectangle is drawn where a box is, the op is
applied, and the moved box must be the extent of the white pixels (to a pixel or so).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.ops import augment

# Zoph et al., 2019, "Learning Data Augmentation Strategies for Object Detection", policy v0
# (the paper's appendix / its reference TPU code): (op, probability, level).
PAPER_POLICY_V0 = [
    [("TranslateX_BBox", 0.6, 4), ("Equalize", 0.8, 10)],
    [("TranslateY_Only_BBoxes", 0.2, 2), ("Cutout", 0.8, 8)],
    [("Sharpness", 0.0, 8), ("ShearX_BBox", 0.4, 0)],
    [("ShearY_BBox", 1.0, 2), ("TranslateY_Only_BBoxes", 0.6, 6)],
    [("Rotate_BBox", 0.6, 10), ("Color", 1.0, 6)],
]


def _rectangle(size: int = 40, box=(10, 12, 22, 30)) -> tuple[np.ndarray, np.ndarray]:
    """A black square image with a white rectangle, and the rectangle's normalized box."""
    image = np.zeros([size, size, 3], np.uint8)
    image[box[0] : box[2], box[1] : box[3]] = 255
    return image, np.array([box], np.float32) / size


def _white_extent(image: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(np.all(image == 255, axis=-1))
    size = image.shape[0]
    return np.array([rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]) / size


def test_translate_bbox_by_hand():
    image, boxes = _rectangle()
    moved_image, moved = augment.translate_bbox(
        tf.constant(image), tf.constant(boxes), 5.0, replace=(0, 0, 0), shift_horizontal=True
    )
    # The content moves 5 pixels left: columns 12-30 become 7-25.
    np.testing.assert_allclose(moved.numpy(), [[10 / 40, 7 / 40, 22 / 40, 25 / 40]], atol=1e-6)
    np.testing.assert_allclose(_white_extent(moved_image.numpy()), moved.numpy()[0], atol=1e-6)
    _, down = augment.translate_bbox(
        tf.constant(image), tf.constant(boxes), -4.0, shift_horizontal=False
    )
    np.testing.assert_allclose(down.numpy(), [[14 / 40, 12 / 40, 26 / 40, 30 / 40]], atol=1e-6)


def test_translated_out_of_the_image_box_keeps_no_area():
    image, boxes = _rectangle()
    _, moved = augment.translate_bbox(tf.constant(image), tf.constant(boxes), 35.0)
    ymin, xmin, ymax, xmax = moved.numpy()[0]
    assert (xmax - xmin) == 0.0
    assert 0.0 <= xmin <= 1.0


@pytest.mark.parametrize("degrees", [90.0, -90.0, 30.0, -17.0])
def test_rotate_with_bboxes_matches_the_pixels(degrees):
    image, boxes = _rectangle()
    rotated, moved = augment.rotate_with_bboxes(
        tf.constant(image), tf.constant(boxes), degrees, replace=(0, 0, 0)
    )
    # Nearest-neighbour sampling moves edges by up to about a pixel.
    np.testing.assert_allclose(_white_extent(rotated.numpy()), moved.numpy()[0], atol=1.6 / 40)


def test_rotate_by_90_degrees_by_hand():
    # A quarter turn of a 40 x 40 image maps the box rows 10-22 / columns 12-30 to rows and
    # columns swapped about the center: one of the two quarter-turn images of the box.
    image, boxes = _rectangle()
    _, moved = augment.rotate_with_bboxes(tf.constant(image), tf.constant(boxes), 90.0)
    counterclockwise = np.array([40 - 30, 10, 40 - 12, 22]) / 40
    clockwise = np.array([12, 40 - 22, 30, 40 - 10]) / 40
    result = moved.numpy()[0]
    assert np.allclose(result, counterclockwise, atol=1e-5) or np.allclose(
        result, clockwise, atol=1e-5
    )


@pytest.mark.parametrize("horizontal", [True, False])
@pytest.mark.parametrize("level", [0.3, -0.2])
def test_shear_with_bboxes_matches_the_pixels(horizontal, level):
    image, boxes = _rectangle()
    sheared, moved = augment.shear_with_bboxes(
        tf.constant(image),
        tf.constant(boxes),
        level,
        replace=(0, 0, 0),
        shear_horizontal=horizontal,
    )
    np.testing.assert_allclose(_white_extent(sheared.numpy()), moved.numpy()[0], atol=1.6 / 40)


def test_shear_by_hand():
    # shear_x reads input (x + 0.5 y, y) in pixel indices, so the pixel at index (x, y) moves
    # to (x - 0.5 y, y); a box edge at u pixels is index u - 0.5. The lower-left corner
    # (x 12, y 22) and the upper-right one (x 30, y 10) bound the sheared box.
    image, boxes = _rectangle()
    _, moved = augment.shear_with_bboxes(tf.constant(image), tf.constant(boxes), 0.5)
    xmin = 12 - 0.5 * (22 - 0.5)
    xmax = 30 - 0.5 * (10 - 0.5)
    np.testing.assert_allclose(
        moved.numpy()[0], [10 / 40, xmin / 40, 22 / 40, xmax / 40], atol=1e-5
    )


def test_translate_y_only_bboxes_moves_box_content_only():
    image = np.full([20, 20, 3], 10, np.uint8)
    image[8, 4:12] = 200  # A stripe inside the box rows 4-12, columns 4-12.
    image[16, :] = 90  # A stripe outside it.
    boxes = np.array([[4 / 20, 4 / 20, 12 / 20, 12 / 20]], np.float32)
    # prob 3 makes the per-box probability (prob / 3) one.
    out, same_boxes = augment.translate_y_only_bboxes(
        tf.constant(image), tf.constant(boxes), 3.0, 2.0, replace=(0, 0, 0)
    )
    out = out.numpy()
    expected = image.copy()
    region = image[4:12, 4:12].copy()
    expected[4:12, 4:12] = 0
    expected[4:10, 4:12] = region[2:8]  # The content moves 2 rows up inside the box.
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(same_boxes.numpy(), boxes)


def test_translate_y_only_bboxes_without_boxes():
    image = np.full([8, 8, 3], 10, np.uint8)
    out, boxes = augment.translate_y_only_bboxes(tf.constant(image), tf.zeros([0, 4]), 3.0, 2.0)
    np.testing.assert_array_equal(out.numpy(), image)
    assert boxes.shape == (0, 4)


def test_detection_v0_is_the_papers_policy():
    policy = augment.AutoAugment("detection_v0").policies
    assert [[(n, p, lv) for n, p, lv in sub] for sub in policy] == [
        [(n, float(p), float(lv)) for n, p, lv in sub] for sub in PAPER_POLICY_V0
    ]


def test_level_to_argument_of_box_ops():
    # Level 4 of TranslateX_BBox with translate_const 250 is 100 pixels (either direction).
    image, boxes = _rectangle(size=400, box=(100, 150, 200, 250))
    _, moved = augment.apply_augmentation_op_with_boxes(
        tf.constant(image), tf.constant(boxes), "TranslateX_BBox", 4, translate_const=250
    )
    shift = (moved.numpy()[0, 1] - boxes[0, 1]) * 400
    assert abs(abs(shift) - 100.0) < 1e-3
    with pytest.raises(ValueError, match="apply_augmentation_op_with_boxes"):
        augment.apply_augmentation_op(tf.constant(image), "Rotate_BBox", 5)


def test_distort_with_boxes_keeps_boxes_consistent():
    tf.random.set_seed(0)
    augmenter = augment.AutoAugment("detection_v0")
    image, boxes = _rectangle()
    boxes = np.concatenate([boxes, [[0.0, 0.0, 0.1, 0.1]]]).astype(np.float32)
    for _ in range(6):
        out, moved = augmenter.distort_with_boxes(tf.constant(image), tf.constant(boxes))
        assert out.dtype == tf.uint8
        assert out.shape == image.shape
        assert moved.shape == (2, 4)
        moved = moved.numpy()
        assert np.all((moved >= 0.0) & (moved <= 1.0))
        assert np.all(moved[:, 2] >= moved[:, 0])
        assert np.all(moved[:, 3] >= moved[:, 1])


def test_distort_with_boxes_in_tf_data_and_float_images():
    augmenter = augment.AutoAugment("detection_v0")
    images = tf.zeros([3, 16, 16, 3], tf.float32) + 100.0
    boxes = tf.zeros([3, 0, 4])
    dataset = tf.data.Dataset.from_tensor_slices((images, boxes)).map(augmenter.distort_with_boxes)
    for out, moved in dataset:
        assert out.dtype == tf.float32
        assert out.shape == (16, 16, 3)
        assert moved.shape == (0, 4)
    # `distort` of a box-aware policy runs on an image alone.
    assert augmenter.distort(tf.zeros([16, 16, 3], tf.uint8)).shape == (16, 16, 3)
