"""Model Garden YAML compatibility: tf-models-official's own BERT configs load into Garden.

`tests/data/model_garden/NAME.yaml` is `exp_factory.get_exp_config(NAME).as_dict()` of
tf-models-official 2.20 dumped to YAML (by `tools/dump_model_garden_configs.py`; `a/b` is
written as `a_b.yaml`). Each loads into Garden's experiment of the same name and changes
nothing but the deliberate differences listed here, so Garden's defaults are Model Garden's.
Which experiments need a fixture comes from the registry: every experiment garden-nlp
registers under a name tf-models-official 2.20 also registers
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
OFFERED = model_garden_configs.offered_experiments("garden-nlp")
# Where Garden's defaults differ from Model Garden's on purpose.
DELIBERATE_DIFFERENCES = {
    # Model Garden leaves SQuAD's validation data in training mode; its YAML files set it.
    "bert/squad": {"task.validation_data.is_training"},
    # Model Garden's default vocabulary path is the text "TODO for users"; Garden's is empty.
    "bert/text_wiki_pretraining": {
        "task.train_data.vocab_file_path",
        "task.validation_data.vocab_file_path",
    },
}


def test_model_garden_names_come_from_the_committed_registry_list():
    names = model_garden_configs.model_garden_experiments()
    assert {"bert/squad", "electra/pretraining", "retinanet"} <= names
    assert OFFERED, "garden-nlp registers no experiment that Model Garden registers"


def test_every_model_garden_named_experiment_has_a_fixture_and_every_fixture_an_experiment():
    assert model_garden_configs.fixture_problems(DATA, OFFERED) == []


@pytest.mark.parametrize("name", OFFERED)
def test_model_garden_yaml_loads_into_the_garden_experiment_unchanged(name):
    changed = model_garden_configs.changed_fields(DATA, name)
    assert changed == DELIBERATE_DIFFERENCES.get(name, set())


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("task", "hub_module_url"), "https://tfhub.dev/x", "TF Hub"),
        (("task", "model", "encoder", "bert", "return_word_embeddings"), True, "word embeddings"),
        (("task", "model", "encoder", "type"), "mobilebert", "mobilebert"),
    ],
)
def test_an_unsupported_field_set_away_from_its_default_is_an_error(path, value, message):
    data = yaml.safe_load((DATA / "bert_sentence_prediction.yaml").read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    params = experiment_factory.get_experiment_config("bert/sentence_prediction")
    with pytest.raises(ConfigError, match=message):
        params.override(data)
