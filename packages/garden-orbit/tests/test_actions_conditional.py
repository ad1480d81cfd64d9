"""Tests for `garden_orbit.actions.ConditionalAction`."""

import pytest

import garden_orbit as orbit
import garden_orbit.actions  # noqa: F401  (makes `orbit.actions` available)
from garden_orbit._tensorflow import tf


def _recorder(log, name):
    def action(output):
        log.append((name, output))

    return action


def test_runs_all_actions_in_order_when_condition_holds():
    log = []
    conditional = orbit.actions.ConditionalAction(
        condition=lambda output: output["accuracy"] > 0.5,
        action=[_recorder(log, "first"), _recorder(log, "second")],
    )
    output = {"accuracy": 0.9}
    conditional(output)
    assert log == [("first", output), ("second", output)]


def test_runs_nothing_when_condition_fails():
    log = []
    seen = []

    def condition(output):
        seen.append(output)
        return output["accuracy"] > 0.5

    conditional = orbit.actions.ConditionalAction(condition, _recorder(log, "only"))
    conditional({"accuracy": 0.1})
    assert log == []
    assert seen == [{"accuracy": 0.1}]
    conditional({"accuracy": 0.7})
    assert log == [("only", {"accuracy": 0.7})]


@pytest.mark.parametrize(("value", "expected_calls"), [(True, 1), (False, 0)])
def test_accepts_a_boolean_tensor_condition(value, expected_calls):
    log = []
    conditional = orbit.actions.ConditionalAction(
        lambda output: tf.constant(value), _recorder(log, "a")
    )
    conditional({})
    assert len(log) == expected_calls


def test_an_iterable_of_actions_is_read_once():
    log = []
    actions = (_recorder(log, name) for name in ("a", "b"))  # A generator can be read once.
    conditional = orbit.actions.ConditionalAction(lambda _: True, actions)
    conditional(1)
    conditional(2)
    assert [entry[0] for entry in log] == ["a", "b", "a", "b"]
    assert [entry[1] for entry in log] == [1, 1, 2, 2]
    assert len(conditional.actions) == 2


def test_works_with_new_best_metric_as_condition():
    log = []
    conditional = orbit.actions.ConditionalAction(
        orbit.actions.NewBestMetric("accuracy"), _recorder(log, "export")
    )
    for accuracy in (0.5, 0.4, 0.6, 0.6):
        conditional({"accuracy": accuracy})
    assert [output["accuracy"] for _, output in log] == [0.5, 0.6]


def test_rejects_non_callables():
    with pytest.raises(TypeError, match="condition must be callable"):
        orbit.actions.ConditionalAction(True, lambda _: None)
    with pytest.raises(TypeError, match="action 1 is not callable"):
        orbit.actions.ConditionalAction(lambda _: True, [lambda _: None, "export"])
    with pytest.raises(TypeError, match="callable or an iterable"):
        orbit.actions.ConditionalAction(lambda _: True, 3)


def test_an_exception_in_an_action_stops_the_later_ones():
    log = []

    def failing(output):
        raise RuntimeError("export failed")

    conditional = orbit.actions.ConditionalAction(
        lambda _: True, [failing, _recorder(log, "commit")]
    )
    with pytest.raises(RuntimeError, match="export failed"):
        conditional({})
    assert log == []
