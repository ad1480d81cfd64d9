"""Every learning-rate schedule and warmup, checked at chosen steps against its formula."""

import math

import keras
import numpy as np
import pytest

from garden_core.config import ConfigError, OptimizationConfig
from garden_core.optimization import build_learning_rate, lr_schedules


def _lr(overrides, steps):
    config = OptimizationConfig()
    config.override(overrides)
    schedule = build_learning_rate(config)
    return [float(keras.ops.convert_to_numpy(schedule(step))) for step in steps]


def _check(overrides, expected_by_step):
    steps = list(expected_by_step)
    np.testing.assert_allclose(
        _lr(overrides, steps), [expected_by_step[s] for s in steps], rtol=1e-5, atol=1e-8
    )


def test_constant():
    _check(
        {"learning_rate": {"type": "constant", "constant": {"learning_rate": 0.3}}},
        {0: 0.3, 1000: 0.3},
    )


def test_stepwise_with_offset():
    config = {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1], "offset": 5}
    # Keras' PiecewiseConstantDecay switches after each boundary: step - offset <= 10 -> 1.0.
    _check(
        {"learning_rate": {"type": "stepwise", "stepwise": config}},
        {0: 1.0, 15: 1.0, 16: 0.5, 25: 0.5, 26: 0.1, 100: 0.1},
    )


def test_exponential():
    config = {"initial_learning_rate": 1.0, "decay_steps": 10, "decay_rate": 0.5}
    _check(
        {"learning_rate": {"type": "exponential", "exponential": config}},
        {0: 1.0, 5: 0.5**0.5, 10: 0.5, 30: 0.125},
    )
    config["staircase"] = True
    _check(
        {"learning_rate": {"type": "exponential", "exponential": config}},
        {9: 1.0, 10: 0.5, 19: 0.5},
    )


def test_polynomial():
    config = {
        "initial_learning_rate": 1.0,
        "decay_steps": 100,
        "end_learning_rate": 0.0,
        "power": 2.0,
    }
    _check(
        {"learning_rate": {"type": "polynomial", "polynomial": config}},
        {0: 1.0, 50: 0.25, 100: 0.0, 200: 0.0},
    )


def test_cosine_with_offset():
    config = {"initial_learning_rate": 2.0, "decay_steps": 100, "alpha": 0.1, "offset": 10}

    def cosine(s):
        s = min(max(s, 0), 100)
        return 2.0 * ((1 - 0.1) * 0.5 * (1 + math.cos(math.pi * s / 100)) + 0.1)

    _check(
        {"learning_rate": {"type": "cosine", "cosine": config}},
        {10: cosine(0), 35: cosine(25), 60: cosine(50), 110: cosine(100), 500: cosine(100)},
    )


def test_direct_power():
    _check(
        {"learning_rate": {"type": "power", "power": {"initial_learning_rate": 2.0}}},
        {0: 2.0, 1: 2.0, 4: 1.0, 100: 0.2},
    )


def test_power_and_linear_decay():
    config = {
        "initial_learning_rate": 1.0,
        "total_decay_steps": 100,
        "power": -0.5,
        "linear_decay_fraction": 0.2,
    }

    def expected(s):
        value = max(s, 1) ** -0.5
        return value * min((100 - s) / (100 * 0.2), 1.0) if s < 100 else 0.0

    _check(
        {"learning_rate": {"type": "power_linear", "power_linear": config}},
        {4: expected(4), 80: expected(80), 90: expected(90), 99: expected(99), 100: 0.0},
    )


def test_power_with_offset():
    config = {
        "initial_learning_rate": 1.0,
        "power": -1.0,
        "offset": 10,
        "pre_offset_learning_rate": 0.05,
    }
    _check(
        {"learning_rate": {"type": "power_with_offset", "power_with_offset": config}},
        {0: 0.05, 9: 0.05, 10: 1.0, 12: 0.5, 20: 0.1},
    )


def test_step_cosine_with_offset():
    config = {"boundaries": [100, 110], "values": [1.0, 0.5]}

    def expected(s):
        if s < 100:
            return 0.5 + 0.25 * (1 + math.cos(math.pi * s / 100))
        if s < 110:
            return 0.25 * (1 + math.cos(math.pi * (s - 100) / 10))
        return 0.0

    _check(
        {"learning_rate": {"type": "step_cosine_with_offset", "step_cosine_with_offset": config}},
        {s: expected(s) for s in (0, 50, 99, 100, 105, 109, 110, 200)},
    )


def test_linear_warmup_ramps_to_the_schedule():
    overrides = {
        "learning_rate": {"type": "constant", "constant": {"learning_rate": 1.0}},
        "warmup": {"type": "linear", "linear": {"warmup_steps": 10, "warmup_learning_rate": 0.1}},
    }
    _check(overrides, {0: 0.1, 5: 0.1 + 0.5 * 0.9, 9: 0.1 + 0.9 * 0.9, 10: 1.0, 50: 1.0})


def test_polynomial_warmup_ramps_to_the_schedule_value_at_the_end_of_warmup():
    overrides = {
        "learning_rate": {"type": "power", "power": {"initial_learning_rate": 1.0, "power": -1}},
        "warmup": {"type": "polynomial", "polynomial": {"warmup_steps": 10, "power": 2}},
    }
    _check(overrides, {0: 0.0, 5: 0.1 * 0.25, 10: 0.1, 20: 0.05})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, r"learning_rate\.type` is not set: choose one of constant, cosine, exponential"),
        ({"learning_rate": {"type": "cosine"}}, "cosine.initial_learning_rate` must be set"),
        (
            {
                "learning_rate": {
                    "type": "stepwise",
                    "stepwise": {"boundaries": [1], "values": [1.0]},
                }
            },
            "one more entry",
        ),
        (
            {"learning_rate": {"type": "constant"}, "warmup": {"type": "linear"}},
            "warmup.linear.warmup_steps` must be set",
        ),
    ],
)
def test_incomplete_configs_name_the_missing_field(overrides, message):
    config = OptimizationConfig()
    config.override(overrides)
    with pytest.raises(ConfigError, match=message):
        build_learning_rate(config)


def test_schedules_serialize_and_run_in_a_tf_function():
    import tensorflow as tf

    schedule = lr_schedules.LinearWarmup(
        lr_schedules.Offset(lr_schedules.PowerAndLinearDecay(1.0, 100), 5), 10, 0.0
    )
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    compiled = tf.function(lambda step: restored(step))
    for step in (0, 7, 50, 104):
        assert float(compiled(tf.constant(step))) == pytest.approx(float(schedule(step)))
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    variable = keras.Variable(1.0)
    optimizer.apply_gradients([(keras.ops.convert_to_tensor(1.0), variable)])
    assert float(variable.numpy()) == pytest.approx(1.0)  # Warmup starts at 0.
