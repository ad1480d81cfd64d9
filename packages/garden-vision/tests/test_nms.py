"""Fixed-shape NMS: greedy, sorted (Model Garden's interface), Soft-NMS and batched per class.

Every result is compared with NumPy implementations of the algorithms written here.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
from nms_reference import iou as _iou

from garden_vision.ops import box_ops, nms


def numpy_nms(boxes, scores, max_output, iou_threshold, score_threshold=-np.inf):
    """Greedy NMS: indices of the kept boxes in decreasing score order."""
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] <= score_threshold or len(kept) == max_output:
            continue
        if all(_iou(boxes[i], boxes[j]) <= iou_threshold for j in kept):
            kept.append(i)
    return kept


def numpy_soft_nms(boxes, scores, max_output, score_threshold, sigma):
    """Soft-NMS as TensorFlow defines it: scores decay by exp(-0.5 iou^2 / sigma)."""
    scores = scores.astype(np.float64).copy()
    alive = list(np.flatnonzero(scores > score_threshold))
    kept, kept_scores = [], []
    while alive and len(kept) < max_output:
        best = max(alive, key=lambda i: scores[i])
        alive.remove(best)
        kept.append(best)
        kept_scores.append(scores[best])
        for i in list(alive):
            iou = _iou(boxes[best], boxes[i])
            scores[i] *= math.exp(-0.5 * iou * iou / sigma)
            if scores[i] <= score_threshold:
                alive.remove(i)
    return kept, kept_scores


def _clustered_boxes(rng, n, size=100.0):
    """Boxes around a few centers, so that many overlap."""
    centers = rng.uniform(20, size - 20, (4, 2))[rng.integers(0, 4, n)]
    centers += rng.normal(0, 4, (n, 2))
    half = rng.uniform(5, 15, (n, 2))
    return np.concatenate([centers - half, centers + half], axis=-1).astype(np.float32)


def test_padded_nms_matches_numpy_over_batch_dimensions():
    rng = np.random.default_rng(0)
    boxes = np.stack([[_clustered_boxes(rng, 40) for _ in range(3)] for _ in range(2)])
    scores = rng.uniform(size=(2, 3, 40)).astype(np.float32)
    indices, num_valid = nms.non_max_suppression_padded(
        boxes, scores, max_output_size=8, iou_threshold=0.4, score_threshold=0.2
    )
    assert indices.shape == (2, 3, 8)
    assert num_valid.shape == (2, 3)
    assert indices.dtype == tf.int32
    for b in range(2):
        for c in range(3):
            expected = numpy_nms(boxes[b, c], scores[b, c], 8, 0.4, 0.2)
            assert num_valid[b, c] == len(expected)
            np.testing.assert_array_equal(indices[b, c, : len(expected)], expected)
            np.testing.assert_array_equal(indices[b, c, len(expected) :], 0)


def test_sorted_nms_skips_filtered_entries_and_pads_with_zeros():
    rng = np.random.default_rng(1)
    boxes = _clustered_boxes(rng, 30)[None]
    scores = np.sort(rng.uniform(size=(1, 30)).astype(np.float32))[:, ::-1].copy()
    filtered_boxes, filtered_scores = box_ops.filter_boxes_by_scores(boxes, scores, 0.3)
    nms_scores, nms_boxes = nms.sorted_non_max_suppression_padded(
        filtered_scores, filtered_boxes, max_output_size=12, iou_threshold=0.5
    )
    expected = numpy_nms(boxes[0], scores[0], 12, 0.5, score_threshold=0.3)
    count = len(expected)
    np.testing.assert_allclose(nms_scores[0, :count], scores[0, expected])
    np.testing.assert_allclose(nms_boxes[0, :count], boxes[0, expected])
    np.testing.assert_array_equal(nms_scores[0, count:], 0.0)
    np.testing.assert_array_equal(nms_boxes[0, count:], 0.0)


def test_hand_computed_suppression():
    boxes = tf.constant(
        [
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 1.0, 10.0, 11.0],
            [0.0, 5.0, 10.0, 15.0],
            [50.0] * 2 + [60.0] * 2,
        ]
    )
    # IoU(0, 1) = 90 / 110 = 0.82 (suppressed), IoU(0, 2) = 50 / 150 = 1/3 (kept at 0.5).
    indices, count = nms.non_max_suppression_padded(
        boxes, tf.constant([0.9, 0.8, 0.7, 0.1]), 4, iou_threshold=0.5
    )
    assert count == 3
    np.testing.assert_array_equal(indices, [0, 2, 3, 0])
    # Boxes with negative coordinates work too (IoU 81 / 119 = 0.68).
    shifted = tf.constant([[-30.0, -30.0, -20.0, -20.0], [-29.0, -29.0, -19.0, -19.0]])
    _, count = nms.non_max_suppression_padded(shifted, tf.constant([0.9, 0.8]), 2, 0.5)
    assert count == 1
    _, count = nms.non_max_suppression_padded(shifted, tf.constant([0.9, 0.8]), 2, 0.9)
    assert count == 2
    with pytest.raises(ValueError, match="num_boxes, 4"):
        nms.non_max_suppression_padded(tf.zeros([3, 5]), tf.zeros([3]), 2)


def test_soft_nms_matches_numpy():
    rng = np.random.default_rng(2)
    boxes = np.stack([_clustered_boxes(rng, 25) for _ in range(2)])
    scores = rng.uniform(size=(2, 25)).astype(np.float32)
    indices, kept_scores, counts = nms.soft_non_max_suppression_padded(
        boxes, scores, 10, iou_threshold=0.6, score_threshold=0.05, soft_nms_sigma=0.5
    )
    assert indices.shape == (2, 10)
    assert counts.shape == (2,)
    for b in range(2):
        expected, expected_scores = numpy_soft_nms(boxes[b], scores[b], 10, 0.05, 0.5)
        assert counts[b] == len(expected)
        np.testing.assert_array_equal(indices[b, : len(expected)], expected)
        np.testing.assert_allclose(kept_scores[b, : len(expected)], expected_scores, rtol=1e-4)
    # Decayed scores are lower than the originals for boxes that overlapped a kept one.
    assert np.any(kept_scores[0, : counts[0]] < scores[0, indices[0, : counts[0]]] - 1e-3)


def test_batched_nms_matches_per_class_numpy():
    rng = np.random.default_rng(3)
    boxes = np.stack([_clustered_boxes(rng, 30) for _ in range(2)])
    scores = rng.uniform(size=(2, 30, 3)).astype(np.float32)
    out_boxes, out_scores, out_classes, num_valid = nms.batched_non_max_suppression(
        boxes[:, :, None], scores, 5, 9, iou_threshold=0.5, score_threshold=0.3
    )
    assert out_classes.dtype == tf.int32
    for b in range(2):
        candidates = []
        for c in range(3):
            for i in numpy_nms(boxes[b], scores[b, :, c], 5, 0.5, 0.3):
                candidates.append((scores[b, i, c], c, i))
        candidates = sorted(candidates, reverse=True)[:9]
        assert num_valid[b] == len(candidates)
        np.testing.assert_allclose(out_scores[b, : len(candidates)], [s for s, _, _ in candidates])
        np.testing.assert_array_equal(
            out_classes[b, : len(candidates)], [c for _, c, _ in candidates]
        )
        np.testing.assert_allclose(
            out_boxes[b, : len(candidates)], boxes[b, [i for _, _, i in candidates]]
        )


def test_padded_nms_keeps_static_shapes_in_a_function():
    @tf.function(
        input_signature=[tf.TensorSpec([None, None, 4], tf.float32), tf.TensorSpec([None, None])]
    )
    def run(boxes, scores):
        return nms.non_max_suppression_padded(boxes, scores, 6, 0.5)

    indices, _ = run(tf.zeros([2, 9, 4]), tf.zeros([2, 9]))
    assert run.get_concrete_function().structured_outputs[0].shape.as_list() == [None, 6]
    assert indices.shape == (2, 6)
