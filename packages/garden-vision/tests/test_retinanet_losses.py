"""`retinanet_losses`: Model Garden's RetinaNet loss normalization, against NumPy formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.configs.retinanet import AttributeHead
from garden_vision.losses.loss_utils import multi_level_flatten
from garden_vision.losses.retinanet_losses import retinanet_losses

NUM_CLASSES = 4
ANCHORS = 2
SHAPES = {"3": (4, 4), "4": (2, 2)}  # level -> (height, width)


def numpy_focal(y, x, alpha, gamma):
    p = 1 / (1 + np.exp(-x))
    bce = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    p_t = np.where(y == 1, p, 1 - p)
    return np.where(y == 1, alpha, 1 - alpha) * (1 - p_t) ** gamma * bce


def numpy_huber(error, delta):
    a = np.abs(error)
    return np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta))


def flatten(per_level, last_dim):
    """Level-major, then row, column, anchor: the anchor labeler's order."""
    batch = next(iter(per_level.values())).shape[0]
    parts = [per_level[k].reshape(batch, -1, last_dim) for k in sorted(per_level, key=int)]
    return np.concatenate(parts, axis=1)


def numpy_retinanet_loss(outputs, labels, alpha, gamma, delta, box_weight, loss_weight, aux):
    cls_w = labels["cls_weights"].astype(np.float64)
    box_w = labels["box_weights"].astype(np.float64)
    n = box_w.sum() + 1.0
    targets = flatten(labels["cls_targets"], 1)[..., 0]
    one_hot = np.eye(NUM_CLASSES)[targets]
    logits = flatten(outputs["cls_outputs"], NUM_CLASSES).astype(np.float64)
    cls_loss = (numpy_focal(one_hot, logits, alpha, gamma) * (cls_w / n)[..., None]).sum()
    error = flatten(labels["box_targets"], 4) - flatten(outputs["box_outputs"], 4)
    box_loss = (numpy_huber(error, delta).mean(-1) * box_w / n).sum()
    model_loss = cls_loss + box_weight * box_loss
    return {
        "cls_loss": cls_loss,
        "box_loss": box_loss,
        "model_loss": model_loss,
        "total_loss": loss_weight * (model_loss + sum(aux)),
    }


def make_batch(batch=2, seed=0, positives=5):
    rng = np.random.default_rng(seed)
    outputs = {"cls_outputs": {}, "box_outputs": {}}
    labels = {"cls_targets": {}, "box_targets": {}}
    for level, (h, w) in SHAPES.items():
        outputs["cls_outputs"][level] = rng.normal(size=(batch, h, w, ANCHORS * NUM_CLASSES))
        outputs["box_outputs"][level] = rng.normal(scale=0.2, size=(batch, h, w, ANCHORS * 4))
        labels["cls_targets"][level] = rng.integers(0, NUM_CLASSES, size=(batch, h, w, ANCHORS))
        labels["box_targets"][level] = rng.normal(scale=0.2, size=(batch, h, w, ANCHORS * 4))
    num_anchors = sum(h * w for h, w in SHAPES.values()) * ANCHORS
    box_weights = np.zeros((batch, num_anchors))
    box_weights.flat[rng.choice(box_weights.size, positives, replace=False)] = 1.0
    labels["box_weights"] = box_weights
    labels["cls_weights"] = (rng.random((batch, num_anchors)) > 0.2).astype(np.float64)
    cast = {
        "cls_targets": np.int32,
        "cls_outputs": np.float32,
        "box_outputs": np.float32,
        "box_targets": np.float32,
    }
    for tree in (outputs, labels):
        for key, value in tree.items():
            if isinstance(value, dict):
                tree[key] = {k: v.astype(cast[key]) for k, v in value.items()}
            else:
                tree[key] = value.astype(np.float32)
    return outputs, labels


