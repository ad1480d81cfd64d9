"""Mask R-CNN losses against NumPy references, normalized as Model Garden's."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.losses.maskrcnn_losses import (
    FastrcnnBoxLoss,
    FastrcnnClassLoss,
    MaskrcnnLoss,
    RpnBoxLoss,
    RpnScoreLoss,
)

SHAPES = {"2": (4, 3), "3": (2, 2)}  # level -> (height, width)
ANCHORS = 3


def numpy_bce(targets, logits):
    """Binary cross-entropy from logits, elementwise."""
    return np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))


def numpy_huber(error, delta):
    a = np.abs(error)
    return np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta))


def numpy_log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def rpn_batch(batch=2, seed=0):
    """Per-level RPN outputs and targets: scores labelled 1 / 0 / -1, boxes zero on negatives."""
    rng = np.random.default_rng(seed)
    scores, score_targets, boxes, box_targets = {}, {}, {}, {}
    for level, (h, w) in SHAPES.items():
        scores[level] = rng.normal(size=(batch, h, w, ANCHORS)).astype("float32")
        score_targets[level] = rng.integers(-1, 2, size=(batch, h, w, ANCHORS)).astype("int32")
        boxes[level] = rng.normal(scale=0.3, size=(batch, h, w, ANCHORS * 4)).astype("float32")
        targets = rng.normal(scale=0.2, size=(batch, h, w, ANCHORS, 4))
        targets[score_targets[level] != 1] = 0.0  # Only positive anchors have box targets.
        box_targets[level] = targets.reshape(batch, h, w, ANCHORS * 4).astype("float32")
    return scores, score_targets, boxes, box_targets


def tensors(tree):
    return {key: tf.constant(value) for key, value in tree.items()}


# === RPN ===


def test_rpn_score_loss_sums_levels_over_sampled_anchors_per_image():
    scores, targets, _, _ = rpn_batch()
    loss = RpnScoreLoss(rpn_batch_size_per_im=16)(tensors(scores), tensors(targets))
    expected = 0.0
    for level in SHAPES:
        t = targets[level].astype(np.float64)
        sampled = (t == 0) | (t == 1)
        ce = numpy_bce(np.maximum(t, 0), scores[level].astype(np.float64))
        expected += (ce * sampled).sum() / (2 * 16)  # batch * rpn_batch_size_per_im
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert loss.dtype == tf.float32


def test_rpn_score_loss_ignores_anchors_labelled_minus_one():
    scores, targets, _, _ = rpn_batch()
    loss_fn = RpnScoreLoss(rpn_batch_size_per_im=16)
    changed = {
        level: np.where(targets[level] == -1, 50.0, value) for level, value in scores.items()
    }
    variables = {level: tf.Variable(value) for level, value in scores.items()}
    with tf.GradientTape() as tape:
        loss = loss_fn(variables, tensors(targets))
    np.testing.assert_allclose(
        float(loss_fn(tensors(changed), tensors(targets))), float(loss), rtol=1e-6
    )
    gradients = tape.gradient(loss, variables)
    for level in SHAPES:
        ignored = targets[level] == -1
        assert np.all(np.asarray(gradients[level])[ignored] == 0.0)
        assert np.all(np.asarray(gradients[level])[~ignored] != 0.0)


def test_rpn_score_loss_of_an_image_with_every_anchor_ignored_is_zero():
    scores, targets, _, _ = rpn_batch(batch=1)
    ignored = {level: np.full_like(value, -1) for level, value in targets.items()}
    assert float(RpnScoreLoss(256)(tensors(scores), tensors(ignored))) == 0.0


def test_rpn_score_loss_takes_a_tensor_sample_size_in_a_tf_function():
    scores, targets, _, _ = rpn_batch()
    loss_fn = RpnScoreLoss(tf.constant(16))
    eager = RpnScoreLoss(16)(tensors(scores), tensors(targets))
    graph = tf.function(loss_fn)(tensors(scores), tensors(targets))
    np.testing.assert_allclose(float(graph), float(eager), rtol=1e-6)


def test_rpn_box_loss_normalizes_each_level_by_its_positive_coordinates():
    _, _, boxes, targets = rpn_batch()
    delta = 1.0 / 9.0
    loss = RpnBoxLoss(huber_loss_delta=delta)(tensors(boxes), tensors(targets))
    expected = 0.0
    for level, (h, w) in SHAPES.items():
        t = targets[level].reshape(2, h, w, ANCHORS, 4).astype(np.float64)
        o = boxes[level].reshape(2, h, w, ANCHORS, 4).astype(np.float64)
        positive = np.any(np.abs(t) > 1e-6, axis=-1, keepdims=True)
        huber = (numpy_huber(t - o, delta) * positive).sum()
        expected += huber / (4 * positive.sum() + 0.01)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_rpn_box_loss_without_positives_is_zero():
    _, _, boxes, targets = rpn_batch()
    empty = {level: np.zeros_like(value) for level, value in targets.items()}
    assert float(RpnBoxLoss(0.1)(tensors(boxes), tensors(empty))) == 0.0


# === Fast R-CNN ===


def frcnn_batch(batch=2, rois=8, num_classes=5, seed=1):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, rois, num_classes)).astype("float32")
    classes = rng.integers(0, num_classes, size=(batch, rois)).astype("int32")
    classes[0, :3] = 0  # Some background ROIs in each image.
    classes[1, -2:] = 0
    boxes = rng.normal(size=(batch, rois, num_classes * 4)).astype("float32")
    box_targets = rng.normal(size=(batch, rois, 4)).astype("float32")
    return logits, classes, boxes, box_targets


def numpy_class_loss(logits, classes, weights, binary):
    logits = logits.astype(np.float64)
    num_classes = logits.shape[-1]
    one_hot = np.eye(num_classes)[classes]
    weights = np.ones(num_classes) if weights is None else np.asarray(weights, np.float64)
    if binary:
        return numpy_bce(one_hot, logits) * weights
    return -(one_hot * numpy_log_softmax(logits)).sum(-1) * weights[classes]


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("weights", [None, [0.5, 1.0, 2.0, 1.0, 3.0]])
def test_fastrcnn_class_loss_is_the_mean_over_sampled_rois(binary, weights):
    logits, classes, _, _ = frcnn_batch()
    loss = FastrcnnClassLoss(use_binary_cross_entropy=binary)(logits, classes, weights)
    expected = numpy_class_loss(logits, classes, weights, binary).mean()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


@pytest.mark.parametrize(("top_k_percent", "k"), [(0.25, 4), (0.55, 8)])
def test_fastrcnn_class_loss_top_k_averages_the_hardest_rois(top_k_percent, k):
    logits, classes, _, _ = frcnn_batch()
    loss = FastrcnnClassLoss(top_k_percent=top_k_percent)(logits, classes)
    values = np.sort(numpy_class_loss(logits, classes, None, binary=False).ravel())[::-1]
    # k = int(top_k_percent * 16 ROIs); the sum is divided by k + 1e-5 (Model Garden's).
    np.testing.assert_allclose(float(loss), values[:k].sum() / (k + 1e-5), rtol=1e-5)


def test_fastrcnn_class_loss_accepts_float_class_targets():
    logits, classes, _, _ = frcnn_batch()
    loss_fn = FastrcnnClassLoss()
    np.testing.assert_allclose(
        float(loss_fn(logits, classes.astype("float32"))), float(loss_fn(logits, classes))
    )


def test_fastrcnn_box_loss_uses_each_foreground_rois_class_box():
    logits, classes, boxes, targets = frcnn_batch()
    loss = FastrcnnBoxLoss(huber_loss_delta=1.0)(boxes, classes, targets)
    selected = np.take_along_axis(
        boxes.reshape(2, 8, 5, 4), classes[..., None, None].repeat(4, axis=-1), axis=2
    )[:, :, 0]
    foreground = (classes > 0)[..., None]
    huber = (numpy_huber(targets - selected, 1.0) * foreground).sum()
    np.testing.assert_allclose(float(loss), huber / (4 * foreground.sum() + 0.01), rtol=1e-5)


def test_fastrcnn_box_loss_class_agnostic_and_without_foreground():
    _, classes, _, targets = frcnn_batch()
    boxes = np.random.default_rng(5).normal(size=(2, 8, 4)).astype("float32")
    loss = FastrcnnBoxLoss(huber_loss_delta=0.5, class_agnostic_bbox_pred=True)(
        boxes, classes, targets
    )
    foreground = (classes > 0)[..., None]
    huber = (numpy_huber(targets - boxes, 0.5) * foreground).sum()
    np.testing.assert_allclose(float(loss), huber / (4 * foreground.sum() + 0.01), rtol=1e-5)
    background = np.zeros_like(classes)
    assert float(FastrcnnBoxLoss(0.5, True)(boxes, background, targets)) == 0.0


# === Mask R-CNN ===


def test_mask_loss_is_normalized_by_foreground_mask_pixels():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(2, 4, 6, 6)).astype("float32")
    targets = (rng.random((2, 4, 6, 6)) > 0.5).astype("float32")
    classes = np.array([[1, 0, 3, 0], [0, 0, 2, 0]], "int32")
    loss = MaskrcnnLoss()(logits, targets, classes)
    foreground = (classes > 0)[..., None, None]
    ce = (numpy_bce(targets, logits.astype(np.float64)) * foreground).sum()
    np.testing.assert_allclose(float(loss), ce / (3 * 6 * 6 + 0.01), rtol=1e-5)
    assert float(MaskrcnnLoss()(logits, targets, np.zeros_like(classes))) == 0.0


def test_losses_work_with_unknown_batch_in_a_tf_function():
    _, classes, boxes, targets = frcnn_batch()
    box_loss = FastrcnnBoxLoss(1.0)
    spec = [
        tf.TensorSpec([None, None, 20]),
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None, None, 4]),
    ]
    graph = tf.function(box_loss, input_signature=spec)(boxes, classes, targets)
    np.testing.assert_allclose(float(graph), float(box_loss(boxes, classes, targets)), rtol=1e-6)


def test_box_and_mask_normalizers_are_averaged_over_replicas():
    # Two replicas with 3 and 1 foreground ROIs: each replica's loss is divided by the mean
    # count (Model Garden's all-reduce), so that the task's division by the number of
    # replicas gives the global normalization.
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        devices = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, devices)
        from garden_vision.losses.maskrcnn_losses import FastrcnnBoxLoss, MaskrcnnLoss
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        classes = [np.array([[1, 2, 1, 0]], "int32"), np.array([[0, 0, 3, 0]], "int32")]
        def step():
            index = tf.distribute.get_replica_context().replica_id_in_sync_group
            c = tf.gather(tf.constant(np.stack(classes)), index)
            box = FastrcnnBoxLoss(1.0, class_agnostic_bbox_pred=True)(
                tf.zeros((1, 4, 4)), c, tf.ones((1, 4, 4)))
            mask = MaskrcnnLoss()(tf.zeros((1, 4, 2, 2)), tf.ones((1, 4, 2, 2)), c)
            return box, mask
        box, mask = strategy.run(tf.function(step))
        print([float(v) for v in strategy.experimental_local_results(box)])
        print([float(v) for v in strategy.experimental_local_results(mask)])
        """
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    box, mask = (ast.literal_eval(line) for line in result.stdout.strip().splitlines()[-2:])
    huber_one = 0.5  # Huber(1) with delta 1 per coordinate.
    mean_coordinates = 4 * (3 + 1) / 2
    np.testing.assert_allclose(
        box,
        [3 * 4 * huber_one / (mean_coordinates + 0.01), 4 * huber_one / (mean_coordinates + 0.01)],
        rtol=1e-5,
    )
    bce_zero = np.log(2.0)  # Cross-entropy of logit 0 against target 1.
    mean_pixels = 4 * (3 + 1) / 2
    np.testing.assert_allclose(
        mask,
        [3 * 4 * bce_zero / (mean_pixels + 0.01), 4 * bce_zero / (mean_pixels + 0.01)],
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RpnScoreLoss(0), "rpn_batch_size_per_im"),
        (lambda: RpnBoxLoss(0.0), "huber_loss_delta"),
        (lambda: FastrcnnBoxLoss(-1.0), "huber_loss_delta"),
        (lambda: FastrcnnClassLoss(top_k_percent=0.0), "top_k_percent"),
        (lambda: FastrcnnClassLoss(top_k_percent=1.5), "top_k_percent"),
    ],
)
def test_bad_settings_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_are_clear_errors():
    logits, classes, boxes, targets = frcnn_batch()
    with pytest.raises(ValueError, match="class_weights"):
        FastrcnnClassLoss()(logits, classes, [1.0, 2.0])
    with pytest.raises(ValueError, match="expected 4"):
        FastrcnnBoxLoss(1.0, class_agnostic_bbox_pred=True)(boxes, classes, targets)
    scores, score_targets, _, _ = rpn_batch()
    del score_targets["3"]
    with pytest.raises(ValueError, match=r"no levels \['3'\]"):
        RpnScoreLoss(256)(tensors(scores), tensors(score_targets))
