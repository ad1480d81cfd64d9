"""Tests for `garden_orbit.actions.PeriodicAction`."""

import numpy as np
import pytest

from garden_orbit import actions
from garden_orbit._tensorflow import tf


def test_runs_only_at_multiples_of_the_interval():
    step = tf.Variable(0, dtype=tf.int64)
    calls = []
    periodic = actions.PeriodicAction(lambda output: calls.append(output), 3, step)
    for value in range(11):
        step.assign(value)
        periodic({"step": value})
    assert calls == [{"step": 0}, {"step": 3}, {"step": 6}, {"step": 9}]


def test_reads_the_step_at_call_time():
    step = tf.Variable(5, dtype=tf.int64)
    calls = []
    periodic = actions.PeriodicAction(lambda output: calls.append(output), 10, step)
    periodic("a")
    step.assign(20)
    periodic("b")
    assert calls == ["b"]


@pytest.mark.parametrize("interval", [0, -4])
def test_rejects_non_positive_intervals(interval):
    with pytest.raises(ValueError, match="interval must be a positive number of steps"):
        actions.PeriodicAction(lambda _: None, interval, tf.Variable(0))


@pytest.mark.parametrize("interval", [2.5, "3", True])
def test_rejects_non_integer_intervals(interval):
    with pytest.raises(TypeError, match="interval must be an integer"):
        actions.PeriodicAction(lambda _: None, interval, tf.Variable(0))


def test_accepts_numpy_integer_interval():
    periodic = actions.PeriodicAction(lambda _: None, np.int64(4), tf.Variable(0))
    assert periodic.interval == 4
    assert isinstance(periodic.interval, int)


def test_rejects_a_non_callable_action():
    with pytest.raises(TypeError, match="action must be callable"):
        actions.PeriodicAction(None, 2, tf.Variable(0))