def test_hand_computed_single_anchor():
    # One positive anchor of class 1 among 2 classes, zero logits and box outputs.
    outputs = {
        "cls_outputs": {"3": np.zeros((1, 1, 1, 2), np.float32)},
        "box_outputs": {"3": np.zeros((1, 1, 1, 4), np.float32)},
    }
    labels = {
        "cls_targets": {"3": np.array([[[[1]]]], np.int32)},
        "box_targets": {"3": np.array([[[[0.05, -0.2, 0.0, 0.1]]]], np.float32)},
        "cls_weights": np.ones((1, 1), np.float32),
        "box_weights": np.ones((1, 1), np.float32),
    }
    losses = retinanet_losses(
        outputs, labels, num_classes=2, focal_loss_alpha=0.25, focal_loss_gamma=2.0
    )
    # Positives + 1 = 2. Focal at logit 0: (0.75 + 0.25) * 0.5**2 * ln 2, over 2.
    cls_loss = (0.75 + 0.25) * 0.25 * math.log(2) / 2
    # Huber, delta 0.1: 0.5 * 0.05**2, 0.1 * (0.2 - 0.05), 0, 0.5 * 0.1**2; mean, over 2.
    box_loss = (0.00125 + 0.015 + 0.0 + 0.005) / 4 / 2
    np.testing.assert_allclose(float(losses["cls_loss"]), cls_loss, rtol=1e-6)
    np.testing.assert_allclose(float(losses["box_loss"]), box_loss, rtol=1e-6)
    np.testing.assert_allclose(float(losses["model_loss"]), cls_loss + 50 * box_loss, rtol=1e-6)
    np.testing.assert_allclose(float(losses["total_loss"]), cls_loss + 50 * box_loss, rtol=1e-6)


@pytest.mark.parametrize(
    ("alpha", "gamma", "delta", "box_weight", "loss_weight"),
    [(0.25, 1.5, 0.1, 50, 1.0), (0.5, 2.0, 0.5, 10, 0.5)],
)
def test_the_batch_loss_matches_numpy(alpha, gamma, delta, box_weight, loss_weight):
    outputs, labels = make_batch()
    aux = [np.float32(0.3), np.float32(0.2)]
    losses = retinanet_losses(
        outputs,
        labels,
        num_classes=NUM_CLASSES,
        focal_loss_alpha=alpha,
        focal_loss_gamma=gamma,
        huber_loss_delta=delta,
        box_loss_weight=box_weight,
        loss_weight=loss_weight,
        aux_losses=aux,
    )
    expected = numpy_retinanet_loss(
        outputs, labels, alpha, gamma, delta, box_weight, loss_weight, [0.3, 0.2]
    )
    assert sorted(losses) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(float(losses[key]), value, rtol=1e-5, err_msg=key)


def test_normalization_is_over_the_positives_of_the_whole_batch():
    outputs, labels = make_batch(positives=7)
    single = retinanet_losses(outputs, labels, num_classes=NUM_CLASSES)
    assert float(np.sum(labels["box_weights"])) == 7
    expected = numpy_retinanet_loss(outputs, labels, 0.25, 1.5, 0.1, 50, 1.0, [])
    np.testing.assert_allclose(float(single["box_loss"]), expected["box_loss"], rtol=1e-5)
    # The + 1 only: the same batch with one more positive divides by 9, not 8.
    more = dict(labels)
    more["box_weights"] = labels["box_weights"].copy()
    more["box_weights"][0, np.flatnonzero(labels["box_weights"][0] == 0)[0]] = 1.0
    expected_more = numpy_retinanet_loss(outputs, more, 0.25, 1.5, 0.1, 50, 1.0, [])
    np.testing.assert_allclose(
        float(retinanet_losses(outputs, more, num_classes=NUM_CLASSES)["cls_loss"]),
        expected_more["cls_loss"],
        rtol=1e-5,
    )
    np.testing.assert_allclose(expected_more["cls_loss"] * 9, expected["cls_loss"] * 8, rtol=1e-6)


def test_an_image_without_objects_is_finite():
    outputs, labels = make_batch(positives=0)
    losses = retinanet_losses(outputs, labels, num_classes=NUM_CLASSES)
    assert float(losses["box_loss"]) == 0.0
    assert np.isfinite(float(losses["total_loss"]))
    assert float(losses["cls_loss"]) > 0
    expected = numpy_retinanet_loss(outputs, labels, 0.25, 1.5, 0.1, 50, 1.0, [])
    np.testing.assert_allclose(float(losses["cls_loss"]), expected["cls_loss"], rtol=1e-5)


def test_level_order_of_the_dicts_does_not_matter():
    outputs, labels = make_batch()
    reversed_outputs = {key: dict(reversed(value.items())) for key, value in outputs.items()}
    a = retinanet_losses(outputs, labels, num_classes=NUM_CLASSES)
    b = retinanet_losses(reversed_outputs, labels, num_classes=NUM_CLASSES)
    np.testing.assert_allclose(float(a["total_loss"]), float(b["total_loss"]), rtol=1e-6)


