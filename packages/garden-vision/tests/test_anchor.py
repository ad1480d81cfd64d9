"""Anchors and the RetinaNet anchor labeler.

Anchor geometry is checked against RetinaNet's published layout (Lin et al., 2017: anchor
sides 32..512 pixels over levels 3..7 with octave scales 2**(i/3) and aspect ratios 1:2, 1:1,
2:1); labels against a hand-built 64 x 64 image.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.ops import anchor as anchor_lib


def test_retinanet_anchor_layout_at_640():
    anchor = anchor_lib.Anchor(3, 7, 3, [0.5, 1.0, 2.0], 4.0, [640, 640])
    assert anchor.anchors_per_location == 9
    shapes = {level: tuple(boxes.shape) for level, boxes in anchor.multilevel_boxes.items()}
    assert shapes == {
        "3": (80, 80, 36),
        "4": (40, 40, 36),
        "5": (20, 20, 36),
        "6": (10, 10, 36),
        "7": (5, 5, 36),
    }
    # 9 anchors on 80^2 + 40^2 + 20^2 + 10^2 + 5^2 = 8525 cells.
    assert tuple(anchor.boxes.shape) == (76725, 4)

    # Level 3: 32-pixel base anchors centered at (4, 4), scales 32 * 2**(i/3).
    first_cell = anchor.multilevel_boxes["3"][0, 0].numpy().reshape(9, 4)
    for index, (scale, ratio) in enumerate((s, r) for s in range(3) for r in (0.5, 1.0, 2.0)):
        side = 32.0 * 2 ** (scale / 3)
        height, width = side / math.sqrt(ratio), side * math.sqrt(ratio)
        expected = [4 - height / 2, 4 - width / 2, 4 + height / 2, 4 + width / 2]
        np.testing.assert_allclose(first_cell[index], expected, rtol=1e-5)
    # Level 7, last cell: a 512-pixel square (ratio 1, scale 0) centered at (576, 576).
    last_cell = anchor.multilevel_boxes["7"][4, 4].numpy().reshape(9, 4)
    np.testing.assert_allclose(last_cell[1], [320.0, 320.0, 832.0, 832.0])
    # Flattened order: level, then y, then x, then anchor.
    np.testing.assert_allclose(anchor.boxes[9 * 81], anchor.multilevel_boxes["3"][1, 1, :4])
    np.testing.assert_allclose(anchor.boxes[-1], anchor.multilevel_boxes["7"][4, 4, -4:])


def test_sizes_not_divisible_by_the_stride_spread_centers_evenly():
    anchor = anchor_lib.Anchor(3, 3, 1, [1.0], 1.0, [100, 60])
    boxes = anchor.multilevel_boxes["3"].numpy()
    # ceil(100 / 8) = 13 rows, ceil(60 / 8) = 8 columns; strides 100/13 and 60/8.
    assert boxes.shape == (13, 8, 4)
    centers_y = (boxes[:, 0, 0] + boxes[:, 0, 2]) / 2
    centers_x = (boxes[0, :, 1] + boxes[0, :, 3]) / 2
    np.testing.assert_allclose(centers_y, (np.arange(13) + 0.5) * 100 / 13, rtol=1e-5)
    np.testing.assert_allclose(centers_x, (np.arange(8) + 0.5) * 7.5, rtol=1e-5)
    np.testing.assert_allclose(boxes[..., 2] - boxes[..., 0], 8.0, rtol=1e-5)


def test_anchor_generator_and_bad_arguments():
    generator = anchor_lib.build_anchor_generator(3, 4, 2, [1.0], 3.0)
    boxes = generator([64, 32])
    expected = anchor_lib.Anchor(3, 4, 2, [1.0], 3.0, [64, 32]).multilevel_boxes
    assert sorted(boxes) == ["3", "4"]
    for level in boxes:
        np.testing.assert_allclose(boxes[level], expected[level])
    with pytest.raises(ValueError, match="min_level"):
        anchor_lib.Anchor(5, 3, 1, [1.0], 4.0, [64, 64])
    with pytest.raises(ValueError, match="aspect_ratios"):
        anchor_lib.Anchor(3, 4, 1, [0.0], 4.0, [64, 64])
    with pytest.raises(ValueError, match="image_size"):
        anchor_lib.Anchor(3, 4, 1, [1.0], 4.0, ["a", 64])


# A 64 x 64 image, level 4 only: a 4 x 4 grid of 32-pixel square anchors centered at
# 8, 24, 40, 56 (anchor index = 4 * row + column).
_ANCHORS = anchor_lib.Anchor(4, 4, 1, [1.0], 2.0, [64, 64]).multilevel_boxes
# Box 0 is exactly the anchor at row 1, column 1 (IoU 1). Its four edge neighbours overlap
# it by 512 of 1536 pixels (IoU 1/3, ignored between 0.3 and 0.5); the diagonal ones by
# 256 of 1792 (IoU 1/7, negative). Box 1 is a 4-pixel box centered at (58, 4): its best
# anchor (row 3, column 0) has IoU 16 / 1024 only, and is forced positive.
_GT_BOXES = np.array([[8.0, 8.0, 40.0, 40.0], [56.0, 2.0, 60.0, 6.0]], np.float32)
_GT_CLASSES = np.array([[3], [7]], np.int32)


def test_labeler_hand_built_image():
    labeler = anchor_lib.AnchorLabeler(match_threshold=0.5, unmatched_threshold=0.3)
    cls_targets, box_targets, att_targets, cls_weights, box_weights = labeler.label_anchors(
        _ANCHORS, _GT_BOXES, _GT_CLASSES, gt_attributes={"depth": tf.constant([[2.5], [4.0]])}
    )
    # Model Garden's convention: -1 (an all-zero one-hot target) for every other anchor.
    expected_classes = np.full((4, 4), -1, np.int32)
    expected_classes[1, 1] = 3
    expected_classes[3, 0] = 7
    assert cls_targets["4"].dtype == tf.int32
    np.testing.assert_array_equal(cls_targets["4"][..., 0], expected_classes)

    expected_cls_weights = np.ones((4, 4), np.float32)
    for row, col in ((0, 1), (2, 1), (1, 0), (1, 2)):
        expected_cls_weights[row, col] = 0.0
    np.testing.assert_array_equal(cls_weights.numpy().reshape(4, 4), expected_cls_weights)
    np.testing.assert_array_equal(box_weights.numpy().reshape(4, 4), expected_classes > 0)

    targets = box_targets["4"].numpy()
    np.testing.assert_allclose(targets[1, 1], [0.0, 0.0, 0.0, 0.0], atol=1e-6)
    # Center (58, 4) vs (56, 8): dy = 2 / 32, dx = -4 / 32; dh = dw = log(4 / 32).
    np.testing.assert_allclose(
        targets[3, 0], [0.0625, -0.125, math.log(0.125), math.log(0.125)], rtol=1e-5
    )
    targets[1, 1] = targets[3, 0] = 0.0
    np.testing.assert_array_equal(targets, 0.0)

    depth = att_targets["depth"]["4"].numpy()[..., 0]
    assert depth[1, 1] == 2.5
    assert depth[3, 0] == 4.0
    assert np.count_nonzero(depth) == 2


def test_labeler_weights_coder_weights_and_no_ground_truth():
    labeler = anchor_lib.AnchorLabeler(0.5, 0.3, box_coder_weights=[10.0, 10.0, 5.0, 5.0])
    _, box_targets, _, cls_weights, box_weights = labeler.label_anchors(
        _ANCHORS, _GT_BOXES, _GT_CLASSES[:, 0], gt_weights=tf.constant([2.0, 0.5])
    )
    np.testing.assert_allclose(
        box_targets["4"][3, 0],
        [0.625, -1.25, 5 * math.log(0.125), 5 * math.log(0.125)],
        rtol=1e-5,
    )
    weights = box_weights.numpy().reshape(4, 4)
    assert weights[1, 1] == 2.0
    assert weights[3, 0] == 0.5
    assert weights.sum() == 2.5
    assert cls_weights.numpy().reshape(4, 4)[1, 1] == 2.0

    cls_targets, box_targets, _, cls_weights, box_weights = labeler.label_anchors(
        _ANCHORS, tf.zeros([0, 4]), tf.zeros([0], tf.int32)
    )
    np.testing.assert_array_equal(cls_targets["4"], -1)
    np.testing.assert_array_equal(box_targets["4"], 0.0)
    np.testing.assert_array_equal(cls_weights, 1.0)
    np.testing.assert_array_equal(box_weights, 0.0)


def test_labeler_in_a_dataset_with_unknown_box_count():
    labeler = anchor_lib.AnchorLabeler(0.5, 0.3)

    def label(boxes, classes):
        cls_targets, box_targets, _, cls_weights, box_weights = labeler.label_anchors(
            _ANCHORS, boxes, classes
        )
        return cls_targets["4"], box_targets["4"], cls_weights, box_weights

    dataset = tf.data.Dataset.from_generator(
        lambda: iter([(_GT_BOXES, _GT_CLASSES[:, 0]), (np.zeros((0, 4), np.float32), [])]),
        output_signature=(tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32)),
    ).map(label)
    assert dataset.element_spec[0].shape == (4, 4, 1)
    (cls_a, _, _, box_w_a), (cls_b, _, cls_w_b, _) = list(dataset)
    assert cls_a.numpy()[1, 1, 0] == 3
    assert box_w_a.numpy().sum() == 2.0
    np.testing.assert_array_equal(cls_b, -1)
    np.testing.assert_array_equal(cls_w_b, 1.0)


def _numpy_labels(anchors, boxes, classes, weights, attributes, match, unmatched):
    """RetinaNet labeling written out in NumPy from its definition (Lin et al., 2017)."""
    num_anchors = len(anchors)
    cls_targets = np.full(num_anchors, -1)
    box_targets = np.zeros([num_anchors, 4])
    att_targets = np.zeros([num_anchors, attributes.shape[1]])
    cls_weights, box_weights = np.ones(num_anchors), np.zeros(num_anchors)
    if not len(boxes):
        return cls_targets, box_targets, att_targets, cls_weights, box_weights
    top, bottom = (
        np.maximum(anchors[:, None, 0], boxes[:, 0]),
        np.minimum(anchors[:, None, 2], boxes[:, 2]),
    )
    left, right = (
        np.maximum(anchors[:, None, 1], boxes[:, 1]),
        np.minimum(anchors[:, None, 3], boxes[:, 3]),
    )
    inter = np.maximum(bottom - top, 0) * np.maximum(right - left, 0)
    areas = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    iou = inter / (areas(anchors)[:, None] + areas(boxes) - inter)
    best, best_iou = iou.argmax(1), iou.max(1)
    positive, ignored = best_iou >= match, (best_iou >= unmatched) & (best_iou < match)
    for column in reversed(range(len(boxes))):  # the lowest box wins a shared anchor
        row = iou[:, column].argmax()
        best[row], positive[row], ignored[row] = column, True, False
    for row in np.flatnonzero(positive):
        box, a = boxes[best[row]], anchors[row]
        ah, aw = a[2] - a[0] + 1e-8, a[3] - a[1] + 1e-8
        bh, bw = box[2] - box[0] + 1e-8, box[3] - box[1] + 1e-8
        box_targets[row] = [
            ((box[0] + box[2]) - (a[0] + a[2])) / 2 / ah,
            ((box[1] + box[3]) - (a[1] + a[3])) / 2 / aw,
            np.log(bh / ah),
            np.log(bw / aw),
        ]
        cls_targets[row], att_targets[row] = classes[best[row]], attributes[best[row]]
        box_weights[row] = cls_weights[row] = weights[best[row]]
    cls_weights[ignored] = 0.0
    return cls_targets, box_targets, att_targets, cls_weights, box_weights


def test_labeler_matches_a_numpy_reference_on_random_images():
    # Random boxes on a 128 x 128 image, with repeated boxes (ties between boxes and between
    # forced matches), attributes, box weights and an image without boxes.
    anchor_boxes = anchor_lib.Anchor(3, 5, 2, [0.5, 1.0, 2.0], 3.0, [128, 128]).multilevel_boxes
    flat = np.concatenate([np.reshape(boxes, [-1, 4]) for boxes in anchor_boxes.values()])
    labeler = anchor_lib.AnchorLabeler(0.5, 0.4)
    rng = np.random.default_rng(7)
    for count in [0, 1, 3, 6, 6, 9]:
        corners = rng.uniform(0, 110, [count, 2])
        boxes = np.concatenate([corners, corners + rng.uniform(3, 60, [count, 2])], 1)
        boxes = np.float32(np.minimum(boxes[:, [0, 1, 2, 3]], 128))
        if count > 2:
            boxes[2] = boxes[1]
        classes = rng.integers(1, 20, count)
        weights = np.float32(rng.uniform(0.5, 2.0, count))
        attributes = np.float32(rng.normal(size=[count, 2]))
        expected = _numpy_labels(flat, boxes, classes, weights, attributes, 0.5, 0.4)
        cls_targets, box_targets, att_targets, cls_weights, box_weights = labeler.label_anchors(
            anchor_boxes,
            tf.constant(boxes.reshape(-1, 4)),
            tf.constant(classes, tf.int32),
            {"depth": tf.constant(attributes.reshape(-1, 2))},
            gt_weights=tf.constant(weights),
        )
        flatten = lambda levels: np.concatenate(  # noqa: E731
            [
                np.reshape(levels[level], [len(np.reshape(anchor_boxes[level], [-1, 4])), -1])
                for level in levels
            ]
        )
        np.testing.assert_array_equal(flatten(cls_targets)[:, 0], expected[0])
        np.testing.assert_allclose(flatten(box_targets), expected[1], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(flatten(att_targets["depth"]), expected[2], rtol=1e-6)
        np.testing.assert_allclose(cls_weights, expected[3], rtol=1e-6)
        np.testing.assert_allclose(box_weights, expected[4], rtol=1e-6)
