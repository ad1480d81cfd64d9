"""The config system: typed fields, overrides, locking, restrictions, one-ofs and YAML."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from garden_core.config import (
    Config,
    ConfigError,
    OneOfConfig,
    UnknownKeyError,
    override_config,
    read_overrides,
)


@dataclasses.dataclass
class DataConfig(Config):
    input_path: str = ""
    global_batch_size: int = 0
    is_training: bool = True
    shuffle_buffer_size: int | None = None


@dataclasses.dataclass
class SGDConfig(Config):
    momentum: float = 0.9


@dataclasses.dataclass
class AdamConfig(Config):
    beta_1: float = 0.9
    epsilon: float = 1e-7


@dataclasses.dataclass
class OptimizerConfig(OneOfConfig):
    type: str | None = "sgd"
    sgd: SGDConfig = dataclasses.field(default_factory=SGDConfig)
    adam: AdamConfig = dataclasses.field(default_factory=AdamConfig)


@dataclasses.dataclass
class TrainerConfig(Config):
    train_steps: int = 100
    validation_interval: int = 10
    learning_rate: float = 0.1
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    restrictions = ("train_steps >= validation_interval", "learning_rate > 0")


@dataclasses.dataclass
class ExperimentConfig(Config):
    train_data: DataConfig = dataclasses.field(default_factory=DataConfig)
    eval_data: list[DataConfig] = dataclasses.field(default_factory=list)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    tags: tuple[str, ...] = ()
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RequiredConfig(Config):
    name: str
    size: int = 1


def test_defaults_and_nested_values_are_typed():
    config = ExperimentConfig()
    assert config.trainer.optimizer.get() == SGDConfig(momentum=0.9)
    config.trainer.learning_rate = 1  # An int is accepted for a float...
    assert isinstance(config.trainer.learning_rate, float)
    config.trainer.train_steps = 1e4  # ...and an integral float for an int (YAML's 1e4).
    assert config.trainer.train_steps == 10000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"trainer": {"train_steps": "abc"}}, "`trainer.train_steps` expects int, got 'abc'"),
        ({"trainer": {"train_steps": 1.5}}, "`trainer.train_steps` expects int, got 1.5"),
        ({"train_data": {"is_training": "yes"}}, "`train_data.is_training` expects bool"),
        ({"train_data": {"global_batch_size": None}}, "`train_data.global_batch_size` expects int"),
        ({"eval_data": [{"input_path": 3}]}, "`eval_data[0].input_path` expects str, got 3"),
        ({"tags": "a"}, "`tags` expects tuple[str, ...]"),
    ],
)
def test_bad_values_name_the_path_the_type_and_the_value(overrides, message):
    with pytest.raises(ConfigError) as error:
        ExperimentConfig().override(overrides)
    assert message in str(error.value)


def test_override_merges_recursively_and_keeps_dicts_as_dicts():
    config = ExperimentConfig(extra={"a": 1})
    config.override(
        {
            "trainer": {"optimizer": {"type": "adam", "adam": {"epsilon": 1e-8}}},
            "eval_data": [{"input_path": "x", "is_training": False}],
            "extra": {"b": {"c": 2}},
            "train_data.global_batch_size": 32,
        }
    )
    assert config.trainer.train_steps == 100  # Untouched siblings keep their values.
    assert config.trainer.optimizer.get() == AdamConfig(epsilon=1e-8)
    assert config.eval_data == [DataConfig(input_path="x", is_training=False)]
    assert config.extra == {"a": 1, "b": {"c": 2}}
    assert type(config.extra["b"]) is dict
    assert config.train_data.global_batch_size == 32


def test_unknown_keys_list_close_matches():
    with pytest.raises(
        UnknownKeyError, match=r"`train_data.global_batchsize`.*`global_batch_size`"
    ):
        ExperimentConfig().override({"train_data": {"global_batchsize": 8}})
    with pytest.raises(UnknownKeyError, match="valid keys: momentum"):
        ExperimentConfig().override({"trainer.optimizer.sgd.zzz": 1})


def test_non_strict_override_skips_unknown_keys_with_a_warning(caplog):
    config = ExperimentConfig()
    with caplog.at_level(logging.WARNING):
        config.override({"trainer": {"bogus": 1, "train_steps": 5}}, is_strict=False)
    assert config.trainer.train_steps == 5
    assert "trainer.bogus" in caplog.text


def test_lock_forbids_changes_and_replace_returns_an_unlocked_copy():
    config = ExperimentConfig().lock()
    with pytest.raises(ConfigError, match="locked"):
        config.trainer.train_steps = 5
    with pytest.raises(ConfigError, match="locked"):
        config.override({"trainer": {"train_steps": 5}})
    changed = config.replace(trainer={"train_steps": 5})
    assert changed.trainer.train_steps == 5
    assert not changed.is_locked
    assert not changed.trainer.is_locked
    assert config.trainer.train_steps == 100
    assert config.trainer.optimizer.is_locked


@pytest.mark.parametrize(
    ("restriction", "holds"),
    [
        ("a == b", False),
        ("a != b", True),
        ("a < b", True),
        ("a <= b", True),
        ("a > b", False),
        ("a >= b", False),
        ("a <= 2", True),
        ("b >= 3.5", False),
        ("c == None", True),
        ("c != null", False),
        ("name == 'x y'", True),
        ("flag == true", True),
        ("a < 1e1", True),
    ],
)
def test_restrictions_support_all_six_operators(restriction, holds):
    @dataclasses.dataclass
    class Checked(Config):
        a: int = 2
        b: float = 3.0
        c: int | None = None
        name: str = "x y"
        flag: bool = True

    Checked.restrictions = (restriction,)
    if holds:
        Checked().validate()
    else:
        with pytest.raises(ConfigError, match="does not hold"):
            Checked().validate()


def test_nested_restrictions_report_where_they_failed():
    config = ExperimentConfig()
    config.override({"trainer": {"train_steps": 5}})
    with pytest.raises(ConfigError) as error:
        config.validate()
    assert str(error.value) == (
        "restriction `train_steps >= validation_interval` in `trainer` does not hold: "
        "train_steps = 5, validation_interval = 10"
    )


@pytest.mark.parametrize("bad", ["a", "a < b < c", "a =< b", "< b", "a ~ 2"])
def test_malformed_restrictions_are_errors(bad):
    @dataclasses.dataclass
    class Checked(Config):
        a: int = 1
        b: int = 2

    Checked.restrictions = (bad,)
    with pytest.raises(ConfigError, match="restriction"):
        Checked().validate()


def test_one_of_round_trips_through_yaml_with_every_changed_branch(tmp_path):
    config = ExperimentConfig()
    config.override({"trainer": {"optimizer": {"type": "adam", "sgd": {"momentum": 0.5}}}})
    text = config.as_yaml()
    written = yaml.safe_load(text)["trainer"]["optimizer"]
    assert written == {
        "type": "adam",
        "sgd": {"momentum": 0.5},
        "adam": config.trainer.optimizer.adam.as_dict(),
    }
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert ExperimentConfig.from_yaml(str(path)) == config


def test_one_of_type_must_name_a_branch():
    with pytest.raises(ConfigError, match=r"`trainer.optimizer.type` is 'adamw'.*`adam`"):
        ExperimentConfig().override({"trainer.optimizer.type": "adamw"})


def test_required_fields_load_from_yaml_and_missing_ones_are_named(tmp_path):
    path = tmp_path / "required.yaml"
    path.write_text("name: resnet\n")
    assert RequiredConfig.from_yaml(str(path)) == RequiredConfig(name="resnet", size=1)
    path.write_text("size: 3\n")
    with pytest.raises(ConfigError, match="`name` is required"):
        RequiredConfig.from_yaml(str(path))


def test_yaml_is_loaded_safely_and_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("trainer: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match=r"evil.yaml:1:\d+: invalid YAML"):
        ExperimentConfig.from_yaml(str(path))
    path.write_text("trainer:\n  train_steps: [1\n")
    with pytest.raises(ConfigError, match=r"evil.yaml:\d+:\d+: invalid YAML"):
        ExperimentConfig.from_yaml(str(path))
    with pytest.raises(ConfigError, match="cannot read config file"):
        ExperimentConfig.from_yaml(str(tmp_path / "missing.yaml"))


def test_config_files_then_params_override_apply_in_order(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("trainer:\n  train_steps: 1000\n  learning_rate: 0.5\n")
    second.write_text("trainer:\n  train_steps: 2000\n")
    config = override_config(
        ExperimentConfig(), [str(first), str(second)], "trainer.learning_rate=1e-3"
    )
    assert (config.trainer.train_steps, config.trainer.learning_rate) == (2000, 1e-3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trainer.train_steps=5", {"trainer": {"train_steps": 5}}),
        ("trainer: {train_steps: 5}", {"trainer": {"train_steps": 5}}),
        ("trainer.train_steps: 5", {"trainer": {"train_steps": 5}}),
    ],
)
def test_read_overrides_accepts_strings_and_yaml(text, expected):
    assert read_overrides(text) == expected


def test_read_overrides_reads_a_yaml_file(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("trainer:\n  train_steps: 7\n")
    assert read_overrides(str(path)) == {"trainer": {"train_steps": 7}}


# Property-based: any config of these classes survives YAML and JSON round trips.

_text = st.text(st.characters(codec="utf-8"), max_size=16)
_floats = st.floats(allow_nan=False, width=64)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _floats | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_data_configs = st.builds(
    DataConfig,
    input_path=_text,
    global_batch_size=st.integers(-(2**40), 2**40),
    is_training=st.booleans(),
    shuffle_buffer_size=st.none() | st.integers(0, 2**31),
)
_optimizers = st.builds(
    OptimizerConfig,
    type=st.sampled_from(["sgd", "adam", None]),
    sgd=st.builds(SGDConfig, momentum=_floats),
    adam=st.builds(AdamConfig, beta_1=_floats, epsilon=_floats),
)
_experiments = st.builds(
    ExperimentConfig,
    train_data=_data_configs,
    eval_data=st.lists(_data_configs, max_size=3),
    trainer=st.builds(
        TrainerConfig,
        train_steps=st.integers(-(2**40), 2**40),
        validation_interval=st.integers(0, 10**6),
        learning_rate=_floats,
        optimizer=_optimizers,
    ),
    tags=st.lists(_text, max_size=3).map(tuple),
    extra=st.dictionaries(_text, _json_values, max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(_experiments)
def test_generated_configs_round_trip_losslessly_through_yaml(config):
    assert ExperimentConfig.from_dict(yaml.safe_load(config.as_yaml())) == config


@settings(max_examples=300, deadline=None)
@given(_experiments.filter(lambda c: "inf" not in c.as_yaml()))
def test_generated_configs_round_trip_through_json(config):
    assert ExperimentConfig.from_dict(json.loads(config.as_json())) == config
