"""IoU similarity with padding masks, the threshold box matcher, and target gathering.

Expected matches are worked out by hand from small similarity matrices.
"""

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.ops.box_matcher import BoxMatcher
from garden_vision.ops.iou_similarity import IouSimilarity
from garden_vision.ops.target_gather import TargetGather


def test_iou_similarity_hand_computed_and_masks():
    anchors = tf.constant([[0.0, 0.0, 2.0, 2.0], [10.0, 10.0, 12.0, 12.0]])
    gt = tf.constant([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [-1.0, -1.0, -1.0, -1.0]])
    similarity = IouSimilarity()(anchors, gt)
    np.testing.assert_allclose(similarity, [[1 / 7, 1.0, 0.0], [0.0, 0.0, 0.0]], rtol=1e-6)
    masked = IouSimilarity()(anchors, gt, boxes_2_masks=tf.constant([[False], [False], [True]]))
    np.testing.assert_allclose(masked, [[1 / 7, 1.0, -1.0], [0.0, 0.0, -1.0]], rtol=1e-6)
    both = IouSimilarity(mask_val=-2)(
        anchors,
        gt,
        boxes_1_masks=tf.constant([[True], [False]]),
        boxes_2_masks=tf.constant([[False], [False], [True]]),
    )
    np.testing.assert_allclose(both, [[-2, -2, -2], [0.0, 0.0, -2]])
    batched = IouSimilarity()(anchors[None], gt[None])
    np.testing.assert_allclose(batched[0], similarity)
    with pytest.raises(ValueError, match="batched"):
        IouSimilarity()(anchors, gt[None])
    with pytest.raises(ValueError, match="boxes_1"):
        IouSimilarity()(tf.zeros([1, 1, 1, 4]), gt)


def test_matcher_thresholds_and_indicators():
    # Rows: anchors; columns: ground truth. Thresholds 0.3 / 0.5.
    similarity = tf.constant(
        [
            [0.1, 0.6],  # Best 0.6 (column 1) >= 0.5: positive.
            [0.4, 0.2],  # Best 0.4 in [0.3, 0.5): ignored.
            [0.05, 0.2],  # Best 0.2 < 0.3: negative.
            [0.5, 0.1],  # Exactly 0.5: positive (intervals are [low, high)).
        ]
    )
    matcher = BoxMatcher(thresholds=[0.3, 0.5], indicators=[-1, -2, 1])
    columns, indicators = matcher(similarity)
    np.testing.assert_array_equal(columns, [1, 0, 1, 0])
    np.testing.assert_array_equal(indicators, [1, -2, -1, 1])
    assert columns.dtype == tf.int32
    assert indicators.dtype == tf.int32

    # Three thresholds, four intervals: [-inf, 0.1) -3, [0.1, 0.3) -1, [0.3, 0.5) -2, 1.
    sampler = BoxMatcher(thresholds=[0.1, 0.3, 0.5], indicators=[-3, -1, -2, 1])
    _, indicators = sampler(similarity)
    np.testing.assert_array_equal(indicators, [1, -2, -1, 1])


def test_force_match_for_each_column():
    similarity = tf.constant(
        [
            [0.9, 0.05, 0.2],
            [0.1, 0.08, 0.3],
            [0.0, 0.02, 0.25],
        ]
    )
    matcher = BoxMatcher([0.3, 0.5], [-1, -2, 1], force_match_for_each_col=True)
    columns, indicators = matcher(similarity)
    # Column 1 (best row 1, similarity 0.08) and column 2 (best row 1, 0.3) both claim row 1:
    # the lower column index wins. Row 0 is positive on its own.
    np.testing.assert_array_equal(columns, [0, 1, 2])
    np.testing.assert_array_equal(indicators, [1, 1, -1])

    # A padded column (masked to -1) is never forced onto a row.
    padded = tf.concat([similarity[:, :1], -tf.ones([3, 1])], axis=1)
    columns, indicators = matcher(padded)
    np.testing.assert_array_equal(indicators, [1, -1, -1])
    np.testing.assert_array_equal(columns, [0, 0, 0])


