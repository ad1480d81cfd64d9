"""garden-core as a distribution: its version, its Garden requirement ranges, its imports."""

import importlib.metadata

import garden_core


def test_version_matches_the_installed_distribution():
    assert garden_core.__version__ == importlib.metadata.version("garden-core")


def test_installed_siblings_satisfy_the_declared_ranges(import_probe):
    _, _, garden_requirements = import_probe
    requirements = garden_requirements("garden-core")
    assert sorted(requirements) == ["garden-orbit"]
    for sibling, requirement in requirements.items():
        installed = importlib.metadata.version(sibling)
        assert requirement.specifier.contains(installed, prereleases=True), (sibling, installed)


def test_import_loads_no_package_built_beside_or_on_it(import_probe):
    modules_after_import, modules_of, _ = import_probe
    loaded = modules_after_import("garden_core")
    assert "garden_core" in loaded
    assert modules_of(loaded, "garden_vision", "garden_nlp", "garden_research") == []


def test_import_loads_neither_tensorflow_nor_keras(import_probe):
    # `garden list` imports garden_core and must stay fast: TensorFlow loads only when needed.
    modules_after_import, modules_of, _ = import_probe
    assert modules_of(modules_after_import("garden_core"), "tensorflow", "keras") == []


def test_config_system_loads_neither_tensorflow_nor_keras(import_probe):
    modules_after_import, modules_of, _ = import_probe
    loaded = modules_after_import("garden_core.config")
    assert modules_of(loaded, "tensorflow", "keras") == []
