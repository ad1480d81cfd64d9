"""Tests of the RetinaNet input `Parser` on tiny detection records the tests write.

Expected values come from hand-worked sizes and scales, from the pixels (a box must sit
where its bright rectangle ended up) and from a NumPy decoding of the box targets
(Model Garden's box coder: `dy = (yc - yc_a) / h_a`, `dh = log(h / h_a)`).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from detection_data import box_images, detection_example, sample_example

from garden_vision.configs import common
from garden_vision.dataloaders import TfExampleDecoder
from garden_vision.dataloaders.retinanet_input import Parser

ANCHORS = {
    "min_level": 3,
    "max_level": 5,
    "num_scales": 2,
    "aspect_ratios": [0.5, 1.0, 2.0],
    "anchor_size": 2.0,
}
# 64 x 64 input: 8x8 + 4x4 + 2x2 locations, 6 anchors each.
NUM_ANCHORS = (64 + 16 + 4) * 6


def _parser(**kwargs) -> Parser:
    settings = {"output_size": [64, 64], "dtype": "float32", **ANCHORS, **kwargs}
    return Parser(**settings)


def _run(records: list[bytes], parser: Parser, training: bool, batch: int | None = None):
    dataset = tf.data.Dataset.from_tensor_slices(records).map(TfExampleDecoder().decode)
    dataset = dataset.map(parser.parse_fn(training))
    if batch:
        dataset = dataset.batch(batch)
    return [tf.nest.map_structure(lambda t: t.numpy(), element) for element in dataset]


def _flat(per_level: dict) -> np.ndarray:
    """Concatenates `{level: [H, W, A * k]}` in level order into `[num_anchors, k]`."""
    k = None
    parts = []
    for level in sorted(per_level, key=int):
        value = per_level[level]
        parts.append(value.reshape([-1]))
        k = k or value.shape[-1]
    return np.concatenate(parts)


def _decoded_positive_boxes(labels: dict) -> tuple[np.ndarray, np.ndarray]:
    """NumPy decoding of the box targets of the positive anchors: (boxes, classes)."""
    anchors = _flat(labels["anchor_boxes"]).reshape([-1, 4])
    targets = _flat(labels["box_targets"]).reshape([-1, 4])
    classes = _flat(labels["cls_targets"])
    positive = labels["box_weights"] > 0
    anchors, targets = anchors[positive], targets[positive]
    ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    yca, xca = anchors[:, 0] + ha / 2, anchors[:, 1] + wa / 2
    dy, dx, dh, dw = targets.T
    yc, xc = dy * ha + yca, dx * wa + xca
    h, w = np.exp(dh) * ha, np.exp(dw) * wa
    boxes = np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
    return boxes, classes[positive]


def test_eval_outputs_by_hand():
    image = np.zeros([48, 96, 3], np.uint8)
    boxes = [[0.25, 0.25, 0.75, 0.5], [0.0, 0.5, 0.5, 1.0]]
    record = detection_example(
        image, boxes, [3, 5], source_id="77", is_crowd=[0, 1], areas=[10.0, 20.0]
    )
    ((out, labels),) = _run([record], _parser(max_num_instances=4), training=False)
    assert out.shape == (64, 64, 3)
    assert out.dtype == np.float32
    # Scale min(64 / 48, 64 / 96) = 2 / 3: the image becomes 32 x 64.
    np.testing.assert_allclose(
        labels["image_info"], [[48, 96], [64, 64], [2 / 3, 2 / 3], [0, 0]], rtol=1e-6
    )
    assert labels["cls_weights"].shape == (NUM_ANCHORS,)
    assert labels["box_weights"].shape == (NUM_ANCHORS,)
    assert labels["cls_targets"]["3"].shape == (8, 8, 6)
    assert labels["box_targets"]["5"].shape == (2, 2, 24)
    assert labels["anchor_boxes"]["4"].shape == (4, 4, 24)
    gt = labels["groundtruths"]
    assert gt["source_id"] == 77
    assert gt["height"] == 48
    assert gt["width"] == 96
    assert gt["num_detections"] == 2
    np.testing.assert_allclose(
        gt["boxes"], [[12, 24, 36, 48], [0, 48, 24, 96], [-1] * 4, [-1] * 4], atol=1e-4
    )
    np.testing.assert_array_equal(gt["classes"], [3, 5, -1, -1])
    np.testing.assert_array_equal(gt["is_crowds"], [0, 1, 0, 0])
    np.testing.assert_allclose(gt["areas"], [10, 20, -1, -1])
    # Positive anchors regress to the ground truth scaled by 2 / 3.
    decoded, classes = _decoded_positive_boxes(labels)
    expected = {3: [8, 16, 24, 32], 5: [0, 32, 16, 64]}
    assert len(classes) > 0
    for box, label in zip(decoded, classes, strict=True):
        np.testing.assert_allclose(box, expected[int(label)], atol=1e-3)


def test_image_without_objects_labels_every_anchor_background():
    record = detection_example(np.zeros([40, 40, 3], np.uint8), np.zeros([0, 4]), [])
    for training in (True, False):
        ((_, labels),) = _run([record], _parser(), training=training)
        assert all(np.all(t == -1) for t in labels["cls_targets"].values())
        assert np.all(labels["box_weights"] == 0)
        np.testing.assert_array_equal(labels["cls_weights"], np.ones(NUM_ANCHORS))
        if not training:
            assert labels["groundtruths"]["num_detections"] == 0


def _one_rectangle_records(num: int, seed: int) -> list[bytes]:
    """48 x 64 dark-noise images with one bright (250) rectangle each, as the box."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(num):
        image = rng.integers(0, 40, size=(48, 64, 3)).astype(np.uint8)
        top, left = int(rng.integers(0, 30)), int(rng.integers(0, 40))
        bottom, right = (
            top + int(rng.integers(10, 48 - top + 1)),
            left + int(rng.integers(10, 64 - left + 1)),
        )
        image[top:bottom, left:right] = 250
        box = [top / 48, left / 64, bottom / 48, right / 64]
        records.append(detection_example(image, [box], [1]))
    return records


