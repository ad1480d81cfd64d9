"""Dumps tf-models-official experiment configs to YAML, as test fixtures for Garden.

Run it where tf-models-official is installed (it is not a Garden dependency):

    python tools/dump_model_garden_configs.py OUTPUT_DIR [NAME ...]
    python tools/dump_model_garden_configs.py --list \
        packages/garden-core/src/garden_core/testing/data/model_garden_experiments.txt

Each NAME is a Model Garden experiment (`exp_factory.get_exp_config(NAME).as_dict()`); it is
written to `OUTPUT_DIR/NAME.yaml` (a `/` in the name becomes `_`) with the tf-models-official
version in a comment. Garden's tests load these files into Garden's experiment of the same
name, which checks that Model Garden YAML loads as is.

`--list FILE` writes every experiment name Model Garden registers once
`official.vision.registry_imports` and `official.nlp.configs` are imported, one per line
with the module that registers it. Garden's fixture tests read it to require a fixture for
every Garden experiment that carries a Model Garden name.

tensorflow_hub 0.16 (imported by `official.nlp`) imports `pkg_resources`, which
setuptools 81 and later no longer ship: run this with setuptools<81 installed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
from collections.abc import Iterator, Mapping
from typing import Any

import yaml


def _import_model_garden_experiments() -> Any:
    """Imports the modules that register Model Garden's experiments; returns exp_factory."""
    from official.core import exp_factory
    from official.nlp.configs import (  # noqa: F401  (they register the NLP experiments)
        finetuning_experiments,
        pretraining_experiments,
    )
    from official.vision import registry_imports  # noqa: F401  (registers the experiments)

    return exp_factory


def _walk(collection: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yields (name, factory) from Model Garden's nested registry (`a/b` is `{a: {b: f}}`)."""
    for key, value in collection.items():
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, Mapping):
            yield from _walk(value, name)
        else:
            yield name, value


def write_experiment_list(path: str, exp_factory: Any, version: str) -> None:
    """Writes `name module` lines for every registered experiment, sorted by name."""
    registered = sorted(_walk(exp_factory._REGISTERED_CONFIGS))  # noqa: SLF001  (no public list)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            f"# Experiments registered by tf-models-official {version} after importing\n"
            "# official.vision.registry_imports and official.nlp.configs.{finetuning,pretraining}"
            "_experiments.\n# name  registering-module  "
            "(written by tools/dump_model_garden_configs.py --list)\n"
        )
        for name, factory in registered:
            f.write(f"{name} {factory.__module__}\n")
    print(f"{path}: {len(registered)} experiments")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", nargs="?", help="where NAME.yaml files go")
    parser.add_argument("names", nargs="*", help="Model Garden experiment names to dump")
    parser.add_argument("--list", dest="list_path", help="write the registered names here")
    args = parser.parse_args()
    if not args.list_path and not (args.output_dir and args.names):
        parser.error("give OUTPUT_DIR and NAMEs, or --list FILE, or both")

    exp_factory = _import_model_garden_experiments()
    version = importlib.metadata.version("tf-models-official")
    if args.list_path:
        write_experiment_list(args.list_path, exp_factory, version)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    for name in args.names:
        config = exp_factory.get_exp_config(name).as_dict()
        path = os.path.join(args.output_dir, f"{name.replace('/', '_')}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(
                f"# exp_factory.get_exp_config({name!r}).as_dict(), tf-models-official {version}\n"
            )
            yaml.safe_dump(config, f, sort_keys=False)
        print(path)


if __name__ == "__main__":
    main()
