"""Dumps the public Python API of tf-models-official's modules that Garden mirrors, as fixtures.

Run it where tf-models-official is installed (it is not a Garden dependency):

    python tools/dump_model_garden_api.py            # writes both packages' fixtures
    python tools/dump_model_garden_api.py --check    # compares them instead of writing

For every Model Garden module in `VISION_MODULES` / `NLP_MODULES` it records the public names
a user imports from it, each with its kind (`class`, `function`, `module` or `constant`),
into `packages/garden-vision/tests/data/model_garden/public_api.json` and
`packages/garden-nlp/tests/data/model_garden/public_api.json`. Garden's
`test_model_garden_api.py` reads them: every name its `implemented.json` claims must import
from Garden's matching path and be of the same kind; the rest are reported as not offered.

What counts as a module's public names:

- a package (`official.vision.modeling.backbones`): the classes and functions its `__init__`
  imports or defines (star imports resolved), and its submodules (`resnet`, `factory`, ...), which a
  user can import from it whether or not `__init__` imports them (test modules excluded);
- a plain module (`official.vision.ops.preprocess_ops`): the classes and functions defined in
  it and the names its top level assigns (constants such as `MEAN_RGB`);
- a `tensorflow_models` namespace (`tensorflow_models.vision`, what `tfm.vision` offers):
  every public attribute, since it only re-exports.

tensorflow_hub 0.16 (imported by `official.nlp`) imports `pkg_resources` for its
`parse_version`, which setuptools 81 and later no longer ship; where it is missing this script
provides that one function from `packaging` before importing Model Garden.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import inspect
import json
import os
import pkgutil
import sys
import types
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VISION_MODULES = (
    "official.vision.configs",
    "official.vision.configs.backbones",
    "official.vision.configs.common",
    "official.vision.configs.image_classification",
    "official.vision.dataloaders",
    "official.vision.dataloaders.classification_input",
    "official.vision.modeling",
    "official.vision.modeling.backbones",
    "official.vision.modeling.backbones.factory",
    "official.vision.modeling.classification_model",
    "official.vision.modeling.decoders",
    "official.vision.modeling.factory",
    "official.vision.modeling.heads",
    "official.vision.modeling.layers",
    "official.vision.modeling.models",
    "official.vision.ops",
    "official.vision.ops.augment",
    "official.vision.ops.preprocess_ops",
    "official.vision.serving",
    "official.vision.serving.image_classification",
    "official.vision.tasks",
    "official.vision.tasks.image_classification",
    "tensorflow_models.vision",
)

NLP_MODULES = (
    "official.nlp.configs",
    "official.nlp.configs.bert",
    "official.nlp.configs.encoders",
    "official.nlp.data",
    "official.nlp.data.pretrain_dataloader",
    "official.nlp.data.pretrain_dynamic_dataloader",
    "official.nlp.data.pretrain_text_dataloader",
    "official.nlp.data.question_answering_dataloader",
    "official.nlp.data.sentence_prediction_dataloader",
    "official.nlp.data.tagging_dataloader",
    "official.nlp.modeling",
    "official.nlp.modeling.layers",
    "official.nlp.modeling.models",
    "official.nlp.modeling.networks",
    "official.nlp.serving",
    "official.nlp.serving.serving_modules",
    "official.nlp.tasks",
    "official.nlp.tasks.masked_lm",
    "official.nlp.tasks.question_answering",
    "official.nlp.tasks.sentence_prediction",
    "official.nlp.tasks.tagging",
    "tensorflow_models.nlp",
)

FIXTURES = {
    os.path.join(
        REPO_ROOT, "packages/garden-vision/tests/data/model_garden/public_api.json"
    ): VISION_MODULES,
    os.path.join(REPO_ROOT, "packages/garden-nlp/tests/data/model_garden/public_api.json"): (
        NLP_MODULES
    ),
}


def kind_of(value: Any) -> str:
    """`class`, `module`, `function` (any other callable) or `constant`."""
    if inspect.isclass(value):
        return "class"
    if isinstance(value, types.ModuleType):
        return "module"
    if callable(value):
        return "function"
    return "constant"


def _top_level_assignments(module: types.ModuleType) -> set[str]:
    """Names a module's source assigns at its top level (`X = ...`, `X: T = ...`)."""
    source = inspect.getsource(module)
    names = set()
    for node in ast.parse(source).body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
    return names


def _bound_by_init(package: types.ModuleType) -> set[str]:
    """Names a package's `__init__` binds: by import (star imports resolved), def or class."""
    names = set()
    for node in ast.parse(inspect.getsource(package)).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    names.add(alias.asname or alias.name)
                    continue
                source = importlib.import_module(node.module)
                exported = getattr(source, "__all__", None) or [
                    name
                    for name, value in vars(source).items()
                    if getattr(value, "__module__", None) == source.__name__
                ]
                names.update(exported)
    return names


def public_names(module_name: str) -> dict[str, str]:
    """The public names of one module (see the module docstring), each with its kind."""
    module = importlib.import_module(module_name)
    public = {name: value for name, value in vars(module).items() if not name.startswith("_")}
    if module_name.startswith("tensorflow_models."):
        return {name: kind_of(value) for name, value in sorted(public.items())}

    names: dict[str, str] = {}
    if hasattr(module, "__path__"):
        bound = _bound_by_init(module)
        for name, value in public.items():
            if kind_of(value) in ("class", "function") and name in bound:
                names[name] = kind_of(value)
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("_") and not info.name.endswith("_test"):
                names[info.name] = "module"
    else:
        assigned = _top_level_assignments(module)
        for name, value in public.items():
            kind = kind_of(value)
            if kind in ("class", "function"):
                if getattr(value, "__module__", None) == module_name:
                    names[name] = kind
            elif kind == "constant" and name in assigned:
                names[name] = kind
    return dict(sorted(names.items()))


def _provide_pkg_resources() -> None:
    """Gives tensorflow_hub the `pkg_resources.parse_version` it imports, if it is missing."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        from packaging.version import parse

        shim = types.ModuleType("pkg_resources")
        shim.parse_version = parse
        sys.modules["pkg_resources"] = shim


def dump(modules: tuple[str, ...], version: str) -> dict[str, Any]:
    return {
        "_about": (
            f"Public names of tf-models-official {version} modules, with their kinds; "
            "written by tools/dump_model_garden_api.py (do not edit by hand)."
        ),
        "tf_models_official": version,
        "modules": {name: public_names(name) for name in modules},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare the fixtures instead of writing them"
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _provide_pkg_resources()
    version = importlib.metadata.version("tf-models-official")

    stale = []
    for path, modules in FIXTURES.items():
        text = json.dumps(dump(modules, version), indent=1, sort_keys=True) + "\n"
        if args.check:
            with open(path, encoding="utf-8") as f:
                if f.read() != text:
                    stale.append(path)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, path)
        print(f"{os.path.relpath(path, REPO_ROOT)}: {len(modules)} modules")
    if stale:
        sys.exit("out of date: " + ", ".join(os.path.relpath(p, REPO_ROOT) for p in stale))


if __name__ == "__main__":
    main()