def test_matcher_batched_empty_and_bad_arguments():
    matcher = BoxMatcher([0.5], [-1, 1], force_match_for_each_col=True)
    similarity = tf.constant([[[0.7, 0.1], [0.2, 0.3]], [[0.0, 0.1], [0.4, 0.6]]])
    columns, indicators = matcher(similarity)
    # Image 1: both columns' best row is row 1, which goes to column 0 (lowest index).
    np.testing.assert_array_equal(columns, [[0, 1], [1, 0]])
    np.testing.assert_array_equal(indicators, [[1, 1], [-1, 1]])

    columns, indicators = matcher(tf.zeros([4, 0]))
    np.testing.assert_array_equal(columns, [0, 0, 0, 0])
    np.testing.assert_array_equal(indicators, [-1, -1, -1, -1])

    with pytest.raises(ValueError, match="sorted"):
        BoxMatcher([0.5, 0.3], [-1, -2, 1])
    with pytest.raises(ValueError, match="len"):
        BoxMatcher([0.5], [-1, -2, 1])


def test_matcher_in_graph_with_unknown_sizes():
    matcher = BoxMatcher([0.3, 0.5], [-1, -2, 1], force_match_for_each_col=True)
    fn = tf.function(matcher, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    _, indicators = fn(tf.constant([[0.6, 0.0], [0.35, 0.1]]))
    np.testing.assert_array_equal(indicators, [1, 1])
    _, indicators = fn(tf.zeros([3, 0]))
    np.testing.assert_array_equal(indicators, [-1, -1, -1])


def _numpy_match(similarity, thresholds, indicators):
    """Reference matcher: each row's best column, thresholded, then forced matches."""
    best = similarity.argmax(axis=1)
    values = similarity.max(axis=1)
    edges = [-np.inf, *thresholds, np.inf]
    labels = np.zeros(len(best), np.int32)
    for indicator, low, high in zip(indicators, edges[:-1], edges[1:], strict=True):
        labels[(values >= low) & (values < high)] = indicator
    # Columns in descending order so that the lowest column claiming a row is written last.
    for column in reversed(range(similarity.shape[1])):
        if similarity[:, column].max() >= 0:
            row = similarity[:, column].argmax()
            best[row], labels[row] = column, indicators[-1]
    return best, labels


def test_transposed_layout_matches_the_same_as_rows_by_columns():
    # Quantized similarities make ties (equal best values, columns claiming the same row);
    # -1 columns are masked padding that must never be forced.
    rng = np.random.default_rng(3)
    matcher = BoxMatcher([0.4, 0.5], [-1, -2, 1], force_match_for_each_col=True)
    for trial in range(20):
        similarity = np.round(rng.uniform(0.0, 0.7, [40, 6]), 1).astype(np.float32)
        similarity[:, 4 + trial % 2 :] = -1.0
        expected = _numpy_match(similarity, [0.4, 0.5], [-1, -2, 1])
        rows_first = matcher(tf.constant(similarity))
        columns_first = matcher(tf.constant(similarity.T), transposed=True)
        batched = matcher(tf.constant(np.stack([similarity.T, similarity.T])), transposed=True)
        for columns, labels in (rows_first, columns_first, (batched[0][1], batched[1][1])):
            np.testing.assert_array_equal(columns, expected[0])
            np.testing.assert_array_equal(labels, expected[1])


def test_target_gather_unbatched_batched_and_empty():
    gather = TargetGather()
    labels = tf.constant([[10.0, 11.0], [20.0, 21.0], [30.0, 31.0]])
    indices = tf.constant([2, 0, 1, 0])
    mask = tf.constant([[False], [True], [False], [False]])
    np.testing.assert_allclose(
        gather(labels, indices, mask, mask_val=-5.0),
        [[30.0, 31.0], [-5.0, -5.0], [20.0, 21.0], [10.0, 11.0]],
    )
    np.testing.assert_array_equal(
        gather(tf.constant([4, 5, 6]), indices, tf.constant([True, False, False, True]), -1),
        [-1, 4, 5, -1],
    )
    batched = gather(tf.stack([labels, labels + 100]), tf.constant([[1, 1], [2, 0]]))
    np.testing.assert_allclose(batched, [[[20, 21], [20, 21]], [[130, 131], [110, 111]]])
    # No ground truth: every target is the fill value.
    np.testing.assert_allclose(gather(tf.zeros([0, 2]), tf.zeros([3], tf.int32), None, 7.0), 7.0)
    np.testing.assert_allclose(gather(tf.zeros([2, 0, 2]), tf.zeros([2, 3], tf.int32)), 0.0)
    with pytest.raises(ValueError, match="rank"):
        gather(tf.zeros([1, 1, 1, 1]), indices)
