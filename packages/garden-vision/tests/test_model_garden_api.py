"""Model Garden code ports to garden-vision by renaming `official.vision` to `garden_vision`.

`data/model_garden/public_api.json` holds the public names of tf-models-official's vision
modules (dumped by tools/dump_model_garden_api.py); `implemented.json` says which of them
garden-vision implements and where. Every implemented name must import from Garden's module
and be the same kind of object; the README's "From Model Garden" table lists the rest.
"""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys

import pytest

from garden_core.testing import model_garden_api

DATA = pathlib.Path(__file__).parent / "data" / "model_garden"
README = pathlib.Path(__file__).parents[1] / "README.md"
MAPPINGS = model_garden_api.load_mappings(DATA)

# The package __init__s that offer Model Garden's paths; importing any must stay cheap.
LAZY_PACKAGES = (
    "garden_vision",
    "garden_vision.configs",
    "garden_vision.dataloaders",
    "garden_vision.datasets",
    "garden_vision.modeling",
    "garden_vision.modeling.backbones",
    "garden_vision.modeling.decoders",
    "garden_vision.modeling.heads",
    "garden_vision.modeling.layers",
    "garden_vision.modeling.models",
    "garden_vision.ops",
    "garden_vision.serving",
    "garden_vision.tasks",
)


@pytest.mark.parametrize("mapping", MAPPINGS, ids=lambda m: m.model_garden)
def test_implemented_model_garden_names_import_from_the_matching_garden_module(mapping):
    assert model_garden_api.import_problems(mapping) == []


def test_the_fixtures_cover_the_modules_the_short_namespace_mirrors():
    modules = {m.model_garden: m.garden for m in MAPPINGS}
    assert modules["tensorflow_models.vision"] == "garden_vision"
    assert modules["official.vision.modeling.backbones"] == "garden_vision.modeling.backbones"
    # Model Garden's ResNet, as its documentation imports it, is offered under the same path.
    assert "ResNet" in next(m for m in MAPPINGS if m.garden.endswith("backbones")).implemented


def test_readme_table_lists_each_module_and_the_names_not_offered():
    assert model_garden_api.readme_problems(README.read_text(encoding="utf-8"), MAPPINGS) == []


def test_short_namespace_and_ported_imports_reach_the_real_classes():
    import garden_vision as gv
    from garden_vision.modeling.backbones import ResNet
    from garden_vision.modeling.backbones.resnet import ResNet as ResNetItself
    from garden_vision.ops import preprocess_ops

    assert ResNet is ResNetItself is gv.backbones.ResNet
    assert gv.preprocess_ops is preprocess_ops is gv.ops.preprocess_ops
    assert gv.models.ClassificationModel is gv.classification_model.ClassificationModel


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_lazy_name_resolves(package):
    module = importlib.import_module(package)
    names = [name for name in dir(module) if not name.startswith("_")]
    assert set(getattr(module, "__all__", ())) <= set(dir(module)), (
        f"{package}.__all__ has names dir() lacks"
    )
    assert names, f"{package} offers no names"
    for name in names:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_an_unknown_name_is_an_attribute_error_naming_it():
    import garden_vision

    with pytest.raises(AttributeError, match="'garden_vision' has no attribute 'ResNett'"):
        garden_vision.ResNett  # noqa: B018


def test_importing_the_packages_loads_neither_tensorflow_nor_keras():
    code = (
        f"import json, sys\nimport {', '.join(LAZY_PACKAGES)}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tf_keras'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
