"""garden-vision as a distribution: its version, its Garden requirement ranges, its imports."""

import importlib.metadata

import garden_vision


def test_version_matches_the_installed_distribution():
    assert garden_vision.__version__ == importlib.metadata.version("garden-vision")


def test_installed_siblings_satisfy_the_declared_ranges(import_probe):
    _, _, garden_requirements = import_probe
    requirements = garden_requirements("garden-vision")
    assert sorted(requirements) == ["garden-core", "garden-orbit"]
    for sibling, requirement in requirements.items():
        installed = importlib.metadata.version(sibling)
        assert requirement.specifier.contains(installed, prereleases=True), (sibling, installed)


def test_import_loads_no_package_built_beside_or_on_it(import_probe):
    modules_after_import, modules_of, _ = import_probe
    loaded = modules_after_import("garden_vision")
    assert "garden_vision" in loaded
    assert modules_of(loaded, "garden_nlp", "garden_research") == []
