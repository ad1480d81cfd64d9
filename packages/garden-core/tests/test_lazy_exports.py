"""`lazy_exports`: a package's names are imported on first use, with clear errors."""

from __future__ import annotations

import sys
import textwrap

import pytest

from garden_core.lazy_exports import lazy_exports


@pytest.fixture
def lazy_package(tmp_path, monkeypatch):
    """A package `lazy_pkg` whose `__init__` exports names from two submodules lazily."""
    package = tmp_path / "lazy_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from garden_core.lazy_exports import lazy_exports

            __getattr__, __dir__, __all__ = lazy_exports(
                __name__,
                {
                    "Thing": ".things:Thing",
                    "things_module": "lazy_pkg.things",
                    "Missing": ".things:Missing",
                },
            )
            """
        )
    )
    (package / "things.py").write_text("class Thing:\n    pass\n")
    (package / "extra.py").write_text("VALUE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "lazy_pkg"
    for name in [m for m in sys.modules if m == "lazy_pkg" or m.startswith("lazy_pkg.")]:
        del sys.modules[name]


def test_names_are_imported_on_first_use_and_cached(lazy_package):
    import lazy_pkg

    assert "lazy_pkg.things" not in sys.modules
    thing = lazy_pkg.Thing
    assert "lazy_pkg.things" in sys.modules
    assert thing.__name__ == "Thing"
    assert vars(lazy_pkg)["Thing"] is thing
    assert lazy_pkg.things_module is sys.modules["lazy_pkg.things"]


def test_all_lists_the_table_and_dir_adds_submodules(lazy_package):
    import lazy_pkg

    assert lazy_pkg.__all__ == ["Missing", "Thing", "things_module"]
    assert {"Thing", "things_module", "extra", "things"} <= set(dir(lazy_pkg))


def test_a_submodule_is_an_attribute_without_importing_it_first(lazy_package):
    import lazy_pkg

    assert lazy_pkg.extra.VALUE == 3


def test_an_unknown_name_is_an_attribute_error(lazy_package):
    import lazy_pkg

    with pytest.raises(AttributeError, match="'lazy_pkg' has no attribute 'Nothing'"):
        lazy_pkg.Nothing  # noqa: B018
    assert not hasattr(lazy_pkg, "Nothing")


def test_a_table_entry_whose_module_lacks_the_name_is_an_import_error(lazy_package):
    import lazy_pkg

    with pytest.raises(ImportError, match=r"lazy_pkg.Missing is exported from lazy_pkg.things"):
        lazy_pkg.Missing  # noqa: B018


@pytest.mark.parametrize(
    ("exports", "message"),
    [
        ({"_private": ".m:X"}, "'_private' is not a public identifier"),
        ({"X": "not a path"}, "expected 'module.path' or 'module.path:attribute'"),
        ({"X": ".m:X:Y"}, "expected 'module.path' or 'module.path:attribute'"),
    ],
)
def test_malformed_tables_are_rejected_naming_the_entry(exports, message):
    with pytest.raises(ValueError, match=message):
        lazy_exports("some_package", exports)
