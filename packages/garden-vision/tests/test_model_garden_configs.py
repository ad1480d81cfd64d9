"""Model Garden YAML compatibility: tf-models-official's own configs load into Garden.

`tests/data/model_garden/NAME.yaml` is `exp_factory.get_exp_config(NAME).as_dict()` of
tf-models-official 2.20 dumped to YAML (by `tools/dump_model_garden_configs.py`). Each loads
into Garden's experiment of the same name and changes nothing, so Garden's defaults are
Model Garden's. Fields Garden does not support load at their defaults and are errors
otherwise.
"""

from __future__ import annotations

import pathlib

import pytest
import yaml

from garden_core import registry
from garden_core.config import ConfigError

DATA = pathlib.Path(__file__).parent / "data" / "model_garden"
NAMES = sorted(path.stem for path in DATA.glob("*.yaml"))


def test_the_fixtures_cover_every_model_garden_experiment_offered():
    assert (
        sorted(
            [
                "deit_imagenet_pretrain",
                "image_classification",
                "mobilenet_imagenet",
                "resnet_imagenet",
                "resnet_rs_imagenet",
                "revnet_imagenet",
                "vit_imagenet_finetune",
                "vit_imagenet_pretrain",
            ]
        )
        == NAMES
    )


@pytest.mark.parametrize("name", NAMES)
def test_model_garden_yaml_loads_into_the_garden_experiment_unchanged(name):
    params = registry.get_experiment_config(name)
    params.override(yaml.safe_load((DATA / f"{name}.yaml").read_text()))
    params.validate()
    assert params == registry.get_experiment_config(name)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("task", "train_data", "weights"), {"a": 1.0}, "per-input weights"),
        (("task", "train_input_partition_dims"), [1, 2], "spatial partitioning"),
        (("task", "model_output_keys"), [1], "selecting extra model outputs"),
        (("task", "model", "backbone", "type"), "spinenet", "not offered by garden-vision"),
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
    params = registry.get_experiment_config("deit_imagenet_pretrain")
    with pytest.raises(ConfigError, match=message) as error:
        params.override(data)
    assert path[-1] in str(error.value)
