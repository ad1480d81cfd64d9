"""garden-research as a distribution: its version, its Garden requirement ranges, its imports."""

import importlib.metadata

import garden_research


def test_version_matches_the_installed_distribution():
    assert garden_research.__version__ == importlib.metadata.version("garden-research")


def test_installed_siblings_satisfy_the_declared_ranges(import_probe):
    _, _, garden_requirements = import_probe
    requirements = garden_requirements("garden-research")
    assert sorted(requirements) == ["garden-core", "garden-nlp", "garden-vision"]
    for sibling, requirement in requirements.items():
        installed = importlib.metadata.version(sibling)
        assert requirement.specifier.contains(installed, prereleases=True), (sibling, installed)


def test_imports_alone_in_a_fresh_interpreter(import_probe):
    # research sits on top of the graph and may import anything; it must import on its own.
    modules_after_import, _, _ = import_probe
    assert "garden_research" in modules_after_import("garden_research")
