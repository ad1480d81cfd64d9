"""Optimizers and learning-rate schedules from plugins (`garden.optimizers`, `garden.schedules`).

In-process registrations cover the config semantics and the factories; a fake installed
distribution on a temporary `PYTHONPATH`, run in a fresh interpreter, covers entry points,
`garden list` and that reading such a config imports neither TensorFlow nor the plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from garden_core import registry
from garden_core.config import ConfigError, OptimizationConfig, override_config
from garden_core.optimization import build_learning_rate, build_optimizer, lr_schedules
from garden_core.optimization.optimizers import Adam
from garden_core.testing.plugins import make_distribution


class SignDescent(keras.optimizers.Optimizer):
    """`variable -= learning_rate * scale * sign(gradient)`."""

    def __init__(self, learning_rate=0.01, scale=1.0, name="SignDescent", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.scale = float(scale)

    def update_step(self, gradient, variable, learning_rate):
        rate = keras.ops.cast(learning_rate, variable.dtype) * self.scale
        self.assign_sub(variable, rate * keras.ops.sign(gradient))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


class Halving(keras.optimizers.schedules.LearningRateSchedule):
    """`initial * 0.5 ** floor(step / every)`."""

    def __init__(self, initial, every=10):
        self.initial = float(initial)
        self.every = int(every)

    def __call__(self, step):
        halvings = keras.ops.floor(keras.ops.cast(step, "float32") / self.every)
        return self.initial * keras.ops.power(0.5, halvings)

    def get_config(self):
        return {"initial": self.initial, "every": self.every}


def _not_an_optimizer(learning_rate, **settings):
    return {"learning_rate": learning_rate, **settings}


def _not_a_schedule(**settings):
    return 0.1


PLUGINS = {
    "optimizers": {
        "sign_descent": SignDescent,
        "not_an_optimizer": _not_an_optimizer,
        "slide": SignDescent,  # Model Garden names a `slide` branch it never implemented.
    },
    "schedules": {"halving": Halving, "not_a_schedule": _not_a_schedule},
}

CONFIG_YAML = """
optimizer:
  type: sign_descent
  sign_descent:
    scale: 0.5
learning_rate:
  type: halving
  halving: {initial: 0.2, every: 2}
