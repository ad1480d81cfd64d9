"""Model Garden YAML compatibility: tf-models-official's own configs load into Garden.

`tests/data/model_garden/NAME.yaml` is `exp_factory.get_exp_config(NAME).as_dict()` of
tf-models-official 2.20 dumped to YAML (by `tools/dump_model_garden_configs.py`). Each loads
into Garden's experiment of the same name and changes nothing, so Garden's defaults are
Model Garden's. Fields Garden does not support load at their defaults and are errors
otherwise. Which experiments need a fixture comes from the registry: every experiment
garden-vision registers under a name tf-models-official 2.20 also registers
(`garden_core.testing.model_garden_configs`).
"""

from __future__ import annotations

import pathlib

import pytest
import yaml

from garden_core import experiment_factory
from garden_core.config import ConfigError
from garden_core.testing import model_garden_configs

DATA = pathlib.Path(__file__).parent / "data" / "model_garden"
OFFERED = model_garden_configs.offered_experiments("garden-vision")


def test_model_garden_names_come_from_the_committed_registry_list():
    names = model_garden_configs.model_garden_experiments()
    assert {"resnet_imagenet", "retinanet", "bert/squad"} <= names
    assert OFFERED, "garden-vision registers no experiment that Model Garden registers"


def test_every_model_garden_named_experiment_has_a_fixture_and_every_fixture_an_experiment():
    assert model_garden_configs.fixture_problems(DATA, OFFERED) == []


@pytest.mark.parametrize("name", OFFERED)
def test_model_garden_yaml_loads_into_the_garden_experiment_unchanged(name):
    assert model_garden_configs.changed_fields(DATA, name) == set()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("task", "train_data", "weights"), {"a": 1.0}, "per-input weights"),
        (("task", "train_input_partition_dims"), [1, 2], "spatial partitioning"),
        (("task", "model_output_keys"), [1], "selecting extra model outputs"),
        (("task", "model", "backbone", "type"), "mobiledet", "not offered by garden-vision"),
        (("task", "train_data", "enable_tf_data_service"), True, "tf.data service"),
        (("runtime", "use_tpu_mp_strategy"), True, "model parallelism"),
        (("task", "model", "backbone", "vit", "transformer_partition_dims"), [1, 1, 1, 1], "TPU"),
    ],
)
def test_an_unsupported_field_set_away_from_its_default_is_an_error(path, value, message):
    data = yaml.safe_load((DATA / "deit_imagenet_pretrain.yaml").read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    params = experiment_factory.get_experiment_config("deit_imagenet_pretrain")
    with pytest.raises(ConfigError, match=message) as error:
        params.override(data)
    assert path[-1] in str(error.value)
