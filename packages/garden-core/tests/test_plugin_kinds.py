"""Every garden-core kind plugs in one way, and `garden_core.plugins` reports misuse clearly.

One temporary distribution (`garden_core.testing.plugins.make_distribution`) offers a plugin
of each kind garden-core builds: an experiment, whose task (a plugin task) builds a plugin
model and trains with a plugin optimizer and a plugin schedule. A fresh interpreter lists
them with `garden list` and trains the experiment with `garden train`, as a user would after
`pip install`. The other tests call `garden_core.plugins` in-process, with in-process
registrations.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from garden_core import plugins, registry
from garden_core.config import Config, ConfigError, OptimizationConfig
from garden_core.config.optimization import LrConfig, OptimizerConfig
from garden_core.testing.plugins import make_distribution, run_python

ACME_GARDEN = '''
"""A third-party package offering one plugin of each garden-core kind."""

import dataclasses

import keras

from garden_core import plugins
from garden_core.config import (
    Config, ExperimentConfig, OptimizationConfig, RuntimeConfig, TrainerConfig,
)
from garden_core.experiments.mock import MockTaskConfig
from garden_core.experiments.mock_task import MockTask

BUILT = {}  # kind -> what its builder received or returned, for the test to read.


@dataclasses.dataclass
class AcmeTaskConfig(MockTaskConfig):
    """The mock task, with its model from the `acme_mlp` builder."""


class AcmeTask(MockTask):
    def build_model(self):
        BUILT["tasks"] = type(self).__name__
        return plugins.build_named("models", "acme_mlp", self.task_config.model, "task.model")


def build_acme_mlp(*, input_size, hidden_size, num_hidden_layers, num_classes, use_batch_norm):
    BUILT["models"] = {"hidden_size": hidden_size, "num_classes": num_classes}
    inputs = keras.Input((input_size,), name="features")
    hidden = keras.layers.Dense(hidden_size, activation="relu")(inputs)
    outputs = keras.layers.Dense(num_classes, dtype="float32")(hidden)
    return keras.Model(inputs, outputs, name="acme_mlp")


class SignDescent(keras.optimizers.Optimizer):
    """`variable -= learning_rate * scale * sign(gradient)`."""

    def __init__(self, learning_rate, scale=1.0, name="AcmeSign", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.scale = float(scale)

    def update_step(self, gradient, variable, learning_rate):
        rate = keras.ops.cast(learning_rate, variable.dtype) * self.scale
        self.assign_sub(variable, rate * keras.ops.sign(gradient))


def acme_sign(learning_rate, scale):
    BUILT["optimizers"] = SignDescent(learning_rate, scale=scale)
    return BUILT["optimizers"]


@dataclasses.dataclass
class HalvingConfig(Config):
    initial: float = 0.05
    every: int = 10


def acme_halving(*, initial, every):
    BUILT["schedules"] = {"initial": initial, "every": every}
    return keras.optimizers.schedules.ExponentialDecay(initial, every, 0.5, staircase=True)


acme_halving.config_class = HalvingConfig


def acme_mock():
    return ExperimentConfig(
        task=AcmeTaskConfig(),
        trainer=TrainerConfig(
            train_steps=40,
            steps_per_loop=20,
            summary_interval=20,
            checkpoint_interval=20,
            validation_interval=40,
            validation_steps=-1,
            optimizer_config=OptimizationConfig.from_dict(
                {
                    "optimizer": {"type": "acme_sign", "acme_sign": {"scale": 1.0}},
                    "learning_rate": {"type": "acme_halving"},
                }
            ),
        ),
        runtime=RuntimeConfig(distribution_strategy="off", seed=1),
    )
'''

ENTRY_POINTS = {
    "garden.experiments": {"acme_mock": "acme_garden:acme_mock"},
    "garden.tasks": {"AcmeTaskConfig": "acme_garden:AcmeTask"},
    "garden.models": {"acme_mlp": "acme_garden:build_acme_mlp"},
    "garden.optimizers": {"acme_sign": "acme_garden:acme_sign"},
    "garden.schedules": {"acme_halving": "acme_garden:acme_halving"},
}

TRAIN_THROUGH_EVERY_KIND = """
import contextlib, io, json, os, sys

from garden_core import cli