def test_training_boxes_follow_flip_and_scale_jitter():
    tf.random.set_seed(1)
    parser = _parser(aug_rand_hflip=True, aug_scale_min=0.8, aug_scale_max=1.25)
    checked = 0
    for out, labels in _run(_one_rectangle_records(8, seed=4), parser, training=True):
        info = labels["image_info"]
        # 48 x 64 fits 64 x 64 at scale 1; the jitter scales that by 0.8-1.25.
        assert 0.79 <= info[2, 1] <= 1.26
        decoded, classes = _decoded_positive_boxes(labels)
        sides = decoded[:, 2:] - decoded[:, :2]
        if not len(classes) or np.any(sides < 3):
            continue  # The crop removed (nearly all of) the object.
        # The bright rectangle: normalized red of 250 is about 2.2, of the noise below -1.4,
        # of the padding 0.
        rows, cols = np.nonzero(out[..., 0] > 1.0)
        extent = [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]
        for box in decoded:
            np.testing.assert_allclose(box, extent, atol=1.6)
        checked += 1
    assert checked >= 3


def test_crowds_are_skipped_in_training_and_kept_for_evaluation():
    image = np.zeros([64, 64, 3], np.uint8)
    record = detection_example(image, [[0.1, 0.1, 0.6, 0.6]], [2], is_crowd=[1])
    ((_, train_labels),) = _run([record], _parser(), training=True)
    assert np.all(train_labels["box_weights"] == 0)
    ((_, eval_labels),) = _run([record], _parser(), training=False)
    assert eval_labels["groundtruths"]["is_crowds"][0] == 1
    ((_, kept),) = _run([record], _parser(skip_crowd_during_training=False), training=True)
    assert kept["box_weights"].sum() > 0


def test_batched_evaluation_has_static_shapes():
    samples = box_images(3, height=32, width=40, max_boxes=3, seed=2)
    batches = _run([sample_example(s) for s in samples], _parser(), training=False, batch=3)
    gt = batches[0][1]["groundtruths"]
    assert gt["boxes"].shape == (3, 100, 4)
    assert gt["num_detections"].tolist() == [len(s.classes) for s in samples]
    assert batches[0][0].shape == (3, 64, 64, 3)


def test_default_dtype_is_bfloat16_and_padding_follows_max_level():
    record = detection_example(np.zeros([30, 50, 3], np.uint8), [[0, 0, 1, 1]], [1])
    parser = Parser(output_size=[100, 80], **{**ANCHORS, "max_level": 5})
    ((out, labels),) = _run([record], parser, training=False)
    # 100 x 80 padded to multiples of 32.
    assert out.shape == (128, 96, 3)
    assert out.dtype == tf.bfloat16.as_numpy_dtype
    assert labels["cls_targets"]["5"].shape == (4, 3, 6)


