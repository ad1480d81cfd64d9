"""Tests for `garden_orbit.actions.NaNGuard`."""

import math

import numpy as np
import pytest

from garden_orbit import actions
from garden_orbit._tensorflow import tf


@pytest.fixture
def state(tmp_path):
    """A global step, two variables and a checkpoint manager saving all of them."""
    step = tf.Variable(0, dtype=tf.int64)
    weights = tf.Variable([1.0, 2.0])
    bias = tf.Variable(0.5)
    checkpoint = tf.train.Checkpoint(step=step, weights=weights, bias=bias)
    manager = tf.train.CheckpointManager(checkpoint, str(tmp_path / "ckpt"), max_to_keep=3)
    return step, weights, bias, manager


def test_finite_values_pass():
    step = tf.Variable(3, dtype=tf.int64)
    guard = actions.NaNGuard(step)
    guard({"loss": 1.5, "accuracy": math.nan})  # Only the loss is watched.
    guard({"loss": tf.constant(0.0)})
    guard({"loss": np.array([1.0, 2.0])})
    assert guard.retries == 0


@pytest.mark.parametrize(
    ("loss", "shown"),
    [(math.nan, "nan"), (tf.constant(math.inf), "inf"), (np.float32(-np.inf), "-inf")],
)
def test_non_finite_loss_without_checkpoint_manager_raises(loss, shown):
    step = tf.Variable(40, dtype=tf.int64)
    guard = actions.NaNGuard(step)
    with pytest.raises(
        actions.NaNLossError,
        match=rf"^loss is {shown} at global step 40 \(in the train loop ending at that step\)",
    ):
        guard({"loss": loss})


def test_restores_latest_checkpoint_then_gives_up_after_max_retries(state):
    step, weights, bias, manager = state
    step.assign(5)
    weights.assign([3.0, 4.0])
    bias.assign(-1.0)
    manager.save(checkpoint_number=5)

    step.assign(8)
    weights.assign([123.0, -9.0])
    bias.assign(math.nan)
    guard = actions.NaNGuard(step, checkpoint_manager=manager, max_retries=1)
    guard({"loss": math.nan})

    assert guard.retries == 1
    assert step.numpy() == 5
    np.testing.assert_array_equal(weights.numpy(), [3.0, 4.0])
    assert bias.numpy() == -1.0

    step.assign(9)
    with pytest.raises(actions.NaNLossError, match="at global step 9") as error:
        guard({"loss": tf.constant(math.nan)})
    assert "max_retries=1" in str(error.value)
    assert guard.retries == 1
    assert step.numpy() == 9  # Giving up restores nothing.


def test_zero_retries_with_a_manager_raises_without_restoring(state):
    step, weights, _, manager = state
    manager.save(checkpoint_number=0)
    step.assign(3)
    weights.assign([7.0, 7.0])
    guard = actions.NaNGuard(step, checkpoint_manager=manager)
    with pytest.raises(actions.NaNLossError, match="step 3"):
        guard({"loss": math.inf})
    assert step.numpy() == 3
    np.testing.assert_array_equal(weights.numpy(), [7.0, 7.0])


def test_no_checkpoint_to_restore_is_an_error(state):
    step, _, _, manager = state
    step.assign(2)
    guard = actions.NaNGuard(step, checkpoint_manager=manager, max_retries=3)
    with pytest.raises(actions.NaNLossError, match="no checkpoint in .*ckpt to restore"):
        guard({"loss": math.nan})
    assert guard.retries == 0


def test_a_checkpoint_missing_variables_is_an_error(state):
    step, _, _, manager = state
    manager.save(checkpoint_number=1)
    manager.checkpoint.extra = tf.Variable(math.nan)  # Created after the checkpoint.
    guard = actions.NaNGuard(step, checkpoint_manager=manager, max_retries=1)
    with pytest.raises(actions.NaNLossError, match="unrestored"):
        guard({"loss": math.nan})


def test_missing_metric_names_the_key_and_the_keys_present():
    guard = actions.NaNGuard(tf.Variable(0, dtype=tf.int64), metric="total_loss")
    with pytest.raises(KeyError, match=r"'total_loss'.*keys present: 'accuracy', 'loss'"):
        guard({"loss": 1.0, "accuracy": 0.5})


def test_metric_none_watches_every_scalar_including_nested_ones():
    step = tf.Variable(12, dtype=tf.int64)
    guard = actions.NaNGuard(step, metric=None)
    guard({"loss": 1.0, "name": "run", "histogram": np.array([np.nan, 1.0]), "m": {"a": 2}})
    with pytest.raises(actions.NaNLossError, match="^metrics/accuracy is inf at global step 12"):
        guard({"loss": 1.0, "metrics": {"accuracy": tf.constant(np.inf)}})
    with pytest.raises(actions.NaNLossError, match="^output is nan"):
        guard(tf.constant(math.nan))


def test_array_metric_with_one_non_finite_element():
    guard = actions.NaNGuard(tf.Variable(1, dtype=tf.int64))
    with pytest.raises(actions.NaNLossError, match=r"1 of 3 values, first nan"):
        guard({"loss": tf.constant([1.0, math.nan, 2.0])})


def test_invalid_arguments():
    step = tf.Variable(0, dtype=tf.int64)
    with pytest.raises(ValueError, match="needs a checkpoint_manager"):
        actions.NaNGuard(step, max_retries=2)
    with pytest.raises(ValueError, match=">= 0"):
        actions.NaNGuard(step, max_retries=-1)
    with pytest.raises(TypeError, match="integer"):
        actions.NaNGuard(step, max_retries=1.5)
    with pytest.raises(TypeError, match="number or an array"):
        actions.NaNGuard(step)({"loss": "nan"})
