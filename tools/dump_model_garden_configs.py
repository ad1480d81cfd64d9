"""Dumps tf-models-official experiment configs to YAML, as test fixtures for Garden.

Run it where tf-models-official is installed (it is not a Garden dependency):

    python tools/dump_model_garden_configs.py OUTPUT_DIR NAME [NAME ...]

Each NAME is a Model Garden experiment (`exp_factory.get_exp_config(NAME).as_dict()`); it is
written to `OUTPUT_DIR/NAME.yaml` with the tf-models-official version in a comment. Garden's
tests load these files into Garden's experiment of the same name, which checks that Model
Garden YAML loads as is.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os

import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("names", nargs="+")
    args = parser.parse_args()

    from official.core import exp_factory
    from official.nlp.configs import (  # noqa: F401  (they register the NLP experiments)
        finetuning_experiments,
        pretraining_experiments,
    )
    from official.vision import registry_imports  # noqa: F401  (registers the experiments)

    version = importlib.metadata.version("tf-models-official")
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
