"""garden-core as a distribution: its version metadata, its sibling range and its import cost."""

import importlib.metadata
import json
import subprocess
import sys

from packaging.requirements import Requirement

import garden_core


def _modules_loaded_by_importing(module: str) -> set[str]:
    """Imports `module` in a fresh interpreter and returns everything in its sys.modules."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"`import {module}` failed:\n{result.stderr}"
    return set(json.loads(result.stdout.splitlines()[-1]))


def _loaded_from(loaded: set[str], *top_level: str) -> list[str]:
    return sorted(m for m in loaded if any(m == t or m.startswith(t + ".") for t in top_level))


def test_version_matches_the_installed_distribution():
    assert garden_core.__version__ == importlib.metadata.version("garden-core")


def test_installed_orbit_satisfies_the_declared_range():
    requirements = [Requirement(text) for text in importlib.metadata.requires("garden-core")]
    garden = [r for r in requirements if r.name.startswith("garden-") and r.marker is None]
    assert [r.name for r in garden] == ["garden-orbit"]
    (orbit,) = garden
    assert orbit.specifier.contains(importlib.metadata.version("garden-orbit"), prereleases=True)


def test_import_loads_no_package_built_on_core():
    loaded = _modules_loaded_by_importing("garden_core")
    assert "garden_core" in loaded
    assert _loaded_from(loaded, "garden_vision", "garden_nlp", "garden_research") == []


def test_import_loads_neither_tensorflow_nor_keras():
    # `garden list` imports garden_core and must stay fast: TensorFlow loads only when needed.
    loaded = _modules_loaded_by_importing("garden_core")
    assert _loaded_from(loaded, "tensorflow", "keras") == []
