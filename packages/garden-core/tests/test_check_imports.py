"""tools/check_imports.py walks every submodule and reports forbidden imports by module.

The walk runs on a small fake package in a fresh interpreter (no wheels are built): one of
its submodules imports a forbidden package, its `testing` module imports pytest, one needs a
missing optional requirement and one fails to import.
"""

import json
import pathlib
import subprocess
import sys
import textwrap

TOOLS = pathlib.Path(__file__).resolve().parents[3] / "tools"

FILES = {
    "fakepkg/__init__.py": '"""Imports nothing, like garden_vision/__init__."""\n',
    "fakepkg/clean.py": "import json\n",
    "fakepkg/models/__init__.py": "",
    "fakepkg/models/uses_sibling.py": "import forbidden_sibling.layers\n",
    "fakepkg/testing.py": "import pytest\n",
    "fakepkg/needs_extra.py": "import optional_extra\n",
    "fakepkg/needs_undeclared.py": "import undeclared_dependency\n",
    "fakepkg/broken.py": "raise RuntimeError('broken at import')\n",
    "forbidden_sibling/__init__.py": "",
    "forbidden_sibling/layers.py": "",
    "pytest.py": "",  # A stand-in: the fresh interpreter's pytest is this empty module.
}


def _walk(tmp_path, forbidden, optional=()):
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    script = textwrap.dedent(
        f"""
        import dataclasses, json, sys
        sys.path[:0] = [{str(tmp_path)!r}, {str(TOOLS)!r}]
        import check_imports
        result = check_imports.walk_imports("fakepkg", {tuple(forbidden)!r}, {set(optional)!r})
        print(json.dumps(dataclasses.asdict(result)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_submodule_importing_a_forbidden_package_is_reported_by_name(tmp_path):
    result = _walk(tmp_path, forbidden=("forbidden_sibling",), optional={"optional-extra"})
    assert result["offenders"] == {
        "fakepkg.models.uses_sibling": ["forbidden_sibling", "forbidden_sibling.layers"],
        "fakepkg.testing": ["pytest"],  # Shared test helpers must not need pytest.
    }
    assert {"fakepkg", "fakepkg.clean", "fakepkg.models"} <= set(result["imported"])


def test_a_missing_optional_requirement_skips_and_any_other_import_error_fails(tmp_path):
    result = _walk(tmp_path, forbidden=(), optional={"optional-extra"})
    assert result["skipped"] == {"fakepkg.needs_extra": "optional_extra"}
    assert sorted(result["failures"]) == ["fakepkg.broken", "fakepkg.needs_undeclared"]
    assert "broken at import" in result["failures"]["fakepkg.broken"]
    assert result["offenders"] == {"fakepkg.testing": ["pytest"]}


def test_the_top_level_import_alone_would_have_missed_it(tmp_path):
    """The old check imported only `fakepkg`, whose `__init__` loads nothing forbidden."""
    result = _walk(tmp_path, forbidden=("forbidden_sibling",))
    assert "fakepkg" not in result["offenders"]
    assert "fakepkg.models.uses_sibling" in result["offenders"]
