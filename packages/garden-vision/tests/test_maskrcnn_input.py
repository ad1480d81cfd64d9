"""Tests of the Mask R-CNN input `Parser` on tiny detection records with masks.

Expected values come from hand-worked sizes and scales, a NumPy IoU matcher (which anchors
may be RPN positives and negatives), a NumPy decoding of the box targets (Model Garden's
box coder: `dy = (yc - yc_a) / h_a`, `dh = log(h / h_a)`), and a NumPy bilinear crop
(`tf.image.crop_and_resize`'s sampling: row `i` of a crop of size `s` along `[y1, y2]`
samples `y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (s - 1)`, zero outside the mask).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from detection_data import box_images, detection_example, sample_example

from garden_vision.configs import common
from garden_vision.dataloaders import TfExampleDecoder
from garden_vision.dataloaders.maskrcnn_input import Parser, balanced_sample

ANCHORS = {
    "min_level": 2,
    "max_level": 4,
    "num_scales": 1,
    "aspect_ratios": [0.5, 1.0, 2.0],
    "anchor_size": 3.0,
}
# 64 x 64 input: 16x16 + 8x8 + 4x4 locations, 3 anchors each.
NUM_ANCHORS = (256 + 64 + 16) * 3
CROP = 8


def _parser(**kwargs) -> Parser:
    settings = {
        "output_size": [64, 64],
        "include_mask": True,
        "mask_crop_size": CROP,
        "max_num_instances": 4,
        "rpn_batch_size_per_im": 32,
        **ANCHORS,
        **kwargs,
    }
    return Parser(**settings)


def _run(records: list[bytes], parser: Parser, training: bool, batch: int | None = None):
    decoder = TfExampleDecoder(include_mask=True)
    dataset = tf.data.Dataset.from_tensor_slices(records).map(decoder.decode)
    dataset = dataset.map(parser.parse_fn(training))
    if batch:
        dataset = dataset.batch(batch)
    return [tf.nest.map_structure(lambda t: t.numpy(), element) for element in dataset]


def _flat(per_level: dict, k: int) -> np.ndarray:
    """`{level: [H, W, A * k]}` in level order as `[num_anchors, k]`."""
    return np.concatenate([per_level[lvl].reshape([-1, k]) for lvl in sorted(per_level, key=int)])


def _disk(height: int, width: int, center: tuple[float, float], radius: float) -> np.ndarray:
    rows, cols = np.mgrid[:height, :width]
    inside = (rows + 0.5 - center[0]) ** 2 + (cols + 0.5 - center[1]) ** 2 <= radius**2
    return inside.astype(np.uint8)


def _triangle(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A right triangle filling the lower-left half of the pixel box (not symmetric)."""
    top, left, bottom, right = box
    mask = np.zeros([height, width], np.uint8)
    for row in range(top, bottom):
        extent = int(round((row - top + 1) / (bottom - top) * (right - left)))
        mask[row, left : left + extent] = 1
    return mask


