"""Model Garden YAML compatibility: tf-models-official's own BERT configs load into Garden.

`tests/data/model_garden/NAME.yaml` is `exp_factory.get_exp_config(NAME).as_dict()` of
tf-models-official 2.20 dumped to YAML (by `tools/dump_model_garden_configs.py`). Each loads
into Garden's experiment of the same name and changes nothing but the deliberate
differences listed here, so Garden's defaults are Model Garden's.
"""

from __future__ import annotations

import pathlib

import pytest
import yaml

from garden_core import registry
from garden_core.config import ConfigError

DATA = pathlib.Path(__file__).parent / "data" / "model_garden"
NAMES = {path.stem: path.stem.replace("bert_", "bert/", 1) for path in DATA.glob("*.yaml")}
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


def _flatten(value, path=""):
    if isinstance(value, dict):
        items = {}
        for key, item in value.items():
            items.update(_flatten(item, f"{path}.{key}" if path else key))
        return items
    return {path: value}


def test_the_fixtures_cover_the_model_garden_experiments_offered():
    assert sorted(NAMES.values()) == [
        "bert/pretraining",
        "bert/pretraining_dynamic",
        "bert/sentence_prediction",
        "bert/sentence_prediction_text",
        "bert/squad",
        "bert/tagging",
        "bert/text_wiki_pretraining",
    ]


@pytest.mark.parametrize("stem", sorted(NAMES))
def test_model_garden_yaml_loads_into_the_garden_experiment_unchanged(stem):
    name = NAMES[stem]
    params = registry.get_experiment_config(name)
    params.override(yaml.safe_load((DATA / f"{stem}.yaml").read_text()))
    params.validate()
    loaded = _flatten(params.as_dict())
    default = _flatten(registry.get_experiment_config(name).as_dict())
    changed = {key for key in loaded if loaded[key] != default.get(key)}
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
    params = registry.get_experiment_config("bert/sentence_prediction")
    with pytest.raises(ConfigError, match=message):
        params.override(data)