"""


@pytest.fixture
def plugins():
    for kind, items in PLUGINS.items():
        for name, value in items.items():
            registry.registry(kind).register(name, value)
    yield
    for kind, items in PLUGINS.items():
        for name in items:
            registry.registry(kind).unregister(name)


def _value(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def _train_step(optimizer, variable, coefficients):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(variable * coefficients)
    optimizer.apply_gradients(zip(tape.gradient(loss, [variable]), [variable], strict=True))


@pytest.mark.usefixtures("plugins")
def test_yaml_and_overrides_choose_plugins_and_training_follows_them(tmp_path):
    path = tmp_path / "optimization.yaml"
    path.write_text(CONFIG_YAML)
    config = override_config(OptimizationConfig(), [str(path)], "optimizer.sign_descent.scale=0.25")
    assert config.optimizer.get() == {"scale": 0.25}
    assert config.learning_rate.get() == {"initial": 0.2, "every": 2}
    optimizer = build_optimizer(config)
    assert type(optimizer) is SignDescent
    assert optimizer.scale == 0.25
    assert isinstance(optimizer._learning_rate, Halving)
    variable = tf.Variable([1.0, -2.0, 3.0])
    coefficients = tf.constant([3.0, -0.5, 0.0])  # The gradient: signs +1, -1, 0.
    _train_step(optimizer, variable, coefficients)
    np.testing.assert_allclose(variable.numpy(), [1.0 - 0.05, -2.0 + 0.05, 3.0], rtol=1e-6)
    for _ in range(2):  # Steps 1 and 2: learning rates 0.2, then 0.1 after the halving.
        _train_step(optimizer, variable, coefficients)
    moved = 0.25 * (0.2 + 0.2 + 0.1)
    np.testing.assert_allclose(variable.numpy(), [1.0 - moved, -2.0 + moved, 3.0], rtol=1e-6)


@pytest.mark.usefixtures("plugins")
def test_warmups_wrap_plugin_schedules():
    config = OptimizationConfig.from_dict(yaml.safe_load(CONFIG_YAML))
    config.override({"warmup": {"type": "linear", "linear": {"warmup_steps": 4}}})
    schedule = build_learning_rate(config)
    assert isinstance(schedule, lr_schedules.LinearWarmup)
    assert isinstance(schedule.after_warmup, Halving)
    # Ramp from 0 to halving(4) = 0.05, then halving(step).
    values = [_value(schedule, step) for step in (0, 2, 4, 5, 6)]
    np.testing.assert_allclose(values, [0.0, 0.025, 0.05, 0.05, 0.025], rtol=1e-6)


@pytest.mark.usefixtures("plugins")
def test_plugin_settings_round_trip_and_merge_like_nested_configs():
    config = OptimizationConfig.from_dict(yaml.safe_load(CONFIG_YAML))
    config.override({"optimizer.sign_descent.extra": {"betas": (0.9, 0.99), "name": "x"}})
    config.override({"optimizer": {"type": "sgd"}})
    written = yaml.safe_load(config.as_yaml())
    assert written["optimizer"]["type"] == "sgd"
    # Settings of an unchosen plugin are kept, as an unchosen built-in branch that differs
    # from its defaults is.
    assert written["optimizer"]["sign_descent"] == {
        "scale": 0.5,
        "extra": {"betas": [0.9, 0.99], "name": "x"},
    }
    assert written["learning_rate"] == {"type": "halving", "halving": {"initial": 0.2, "every": 2}}
    assert OptimizationConfig.from_dict(written) == config
    changed = OptimizationConfig.from_dict(written)
    changed.override({"optimizer.sign_descent.extra.name": "y"})
    assert changed != config
    assert changed.as_dict()["optimizer"]["sign_descent"]["extra"] == {
        "betas": [0.9, 0.99],
        "name": "y",
    }

    # No settings (YAML `halving:` is null) is the same as an empty mapping.
    bare = OptimizationConfig.from_dict({"learning_rate": {"type": "halving", "halving": None}})
    assert bare.learning_rate.get() == {}
    assert bare.as_dict()["learning_rate"] == {"type": "halving", "halving": {}}
    assert OptimizationConfig.from_dict(bare.as_dict()) == bare
    assert bare == OptimizationConfig.from_dict({"learning_rate": {"type": "halving"}})

    # `get()` is a copy; attribute assignment replaces the settings; locking freezes them.
    config.optimizer.type = "sign_descent"
    config.optimizer.get()["scale"] = 99.0
    assert config.optimizer.get()["scale"] == 0.5
    config.optimizer.sign_descent = {"scale": 2}
    assert config.optimizer.get() == {"scale": 2}
    config.lock()
    with pytest.raises(ConfigError, match="the config is locked"):
        config.override({"optimizer.sign_descent.scale": 3})
    with pytest.raises(ConfigError, match=r"`OptimizerConfig.sign_descent`: the config is lo"):
        config.optimizer.sign_descent = {"scale": 3}
    copy = config.replace(**{"optimizer.sign_descent.scale": 3})
    assert (copy.optimizer.get(), config.optimizer.get()) == ({"scale": 3}, {"scale": 2})


@pytest.mark.usefixtures("plugins")
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (
            {"optimizer.type": "sign_decent"},
            "`optimizer.type` is 'sign_decent', which is not one of this config's branches "
            "or registered optimizers: did you mean `sign_descent`?",
        ),
        ({"optimizer.type": "adamm"}, "did you mean `adam` or `adamw`?"),
        (
            {"optimizer.sign_descnt.scale": 1.0},
            "unknown key `optimizer.sign_descnt`: did you mean `sign_descent`?",
        ),
        ({"learning_rate.type": "halvng"}, "registered schedules: did you mean `halving`?"),
        ({"learning_rate.type": "sign_descent"}, "is 'sign_descent', which is not one"),
        ({"warmup.type": "halving"}, "`warmup.type` is 'halving', which is not one"),
        ({"optimizer.sign_descent": 3}, "expects a mapping of the settings of optimizer plugin"),
        ({"optimizer.sign_descent.scale": {1, 2}}, "`optimizer.sign_descent.scale` expects plain"),
        ({"optimizer.type": "sgd_experimental"}, "does not support this Model Garden choice"),
    ],
)
def test_names_that_are_neither_branches_nor_plugins_are_errors(overrides, error):
    with pytest.raises(ConfigError) as raised:
        OptimizationConfig().override(overrides)
    assert error in str(raised.value)


def test_plugin_names_stop_being_valid_when_unregistered():
    registry.optimizers.register("short_lived", SignDescent)
    config = OptimizationConfig.from_dict({"optimizer": {"type": "short_lived"}})
    registry.optimizers.unregister("short_lived")
    with pytest.raises(ConfigError, match="unknown optimizer `short_lived`"):
        build_optimizer(config, learning_rate=0.1)
    with pytest.raises(ConfigError, match=r"^`optimizer.type` is 'short_lived', which is not"):
        OptimizationConfig.from_dict({"optimizer": {"type": "short_lived"}})
    with pytest.raises(ConfigError, match=r"^unknown key `optimizer.short_lived`"):
        OptimizationConfig.from_dict(config.as_dict())


@pytest.mark.usefixtures("plugins")
def test_built_in_optimizers_are_registry_entries_and_plugins_may_fill_unsupported_ones():
    assert registry.optimizers.entry("adam").distribution == "garden-core"
    with pytest.raises(registry.RegistryError, match="`adam` is already offered by garden-core"):
        registry.optimizers.register("adam", SignDescent)
    config = OptimizationConfig.from_dict({"optimizer": {"type": "adam", "adam": {"beta_1": 0.5}}})
    assert config.optimizer.get().beta_1 == 0.5  # The built-in branch's typed settings.
    built = build_optimizer(config, learning_rate=0.1)
    assert (type(built), built.beta_1) == (Adam, 0.5)

    # The factory cannot tell a built-in from a replacement: both get the branch's fields.
    received = {}

    def recording_adam(learning_rate, **settings):
        received.update(settings, learning_rate=learning_rate)
        return SignDescent(learning_rate)

    registry.optimizers.register("adam", recording_adam, override=True)
    try:
        assert type(build_optimizer(config, learning_rate=0.1)) is SignDescent
    finally:
        registry.optimizers.unregister("adam")
    assert (received["beta_1"], received["learning_rate"], received["amsgrad"]) == (0.5, 0.1, False)
    assert type(build_optimizer(config, learning_rate=0.1)) is Adam

    slide = OptimizationConfig.from_dict({"optimizer": {"type": "slide", "slide": {"scale": 3}}})
    optimizer = build_optimizer(slide, learning_rate=0.1)
    assert (type(optimizer), optimizer.scale) == (SignDescent, 3.0)


@pytest.mark.usefixtures("plugins")
@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        (
            {"optimizer": {"type": "not_an_optimizer", "not_an_optimizer": {"beta": 1}}},
            [
                "`optimizer_config.optimizer.not_an_optimizer`: optimizer "
                "`not_an_optimizer` (test_plugin_optimizers:_not_an_optimizer, registered "
                "in-process) returned a dict ({'learning_rate': 0.1, 'beta': 1}), not a "
                "keras.optimizers.Optimizer"
            ],
        ),
        (
            {"learning_rate": {"type": "not_a_schedule"}},
            ["schedule `not_a_schedule`", "returned a float (0.1), not a keras"],
        ),
        (
            {"optimizer.sign_descent.scal": 0.5},
            [
                "`optimizer_config.optimizer.sign_descent`: optimizer `sign_descent`",
                "rejected its settings: ValueError: Argument(s) not recognized: {'scal': 0.5}",
            ],
        ),
        (
            {"learning_rate.halving.evry": 3},
            [
                "`optimizer_config.learning_rate.halving`: schedule `halving`",
                "cannot take these arguments (got an unexpected keyword argument 'evry'); "
                "settings given: every, evry, initial; the factory adds: nothing",
            ],
        ),
        (
            {"learning_rate.halving": None},  # Clears the settings.
            [
                "cannot take these arguments (missing a required argument: 'initial'); "
                "settings given: none; the factory adds: nothing"
            ],
        ),
        (
            {"optimizer.sign_descent.learning_rate": 0.5},
            [
                "`optimizer_config.optimizer.sign_descent.learning_rate` cannot be set in the "
                "config: the optimizer factory passes `learning_rate` itself"
            ],
        ),
    ],
)
def test_plugins_that_reject_settings_or_return_the_wrong_thing_are_config_errors(
    overrides, messages
):
    config = OptimizationConfig.from_dict(yaml.safe_load(CONFIG_YAML))
    config.override(overrides)
    learning_rate = 0.1 if config.optimizer.type == "not_an_optimizer" else None
    with pytest.raises(ConfigError) as raised:
        build_optimizer(config, learning_rate=learning_rate)
    for message in messages:
        assert message in str(raised.value)


# An installed distribution offering both kinds, and one that fails to import.

ACME_OPTIM = """
import keras