def _np_crop(mask: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """NumPy bilinear crop of `[H, W]` `mask` along normalized `box`, zero outside."""
    height, width = mask.shape
    y1, x1, y2, x2 = (float(v) for v in box)
    ys = y1 * (height - 1) + np.arange(size) * (y2 - y1) * (height - 1) / (size - 1)
    xs = x1 * (width - 1) + np.arange(size) * (x2 - x1) * (width - 1) / (size - 1)
    out = np.zeros([size, size])
    values = mask.astype(np.float64)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            if not (0 <= y <= height - 1 and 0 <= x <= width - 1):
                continue
            top, left = int(np.floor(y)), int(np.floor(x))
            bottom, right = min(top + 1, height - 1), min(left + 1, width - 1)
            dy, dx = y - top, x - left
            upper = values[top, left] * (1 - dx) + values[top, right] * dx
            lower = values[bottom, left] * (1 - dx) + values[bottom, right] * dx
            out[i, j] = upper * (1 - dy) + lower * dy
    return out


def _np_iou(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """`[N, M]` IoU of pixel boxes."""
    top = np.maximum(boxes[:, None, 0], gt[None, :, 0])
    left = np.maximum(boxes[:, None, 1], gt[None, :, 1])
    bottom = np.minimum(boxes[:, None, 2], gt[None, :, 2])
    right = np.minimum(boxes[:, None, 3], gt[None, :, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    return inter / (area(boxes)[:, None] + area(gt)[None, :] - inter)


def _np_decode(targets: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    yca, xca = anchors[:, 0] + ha / 2, anchors[:, 1] + wa / 2
    dy, dx, dh, dw = targets.T
    yc, xc, h, w = dy * ha + yca, dx * wa + xca, np.exp(dh) * ha, np.exp(dw) * wa
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)


def _two_object_record(**kwargs) -> tuple[bytes, np.ndarray]:
    """A 48 x 96 image with a disk (class 3) and a triangle (class 5), and their masks."""
    image = np.zeros([48, 96, 3], np.uint8)
    masks = np.stack([_disk(48, 96, (24, 36), 12), _triangle(48, 96, (0, 48, 24, 96))])
    image[masks[0] > 0] = 200
    image[masks[1] > 0] = 120
    boxes = [[0.25, 0.25, 0.75, 0.5], [0.0, 0.5, 0.5, 1.0]]
    defaults = {"source_id": "77", "is_crowd": [0, 0], "areas": [10.0, 20.0]}
    record = detection_example(image, boxes, [3, 5], masks=masks, **{**defaults, **kwargs})
    return record, masks


def test_training_outputs_shapes_and_padding():
    record, _ = _two_object_record()
    ((image, labels),) = _run([record], _parser(), training=True, batch=1)
    assert image.shape == (1, 64, 64, 3)
    assert image.dtype == np.float32
    assert labels["rpn_score_targets"]["2"].shape == (1, 16, 16, 3)
    assert labels["rpn_box_targets"]["4"].shape == (1, 4, 4, 12)
    assert labels["anchor_boxes"]["3"].shape == (1, 8, 8, 12)
    assert labels["rpn_score_targets"]["3"].dtype == np.int32
    assert labels["gt_boxes"].shape == (1, 4, 4)
    assert labels["gt_masks"].shape == (1, 4, CROP, CROP)
    # Scale 2/3: 48 x 96 becomes 32 x 64 in the 64 x 64 input.
    np.testing.assert_allclose(
        labels["image_info"][0], [[48, 96], [64, 64], [2 / 3, 2 / 3], [0, 0]], rtol=1e-6
    )
    np.testing.assert_allclose(
        labels["gt_boxes"][0], [[8, 16, 24, 32], [0, 32, 16, 64], [-1] * 4, [-1] * 4], atol=1e-4
    )
    np.testing.assert_array_equal(labels["gt_classes"][0], [3, 5, -1, -1])
    np.testing.assert_array_equal(labels["gt_masks"][0, 2:], -np.ones([2, CROP, CROP]))
    # Without an outer-box scale the outer boxes are the boxes.
    np.testing.assert_allclose(labels["gt_outer_boxes"], labels["gt_boxes"])


def test_mask_crops_match_a_numpy_bilinear_crop_in_training_and_evaluation():
    record, masks = _two_object_record()
    boxes = np.array([[0.25, 0.25, 0.75, 0.5], [0.0, 0.5, 0.5, 1.0]])
    expected = np.stack([_np_crop(mask, box, CROP) for mask, box in zip(masks, boxes, strict=True)])
    ((_, train),) = _run([record], _parser(), training=True)
    np.testing.assert_allclose(train["gt_masks"][:2], expected, atol=1e-5)
    ((_, evaluation),) = _run([record], _parser(), training=False)
    np.testing.assert_allclose(evaluation["groundtruths"]["masks"][:2], expected, atol=1e-5)
    assert np.all(evaluation["groundtruths"]["masks"][2:] == -1)
    # The crops are not trivial: part of each box is outside its object.
    assert 0.2 < expected.mean() < 0.9


def test_outer_boxes_enlarge_the_crop_around_the_box_center():
    record, masks = _two_object_record()
    ((_, labels),) = _run([record], _parser(outer_boxes_scale=1.5), training=True)
    # Input pixels: the disk's box [8, 16, 24, 32] grows to [4, 12, 28, 36]; the triangle's
    # [0, 32, 16, 64] to [-4, 24, 20, 72], clipped to the 64 x 64 input: [0, 24, 20, 64].
    outer = np.array([[4, 12, 28, 36], [0, 24, 20, 64]], np.float64)
    np.testing.assert_allclose(labels["gt_outer_boxes"][:2], outer, atol=1e-4)
    # Back in the 48 x 96 original (scale 2/3), normalized: where the masks are cropped.
    original = outer * 1.5 / np.array([48, 96, 48, 96])
    expected = np.stack(
        [_np_crop(mask, box, CROP) for mask, box in zip(masks, original, strict=True)]
    )
    np.testing.assert_allclose(labels["gt_masks"][:2], expected, atol=1e-5)


def _square_record(seed: int = 0) -> tuple[bytes, np.ndarray]:
    """A 64 x 64 image (scale 1, no padding) with one triangle mask, painted into the image."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 40, size=(64, 64, 3)).astype(np.uint8)
    mask = _triangle(64, 64, (8, 16, 40, 56))
    image[mask > 0] = 250
    record = detection_example(image, [[8 / 64, 16 / 64, 40 / 64, 56 / 64]], [2], masks=[mask])
    return record, mask


@pytest.mark.parametrize(("flag", "axis"), [("aug_rand_hflip", 1), ("aug_rand_vflip", 0)])
def test_random_flips_move_image_boxes_and_masks_together(flag, axis):
    tf.random.set_seed(3)
    record, _ = _square_record()
    (reference,) = _run([record], _parser(), training=True)
    flipped = unflipped = 0
    for image, labels in _run([record] * 12, _parser(**{flag: True}), training=True):
        box = labels["gt_boxes"][0]
        if np.allclose(image, reference[0]):
            unflipped += 1
            np.testing.assert_allclose(box, reference[1]["gt_boxes"][0], atol=1e-4)
            np.testing.assert_allclose(labels["gt_masks"][0], reference[1]["gt_masks"][0])
            continue
        flipped += 1
        np.testing.assert_allclose(image, np.flip(reference[0], axis), atol=1e-6)
        ymin, xmin, ymax, xmax = reference[1]["gt_boxes"][0]
        mirrored = (
            [ymin, 64 - xmax, ymax, 64 - xmin] if axis else [64 - ymax, xmin, 64 - ymin, xmax]
        )
        np.testing.assert_allclose(box, mirrored, atol=1e-4)
        # The crop along the mirrored box of the mirrored mask is the mirrored crop.
        np.testing.assert_allclose(
            labels["gt_masks"][0], np.flip(reference[1]["gt_masks"][0], axis), atol=1e-5
        )
        # The box still frames the bright object in the (flipped) image.
        rows, cols = np.nonzero(image[..., 0] > 1.0)
        np.testing.assert_allclose([rows.min(), cols.min()], box[:2], atol=1.0)
    assert flipped
    assert unflipped


def _reference_rpn_labels(labels: dict, gt_boxes: np.ndarray):
    """Which anchors may be sampled as positives / negatives, by a NumPy matcher."""
    anchors = _flat(labels["anchor_boxes"], 4)
    iou = _np_iou(anchors, gt_boxes) if len(gt_boxes) else np.zeros([len(anchors), 1])
    best = iou.max(axis=1)
    positive = best >= 0.7
    if len(gt_boxes):
        positive[iou.argmax(axis=0)] = True  # Every box claims its best anchor.
    negative = (best < 0.3) & ~positive
    return anchors, positive, negative


@pytest.mark.parametrize(
    ("boxes", "batch_size", "fraction"),
    [
        # Four boxes, each exactly a level-3 anchor: 4 positives, more than the 2 allowed.
        (
            [
                [0.125, 0.125, 0.5, 0.5],
                [0.125, 0.5, 0.5, 0.875],
                [0.5, 0.125, 0.875, 0.5],
                [0.5, 0.5, 0.875, 0.875],
            ],
            4,
            0.5,
        ),
        # One small box: a few positives, negatives fill the batch.
        ([[0.25, 0.25, 0.5, 0.5]], 32, 0.5),
        ([[0.25, 0.25, 0.5, 0.5], [0.5, 0.5, 0.95, 0.95]], 64, 0.25),
    ],
)
def test_rpn_targets_sample_a_balanced_minibatch(boxes, batch_size, fraction):
    tf.random.set_seed(0)
    image = np.zeros([64, 64, 3], np.uint8)
    record = detection_example(image, boxes, [1] * len(boxes), masks=np.zeros([len(boxes), 64, 64]))
    parser = _parser(rpn_batch_size_per_im=batch_size, rpn_fg_fraction=fraction)
    ((_, labels),) = _run([record], parser, training=True)
    gt = np.asarray(boxes) * 64
    anchors, positive, negative = _reference_rpn_labels(labels, gt)
    scores = _flat(labels["rpn_score_targets"], 1)[:, 0]
    assert set(np.unique(scores)) <= {-1, 0, 1}
    sampled_positive, sampled_negative = scores == 1, scores == 0
    assert np.all(positive[sampled_positive])
    assert np.all(negative[sampled_negative])
    expected_positives = min(positive.sum(), int(fraction * batch_size))
    assert sampled_positive.sum() == expected_positives
    assert sampled_negative.sum() == min(negative.sum(), batch_size - expected_positives)
    # Box targets: every positive anchor (sampled or not) regresses to its box; 0 elsewhere.
    targets = _flat(labels["rpn_box_targets"], 4)
    np.testing.assert_array_equal(targets[~positive], 0.0)
    decoded = _np_decode(targets[positive], anchors[positive])
    matched = gt[_np_iou(anchors[positive], gt).argmax(axis=1)]
    np.testing.assert_allclose(decoded, matched, atol=1e-3)


def test_an_image_without_objects_samples_negatives_only():
    record = detection_example(np.zeros([40, 40, 3], np.uint8), np.zeros([0, 4]), [], masks=[])
    ((_, labels),) = _run([record], _parser(rpn_batch_size_per_im=24), training=True)
    scores = _flat(labels["rpn_score_targets"], 1)[:, 0]
    assert (scores == 0).sum() == 24
    assert (scores == 1).sum() == 0
    assert np.all(_flat(labels["rpn_box_targets"], 4) == 0)
    assert np.all(labels["gt_boxes"] == -1)
    assert np.all(labels["gt_masks"] == -1)
    ((_, evaluation),) = _run([record], _parser(), training=False)
    assert evaluation["groundtruths"]["num_detections"] == 0
    assert np.all(evaluation["groundtruths"]["masks"] == -1)


def test_the_sample_differs_from_draw_to_draw():
    tf.random.set_seed(5)
    record = detection_example(
        np.zeros([64, 64, 3], np.uint8), [[0.0, 0.0, 1.0, 1.0]], [1], masks=np.ones([1, 64, 64])
    )
    draws = {
        _flat(labels["rpn_score_targets"], 1).tobytes()
        for _, labels in _run([record] * 4, _parser(rpn_batch_size_per_im=16), training=True)
    }
    assert len(draws) > 1


def test_balanced_sample_counts():
    tf.random.set_seed(2)
    positive = tf.constant([True] * 10 + [False] * 90)
    negative = ~positive
    sampled_positive, sampled_negative = balanced_sample(positive, negative, 16, 0.25)
    assert int(tf.reduce_sum(tf.cast(sampled_positive, tf.int32))) == 4
    assert int(tf.reduce_sum(tf.cast(sampled_negative, tf.int32))) == 12
    assert not np.any(sampled_positive.numpy() & ~positive.numpy())
    assert not np.any(sampled_negative.numpy() & positive.numpy())
    # Too few of both: everything is taken.
    few_positive = tf.constant([True, False, False, False])
    taken_positive, taken_negative = balanced_sample(few_positive, ~few_positive, 16, 0.5)
    np.testing.assert_array_equal(taken_positive.numpy(), few_positive.numpy())
    np.testing.assert_array_equal(taken_negative.numpy(), ~few_positive.numpy())


def test_evaluation_groundtruths_by_hand():
    record, _ = _two_object_record(is_crowd=[0, 1])
    ((image, labels),) = _run([record], _parser(), training=False)
    assert image.shape == (64, 64, 3)
    assert "rpn_score_targets" not in labels
    assert labels["anchor_boxes"]["2"].shape == (16, 16, 12)
    gt = labels["groundtruths"]
    assert gt["source_id"] == 77
    assert (gt["height"], gt["width"], gt["num_detections"]) == (48, 96, 2)
    np.testing.assert_allclose(
        gt["boxes"], [[12, 24, 36, 48], [0, 48, 24, 96], [-1] * 4, [-1] * 4], atol=1e-4
    )
    np.testing.assert_array_equal(gt["classes"], [3, 5, -1, -1])
    np.testing.assert_array_equal(gt["is_crowds"], [0, 1, 0, 0])
    np.testing.assert_allclose(gt["areas"], [10, 20, -1, -1])
    assert gt["masks"].shape == (4, CROP, CROP)
    ((_, predict),) = _run([record], _parser(mode="predict"), training=False)
    assert "groundtruths" not in predict


def test_crowds_are_dropped_with_their_masks_in_training():
    record, masks = _two_object_record(is_crowd=[1, 0])
    ((_, labels),) = _run([record], _parser(), training=True)
    np.testing.assert_array_equal(labels["gt_classes"], [5, -1, -1, -1])
    expected = _np_crop(masks[1], np.array([0.0, 0.5, 0.5, 1.0]), CROP)
    np.testing.assert_allclose(labels["gt_masks"][0], expected, atol=1e-5)
    ((_, kept),) = _run([record], _parser(skip_crowd_during_training=False), training=True)
    np.testing.assert_array_equal(kept["gt_classes"], [3, 5, -1, -1])


def test_faster_rcnn_labels_have_no_masks():
    samples = box_images(2, height=32, width=40, seed=1)
    records = [sample_example(s) for s in samples]
    results = _run(records, _parser(include_mask=False), training=True, batch=2)
    labels = results[0][1]
    assert "gt_masks" not in labels
    assert "gt_outer_boxes" not in labels
    assert labels["gt_boxes"].shape == (2, 4, 4)


@pytest.mark.parametrize(
    ("boxes", "classes", "kwargs", "message"),
    [
        ([[0.1, 0.1, 0.5, 0.5]], [7], {"num_classes": 5}, "class id >= num_classes"),
        ([[0.1, 0.1, 0.5, 0.5]], [-1], {}, "negative class id"),
        ([[0.1, 0.1, 1.2, 0.5]], [1], {}, "box outside the image"),
    ],
)
@pytest.mark.parametrize("training", [True, False])
def test_bad_records_name_their_source_id(boxes, classes, kwargs, message, training):
    record = detection_example(
        np.zeros([32, 32, 3], np.uint8),
        boxes,
        classes,
        source_id="9031",
        masks=np.ones([1, 32, 32]),
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"9031(.|\n)*{message}"):
        _run([record], _parser(**kwargs), training=training)


def test_pixel_value_augmentations_run_and_moving_ones_are_refused():
    tf.random.set_seed(0)
    record, _ = _square_record()
    moving = ["Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"]
    randaug = common.RandAugment(num_layers=1, exclude_ops=moving)
    ((image, labels),) = _run(
        [record], _parser(aug_type=common.Augmentation(type="randaug", randaug=randaug)), True
    )
    assert np.all(np.isfinite(image))
    # Pixel-value ops leave the geometry alone.
    np.testing.assert_allclose(labels["gt_boxes"][0], [8, 16, 40, 56], atol=1e-4)
    # AutoAugment's `simple` policy (`v0` without its geometric sub-policies) is accepted.
    simple = common.AutoAugment(augmentation_name="simple")
    assert _parser(aug_type=common.Augmentation(type="autoaug", autoaug=simple))
    with pytest.raises(ValueError, match="move pixels.*exclude_ops"):
        _parser(aug_type={"type": "randaug"})
    with pytest.raises(ValueError, match="'v0'.*move pixels"):
        _parser(aug_type={"type": "autoaug", "autoaug": {"augmentation_name": "v0"}})
    with pytest.raises(ValueError, match="autoaug"):
        _parser(aug_type={"type": "mixup"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rpn_fg_fraction": 0.0}, "rpn_fg_fraction"),
        ({"rpn_batch_size_per_im": 0}, "rpn_batch_size_per_im"),
        ({"mask_crop_size": 0}, "mask_crop_size"),
        ({"outer_boxes_scale": 0.5}, "outer_boxes_scale"),
        ({"rpn_match_threshold": 0.3, "rpn_unmatched_threshold": 0.7}, "unmatched_threshold"),
        ({"dtype": "int8"}, "dtype"),
    ],
)
def test_settings_that_cannot_work_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _parser(**kwargs)


def test_masks_are_required_when_asked_for():
    record = detection_example(np.zeros([32, 32, 3], np.uint8), [[0, 0, 1, 1]], [1])
    dataset = tf.data.Dataset.from_tensors(record).map(TfExampleDecoder().decode)
    with pytest.raises(ValueError, match="include_mask"):
        dataset.map(_parser().parse_fn(True))
