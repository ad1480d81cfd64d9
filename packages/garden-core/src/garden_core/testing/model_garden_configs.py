"""Checks that Model Garden's own experiment YAML loads into a Garden package's experiments.

A package keeps, in `tests/data/model_garden/`, one YAML file per experiment it offers under
a Model Garden name: `exp_factory.get_exp_config(NAME).as_dict()` of tf-models-official
2.20, written by `tools/dump_model_garden_configs.py` (an experiment `a/b` is in `a_b.yaml`).
Which experiments need a fixture comes from the registry, not from a list kept by hand: every
experiment the package registers whose name Model Garden also registers (the list in
`data/model_garden_experiments.txt` beside this module, written once by the same tool with
`--list`).

    OFFERED = model_garden_configs.offered_experiments("garden-vision")

    def test_fixtures_cover_the_offered_experiments():
        assert model_garden_configs.fixture_problems(DATA, OFFERED) == []

    @pytest.mark.parametrize("name", OFFERED)
    def test_model_garden_yaml_loads_unchanged(name):
        assert model_garden_configs.changed_fields(DATA, name) == set()
"""

from __future__ import annotations

import importlib.resources
import pathlib
from typing import Any

import yaml

from garden_core import experiment_factory, registry

# Model Garden's test utilities register test doubles that are not model experiments (its
# `mock` has no model); Garden's experiments of the same name are its own.
_TEST_DOUBLES = "official.utils.testing."


def model_garden_experiments() -> set[str]:
    """The experiment names tf-models-official 2.20 registers, its test doubles left out."""
    text = (
        importlib.resources.files("garden_core.testing")
        .joinpath("data", "model_garden_experiments.txt")
        .read_text(encoding="utf-8")
    )
    names = set()
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, module = line.split()
            if not module.startswith(_TEST_DOUBLES):
                names.add(name)
    return names


def offered_experiments(distribution: str) -> list[str]:
    """The experiments `distribution` registers under a name Model Garden also registers."""
    own = {
        name
        for name, entries in registry.experiments.providers().items()
        if any(entry.distribution == distribution for entry in entries)
    }
    return sorted(own & model_garden_experiments())


def fixture_stem(name: str) -> str:
    """The fixture file name (without `.yaml`) of experiment `name`."""
    return name.replace("/", "_")


def fixture_problems(data_dir: str | pathlib.Path, offered: list[str]) -> list[str]:
    """Offered experiments without a fixture, and fixtures of no offered experiment."""
    fixtures = {path.stem for path in pathlib.Path(data_dir).glob("*.yaml")}
    stems = {fixture_stem(name) for name in offered}
    problems = [
        f"{name}: no fixture {fixture_stem(name)}.yaml (dump it with "
        "tools/dump_model_garden_configs.py)"
        for name in offered
        if fixture_stem(name) not in fixtures
    ]
    problems += [f"{stem}.yaml: no offered experiment" for stem in sorted(fixtures - stems)]
    return problems


def fixture(data_dir: str | pathlib.Path, name: str) -> dict[str, Any]:
    """Model Garden's YAML of experiment `name` (its fixture in `data_dir`) as a dict."""
    path = pathlib.Path(data_dir) / f"{fixture_stem(name)}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """A nested dict as `{dotted.path: value}` of its leaves."""
    if isinstance(value, dict):
        items: dict[str, Any] = {}
        for key, item in value.items():
            items.update(flatten(item, f"{path}.{key}" if path else str(key)))
        return items
    return {path: value}


def changed_fields(data_dir: str | pathlib.Path, name: str) -> set[str]:
    """The dotted fields whose value Model Garden's YAML changes in Garden's `name` config.

    The YAML is applied with a strict `override` and the result validated, so a field Garden
    does not know, or does not support away from its default, raises `ConfigError`.
    """
    params = experiment_factory.get_experiment_config(name)
    params.override(fixture(data_dir, name))
    params.validate()
    loaded = flatten(params.as_dict())
    default = flatten(experiment_factory.get_experiment_config(name).as_dict())
    return {key for key in loaded if loaded[key] != default.get(key)}
