"""MaskSampler: foreground ROIs first, and ground-truth masks cropped into them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_vision.modeling.layers.mask_sampler import MaskSampler


def _bilinear(grid, y, x):
    height, width = grid.shape
    y0 = min(max(int(np.floor(y)), 0), height - 1)
    x0 = min(max(int(np.floor(x)), 0), width - 1)
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    ly, lx = y - y0, x - x0
    top = (1 - lx) * grid[y0, x0] + lx * grid[y0, x1]
    return (1 - ly) * top + ly * ((1 - lx) * grid[y1, x0] + lx * grid[y1, x1])


def numpy_mask_target(mask, box, roi, size):
    """The mask (covering `box`, zero padded) sampled at the bin centres of `roi`."""
    padded = np.pad(mask.astype(np.float64), 2)
    scale_y = mask.shape[0] / (box[2] - box[0])
    scale_x = mask.shape[1] / (box[3] - box[1])
    ys = (roi[0] - box[0] + (np.arange(size) + 0.5) * (roi[2] - roi[0]) / size) * scale_y + 2
    xs = (roi[1] - box[1] + (np.arange(size) + 0.5) * (roi[3] - roi[1]) / size) * scale_x + 2
    return np.array([[_bilinear(padded, y, x) for x in xs] for y in ys])


def test_foreground_first_with_their_ground_truth_masks():
    rng = np.random.default_rng(0)
    gt_masks = rng.uniform(size=(1, 3, 8, 8)).astype(np.float32)
    gt_boxes = np.array([[4, 4, 20, 20], [30, 10, 46, 42], [0, 0, 8, 8]], np.float32)
    # Candidates 0 and 3 are background; 1, 2 and 4 matched gt 2, 0 and 1.
    indices = np.array([[-1, 2, 0, -1, 1]], np.int32)
    classes = np.array([[0, 7, 3, 0, 5]], np.int32)
    matched = np.where(indices[..., None] >= 0, gt_boxes[indices[0]], 0.0)
    rois = matched + rng.uniform(-2, 2, matched.shape).astype(np.float32)
    sampler = MaskSampler(mask_target_size=6, num_sampled_masks=4)
    fg_rois, fg_classes, targets = sampler(rois, matched, classes, indices, gt_masks)
    assert targets.shape == (1, 4, 6, 6)
    assert targets.dtype == tf.float32
    # Foreground in candidate order, then the first background candidate.
    np.testing.assert_array_equal(fg_classes[0], [7, 3, 5, 0])
    np.testing.assert_array_equal(fg_rois[0], rois[0, [1, 2, 4, 0]])
    for slot, (candidate, gt) in enumerate([(1, 2), (2, 0), (4, 1)]):
        expected = numpy_mask_target(gt_masks[0, gt], gt_boxes[gt], rois[0, candidate], 6)
        np.testing.assert_allclose(targets[0, slot].numpy(), expected, atol=1e-5)


def test_serialization_graph_mode_and_errors():
    sampler = MaskSampler(mask_target_size=4, num_sampled_masks=2, name="masks")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(sampler))
    assert isinstance(clone, MaskSampler)
    assert clone.get_config() == sampler.get_config()
    specs = [
        tf.TensorSpec([None, None, 4]),
        tf.TensorSpec([None, None, 4]),
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None, None, 5, 5]),
    ]
    graph = tf.function(lambda *args: clone(*args), input_signature=specs)
    boxes = np.tile(np.array([[[0, 0, 5, 5]]], np.float32), [3, 3, 1])
    rois, classes, targets = graph(
        boxes, boxes, np.ones((3, 3), np.int32), np.zeros((3, 3), np.int32), np.ones((3, 1, 5, 5))
    )
    assert targets.shape == (3, 2, 4, 4)
    # A roi equal to its box, on a mask of ones: ones except the half-zero border bins.
    np.testing.assert_allclose(targets[0, 0, 1:3, 1:3].numpy(), 1.0)
    with pytest.raises(ValueError, match="num_sampled_masks=4"):
        MaskSampler(2, 4)(boxes, boxes, np.ones((3, 3), np.int32), np.zeros((3, 3), np.int32),
                          np.ones((3, 1, 5, 5), np.float32))  # fmt: skip
    with pytest.raises(ValueError, match="mask_target_size"):
        MaskSampler(0, 4)