def test_flatten_is_level_major_then_row_column_anchor():
    level3 = np.arange(2 * 2 * 2 * 3).reshape(1, 2, 2, 6)  # 2 anchors x 3 values
    level4 = 100 + np.arange(1 * 1 * 2 * 3).reshape(1, 1, 1, 6)
    flat = np.asarray(multi_level_flatten({"4": level4, "3": level3}, last_dim=3))
    assert flat.shape == (1, 10, 3)
    np.testing.assert_array_equal(flat[0, 0], [0, 1, 2])  # level 3, row 0, col 0, anchor 0
    np.testing.assert_array_equal(flat[0, 1], [3, 4, 5])  # anchor 1
    np.testing.assert_array_equal(flat[0, 2], [6, 7, 8])  # col 1
    np.testing.assert_array_equal(flat[0, 8], [100, 101, 102])  # level 4


def test_attribute_losses_match_numpy_and_use_the_box_weights():
    outputs, labels = make_batch(seed=4)
    rng = np.random.default_rng(5)
    depth_out, depth_true, kind_out, kind_true = {}, {}, {}, {}
    for level, (h, w) in SHAPES.items():
        depth_out[level] = rng.normal(size=(2, h, w, ANCHORS * 2)).astype(np.float32)
        depth_true[level] = rng.normal(scale=2.0, size=(2, h, w, ANCHORS * 2)).astype(np.float32)
        kind_out[level] = rng.normal(size=(2, h, w, ANCHORS * 3)).astype(np.float32)
        kind_true[level] = rng.integers(0, 3, size=(2, h, w, ANCHORS)).astype(np.int32)
    outputs["attribute_outputs"] = {"depth": depth_out, "kind": kind_out}
    labels["attribute_targets"] = {"depth": depth_true, "kind": kind_true}
    heads = [
        AttributeHead(name="depth", type="regression", size=2),
        {"name": "kind", "type": "classification", "size": 3},
    ]
    losses = retinanet_losses(outputs, labels, num_classes=NUM_CLASSES, attribute_heads=heads)

    base = numpy_retinanet_loss(outputs, labels, 0.25, 1.5, 0.1, 50, 1.0, [])
    w = labels["box_weights"] / (labels["box_weights"].sum() + 1)
    error = flatten(depth_true, 2) - flatten(depth_out, 2)
    depth_loss = (numpy_huber(error, 1.0).mean(-1) * w).sum()
    one_hot = np.eye(3)[flatten(kind_true, 1)[..., 0]]
    kind_loss = (numpy_focal(one_hot, flatten(kind_out, 3), 0.25, 1.5) * w[..., None]).sum()
    assert depth_loss > 0
    assert kind_loss > 0
    np.testing.assert_allclose(
        float(losses["model_loss"]), base["model_loss"] + depth_loss + kind_loss, rtol=1e-5
    )
    np.testing.assert_allclose(float(losses["cls_loss"]), base["cls_loss"], rtol=1e-5)


def test_runs_in_a_graph_and_gives_gradients():
    outputs, labels = make_batch()
    logits = {k: tf.Variable(v) for k, v in outputs["cls_outputs"].items()}
    boxes = {k: tf.Variable(v) for k, v in outputs["box_outputs"].items()}

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = retinanet_losses(
                {"cls_outputs": logits, "box_outputs": boxes}, labels, num_classes=NUM_CLASSES
            )["total_loss"]
        return loss, tape.gradient(loss, list(logits.values()) + list(boxes.values()))

    loss, gradients = step()
    expected = numpy_retinanet_loss(outputs, labels, 0.25, 1.5, 0.1, 50, 1.0, [])
    np.testing.assert_allclose(float(loss), expected["total_loss"], rtol=1e-5)
    assert all(g is not None and np.all(np.isfinite(g)) for g in gradients)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (("outputs", "cls_outputs"), "cls_outputs"),
        (("labels", "box_weights"), "box_weights"),
        (("labels", "cls_targets"), "cls_targets"),
    ],
)
def test_missing_inputs_are_named(drop, message):
    outputs, labels = make_batch()
    tree = outputs if drop[0] == "outputs" else labels
    del tree[drop[1]]
    with pytest.raises(ValueError, match=message):
        retinanet_losses(outputs, labels, num_classes=NUM_CLASSES)


def test_attribute_errors_name_the_attribute():
    outputs, labels = make_batch()
    outputs["attribute_outputs"] = {"depth": outputs["box_outputs"]}
    labels["attribute_targets"] = {}
    with pytest.raises(ValueError, match="depth"):
        retinanet_losses(
            outputs,
            labels,
            num_classes=NUM_CLASSES,
            attribute_heads=[{"name": "depth", "type": "regression", "size": 4}],
        )
    with pytest.raises(ValueError, match="last dimension"):
        retinanet_losses(outputs, labels, num_classes=3)