class SignDescent(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.01, scale=1.0, name="AcmeSign", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.scale = float(scale)

    def update_step(self, gradient, variable, learning_rate):
        rate = keras.ops.cast(learning_rate, variable.dtype) * self.scale
        self.assign_sub(variable, rate * keras.ops.sign(gradient))

def halving(initial, every):
    return keras.optimizers.schedules.ExponentialDecay(initial, every, 0.5, staircase=True)
"""

DISTRIBUTION_CHECK = """
import json, sys
from garden_core.config import ConfigError, OptimizationConfig, override_config

config = override_config(OptimizationConfig(), [sys.argv[1]], "optimizer.acme_sign.scale=2")
round_trip = OptimizationConfig.from_dict(config.as_dict()) == config
try:
    OptimizationConfig().override({"learning_rate.type": "acme_halvng"})
except ConfigError as error:
    typo = str(error)
loaded_by_config = sorted(
    m for m in ("tensorflow", "keras", "acme_optim") if m in sys.modules
)

import keras
from garden_core.optimization import build_optimizer

optimizer = build_optimizer(config)
variable = keras.Variable([1.0, -1.0])
optimizer.apply_gradients([(keras.ops.convert_to_tensor([0.3, -4.0]), variable)])
config.override({"optimizer.type": "broken_opt"})
try:
    build_optimizer(config)
except ConfigError as error:
    broken = str(error)
print(json.dumps({
    "round_trip": round_trip,
    "typo": typo,
    "loaded_by_config": loaded_by_config,
    "class": type(optimizer).__module__ + "." + type(optimizer).__name__,
    "variable": variable.numpy().tolist(),
    "broken": broken,
}))
"""


def _run(root, *args, **env):
    environment = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment.pop(registry.DISABLE_ENV, None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=environment, timeout=300
    )


@pytest.fixture
def installed(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    make_distribution(
        root,
        "acme-optim",
        "acme_optim",
        ACME_OPTIM,
        {
            "garden.optimizers": {"acme_sign": "acme_optim:SignDescent"},
            "garden.schedules": {"acme_halving": "acme_optim:halving"},
        },
    )
    make_distribution(
        root,
        "broken-optim",
        "broken_optim",
        "raise RuntimeError('boom at import')\n",
        {"garden.optimizers": {"broken_opt": "broken_optim:Optimizer"}},
    )
    config = tmp_path / "optimization.yaml"
    config.write_text(
        "optimizer: {type: acme_sign, acme_sign: {scale: 1.0}}\n"
        "learning_rate: {type: acme_halving, acme_halving: {initial: 0.1, every: 5}}\n"
    )
    return root, config


@pytest.mark.slow  # A fresh interpreter that imports TensorFlow.
def test_an_installed_distribution_offers_an_optimizer_and_a_schedule(installed):
    root, config = installed
    result = _run(root, "-c", DISTRIBUTION_CHECK, str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["round_trip"]
    assert "registered schedules: did you mean `acme_halving`?" in report["typo"]
    assert report["loaded_by_config"] == []  # Names are checked against metadata only.
    assert report["class"] == "acme_optim.SignDescent"
    # learning rate 0.1 * scale 2 against the gradient's signs.
    np.testing.assert_allclose(report["variable"], [0.8, -0.8], rtol=1e-6)
    assert "optimizer `broken_opt` from broken-optim 1.2.3 failed to load" in report["broken"]
    assert "RuntimeError: boom at import" in report["broken"]
    assert report["broken"].startswith("`optimizer_config.optimizer.type` is 'broken_opt'")


def test_garden_list_shows_plugin_optimizers_and_schedules(installed):
    root, _ = installed
    cli = "import sys; from garden_core.cli import main; sys.exit(main(sys.argv[1:]))"
    listed = _run(root, "-c", cli, "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert ["optimizers", "acme_sign", "acme-optim", "1.2.3"] in rows
    assert ["optimizers", "broken_opt", "broken-optim", "1.2.3"] in rows
    assert ["schedules", "acme_halving", "acme-optim", "1.2.3"] in rows
    only = _run(root, "-c", cli, "list", "schedules", "acme_*")
    assert only.stdout.split() == ["schedules", "acme_halving", "acme-optim", "1.2.3"]
    disabled = _run(
        root,
        "-c",
        "from garden_core.config import OptimizationConfig\n"
        "OptimizationConfig.from_dict({'optimizer': {'type': 'acme_sign'}})",
        **{registry.DISABLE_ENV: "acme-optim"},
    )
    assert disabled.returncode == 1
    assert "`optimizer.type` is 'acme_sign', which is not one" in disabled.stderr