def garden(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


_, listed, _ = garden("list")
rows = [line.split() for line in listed.splitlines() if "acme-garden" in line]

model_dir = MODEL_DIR
status, out, err = garden(
    "train", "--experiment", "acme_mock", "--mode", "train_and_eval", "--model_dir",
    os.path.join(model_dir, "run"), "--params_override",
    "trainer.optimizer_config.optimizer.acme_sign.scale=0.5,"
    "trainer.optimizer_config.learning_rate.acme_halving.every=8",
)
import acme_garden

optimizer = acme_garden.BUILT.pop("optimizers")
report = {
    "rows": rows,
    "status": status,
    "error": err[-2000:],
    "evaluations": [
        record["metrics"]
        for record in map(json.loads, open(os.path.join(model_dir, "run", "metrics.jsonl")))
        if record["mode"] == "eval"
    ],
    "built": acme_garden.BUILT,
    "optimizer": [type(optimizer).__name__, optimizer.scale, int(optimizer.iterations),
                  float(optimizer.learning_rate)],
}
typo_status, _, typo = garden(
    "train", "--experiment", "acme_mock", "--mode", "train", "--model_dir",
    os.path.join(model_dir, "typo"), "--params_override",
    "trainer.optimizer_config.learning_rate.acme_halving.evry=3",
)
report["typo"] = [typo_status, typo.strip()]
print(json.dumps(report))
"""


@pytest.mark.slow  # One fresh interpreter that imports TensorFlow and trains 40 steps.
def test_a_plugin_of_every_kind_lists_and_trains_through_garden(tmp_path):
    site = tmp_path / "site"
    make_distribution(site, "acme-garden", "acme_garden", ACME_GARDEN, ENTRY_POINTS)
    result = run_python(site, TRAIN_THROUGH_EVERY_KIND.replace("MODEL_DIR", repr(str(tmp_path))))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])

    assert sorted(report["rows"]) == sorted(
        [kind[len("garden.") :], name, "acme-garden", "1.2.3"]
        for kind, items in ENTRY_POINTS.items()
        for name in items
    )
    assert report["status"] == 0, report["error"]
    assert report["built"]["tasks"] == "AcmeTask"
    assert report["built"]["models"] == {"hidden_size": 16, "num_classes": 4}  # Mock's sizes.
    # `every` from the override, `initial` from the plugin's config class.
    assert report["built"]["schedules"] == {"initial": 0.05, "every": 8}
    name, scale, iterations, learning_rate = report["optimizer"]
    assert (name, scale, iterations) == ("SignDescent", 0.5, 40)
    assert learning_rate == pytest.approx(0.05 * 0.5**5)  # Halved at steps 8, 16, ..., 40.
    accuracy = report["evaluations"][-1]["accuracy"]
    assert accuracy > 0.5, report["evaluations"]  # Four balanced classes: chance is 0.25.

    status, error = report["typo"]
    assert status == 1
    assert error == (
        "garden: error: unknown key "
        "`trainer.optimizer_config.learning_rate.acme_halving.evry`: did you mean `every`?"
    )


# garden_core.plugins in-process.


@dataclasses.dataclass
class DepthConfig(Config):
    depth: int = 2
    width: int = 8


def build_block(*, input_specs, depth, width=4):
    return {"input_specs": input_specs, "depth": depth, "width": width}


def build_configured_block(*, input_specs, depth, width):
    return {"input_specs": input_specs, "depth": depth, "width": width}


build_configured_block.config_class = DepthConfig


def build_needing_steps(*, steps=None):
    if steps is None:
        raise plugins.SettingError("steps", "must be set for this block")
    return steps


@pytest.fixture
def blocks():
    names = {
        "test_block": build_block,
        "test_configured_block": build_configured_block,
        "test_needing_steps": build_needing_steps,
    }
    for name, builder in names.items():
        registry.backbones.register(name, builder)
    yield
    for name in names:
        registry.backbones.unregister(name)


@pytest.mark.usefixtures("blocks")
def test_settings_and_context_arrive_as_keywords():
    built = plugins.build_named(
        "backbones", "test_block", {"depth": 3}, "task.model.backbone.test_block", input_specs=7
    )
    assert built == {"input_specs": 7, "depth": 3, "width": 4}


@pytest.mark.usefixtures("blocks")
def test_a_setting_named_like_a_context_argument_is_an_error():
    with pytest.raises(ConfigError) as raised:
        plugins.build_named(
            "backbones", "test_block", {"depth": 3, "input_specs": 1}, "m.b", input_specs=7
        )
    assert str(raised.value) == (
        "`m.b.input_specs` cannot be set in the config: the backbone factory passes "
        "`input_specs` itself"
    )


@pytest.mark.usefixtures("blocks")
def test_a_signature_mismatch_names_the_path_the_settings_and_the_context():
    with pytest.raises(ConfigError) as raised:
        plugins.build_named(
            "backbones", "test_block", {"depth": 3, "dept": 1}, "m.b", input_specs=7
        )
    message = str(raised.value)
    assert message.startswith(
        "`m.b`: backbone `test_block` (test_plugin_kinds:build_block, registered in-process) "
        "cannot take these arguments"
    )
    assert "unexpected keyword argument 'dept'" in message
    assert message.endswith("settings given: dept, depth; the factory adds: input_specs")


@pytest.mark.usefixtures("blocks")
def test_a_config_class_gives_defaults_and_rejects_unknown_keys_by_path():
    built = plugins.build_named(
        "backbones", "test_configured_block", {"depth": 5}, "m.b", input_specs=7
    )
    assert built == {"input_specs": 7, "depth": 5, "width": 8}
    with pytest.raises(ConfigError, match=r"^unknown key `m\.b\.widht`: did you mean `width`\?"):
        plugins.build_named(
            "backbones", "test_configured_block", {"widht": 5}, "m.b", input_specs=7
        )
    with pytest.raises(ConfigError, match=r"`m\.b\.depth`"):
        plugins.build_named(
            "backbones", "test_configured_block", {"depth": "deep"}, "m.b", input_specs=7
        )


@pytest.mark.usefixtures("blocks")
def test_a_setting_error_is_reported_under_the_settings_path():
    with pytest.raises(ConfigError) as raised:
        plugins.build_named("backbones", "test_needing_steps", {}, "task.model.block")
    assert str(raised.value) == "`task.model.block.steps` must be set for this block"


def test_build_with_type_unset_lists_the_registered_names():
    registry.schedules.register("test_halving", build_needing_steps)
    try:
        with pytest.raises(ConfigError) as raised:
            plugins.build("schedules", LrConfig(), "trainer.optimizer_config.learning_rate")
    finally:
        registry.schedules.unregister("test_halving")
    message = str(raised.value)
    assert message.startswith(
        "`trainer.optimizer_config.learning_rate.type` is not set: choose one of "
    )
    listed = message.split("choose one of ")[1].split(", ")
    assert listed == sorted(listed)
    assert {"constant", "cosine", "stepwise", "test_halving"} <= set(listed)


def test_unknown_names_and_non_callables_are_config_errors():
    with pytest.raises(ConfigError, match=r"^`m\.b` is 'no_such_block': unknown backbone"):
        plugins.build_named("backbones", "no_such_block", {}, "m.b")
    registry.backbones.register("test_not_callable", 42)
    try:
        with pytest.raises(ConfigError, match="is a int, not a class or function"):
            plugins.build_named("backbones", "test_not_callable", {}, "m.b")
    finally:
        registry.backbones.unregister("test_not_callable")


@pytest.mark.parametrize(
    ("kind", "one_of"), [("optimizers", OptimizerConfig), ("schedules", LrConfig)]
)
def test_every_built_in_branch_is_a_registered_builder_of_its_config(kind, one_of):
    """What `garden list` shows for garden-core is exactly what the config offers."""
    entries = registry.registry(kind).providers()
    garden_core = sorted(n for n, e in entries.items() if e[0].distribution == "garden-core")
    assert garden_core == sorted(one_of.branches())
    for name in garden_core:
        builder, description = plugins.load(kind, name, f"{kind}.type")
        assert builder.config_class is one_of.field_types()[name], description


def test_built_in_optimizers_build_from_plain_mappings_like_plugins():
    import keras

    optimizer = plugins.build_named(
        "optimizers", "sgd", {"momentum": 0.5}, "x.sgd", learning_rate=0.25
    )
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == 0.5
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == 0.25
    with pytest.raises(ConfigError, match=r"^unknown key `x\.sgd\.momentun`"):
        plugins.build_named("optimizers", "sgd", {"momentun": 0.5}, "x.sgd", learning_rate=0.1)
    config = OptimizationConfig.from_dict({"optimizer": {"type": "sgd", "sgd": {"decay": 0.1}}})
    with pytest.raises(ConfigError) as raised:
        plugins.build("optimizers", config.optimizer, "o.optimizer", learning_rate=0.1)
    assert str(raised.value) == (
        "`o.optimizer.sgd.decay` = 0.1 is not supported (use a learning-rate schedule); "
        "leave it at 0.0"
    )
