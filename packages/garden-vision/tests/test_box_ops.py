"""Box ops: format conversions, scaling, clipping, coding, filtering, IoU/GIoU and matching.

Expected values are worked out by hand in the comments or computed by NumPy references
written here.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.ops import box_ops


def _numpy_iou(boxes, gt_boxes):
    """Pairwise IoU of [N, 4] and [M, 4] yxyx boxes, straight from the definition."""
    out = np.zeros((len(boxes), len(gt_boxes)))
    for i, (y0, x0, y1, x1) in enumerate(boxes):
        for j, (g0, h0, g1, h1) in enumerate(gt_boxes):
            inter = max(0.0, min(y1, g1) - max(y0, g0)) * max(0.0, min(x1, h1) - max(x0, h0))
            union = (y1 - y0) * (x1 - x0) + (g1 - g0) * (h1 - h0) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def _numpy_giou(boxes, gt_boxes):
    out = _numpy_iou(boxes, gt_boxes)
    for i, (y0, x0, y1, x1) in enumerate(boxes):
        for j, (g0, h0, g1, h1) in enumerate(gt_boxes):
            inter = max(0.0, min(y1, g1) - max(y0, g0)) * max(0.0, min(x1, h1) - max(x0, h0))
            union = (y1 - y0) * (x1 - x0) + (g1 - g0) * (h1 - h0) - inter
            hull = (max(y1, g1) - min(y0, g0)) * (max(x1, h1) - min(x0, h0))
            out[i, j] -= (hull - union) / hull
    return out


def _random_boxes(rng, n, size=100.0):
    corners = rng.uniform(0, size, (n, 2, 2))
    low, high = corners.min(axis=1), corners.max(axis=1) + 1.0
    return np.concatenate([low, high], axis=-1).astype(np.float32)


def test_xywh_conversions_numpy_and_tensor():
    yxyx = np.array([[10.0, 20.0, 50.0, 80.0]], np.float32)
    xywh = np.array([[20.0, 10.0, 60.0, 40.0]], np.float32)  # x, y, width, height.
    converted = box_ops.yxyx_to_xywh(yxyx)
    assert isinstance(converted, np.ndarray)
    np.testing.assert_allclose(converted, xywh)
    np.testing.assert_allclose(box_ops.xywh_to_yxyx(xywh), yxyx)
    np.testing.assert_allclose(box_ops.yxyx_to_xywh(tf.constant(yxyx)).numpy(), xywh)
    np.testing.assert_allclose(box_ops.xywh_to_yxyx(tf.constant(xywh)).numpy(), yxyx)
    with pytest.raises(ValueError, match="4 coordinates"):
        box_ops.yxyx_to_xywh(np.zeros((2, 3)))


def test_center_size_round_trip():
    yxyx = tf.constant([[10.0, 20.0, 50.0, 80.0], [0.0, 0.0, 2.0, 4.0]])
    centers = box_ops.yxyx_to_cycxhw(yxyx)
    np.testing.assert_allclose(centers, [[30.0, 50.0, 40.0, 60.0], [1.0, 2.0, 2.0, 4.0]])
    np.testing.assert_allclose(box_ops.cycxhw_to_yxyx(centers), yxyx)
    with pytest.raises(ValueError, match="shape"):
        box_ops.yxyx_to_cycxhw(tf.zeros([2, 5]))


def test_normalize_denormalize_and_clip():
    boxes = tf.constant([[[-10.0, 20.0, 50.0, 250.0]], [[10.0, 10.0, 400.0, 30.0]]])
    normalized = box_ops.normalize_boxes(boxes, [100, 200])
    np.testing.assert_allclose(
        normalized, [[[-0.1, 0.1, 0.5, 1.25]], [[0.1, 0.05, 4.0, 0.15]]], rtol=1e-6
    )
    np.testing.assert_allclose(box_ops.denormalize_boxes(normalized, [100, 200]), boxes, rtol=1e-6)
    # Per-image sizes, as a [batch, 1, 2] tensor.
    sizes = tf.constant([[[100.0, 200.0]], [[400.0, 20.0]]])
    np.testing.assert_allclose(
        box_ops.normalize_boxes(boxes, sizes),
        [[[-0.1, 0.1, 0.5, 1.25]], [[0.025, 0.5, 1.0, 1.5]]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        box_ops.clip_boxes(boxes, sizes),
        [[[0.0, 20.0, 50.0, 200.0]], [[10.0, 10.0, 400.0, 20.0]]],
    )
    np.testing.assert_allclose(
        box_ops.clip_boxes(boxes, [100, 200]),
        [[[0.0, 20.0, 50.0, 200.0]], [[10.0, 10.0, 100.0, 30.0]]],
    )


def test_flips():
    boxes = tf.constant([[0.1, 0.2, 0.5, 0.6]])
    np.testing.assert_allclose(box_ops.horizontal_flip_boxes(boxes), [[0.1, 0.4, 0.5, 0.8]])
    np.testing.assert_allclose(box_ops.vertical_flip_boxes(boxes), [[0.5, 0.2, 0.9, 0.6]])


def test_encode_decode_hand_computed_and_round_trip():
    anchors = tf.constant([[0.0, 0.0, 10.0, 20.0]])  # center (5, 10), 10 x 20.
    boxes = tf.constant([[2.0, 4.0, 22.0, 24.0]])  # center (12, 14), 20 x 20.
    expected = [[(12 - 5) / 10, (14 - 10) / 20, math.log(20 / 10), math.log(20 / 20)]]
    np.testing.assert_allclose(box_ops.encode_boxes(boxes, anchors), expected, rtol=1e-6)
    weighted = box_ops.encode_boxes(boxes, anchors, weights=[10.0, 10.0, 5.0, 5.0])
    np.testing.assert_allclose(weighted, np.array(expected) * [10.0, 10.0, 5.0, 5.0], rtol=1e-6)
    np.testing.assert_allclose(
        box_ops.decode_boxes(weighted, anchors, weights=[10.0, 10.0, 5.0, 5.0]), boxes, rtol=1e-5
    )

    rng = np.random.default_rng(0)
    many_boxes, many_anchors = _random_boxes(rng, 50), _random_boxes(rng, 50)
    encoded = box_ops.encode_boxes(many_boxes, tf.constant(many_anchors))
    np.testing.assert_allclose(
        box_ops.decode_boxes(encoded, tf.constant(many_anchors)), many_boxes, rtol=1e-4, atol=1e-3
    )


def test_decode_caps_size_change():
    anchors = tf.constant([[0.0, 0.0, 16.0, 16.0]])
    decoded = box_ops.decode_boxes(tf.constant([[0.0, 0.0, 50.0, 50.0]]), anchors)
    # exp(log(1000 / 16)) * 16 = 1000 pixels around the center (8, 8).
    np.testing.assert_allclose(decoded, [[-492.0, -492.0, 508.0, 508.0]], rtol=1e-5)
    with pytest.raises(ValueError, match="4 positive"):
        box_ops.decode_boxes(tf.zeros([1, 4]), anchors, weights=[1.0, 1.0, 0.0, 1.0])


def test_filter_boxes_and_by_scores():
    boxes = tf.constant(
        [
            [10.0, 10.0, 30.0, 30.0],  # Kept.
            [10.0, 10.0, 11.0, 30.0],  # Height 1 <= min size 2.
            [90.0, 90.0, 130.0, 130.0],  # Center (110, 110) outside the 100 x 100 image.
        ]
    )
    scores = tf.constant([0.9, 0.8, 0.7])
    kept_boxes, kept_scores = box_ops.filter_boxes(boxes, scores, [100, 100], 2.0)
    np.testing.assert_allclose(kept_scores, [0.9, 0.0, 0.0])
    np.testing.assert_allclose(kept_boxes[0], boxes[0])
    np.testing.assert_allclose(kept_boxes[1:], 0.0)

    kept_boxes, kept_scores = box_ops.filter_boxes_by_scores(boxes, scores, 0.75)
    np.testing.assert_allclose(kept_scores, [0.9, 0.8, -1.0])
    np.testing.assert_allclose(kept_boxes[2], 0.0)


def test_non_empty_indices_top_k_and_gather():
    boxes = tf.constant([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0], [2.0, 2.0, 3.0, 5.0]])
    np.testing.assert_array_equal(box_ops.get_non_empty_box_indices(boxes), [0, 2])
    top_boxes, top_scores = box_ops.top_k_boxes(boxes[None], tf.constant([[0.2, 0.9, 0.5]]), 2)
    np.testing.assert_allclose(top_scores, [[0.9, 0.5]])
    np.testing.assert_allclose(top_boxes, [[boxes[1], boxes[2]]])


def test_bbox_overlap_matches_numpy_and_masks_padding():
    rng = np.random.default_rng(1)
    boxes, gt = _random_boxes(rng, 7), _random_boxes(rng, 5)
    gt[1] = gt[0] + [5.0, 5.0, 5.0, 5.0]  # Force some overlap.
    iou = box_ops.bbox_overlap(boxes[None], gt[None])[0].numpy()
    np.testing.assert_allclose(iou, _numpy_iou(boxes, gt), rtol=1e-5, atol=1e-6)
    # Unbatched inputs give an unbatched matrix.
    np.testing.assert_allclose(box_ops.bbox_overlap(boxes, gt), iou, rtol=1e-6)

    padded_gt = np.concatenate([gt, -np.ones((2, 4), np.float32)])
    padded = box_ops.bbox_overlap(boxes[None], padded_gt[None])[0].numpy()
    np.testing.assert_allclose(padded[:, :5], iou, rtol=1e-6)
    np.testing.assert_array_equal(padded[:, 5:], -1.0)
    # Hand case: two unit-offset 2x2 squares share 1 of 7 units of area.
    np.testing.assert_allclose(
        box_ops.bbox_overlap(
            tf.constant([[0.0, 0.0, 2.0, 2.0]]), tf.constant([[1.0, 1.0, 3.0, 3.0]])
        ),
        [[1.0 / 7.0]],
        rtol=1e-6,
    )


def test_generalized_overlap_matches_numpy():
    rng = np.random.default_rng(2)
    boxes, gt = _random_boxes(rng, 6), _random_boxes(rng, 4)
    giou = box_ops.bbox_generalized_overlap(boxes[None], gt[None])[0].numpy()
    np.testing.assert_allclose(giou, _numpy_giou(boxes, gt), rtol=1e-5, atol=1e-6)
    assert box_ops.giou is box_ops.bbox_generalized_overlap
    # Hand case: disjoint 1x1 squares 1 apart: IoU 0, hull 3, union 2: GIoU = -1/3.
    np.testing.assert_allclose(
        box_ops.giou(tf.constant([[0.0, 0.0, 1.0, 1.0]]), tf.constant([[0.0, 2.0, 1.0, 3.0]])),
        [[-1.0 / 3.0]],
        rtol=1e-5,
    )
    padded = box_ops.bbox_generalized_overlap(boxes[None], -np.ones((1, 2, 4), np.float32))
    np.testing.assert_array_equal(padded, -1.0)


def test_intersection_over_area():
    ioa = box_ops.bbox_intersection_over_area(
        tf.constant([[0.0, 0.0, 2.0, 2.0]]), tf.constant([[1.0, 1.0, 3.0, 3.0], [-1.0] * 4])
    )
    np.testing.assert_allclose(ioa, [[0.25, -1.0]])


def test_box_matching_hand_computed():
    boxes = tf.constant(
        [[[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 20.0], [50.0, 50.0, 60.0, 60.0]]]
    )
    gt_boxes = tf.constant([[[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 10.0, 10.0], [-1.0] * 4]])
    gt_classes = tf.constant([[3, 7, -1]])
    matched_boxes, matched_classes, indices, matched_iou, iou = box_ops.box_matching(
        boxes, gt_boxes, gt_classes
    )
    np.testing.assert_array_equal(indices, [[1, 0, -1]])
    np.testing.assert_array_equal(matched_classes, [[7, 3, 0]])
    np.testing.assert_allclose(matched_iou, [[1.0, 1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(matched_boxes[0, 2], 0.0)
    np.testing.assert_allclose(matched_boxes[0, 0], [0.0, 0.0, 10.0, 10.0])
    assert iou.shape == (1, 3, 3)
    np.testing.assert_allclose(iou[0, :, 2], -1.0)


def test_outer_boxes_and_jitter():
    boxes = tf.constant([[10.0, 10.0, 20.0, 30.0]])
    np.testing.assert_allclose(
        box_ops.compute_outer_boxes(boxes, [100, 100], scale=2.0), [[5.0, 0.0, 25.0, 40.0]]
    )
    np.testing.assert_allclose(
        box_ops.compute_outer_boxes(boxes, [22, 100], scale=2.0), [[5.0, 0.0, 22.0, 40.0]]
    )
    with pytest.raises(ValueError, match="at least 1"):
        box_ops.compute_outer_boxes(boxes, [100, 100], scale=0.5)
    many = tf.tile(boxes, [2000, 1])
    jittered = box_ops.jitter_boxes(many, noise_scale=0.05, seed=3).numpy()
    centers = box_ops.yxyx_to_cycxhw(jittered).numpy()
    # Center y moves by N(0, 0.05) * height 10: standard deviation 0.5 pixels.
    assert abs(centers[:, 0].mean() - 15.0) < 0.05
    assert abs(centers[:, 0].std() - 0.5) < 0.05
    assert abs(np.log(centers[:, 3] / 20.0).std() - 0.05) < 0.005
