"""Tests of the detection preprocessing ops: padding sizes, box and mask resizing, flips."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.dataloaders import utils
from garden_vision.ops import preprocess_ops


def _rectangle_image(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A black image with a white rectangle on rows box[0]:box[2] and columns box[1]:box[3]."""
    image = np.zeros([height, width, 3], np.uint8)
    image[box[0] : box[2], box[1] : box[3]] = 255
    return image


def _bright_extent(image: np.ndarray) -> np.ndarray:
    """`[top, left, bottom, right]` (exclusive) of the pixels brighter than half."""
    rows, cols = np.nonzero(image[..., 0] > 127)
    return np.array([rows.min(), cols.min(), rows.max() + 1, cols.max() + 1], np.float32)


def test_compute_padded_size():
    # Model Garden's documented example.
    assert preprocess_ops.compute_padded_size([100, 200], 32) == [128, 224]
    assert preprocess_ops.compute_padded_size([640, 640], 128) == [640, 640]
    assert preprocess_ops.compute_padded_size(96, 64) == [128, 128]
    tensor = preprocess_ops.compute_padded_size(tf.constant([100, 200]), 32)
    np.testing.assert_array_equal(tensor.numpy(), [128, 224])


def test_clip_or_pad_to_fixed_size():
    values = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    padded = preprocess_ops.clip_or_pad_to_fixed_size(values, 5, -1)
    np.testing.assert_array_equal(padded.numpy(), [[1, 2], [3, 4], [5, 6], [-1, -1], [-1, -1]])
    assert padded.shape == (5, 2)
    clipped = preprocess_ops.clip_or_pad_to_fixed_size(values, 2)
    np.testing.assert_array_equal(clipped.numpy(), [[1, 2], [3, 4]])
    empty = preprocess_ops.clip_or_pad_to_fixed_size(tf.zeros([0], tf.int64), 3, 7)
    np.testing.assert_array_equal(empty.numpy(), [7, 7, 7])


def test_resize_and_crop_boxes_by_hand():
    # Scale y by 0.5 and x by 2, then cut 10 rows off the top; clip to 20 x 20.
    boxes = tf.constant([[40.0, 2.0, 60.0, 8.0], [0.0, 0.0, 10.0, 20.0]])
    out = preprocess_ops.resize_and_crop_boxes(
        boxes, tf.constant([0.5, 2.0]), [20, 20], tf.constant([10.0, 0.0])
    )
    np.testing.assert_allclose(out.numpy(), [[10, 4, 20, 16], [0, 0, 0, 20]])


def test_resize_and_crop_masks_by_hand():
    mask = np.zeros([1, 4, 4, 1], np.float32)
    mask[0, 1, 2, 0] = 1.0
    out = preprocess_ops.resize_and_crop_masks(
        tf.constant(mask), tf.constant([2.0, 2.0]), [6, 10], tf.constant([2.0, 0.0])
    )
    # Upscaled 2x the pixel covers rows 2-3 and columns 4-5; the crop drops 2 rows; the
    # output is padded to 10 columns.
    expected = np.zeros([1, 6, 10, 1], np.float32)
    expected[0, 0:2, 4:6, 0] = 1.0
    np.testing.assert_array_equal(out.numpy(), expected)
    none = preprocess_ops.resize_and_crop_masks(
        tf.zeros([0, 4, 4, 1]), tf.constant([2.0, 2.0]), [6, 10], tf.constant([0.0, 0.0])
    )
    assert none.shape == (0, 6, 10, 1)


@pytest.mark.parametrize(("scale_min", "scale_max"), [(1.0, 1.0), (0.5, 2.0)])
def test_boxes_follow_the_image_through_resize_and_crop(scale_min, scale_max):
    tf.random.set_seed(3)
    box = (12, 20, 30, 44)
    image = _rectangle_image(40, 60, box)
    checked = 0
    for _ in range(6):
        out, info = preprocess_ops.resize_and_crop_image(
            tf.constant(image), [32, 32], [64, 64], scale_min, scale_max
        )
        assert out.shape == (64, 64, 3)
        moved = preprocess_ops.resize_and_crop_boxes(
            tf.constant([box], tf.float32), info[2], info[1], info[3]
        )
        moved = moved.numpy()[0]
        if moved[2] - moved[0] < 2 or moved[3] - moved[1] < 2:
            continue  # The crop kept (almost) none of the rectangle.
        np.testing.assert_allclose(moved, _bright_extent(out.numpy()), atol=1.01)
        checked += 1
    assert checked >= 2


def test_random_horizontal_flip_moves_image_boxes_and_masks_together():
    image = _rectangle_image(4, 10, (1, 0, 3, 3))
    boxes = tf.constant([[0.25, 0.0, 0.75, 0.3]])
    masks = tf.constant(image[None, :, :, 0])
    flipped, flipped_boxes, flipped_masks = preprocess_ops.random_horizontal_flip(
        tf.constant(image), boxes, masks, prob=1.0
    )
    np.testing.assert_allclose(flipped_boxes.numpy(), [[0.25, 0.7, 0.75, 1.0]], atol=1e-6)
    np.testing.assert_array_equal(flipped.numpy(), image[:, ::-1])
    np.testing.assert_array_equal(flipped_masks.numpy(), image[None, :, ::-1, 0])
    same, same_boxes, _ = preprocess_ops.random_horizontal_flip(tf.constant(image), boxes, prob=0.0)
    np.testing.assert_array_equal(same.numpy(), image)
    np.testing.assert_allclose(same_boxes.numpy(), boxes.numpy())


def test_process_source_id():
    assert int(utils.process_source_id(tf.constant("139"))) == 139
    assert int(utils.process_source_id(tf.constant(""))) == -1
    assert int(utils.process_source_id(tf.constant(7, tf.int32))) == 7
    with pytest.raises(tf.errors.InvalidArgumentError):
        utils.process_source_id(tf.constant("not-a-number"))


def test_pad_groundtruths_to_fixed_size():
    groundtruths = {
        "boxes": tf.constant([[1.0, 2.0, 3.0, 4.0]]),
        "classes": tf.constant([5]),
        "areas": tf.constant([4.0]),
        "is_crowds": tf.constant([1]),
        "source_id": tf.constant(3),
        "attributes": {"depth": tf.constant([[9]])},
    }
    padded = utils.pad_groundtruths_to_fixed_size(groundtruths, 3)
    np.testing.assert_array_equal(padded["boxes"].numpy(), [[1, 2, 3, 4]] + [[-1] * 4] * 2)
    np.testing.assert_array_equal(padded["classes"].numpy(), [5, -1, -1])
    np.testing.assert_array_equal(padded["areas"].numpy(), [4, -1, -1])
    np.testing.assert_array_equal(padded["is_crowds"].numpy(), [1, 0, 0])
    np.testing.assert_array_equal(padded["attributes"]["depth"].numpy(), [[9], [-1], [-1]])
    assert int(padded["source_id"]) == 3
