"""`FocalLoss`: the sigmoid focal loss of Lin et al. (2017), against hand and NumPy values."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_vision.losses import FocalLoss


def numpy_focal_loss(y_true, logits, alpha, gamma):
    """The paper's formula, element by element, in float64."""
    y = np.asarray(y_true, np.float64)
    x = np.asarray(logits, np.float64)
    p = 1.0 / (1.0 + np.exp(-x))
    # Stable binary cross-entropy from logits: max(x, 0) - x * y + log(1 + exp(-|x|)).
    bce = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    p_t = np.where(y == 1, p, 1 - p)
    alpha_t = np.where(y == 1, alpha, 1 - alpha)
    return alpha_t * (1 - p_t) ** gamma * bce


def test_hand_computed_values_at_a_zero_logit():
    # sigmoid(0) = 0.5, cross-entropy ln 2, modulator 0.5**gamma.
    loss = FocalLoss(alpha=0.25, gamma=2.0, reduction=None)
    values = np.asarray(loss(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]])))
    np.testing.assert_allclose(
        values, [[0.25 * 0.25 * math.log(2), 0.75 * 0.25 * math.log(2)]], rtol=1e-6
    )


def test_confident_right_answers_cost_almost_nothing_and_wrong_ones_a_lot():
    loss = FocalLoss(alpha=0.25, gamma=2.0, reduction=None)
    values = np.asarray(loss(np.array([1.0, 0.0, 1.0]), np.array([6.0, -6.0, -6.0])))
    # p_t = sigmoid(6) ~ 0.9975: (1 - p_t)**2 ~ 6e-6 of the cross-entropy.
    assert values[0] < 1e-7
    assert values[1] < 1e-7
    np.testing.assert_allclose(values[2], 0.25 * (1 - 1 / (1 + math.exp(6))) ** 2 * 6.00247, 1e-4)


@pytest.mark.parametrize(
    ("alpha", "gamma"), [(0.25, 1.5), (0.25, 2.0), (0.5, 0.0), (0.75, 0.5), (1.0, 3.0)]
)
def test_every_element_matches_numpy(alpha, gamma):
    rng = np.random.default_rng(7)
    logits = rng.normal(scale=3.0, size=(2, 5, 4)).astype("float32")
    targets = (rng.random((2, 5, 4)) < 0.3).astype("float32")
    loss = FocalLoss(alpha=alpha, gamma=gamma, reduction=None)
    np.testing.assert_allclose(
        np.asarray(loss(targets, logits)),
        numpy_focal_loss(targets, logits, alpha, gamma),
        rtol=1e-5,
        atol=1e-7,
    )


def test_gamma_zero_is_alpha_weighted_cross_entropy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 6)).astype("float32")
    targets = (rng.random((3, 6)) < 0.5).astype("float32")
    x = logits.astype(np.float64)
    bce = -(targets * np.log(1 / (1 + np.exp(-x))) + (1 - targets) * np.log(1 / (1 + np.exp(x))))
    loss = FocalLoss(alpha=0.5, gamma=0.0, reduction=None)
    np.testing.assert_allclose(np.asarray(loss(targets, logits)), 0.5 * bce, rtol=1e-5)


def test_reductions_and_anchor_weights_broadcast_over_classes():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 6, 3)).astype("float32")
    targets = (rng.random((2, 6, 3)) < 0.3).astype("float32")
    weights = rng.random((2, 6)).astype("float32")
    elementwise = numpy_focal_loss(targets, logits, 0.25, 1.5)
    weighted = elementwise * weights[..., None]

    summed = FocalLoss(0.25, 1.5, reduction="sum")(targets, logits, sample_weight=weights)
    np.testing.assert_allclose(float(summed), weighted.sum(), rtol=1e-5)
    # Model Garden's default (AUTO -> SUM_OVER_BATCH_SIZE): the mean over every element.
    mean = FocalLoss(0.25, 1.5)(targets, logits, sample_weight=weights)
    np.testing.assert_allclose(float(mean), weighted.sum() / weighted.size, rtol=1e-5)


def test_extreme_logits_give_finite_values_and_gradients():
    logits = tf.constant([[100.0, -100.0, 0.0], [-100.0, 100.0, 30.0]])
    targets = tf.constant([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    loss = FocalLoss(0.25, 1.5, reduction="sum")
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(targets, logits)
    gradient = tape.gradient(value, logits)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(gradient))
    # The two confident mistakes cost alpha_t * 100 each (cross-entropy ~ |logit|).
    expected = numpy_focal_loss(targets.numpy(), logits.numpy(), 0.25, 1.5).sum()
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)
    assert float(value) > 0.75 * 100


def test_integer_targets_and_bfloat16_logits_are_computed_in_float32():
    logits = np.array([[0.5, -1.0]], np.float32)
    loss = FocalLoss(0.25, 1.5, reduction=None)
    value = loss(np.array([[1, 0]], np.int32), tf.cast(logits, tf.bfloat16))
    assert value.dtype == tf.float32
    np.testing.assert_allclose(
        np.asarray(value), numpy_focal_loss([[1, 0]], logits, 0.25, 1.5), rtol=1e-2
    )


def test_config_round_trip():
    loss = FocalLoss(alpha=0.3, gamma=1.0, reduction="sum", name="cls")
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(rebuilt, FocalLoss)
    assert (rebuilt.alpha, rebuilt.gamma, rebuilt.reduction, rebuilt.name) == (
        0.3,
        1.0,
        "sum",
        "cls",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"alpha": 1.5, "gamma": 2.0}, "alpha"), ({"alpha": 0.25, "gamma": -1.0}, "gamma")],
)
def test_out_of_range_settings_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FocalLoss(**kwargs)
