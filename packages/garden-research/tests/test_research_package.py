"""garden-research as a distribution: its version metadata, sibling ranges and lone import."""

import importlib.metadata
import subprocess
import sys

from packaging.requirements import Requirement

import garden_research


def test_version_matches_the_installed_distribution():
    assert garden_research.__version__ == importlib.metadata.version("garden-research")


def test_installed_siblings_satisfy_the_declared_ranges():
    requirements = [Requirement(text) for text in importlib.metadata.requires("garden-research")]
    garden = {r.name: r for r in requirements if r.name.startswith("garden-") and r.marker is None}
    assert sorted(garden) == ["garden-core", "garden-nlp", "garden-vision"]
    for name, requirement in garden.items():
        installed = importlib.metadata.version(name)
        assert requirement.specifier.contains(installed, prereleases=True), (name, installed)


def test_fresh_interpreter_imports_the_installed_version():
    # research sits on top of the graph and may import anything; what matters is that it
    # imports on its own in a clean interpreter, at the version its metadata declares.
    code = "import garden_research; print(garden_research.__version__)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"`import garden_research` failed:\n{result.stderr}"
    assert result.stdout.strip() == importlib.metadata.version("garden-research")