@pytest.mark.parametrize(
    ("boxes", "classes", "kwargs", "message"),
    [
        ([[0.1, 0.1, 0.5, 0.5]], [7], {"num_classes": 5}, "class id >= num_classes"),
        ([[0.1, 0.1, 0.5, 0.5]], [-1], {}, "negative class id"),
        ([[0.1, 0.1, 1.2, 0.5]], [1], {}, "box outside the image"),
        ([[0.6, 0.1, 0.5, 0.5]], [1], {}, "ymin > ymax"),
        ([[0.1, float("nan"), 0.5, 0.5]], [1], {"box_outside_image": "clip"}, "NaN"),
    ],
)
def test_bad_records_name_their_source_id(boxes, classes, kwargs, message):
    record = detection_example(np.zeros([32, 32, 3], np.uint8), boxes, classes, source_id="9031")
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"9031(.|\n)*{message}"):
        _run([record], _parser(**kwargs), training=True)


def test_bad_records_fail_in_evaluation_too():
    record = detection_example(np.zeros([32, 32, 3], np.uint8), [[0, 0, 1, 1]], [9], source_id="55")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"55(.|\n)*num_classes"):
        _run([record], _parser(num_classes=3), training=False)


def test_boxes_outside_the_image_are_clipped_on_request():
    record = detection_example(
        np.zeros([64, 64, 3], np.uint8), [[-0.25, 0.5, 0.5, 1.5]], [1], source_id="3"
    )
    ((_, labels),) = _run([record], _parser(box_outside_image="clip"), training=False)
    np.testing.assert_allclose(labels["groundtruths"]["boxes"][0], [0, 32, 32, 64], atol=1e-4)
    decoded, _ = _decoded_positive_boxes(labels)
    np.testing.assert_allclose(decoded, np.tile([[0, 32, 32, 64]], [len(decoded), 1]), atol=1e-3)


def test_detection_autoaugment_in_the_parser():
    tf.random.set_seed(0)
    aug_type = common.Augmentation(
        type="autoaug", autoaug=common.AutoAugment(augmentation_name="detection_v0")
    )
    samples = box_images(3, height=40, width=48, seed=5)
    results = _run([sample_example(s) for s in samples], _parser(aug_type=aug_type), True)
    for out, labels in results:
        assert out.shape == (64, 64, 3)
        assert np.all(np.isfinite(out))
        assert np.all(np.isfinite(labels["box_weights"]))


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="detection_v0"):
        _parser(use_autoaugment=True, autoaugment_policy_name="v0")
    with pytest.raises(ValueError, match="autoaug"):
        _parser(aug_type={"type": "randaug"})
    with pytest.raises(ValueError, match="box_outside_image"):
        _parser(box_outside_image="ignore")
    with pytest.raises(ValueError, match="dtype"):
        _parser(dtype="int8")


def test_predict_mode_leaves_out_groundtruths():
    record = detection_example(np.zeros([32, 32, 3], np.uint8), [[0, 0, 1, 1]], [1])
    ((_, labels),) = _run([record], _parser(mode="predict"), training=True)
    assert "groundtruths" not in labels
    assert "image_info" in labels


def test_attributes_become_per_anchor_targets_and_padded_groundtruths():
    record = detection_example(
        np.zeros([64, 64, 3], np.uint8), [[0.25, 0.25, 0.75, 0.75]], [2], attributes={"depth": [7]}
    )
    decoder = TfExampleDecoder(attribute_names=["depth"])
    dataset = tf.data.Dataset.from_tensors(record).map(decoder.decode)
    _, labels = next(iter(dataset.map(_parser(max_num_instances=3).parse_fn(False))))
    targets = labels["attribute_targets"]["depth"]
    assert targets["3"].shape == (8, 8, 6)
    flat = np.concatenate([targets[level].numpy().reshape([-1]) for level in ("3", "4", "5")])
    positive = labels["box_weights"].numpy() > 0
    np.testing.assert_allclose(flat[positive], 7.0)
    np.testing.assert_allclose(flat[~positive], 0.0)
    depth = labels["groundtruths"]["attributes"]["depth"].numpy()
    np.testing.assert_array_equal(depth, [[7], [-1], [-1]])
